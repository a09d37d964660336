"""StickinessQuery's statement, one per series and period (SQLAlchemy Core over `events`, bound parameters).

Per actor, the intervals in which it was active (with the criteria: whose event count satisfies it); the
statement answers how many actors were active in exactly k intervals, for each k. With `intervalCount` an
interval is that many periods, counted back from the last period of the range.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, DateTime, Select, func, literal, select

from app.query.filters import EVENTS, EVENTS_AND_PERSONS
from app.query.kinds_sql import event_bucket, periods_between
from app.query.trends_sql import SeriesFilters, where_condition

_OPERATORS = {"gte": "__ge__", "lte": "__le__", "exact": "__eq__"}


@dataclass(frozen=True)
class StickinessPlan:
    team_id: int
    interval: str  # hour, day, week or month
    tz: str
    week_start: int
    event: str | None
    filters: SeriesFilters  # the series' filters and the query's
    start: datetime  # aware: events with start <= timestamp <= end are read
    end: datetime
    last: datetime  # naive local: the last period of the range
    interval_count: int
    operator: str | None  # gte, lte or exact; None: any event makes an interval active
    value: int


def stickiness_statement(plan: StickinessPlan) -> Select[Any]:
    """Columns: `intervals` (k, how many intervals an actor was active in), `value` (actors)."""
    conditions = [
        EVENTS.c.team_id == plan.team_id,
        where_condition(plan.filters),
        EVENTS.c.timestamp >= plan.start,
        EVENTS.c.timestamp <= plan.end,
    ]
    if plan.event is not None:
        conditions.append(EVENTS.c.event == plan.event)
    bucket = event_bucket(plan.interval, plan.tz, plan.week_start)
    slot: ColumnElement[Any] = bucket
    if plan.interval_count > 1:
        back = periods_between(literal(plan.last, DateTime()), bucket, plan.interval)
        slot = back // plan.interval_count
    per_interval = (
        select(EVENTS.c.distinct_id.label("actor"), slot.label("slot"))
        .select_from(EVENTS_AND_PERSONS)
        .where(*conditions)
        .group_by(EVENTS.c.distinct_id, slot)
    )
    if plan.operator is not None:
        per_interval = per_interval.having(getattr(func.count(), _OPERATORS[plan.operator])(plan.value))
    intervals = per_interval.subquery("intervals")
    per_actor = (
        select(func.count().label("intervals"))
        .select_from(intervals)
        .group_by(intervals.c.actor.collate("C"))
        .subquery("actors")
    )
    return select(per_actor.c.intervals, func.count().label("value")).group_by(per_actor.c.intervals)
