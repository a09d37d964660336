"""A RetentionQuery plan (`app.query.retention_sql.RetentionPlan`) as one ClickHouse statement.

(`app.clickhouse.retention` is the deletion of old events, `tilecast prune-events`.) The statement answers
what `retention_sql.retention_statement` does on PostgreSQL, column for column: `breakdown` and `rank` (with
a breakdown), `cohort`, `offset`, `value`; the engine fills the matrix from them. Filters, properties and
buckets are compiled as for trends (`app.clickhouse.trends`: PostgreSQL's `->>` reading of JSON values, local
wall-clock buckets, the team's week start). Where the two databases differ:

- periods between two period starts: PostgreSQL subtracts dates and timestamps; here `dateDiff` on the naive
  local starts (held as UTC values), calendar months from year and month, weeks as whole days / 7;
- breakdown ranks break ties by value in byte order (PostgreSQL's `COLLATE "C"`), as ClickHouse sorts
  strings;
- first-ever occurrence: PostgreSQL keeps each actor's first start event (`DISTINCT ON`); here `argMin` of
  whether it matches the entity's filters, by timestamp;
- ClickHouse joins on equalities only: a return's later period is a `WHERE` after the join on the actor.
"""

from app.clickhouse.kinds import periods_between
from app.clickhouse.trends import (
    _TIMESTAMP,
    Statement,
    _all,
    _utc,
    bucket_expr,
    node_condition,
    where_condition,
)
from app.query.retention_sql import OTHER_LABEL, RetentionPlan
from app.query.trends_sql import FilterNode


def _local(st: Statement, column: str, tz: str) -> str:
    """A timestamp's local wall-clock time as a UTC DateTime64 (PostgreSQL's `AT TIME ZONE tz`)."""
    if tz == "UTC":
        return column
    return f"addSeconds({column}, timeZoneOffset(toTimeZone({column}, {st.bind(tz, 'String')})))"


def _bucket(st: Statement, plan: RetentionPlan, column: str) -> str:
    # Hours as DateTime, the others as Date: both come back as the engine's naive datetimes (`backend`).
    return bucket_expr(plan.interval, _local(st, column, plan.tz), plan.week_start)


def _own(st: Statement, nodes: tuple[FilterNode, ...]) -> str:
    return _all([node_condition(st, node) for node in nodes])


def _breakdown(st: Statement, plan: RetentionPlan) -> str:
    """The value as `kinds_sql.breakdown_text` gives it: a null or missing property is ""."""
    assert plan.breakdown is not None
    bd = plan.breakdown
    text = st.text(bd.key, bd.kind)
    if not bd.normalize_url:
        return f"coalesce({text}, '')"
    trimmed = f"replaceRegexpOne({text}, {st.bind(r'[/?#]+$', 'String')}, '')"
    return f"coalesce(nullIf({trimmed}, ''), nullIf({text}, {trimmed}), '')"


def retention_sql(plan: RetentionPlan, database: str) -> Statement:
    assert plan.filters is not None
    st = Statement(database)
    team = f"e.team_id = {st.team(plan.team_id)}"
    start, end = st.bind(_utc(plan.start), _TIMESTAMP), st.bind(_utc(plan.end), _TIMESTAMP)
    in_range = f"e.timestamp >= {start} AND e.timestamp < {end}"
    global_ = where_condition(st, plan.filters.global_)

    def event_is(event: str | None) -> list[str]:
        return [] if event is None else [f"e.event = {st.bind(event, 'String')}"]

    target = _own(st, plan.filters.target)
    returning = _own(st, plan.filters.returning)
    bd = [f"{_breakdown(st, plan)} AS breakdown"] if plan.breakdown is not None else []
    keys = ["actor", *(["breakdown"] if bd else [])]
    base = [team, *event_is(plan.target_event), global_]
    # The person join is decided once every expression that reads persons has been compiled.
    source = "{source}"
    if plan.retention_type == "retention_recurring":
        where = " AND ".join([*base, target, in_range])
        columns = ", ".join(["e.distinct_id AS actor", *bd, f"{_bucket(st, plan, 'e.timestamp')} AS cohort"])
        starts = f"SELECT DISTINCT {columns} FROM {source} WHERE {where}"
    else:
        if plan.retention_type == "retention_first_time":
            where = " AND ".join([*base, target])
            firsts = (
                f"SELECT {', '.join(['e.distinct_id AS actor', *bd])}, min(e.timestamp) AS first, "
                f"true AS matches FROM {source} WHERE {where} GROUP BY {', '.join(keys)}"
            )
        else:
            where = " AND ".join(base)
            firsts = (
                f"SELECT {', '.join(['e.distinct_id AS actor', *bd])}, min(e.timestamp) AS first, "
                f"argMin({target}, e.timestamp) AS matches FROM {source} WHERE {where} "
                f"GROUP BY {', '.join(keys)}"
            )
        starts = (
            f"SELECT {', '.join(keys)}, {_bucket(st, plan, 'first')} AS cohort FROM ({firsts}) "
            f"WHERE first >= {start} AND first < {end} AND matches"
        )

    period = _bucket(st, plan, "e.timestamp")
    return_where = " AND ".join([team, *event_is(plan.return_event), returning, global_, in_range])
    having = f" HAVING count() >= {st.bind(plan.minimum, 'Int64')}" if plan.minimum > 1 else ""
    if plan.breakdown is None:
        cohorts = f"({starts})"
        group_keys: list[str] = []
        returns = (
            f"SELECT e.distinct_id AS actor, {period} AS period FROM {source} WHERE {return_where} "
            f"GROUP BY actor, period{having}"
        )
    else:
        ranks = (
            "SELECT breakdown, toInt64(row_number() OVER (ORDER BY count() DESC, breakdown ASC)) AS rank "
            "FROM starts GROUP BY breakdown"
        )
        limit = st.bind(plan.breakdown.limit, "Int64")
        other = st.bind(OTHER_LABEL, "String")
        cohorts = (
            f"(SELECT DISTINCT s.actor AS actor, if(r.rank <= {limit}, s.breakdown, {other}) AS breakdown, "
            f"toInt64(if(r.rank <= {limit}, toInt64(r.rank), {limit} + 1)) AS rank, s.cohort AS cohort "
            f"FROM starts AS s INNER JOIN ranks AS r ON r.breakdown = s.breakdown)"
        )
        group_keys = ["breakdown", "rank"]
        # A return event's value must be one of the start events' values: the join drops the others.
        values = (
            f"SELECT e.distinct_id AS actor, {bd[0]}, {period} AS period FROM {source} WHERE {return_where}"
        )
        returns = (
            f"SELECT v.actor AS actor, if(r.rank <= {limit}, v.breakdown, {other}) AS breakdown, "
            f"v.period AS period FROM ({values}) AS v INNER JOIN ranks AS r ON r.breakdown = v.breakdown "
            f"GROUP BY actor, breakdown, period{having}"
        )
    if plan.returns_are_starts and plan.breakdown is None:
        returns = "SELECT actor, cohort AS period FROM starts"
    on = " AND ".join(f"c.{key} = ret.{key}" for key in ["actor", *group_keys[:1]])
    group = [*(f"c.{key}" for key in group_keys), "c.cohort"]
    names = [*group_keys, "cohort"]
    offset = periods_between("ret.period", "c.cohort", plan.interval)
    last = st.bind(plan.intervals - 1, "Int64")
    joined = f"{cohorts} AS c INNER JOIN returns AS ret ON {on} WHERE ret.period > c.cohort"
    if plan.cumulative:
        per_actor = (
            f"SELECT {', '.join(f'{g} AS {n}' for g, n in zip(group, names, strict=True))}, "
            f"least(max({offset}), {last}) AS off FROM {joined} GROUP BY c.actor, {', '.join(group)}"
        )
        cells = (
            f"SELECT {', '.join(names)}, off, count() AS value FROM ({per_actor}) "
            f"GROUP BY {', '.join(names)}, off"
        )
    else:
        cells = (
            f"SELECT {', '.join(f'{g} AS {n}' for g, n in zip(group, names, strict=True))}, "
            f"{offset} AS off, count() AS value FROM {joined} AND {offset} <= {last} "
            f"GROUP BY {', '.join(group)}, off"
        )
    sizes = (
        f"SELECT {', '.join(names)}, 0 AS off, count() AS value FROM {cohorts} GROUP BY {', '.join(names)}"
    )
    ctes = [f"starts AS ({starts})"]
    if plan.breakdown is not None:
        ctes.append(f"ranks AS ({ranks})")
    ctes.append(f"returns AS ({returns})")
    body = (
        f"WITH {', '.join(ctes)} SELECT {', '.join(names)}, toInt64(off) AS off, toInt64(value) AS value "
        f"FROM ({sizes} UNION ALL {cells})"
    )
    st.sql = body.replace("{source}", _source(st, plan))
    return st


def _source(st: Statement, plan: RetentionPlan) -> str:
    events = f"{st.database}.events AS e"
    if not st.persons:
        return events
    return (
        f"{events} LEFT JOIN (SELECT distinct_id, argMax(properties, version) AS properties "
        f"FROM {st.database}.person WHERE team_id = {st.team(plan.team_id)} GROUP BY distinct_id) AS pp "
        "ON pp.distinct_id = e.distinct_id"
    )
