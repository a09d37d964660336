"""RetentionQuery (insight-kinds §2): cohorts of actors by the period of their start event, and how many of
each cohort come back in each later period, as PostHog's full matrix of cohort rows.

Calendar periods in the team timezone (weeks start on the team's day); actors are distinct ids.
"""

import asyncio
from collections.abc import Sequence
from datetime import datetime
from typing import Any, ClassVar, Literal

from app.query import dates
from app.query.backend import QueryBackend
from app.query.base import ComputedResult, InvalidQuery, Path, QueryContext, QueryLimits, UnsupportedQuery
from app.query.dates import MAX_BUCKETS, ResolvedRange, floor_to, step
from app.query.kinds import (
    BASE_IGNORED,
    KindQuery,
    check_date_range,
    check_filter_limits,
    check_points,
    check_properties,
    earliest_event,
    global_where,
    own_where,
    refuse_unknown,
    resolve_range,
    step_back,
)
from app.query.limits import ResultBudget
from app.query.retention_sql import OTHER_LABEL, RetentionBreakdown, RetentionFilters, RetentionPlan
from app.query.schema import (
    PROPERTY_TYPES,
    BreakdownFilter,
    DateRange,
    PropertyGroupFilter,
    PropertyNode,
    _Node,
    check_property_node,
    parse_property_nodes,
)
from app.query.trends_sql import SeriesFilters

DEFAULT_INTERVALS = 7
DEFAULT_BREAKDOWN_LIMIT = 25
MAX_BREAKDOWN_LIMIT = 2**31 - 1
RETENTION_TYPES = ("retention_recurring", "retention_first_time", "retention_first_ever_occurrence")
PERIODS = {"Hour": "hour", "Day": "day", "Week": "week", "Month": "month"}


class RetentionEntity(_Node):
    id: str | int | None = None
    type: str | None = None
    kind: str | None = None
    name: str | None = None
    custom_name: str | None = None
    order: int | None = None
    uuid: str | None = None
    properties: list[PropertyNode] | None = None


_DEFAULT_ENTITY = RetentionEntity(id="$pageview", type="events")


class RetentionFilter(_Node):
    retentionType: (
        Literal["retention_recurring", "retention_first_time", "retention_first_ever_occurrence"] | None
    ) = None
    totalIntervals: int | None = None
    period: Literal["Hour", "Day", "Week", "Month"] | None = None
    targetEntity: RetentionEntity | None = None
    returningEntity: RetentionEntity | None = None
    cumulative: bool | None = None
    minimumOccurrences: int | None = None
    retentionReference: str | None = None
    meanRetentionCalculation: str | None = None
    timeWindowMode: str | None = None
    retentionCustomBrackets: list[float] | None = None
    aggregationType: str | None = None
    aggregationProperty: str | None = None
    aggregationPropertyType: str | None = None


# Keys that only change how the result is drawn.
_FILTER_DISPLAY = frozenset(
    {
        "display",
        "dashboardDisplay",
        "showTrendLines",
        "selectedInterval",
        "goalLines",
        "cohortLabelStartIndex",
        "customAggregationTarget",
        "showMean",
        "hideSizeColumn",
        "showValuesOnSeries",
    }
)


class RetentionQuery(KindQuery):
    kind_name: ClassVar[str] = "RetentionQuery"

    kind: Literal["RetentionQuery"]
    retentionFilter: RetentionFilter
    dateRange: DateRange | None = None
    properties: list[PropertyNode] | PropertyGroupFilter | None = None
    filterTestAccounts: bool | None = None
    aggregation_group_type_index: int | None = None
    samplingFactor: float | None = None
    breakdownFilter: BreakdownFilter | None = None

    # --- what the query asks for, with PostHog's defaults ---

    @property
    def interval(self) -> str:
        return PERIODS[self.retentionFilter.period or "Day"]

    @property
    def intervals(self) -> int:
        return self.retentionFilter.totalIntervals or DEFAULT_INTERVALS

    @property
    def retention_type(self) -> str:
        return self.retentionFilter.retentionType or "retention_recurring"

    @property
    def target(self) -> RetentionEntity:
        return self.retentionFilter.targetEntity or _DEFAULT_ENTITY

    @property
    def returning(self) -> RetentionEntity:
        return self.retentionFilter.returningEntity or _DEFAULT_ENTITY

    @property
    def breakdown_limit(self) -> int | None:
        breakdown = self.breakdownFilter
        if breakdown is None or not breakdown.enabled:
            return None
        return min(breakdown.breakdown_limit or DEFAULT_BREAKDOWN_LIMIT, MAX_BREAKDOWN_LIMIT)

    # --- checks ---

    def check_supported(self, limits: QueryLimits) -> None:
        refuse_unknown(self, "RetentionQuery", BASE_IGNORED)
        if self.aggregation_group_type_index is not None:
            raise UnsupportedQuery(
                "aggregation_group_type_index is not supported", path=("aggregation_group_type_index",)
            )
        if self.samplingFactor not in (None, 1):
            raise UnsupportedQuery("samplingFactor is not supported", path=("samplingFactor",))
        check_date_range(self.dateRange)
        check_properties(self.properties)
        _check_filter(self.retentionFilter)
        if self.breakdownFilter is not None:
            _check_breakdown(self.breakdownFilter)
        entity_filters = [
            (entity.properties, ("retentionFilter", name, "properties"))
            for name, entity in (("targetEntity", self.target), ("returningEntity", self.returning))
        ]
        check_filter_limits((self.properties, ("properties",)), entity_filters, limits)

    def check(self, ctx: QueryContext) -> None:
        _Rows.of(self, ctx, ctx.now)

    async def compute(self, ctx: QueryContext, backend: QueryBackend) -> ComputedResult:
        earliest = await earliest_event(self.dateRange, ctx, backend)
        rows, plan = await asyncio.to_thread(self._plan, ctx, earliest)
        found = await backend.retention_rows(plan)
        results, texts = await asyncio.to_thread(self._shape, rows, found, ctx)
        return ComputedResult(results=results, serialized=texts)

    def _plan(self, ctx: QueryContext, earliest: datetime | None) -> tuple["_Rows", RetentionPlan]:
        rows = _Rows.of(self, ctx, earliest)
        breakdown = None
        limit = self.breakdown_limit
        if limit is not None:
            assert self.breakdownFilter is not None and isinstance(self.breakdownFilter.breakdown, str)
            breakdown = RetentionBreakdown(
                key=self.breakdownFilter.breakdown,
                kind=self.breakdownFilter.breakdown_type or "event",
                limit=limit,
                normalize_url=bool(self.breakdownFilter.breakdown_normalize_url),
            )
        plan = RetentionPlan(
            team_id=ctx.team_id,
            interval=self.interval,
            tz=rows.period.tz.key,
            week_start=ctx.week_start_day,
            start=rows.period.aware(rows.starts[0]),
            end=rows.period.aware(rows.end),
            retention_type=self.retention_type,
            target_event=_event(self.target),
            target_where=own_where(self.target.properties or []),
            return_event=_event(self.returning),
            return_where=own_where(self.returning.properties or []),
            global_where=global_where(self.properties, self.filterTestAccounts, ctx),
            intervals=self.intervals,
            minimum=self.retentionFilter.minimumOccurrences or 1,
            cumulative=bool(self.retentionFilter.cumulative),
            breakdown=breakdown,
            filters=RetentionFilters(
                target=tuple(self.target.properties or []),
                returning=tuple(self.returning.properties or []),
                global_=SeriesFilters(
                    self.properties,
                    tuple(parse_property_nodes(list(ctx.test_account_filters)))
                    if self.filterTestAccounts and ctx.test_account_filters
                    else (),
                    (),
                ),
            ),
            returns_are_starts=(
                self.retention_type == "retention_recurring"
                and _event(self.target) == _event(self.returning)
                and not self.target.properties
                and not self.returning.properties
                and (self.retentionFilter.minimumOccurrences or 1) == 1
            ),
        )
        return rows, plan

    def _shape(
        self, rows: "_Rows", found: Sequence[Any], ctx: QueryContext
    ) -> tuple[list[dict[str, Any]], list[str]]:
        n = self.intervals
        index = {start: i for i, start in enumerate(rows.starts)}
        with_breakdown = self.breakdown_limit is not None
        # breakdown value -> cohort index -> offset -> value
        cells: dict[str | None, dict[int, list[int]]] = {}
        ranks: dict[str | None, int] = {}
        for row in found:
            mapping = row._mapping
            value = mapping["breakdown"] if with_breakdown else None
            if with_breakdown:
                ranks[value] = mapping["rank"]
            cohort = index.get(mapping["cohort"])
            if cohort is None:
                continue
            cells.setdefault(value, {}).setdefault(cohort, [0] * n)[mapping["offset"]] += mapping["value"]
        if self.retentionFilter.cumulative:
            for by_cohort in cells.values():
                for values in by_cohort.values():
                    # values[k], k >= 1, counted the actors whose last return is k: they count at 1..k too.
                    running = 0
                    for k in range(n - 1, 0, -1):
                        running += values[k]
                        values[k] = running
        if with_breakdown:
            assert self.breakdownFilter is not None
            order = sorted(ranks, key=lambda value: ranks[value])
            if self.breakdownFilter.breakdown_hide_other_aggregation:
                order = [value for value in order if value != OTHER_LABEL]
        else:
            order = [None]
        name = self.retentionFilter.period or "Day"
        labels = [f"{name} {k}" for k in range(n)]
        budget = ResultBudget(ctx.limits.result_bytes)
        results: list[dict[str, Any]] = []
        texts: list[str] = []
        for value in order:
            by_cohort = cells.get(value, {})
            for i, start in enumerate(rows.starts):
                counts = by_cohort.get(i) or [0] * n
                result = {
                    "values": [
                        {"count": counts[k] if i + k < len(rows.starts) else 0, "label": labels[k]}
                        for k in range(n)
                    ],
                    "label": f"{name} {i}",
                    "date": dates.iso(rows.period.aware(start)),
                    "breakdown_value": value,
                }
                results.append(result)
                texts.append(budget.serialize(result))
        return results, texts


def _event(entity: RetentionEntity) -> str | None:
    assert entity.id is None or isinstance(entity.id, str)  # _check_entity
    return entity.id


def _check_filter(retention: RetentionFilter) -> None:
    path: Path = ("retentionFilter",)
    refuse_unknown(retention, "retentionFilter", _FILTER_DISPLAY, path)
    if retention.totalIntervals is not None and retention.totalIntervals < 1:
        raise InvalidQuery(
            "retentionFilter.totalIntervals must be at least 1", path=(*path, "totalIntervals")
        )
    if retention.minimumOccurrences is not None and retention.minimumOccurrences < 1:
        raise InvalidQuery(
            "retentionFilter.minimumOccurrences must be at least 1", path=(*path, "minimumOccurrences")
        )
    if retention.timeWindowMode not in (None, "strict_calendar_dates"):
        raise UnsupportedQuery(
            f"retentionFilter.timeWindowMode '{retention.timeWindowMode}' is not supported",
            path=(*path, "timeWindowMode"),
        )
    if retention.retentionCustomBrackets:
        raise UnsupportedQuery(
            "retentionFilter.retentionCustomBrackets is not supported",
            path=(*path, "retentionCustomBrackets"),
        )
    if retention.aggregationType not in (None, "count"):
        raise UnsupportedQuery(
            f"retentionFilter.aggregationType '{retention.aggregationType}' is not supported",
            path=(*path, "aggregationType"),
        )
    if retention.aggregationProperty is not None and retention.aggregationType not in (None, "count"):
        raise UnsupportedQuery(
            "retentionFilter.aggregationProperty is not supported", path=(*path, "aggregationProperty")
        )
    for name in ("targetEntity", "returningEntity"):
        entity = getattr(retention, name)
        if entity is not None:
            _check_entity(entity, (*path, name))


def _check_entity(entity: RetentionEntity, path: Path) -> None:
    where = ".".join(map(str, path))
    refuse_unknown(entity, where, path=path)
    if entity.type == "actions" or entity.kind == "ActionsNode":
        raise UnsupportedQuery(f"{where}: actions are not supported", path=(*path, "type"))
    if entity.type not in (None, "events") or entity.kind not in (None, "EventsNode"):
        raise UnsupportedQuery(
            f"{where}.type '{entity.type or entity.kind}' is not supported", path=(*path, "type")
        )
    if entity.id is not None and not isinstance(entity.id, str):
        raise InvalidQuery(f"{where}.id must be an event name or null", path=(*path, "id"))
    for node in entity.properties or []:
        check_property_node(node)


def _check_breakdown(breakdown: BreakdownFilter) -> None:
    path: Path = ("breakdownFilter",)
    refuse_unknown(breakdown, "breakdownFilter", path=path)
    if breakdown.breakdown_limit is not None and breakdown.breakdown_limit < 0:
        raise InvalidQuery(
            "breakdownFilter.breakdown_limit must not be negative", path=(*path, "breakdown_limit")
        )
    if not breakdown.enabled:
        return
    if breakdown.breakdowns:
        raise UnsupportedQuery(
            "breakdowns (multiple breakdowns) are not supported", path=(*path, "breakdowns")
        )
    if breakdown.breakdown_type not in (None, *PROPERTY_TYPES):
        raise UnsupportedQuery(
            f"breakdown_type '{breakdown.breakdown_type}' is not supported", path=(*path, "breakdown_type")
        )
    if isinstance(breakdown.breakdown, list):
        raise UnsupportedQuery("a list of breakdown properties is not supported", path=(*path, "breakdown"))
    if not isinstance(breakdown.breakdown, str):
        raise InvalidQuery("breakdownFilter.breakdown must be a property name", path=(*path, "breakdown"))
    if breakdown.breakdown_histogram_bin_count is not None:
        raise UnsupportedQuery(
            "breakdown_histogram_bin_count is not supported", path=(*path, "breakdown_histogram_bin_count")
        )


class _Rows:
    """The cohort rows: their naive local starts from D_0, and D_end (exclusive)."""

    def __init__(self, period: ResolvedRange, starts: list[datetime], end: datetime) -> None:
        self.period = period
        self.starts = starts
        self.end = end

    @classmethod
    def of(cls, query: RetentionQuery, ctx: QueryContext, earliest: datetime | None) -> "_Rows":
        interval = query.interval
        date_range = query.dateRange
        period = resolve_range(date_range, interval, ctx, earliest)
        week_start = ctx.week_start_day
        try:
            local_to = period.date_to.astimezone(period.tz).replace(tzinfo=None)
            end = step(interval, floor_to(interval, local_to, week_start))
            if date_range is not None and date_range.date_from:
                local_from = period.date_from.astimezone(period.tz).replace(tzinfo=None)
                first = floor_to(interval, local_from, week_start)
            else:
                # No date_from (older saved queries): the last totalIntervals periods.
                first = end
                for _ in range(min(query.intervals, MAX_BUCKETS + 1)):
                    first = step_back(interval, first)
        except (OverflowError, ValueError):
            raise InvalidQuery("A date in the query is out of range.", path=("dateRange",)) from None
        starts: list[datetime] = []
        current = first
        while current < end:
            starts.append(current)
            if len(starts) > MAX_BUCKETS:
                raise InvalidQuery(
                    f"The date range has more than {MAX_BUCKETS} {interval} periods.", path=("dateRange",)
                )
            try:
                current = step(interval, current)
            except (OverflowError, ValueError):
                break
        if not starts:
            raise InvalidQuery("dateRange: date_from is after date_to", path=("dateRange",))
        points = len(starts) * query.intervals * (query.breakdown_limit or 1)
        what = "dateRange x retentionFilter.totalIntervals"
        check_points(
            points,
            what,
            ("breakdownFilter", "breakdown_limit") if query.breakdown_limit else ("dateRange",),
            ctx.limits,
        )
        return cls(period, starts, end)
