"""StickinessQuery (insight-kinds §4): for each series, how many actors were active in exactly k of the
range's intervals (at least k when cumulative), k = 1..N; with compare, the previous period next to each
series. Actors are distinct ids."""

import asyncio
import math
from collections.abc import Sequence
from datetime import datetime
from typing import Any, ClassVar, Literal

from app.query import dates
from app.query.backend import QueryBackend
from app.query.base import ComputedResult, InvalidQuery, Path, QueryContext, QueryLimits, UnsupportedQuery
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
)
from app.query.kinds_sql import series_filters
from app.query.limits import ResultBudget
from app.query.schema import (
    CompareFilter,
    DateRange,
    EventsNode,
    Interval,
    PropertyGroupFilter,
    PropertyNode,
    SeriesNode,
    _Node,
)
from app.query.stickiness_sql import StickinessPlan


class StickinessCriteria(_Node):
    operator: Literal["gte", "lte", "exact"]
    value: int


class StickinessFilter(_Node):
    stickinessCriteria: StickinessCriteria | None = None
    computedAs: Literal["non_cumulative", "cumulative"] | None = None


# Keys that only change how the result is drawn.
_FILTER_DISPLAY = frozenset(
    {
        "display",
        "showLegend",
        "legendPosition",
        "showValuesOnSeries",
        "showMultipleYAxes",
        "hiddenLegendIndexes",
        "resultCustomizationBy",
        "resultCustomizations",
    }
)

Periods = list[tuple[ResolvedRange, str | None]]


class StickinessQuery(KindQuery):
    kind_name: ClassVar[str] = "StickinessQuery"

    kind: Literal["StickinessQuery"]
    series: list[SeriesNode]
    interval: Interval | None = None
    intervalCount: int | None = None
    dateRange: DateRange | None = None
    properties: list[PropertyNode] | PropertyGroupFilter | None = None
    filterTestAccounts: bool | None = None
    samplingFactor: float | None = None
    compareFilter: CompareFilter | None = None
    stickinessFilter: StickinessFilter | None = None

    @property
    def interval_count(self) -> int:
        return self.intervalCount or 1

    @property
    def cumulative(self) -> bool:
        return self.stickinessFilter is not None and self.stickinessFilter.computedAs == "cumulative"

    def check_supported(self, limits: QueryLimits) -> None:
        refuse_unknown(self, "StickinessQuery", BASE_IGNORED)
        if not self.series:
            raise InvalidQuery("StickinessQuery needs at least one series", path=("series",))
        if self.interval == "minute":
            raise UnsupportedQuery("interval 'minute' is not supported", path=("interval",))
        if self.intervalCount is not None and self.intervalCount < 1:
            raise InvalidQuery("intervalCount must be at least 1", path=("intervalCount",))
        if self.samplingFactor not in (None, 1):
            raise UnsupportedQuery("samplingFactor is not supported", path=("samplingFactor",))
        check_date_range(self.dateRange)
        check_properties(self.properties)
        if self.compareFilter is not None:
            refuse_unknown(self.compareFilter, "compareFilter", path=("compareFilter",))
        if self.stickinessFilter is not None:
            refuse_unknown(self.stickinessFilter, "stickinessFilter", _FILTER_DISPLAY, ("stickinessFilter",))
            criteria = self.stickinessFilter.stickinessCriteria
            if criteria is not None:
                refuse_unknown(
                    criteria,
                    "stickinessFilter.stickinessCriteria",
                    path=("stickinessFilter", "stickinessCriteria"),
                )
        own: list[tuple[Any, Path]] = []
        for index, series in enumerate(self.series):
            check_events_node(series, ("series", index))
            assert isinstance(series, EventsNode)
            own += [
                (series.properties, ("series", index, "properties")),
                (series.fixedProperties, ("series", index, "fixedProperties")),
            ]
            check_filter_limits((self.properties, ("properties",)), own[-2:], limits)

    def periods(self, ctx: QueryContext, earliest: datetime | None) -> Periods:
        current = resolve_range(self.dateRange, self.interval or "day", ctx, earliest)
        periods: Periods = [(current, None)]
        compare = self.compareFilter
        if (
            compare is not None
            and compare.compare
            and not (self.dateRange and self.dateRange.date_from == "all")
        ):
            try:
                previous = dates.previous_period(current, compare.compare_to, ctx.now)
            except OverflowError:
                raise InvalidQuery("A date in the query is out of range.", path=("compareFilter",)) from None
            periods = [(current, "current"), (previous, "previous")]
        for period, _ in periods:
            buckets = period.buckets  # raises past MAX_BUCKETS
            if not buckets:
                raise InvalidQuery("dateRange: date_from is after date_to", path=("dateRange",))
            check_points(len(buckets), "dateRange", ("dateRange",), ctx.limits)
        return periods

    def check(self, ctx: QueryContext) -> None:
        self.periods(ctx, ctx.now)

    async def compute(self, ctx: QueryContext, backend: QueryBackend) -> ComputedResult:
        earliest = await earliest_event(self.dateRange, ctx, backend)
        periods = await asyncio.to_thread(self.periods, ctx, earliest)
        budget = ResultBudget(ctx.limits.result_bytes)
        results: list[dict[str, Any]] = []
        texts: list[str] = []
        # Interleaved per series: [s0 current, s0 previous, s1 current, …], as PostHog.
        for index, series in enumerate(self.series):
            assert isinstance(series, EventsNode)
            for period, compare_label in periods:
                plan = await asyncio.to_thread(self._plan, series, period, ctx)
                found = await backend.stickiness_rows(plan)
                result = self._shape(series, index, period, compare_label, found)
                results.append(result)
                texts.append(budget.serialize(result))
        return ComputedResult(results=results, serialized=texts)

    def _plan(self, series: EventsNode, period: ResolvedRange, ctx: QueryContext) -> StickinessPlan:
        criteria = self.stickinessFilter.stickinessCriteria if self.stickinessFilter else None
        return StickinessPlan(
            team_id=ctx.team_id,
            interval=period.interval,
            tz=period.tz.key,
            week_start=period.week_start,
            event=series.event,
            filters=series_filters(
                self.properties,
                self.filterTestAccounts,
                ctx,
                (*(series.properties or []), *(series.fixedProperties or [])),
            ),
            start=period.start,
            end=period.date_to,
            last=period.buckets[-1],
            interval_count=self.interval_count,
            operator=criteria.operator if criteria else None,
            value=criteria.value if criteria else 0,
        )

    def _shape(
        self,
        series: EventsNode,
        index: int,
        period: ResolvedRange,
        compare_label: str | None,
        found: Sequence[Any],
    ) -> dict[str, Any]:
        n = math.ceil(len(period.buckets) / self.interval_count)
        data = [0] * n
        for intervals, value in found:
            if 1 <= intervals <= n:
                data[intervals - 1] = value
        count = sum(data)
        unit = period.interval
        if self.cumulative:
            running = 0
            for k in range(n - 1, -1, -1):
                running += data[k]
                data[k] = running
            labels = [f"{k} {unit}{'' if k == 1 else 's'} or more" for k in range(1, n + 1)]
        else:
            labels = [f"{k} {unit}{'' if k == 1 else 's'}" for k in range(1, n + 1)]
        label = series.event if series.event is not None else "All events"
        result: dict[str, Any] = {
            "count": count,
            "data": data,
            "days": list(range(1, n + 1)),
            "labels": labels,
            "label": label,
            "action": {
                "order": index,
                "type": "events",
                "name": label,
                "id": label,
                "custom_name": series.custom_name,
            },
        }
        if compare_label is not None:
            result["compare"] = True
            result["compare_label"] = compare_label
        return result
