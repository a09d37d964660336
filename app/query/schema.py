"""PostHog's query schema (posthog/schema.py), as far as the engine implements it.

Parsing has two steps. Pydantic checks the shape: a wrong type or a missing field is `InvalidQuery`. Then
`check_supported` walks the parsed query: a kind, a value or a field that would change the numbers and that
the engine does not implement is `UnsupportedQuery` naming it, never silently ignored. Keys that only
affect how a result is drawn are accepted; unknown keys are accepted only in the containers that exist for
drawing (`InsightVizNode`, `trendsFilter`) and refused everywhere else, since there they may well change the
numbers.
"""

import math
import re
import sys
from collections.abc import Iterator
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Tag, TypeAdapter, ValidationError

from app.query.base import InvalidQuery, Path, UnsupportedQuery

Interval = Literal["minute", "hour", "day", "week", "month"]

BASE_MATH = frozenset({"total", "dau", "weekly_active", "monthly_active", "unique_session"})
# Property math: aggregate of `properties[math_property]` cast to float.
PROPERTY_MATH = {
    "sum": None,
    "avg": None,
    "min": None,
    "max": None,
    "median": 0.5,
    "p75": 0.75,
    "p90": 0.9,
    "p95": 0.95,
    "p99": 0.99,
}
SUPPORTED_MATH = BASE_MATH | PROPERTY_MATH.keys() | {"hogql"}

TIME_SERIES_DISPLAYS = frozenset(
    {
        "ActionsLineGraph",
        "ActionsBar",
        "ActionsUnstackedBar",
        "ActionsStackedBar",
        "ActionsAreaGraph",
        "ActionsLineGraphCumulative",
    }
)
TOTAL_VALUE_DISPLAYS = frozenset({"BoldNumber", "ActionsPie", "ActionsBarValue", "ActionsTable", "WorldMap"})

SUPPORTED_OPERATORS = frozenset(
    {
        "exact",
        "is_not",
        "icontains",
        "not_icontains",
        "regex",
        "not_regex",
        "gt",
        "gte",
        "lt",
        "lte",
        "is_set",
        "is_not_set",
    }
)

# PostHog's other entity kinds: refused as unsupported (anything else is not a PostHog series at all).
KNOWN_SERIES_KINDS = frozenset({"ActionsNode", "DataWarehouseNode", "GroupNode"})


class _Node(BaseModel):
    """Every model keeps unknown keys (`model_extra`) so that `check_supported` can name them."""

    model_config = ConfigDict(extra="allow")


class PropertyFilter(_Node):
    """One property filter of any PostHog type; `event` and `person` ones are implemented."""

    type: str | None = "event"
    key: Any = None
    operator: str | None = None
    value: Any = None


class PropertyGroupFilter(_Node):
    type: Literal["AND", "OR"]
    values: list["PropertyNode"]


def _property_node_tag(value: Any) -> str:
    kind = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    return "group" if kind in ("AND", "OR") else "filter"


PropertyNode = Annotated[
    Annotated[PropertyGroupFilter, Tag("group")] | Annotated[PropertyFilter, Tag("filter")],
    Discriminator(_property_node_tag),
]
PropertyGroupFilter.model_rebuild()
_PROPERTY_NODES: TypeAdapter[list[PropertyNode]] = TypeAdapter(list[PropertyNode])
# Property filter types the engine computes: event properties, and person properties (each distinct id's
# current properties, from `$set` and `$set_once`).
PROPERTY_TYPES = frozenset({"event", "person"})


def parse_property_nodes(raw: Any) -> list[PropertyGroupFilter | PropertyFilter]:
    """A list of PostHog property filters (a team's `test_account_filters`); raise `InvalidQuery`."""
    try:
        return _PROPERTY_NODES.validate_python(raw)
    except ValidationError as exc:
        raise InvalidQuery(f"Invalid property filters: {_format_error(exc)}") from None


class DateRange(_Node):
    date_from: str | None = None
    date_to: str | None = None
    explicitDate: bool | None = None
    excludeIncompletePeriods: bool | None = None


class _SeriesFields(_Node):
    """What every series of a TrendsQuery has: its names, its math and its own filters."""

    name: str | None = None
    custom_name: str | None = None
    math: str | None = None
    math_property: str | None = None
    math_property_type: str | None = None
    math_hogql: str | None = None
    math_group_type_index: int | None = None
    math_multiplier: float | None = None
    math_property_revenue_currency: Any = None
    properties: list[PropertyNode] | None = None
    fixedProperties: list[PropertyNode] | None = None


class EventsNode(_SeriesFields):
    kind: Literal["EventsNode"]
    event: str | None = None


class OtherSeriesNode(_Node):
    """A series of another kind (ActionsNode, GroupNode, …): parsed only to be refused by name."""

    kind: str


def _series_tag(value: Any) -> str:
    kind = value.get("kind") if isinstance(value, dict) else getattr(value, "kind", None)
    return "EventsNode" if kind == "EventsNode" else "node"


SeriesNode = Annotated[
    Annotated[EventsNode, Tag("EventsNode")] | Annotated[OtherSeriesNode, Tag("node")],
    Discriminator(_series_tag),
]


class GroupNode(_SeriesFields):
    """Several events counted as one series (PostHog's "combined events"): an event matching any node (its
    event and its own filters) counts, aggregated by the group's math."""

    kind: Literal["GroupNode"]
    operator: str | None = None
    nodes: list[SeriesNode]


def _trends_series_tag(value: Any) -> str:
    kind = value.get("kind") if isinstance(value, dict) else getattr(value, "kind", None)
    return kind if kind in ("EventsNode", "GroupNode") else "node"


TrendsSeriesNode = Annotated[
    Annotated[EventsNode, Tag("EventsNode")]
    | Annotated[GroupNode, Tag("GroupNode")]
    | Annotated[OtherSeriesNode, Tag("node")],
    Discriminator(_trends_series_tag),
]
# A series the trends engine computes.
TrendsSeries = EventsNode | GroupNode


def series_filters(series: TrendsSeries) -> list[tuple[Any, Path]]:
    """Every filter list a series' statement carries (its own, and for a group each node's), each with its
    path relative to the series."""
    lists: list[tuple[Any, Path]] = [
        (series.properties, ("properties",)),
        (series.fixedProperties, ("fixedProperties",)),
    ]
    if isinstance(series, GroupNode):
        for index, node in enumerate(series.nodes):
            if isinstance(node, EventsNode):
                lists.append((node.properties, ("nodes", index, "properties")))
                lists.append((node.fixedProperties, ("nodes", index, "fixedProperties")))
    return lists


class TrendsFormulaNode(_Node):
    formula: str
    custom_name: str | None = None


class TrendsFilter(_Node):
    display: str | None = None
    smoothingIntervals: int | None = None
    formula: str | None = None
    formulas: list[str] | None = None
    formulaNodes: list[TrendsFormulaNode] | None = None
    breakdown_histogram_bin_count: int | None = None


class BreakdownFilter(_Node):
    breakdown: str | int | list[str | int] | None = None
    breakdown_type: str | None = None
    breakdown_limit: int | None = None
    breakdown_normalize_url: bool | None = None
    breakdown_hide_other_aggregation: bool | None = None
    breakdown_histogram_bin_count: int | None = None
    breakdown_group_type_index: int | None = None
    breakdowns: list[Any] | None = None

    @property
    def enabled(self) -> bool:
        return (self.breakdown is not None and self.breakdown != "") or bool(self.breakdowns)


class CompareFilter(_Node):
    compare: bool | None = None
    compare_to: str | None = None


class TrendsQuery(_Node):
    kind: Literal["TrendsQuery"]
    series: list[TrendsSeriesNode]
    interval: Interval | None = None
    dateRange: DateRange | None = None
    properties: list[PropertyNode] | PropertyGroupFilter | None = None
    filterTestAccounts: bool | None = None
    aggregation_group_type_index: int | None = None
    samplingFactor: float | None = None
    trendsFilter: TrendsFilter | None = None
    breakdownFilter: BreakdownFilter | None = None
    compareFilter: CompareFilter | None = None
    conversionGoal: Any = None

    @property
    def display(self) -> str:
        display = self.trendsFilter.display if self.trendsFilter else None
        return display or "ActionsLineGraph"

    @property
    def is_total_value(self) -> bool:
        return self.display in TOTAL_VALUE_DISPLAYS


class InsightVizNode(_Node):
    kind: Literal["InsightVizNode"]
    source: TrendsQuery


# Keys each model accepts without implementing them, because they do not change the numbers.
_IGNORED_KEYS: dict[type[_Node], frozenset[str]] = {
    # Query-log tags, colours, response typing, schema version and HogQL modifiers (engine hints).
    TrendsQuery: frozenset(
        {"dataColorTheme", "modifiers", "tags", "response", "version", "calendarHeatmapFilter"}
    ),
    # Used by funnels and event tables, not by trends.
    EventsNode: frozenset({"optionalInFunnel", "limit", "orderBy", "response", "version"}),
    GroupNode: frozenset({"optionalInFunnel", "limit", "orderBy", "response", "version"}),
    TrendsFormulaNode: frozenset(),
    DateRange: frozenset(),
    BreakdownFilter: frozenset(),
    CompareFilter: frozenset(),
    PropertyFilter: frozenset({"label"}),
    PropertyGroupFilter: frozenset(),
}


def _format_error(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"])
    return f"{where}: {first['msg']}" if where else str(first["msg"])


# JSON nested deeper than this is no query (PostHog's own are about ten levels deep): refused before anything
# recurses into it, and long before a response echoing it would pass the serializer's 255 levels.
MAX_QUERY_DEPTH = 64
_FLOAT_MAX = sys.float_info.max


def _where(path: Path) -> str:
    return ".".join(str(part) for part in path) or "query"


def _scalar_problem(value: Any) -> str | None:
    """What is wrong with a JSON scalar that no query may hold, or None."""
    if isinstance(value, str):
        if "\x00" in value:
            return "text must not contain NUL characters"
        if not value.isascii():
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                return "text is not valid Unicode"
        return None
    if isinstance(value, bool) or value is None:
        return None
    # JSON's 1e400 arrives as inf, and an integer of 400 digits as an int no float can hold.
    if (isinstance(value, float) and not math.isfinite(value)) or (
        isinstance(value, int) and abs(value) > _FLOAT_MAX
    ):
        return "the number is out of range (numbers must be finite, at most 1.8e308 in magnitude)"
    return None


def _shallow(path: Path) -> Path:
    """Where a too-deep value starts, as a field: the path up to its first list index, at most 3 keys."""
    out: list[str | int] = []
    for part in path[:3]:
        if isinstance(part, int):
            break
        out.append(part)
    return tuple(out)


def check_json(raw: Any) -> None:
    """Refuse what no query of any kind may hold, naming where it is: text PostgreSQL cannot store, numbers
    beyond float range, nesting deeper than MAX_QUERY_DEPTH. Iterative (a stack of iterators), so a deep
    value cannot exhaust Python's stack, and paths are only built for what is refused."""
    problem = _scalar_problem(raw)
    if problem is not None:
        raise InvalidQuery(f"Invalid query: {problem}", path=())
    if not isinstance(raw, dict | list):
        return
    stack: list[tuple[Iterator[tuple[str | int, Any]], Path]] = [(_children(raw), ())]
    while stack:
        children, path = stack[-1]
        for key, item in children:
            if isinstance(key, str) and (problem := _scalar_problem(key)) is not None:
                raise InvalidQuery(f"Invalid query: {_where(path)}: {problem}", path=path)
            if isinstance(item, dict | list):
                inner = (*path, key)
                if len(inner) >= MAX_QUERY_DEPTH:
                    field = _shallow(inner)
                    deep = f"is nested more than {MAX_QUERY_DEPTH} levels deep"
                    raise InvalidQuery(f"Invalid query: {_where(field)} {deep}", path=field)
                stack.append((_children(item), inner))
                break
            if (problem := _scalar_problem(item)) is not None:
                inner = (*path, key)
                raise InvalidQuery(f"Invalid query: {_where(inner)}: {problem}", path=inner)
        else:
            stack.pop()


def _children(value: dict[str, Any] | list[Any]) -> Iterator[tuple[str | int, Any]]:
    return iter(value.items()) if isinstance(value, dict) else enumerate(value)


def parse_trends(raw: dict[str, Any]) -> TrendsQuery:
    """Parse a `TrendsQuery` or an `InsightVizNode` wrapping one (that passed `check_json`) into its models;
    raise `InvalidQuery`. What the engine supports is `check_supported`'s to say."""
    try:
        if raw.get("kind") == "InsightVizNode":
            query = InsightVizNode.model_validate(raw).source
        else:
            query = TrendsQuery.model_validate(raw)
    except ValidationError as exc:
        raise InvalidQuery(f"Invalid query: {_format_error(exc)}") from None
    return query


def _refuse_unknown_keys(node: _Node, where: str) -> None:
    ignored = _IGNORED_KEYS[type(node)]
    for key in node.model_extra or {}:
        if key not in ignored:
            raise UnsupportedQuery(f"{where} field '{key}' is not supported")


def check_supported(query: TrendsQuery) -> None:
    """Refuse, by name, whatever in `query` would change the numbers and is not implemented."""
    _refuse_unknown_keys(query, "TrendsQuery")
    if query.interval == "minute":
        raise UnsupportedQuery("interval 'minute' is not supported")
    if query.aggregation_group_type_index is not None:
        raise UnsupportedQuery("aggregation_group_type_index is not supported")
    if query.samplingFactor not in (None, 1):
        raise UnsupportedQuery("samplingFactor is not supported")
    if query.conversionGoal is not None:
        raise UnsupportedQuery("conversionGoal is not supported")
    if query.trendsFilter is not None:
        _check_trends_filter(query.trendsFilter)
    if query.breakdownFilter is not None:
        _check_breakdown(query.breakdownFilter)
    if query.compareFilter is not None:
        _refuse_unknown_keys(query.compareFilter, "compareFilter")
    if query.dateRange is not None:
        _refuse_unknown_keys(query.dateRange, "dateRange")
        if query.dateRange.excludeIncompletePeriods:
            raise UnsupportedQuery("dateRange.excludeIncompletePeriods is not supported")
    if isinstance(query.properties, PropertyGroupFilter):
        check_property_node(query.properties)
    else:
        for node in query.properties or []:
            check_property_node(node)
    for index, series in enumerate(query.series):
        _check_series(series, index)


def _check_trends_filter(trends_filter: TrendsFilter) -> None:
    # Unknown keys are accepted here: PostHog keeps adding display options to trendsFilter.
    for node in trends_filter.formulaNodes or []:
        _refuse_unknown_keys(node, "formula node")
    if trends_filter.breakdown_histogram_bin_count is not None:
        raise UnsupportedQuery("breakdown_histogram_bin_count is not supported")
    display = trends_filter.display
    if display is not None and display not in TIME_SERIES_DISPLAYS | TOTAL_VALUE_DISPLAYS:
        raise UnsupportedQuery(f"display '{display}' is not supported")
    if trends_filter.smoothingIntervals is not None and trends_filter.smoothingIntervals < 1:
        raise InvalidQuery("trendsFilter.smoothingIntervals must be at least 1")


def _check_breakdown(breakdown: BreakdownFilter) -> None:
    _refuse_unknown_keys(breakdown, "breakdownFilter")
    if breakdown.breakdown_limit is not None and breakdown.breakdown_limit < 0:
        raise InvalidQuery("breakdownFilter.breakdown_limit must not be negative")
    if not breakdown.enabled:
        return
    if breakdown.breakdowns:
        raise UnsupportedQuery("breakdowns (multiple breakdowns) are not supported")
    if breakdown.breakdown_type not in (None, *PROPERTY_TYPES):
        raise UnsupportedQuery(f"breakdown_type '{breakdown.breakdown_type}' is not supported")
    if isinstance(breakdown.breakdown, list):
        raise UnsupportedQuery("a list of breakdown properties is not supported")
    if not isinstance(breakdown.breakdown, str):
        raise InvalidQuery("breakdownFilter.breakdown must be an event property name")
    if breakdown.breakdown_histogram_bin_count is not None:
        raise UnsupportedQuery("breakdown_histogram_bin_count is not supported")


def _check_series(series: EventsNode | GroupNode | OtherSeriesNode, index: int) -> None:
    if isinstance(series, OtherSeriesNode):
        if series.kind in KNOWN_SERIES_KINDS:
            raise UnsupportedQuery(f"{series.kind} is not supported")
        raise InvalidQuery(f"series.{index}: unknown kind '{series.kind}'")
    if isinstance(series, GroupNode):
        _check_group(series, index)
    else:
        _refuse_unknown_keys(series, "EventsNode")
    math = series.math or "total"
    if math not in SUPPORTED_MATH:
        raise UnsupportedQuery(f"math '{math}' is not supported")
    if math == "hogql":
        parse_math_hogql(series.math_hogql, index)
    if math in PROPERTY_MATH:
        if not series.math_property:
            raise InvalidQuery(f"series.{index}: math '{math}' needs a math_property")
        if series.math_property_type not in (None, "event_properties"):
            raise UnsupportedQuery(f"math_property_type '{series.math_property_type}' is not supported")
        if series.math_property == "$session_duration":
            raise UnsupportedQuery("math_property '$session_duration' is not supported")
    if series.math_multiplier not in (None, 1):
        raise UnsupportedQuery("math_multiplier is not supported")
    if series.math_property_revenue_currency is not None:
        raise UnsupportedQuery("math_property_revenue_currency is not supported")
    for node in [*(series.properties or []), *(series.fixedProperties or [])]:
        check_property_node(node)


def _check_group(group: GroupNode, index: int) -> None:
    """An OR of events (nodes' own math is not theirs to choose: the group's applies, as in PostHog)."""
    _refuse_unknown_keys(group, "GroupNode")
    if not group.nodes:
        raise InvalidQuery(f"series.{index}: a GroupNode needs at least one node")
    if group.operator not in ("OR", "AND"):
        raise InvalidQuery(f"series.{index}: GroupNode operator must be 'OR' or 'AND'")
    if group.operator == "AND" and len(group.nodes) > 1:
        # PostHog does not implement it either (it counts every event); an event is only ever one event.
        raise UnsupportedQuery("GroupNode operator 'AND' is not supported")
    for node in group.nodes:
        if isinstance(node, OtherSeriesNode):
            if node.kind in KNOWN_SERIES_KINDS:
                raise UnsupportedQuery(f"{node.kind} in a GroupNode is not supported")
            raise InvalidQuery(f"series.{index}.nodes: unknown kind '{node.kind}'")
        _refuse_unknown_keys(node, "EventsNode")
        if node.event is None:
            raise UnsupportedQuery("a GroupNode node with `event: null` (all events) is not supported")
        for item in [*(node.properties or []), *(node.fixedProperties or [])]:
            check_property_node(item)


# `math: "hogql"` computes only these expressions: distinct values of an event property, or distinct actors
# (`person_id` is the distinct id: Tilecast does not merge ids). Keywords in any case, spaces optional.
_MATH_HOGQL = re.compile(
    r"^\s*count\s*\(\s*distinct\s+"
    r"(?:properties\s*\.\s*(?P<dotted>[A-Za-z_$][A-Za-z0-9_$]*)"
    r"|properties\s*\[\s*'(?P<quoted>[^'\\]+)'\s*\]"
    r"|person_id|distinct_id)"
    r"\s*\)\s*$",
    re.IGNORECASE,
)


def parse_math_hogql(expression: str | None, index: int) -> str | None:
    """The event property whose distinct values `math_hogql` counts, or None for distinct actors; raise
    `UnsupportedQuery` naming any other expression."""
    if not expression or not expression.strip():
        raise InvalidQuery(f"series.{index}: math 'hogql' needs a math_hogql expression")
    match = _MATH_HOGQL.match(expression)
    if match is None:
        raise UnsupportedQuery(
            f"math_hogql '{expression}' is not supported: SQL expressions are not supported yet, except "
            "count(distinct properties.<name>), count(distinct person_id) and count(distinct distinct_id)"
        )
    return match["dotted"] or match["quoted"]


def check_property_node(node: PropertyGroupFilter | PropertyFilter) -> None:
    if isinstance(node, PropertyGroupFilter):
        _refuse_unknown_keys(node, "property group")
        for child in node.values:
            check_property_node(child)
        return
    kind = node.type or "event"
    if kind not in PROPERTY_TYPES:
        raise UnsupportedQuery(f"property filter type '{kind}' is not supported")
    _refuse_unknown_keys(node, "property filter")
    if not isinstance(node.key, str) or not node.key:
        raise InvalidQuery("property filter: `key` must be a non-empty string")
    operator = node.operator or "exact"
    if operator not in SUPPORTED_OPERATORS:
        raise UnsupportedQuery(f"property filter operator '{operator}' is not supported")
    value = node.value
    if operator in ("is_set", "is_not_set"):
        return
    if operator in ("gt", "gte", "lt", "lte"):
        as_number(value, node.key)
        return
    values = value if isinstance(value, list) else [value]
    for item in values:
        if item is None or not isinstance(item, str | int | float):
            raise InvalidQuery(f"property filter on '{node.key}': {operator} needs a string or number value")
        if operator in ("regex", "not_regex"):
            try:
                re.compile(str(item))
            except re.error as exc:
                message = f"property filter on '{node.key}': invalid regex {item!r} ({exc})"
                raise InvalidQuery(message) from None


def as_number(value: Any, key: str) -> float:
    """The number a gt/gte/lt/lte filter compares with (PostHog accepts numeric strings too)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise InvalidQuery(f"property filter on '{key}': a number is needed")
    try:
        number = float(value)
    except (ValueError, OverflowError):
        raise InvalidQuery(f"property filter on '{key}': {value!r} is not a number") from None
    if number != number or number in (float("inf"), float("-inf")):
        raise InvalidQuery(f"property filter on '{key}': {value!r} is not a finite number")
    return number
