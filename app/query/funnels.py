"""FunnelsQuery: parse and check the query, plan its statement, shape PostHog's results (steps, trends and
time to convert).

The actor is the distinct id. Per-actor matching happens in PostgreSQL (`funnels_sql`): what comes back is
one row per breakdown value (steps), per period (trends) or per converted actor (time to convert, one float
each), so the Python work here stays small whatever the number of events.
"""

import asyncio
import math
from collections.abc import Sequence
from datetime import timedelta
from typing import Any, Literal

from pydantic import ValidationError
from sqlalchemy import Executable, and_, func, literal, select, true

from app.query import dates
from app.query.backend import QueryBackend
from app.query.base import (
    ComputedResult,
    InvalidQuery,
    Path,
    QueryContext,
    QueryLimits,
    QueryTooLarge,
    UnsupportedQuery,
)
from app.query.dates import ResolvedRange
from app.query.filters import FILTER_PARAMETERS, global_condition, node_condition
from app.query.funnels_sql import (
    OTHER,
    STATEMENT_PARAMETERS,
    STEP_PARAMETERS,
    FunnelBreakdown,
    FunnelExclusion,
    FunnelPlan,
    FunnelStep,
    ordered_actors,
    steps_statement,
    trends_statement,
    ttc_statement,
    unordered_actors,
)
from app.query.limits import _count_and_check_values
from app.query.schema import (
    KNOWN_SERIES_KINDS,
    PROPERTY_TYPES,
    BreakdownFilter,
    CompareFilter,
    DateRange,
    EventsNode,
    Interval,
    OtherSeriesNode,
    PropertyGroupFilter,
    PropertyNode,
    SeriesNode,
    _format_error,
    _Node,
    check_property_node,
    parse_property_nodes,
)
from app.query.trends import _fetch, _timezone
from app.query.trends_sql import SeriesFilters

DEFAULT_WINDOW = 14
WINDOW_SECONDS = {
    "second": 1,
    "minute": 60,
    "hour": 3600,
    "day": 86400,
    "week": 604800,
    "month": 31 * 86400,  # PostHog's month is 31 days
}
# A window longer than this is no conversion window (and would overflow PostgreSQL's interval arithmetic).
MAX_WINDOW = timedelta(days=365 * 100)
DEFAULT_BREAKDOWN_LIMIT = 25
MAX_BREAKDOWN_LIMIT = 2**31 - 1
# More steps than this is no funnel: every step is one more window pass over the events.
MAX_STEPS = 30


class FunnelExclusionNode(_Node):
    kind: str
    event: str | None = None
    name: str | None = None
    custom_name: str | None = None
    math: str | None = None
    properties: list[PropertyNode] | None = None
    funnelFromStep: int | None = None
    funnelToStep: int | None = None


class FunnelsFilter(_Node):
    funnelVizType: Literal["steps", "trends", "time_to_convert"] | None = None
    funnelOrderType: Literal["ordered", "strict", "unordered"] | None = None
    funnelWindowInterval: int | None = None
    funnelWindowIntervalUnit: Literal["second", "minute", "hour", "day", "week", "month"] | None = None
    exclusions: list[FunnelExclusionNode] | None = None
    breakdownAttributionType: Literal["first_touch", "last_touch", "all_events", "step"] | None = None
    breakdownAttributionValue: int | None = None
    funnelFromStep: int | None = None
    funnelToStep: int | None = None
    binCount: int | None = None
    funnelAggregateByHogQL: str | None = None
    funnelStepReference: Literal["total", "previous"] | None = None


class FunnelsQuery(_Node):
    kind: Literal["FunnelsQuery"]
    series: list[SeriesNode]
    interval: Interval | None = None
    dateRange: DateRange | None = None
    properties: list[PropertyNode] | PropertyGroupFilter | None = None
    filterTestAccounts: bool | None = None
    aggregation_group_type_index: int | None = None
    samplingFactor: float | None = None
    breakdownFilter: BreakdownFilter | None = None
    compareFilter: CompareFilter | None = None
    funnelsFilter: FunnelsFilter | None = None

    @property
    def filter(self) -> FunnelsFilter:
        return self.funnelsFilter or FunnelsFilter()

    @property
    def viz(self) -> str:
        return self.filter.funnelVizType or "steps"

    @property
    def order(self) -> str:
        return self.filter.funnelOrderType or "ordered"

    @property
    def steps(self) -> list[EventsNode]:
        return [s for s in self.series if isinstance(s, EventsNode)]


class FunnelsVizNode(_Node):
    kind: Literal["InsightVizNode"]
    source: FunnelsQuery


# Keys accepted without being implemented, because they only change how a funnel is drawn.
_DISPLAY_KEYS = {
    "FunnelsQuery": frozenset({"dataColorTheme", "modifiers", "tags", "response", "version"}),
    "funnelsFilter": frozenset(
        {
            "layout",
            "hiddenLegendBreakdowns",
            "hiddenLegendKeys",
            "resultCustomizations",
            "goalLines",
            "showTrendLines",
            "showLegend",
            "legendPosition",
            "showValuesOnSeries",
            "breakdownSorting",
            "showAnnotations",
            "hideIncompleteConversionWindowPeriods",
            "useUdf",
            "customAggregationTarget",
            "funnelStepReference",
        }
    ),
    "EventsNode": frozenset({"optionalInFunnel", "limit", "orderBy", "response", "version"}),
    "exclusion": frozenset({"optionalInFunnel", "version"}),
    "breakdownFilter": frozenset(),
    "compareFilter": frozenset(),
    "dateRange": frozenset(),
}


def _refuse_unknown(node: _Node, where: str, path: Path) -> None:
    ignored = _DISPLAY_KEYS[where]
    for key in node.model_extra or {}:
        if key not in ignored:
            raise UnsupportedQuery(f"{where} field '{key}' is not supported", path=(*path, key))


def parse_funnels(raw: dict[str, Any]) -> FunnelsQuery:
    """A `FunnelsQuery`, bare or in an InsightVizNode; raise `InvalidQuery` naming the field."""
    try:
        if raw.get("kind") == "InsightVizNode":
            return FunnelsVizNode.model_validate(raw).source
        return FunnelsQuery.model_validate(raw)
    except ValidationError as exc:
        loc = exc.errors()[0]["loc"]
        path = tuple(part for part in loc if isinstance(part, str | int))
        if raw.get("kind") == "InsightVizNode" and path[:1] == ("source",):
            path = path[1:]
        raise InvalidQuery(f"Invalid query: {_format_error(exc)}", path=path) from None


def _properties_of(query: FunnelsQuery) -> list[tuple[Any, Path]]:
    """Every `properties` value of the query, with its path."""
    out: list[tuple[Any, Path]] = [(query.properties, ("properties",))]
    for index, series in enumerate(query.series):
        if isinstance(series, EventsNode):
            out.append((series.properties, ("series", index, "properties")))
            out.append((series.fixedProperties, ("series", index, "fixedProperties")))
    for index, exclusion in enumerate(query.filter.exclusions or []):
        out.append((exclusion.properties, ("funnelsFilter", "exclusions", index, "properties")))
    return out


def check_funnel_filters(query: FunnelsQuery, limits: QueryLimits) -> None:
    """Values per filter, and the bind parameters of the one statement that carries every filter."""
    filters = sum(_count_and_check_values(nodes, path, limits) for nodes, path in _properties_of(query))
    parameters = STATEMENT_PARAMETERS + STEP_PARAMETERS * len(query.series) + FILTER_PARAMETERS * filters
    if parameters > limits.parameters:
        raise QueryTooLarge(
            f"{filters:,} property filters in the funnel (steps, exclusions and the query's own) need up to "
            f"{parameters:,} bind parameters, more than the limit of {limits.parameters:,}; use one filter "
            "with a list of values instead of many filters",
            path=("properties",),
        )


def _check_node_properties(nodes: Any) -> None:
    if isinstance(nodes, PropertyGroupFilter):
        check_property_node(nodes)
        return
    for node in nodes or []:
        check_property_node(node)


def _check_step(series: EventsNode | OtherSeriesNode, index: int) -> None:
    path: Path = ("series", index)
    if isinstance(series, OtherSeriesNode):
        if series.kind in KNOWN_SERIES_KINDS:
            raise UnsupportedQuery(f"{series.kind} steps are not supported", path=(*path, "kind"))
        raise InvalidQuery(f"series.{index}: unknown kind '{series.kind}'", path=(*path, "kind"))
    _refuse_unknown(series, "EventsNode", path)
    if (series.math or "total") != "total":
        raise UnsupportedQuery(f"math '{series.math}' is not supported in funnels", path=(*path, "math"))
    for field in ("math_property", "math_hogql", "math_group_type_index", "math_property_revenue_currency"):
        if getattr(series, field) is not None:
            raise UnsupportedQuery(f"{field} is not supported in funnels", path=(*path, field))
    if series.math_multiplier not in (None, 1):
        raise UnsupportedQuery("math_multiplier is not supported in funnels", path=(*path, "math_multiplier"))
    if (series.model_extra or {}).get("optionalInFunnel"):
        raise UnsupportedQuery("optionalInFunnel is not supported", path=(*path, "optionalInFunnel"))
    _check_node_properties(series.properties)
    _check_node_properties(series.fixedProperties)


def _same_filters(a: Any, b: Any) -> bool:
    def dump(nodes: Any) -> Any:
        return [n.model_dump(exclude_none=True) for n in nodes or []]

    return bool(dump(a) == dump(b))


def _check_exclusions(query: FunnelsQuery) -> None:
    n = len(query.series)
    for index, exclusion in enumerate(query.filter.exclusions or []):
        path: Path = ("funnelsFilter", "exclusions", index)
        if exclusion.kind != "EventsNode":
            if exclusion.kind in KNOWN_SERIES_KINDS:
                raise UnsupportedQuery(f"{exclusion.kind} exclusions are not supported", path=(*path, "kind"))
            raise InvalidQuery(f"exclusions.{index}: unknown kind '{exclusion.kind}'", path=(*path, "kind"))
        _refuse_unknown(exclusion, "exclusion", path)
        if (exclusion.math or "total") != "total":
            raise UnsupportedQuery("math is not supported on exclusions", path=(*path, "math"))
        low = exclusion.funnelFromStep if exclusion.funnelFromStep is not None else 0
        high = exclusion.funnelToStep if exclusion.funnelToStep is not None else n - 1
        if not (0 <= low < high <= n - 1):
            raise InvalidQuery(
                f"funnelsFilter.exclusions.{index}: funnelFromStep ({low}) and funnelToStep ({high}) must "
                f"satisfy 0 <= funnelFromStep < funnelToStep <= {n - 1}",
                path=(*path, "funnelFromStep"),
            )
        if query.order == "unordered" and (low, high) != (0, n - 1):
            raise InvalidQuery(
                f"funnelsFilter.exclusions.{index}: unordered funnels only take exclusions over every step "
                f"(funnelFromStep 0, funnelToStep {n - 1})",
                path=(*path, "funnelFromStep"),
            )
        for step_index in range(low, high + 1):
            step = query.series[step_index]
            if not isinstance(step, EventsNode):
                continue
            # A step that is the exclusion, or matches every event the exclusion does (no filters of its own).
            if (step.event is None or step.event == exclusion.event) and (
                not step.properties or _same_filters(step.properties, exclusion.properties)
            ):
                raise InvalidQuery(
                    f"funnelsFilter.exclusions.{index}: the exclusion matches step {step_index} "
                    "(exclusions must differ from the steps they apply to)",
                    path=path,
                )
        _check_node_properties(exclusion.properties)


def _check_breakdown(query: FunnelsQuery) -> None:
    breakdown = query.breakdownFilter
    if breakdown is None:
        return
    path: Path = ("breakdownFilter",)
    _refuse_unknown(breakdown, "breakdownFilter", path)
    if breakdown.breakdown_limit is not None and breakdown.breakdown_limit < 1:
        raise InvalidQuery(
            "breakdownFilter.breakdown_limit must be at least 1", path=(*path, "breakdown_limit")
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
    key = breakdown.breakdown
    if isinstance(key, list):
        if len(key) != 1:
            raise UnsupportedQuery(
                "a list of several breakdown properties is not supported", path=(*path, "breakdown")
            )
        key = key[0]
    if not isinstance(key, str) or not key:
        raise InvalidQuery("breakdownFilter.breakdown must be a property name", path=(*path, "breakdown"))
    if breakdown.breakdown_histogram_bin_count is not None:
        raise UnsupportedQuery(
            "breakdown_histogram_bin_count is not supported", path=(*path, "breakdown_histogram_bin_count")
        )
    if breakdown.breakdown_hide_other_aggregation:
        raise UnsupportedQuery(
            "breakdown_hide_other_aggregation is not supported in funnels",
            path=(*path, "breakdown_hide_other_aggregation"),
        )


def _breakdown_key(query: FunnelsQuery) -> str | None:
    breakdown = query.breakdownFilter
    if breakdown is None or not breakdown.enabled:
        return None
    key = breakdown.breakdown
    if isinstance(key, list):
        key = key[0]
    assert isinstance(key, str)
    return key


def _step_range(query: FunnelsQuery) -> tuple[int, int]:
    n = len(query.series)
    low = query.filter.funnelFromStep
    high = query.filter.funnelToStep
    return (0 if low is None else low), (n - 1 if high is None else high)


def check_supported(query: FunnelsQuery) -> None:
    """Refuse, naming the field, what the funnel engine does not implement or what PostHog refuses."""
    _refuse_unknown(query, "FunnelsQuery", ())
    n = len(query.series)
    if n < 2:
        raise InvalidQuery("A funnel needs at least 2 steps in `series`.", path=("series",))
    if n > MAX_STEPS:
        raise QueryTooLarge(f"series: {n} steps, more than the limit of {MAX_STEPS}", path=("series",))
    if query.aggregation_group_type_index is not None:
        raise UnsupportedQuery(
            "aggregation_group_type_index is not supported", path=("aggregation_group_type_index",)
        )
    if query.samplingFactor not in (None, 1):
        raise UnsupportedQuery("samplingFactor is not supported", path=("samplingFactor",))
    if query.interval == "minute":
        raise UnsupportedQuery("interval 'minute' is not supported", path=("interval",))
    if query.compareFilter is not None:
        _refuse_unknown(query.compareFilter, "compareFilter", ("compareFilter",))
        if query.compareFilter.compare:
            raise UnsupportedQuery(
                "compareFilter.compare is not supported in funnels", path=("compareFilter",)
            )
    if query.dateRange is not None:
        _refuse_unknown(query.dateRange, "dateRange", ("dateRange",))
        if query.dateRange.excludeIncompletePeriods:
            raise UnsupportedQuery(
                "dateRange.excludeIncompletePeriods is not supported",
                path=("dateRange", "excludeIncompletePeriods"),
            )
    _check_node_properties(query.properties)
    for index, series in enumerate(query.series):
        _check_step(series, index)
    f = query.filter
    fpath: Path = ("funnelsFilter",)
    _refuse_unknown(f, "funnelsFilter", fpath)
    if f.funnelAggregateByHogQL:
        raise UnsupportedQuery(
            "funnelAggregateByHogQL is not supported (the actor is the distinct id)",
            path=(*fpath, "funnelAggregateByHogQL"),
        )
    if f.funnelWindowInterval is not None and f.funnelWindowInterval < 1:
        raise InvalidQuery(
            "funnelsFilter.funnelWindowInterval must be at least 1", path=(*fpath, "funnelWindowInterval")
        )
    if window_of(query) > MAX_WINDOW:
        raise InvalidQuery(
            "funnelsFilter.funnelWindowInterval: the conversion window is longer than 100 years",
            path=(*fpath, "funnelWindowInterval"),
        )
    low, high = _step_range(query)
    if not (0 <= low <= n - 2):
        raise InvalidQuery(
            f"funnelsFilter.funnelFromStep must be between 0 and {n - 2}", path=(*fpath, "funnelFromStep")
        )
    if not (1 <= high <= n - 1) or high <= low:
        raise InvalidQuery(
            f"funnelsFilter.funnelToStep must be between {low + 1} and {n - 1}", path=(*fpath, "funnelToStep")
        )
    _check_exclusions(query)
    _check_breakdown(query)
    attribution = f.breakdownAttributionType or "first_touch"
    if attribution == "step":
        value = f.breakdownAttributionValue if f.breakdownAttributionValue is not None else 0
        if not (0 <= value <= n - 1):
            raise InvalidQuery(
                f"funnelsFilter.breakdownAttributionValue must be a step between 0 and {n - 1}",
                path=(*fpath, "breakdownAttributionValue"),
            )
        if query.order == "unordered" and value != 0:
            raise InvalidQuery(
                "funnelsFilter.breakdownAttributionValue: unordered funnels only attribute to step 0",
                path=(*fpath, "breakdownAttributionValue"),
            )
    if query.viz == "trends":
        if query.order == "unordered":
            raise UnsupportedQuery(
                "funnelOrderType 'unordered' is not supported with funnelVizType 'trends'",
                path=(*fpath, "funnelOrderType"),
            )
        if _breakdown_key(query) is not None:
            raise UnsupportedQuery(
                "breakdownFilter is not supported with funnelVizType 'trends'", path=("breakdownFilter",)
            )
        if f.exclusions:
            raise UnsupportedQuery(
                "exclusions are not supported with funnelVizType 'trends'", path=(*fpath, "exclusions")
            )
    if query.order == "unordered" and f.exclusions:
        raise UnsupportedQuery(
            "exclusions are not supported in unordered funnels", path=(*fpath, "exclusions")
        )


def window_of(query: FunnelsQuery) -> timedelta:
    f = query.filter
    interval = f.funnelWindowInterval if f.funnelWindowInterval is not None else DEFAULT_WINDOW
    unit = f.funnelWindowIntervalUnit or "day"
    try:
        return timedelta(seconds=interval * WINDOW_SECONDS[unit])
    except OverflowError:
        return MAX_WINDOW * 2


def _plan(query: FunnelsQuery, ctx: QueryContext) -> FunnelPlan:
    steps = tuple(
        FunnelStep(
            event=s.event,
            where=and_(
                true(), *(node_condition(n) for n in [*(s.properties or []), *(s.fixedProperties or [])])
            ),
            nodes=(*(s.properties or []), *(s.fixedProperties or [])),
        )
        for s in query.steps
    )
    n = len(steps)
    exclusions = tuple(
        FunnelExclusion(
            event=x.event,
            where=and_(true(), *(node_condition(node) for node in x.properties or [])),
            from_step=x.funnelFromStep if x.funnelFromStep is not None else 0,
            to_step=x.funnelToStep if x.funnelToStep is not None else n - 1,
            nodes=tuple(x.properties or []),
        )
        for x in query.filter.exclusions or []
    )
    breakdown = None
    key = _breakdown_key(query)
    if key is not None:
        assert query.breakdownFilter is not None
        f = query.filter
        breakdown = FunnelBreakdown(
            key=key,
            kind=query.breakdownFilter.breakdown_type or "event",
            attribution=f.breakdownAttributionType or "first_touch",
            step=f.breakdownAttributionValue or 0,
            limit=min(query.breakdownFilter.breakdown_limit or DEFAULT_BREAKDOWN_LIMIT, MAX_BREAKDOWN_LIMIT),
            normalize_url=bool(query.breakdownFilter.breakdown_normalize_url),
        )
    return FunnelPlan(
        team_id=ctx.team_id,
        steps=steps,
        exclusions=exclusions,
        order=query.order,
        window=window_of(query),
        where=global_condition(query.properties, query.filterTestAccounts, ctx),
        breakdown=breakdown,
        filters=SeriesFilters(
            query.properties,
            tuple(parse_property_nodes(list(ctx.test_account_filters)))
            if query.filterTestAccounts and ctx.test_account_filters
            else (),
            (),
        ),
    )


def resolve_period(query: FunnelsQuery, ctx: QueryContext, earliest: Any) -> ResolvedRange:
    tz = _timezone(ctx.timezone)
    date_range = query.dateRange
    period = dates.resolve(
        date_range.date_from if date_range else None,
        date_range.date_to if date_range else None,
        explicit=bool(date_range and date_range.explicitDate),
        interval=query.interval or "day",
        tz=tz,
        now=ctx.now,
        exact_time_range=False,
        earliest=earliest,
        week_start=ctx.week_start_day,
    )
    if query.viz == "trends" and len(period.buckets) > ctx.limits.breakdown_points:
        raise QueryTooLarge(
            f"dateRange: {len(period.buckets):,} {period.interval} intervals, more than the limit of "
            f"{ctx.limits.breakdown_points:,} data points; use a shorter date range or a longer interval",
            path=("dateRange",),
        )
    return period


def check_funnels(query: FunnelsQuery, ctx: QueryContext) -> None:
    """What `compute_funnels` refuses before running SQL (`date_from: "all"` counted from now)."""
    try:
        period = resolve_period(query, ctx, ctx.now)
        if query.viz == "trends":
            period.buckets  # noqa: B018 - raises past MAX_BUCKETS
    except OverflowError:
        raise InvalidQuery("A date in the query is out of range.") from None


def funnel_statement(plan: FunnelPlan, period: ResolvedRange, viz: str, low: int, high: int) -> Executable:
    """PostgreSQL's statement of `viz` (`low`, `high`: the steps trends and time to convert look at)."""
    if viz == "trends":
        return trends_statement(plan, period, low, high)
    actors = unordered_actors(plan, period) if plan.order == "unordered" else ordered_actors(plan, period)
    if viz == "time_to_convert":
        return ttc_statement(plan, actors, low, high)
    return steps_statement(plan, actors)


async def postgres_funnel_rows(
    backend: QueryBackend,
    plan: FunnelPlan,
    period: ResolvedRange,
    viz: str,
    steps: tuple[int, int],
    work_mem_kb: int,
) -> Sequence[Any]:
    statement = await asyncio.to_thread(funnel_statement, plan, period, viz, *steps)
    return await _with_work_mem(backend, statement, work_mem_kb)


async def compute_funnels(query: FunnelsQuery, ctx: QueryContext, backend: QueryBackend) -> ComputedResult:
    try:
        earliest = None
        if query.dateRange is not None and query.dateRange.date_from == "all":
            earliest = await backend.earliest_event(ctx.team_id)
        period = await asyncio.to_thread(resolve_period, query, ctx, earliest)
        plan = await asyncio.to_thread(_plan, query, ctx)
        steps = _step_range(query) if query.viz in ("trends", "time_to_convert") else (0, 0)
        rows = await backend.funnel_rows(plan, period, query.viz, steps, work_mem_kb=ctx.limits.work_mem_kb)
        results = await asyncio.to_thread(_shape, query, rows, period)
    except OverflowError:
        raise InvalidQuery("A date in the query is out of range.") from None
    return ComputedResult(
        results=results,
        resolved_date_range={"date_from": dates.iso(period.date_from), "date_to": dates.iso(period.date_to)},
    )


# Set for the funnel statement alone. Its per-actor windows run in one process whatever happens below them,
# so parallel workers only add a Gather Merge of every sorted event (measured slower on 2 cores).
_SETTINGS = ("work_mem", "max_parallel_workers_per_gather")


async def _with_work_mem(backend: QueryBackend, statement: Executable, work_mem_kb: int) -> Sequence[Any]:
    """Run `statement` with `work_mem` raised for it alone (its sort of every event per actor stays in
    memory) and no parallel workers, then put the previous values back: the transaction may go on to run
    other queries. (After a failure the caller's savepoint rollback undoes the settings.)"""
    values = [f"{work_mem_kb}kB" if work_mem_kb else None, "0"]
    before = (await backend.fetch(select(*(func.current_setting(literal(name)) for name in _SETTINGS))))[0]
    await backend.fetch(_set(dict(zip(_SETTINGS, values, strict=True))))
    rows = await _fetch(backend, statement, reusable=False)
    await backend.fetch(_set(dict(zip(_SETTINGS, before, strict=True))))
    return rows


def _set(values: dict[str, str | None]) -> Executable:
    return select(
        *(
            func.set_config(literal(name), literal(value), true())
            for name, value in values.items()
            if value is not None
        )
    )


def _shape(query: FunnelsQuery, rows: Sequence[Any], period: ResolvedRange) -> Any:
    if query.viz == "trends":
        return shape_trends(rows, period)
    if query.viz == "time_to_convert":
        return shape_time_to_convert([row[0] for row in rows], query.filter.binCount)
    return shape_steps(query, rows)


def _step_base(query: FunnelsQuery, index: int) -> dict[str, Any]:
    if query.order == "unordered":
        noun = "step" if index == 0 else "steps"
        return {"action_id": None, "name": f"Completed {index + 1} {noun}", "custom_name": None}
    step = query.steps[index]
    return {"action_id": step.event, "name": step.event, "custom_name": step.custom_name}


def _steps_of(query: FunnelsQuery, mapping: Any, breakdown: list[str] | None) -> list[dict[str, Any]]:
    out = []
    for j in range(len(query.series)):
        step = {
            **_step_base(query, j),
            "order": j,
            "people": [],
            "count": int(mapping[f"c{j}"] or 0),
            "type": "events",
            "average_conversion_time": None if j == 0 else mapping[f"avg{j}"],
            "median_conversion_time": None if j == 0 else mapping[f"med{j}"],
        }
        if breakdown is not None:
            step["breakdown"] = breakdown
            step["breakdown_value"] = breakdown
        out.append(step)
    return out


def shape_steps(query: FunnelsQuery, rows: Sequence[Any]) -> list[Any]:
    n = len(query.series)
    if _breakdown_key(query) is None:
        mapping = rows[0]._mapping if rows else None
        if mapping is None or not mapping["c0"]:
            return []  # no actor entered the funnel: no skeleton (PostHog)
        return _steps_of(query, mapping, None)
    groups = [row._mapping for row in rows if row._mapping["c0"]]
    # By the count at the last step, then the previous one, … back to step 1; then by value.
    groups.sort(
        key=lambda m: (*(-(m[f"c{j}"] or 0) for j in range(n - 1, -1, -1)), m["bd"] if not m["other"] else "")
    )
    return [_steps_of(query, m, [OTHER if m["other"] else m["bd"]]) for m in groups]


def shape_trends(rows: Sequence[Any], period: ResolvedRange) -> list[dict[str, Any]]:
    by_bucket = {row._mapping["bucket"]: row._mapping for row in rows}
    data: list[float] = []
    for bucket in period.buckets:
        m = by_bucket.get(bucket)
        reached_from = m["reached_from"] if m else 0
        reached_to = m["reached_to"] if m else 0
        data.append(round(reached_to / reached_from * 100, 2) if reached_from else 0.0)
    return [
        {
            "count": len(data),
            "data": data,
            "days": [dates.day_key(bucket, period.interval) for bucket in period.buckets],
            "labels": [dates.label(bucket, period) for bucket in period.buckets],
        }
    ]


def shape_time_to_convert(values: list[float], bin_count: int | None) -> dict[str, Any]:
    """PostHog's histogram: `bin_count + 1` bins of equal width from floor(min) (1.2.9)."""
    if not values:
        return {"bins": [[0, 0], [60, 0]], "average_conversion_time": None, "median_conversion_time": None}
    if bin_count is not None:
        bins = max(1, min(90, bin_count))
    else:
        bins = max(1, min(60, math.ceil(len(values) ** (1 / 3) - 1e-9)))
    low = math.floor(min(values))
    high = math.ceil(max(values))
    width = math.ceil((high - low) / bins) or 60
    counts = [0] * (bins + 1)
    for value in values:
        index = min(bins, max(0, math.floor((value - low) / width)))
        counts[index] += 1
    ordered = sorted(values)
    middle = len(ordered) // 2
    median = ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2
    return {
        "bins": [[round(low + j * width), counts[j]] for j in range(bins + 1)],
        "average_conversion_time": sum(values) / len(values),
        "median_conversion_time": median,
    }
