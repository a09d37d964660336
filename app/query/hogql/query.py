"""`HogQLQuery` as a query kind (bare, or the `source` of a `DataVisualizationNode` / `DataTableNode`):
compile (cached by text), run through the SQL executor, and shape PostHog's `HogQLQueryResponse` fields.

The result's `results` are its rows; `columns`, `types`, `hogql`, `clickhouse` (the PostgreSQL text),
`limit`, `offset` go in `extra` and are stored with the result in the cache.
"""

import math
import re
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from datetime import date, datetime, time
from decimal import Decimal
from threading import Lock
from typing import Any, ClassVar, Self
from zoneinfo import ZoneInfo

import orjson
from pydantic import ConfigDict, ValidationError
from sqlalchemy.dialects.postgresql.asyncpg import PGDialect_asyncpg

from app.config import get_settings
from app.query import dates
from app.query.backend import QueryBackend
from app.query.base import (
    ComputedResult,
    InvalidQuery,
    QueryContext,
    QueryError,
    QueryLimits,
    SandboxUnavailable,
)
from app.query.filters import global_condition
from app.query.hogql import functions
from app.query.hogql.compiler import Compiled, Compiler
from app.query.hogql.context import CURRENT_SANDBOX
from app.query.hogql.errors import HogQLQueryError
from app.query.hogql.parser import parse
from app.query.kinds import KindQuery
from app.query.schema import _format_error, parse_property_nodes
from app.sql_sandbox import Sandbox, run_sql

WRAPPERS = frozenset({"DataVisualizationNode", "DataTableNode"})
MAX_ROWS = 50_000
_DIALECT = PGDialect_asyncpg()  # type: ignore[no-untyped-call]


class HogQLQuery(KindQuery):
    kind_name: ClassVar[str] = "HogQLQuery"
    model_config = ConfigDict(extra="allow")

    kind: str = "HogQLQuery"
    query: str
    filters: dict[str, Any] | None = None
    values: dict[str, Any] | None = None
    variables: dict[str, Any] | None = None

    @classmethod
    def parse(cls, raw: dict[str, Any]) -> Self:
        source = raw.get("source") if raw.get("kind") in WRAPPERS else raw
        try:
            return cls.model_validate(source)
        except ValidationError as exc:
            raise InvalidQuery(f"Invalid query: {_format_error(exc)}") from None

    def check_supported(self, limits: QueryLimits) -> None:
        if self.variables:
            names = [v.get("code_name") for v in self.variables.values() if isinstance(v, dict)]
            name = next((n for n in names if isinstance(n, str)), "")
            raise HogQLQueryError(
                f"Variable {name} does not exist" if name else "Variables are not supported"
            )
        if self.filters is not None:
            parse_property_nodes(list(self.filters.get("properties") or []))
        parse(self.query)  # syntax errors before any SQL runs

    def check(self, ctx: QueryContext) -> None:
        compile_query(self, ctx)

    async def compute(self, ctx: QueryContext, backend: QueryBackend) -> ComputedResult:
        # A backend with its own SQL engine (ClickHouse) runs the checked query itself.
        run_hogql = getattr(backend, "run_hogql", None)
        if run_hogql is not None:
            computed: ComputedResult = await run_hogql(self, ctx)
            return computed
        sandbox = CURRENT_SANDBOX.get()
        if sandbox is None:
            raise SandboxUnavailable("SQL insights run only inside the server (no SQL sandbox here)")
        runner = sandbox if isinstance(sandbox, Sandbox) else sandbox.sandbox
        compiled = compile_query(self, ctx, input_checks=await runner.server_version() >= 160000)
        # A compiled query is shared by the teams that send the same text: the team id is set here.
        params = list(compiled.params)
        if compiled.team_slot is not None:
            params[compiled.team_slot - 1] = ctx.team_id
        try:
            result = await run_sql(
                sandbox,
                ctx.team_id,
                compiled.sql,
                params,
                timeout_ms=get_settings().sql_timeout_ms,
                max_rows=MAX_ROWS + 1,
            )
        except QueryError as exc:
            if type(exc) is not QueryError:  # timeouts, a busy or missing sandbox: as they are
                raise
            # What PostgreSQL refused in the SQL (a failing cast, a bad regex, …): the query's error.
            raise HogQLQueryError(exc.message) from None
        return respond(self, compiled, result.rows, ctx, compiled.sql)


def respond(
    query: HogQLQuery, compiled: Compiled, rows: Sequence[Any], ctx: QueryContext, sql: str
) -> ComputedResult:
    """PostHog's `HogQLQueryResponse` of the rows a compiled query returned (`sql`: what ran, the
    response's `clickhouse` field), on either backend."""
    has_more = False
    if compiled.paginated:
        has_more = len(rows) > (compiled.limit or 0)
        rows = rows[: compiled.limit]
    tz = ZoneInfo(ctx.timezone)
    kinds = [t.type for t in compiled.types]
    results = [[_encode(value, kind, tz) for value, kind in zip(row, kinds, strict=True)] for row in rows]
    serialized = [orjson.dumps(row, option=orjson.OPT_NON_STR_KEYS).decode() for row in results]
    extra = {
        "columns": compiled.columns,
        "types": [
            [name, t.clickhouse_type(ctx.timezone)]
            for name, t in zip(compiled.columns, compiled.types, strict=True)
        ],
        "hogql": compiled.hogql,
        "clickhouse": sql,
        "limit": compiled.limit if compiled.paginated else None,
        "offset": compiled.offset if compiled.paginated else None,
        "hasMore": has_more if compiled.paginated else None,
        "query": query.query,
        # PostHog's debug fields: every key present, as PostHog sends them without `modifiers.debug`.
        "error": None,
        "explain": None,
        "metadata": None,
        "timings": None,
    }
    return ComputedResult(results=results, serialized=serialized, has_more=has_more, extra=extra)


# --- compilation, cached by the query's text and what else it depends on ---

_CACHE: "OrderedDict[tuple[Any, ...], Compiled]" = OrderedDict()
_CACHE_SIZE = 512
_CACHE_LOCK = Lock()


def compile_query(query: HogQLQuery, ctx: QueryContext, *, input_checks: bool = False) -> Compiled:
    """The compiled query; those without `{filters}` or values are kept (last 512 texts), since their SQL
    only depends on the text, the timezone, the week start and the server's version (the team id is
    parameter `$1`). `input_checks`: the server has `pg_input_is_valid` (`functions.INPUT_CHECKS`)."""
    cacheable = not query.values and "{" not in query.query
    key = (query.query, ctx.timezone, ctx.week_start_day, input_checks)
    if cacheable:
        with _CACHE_LOCK:
            hit = _CACHE.get(key)
            if hit is not None:
                _CACHE.move_to_end(key)
                return hit
    tree, placeholders = parse(query.query)
    compiler = Compiler(
        ctx.team_id,
        ctx.timezone,
        values=query.values,
        filters=_filters_builder(query.filters, ctx) if query.filters is not None else None,
        week_start_day=ctx.week_start_day,
    )
    checks = functions.INPUT_CHECKS.set(input_checks)
    try:
        compiled = compiler.compile_top(tree, placeholders)
    except (ValueError, OverflowError) as exc:  # a number no SQL type holds (`1e400`, `LIMIT 1.5`)
        raise HogQLQueryError(f"Unsupported number in the query: {exc}") from None
    except RecursionError:
        raise HogQLQueryError("The query is nested too deeply") from None
    finally:
        functions.INPUT_CHECKS.reset(checks)
    if cacheable:
        with _CACHE_LOCK:
            _CACHE[key] = compiled
            while len(_CACHE) > _CACHE_SIZE:
                _CACHE.popitem(last=False)
    return compiled


def _filters_builder(filters: dict[str, Any], ctx: QueryContext) -> Any:
    """`{filters}`: the properties (the insights' filter language), `filterTestAccounts`, and the date range
    (`date_from` inclusive, `date_to` exclusive, relative dates not truncated), on the events source."""

    def build(compiler: Compiler, alias: str) -> str:
        parts: list[str] = []
        properties = parse_property_nodes(list(filters.get("properties") or []))
        condition = global_condition(properties, bool(filters.get("filterTestAccounts")), ctx)
        compiled = condition.compile(dialect=_DIALECT, compile_kwargs={"render_postcompile": True})
        names = compiled.positiontup or []
        numbers = {
            position: compiler.param_raw(compiled.params[name]) for position, name in enumerate(names, 1)
        }
        text = re.sub(r"\$(\d+)\b", lambda match: f"${numbers[int(match[1])]}", str(compiled))
        parts.append(f"({text})")
        date_range = filters.get("dateRange") or {}
        tz = ZoneInfo(ctx.timezone)
        for key, op in (("date_from", ">="), ("date_to", "<")):
            raw = date_range.get(key)
            if raw in (None, "", "all"):
                continue
            if not isinstance(raw, str):
                raise HogQLQueryError(f"Invalid {key} in filters.dateRange")
            value = dates.parse_date(raw, tz, ctx.now, truncate=False).value
            parts.append(f"events.timestamp {op} {compiler.param(value)}")
        return " AND ".join(parts)

    return build


def _encode(value: Any, kind: str, tz: ZoneInfo) -> Any:
    """A value as PostHog's JSON shows it: times in the team's timezone with their offset (`Z` for UTC)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, datetime):
        local = value.astimezone(tz) if value.tzinfo else value
        text = local.isoformat()
        return text[:-6] + "Z" if text.endswith("+00:00") else text
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, time):
        return value.isoformat()
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else value
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() and kind in ("Int", "UInt") else float(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [_encode(item, "String", tz) for item in value]
    if isinstance(value, (int, str)):
        return value
    return str(value)
