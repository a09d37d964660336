"""PostHog's query endpoint: run one query for the team and answer in its response shape (§B.8); and the
check of an insight's query when it is saved."""

import asyncio
from datetime import UTC, datetime
from typing import Any

import orjson
from fastapi import Response
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.dependencies import TeamAccess
from app.errors import AppError, ValidationFailed
from app.query import cache, engine
from app.query.base import QueryContext, QueryError, UnsupportedQuery
from app.query.hogql.errors import HogQLQueryError, HogQLSyntaxError
from app.query.render import RefreshMode, Rendered, TeamInfo, query_limits, render_query
from app.query.schemas import QueryResponse


class QueryTimedOut(AppError):
    status_code = 504
    code = "query_timeout"


class SqlBusy(AppError):
    """Too many SQL insights of the team run at once."""

    status_code = 429
    type = "throttled_error"
    code = "concurrency_limit_exceeded"


class SqlUnavailable(AppError):
    """SQL insights lack their database setup here; the message names what an operator runs."""

    status_code = 503
    type = "server_error"
    code = "sql_sandbox_unavailable"


_ERROR_CODES = {
    "HogQLSyntaxError": "hogql_syntax_error",
    "HogQLQueryError": "hogql_query_error",
    "UnsupportedQuery": "unsupported_query",
    "ValidationError": "invalid_query",
    "QueryTooLarge": "query_too_large",
}


# HogQL's errors are about the SQL text, not a field: PostHog's bodies have `attr: null`.
_NO_ATTR = frozenset({"HogQLSyntaxError", "HogQLQueryError"})


def _refused(error_type: str, message: str, attr: str | None) -> ValidationFailed:
    code = _ERROR_CODES.get(error_type, "invalid_query")
    return ValidationFailed(message, attr=None if error_type in _NO_ATTR else attr or "query", code=code)


async def validate_for_save(query: Any, timezone: str) -> None:
    """Refuse (400 naming the field) an insight query of a kind the engine implements that fails its schema
    or breaks a limit, and any query holding JSON no query may (too deep, numbers beyond float range, text
    PostgreSQL cannot store). Kinds and fields not implemented yet pass: they are stored, and render as a
    tile error naming them."""
    if query is None:
        return
    ctx = QueryContext(team_id=0, timezone=timezone, now=datetime.now(UTC), limits=query_limits())
    try:
        await asyncio.to_thread(engine.validate, query, ctx)
    except (UnsupportedQuery, HogQLQueryError, HogQLSyntaxError):
        # SQL is stored as written (as PostHog): what it cannot run is the tile's error.
        pass
    except QueryError as exc:
        raise _refused(exc.type, exc.message, exc.attr()) from None


async def run_query(session: AsyncSession, access: TeamAccess, query: Any, mode: RefreshMode) -> Response:
    """The query's result as the endpoint answers it (`QueryResponse`)."""
    team = TeamInfo.of(access.team)
    # A one-off query: its result is evicted before those of saved insights.
    # Nothing but the result is written in this request's transaction.
    rendered = await render_query(session, team, query, mode, saved=False, cache_only=True)
    if rendered.error is not None:
        if rendered.error["type"] == "QueryTimeout":
            raise QueryTimedOut(rendered.error["message"])
        if rendered.error["type"] == "SandboxBusy":
            raise SqlBusy(rendered.error["message"])
        if rendered.error["type"] == "SandboxUnavailable":
            raise SqlUnavailable(rendered.error["message"])
        raise _refused(rendered.error["type"], rendered.error["message"], rendered.error_attr)
    if isinstance(rendered.result, cache.RawJSON):
        return _cached_response(rendered, rendered.result)
    response = QueryResponse(
        results=rendered.result,
        hasMore=rendered.has_more,
        is_cached=rendered.is_cached,
        last_refresh=rendered.last_refresh,
        next_allowed_client_refresh=rendered.next_allowed_client_refresh,
        cache_key=rendered.cache_key,
        cache_target_age=rendered.cache_target_age,
        timezone=rendered.timezone,
        resolved_date_range=rendered.resolved_date_range,
    )
    return response.json_response(rendered.extra)


def _cached_response(rendered: Rendered, raw: cache.RawJSON) -> Response:
    """`QueryResponse`'s body for a result read from the cache, built without the model: the result passed
    through as the JSON text PostgreSQL holds, the datetimes (UTC, as read) as Pydantic writes them (`Z`)."""
    body = {
        "results": orjson.Fragment(raw.text),
        "hasMore": rendered.has_more,
        "is_cached": rendered.is_cached,
        "last_refresh": rendered.last_refresh,
        "next_allowed_client_refresh": rendered.next_allowed_client_refresh,
        "cache_key": rendered.cache_key,
        "cache_target_age": rendered.cache_target_age,
        "timezone": rendered.timezone,
        "resolved_date_range": rendered.resolved_date_range,
        "query_status": None,
        **(rendered.extra or {}),
    }
    return Response(orjson.dumps(body, option=orjson.OPT_UTC_Z), media_type="application/json")
