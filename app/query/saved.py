"""Rendering saved insights' queries (dashboard tiles, insight retrieve and list): one query that cannot be
rendered becomes that query's `error`, never a failed request.

A stored query may come from an older version of Tilecast, or hold a value no check foresaw; the rest of
its dashboard must still render. A database that is away still fails the request (503), and `POST …/query/`
keeps using `render_query` directly, where an unexpected failure is a server error to see and fix.
"""

import logging
from collections.abc import Hashable, Mapping
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import is_transient
from app.query import cache
from app.query.render import RefreshMode, Rendered, TeamInfo, cache_key_for, render_query

logger = logging.getLogger("tilecast.query")

K = TypeVar("K", bound=Hashable)

NOT_RENDERED = {"type": "QueryError", "message": "This insight's query could not be computed."}


def cache_keys(team: TeamInfo, queries: Mapping[K, Any]) -> dict[K, str]:
    """The cache key of each query that has one (a query that cannot even be hashed gets none)."""
    keys: dict[K, str] = {}
    for ident, query in queries.items():
        if query is None:
            continue
        try:
            keys[ident] = cache_key_for(team, query)
        except (ValueError, TypeError, RecursionError):
            logger.warning("no cache key for a saved query (%s)", ident)
    return keys


async def render_saved(
    session: AsyncSession,
    team: TeamInfo,
    query: Any,
    mode: RefreshMode,
    *,
    saved: bool,
    prefetched: dict[str, cache.CachedResult] | None = None,
    key: str | None = None,
    cache_only: bool = False,
) -> Rendered:
    """`render_query` whose unexpected failures are the query's `error` (logged with their traceback)."""
    try:
        return await render_query(
            session, team, query, mode, saved=saved, prefetched=prefetched, key=key, cache_only=cache_only
        )
    except Exception as exc:
        if is_transient(exc):
            raise
        logger.exception("a saved query failed to render")
        return Rendered(cache_key=key or "", timezone=team.timezone, error=dict(NOT_RENDERED))
