"""One SQL statement per series and period (SQLAlchemy Core over `events`, bound parameters only).

The statement returns one row per bucket (time series) or one row (total value); with a breakdown, one row
per (bucket, breakdown value) where the values outside the top `limit` are already summed into the "other"
value, with each value's rank (B.5), all inside the same statement. Buckets are
`date_trunc(unit, timestamp AT TIME ZONE tz)`: naive local times, matching `dates.ResolvedRange.buckets`;
empty buckets are filled in Python.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ARRAY,
    BigInteger,
    ColumnElement,
    DateTime,
    Float,
    Interval,
    Select,
    Subquery,
    Text,
    and_,
    any_,
    case,
    cast,
    distinct,
    func,
    literal,
    or_,
    select,
)
from sqlalchemy.dialects.postgresql import array

from app.query.dates import ResolvedRange
from app.query.filters import (
    EVENTS,
    EVENTS_AND_PERSONS,
    as_float,
    node_condition,
    properties_condition,
    property_text,
)
from app.query.schema import PropertyFilter, PropertyGroupFilter, PropertyNode

NULL_LABEL = "$$_posthog_breakdown_null_$$"
OTHER_LABEL = "$$_posthog_breakdown_other_$$"
# breakdown_normalize_url: trailing "/", "?" and "#" are not part of the page.
_URL_TRAILER = r"[/?#]+$"
# Maths that count distinct values (actors, sessions, property values) per bucket.
UNIQUES = ("dau", "unique_session", "unique_property")
ACTIVE_WINDOWS = {"weekly_active": timedelta(days=7), "monthly_active": timedelta(days=30)}
# Bind parameters of a series statement besides its filters' (team, event, dates, buckets, breakdown, math):
# an upper bound over every shape below, which the parameter limit adds to the filters' own.
STATEMENT_PARAMETERS = 40


@dataclass(frozen=True)
class Breakdown:
    key: str
    limit: int
    normalize_url: bool
    kind: str = "event"  # or "person": the distinct id's current property


FilterNode = PropertyGroupFilter | PropertyFilter


@dataclass(frozen=True, eq=False)
class SeriesFilters:
    """The filters a series' events must match, as the query states them: each backend compiles them to its
    own SQL (`where_condition` here for PostgreSQL)."""

    properties: list[PropertyNode] | PropertyGroupFilter | None  # the query's own
    test_accounts: tuple[FilterNode, ...]  # the team's test-account filters, with `filterTestAccounts`
    own: tuple[FilterNode, ...]  # the series' own (an EventsNode's or a GroupNode's), ANDed
    # A group whose nodes have filters of their own: an event matches one of its (event, filters) nodes.
    alternatives: tuple[tuple[str | None, tuple[FilterNode, ...]], ...] | None = None


def where_condition(filters: SeriesFilters) -> ColumnElement[bool]:
    """The filters as one PostgreSQL condition."""
    condition = properties_condition(filters.properties)
    if filters.test_accounts:
        condition = and_(condition, *(node_condition(node) for node in filters.test_accounts))
    own = [node_condition(node) for node in filters.own]
    if filters.alternatives is not None:
        own.append(
            or_(
                *(
                    and_(EVENTS.c.event == event, *(node_condition(node) for node in nodes))
                    for event, nodes in filters.alternatives
                )
            )
        )
    return and_(condition, *own)


@dataclass(frozen=True)
class SeriesPlan:
    """What one series computes, with the query's filters already folded into `where`."""

    team_id: int
    events: tuple[str, ...] | None  # the events the series reads (its own filters are in `where`); None: all
    # total, dau, weekly_active, monthly_active, unique_session, unique_property (distinct values of
    # `distinct_property`, for `math: "hogql"`) or a property math
    math: str
    math_property: str | None
    quantile: float | None  # median/pN
    filters: SeriesFilters
    breakdown: Breakdown | None
    total_value: bool
    first_bucket_only: bool  # cumulative dau: an actor counts once, in its first bucket
    distinct_property: str | None = None

    @property
    def counts(self) -> bool:
        """Integers (counts of events, actors or sessions), as opposed to property math floats."""
        return self.math_property is None


def _local(tz: str) -> ColumnElement[datetime]:
    return func.timezone(literal(tz), EVENTS.c.timestamp, type_=DateTime())


def bucket_expr(interval: str, tz: str, week_start: int = 0) -> ColumnElement[datetime]:
    """The local start of each event's bucket (`date_trunc` weeks start on Monday: `week_start` 1)."""
    local = _local(tz)
    if interval == "week" and week_start != 1:
        # date_trunc weeks start on Monday; shifting by a day makes them start on Sunday.
        one_day = literal(timedelta(days=1), Interval())
        shifted = func.date_trunc(literal("week"), local + one_day, type_=DateTime())
        return shifted - one_day
    return func.date_trunc(literal(interval), local, type_=DateTime())


def _breakdown_value(breakdown: Breakdown) -> ColumnElement[str]:
    """The property as text; NULL and "" become the null label (B.5)."""
    value: ColumnElement[str] = func.nullif(property_text(breakdown.key, breakdown.kind), literal(""))
    if breakdown.normalize_url:
        trimmed = func.regexp_replace(value, literal(_URL_TRAILER), literal(""))
        value = func.coalesce(func.nullif(trimmed, literal("")), case((value.is_not(None), literal("/"))))
    return func.coalesce(value, literal(NULL_LABEL))


def _conditions(plan: SeriesPlan, lower: ColumnElement[bool], upper: datetime) -> list[ColumnElement[bool]]:
    where = where_condition(plan.filters)
    conditions = [EVENTS.c.team_id == plan.team_id, lower, EVENTS.c.timestamp <= upper, where]
    if plan.events is not None and len(plan.events) == 1:
        conditions.append(EVENTS.c.event == plan.events[0])
    elif plan.events is not None:
        conditions.append(EVENTS.c.event == any_(literal(list(plan.events), ARRAY(Text))))
    if plan.distinct_property is not None:
        # As count(DISTINCT …): events without the property are not a value.
        conditions.append(property_text(plan.distinct_property).is_not(None))
    return conditions


def _aggregate(plan: SeriesPlan, rows: Subquery) -> ColumnElement[Any]:
    if plan.math in ("total", *UNIQUES):
        return func.count()  # uniques: the rows are already distinct (see series_statement)
    value = rows.c.value
    aggregate: ColumnElement[Any]
    if plan.quantile is not None:
        aggregate = func.percentile_cont(literal(plan.quantile, Float)).within_group(value)
    else:
        aggregate = getattr(func, plan.math)(value)
    # Buckets without a numeric value show 0, not null (B.4).
    return func.coalesce(aggregate, literal(0.0, Float))


def _event_columns(plan: SeriesPlan) -> list[ColumnElement[Any]]:
    """What the aggregate reads from each event."""
    if plan.math in ("dau", "weekly_active", "monthly_active"):
        return [EVENTS.c.distinct_id.label("actor")]
    if plan.math == "unique_session":
        # Events without a session id share one empty value (B.4).
        return [func.coalesce(property_text("$session_id"), literal("")).label("session")]
    if plan.distinct_property is not None:
        return [property_text(plan.distinct_property).label("distinct_value")]
    if plan.math_property is not None:
        return [as_float(property_text(plan.math_property)).label("value")]
    return []


def series_statement(plan: SeriesPlan, period: ResolvedRange) -> Select[Any]:
    """The statement of one series over one period. Columns: `bucket` (time series only), `breakdown` and
    `rank` (breakdown only), `value`."""
    tz = period.tz.key
    breakdown_cols = [] if plan.breakdown is None else [_breakdown_value(plan.breakdown).label("breakdown")]

    if plan.math in ACTIVE_WINDOWS:
        per = _active_users(plan, period, breakdown_cols)
    else:
        lower = EVENTS.c.timestamp >= period.start
        bucket_cols = (
            [] if plan.total_value else [bucket_expr(period.interval, tz, period.week_start).label("bucket")]
        )
        matching = (
            select(*bucket_cols, *breakdown_cols, *_event_columns(plan))
            .select_from(EVENTS_AND_PERSONS)
            .where(*_conditions(plan, lower, period.date_to))
        )
        if plan.math in UNIQUES and not plan.first_bucket_only:
            # Distinct (bucket, actor) rows then count(*): a hash aggregate, where count(DISTINCT) sorts.
            matching = matching.distinct()
        rows = matching.subquery("matching")
        names = [*(["bucket"] if bucket_cols else []), *(["breakdown"] if breakdown_cols else [])]
        keys = [rows.c[name] for name in names]
        if plan.first_bucket_only:
            firsts = (
                select(func.min(rows.c.bucket).label("bucket"), *keys[1:])
                .group_by(rows.c.actor, *keys[1:])
                .subquery("firsts")
            )
            keys = [firsts.c[name] for name in names]
            per = select(*keys, func.count().label("value")).group_by(*keys)
        else:
            # select_from: a total-value count has no column of `matching` to infer it from.
            per = select(*keys, _aggregate(plan, rows).label("value")).select_from(rows).group_by(*keys)

    if plan.breakdown is None:
        return per
    return _rank_breakdown(per, plan)


def _active_users(plan: SeriesPlan, period: ResolvedRange, breakdown_cols: list[Any]) -> Select[Any]:
    """Weekly/monthly active users (B.4). Total value: distinct actors in (date_to - window, date_to].

    Time series: bucket D counts the actors with an event (floored to the day, or hour) t in
    (D - window, D], i.e. D in [t, t + window). Joining every event day to the buckets of its window would
    cost window/bucket rows per event day; instead each actor's spans are merged into runs, each run adds
    +1 where it starts and -1 where it ends, and a running sum of those changes is the number of active
    actors at any time: one sort of the events, whatever the window."""
    window = ACTIVE_WINDOWS[plan.math]
    if plan.total_value:
        lower = EVENTS.c.timestamp > period.date_to - window
        rows = (
            select(*breakdown_cols, EVENTS.c.distinct_id.label("actor"))
            .select_from(EVENTS_AND_PERSONS)
            .where(*_conditions(plan, lower, period.date_to))
            .subquery("matching")
        )
        keys = [rows.c.breakdown] if breakdown_cols else []
        return select(*keys, func.count(distinct(rows.c.actor)).label("value")).group_by(*keys)

    grid = "hour" if period.interval == "hour" else "day"
    buckets = period.buckets
    # The first bucket looks back one window: read those events too.
    earliest = period.aware(buckets[0] - window) if buckets else period.start
    window_param = literal(window, Interval())
    days = (
        select(
            func.date_trunc(literal(grid), _local(period.tz.key), type_=DateTime()).label("at"),
            EVENTS.c.distinct_id.label("actor"),
            *breakdown_cols,
        )
        .select_from(EVENTS_AND_PERSONS)
        .where(*_conditions(plan, EVENTS.c.timestamp >= earliest, period.date_to))
        .subquery("days")
    )

    def by(table: Any) -> list[Any]:
        return [table.c.breakdown] if breakdown_cols else []

    # An actor's spans [t, t + window) merge when they touch; a merged run starts at a day more than a window
    # after the previous one and ends a window after a day that is more than a window before the next.
    # Repeated days (several events) are a gap of 0: they neither start nor end a run.
    # Byte order ("C") sorts faster than a linguistic collation; any order groups an actor's days.
    actor = [*(column.collate("C") for column in by(days)), days.c.actor.collate("C")]
    previous_day = func.lag(days.c.at).over(partition_by=actor, order_by=days.c.at)
    next_day = func.lead(days.c.at).over(partition_by=actor, order_by=days.c.at)
    starts = case(
        (or_(previous_day.is_(None), days.c.at - previous_day > window_param), days.c.at), else_=None
    )
    ends = case(
        (or_(next_day.is_(None), next_day - days.c.at > window_param), days.c.at + window_param), else_=None
    )
    runs = select(*by(days), starts.label("starts"), ends.label("ends")).subquery("runs")
    # Both changes of an event day from one pass (two unnests in a select list run in step).
    changes = (
        select(
            *by(runs),
            func.unnest(array([runs.c.starts, runs.c.ends])).label("at"),
            func.unnest(array([literal(1), literal(-1)])).label("change"),
        )
        .where(or_(runs.c.starts.is_not(None), runs.c.ends.is_not(None)))
        .subquery("changes")
    )
    points = (
        select(*by(changes), changes.c.at, func.sum(changes.c.change).label("change"))
        .where(changes.c.at.is_not(None))
        .group_by(*by(changes), changes.c.at)
        .subquery("points")
    )
    partition = by(points) or None
    running = select(
        *by(points),
        points.c.at,
        func.sum(points.c.change).over(partition_by=partition, order_by=points.c.at).label("active"),
        func.lead(points.c.at).over(partition_by=partition, order_by=points.c.at).label("until"),
    ).subquery("running")
    # Each running total holds from its point until the next one: the buckets in between take it.
    bucket_list = select(func.unnest(literal(buckets, ARRAY(DateTime()))).label("bucket")).subquery("buckets")
    holds = and_(
        bucket_list.c.bucket >= running.c.at,
        or_(running.c.until.is_(None), bucket_list.c.bucket < running.c.until),
    )
    return (
        select(bucket_list.c.bucket, *by(running), cast(running.c.active, BigInteger).label("value"))
        .select_from(running.join(bucket_list, holds))
        .where(running.c.active > 0)
    )


def _rank_breakdown(per: Select[Any], plan: SeriesPlan) -> Select[Any]:
    """Rank breakdown values by their total over the range (sum of bucket values) descending, ties by value
    in byte order; values past `limit` become the "other" value, summed bucket by bucket (B.5)."""
    assert plan.breakdown is not None
    values = per.cte("per_breakdown")
    total = func.sum(values.c.value)
    ranks = (
        select(
            values.c.breakdown,
            func.row_number().over(order_by=(total.desc(), values.c.breakdown.collate("C"))).label("rank"),
        )
        .group_by(values.c.breakdown)
        .subquery("ranks")
    )
    bucket_cols = [] if plan.total_value else [values.c.bucket]
    labelled = (
        select(
            *bucket_cols,
            case(
                (ranks.c.rank <= literal(plan.breakdown.limit), values.c.breakdown),
                else_=literal(OTHER_LABEL),
            ).label("breakdown"),
            ranks.c.rank,
            values.c.value,
        )
        .join_from(values, ranks, values.c.breakdown == ranks.c.breakdown)
        .subquery("labelled")
    )
    keys = [labelled.c.bucket] if not plan.total_value else []
    value_type = BigInteger() if plan.counts else Float()
    return select(
        *keys,
        labelled.c.breakdown,
        func.min(labelled.c.rank).label("rank"),
        cast(func.sum(labelled.c.value), value_type).label("value"),
    ).group_by(*keys, labelled.c.breakdown)


def earliest_statement(team_id: int) -> Select[Any]:
    """The team's first event: where `date_from: "all"` starts."""
    return select(func.min(EVENTS.c.timestamp)).where(EVENTS.c.team_id == team_id)
