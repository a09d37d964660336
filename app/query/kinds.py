"""What RetentionQuery, LifecycleQuery and StickinessQuery share: parsing a kind's model (bare, or as the
source of an InsightVizNode), refusing unknown keys by name, the filters' limits, the team timezone and date
range, and running a statement.

Each kind's model derives from `KindQuery`, which the engine dispatches on: `check` is what the clock and the
team settings refuse before any SQL runs, `compute` runs the kind's statements.
"""

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any, ClassVar, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import ValidationError
from sqlalchemy import ColumnElement, Executable, and_, true
from sqlalchemy.exc import DBAPIError

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
from app.query.limits import _count_and_check_values
from app.query.schema import (
    KNOWN_SERIES_KINDS,
    DateRange,
    EventsNode,
    OtherSeriesNode,
    PropertyFilter,
    PropertyGroupFilter,
    PropertyNode,
    _format_error,
    _Node,
    check_property_node,
)
from app.query.trends_sql import STATEMENT_PARAMETERS

_INVALID_REGEX = "2201B"  # PostgreSQL: invalid_regular_expression
# Top-level keys of every insight query that do not change its numbers: query-log tags, colours, response
# typing, schema version and HogQL modifiers (engine hints).
BASE_IGNORED = frozenset({"dataColorTheme", "modifiers", "tags", "response", "version"})
# Keys of an EventsNode used by other kinds (funnels, event tables): they change nothing here.
EVENTS_NODE_IGNORED = frozenset({"optionalInFunnel", "limit", "orderBy", "response", "version"})


def refuse_unknown(node: _Node, where: str, ignored: Iterable[str] = (), path: Path = ()) -> None:
    """An unknown key may change the numbers: refused by name, unless it is one `ignored` (display). `path`
    is where `node` is in the query."""
    allowed = set(ignored)
    for key in node.model_extra or {}:
        if key not in allowed:
            raise UnsupportedQuery(f"{where} field '{key}' is not supported", path=(*path, key))


class KindQuery(_Node):
    """An insight query kind besides TrendsQuery: parsed, checked and computed through these methods."""

    kind_name: ClassVar[str]

    @classmethod
    def parse(cls, raw: dict[str, Any]) -> Self:
        """Parse the kind (or an InsightVizNode wrapping it) into its model; raise `InvalidQuery`."""
        # An InsightVizNode's own keys are display options (full, showTable, …): accepted, as for trends.
        source = raw.get("source") if raw.get("kind") == "InsightVizNode" else raw
        try:
            return cls.model_validate(source)
        except ValidationError as exc:
            raise InvalidQuery(f"Invalid query: {_format_error(exc)}") from None

    def check_supported(self, limits: QueryLimits) -> None:
        """Refuse, by name, whatever would change the numbers and is not implemented, and filters over the
        limits. CPU only."""
        raise NotImplementedError

    def check(self, ctx: QueryContext) -> None:
        """What `compute` refuses before it runs SQL, from the clock and the team's settings."""
        raise NotImplementedError

    async def compute(self, ctx: QueryContext, backend: QueryBackend) -> ComputedResult:
        raise NotImplementedError


def prepare_kind(cls: type[KindQuery], raw: dict[str, Any], limits: QueryLimits) -> KindQuery:
    query = cls.parse(raw)
    query.check_supported(limits)
    return query


# --- checks shared by the kinds ---


def check_properties(properties: list[PropertyNode] | PropertyGroupFilter | None) -> None:
    if isinstance(properties, PropertyGroupFilter):
        check_property_node(properties)
    else:
        for node in properties or []:
            check_property_node(node)


def check_date_range(date_range: DateRange | None) -> None:
    if date_range is None:
        return
    refuse_unknown(date_range, "dateRange", path=("dateRange",))
    if date_range.excludeIncompletePeriods:
        raise UnsupportedQuery(
            "dateRange.excludeIncompletePeriods is not supported",
            path=("dateRange", "excludeIncompletePeriods"),
        )


def check_events_node(series: EventsNode | OtherSeriesNode, path: Path, *, math: bool = True) -> None:
    """An EventsNode with supported property filters; `math` other than the actor's own is refused when
    `math` is True (stickiness), ignored otherwise (lifecycle)."""
    if isinstance(series, OtherSeriesNode):
        if series.kind in KNOWN_SERIES_KINDS:
            raise UnsupportedQuery(f"{series.kind} is not supported", path=(*path, "kind"))
        raise InvalidQuery(f"{'.'.join(map(str, path))}: unknown kind '{series.kind}'", path=path)
    refuse_unknown(series, "EventsNode", EVENTS_NODE_IGNORED, path)
    if math and series.math in ("unique_group", "hogql"):
        raise UnsupportedQuery(f"math '{series.math}' is not supported", path=(*path, "math"))
    for node in [*(series.properties or []), *(series.fixedProperties or [])]:
        check_property_node(node)


def check_filter_limits(
    shared: tuple[Any, Path], own: Sequence[tuple[Any, Path]], limits: QueryLimits
) -> None:
    """Values per filter, and the bind parameters of one statement that carries the shared filters (the
    query's) and every filter in `own` (its series' or entities')."""
    shared_count = _count_and_check_values(shared[0], shared[1], limits)
    own_count = sum(_count_and_check_values(nodes, path, limits) for nodes, path in own)
    parameters = 2 * STATEMENT_PARAMETERS + FILTER_PARAMETERS * (2 * shared_count + own_count)
    if parameters > limits.parameters:
        path = own[0][1] if own and own_count > shared_count else shared[1]
        raise QueryTooLarge(
            f"{shared_count + own_count:,} property filters need up to {parameters:,} bind parameters, more "
            f"than the limit of {limits.parameters:,}; use one filter with a list of values instead of many "
            "filters",
            path=path,
        )


def check_points(points: int, what: str, path: Path, limits: QueryLimits) -> None:
    if points > limits.breakdown_points:
        raise QueryTooLarge(
            f"{what}: {points:,} data points, more than the limit of {limits.breakdown_points:,}; use a "
            "shorter date range or a longer interval",
            path=path,
        )


# --- dates and statements ---


def timezone(ctx: QueryContext) -> ZoneInfo:
    try:
        return ZoneInfo(ctx.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidQuery(f"Unknown team timezone {ctx.timezone!r}") from None


def resolve_range(
    date_range: DateRange | None, interval: str, ctx: QueryContext, earliest: datetime | None
) -> ResolvedRange:
    """The query's date range in the team timezone, as TrendsQuery resolves it (default: the last 7 days)."""
    try:
        return dates.resolve(
            date_range.date_from if date_range else None,
            date_range.date_to if date_range else None,
            explicit=bool(date_range and date_range.explicitDate),
            interval=interval,
            tz=timezone(ctx),
            now=ctx.now,
            exact_time_range=False,
            earliest=earliest,
            week_start=ctx.week_start_day,
        )
    except OverflowError:
        raise InvalidQuery("A date in the query is out of range.", path=("dateRange",)) from None


async def earliest_event(
    date_range: DateRange | None, ctx: QueryContext, backend: QueryBackend
) -> datetime | None:
    """The team's first event when the range starts at it (`date_from: "all"`), else None."""
    if date_range is None or date_range.date_from != "all":
        return None
    return await backend.earliest_event(ctx.team_id)


async def fetch(backend: QueryBackend, statement: Executable) -> Sequence[Any]:
    try:
        return await backend.fetch(statement)
    except DBAPIError as exc:
        # Python accepted the pattern (schema check) but PostgreSQL's regex dialect did not.
        if getattr(exc.orig, "sqlstate", None) == _INVALID_REGEX:
            raise InvalidQuery(f"Invalid regular expression in a property filter: {exc.orig}") from None
        raise


def own_where(properties: Sequence[PropertyGroupFilter | PropertyFilter]) -> ColumnElement[bool]:
    """A series' or entity's own filters (ANDed), `true` without any."""
    return and_(true(), *(node_condition(item) for item in properties))


def global_where(
    properties: list[PropertyNode] | PropertyGroupFilter | None,
    filter_test_accounts: bool | None,
    ctx: QueryContext,
) -> ColumnElement[bool]:
    return global_condition(properties, filter_test_accounts, ctx)


def step_back(interval: str, value: datetime) -> datetime:
    """The start of the period before `value` (a period start)."""
    if interval == "month":
        return (value - timedelta(days=1)).replace(day=1)
    return (
        value - {"hour": timedelta(hours=1), "day": timedelta(days=1), "week": timedelta(weeks=1)}[interval]
    )
