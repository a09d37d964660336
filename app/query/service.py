"""PostHog's query endpoint: run one query for the team and answer in its response shape (§B.8)."""

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.dependencies import TeamAccess
from app.errors import AppError, ValidationFailed
from app.query.render import RefreshMode, TeamInfo, render_query
from app.query.schemas import QueryResponse


class QueryTimedOut(AppError):
    status_code = 504
    code = "query_timeout"


_ERROR_CODES = {"UnsupportedQuery": "unsupported_query", "ValidationError": "invalid_query"}


async def run_query(
    session: AsyncSession, access: TeamAccess, query: Any, mode: RefreshMode
) -> QueryResponse:
    team = TeamInfo(id=access.team.id, timezone=access.team.timezone)
    # A one-off query: its result is evicted before those of saved insights.
    rendered = await render_query(session, team, query, mode, saved=False)
    if rendered.error is not None:
        if rendered.error["type"] == "QueryTimeout":
            raise QueryTimedOut(rendered.error["message"])
        raise ValidationFailed(
            rendered.error["message"],
            attr="query",
            code=_ERROR_CODES.get(rendered.error["type"], "invalid_query"),
        )
    return QueryResponse(
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
