"""LifecycleQuery (insight-kinds §3): per period, the actors who are new, returning, resurrecting and
dormant (negative), as PostHog's four series in that order. An actor is created in the period of its first
event ever (actors are distinct ids)."""

import asyncio
from collections.abc import Sequence
from datetime import datetime
from typing import Any, ClassVar, Literal

from app.query import dates
from app.query.backend import QueryBackend
from app.query.base import ComputedResult, InvalidQuery, QueryContext, QueryLimits, UnsupportedQuery
from app.query.dates import ResolvedRange
from app.query.kinds import (
    BASE_IGNORED,
    KindQuery,
    check_date_range,
    check_events_node,
    check_filter_limits,
    check_points,
    check_properties,
    earliest_event,
    refuse_unknown,
    resolve_range,
    step_back,
)
from app.query.kinds_sql import series_filters
from app.query.lifecycle_sql import STATUSES, LifecyclePlan
from app.query.limits import ResultBudget
from app.query.schema import (
    DateRange,
    EventsNode,
    Interval,
    PropertyGroupFilter,
    PropertyNode,
    SeriesNode,
    _Node,
)


class LifecycleFilter(_Node):
    toggledLifecycles: list[Literal["new", "returning", "resurrecting", "dormant"]] | None = None


# Keys that only change how the result is drawn.
_FILTER_DISPLAY = frozenset(
    {"showValuesOnSeries", "showPercentagesOnSeries", "showLegend", "legendPosition", "stacked", "display"}
)


class LifecycleQuery(KindQuery):
    kind_name: ClassVar[str] = "LifecycleQuery"

    kind: Literal["LifecycleQuery"]
    series: list[SeriesNode]
    interval: Interval | None = None
    dateRange: DateRange | None = None
    properties: list[PropertyNode] | PropertyGroupFilter | None = None
    filterTestAccounts: bool | None = None
    aggregation_group_type_index: int | None = None
    samplingFactor: float | None = None
    lifecycleFilter: LifecycleFilter | None = None

    @property
    def node(self) -> EventsNode:
        series = self.series[0]
        assert isinstance(series, EventsNode)  # check_supported
        return series

    def check_supported(self, limits: QueryLimits) -> None:
        refuse_unknown(self, "LifecycleQuery", BASE_IGNORED)
        if not self.series:
            raise InvalidQuery("LifecycleQuery needs one series", path=("series",))
        if len(self.series) > 1:
            raise UnsupportedQuery("LifecycleQuery takes exactly one series", path=("series",))
        if self.interval == "minute":
            raise UnsupportedQuery("interval 'minute' is not supported", path=("interval",))
        if self.aggregation_group_type_index is not None:
            raise UnsupportedQuery(
                "aggregation_group_type_index is not supported", path=("aggregation_group_type_index",)
            )
        if self.samplingFactor not in (None, 1):
            raise UnsupportedQuery("samplingFactor is not supported", path=("samplingFactor",))
        check_date_range(self.dateRange)
        check_properties(self.properties)
        if self.lifecycleFilter is not None:
            refuse_unknown(self.lifecycleFilter, "lifecycleFilter", _FILTER_DISPLAY, ("lifecycleFilter",))
        check_events_node(self.series[0], ("series", 0), math=False)
        series = self.node
        own = [
            (series.properties, ("series", 0, "properties")),
            (series.fixedProperties, ("series", 0, "fixedProperties")),
        ]
        check_filter_limits((self.properties, ("properties",)), own, limits)

    def _period(self, ctx: QueryContext, earliest: datetime | None) -> ResolvedRange:
        period = resolve_range(self.dateRange, self.interval or "day", ctx, earliest)
        buckets = period.buckets  # raises past MAX_BUCKETS
        check_points(len(buckets), "dateRange", ("dateRange",), ctx.limits)
        if not buckets:
            raise InvalidQuery("dateRange: date_from is after date_to", path=("dateRange",))
        return period

    def check(self, ctx: QueryContext) -> None:
        self._period(ctx, ctx.now)

    async def compute(self, ctx: QueryContext, backend: QueryBackend) -> ComputedResult:
        earliest = await earliest_event(self.dateRange, ctx, backend)
        period, plan = await asyncio.to_thread(self._plan, ctx, earliest)
        found = await backend.lifecycle_rows(plan)
        results, texts = await asyncio.to_thread(self._shape, period, found, ctx)
        return ComputedResult(
            results=results,
            serialized=texts,
            resolved_date_range={
                "date_from": dates.iso(period.date_from),
                "date_to": dates.iso(period.date_to),
            },
        )

    def _plan(self, ctx: QueryContext, earliest: datetime | None) -> tuple[ResolvedRange, LifecyclePlan]:
        period = self._period(ctx, earliest)
        interval = period.interval
        first, last = period.buckets[0], period.buckets[-1]
        try:
            before = step_back(interval, first)
            after = dates.step(interval, last)
        except (OverflowError, ValueError):
            raise InvalidQuery("A date in the query is out of range.", path=("dateRange",)) from None
        series = self.node
        plan = LifecyclePlan(
            team_id=ctx.team_id,
            interval=interval,
            tz=period.tz.key,
            week_start=period.week_start,
            event=series.event,
            filters=series_filters(
                self.properties,
                self.filterTestAccounts,
                ctx,
                (*(series.properties or []), *(series.fixedProperties or [])),
            ),
            read_from=period.aware(before),
            read_to=period.aware(after),
            first=first,
            last=last,
        )
        return period, plan

    def _shape(
        self, period: ResolvedRange, found: Sequence[Any], ctx: QueryContext
    ) -> tuple[list[dict[str, Any]], list[str]]:
        counts: dict[tuple[datetime, str], int] = {}
        for period_start, status, value in found:
            counts[(period_start, status)] = value
        series = self.node
        name = series.event if series.event is not None else "All events"
        action: dict[str, Any] = {
            "id": series.event,
            "name": name,
            "type": "events",
            "order": 0,
            "math": "total",
        }
        if series.custom_name is not None:
            action["custom_name"] = series.custom_name
        labels = [dates.label(bucket, period) for bucket in period.buckets]
        days = [dates.day_key(bucket, period.interval) for bucket in period.buckets]
        budget = ResultBudget(ctx.limits.result_bytes)
        results: list[dict[str, Any]] = []
        texts: list[str] = []
        for status in STATUSES:
            sign = -1 if status == "dormant" else 1
            data = [float(sign * counts.get((bucket, status), 0)) for bucket in period.buckets]
            result = {
                "action": action,
                "data": data,
                "count": float(sum(data)),
                "labels": labels,
                "days": days,
                "label": f"{name} - {status}",
                "status": status,
            }
            results.append(result)
            texts.append(budget.serialize(result))
        return results, texts
