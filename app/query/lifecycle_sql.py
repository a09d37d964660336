"""LifecycleQuery's one statement (SQLAlchemy Core over `events`, bound parameters only).

Each actor's active periods in the read window (the reported periods and one more on each side) are marked,
in one pass over them in order: its first one `new` when it is the period of the actor's first event ever,
else `resurrecting`; a later one `returning` when the actor was active in the period just before, else
`resurrecting`; and the period after an active one is `dormant` when the actor is not active then. Counts
per (period, status) come back for the reported periods only.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, Select, Text, and_, case, func, literal, or_, select
from sqlalchemy.dialects.postgresql import array

from app.query.filters import EVENTS, EVENTS_AND_PERSONS
from app.query.kinds_sql import bucket_of, event_bucket, one_period
from app.query.trends_sql import SeriesFilters, where_condition

STATUSES = ("new", "returning", "resurrecting", "dormant")


@dataclass(frozen=True)
class LifecyclePlan:
    team_id: int
    interval: str  # hour, day, week or month
    tz: str
    week_start: int
    event: str | None
    filters: SeriesFilters  # the series' filters and the query's
    read_from: datetime  # aware: the period before the first reported one
    read_to: datetime  # aware, exclusive: the end of the period after the last reported one
    first: datetime  # naive local: the first reported period
    last: datetime  # naive local: the last reported period


def lifecycle_statement(plan: LifecyclePlan) -> Select[Any]:
    """Columns: `period` (naive local start), `status`, `value` (a count, positive)."""
    conditions = [EVENTS.c.team_id == plan.team_id, where_condition(plan.filters)]
    if plan.event is not None:
        conditions.append(EVENTS.c.event == plan.event)
    period = event_bucket(plan.interval, plan.tz, plan.week_start)
    active = (
        select(EVENTS.c.distinct_id.label("actor"), period.label("period"))
        .select_from(EVENTS_AND_PERSONS)
        .where(*conditions, EVENTS.c.timestamp >= plan.read_from, EVENTS.c.timestamp < plan.read_to)
        .distinct()
        .cte("active")
    )
    # The actor's creation: its first event ever, of any name and whatever its properties. Every actor of the
    # team, joined to the active ones after: one pass and a hash aggregate, whatever the planner's estimates.
    # (Restricted with `IN (active actors)`, stale statistics right after a bulk load made it read the events
    # once per actor: a 100,000-event team's tile went from a second to past the query timeout.)
    created = (
        select(
            EVENTS.c.distinct_id.label("actor"),
            bucket_of(func.min(EVENTS.c.timestamp), plan.interval, plan.tz, plan.week_start).label("created"),
        )
        .where(EVENTS.c.team_id == plan.team_id)
        .group_by(EVENTS.c.distinct_id)
        .cte("created")
    )
    step = one_period(plan.interval)
    actor = active.c.actor.collate("C")  # byte order sorts faster; any order groups an actor's periods
    previous = func.lag(active.c.period).over(partition_by=actor, order_by=active.c.period)
    following = func.lead(active.c.period).over(partition_by=actor, order_by=active.c.period)
    marked = (
        select(
            active.c.period,
            created.c.created,
            previous.label("previous"),
            following.label("following"),
        )
        .join_from(active, created, active.c.actor == created.c.actor)
        .subquery("marked")
    )
    status = case(
        (
            marked.c.previous.is_(None),
            case((marked.c.created == marked.c.period, "new"), else_="resurrecting"),
        ),
        (marked.c.previous == marked.c.period - step, "returning"),
        else_="resurrecting",
    )
    dormant = case(
        (or_(marked.c.following.is_(None), marked.c.following != marked.c.period + step), "dormant"),
        else_=None,
    )
    # Both rows of an active period (its status, and the next period's dormant or nothing) from one pass.
    rows = select(
        func.unnest(array[Any]([marked.c.period, marked.c.period + step], type_=DateTime())).label("period"),
        func.unnest(array[Any]([status, dormant], type_=Text())).label("status"),
    ).subquery("statuses")
    return (
        select(rows.c.period, rows.c.status, func.count().label("value"))
        .where(
            and_(
                rows.c.status.is_not(None),
                rows.c.period >= literal(plan.first, DateTime()),
                rows.c.period <= literal(plan.last, DateTime()),
            )
        )
        .group_by(rows.c.period, rows.c.status)
    )
