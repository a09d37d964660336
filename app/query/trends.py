"""TrendsQuery: plan each series, run one statement per series and period, shape PostHog's results (B.7)."""

import math
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import Executable, and_
from sqlalchemy.exc import DBAPIError

from app.query import dates
from app.query.backend import QueryBackend
from app.query.base import ComputedResult, InvalidQuery, QueryContext
from app.query.dates import ResolvedRange
from app.query.filters import node_condition, properties_condition
from app.query.schema import PROPERTY_MATH, EventsNode, TrendsQuery
from app.query.trends_sql import (
    NULL_LABEL,
    OTHER_LABEL,
    Breakdown,
    SeriesPlan,
    earliest_statement,
    series_statement,
)

DEFAULT_BREAKDOWN_LIMIT = 25
WORLD_MAP_BREAKDOWN_LIMIT = 250
# Ranks are compared as a 32-bit parameter; no range has this many values anyway.
MAX_BREAKDOWN_LIMIT = 2**31 - 1
_INVALID_REGEX = "2201B"  # PostgreSQL: invalid_regular_expression


async def _fetch(backend: QueryBackend, statement: Executable) -> Sequence[Any]:
    try:
        return await backend.fetch(statement)
    except DBAPIError as exc:
        # Python accepted the pattern (schema check) but PostgreSQL's regex dialect did not.
        if getattr(exc.orig, "sqlstate", None) == _INVALID_REGEX:
            raise InvalidQuery(f"Invalid regular expression in a property filter: {exc.orig}") from None
        raise


def _effective_math(series: EventsNode, interval: str) -> str:
    """WAU at weekly or coarser buckets, and MAU at monthly ones, are plain uniques per bucket (B.4)."""
    math_name = series.math or "total"
    if math_name == "weekly_active" and interval in ("week", "month"):
        return "dau"
    if math_name == "monthly_active" and interval == "month":
        return "dau"
    return math_name


def _breakdown(query: TrendsQuery) -> Breakdown | None:
    breakdown_filter = query.breakdownFilter
    if breakdown_filter is None or not breakdown_filter.enabled:
        return None
    assert isinstance(breakdown_filter.breakdown, str)  # check_supported
    if query.display == "WorldMap":
        limit = WORLD_MAP_BREAKDOWN_LIMIT
    else:
        limit = breakdown_filter.breakdown_limit or DEFAULT_BREAKDOWN_LIMIT
    return Breakdown(
        key=breakdown_filter.breakdown,
        limit=min(limit, MAX_BREAKDOWN_LIMIT),
        normalize_url=bool(breakdown_filter.breakdown_normalize_url),
    )


def _plan(query: TrendsQuery, series: EventsNode, ctx: QueryContext, interval: str) -> SeriesPlan:
    math_name = _effective_math(series, interval)
    nodes = [*(series.properties or []), *(series.fixedProperties or [])]
    series_filters = [node_condition(node) for node in nodes]
    return SeriesPlan(
        team_id=ctx.team_id,
        event=series.event,
        math=math_name,
        math_property=series.math_property if math_name in PROPERTY_MATH else None,
        quantile=PROPERTY_MATH.get(math_name),
        where=and_(properties_condition(query.properties), *series_filters),
        breakdown=_breakdown(query),
        total_value=query.is_total_value,
        first_bucket_only=query.display == "ActionsLineGraphCumulative" and math_name == "dau",
    )


def _filter_echo(query: TrendsQuery, period: ResolvedRange) -> dict[str, Any]:
    """The legacy `filter` of every series: the query in insight-filter terms, `None`s left out (B.7)."""
    echo: dict[str, Any] = {
        "insight": "TRENDS",
        "properties": _dump(query.properties) if query.properties is not None else [],
        "filter_test_accounts": bool(query.filterTestAccounts),
        "date_from": dates.iso(period.date_from),
        "date_to": dates.iso(period.date_to),
        "entity_type": "events",
        "interval": query.interval or "day",
    }
    if query.trendsFilter is not None:
        echo.update({"display": "ActionsLineGraph", "smoothingIntervals": 1})
        echo.update(query.trendsFilter.model_dump(exclude_none=True))
    if query.breakdownFilter is not None:
        echo["breakdown_type"] = "event"
        echo.update(query.breakdownFilter.model_dump(exclude_none=True))
    return {key: value for key, value in echo.items() if value is not None}


def _dump(value: Any) -> Any:
    if isinstance(value, list):
        return [_dump(item) for item in value]
    if hasattr(value, "model_dump"):
        return value.model_dump(exclude_none=True)
    return value


def _action(series: EventsNode, index: int, period: ResolvedRange) -> dict[str, Any]:
    return {
        "days": [dates.iso(period.aware(bucket)) for bucket in period.buckets],
        "id": series.event,
        "type": "events",
        "order": index,
        "name": series.event if series.event is not None else "All events",
        "custom_name": series.custom_name,
        "math": series.math,
        "math_property": series.math_property,
        "math_hogql": series.math_hogql,
        "math_group_type_index": series.math_group_type_index,
        "properties": {},
    }


def _smooth(data: list[Any], intervals: int, counts: bool) -> list[Any]:
    """Each value becomes the floor of the mean of the last `intervals` buckets (fewer at the start)."""
    out: list[Any] = []
    for i in range(len(data)):
        window = data[max(0, i - intervals + 1) : i + 1]
        floored = math.floor(sum(window) / len(window))
        out.append(floored if counts else float(floored))
    return out


def _cumulative(data: list[Any]) -> list[Any]:
    out: list[Any] = []
    running: Any = 0
    for value in data:
        running += value
        out.append(running)
    return out


class _Series:
    """The rows of one series and period, grouped by breakdown value, in result order."""

    def __init__(self, rows: Sequence[Any], plan: SeriesPlan) -> None:
        self.plan = plan
        self.values: dict[str | None, dict[datetime | None, Any]] = {}
        ranks: dict[str | None, int] = {}
        for row in rows:
            mapping = row._mapping
            breakdown = mapping["breakdown"] if plan.breakdown is not None else None
            bucket = None if plan.total_value else mapping["bucket"]
            self.values.setdefault(breakdown, {})[bucket] = mapping["value"]
            if plan.breakdown is not None:
                ranks[breakdown] = mapping["rank"]
        if plan.breakdown is None:
            self.order: list[str | None] = [None]
        else:
            # Normal values by rank (total desc, value asc), then the null value, then "other" (B.5).
            category = {NULL_LABEL: 1, OTHER_LABEL: 2}
            self.order = sorted(ranks, key=lambda value: (category.get(value or "", 0), ranks[value]))

    def data(self, breakdown: str | None, buckets: list[datetime]) -> list[Any]:
        zero: Any = 0 if self.plan.counts else 0.0
        values = self.values.get(breakdown, {})
        return [values.get(bucket, zero) for bucket in buckets]

    def total(self, breakdown: str | None) -> Any:
        zero: Any = 0 if self.plan.counts else 0.0
        return self.values.get(breakdown, {}).get(None, zero)


def _label(series: EventsNode, breakdown: str | None, series_count: int) -> str:
    name = series.event if series.event is not None else "All events"
    if breakdown is None:
        return name
    return breakdown if series_count == 1 else f"{name} - {breakdown}"


def _shape(
    query: TrendsQuery,
    series: EventsNode,
    index: int,
    rows: _Series,
    period: ResolvedRange,
    echo: dict[str, Any],
    compare_label: str | None,
) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    buckets = period.buckets
    # The same for every breakdown value of the series: built once.
    action = _action(series, index, period)
    labels = [dates.label(bucket, period) for bucket in buckets]
    days = [dates.day_key(bucket, period.interval) for bucket in buckets]
    for breakdown in rows.order:
        result: dict[str, Any]
        if query.is_total_value:
            value = rows.total(breakdown)
            if breakdown == NULL_LABEL and value == 0:
                continue  # an empty null value is not a series (B.5)
            result = {"data": [], "days": [], "count": 0, "aggregated_value": value}
        else:
            data = rows.data(breakdown, buckets)
            smoothing = query.trendsFilter.smoothingIntervals if query.trendsFilter else None
            if smoothing and smoothing > 1:
                data = _smooth(data, smoothing, rows.plan.counts)
            if query.display == "ActionsLineGraphCumulative":
                data = _cumulative(data)
                count = float(data[-1]) if data else 0.0
            else:
                count = float(sum(data))
            if breakdown == NULL_LABEL and count == 0:
                continue
            result = {"data": data, "labels": labels, "days": days, "count": count}
        result.update(
            label=_label(series, breakdown, len(query.series)), filter=echo, action=action, order=index
        )
        if breakdown is not None:
            result["breakdown_value"] = breakdown
        if compare_label is not None:
            result["compare"] = True
            result["compare_label"] = compare_label
        results.append(result)
    return results


def _timezone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidQuery(f"Unknown team timezone {name!r}") from None


async def compute_trends(query: TrendsQuery, ctx: QueryContext, backend: QueryBackend) -> ComputedResult:
    try:
        return await _compute(query, ctx, backend)
    except OverflowError:
        # Python's datetimes end at years 1 and 9999: a range (or its look-back) reaching past them.
        raise InvalidQuery("A date in the query is out of range.") from None


async def _compute(query: TrendsQuery, ctx: QueryContext, backend: QueryBackend) -> ComputedResult:
    tz = _timezone(ctx.timezone)
    total_value = query.is_total_value
    # Total-value displays resolve their dates as daily ones (B.7).
    interval = "day" if total_value else (query.interval or "day")
    date_range = query.dateRange
    date_from = date_range.date_from if date_range else None
    earliest = None
    if date_from == "all":
        earliest = (await _fetch(backend, earliest_statement(ctx.team_id)))[0][0]
    current = dates.resolve(
        date_from,
        date_range.date_to if date_range else None,
        explicit=bool(date_range and date_range.explicitDate),
        interval=interval,
        tz=tz,
        now=ctx.now,
        exact_time_range=query.display == "BoldNumber",
        earliest=earliest,
    )
    periods: list[tuple[ResolvedRange, str | None]] = [(current, None)]
    compare = query.compareFilter
    if compare is not None and compare.compare and date_from != "all":
        previous = dates.previous_period(current, compare.compare_to, ctx.now)
        periods = [(current, "current"), (previous, "previous")]

    echo = _filter_echo(query, current)
    results: list[dict[str, Any]] = []
    for period, compare_label in periods:
        period.buckets  # noqa: B018 - refuse an oversized range before running anything
        for index, series in enumerate(query.series):
            assert isinstance(series, EventsNode)  # check_supported
            plan = _plan(query, series, ctx, interval)
            rows = _Series(await _fetch(backend, series_statement(plan, period)), plan)
            results.extend(_shape(query, series, index, rows, period, echo, compare_label))

    has_more = any(result.get("breakdown_value") == OTHER_LABEL for result in results)
    breakdown_filter = query.breakdownFilter
    if has_more and breakdown_filter is not None and breakdown_filter.breakdown_hide_other_aggregation:
        results = [result for result in results if result.get("breakdown_value") != OTHER_LABEL]
    return ComputedResult(
        results=results,
        has_more=has_more,
        resolved_date_range={
            "date_from": dates.iso(current.date_from),
            "date_to": dates.iso(current.date_to),
        },
    )
