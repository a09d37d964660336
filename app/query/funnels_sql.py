"""FunnelsQuery statements: each actor's path through the steps, computed in PostgreSQL with window functions.

The events a funnel reads (`base`) carry one boolean per step (`s0` … `s{n-1}`) and per exclusion, ordered per
actor by (timestamp, the lowest step they match, uuid): events at the same instant are taken in step order,
so A and B at one timestamp count as A → B.

**Ordered and strict funnels** (`ordered_actors`) follow PostHog's matching, one window pass per step:
`r0` is the timestamp of a step-1 event (a start). For step j ≥ 1, `prev` is the latest start that reached
step j-1 on an earlier event (a running max: a newer start replaces an older one, so a conversion is credited
to the latest possible start); an event matching step j within the window of `prev` (inclusive) gives
`rj = prev`: that start reached step j there. An event never fills two steps of one attempt, since `prev`
only looks at earlier events. Strict funnels look at the previous event alone (`lag`): any other event in
between breaks the path. An exclusion event between steps j-1 and j, within the window of the attempt that
reached j-1 (`prev`), marks that attempt: it no longer advances to j (`kill`). If a marked attempt would have
gone further than any unmarked one, the actor is dropped from the funnel (`xlevel > level`).

Per actor: `level` is the furthest step reached; the credited path is the first attempt to reach it (the
smallest start of that step, `sstar`), and its time at step j is the first event where `rj = sstar`.

**Unordered funnels** (`unordered_actors`): from each event, the next event of every step (a min over the
following events); the steps whose next event lies within the window are completed together; the best
event (most steps, then earliest) is the actor's, with the gaps between the sorted first times of its steps.

`steps_statement` then aggregates per breakdown value (ranked by the count at the last step, then the previous
ones; past `limit` merged into "Other"): counts per step, mean and median of the non-zero conversion times.
"""

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import (
    ARRAY,
    ColumnElement,
    DateTime,
    Float,
    Integer,
    Interval,
    Select,
    Subquery,
    Text,
    and_,
    case,
    cast,
    func,
    literal,
    literal_column,
    null,
    or_,
    select,
    true,
    union,
)
from sqlalchemy.dialects.postgresql import aggregate_order_by, array

from app.query.dates import ResolvedRange
from app.query.filters import EVENTS, EVENTS_AND_PERSONS, property_text
from app.query.trends_sql import FilterNode, SeriesFilters, bucket_expr

OTHER = "Other"
# Bind parameters of a funnel statement besides its filters': team, dates, window, names, limit, … (per step).
STATEMENT_PARAMETERS = 40
STEP_PARAMETERS = 6


@dataclass(frozen=True)
class FunnelStep:
    event: str | None  # None: any event
    where: ColumnElement[bool]  # the step's own property filters
    nodes: tuple[FilterNode, ...] = ()  # the same, as the query states them (for ClickHouse)


@dataclass(frozen=True)
class FunnelExclusion:
    event: str | None
    where: ColumnElement[bool]
    from_step: int
    to_step: int
    nodes: tuple[FilterNode, ...] = ()


@dataclass(frozen=True)
class FunnelBreakdown:
    key: str
    kind: str  # "event" or "person"
    attribution: str  # first_touch, last_touch, all_events, step
    step: int  # the step of `step` attribution
    limit: int
    normalize_url: bool


@dataclass(frozen=True)
class FunnelPlan:
    team_id: int
    steps: tuple[FunnelStep, ...]
    exclusions: tuple[FunnelExclusion, ...]
    order: str  # ordered, strict, unordered
    window: timedelta
    where: ColumnElement[bool]  # global filters (properties, test accounts)
    breakdown: FunnelBreakdown | None
    filters: SeriesFilters | None = None  # `where` as the query states it (for ClickHouse)

    @property
    def n(self) -> int:
        return len(self.steps)


def _match(event: str | None, where: ColumnElement[bool]) -> ColumnElement[bool]:
    if event is None:
        return where
    return and_(EVENTS.c.event == literal(event), where)


def _breakdown_value(breakdown: FunnelBreakdown) -> ColumnElement[str]:
    """`ifNull(toString(prop), '')`, trailing `/?#` stripped with `breakdown_normalize_url`."""
    value: ColumnElement[str] = property_text(breakdown.key, breakdown.kind)
    if breakdown.normalize_url:
        trimmed = func.regexp_replace(value, literal(r"[/?#]+$"), literal(""))
        value = case((and_(value.is_not(None), trimmed == literal("")), literal("/")), else_=trimmed)
    return func.coalesce(value, literal(""))


def base_rows(plan: FunnelPlan, period: ResolvedRange, *, bucket: bool = False) -> Subquery:
    """The events the funnel reads, each with its step and exclusion flags (`s{j}`, `x{i}`), `ord` (the lowest
    step it matches, -1 for exclusions, so that same-instant events are taken in step order) and the
    breakdown value `bd`."""
    flags = [_match(step.event, step.where).label(f"s{j}") for j, step in enumerate(plan.steps)]
    excl = [_match(x.event, x.where).label(f"x{i}") for i, x in enumerate(plan.exclusions)]
    whens: list[tuple[ColumnElement[bool], ColumnElement[int]]] = [
        (_match(x.event, x.where), literal(-1)) for x in plan.exclusions
    ]
    whens += [(_match(step.event, step.where), literal(j)) for j, step in enumerate(plan.steps)]
    columns: list[Any] = [
        EVENTS.c.distinct_id.label("actor"),
        EVENTS.c.timestamp.label("ts"),
        EVENTS.c.uuid.label("uuid"),
        case(*whens, else_=literal(plan.n)).label("ord"),
        *flags,
        *excl,
    ]
    if plan.breakdown is not None:
        columns.append(_breakdown_value(plan.breakdown).label("bd"))
    if bucket:
        columns.append(bucket_expr(period.interval, period.tz.key, period.week_start).label("bucket"))
    conditions: list[ColumnElement[bool]] = [
        EVENTS.c.team_id == plan.team_id,
        EVENTS.c.timestamp >= period.start,
        EVENTS.c.timestamp <= period.date_to,
        plan.where,
    ]
    names = [s.event for s in plan.steps] + [x.event for x in plan.exclusions]
    if plan.order != "strict" and None not in names:
        # Only events of the steps' and exclusions' names can match (strict funnels read every event: any
        # other event breaks a path).
        unique = sorted({name for name in names if name is not None})
        conditions.append(EVENTS.c.event == func.any(literal(unique, ARRAY(Text))))
    # OFFSET 0 keeps PostgreSQL from merging this into the windows above: the sort then carries the flags
    # instead of each event's name, and the later passes read the flags instead of comparing names again.
    statement = (
        select(*columns).select_from(EVENTS_AND_PERSONS).where(*conditions).offset(literal_column("0"))
    )
    return statement.subquery("base")


def _expand_step_attribution(plan: FunnelPlan, base: Subquery) -> tuple[Subquery, list[str]]:
    """`step` attribution: one copy of the actor's events per value seen on their step-k events (or "" when
    they have none), where step k only matches events carrying that value."""
    assert plan.breakdown is not None
    k = plan.breakdown.step
    seen = select(base.c.actor, base.c.bd.label("cand")).where(base.c[f"s{k}"]).distinct()
    none = (
        select(base.c.actor, literal("").label("cand"))
        .group_by(base.c.actor)
        .having(func.bool_or(base.c[f"s{k}"]).is_not(true()))
    )
    candidates = union(seen, none).subquery("candidates")
    columns: list[Any] = []
    for column in base.c:
        if column.name == f"s{k}":
            columns.append(and_(column, base.c.bd == candidates.c.cand).label(column.name))
        elif column.name == "bd":
            columns.append(candidates.c.cand.label("bd"))
        else:
            columns.append(column)
    expanded = select(*columns).join_from(base, candidates, base.c.actor == candidates.c.actor)
    return expanded.subquery("expanded"), ["actor", "bd"]


def _partition(plan: FunnelPlan, base: Subquery) -> tuple[Subquery, list[str]]:
    breakdown = plan.breakdown
    if breakdown is None or breakdown.attribution in ("first_touch", "last_touch"):
        return base, ["actor"]
    if breakdown.attribution == "all_events":
        return base, ["actor", "bd"]
    return _expand_step_attribution(plan, base)


def _window(table: Subquery, keys: list[str], rows: tuple[int | None, int | None] | None) -> dict[str, Any]:
    # Byte order ("C") sorts faster than a linguistic collation; any order groups an actor's events.
    partition = [table.c[key].collate("C") for key in keys]
    order = [table.c.ts, table.c.ord, table.c.uuid]
    return {"partition_by": partition, "order_by": order, **({"rows": rows} if rows else {})}


def _actor_value(plan: FunnelPlan, rows: Subquery) -> list[Any]:
    """The breakdown value of an actor's group: first/last non-empty value on their events, or the key."""
    breakdown = plan.breakdown
    if breakdown is None:
        return []
    if breakdown.attribution in ("first_touch", "last_touch"):
        order: list[Any] = [rows.c.ts, rows.c.ord, rows.c.uuid]
        if breakdown.attribution == "last_touch":
            order = [column.desc() for column in order]
        firsts = func.array_agg(aggregate_order_by(rows.c.bd, *order)).filter(rows.c.bd != literal(""))
        return [func.coalesce(firsts[1], literal("")).label("bd")]
    return [rows.c.bd.label("bd")]


def ordered_layers(
    plan: FunnelPlan, period: ResolvedRange, *, bucket: bool = False
) -> tuple[Subquery, list[str]]:
    """The events with `r{j}` (the start that reached step j on that event), `k{j}` (an excluded attempt
    would have reached step j there) and `sstar` (the credited start of the actor's furthest step)."""
    base, keys = _partition(plan, base_rows(plan, period, bucket=bucket))
    window = literal(plan.window, Interval())
    current = select(*base.c, case((base.c.s0, base.c.ts), else_=null()).label("r0")).subquery("l0")
    # Of a run of consecutive events that match the first step and nothing else, only the last one matters
    # (it is the latest start for what follows; the others reach nothing further): the first window pass
    # marks the others (`drop`) and the later passes skip them. Not when every event counts: funnel trends
    # (each start makes an entry) and first/last touch breakdowns (the value may be on any event).
    others = [base.c[f"s{j}"] for j in range(1, plan.n)] + [
        base.c[f"x{i}"] for i in range(len(plan.exclusions))
    ]
    collapse = not bucket and (plan.breakdown is None or plan.breakdown.attribution in ("all_events", "step"))
    only_first = and_(current.c.s0, *(~current.c[column.name] for column in others))
    kills: list[str] = []
    for j in range(1, plan.n):
        if j == 2 and collapse:
            kept = [column for column in current.c if column.name != "drop"]
            current = select(*kept).where(current.c.drop.is_not(true())).subquery("collapsed")
        reached = current.c[f"r{j - 1}"]
        spec = _window(current, keys, None if plan.order == "strict" else (None, -1))
        if plan.order == "strict":
            prev = func.lag(reached).over(**spec)
        else:
            prev = func.max(reached).over(**spec)
        # The same window as `prev` (lead ignores the frame): one pass computes both.
        drop = (
            [and_(only_first, func.lead(only_first).over(**spec)).label("drop")]
            if j == 1 and collapse
            else []
        )
        exclusions = [
            current.c[f"x{i}"]
            for i, x in enumerate(plan.exclusions)
            if x.from_step <= j - 1 < x.to_step and plan.order != "strict"
        ]
        if exclusions:
            # Marked attempts, as of each event: the attempt an exclusion event found at step j-1.
            with_prev = select(*current.c, prev.label("prev"), *drop).subquery(f"p{j}")
            hit = and_(
                or_(*(with_prev.c[x.name] for x in exclusions)), with_prev.c.ts <= with_prev.c.prev + window
            )
            killed = func.max(case((hit, with_prev.c.prev), else_=null())).over(
                **_window(with_prev, keys, (None, 0))
            )
            marked = select(*with_prev.c, killed.label("killed")).subquery(f"m{j}")
            prev_col: Any = marked.c.prev
            advances = and_(marked.c[f"s{j}"], marked.c.ts <= prev_col + window)
            alive = or_(marked.c.killed.is_(None), marked.c.killed < prev_col)
            carried = [c for c in marked.c if c.name not in ("prev", "killed")]
            current = select(
                *carried,
                case((and_(advances, alive), prev_col), else_=null()).label(f"r{j}"),
                and_(advances, marked.c.killed == prev_col).label(f"k{j}"),
            ).subquery(f"l{j}")
            kills.append(f"k{j}")
        else:
            advances = and_(current.c[f"s{j}"], current.c.ts <= prev + window)
            reach = case((advances, prev), else_=null()).label(f"r{j}")
            current = select(*current.c, reach, *drop).subquery(f"l{j}")
    if plan.n == 2 and collapse:
        kept = [column for column in current.c if column.name != "drop"]
        current = select(*kept).where(current.c.drop.is_not(true())).subquery("collapsed")
    partition = [current.c[key].collate("C") for key in keys]
    sstar = func.coalesce(
        *(func.min(current.c[f"r{j}"]).over(partition_by=partition) for j in range(plan.n - 1, 0, -1))
    )
    final = select(*current.c, sstar.label("sstar")).subquery("paths")
    return final, keys + kills


def _level(rows: Subquery, n: int, prefix: str, lowest: int) -> ColumnElement[int]:
    """The highest step j (≥ lowest) whose column is set on this row, else NULL."""
    whens = []
    for j in range(n - 1, lowest - 1, -1):
        column = rows.c[f"{prefix}{j}"]
        whens.append((column if prefix == "k" else column.is_not(None), literal(j)))
    return case(*whens, else_=null())


def ordered_actors(plan: FunnelPlan, period: ResolvedRange) -> Subquery:
    """One row per actor (and breakdown value): `bd`, `level` (0-based furthest step), `t{j}` the time of the
    credited path at step j, `d{j}` the conversion time into step j in seconds."""
    rows, keys = ordered_layers(plan, period)
    # In byte order, as the windows sorted them: the rows arrive grouped already.
    actor = rows.c.actor.collate("C")
    group_keys = [actor, *(rows.c.bd for key in keys if key == "bd")]
    kill_columns = [key for key in keys if key.startswith("k")]
    level = func.max(_level(rows, plan.n, "r", 0))
    times = [func.max(rows.c.sstar).label("t0")] + [
        func.min(rows.c.ts).filter(rows.c[f"r{j}"] == rows.c.sstar).label(f"t{j}") for j in range(1, plan.n)
    ]
    columns: list[Any] = [actor.label("actor"), *_actor_value(plan, rows), level.label("level"), *times]
    grouped = select(*columns).group_by(*group_keys)
    if kill_columns:
        kill_levels = [case((rows.c[name], literal(int(name[1:]))), else_=null()) for name in kill_columns]
        xlevel = func.max(func.greatest(*kill_levels) if len(kill_levels) > 1 else kill_levels[0])
        grouped = grouped.having(or_(xlevel.is_(None), xlevel <= level))
    per = grouped.subquery("per_actor")
    durations = [
        case(
            (per.c.level >= j, func.extract("epoch", per.c[f"t{j}"] - per.c[f"t{j - 1}"])), else_=null()
        ).label(f"d{j}")
        for j in range(1, plan.n)
    ]
    extra = [per.c.bd] if plan.breakdown is not None else []
    return (
        select(*extra, per.c.level, *(per.c[f"t{j}"] for j in range(plan.n)), *durations)
        .where(per.c.level.is_not(None))
        .subquery("actors")
    )


def unordered_actors(plan: FunnelPlan, period: ResolvedRange) -> Subquery:
    """Unordered funnels: see the module's docstring. Same columns as `ordered_actors` (no `t{j}`)."""
    base, keys = _partition(plan, base_rows(plan, period))
    window = literal(plan.window, Interval())
    following = _window(base, keys, (0, None))
    nexts = [
        func.min(case((base.c[f"s{j}"], base.c.ts), else_=null())).over(**following) for j in range(plan.n)
    ]
    in_window = [case((and_(nx.is_not(None), nx <= base.c.ts + window), nx), else_=null()) for nx in nexts]
    anchors = select(
        *(base.c[key] for key in keys),
        base.c.ts,
        base.c.ord,
        base.c.uuid,
        array(in_window).label("times"),
        sum_of([case((t.is_not(None), literal(1)), else_=literal(0)) for t in in_window]).label("done"),
    ).subquery("anchors")
    partition = [anchors.c[key].collate("C") for key in keys]
    pick = func.row_number().over(
        partition_by=partition,
        order_by=[anchors.c.done.desc(), anchors.c.ts, anchors.c.ord, anchors.c.uuid],
    )
    best = select(*anchors.c, pick.label("pick")).where(anchors.c.done > 0).subquery("best")
    chosen = select(*best.c).where(best.c.pick == 1).subquery("chosen")
    if plan.breakdown is not None and plan.breakdown.attribution in ("first_touch", "last_touch"):
        values = select(base.c.actor, *_actor_value(plan, base)).group_by(base.c.actor).subquery("values")
        chosen = (
            select(*(c for c in chosen.c if c.name != "bd"), values.c.bd)
            .join_from(chosen, values, chosen.c.actor == values.c.actor)
            .subquery("valued")
        )
    element = func.unnest(chosen.c.times).column_valued("t")
    ordered_times = func.array(
        select(element).where(element.is_not(None)).order_by(element).scalar_subquery(),
        type_=ARRAY(DateTime(timezone=True)),
    )
    sorted_ = select(*chosen.c, ordered_times.label("sorted")).subquery("sorted")
    durations = [
        case(
            (sorted_.c.done > j, func.extract("epoch", sorted_.c.sorted[j + 1] - sorted_.c.sorted[j])),
            else_=null(),
        ).label(f"d{j}")
        for j in range(1, plan.n)
    ]
    extra = [sorted_.c.bd] if plan.breakdown is not None else []
    return select(*extra, (sorted_.c.done - 1).label("level"), *durations).subquery("actors")


def sum_of(terms: list[ColumnElement[int]]) -> ColumnElement[int]:
    total = terms[0]
    for term in terms[1:]:
        total = total + term
    return total


def steps_statement(plan: FunnelPlan, actors: Subquery) -> Select[Any]:
    """Per breakdown value (`bd`, "Other" past the limit; none without a breakdown): `c{j}` actors at step j,
    `avg{j}` and `med{j}` of their non-zero conversion times into it."""
    n = plan.n

    def aggregates(table: Any) -> list[Any]:
        out: list[Any] = []
        for j in range(n):
            out.append(cast(func.count().filter(table.c.level >= j), Integer).label(f"c{j}"))
        for j in range(1, n):
            positive = and_(table.c.level >= j, table.c[f"d{j}"] > 0)
            out.append(cast(func.avg(table.c[f"d{j}"]).filter(positive), Float).label(f"avg{j}"))
            median = func.percentile_cont(literal(0.5, Float)).within_group(table.c[f"d{j}"]).filter(positive)
            out.append(cast(median, Float).label(f"med{j}"))
        return out

    if plan.breakdown is None:
        return select(*aggregates(actors))
    counts = [func.count().filter(actors.c.level >= j) for j in range(n - 1, -1, -1)]
    ranks = (
        select(
            actors.c.bd,
            func.row_number()
            .over(order_by=[*(c.desc() for c in counts), actors.c.bd.collate("C")])
            .label("rank"),
        )
        .group_by(actors.c.bd)
        .subquery("ranks")
    )
    label = case((ranks.c.rank <= literal(plan.breakdown.limit), actors.c.bd), else_=literal(OTHER))
    labelled = (
        select(
            *actors.c,
            label.label("label"),
            (ranks.c.rank > literal(plan.breakdown.limit)).label("other"),
            ranks.c.rank,
        )
        .join_from(actors, ranks, actors.c.bd == ranks.c.bd)
        .subquery("labelled")
    )
    return select(
        labelled.c.label.label("bd"),
        func.bool_or(labelled.c.other).label("other"),
        func.min(labelled.c.rank).label("rank"),
        *aggregates(labelled),
    ).group_by(labelled.c.label, labelled.c.other)


def ttc_statement(plan: FunnelPlan, actors: Subquery, from_step: int, to_step: int) -> Select[Any]:
    """The total conversion time from `from_step` to `to_step` of every actor who reached `to_step`."""
    total = sum_of(
        [func.coalesce(actors.c[f"d{j}"], literal(0.0)) for j in range(from_step + 1, to_step + 1)]
    )
    return select(cast(total, Float).label("seconds")).where(actors.c.level >= to_step)


def trends_statement(plan: FunnelPlan, period: ResolvedRange, from_step: int, to_step: int) -> Select[Any]:
    """Conversion per period: an actor enters in the period of a start; an entry reached `from_step` or
    `to_step` when one of its starts in that period did (within the window). Columns: `bucket`,
    `reached_from`, `reached_to`."""
    rows, keys = ordered_layers(plan, period, bucket=True)
    # The bucket of each start, from the row of the start itself.
    starts = select(rows.c.actor, rows.c.r0.label("start"), rows.c.bucket).where(rows.c.r0.is_not(None))
    starts_q = starts.subquery("starts")
    reach = select(
        rows.c.actor,
        func.unnest(array([rows.c[f"r{j}"] for j in range(plan.n)])).label("start"),
        func.unnest(array([literal(j) for j in range(plan.n)])).label("step"),
    ).subquery("reach")
    per_start = (
        select(reach.c.actor, reach.c.start, func.max(reach.c.step).label("level"))
        .where(reach.c.start.is_not(None))
        .group_by(reach.c.actor, reach.c.start)
        .subquery("per_start")
    )
    entries = (
        select(starts_q.c.actor, starts_q.c.bucket, func.max(per_start.c.level).label("level"))
        .join_from(
            starts_q,
            per_start,
            and_(starts_q.c.actor == per_start.c.actor, starts_q.c.start == per_start.c.start),
        )
        .group_by(starts_q.c.actor, starts_q.c.bucket)
        .subquery("entries")
    )
    del keys
    return select(
        entries.c.bucket,
        cast(func.count().filter(entries.c.level >= from_step), Integer).label("reached_from"),
        cast(func.count().filter(entries.c.level >= to_step), Integer).label("reached_to"),
    ).group_by(entries.c.bucket)
