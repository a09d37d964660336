"""RetentionQuery's one statement (SQLAlchemy Core over `events`, bound parameters only).

Cohorts are (actor, breakdown value, cohort period) rows: every period with a start event (recurring), or the
period of the actor's first start event over all time (first time; first-ever occurrence, where that first
event must also match the entity's filters). Returns are (actor, breakdown value, period) rows with at least
`minimum` return events. The statement answers, per breakdown value and cohort, the cohort's size (offset 0)
and per later offset either the actors with a return there, or (cumulative) the actors whose last return in
range is there; Python fills the matrix.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Select,
    and_,
    case,
    cast,
    func,
    literal,
    select,
    union_all,
)
from sqlalchemy.dialects.postgresql import distinct_on

from app.query.filters import EVENTS, EVENTS_AND_PERSONS
from app.query.kinds_sql import breakdown_text, bucket_of, event_bucket, periods_between
from app.query.trends_sql import FilterNode, SeriesFilters

OTHER_LABEL = "$$_posthog_breakdown_other_$$"


@dataclass(frozen=True)
class RetentionBreakdown:
    key: str
    kind: str  # "event" or "person"
    limit: int
    normalize_url: bool


@dataclass(frozen=True)
class RetentionFilters:
    """The plan's filters as the query states them, for a backend that compiles them itself (ClickHouse)."""

    target: tuple[FilterNode, ...]
    returning: tuple[FilterNode, ...]
    global_: SeriesFilters  # the query's properties and test-account filters


@dataclass(frozen=True)
class RetentionPlan:
    team_id: int
    interval: str  # hour, day, week or month
    tz: str
    week_start: int
    start: datetime  # aware: the first cohort's start
    end: datetime  # aware, exclusive: the end of the last cohort
    retention_type: str
    target_event: str | None
    target_where: ColumnElement[bool]
    return_event: str | None
    return_where: ColumnElement[bool]
    global_where: ColumnElement[bool]
    intervals: int  # values per cohort row
    minimum: int  # return events a period needs to count
    cumulative: bool
    breakdown: RetentionBreakdown | None
    # Recurring, the same event and filters for starts and returns, no minimum, no breakdown: the returns
    # are the start rows themselves (one read of the events instead of two).
    returns_are_starts: bool = False
    filters: RetentionFilters | None = None


def _event_is(event: str | None) -> list[ColumnElement[bool]]:
    return [] if event is None else [EVENTS.c.event == event]


def _in_range(plan: RetentionPlan) -> list[ColumnElement[bool]]:
    return [EVENTS.c.timestamp >= plan.start, EVENTS.c.timestamp < plan.end]


def _starts(plan: RetentionPlan, breakdown: list[ColumnElement[Any]]) -> Select[Any]:
    """(actor, [breakdown], cohort) rows, distinct."""
    actor = EVENTS.c.distinct_id.label("actor")
    base = [EVENTS.c.team_id == plan.team_id, *_event_is(plan.target_event), plan.global_where]
    if plan.retention_type == "retention_recurring":
        cohort = event_bucket(plan.interval, plan.tz, plan.week_start).label("cohort")
        return (
            select(actor, *breakdown, cohort)
            .select_from(EVENTS_AND_PERSONS)
            .where(*base, plan.target_where, *_in_range(plan))
            .distinct()
        )
    keys = [actor, *breakdown]
    if plan.retention_type == "retention_first_time":
        firsts = (
            select(*keys, func.min(EVENTS.c.timestamp).label("first"))
            .select_from(EVENTS_AND_PERSONS)
            .where(*base, plan.target_where)
            .group_by(*(key.element for key in keys))
            .subquery("firsts")
        )
        matches: ColumnElement[bool] = literal(True)
    else:  # first-ever occurrence: the first start event, whatever its properties, must match them
        ordered = (
            select(*keys, EVENTS.c.timestamp.label("first"), plan.target_where.label("matches"))
            .select_from(EVENTS_AND_PERSONS)
            .where(*base)
            .ext(distinct_on(*(key.element for key in keys)))
            .order_by(*(key.element for key in keys), EVENTS.c.timestamp)
            .subquery("firsts")
        )
        firsts, matches = ordered, ordered.c.matches
    return select(
        firsts.c.actor,
        *(firsts.c.breakdown for _ in breakdown),
        bucket_of(firsts.c.first, plan.interval, plan.tz, plan.week_start).label("cohort"),
    ).where(firsts.c.first >= plan.start, firsts.c.first < plan.end, matches)


def retention_statement(plan: RetentionPlan) -> Select[Any]:
    """Columns: `breakdown` and `rank` (with a breakdown only), `cohort`, `offset`, `value`."""
    breakdown_cols: list[ColumnElement[Any]] = []
    if plan.breakdown is not None:
        bd = plan.breakdown
        breakdown_cols = [breakdown_text(bd.key, bd.kind, bd.normalize_url).label("breakdown")]
    starts = _starts(plan, breakdown_cols).cte("starts")

    period = event_bucket(plan.interval, plan.tz, plan.week_start)
    return_conditions = [
        EVENTS.c.team_id == plan.team_id,
        *_event_is(plan.return_event),
        plan.return_where,
        plan.global_where,
        *_in_range(plan),
    ]
    if plan.breakdown is None:
        cohorts = starts
        keys: list[str] = []
        returns_from: Any = EVENTS_AND_PERSONS
        return_keys: list[ColumnElement[Any]] = []
    else:
        # Values ranked by their cohorts' total size (desc), ties by value; past the limit they are one value.
        ranks = (
            select(
                starts.c.breakdown,
                func.row_number()
                .over(order_by=(func.count().desc(), starts.c.breakdown.collate("C")))
                .label("rank"),
            )
            .group_by(starts.c.breakdown)
            .cte("ranks")
        )
        limit = literal(plan.breakdown.limit)
        kept = ranks.c.rank <= limit
        cohorts = (
            select(
                starts.c.actor,
                case((kept, starts.c.breakdown), else_=literal(OTHER_LABEL)).label("breakdown"),
                case((kept, ranks.c.rank), else_=limit + 1).label("rank"),
                starts.c.cohort,
            )
            .join_from(starts, ranks, starts.c.breakdown == ranks.c.breakdown)
            .distinct()
            .cte("cohorts")
        )
        keys = ["breakdown"]
        # A return event's value must be one of the start events' values: the join drops the others.
        returns_from = EVENTS_AND_PERSONS.join(ranks, ranks.c.breakdown == breakdown_cols[0].element)
        return_keys = [case((kept, ranks.c.breakdown), else_=literal(OTHER_LABEL))]

    returns_select = (
        select(
            EVENTS.c.distinct_id.label("actor"),
            *(k.label("breakdown") for k in return_keys),
            period.label("period"),
        )
        .select_from(returns_from)
        .where(*return_conditions)
        .group_by(EVENTS.c.distinct_id, *return_keys, period)
    )
    if plan.minimum > 1:
        returns_select = returns_select.having(func.count() >= plan.minimum)
    if plan.returns_are_starts and plan.breakdown is None:
        returns_select = select(starts.c.actor, starts.c.cohort.label("period"))
    returns = returns_select.cte("returns")

    joined = and_(
        returns.c.actor == cohorts.c.actor,
        returns.c.period > cohorts.c.cohort,
        *(returns.c[key] == cohorts.c[key] for key in keys),
    )
    offset = periods_between(returns.c.period, cohorts.c.cohort, plan.interval)
    group = [*(cohorts.c[key] for key in keys), *([cohorts.c.rank] if keys else []), cohorts.c.cohort]
    last = plan.intervals - 1
    if plan.cumulative:
        # Each actor counts in every offset up to its last return: count them by that last offset.
        per_actor = (
            select(*group, func.least(func.max(offset), last).label("offset"))
            .select_from(cohorts.join(returns, joined))
            .group_by(cohorts.c.actor, *group)
            .subquery("last_returns")
        )
        per_group = [per_actor.c[column.name] for column in group]
        cells = select(*per_group, per_actor.c.offset, func.count().label("value")).group_by(
            *per_group, per_actor.c.offset
        )
    else:
        cells = (
            select(*group, offset.label("offset"), func.count().label("value"))
            .select_from(cohorts.join(returns, joined))
            .where(offset <= last)
            .group_by(*group, offset)
        )
    sizes = select(*group, literal(0).label("offset"), func.count().label("value")).group_by(*group)
    both = union_all(sizes, cells).subquery("cells")
    return select(
        *(both.c[column.name] for column in group),
        both.c.offset,
        cast(both.c.value, BigInteger).label("value"),
    )
