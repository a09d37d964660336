"""A FunnelsQuery plan (`app.query.funnels_sql.FunnelPlan`) as one ClickHouse statement.

The same matching as PostgreSQL's (`funnels_sql`'s docstring: the window passes per step, exclusions, strict
and unordered funnels, breakdown attributions, trends of conversion, time to convert), written with
ClickHouse's window functions, layer by layer as there, so that both count exactly the same actors and times.
ClickHouse's own `windowFunnel` is not used: it credits a conversion to the first start that can make it
(PostHog's rule is the latest), knows no exclusions between steps, and takes events at one instant in an
order of its own. The statement returns the columns of `funnels_sql`'s statements (`steps_statement`,
`ttc_statement`, `trends_statement`); filters, properties and buckets are compiled as for trends.

Where the two databases differ, this module makes ClickHouse answer what PostgreSQL does:

- ties: events at one instant are ordered by (timestamp, lowest step, uuid); a UUID sorts here by its two
  64-bit halves, there by its bytes, so the uuid is compared as its text (the same order as the bytes);
- times: timestamps are compared as whole microseconds since the epoch (`toUnixTimestamp64Micro`), the
  window too, so `ts <= start + window` holds exactly when it does on PostgreSQL's intervals; conversion
  times are microseconds / 1e6, as PostgreSQL's `extract(epoch …)`;
- nulls: a step whose filters are unknown (a missing property) matches no event (`coalesce(…, false)`), as
  PostgreSQL's `CASE WHEN NULL` takes the other branch; `greatest` here is NULL when one argument is, so the
  furthest excluded step is a `multiIf`; aggregates over no rows are NULL (`avgOrNullIf`, `minOrNullIf`), not
  0 or nan;
- medians: PostgreSQL's `percentile_cont(0.5)` (the mean of the two middle values) over the sorted array;
- ranks of breakdown values break ties by the value in byte order (`COLLATE "C"` there).

PostgreSQL's plan drops runs of step-1-only events before the later passes (a speed-up that changes no
result); here every event goes through every pass.
"""

from app.clickhouse.trends import (
    _TIMESTAMP,
    Statement,
    _all,
    _utc,
    bucket_expr,
    node_condition,
    where_condition,
)
from app.query.dates import ResolvedRange
from app.query.funnels_sql import OTHER, FunnelPlan
from app.query.trends_sql import FilterNode

_ORDER = "ts, ord, uuid"
_BEFORE = "ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING"
_UP_TO = "ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW"
_FROM = "ROWS BETWEEN CURRENT ROW AND UNBOUNDED FOLLOWING"
_ALL = "ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING"


def _micros(seconds: float) -> int:
    return round(seconds * 1_000_000)


def _flag(st: Statement, event: str | None, nodes: tuple[FilterNode, ...]) -> str:
    conditions = [node_condition(st, node) for node in nodes]
    if event is not None:
        conditions.insert(0, f"e.event = {st.bind(event, 'String')}")
    return f"coalesce({_all(conditions)}, false)"


def _breakdown_value(st: Statement, plan: FunnelPlan) -> str:
    assert plan.breakdown is not None
    value = st.text(plan.breakdown.key, plan.breakdown.kind)
    if plan.breakdown.normalize_url:
        trimmed = f"replaceRegexpOne({value}, {st.bind(r'[/?#]+$', 'String')}, '')"
        value = f"if({value} IS NOT NULL AND {trimmed} = '', '/', {trimmed})"
    return f"coalesce({value}, '')"


def _local(st: Statement, tz: str) -> str:
    if tz == "UTC":
        return "e.timestamp"
    return f"addSeconds(e.timestamp, timeZoneOffset(toTimeZone(e.timestamp, {st.bind(tz, 'String')})))"


class _Compiler:
    def __init__(self, plan: FunnelPlan, period: ResolvedRange, database: str) -> None:
        assert plan.filters is not None
        self.plan = plan
        self.period = period
        self.st = Statement(database)
        self.window = self.st.bind(_micros(plan.window.total_seconds()), "Int64")

    # --- the events, with their flags ---

    def base(self, *, bucket: bool = False) -> str:
        plan, st = self.plan, self.st
        assert plan.filters is not None
        flags = [_flag(st, s.event, s.nodes) for s in plan.steps]
        excl = [_flag(st, x.event, x.nodes) for x in plan.exclusions]
        whens = [f"{flag}, -1" for flag in excl] + [f"{flag}, {j}" for j, flag in enumerate(flags)]
        columns = [
            "e.distinct_id AS actor",
            "toUnixTimestamp64Micro(e.timestamp) AS ts",
            "toString(e.uuid) AS uuid",
            f"toInt64(multiIf({', '.join(whens)}, {plan.n})) AS ord",
            *(f"{flag} AS s{j}" for j, flag in enumerate(flags)),
            *(f"{flag} AS x{i}" for i, flag in enumerate(excl)),
        ]
        if plan.breakdown is not None:
            columns.append(f"{_breakdown_value(st, plan)} AS bd")
        if bucket:
            local = _local(st, self.period.tz.key)
            columns.append(f"{bucket_expr(self.period.interval, local, self.period.week_start)} AS bucket")
        conditions = [
            f"e.team_id = {st.team(plan.team_id)}",
            f"e.timestamp >= {st.bind(_utc(self.period.start), _TIMESTAMP)}",
            f"e.timestamp <= {st.bind(_utc(self.period.date_to), _TIMESTAMP)}",
            where_condition(st, plan.filters),
        ]
        names = [s.event for s in plan.steps] + [x.event for x in plan.exclusions]
        if plan.order != "strict" and None not in names:
            unique = sorted({name for name in names if name is not None})
            conditions.append(f"e.event IN {st.bind(unique, 'Array(String)')}")
        return f"SELECT {', '.join(columns)} FROM {{source}} WHERE {' AND '.join(conditions)}"

    def columns(self, *, bucket: bool = False) -> list[str]:
        plan = self.plan
        out = ["actor", "ts", "uuid", "ord", *(f"s{j}" for j in range(plan.n))]
        out += [f"x{i}" for i in range(len(plan.exclusions))]
        out += ["bd"] if plan.breakdown is not None else []
        return out + (["bucket"] if bucket else [])

    def partitioned(self, base: str, *, bucket: bool = False) -> tuple[str, list[str]]:
        """The events and the keys of their groups (the actor; with the value for all_events and step)."""
        breakdown = self.plan.breakdown
        if breakdown is None or breakdown.attribution in ("first_touch", "last_touch"):
            return base, ["actor"]
        if breakdown.attribution == "all_events":
            return base, ["actor", "bd"]
        # step: one copy of the actor's events per value seen on their step-k events ("" without any), where
        # step k only matches events carrying that value.
        k = breakdown.step
        candidates = (
            f"SELECT DISTINCT actor, bd AS cand FROM ({base}) WHERE s{k} UNION DISTINCT "
            f"SELECT actor, '' AS cand FROM ({base}) GROUP BY actor HAVING NOT max(s{k})"
        )
        columns = []
        for name in self.columns(bucket=bucket):
            if name == f"s{k}":
                columns.append(f"b.s{k} AND b.bd = c.cand AS s{k}")
            elif name == "bd":
                columns.append("c.cand AS bd")
            else:
                columns.append(f"b.{name} AS {name}")
        joined = f"({base}) AS b INNER JOIN ({candidates}) AS c ON b.actor = c.actor"
        expanded = f"SELECT {', '.join(columns)} FROM {joined}"
        return expanded, ["actor", "bd"]

    # --- ordered and strict funnels ---

    def layers(self, *, bucket: bool = False) -> tuple[str, list[str], list[str]]:
        """As `funnels_sql.ordered_layers`: the events with `r{j}`, `k{j}` and `sstar`; the keys; the kill
        columns."""
        plan, window = self.plan, self.window
        current, keys = self.partitioned(self.base(bucket=bucket), bucket=bucket)
        over = f"PARTITION BY {', '.join(keys)} ORDER BY {_ORDER}"
        current = f"SELECT *, if(s0, ts, NULL) AS r0 FROM ({current})"
        kills: list[str] = []
        for j in range(1, plan.n):
            if plan.order == "strict":
                prev = f"lagInFrame(r{j - 1}) OVER ({over} {_ALL})"
            else:
                prev = f"max(r{j - 1}) OVER ({over} {_BEFORE})"
            exclusions = [
                f"x{i}"
                for i, x in enumerate(plan.exclusions)
                if x.from_step <= j - 1 < x.to_step and plan.order != "strict"
            ]
            if exclusions:
                with_prev = f"SELECT *, {prev} AS prev FROM ({current})"
                hit = f"({' OR '.join(exclusions)}) AND ts <= prev + {window}"
                killed = f"max(if({hit}, prev, NULL)) OVER ({over} {_UP_TO})"
                marked = f"SELECT *, {killed} AS killed FROM ({with_prev})"
                advances = f"(s{j} AND ts <= prev + {window})"
                alive = "(killed IS NULL OR killed < prev)"
                current = (
                    f"SELECT * EXCEPT (prev, killed), if({advances} AND {alive}, prev, NULL) AS r{j}, "
                    f"coalesce({advances} AND killed = prev, false) AS k{j} FROM ({marked})"
                )
                kills.append(f"k{j}")
            else:
                current = (
                    f"SELECT *, if(s{j} AND ts <= p{j} + {window}, p{j}, NULL) AS r{j} "
                    f"FROM (SELECT *, {prev} AS p{j} FROM ({current}))"
                )
        whole = f"PARTITION BY {', '.join(keys)}"
        sstar = ", ".join(f"min(r{j}) OVER ({whole})" for j in range(plan.n - 1, 0, -1))
        return f"SELECT *, coalesce({sstar}) AS sstar FROM ({current})", keys, kills

    def _actor_value(self) -> list[str]:
        breakdown = self.plan.breakdown
        if breakdown is None:
            return []
        if breakdown.attribution in ("first_touch", "last_touch"):
            pick = "argMinIf" if breakdown.attribution == "first_touch" else "argMaxIf"
            return [f"{pick}(bd, ({_ORDER}), bd != '') AS bdv"]
        return ["bd AS bdv"]

    def ordered_actors(self) -> str:
        plan = self.plan
        rows, keys, kills = self.layers()
        level = (
            "multiIf(" + ", ".join(f"r{j} IS NOT NULL, {j}" for j in range(plan.n - 1, -1, -1)) + ", NULL)"
        )
        times = ["max(sstar) AS t0"] + [f"minOrNullIf(ts, r{j} = sstar) AS t{j}" for j in range(1, plan.n)]
        columns = ["actor", *self._actor_value(), f"max({level}) AS level", *times]
        grouped = f"SELECT {', '.join(columns)} FROM ({rows}) GROUP BY {', '.join(keys)}"
        if kills:
            furthest = (
                "multiIf(" + ", ".join(f"{k}, {int(k[1:])}" for k in sorted(kills, reverse=True)) + ", NULL)"
            )
            grouped += f" HAVING max({furthest}) IS NULL OR max({furthest}) <= level"
        durations = [f"if(level >= {j}, (t{j} - t{j - 1}) / 1e6, NULL) AS d{j}" for j in range(1, plan.n)]
        extra = ["bdv AS bd"] if plan.breakdown is not None else []
        return f"SELECT {', '.join([*extra, 'level', *durations])} FROM ({grouped}) WHERE level IS NOT NULL"

    # --- unordered funnels ---

    def unordered_actors(self) -> str:
        plan, window = self.plan, self.window
        base, keys = self.partitioned(self.base())
        following = f"PARTITION BY {', '.join(keys)} ORDER BY {_ORDER} {_FROM}"
        nexts = [f"min(if(s{j}, ts, NULL)) OVER ({following})" for j in range(plan.n)]
        in_window = [f"if(n{j} <= ts + {window}, n{j}, NULL)" for j in range(plan.n)]
        with_next = f"SELECT *, {', '.join(f'{nx} AS n{j}' for j, nx in enumerate(nexts))} FROM ({base})"
        times = f"[{', '.join(in_window)}]"
        anchors = (
            f"SELECT {', '.join(keys)}, ts, ord, uuid, {times} AS times, "
            f"toInt64(length(arrayFilter(t -> t IS NOT NULL, times))) AS done FROM ({with_next})"
        )
        pick = f"row_number() OVER (PARTITION BY {', '.join(keys)} ORDER BY done DESC, {_ORDER})"
        best = f"SELECT *, {pick} AS pick FROM ({anchors}) WHERE done > 0"
        chosen = f"SELECT * FROM ({best}) WHERE pick = 1"
        if plan.breakdown is not None and plan.breakdown.attribution in ("first_touch", "last_touch"):
            values = f"SELECT actor, {self._actor_value()[0]} FROM ({base}) GROUP BY actor"
            chosen = (
                "SELECT c.actor AS actor, c.times AS times, c.done AS done, v.bdv AS bd "
                f"FROM ({chosen}) AS c "
                f"INNER JOIN ({values}) AS v ON c.actor = v.actor"
            )
        sorted_ = f"SELECT *, arraySort(arrayFilter(t -> t IS NOT NULL, times)) AS sorted FROM ({chosen})"
        durations = [
            f"if(done > {j}, (sorted[{j + 1}] - sorted[{j}]) / 1e6, NULL) AS d{j}" for j in range(1, plan.n)
        ]
        extra = ["bd"] if plan.breakdown is not None else []
        return f"SELECT {', '.join([*extra, 'done - 1 AS level', *durations])} FROM ({sorted_})"

    # --- the statements ---

    def aggregates(self) -> list[str]:
        n, st = self.plan.n, self.st
        half = st.bind(0.5, "Float64")
        out = [f"toInt64(countIf(level >= {j})) AS c{j}" for j in range(n)]
        for j in range(1, n):
            positive = f"level >= {j} AND d{j} > 0"
            out.append(f"avgOrNullIf(d{j}, {positive}) AS avg{j}")
            values = f"arraySort(groupArrayIf(assumeNotNull(d{j}), {positive}))"
            position = f"({half} * (length(v{j}) - 1))"
            low = f"v{j}[toUInt64(floor({position})) + 1]"
            high = f"v{j}[toUInt64(ceil({position})) + 1]"
            fraction = f"({position} - floor({position}))"
            out.append(f"if(empty({values} AS v{j}), NULL, {low} + ({high} - {low}) * {fraction}) AS med{j}")
        return out

    def steps(self, actors: str) -> str:
        plan, st = self.plan, self.st
        if plan.breakdown is None:
            return f"SELECT {', '.join(self.aggregates())} FROM ({actors})"
        counts = ", ".join(f"countIf(level >= {j}) DESC" for j in range(plan.n - 1, -1, -1))
        ranks = (
            f"SELECT bd, row_number() OVER (ORDER BY {counts}, bd ASC) AS rank FROM ({actors}) GROUP BY bd"
        )
        limit, other = st.bind(plan.breakdown.limit, "Int64"), st.bind(OTHER, "String")
        labelled = (
            f"SELECT a.*, if(r.rank <= {limit}, a.bd, {other}) AS label, r.rank > {limit} AS is_other, "
            f"r.rank AS value_rank FROM ({actors}) AS a INNER JOIN ({ranks}) AS r ON a.bd = r.bd"
        )
        columns = ["label", "max(is_other) AS other", "min(value_rank) AS rank", *self.aggregates()]
        return f"SELECT {', '.join(columns)} FROM ({labelled}) GROUP BY label, is_other"

    def ttc(self, actors: str, low: int, high: int) -> str:
        total = " + ".join(f"coalesce(d{j}, 0.)" for j in range(low + 1, high + 1)) or "0."
        return f"SELECT toFloat64({total}) AS seconds FROM ({actors}) WHERE level >= {high}"

    def trends(self, low: int, high: int) -> str:
        plan = self.plan
        rows, _, _ = self.layers(bucket=True)
        pairs = ", ".join(f"(r{j}, {j})" for j in range(plan.n))
        reach = (
            f"SELECT actor, pair.1 AS start, max(pair.2) AS level FROM ({rows}) ARRAY JOIN [{pairs}] AS pair "
            "WHERE pair.1 IS NOT NULL GROUP BY actor, start"
        )
        starts = f"SELECT actor, r0 AS start, bucket FROM ({rows}) WHERE r0 IS NOT NULL"
        entries = (
            f"SELECT s.actor AS actor, s.bucket AS bucket, max(p.level) AS level FROM ({starts}) AS s "
            f"INNER JOIN ({reach}) AS p ON s.actor = p.actor AND s.start = p.start GROUP BY actor, bucket"
        )
        return (
            f"SELECT bucket, toInt64(countIf(level >= {low})) AS reached_from, "
            f"toInt64(countIf(level >= {high})) AS reached_to FROM ({entries}) GROUP BY bucket"
        )

    def source(self) -> str:
        events = f"{self.st.database}.events AS e"
        if not self.st.persons:
            return events
        return (
            f"{events} LEFT JOIN (SELECT distinct_id, argMax(properties, version) AS properties "
            f"FROM {self.st.database}.person WHERE team_id = {self.st.team(self.plan.team_id)} "
            "GROUP BY distinct_id) AS pp ON pp.distinct_id = e.distinct_id"
        )


def funnel_sql(
    plan: FunnelPlan, period: ResolvedRange, database: str, viz: str, low: int, high: int
) -> Statement:
    """The statement of `viz` (steps, trends or time_to_convert); `low` and `high`: the steps trends and
    time to convert look at."""
    compiler = _Compiler(plan, period, database)
    if viz == "trends":
        sql = compiler.trends(low, high)
    else:
        actors = compiler.unordered_actors() if plan.order == "unordered" else compiler.ordered_actors()
        sql = compiler.ttc(actors, low, high) if viz == "time_to_convert" else compiler.steps(actors)
    compiler.st.sql = sql.replace("{source}", compiler.source())
    return compiler.st
