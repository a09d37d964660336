"""TrendsQuery: plan each series, run one statement per series and period, shape PostHog's results (B.7).

The Python work around the statements (resolving buckets, building a statement, shaping and serializing
thousands of rows) runs in worker threads, so the event loop only waits on the database; `limits` bounds all
of it before it starts, and the result's size while it grows.
"""

import asyncio
import math
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import Executable
from sqlalchemy.exc import DBAPIError

from app.query import dates
from app.query.backend import QueryBackend
from app.query.base import ComputedResult, InvalidQuery, QueryContext
from app.query.dates import ResolvedRange
from app.query.formulas import Formula, SeriesResults, apply_formula, parse_formulas
from app.query.limits import ResultBudget, check_points, statement_parameters
from app.query.schema import (
    PROPERTY_MATH,
    EventsNode,
    GroupNode,
    TrendsQuery,
    TrendsSeries,
    parse_math_hogql,
    parse_property_nodes,
)
from app.query.trends_sql import (
    NULL_LABEL,
    OTHER_LABEL,
    Breakdown,
    FilterNode,
    SeriesFilters,
    SeriesPlan,
)

DEFAULT_BREAKDOWN_LIMIT = 25
WORLD_MAP_BREAKDOWN_LIMIT = 250
# Ranks are compared as a 32-bit parameter; no range has this many values anyway.
MAX_BREAKDOWN_LIMIT = 2**31 - 1
_INVALID_REGEX = "2201B"  # PostgreSQL: invalid_regular_expression
# Statements with more bind parameters than this (about 40 filters) are not kept compiled (backend.py).
REUSABLE_PARAMETERS = 200


def _regex_error(exc: DBAPIError) -> InvalidQuery | None:
    # Python accepted the pattern (schema check) but PostgreSQL's regex dialect did not.
    if getattr(exc.orig, "sqlstate", None) == _INVALID_REGEX:
        return InvalidQuery(f"Invalid regular expression in a property filter: {exc.orig}")
    return None


async def _fetch(backend: QueryBackend, statement: Executable, *, reusable: bool = True) -> Sequence[Any]:
    try:
        return await backend.fetch(statement, reusable=reusable)
    except DBAPIError as exc:
        error = _regex_error(exc)
        if error is None:
            raise
        raise error from None


async def _series_rows(
    backend: QueryBackend, plan: SeriesPlan, period: ResolvedRange, *, reusable: bool
) -> Sequence[Sequence[Any]]:
    try:
        return await backend.trends_series(plan, period, reusable=reusable)
    except DBAPIError as exc:
        error = _regex_error(exc)
        if error is None:
            raise
        raise error from None


def _effective_math(series: TrendsSeries, interval: str) -> str:
    """WAU at weekly or coarser buckets, and MAU at monthly ones, are plain uniques per bucket (B.4)."""
    math_name = series.math or "total"
    if math_name == "weekly_active" and interval in ("week", "month"):
        return "dau"
    if math_name == "monthly_active" and interval == "month":
        return "dau"
    return math_name


def _breakdown_limit(query: TrendsQuery) -> int | None:
    """How many breakdown values keep their own series, None without a breakdown."""
    breakdown_filter = query.breakdownFilter
    if breakdown_filter is None or not breakdown_filter.enabled:
        return None
    if query.display == "WorldMap":
        return WORLD_MAP_BREAKDOWN_LIMIT
    return breakdown_filter.breakdown_limit or DEFAULT_BREAKDOWN_LIMIT


def _breakdown(query: TrendsQuery) -> Breakdown | None:
    limit = _breakdown_limit(query)
    if limit is None:
        return None
    assert query.breakdownFilter is not None and isinstance(query.breakdownFilter.breakdown, str)
    return Breakdown(
        key=query.breakdownFilter.breakdown,
        limit=min(limit, MAX_BREAKDOWN_LIMIT),
        normalize_url=bool(query.breakdownFilter.breakdown_normalize_url),
        kind=query.breakdownFilter.breakdown_type or "event",
    )


def _own_filters(node: EventsNode | GroupNode) -> tuple[FilterNode, ...]:
    return (*(node.properties or []), *(node.fixedProperties or []))


def _events(series: TrendsSeries) -> tuple[tuple[str, ...] | None, SeriesFilters]:
    """The events a series reads (None: all) and its own filters (the query's are added by `_plan`). A group
    reads any of its nodes' events; a node with filters of its own matches only its event with them."""
    if isinstance(series, EventsNode):
        events = None if series.event is None else (series.event,)
        return events, SeriesFilters(None, (), _own_filters(series))
    nodes = [node for node in series.nodes if isinstance(node, EventsNode)]  # check_supported
    names = tuple(dict.fromkeys(node.event for node in nodes if node.event is not None))
    alternatives = None
    if any(node.properties or node.fixedProperties for node in nodes):
        alternatives = tuple((node.event, _own_filters(node)) for node in nodes)
    return names, SeriesFilters(None, (), _own_filters(series), alternatives)


def _plan(query: TrendsQuery, series: TrendsSeries, ctx: QueryContext, interval: str) -> SeriesPlan:
    math_name = _effective_math(series, interval)
    first_bucket_only = query.display == "ActionsLineGraphCumulative" and math_name == "dau"
    distinct_property = None
    if math_name == "hogql":
        # count(distinct person_id / distinct_id) is dau; of a property, its distinct values.
        distinct_property = parse_math_hogql(series.math_hogql, 0)
        math_name = "dau" if distinct_property is None else "unique_property"
    events, series_filters = _events(series)
    test_accounts: tuple[FilterNode, ...] = ()
    if query.filterTestAccounts and ctx.test_account_filters:
        test_accounts = tuple(parse_property_nodes(list(ctx.test_account_filters)))
    return SeriesPlan(
        team_id=ctx.team_id,
        events=events,
        math=math_name,
        math_property=series.math_property if math_name in PROPERTY_MATH else None,
        quantile=PROPERTY_MATH.get(math_name),
        filters=replace(series_filters, properties=query.properties, test_accounts=test_accounts),
        breakdown=_breakdown(query),
        total_value=query.is_total_value,
        first_bucket_only=first_bucket_only,
        distinct_property=distinct_property,
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
        echo["breakdown_type"] = query.breakdownFilter.breakdown_type or "event"
        echo.update(query.breakdownFilter.model_dump(exclude_none=True))
    return {key: value for key, value in echo.items() if value is not None}


def _dump(value: Any) -> Any:
    if isinstance(value, list):
        return [_dump(item) for item in value]
    if hasattr(value, "model_dump"):
        return value.model_dump(exclude_none=True)
    return value


def _series_name(series: TrendsSeries) -> str:
    """A series' label: its event ("All events" for all), or a group's name."""
    if isinstance(series, GroupNode):
        events = [node.event for node in series.nodes if isinstance(node, EventsNode) and node.event]
        return series.name or series.custom_name or ", ".join(events)
    return series.event if series.event is not None else "All events"


def _action(series: TrendsSeries, index: int, period: ResolvedRange) -> dict[str, Any]:
    return {
        "days": [dates.iso(period.aware(bucket)) for bucket in period.buckets],
        "id": _series_name(series) if isinstance(series, GroupNode) else series.event,
        "type": "events",
        "order": index,
        "name": _series_name(series),
        "custom_name": series.custom_name,
        "math": series.math,
        "math_property": series.math_property,
        "math_hogql": series.math_hogql,
        "math_group_type_index": series.math_group_type_index,
        "properties": {},
    }


def _smooth(data: list[Any], intervals: int, counts: bool) -> list[Any]:
    """Each value becomes the floor of the mean of the last `intervals` buckets (fewer at the start): a
    running sum, so any window costs one pass."""
    out: list[Any] = []
    running: Any = 0
    for i, value in enumerate(data):
        running += value
        if i >= intervals:
            running -= data[i - intervals]
        floored = math.floor(running / min(i + 1, intervals))
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

    def __init__(self, rows: Sequence[Sequence[Any]], plan: SeriesPlan) -> None:
        self.plan = plan
        self.values: dict[str | None, dict[datetime | None, Any]] = {}
        ranks: dict[str | None, int] = {}
        # Each row: the bucket (time series), the breakdown value and its rank (breakdown), the value.
        has_bucket, has_breakdown = not plan.total_value, plan.breakdown is not None
        for row in rows:
            bucket = row[0] if has_bucket else None
            breakdown = row[1 if has_bucket else 0] if has_breakdown else None
            self.values.setdefault(breakdown, {})[bucket] = row[-1]
            if has_breakdown:
                ranks[breakdown] = row[-2]
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


def _label(series: TrendsSeries, breakdown: str | None, series_count: int) -> str:
    name = _series_name(series)
    if breakdown is None:
        return name
    return breakdown if series_count == 1 else f"{name} - {breakdown}"


def _shape(
    query: TrendsQuery,
    series: TrendsSeries,
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


Periods = list[tuple[ResolvedRange, str | None]]


def resolve_periods(query: TrendsQuery, ctx: QueryContext, earliest: datetime | None) -> Periods:
    """The current period, and the previous one when comparing, each with its buckets resolved and within
    the limits (`earliest`: the team's first event, for `date_from: "all"`)."""
    tz = _timezone(ctx.timezone)
    # Total-value displays resolve their dates as daily ones (B.7).
    interval = "day" if query.is_total_value else (query.interval or "day")
    date_range = query.dateRange
    date_from = date_range.date_from if date_range else None
    current = dates.resolve(
        date_from,
        date_range.date_to if date_range else None,
        explicit=bool(date_range and date_range.explicitDate),
        interval=interval,
        tz=tz,
        now=ctx.now,
        exact_time_range=query.display == "BoldNumber",
        earliest=earliest,
        week_start=ctx.week_start_day,
    )
    periods: Periods = [(current, None)]
    compare = query.compareFilter
    if compare is not None and compare.compare and date_from != "all":
        previous = dates.previous_period(current, compare.compare_to, ctx.now)
        periods = [(current, "current"), (previous, "previous")]
    for period, _ in periods:
        # Refuse an oversized range before running anything (`buckets` raises past MAX_BUCKETS).
        check_points(query, period, _breakdown_limit(query), ctx.limits)
    return periods


def check_trends(query: TrendsQuery, ctx: QueryContext) -> None:
    """Everything `compute_trends` refuses before it runs SQL, without a database: `date_from: "all"` is
    taken to start now (the team's first event is not known here)."""
    try:
        resolve_periods(query, ctx, ctx.now)
    except OverflowError:
        raise InvalidQuery("A date in the query is out of range.") from None


async def _compute(query: TrendsQuery, ctx: QueryContext, backend: QueryBackend) -> ComputedResult:
    date_range = query.dateRange
    earliest = None
    if date_range is not None and date_range.date_from == "all":
        earliest = await backend.earliest_event(ctx.team_id)
    periods = await asyncio.to_thread(resolve_periods, query, ctx, earliest)
    current = periods[0][0]
    echo = _filter_echo(query, current)
    budget = ResultBudget(ctx.limits.result_bytes)
    formulas = parse_formulas(query.trendsFilter, len(query.series))
    shaped: list[tuple[dict[str, Any], str]] = []
    # With formulas, each period's series results (A, B, …), which only the formulas' results replace.
    by_period: list[SeriesResults] = []
    for period, compare_label in periods:
        by_period.append([])
        for index, series in enumerate(query.series):
            assert isinstance(series, EventsNode | GroupNode)  # check_supported
            plan = await asyncio.to_thread(_plan, query, series, ctx, period.interval)
            reusable = statement_parameters(query, series) <= REUSABLE_PARAMETERS
            rows = await _series_rows(backend, plan, period, reusable=reusable)
            args = (query, series, index, rows, plan, period, echo, compare_label)
            if formulas:
                by_period[-1].append(await asyncio.to_thread(_shape_rows, *args))
            else:
                shaped += await asyncio.to_thread(_shape_serialized, *args, budget)
    if formulas:
        shaped = await asyncio.to_thread(_formula_results, query, formulas, by_period, budget)

    has_more = any(result.get("breakdown_value") == OTHER_LABEL for result, _ in shaped)
    breakdown_filter = query.breakdownFilter
    if has_more and breakdown_filter is not None and breakdown_filter.breakdown_hide_other_aggregation:
        shaped = [(result, text) for result, text in shaped if result.get("breakdown_value") != OTHER_LABEL]
    return ComputedResult(
        results=[result for result, _ in shaped],
        serialized=[text for _, text in shaped],
        has_more=has_more,
        resolved_date_range={
            "date_from": dates.iso(current.date_from),
            "date_to": dates.iso(current.date_to),
        },
    )


def _shape_rows(
    query: TrendsQuery,
    series: TrendsSeries,
    index: int,
    rows: Sequence[Sequence[Any]],
    plan: SeriesPlan,
    period: ResolvedRange,
    echo: dict[str, Any],
    compare_label: str | None,
) -> list[dict[str, Any]]:
    return _shape(query, series, index, _Series(rows, plan), period, echo, compare_label)


def _shape_serialized(
    query: TrendsQuery,
    series: TrendsSeries,
    index: int,
    rows: Sequence[Sequence[Any]],
    plan: SeriesPlan,
    period: ResolvedRange,
    echo: dict[str, Any],
    compare_label: str | None,
    budget: ResultBudget,
) -> list[tuple[dict[str, Any], str]]:
    """One series' results with their JSON, counted against the result's size limit."""
    results = _shape_rows(query, series, index, rows, plan, period, echo, compare_label)
    return [(result, budget.serialize(result)) for result in results]


def _formula_results(
    query: TrendsQuery, formulas: list[Formula], by_period: list[SeriesResults], budget: ResultBudget
) -> list[tuple[dict[str, Any], str]]:
    """Each formula's results (the current period's, then the previous one's), with their JSON; the series
    themselves are not part of the result (as PostHog)."""
    out: list[tuple[dict[str, Any], str]] = []
    for formula in formulas:
        for series in by_period:
            for result in apply_formula(formula, series, total_value=query.is_total_value):
                out.append((result, budget.serialize(result)))
    return out
