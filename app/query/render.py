"""The one path every result takes: effective query → cache → backend → PostHog-shaped result → cache.

Insights, dashboard tiles, streams, shares and snapshots all call `render_query`. Refresh modes follow
DESIGN.md: without a job queue the async modes compute in the request like `blocking`.
"""

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app import metrics
from app.config import get_settings
from app.errors import ValidationFailed, is_transient
from app.models import Team
from app.query import cache, engine, memory
from app.query.backend import PostgresBackend, QueryBackend
from app.query.base import QueryContext, QueryError, QueryLimits, QueryTooLarge
from app.query.engine import filters_test_accounts

logger = logging.getLogger("tilecast.query")


class RefreshMode(StrEnum):
    FORCE_CACHE = "force_cache"
    BLOCKING = "blocking"
    ASYNC = "async"
    ASYNC_EXCEPT_ON_CACHE_MISS = "async_except_on_cache_miss"
    LAZY_ASYNC = "lazy_async"
    FORCE_ASYNC = "force_async"
    FORCE_BLOCKING = "force_blocking"


# Serve a fresh cached result, compute otherwise (async modes compute in the request: no job queue yet).
USE_FRESH_CACHE = frozenset(
    {RefreshMode.BLOCKING, RefreshMode.ASYNC, RefreshMode.ASYNC_EXCEPT_ON_CACHE_MISS, RefreshMode.LAZY_ASYNC}
)
ALWAYS_COMPUTE = frozenset({RefreshMode.FORCE_BLOCKING, RefreshMode.FORCE_ASYNC})


def parse_refresh(raw: str | None, default: RefreshMode = RefreshMode.FORCE_CACHE) -> RefreshMode:
    """PostHog's `refresh` parameter: absent or false reads the cache only; true (1, yes, empty) forces."""
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in ("", "true", "1", "yes"):
        return RefreshMode.FORCE_BLOCKING
    if value in ("false", "0", "no"):
        return RefreshMode.FORCE_CACHE
    try:
        return RefreshMode(value)
    except ValueError:
        raise ValidationFailed(
            f'"{raw}" is not a valid choice.', attr="refresh", code="invalid_choice"
        ) from None


def shared_refresh(mode: RefreshMode) -> RefreshMode:
    """A refresh mode as PostHog remaps it in shared context (a share's viewer): `force_blocking` computes
    only when stale (`blocking`), `async` stays, every other mode and no `refresh` at all become
    `lazy_async`: a fresh cached result, computed when there is none or it is stale (`USE_FRESH_CACHE`)."""
    if mode is RefreshMode.FORCE_BLOCKING:
        return RefreshMode.BLOCKING
    if mode is RefreshMode.ASYNC:
        return RefreshMode.ASYNC
    return RefreshMode.LAZY_ASYNC


@dataclass(frozen=True)
class TeamInfo:
    """What of a team its queries depend on."""

    id: int
    timezone: str
    test_account_filters: tuple[dict[str, Any], ...] = ()
    week_start_day: int = 0

    @classmethod
    def of(cls, team: Team) -> "TeamInfo":
        return cls(
            id=team.id,
            timezone=team.timezone,
            test_account_filters=tuple(team.test_account_filters or ()),
            week_start_day=team.week_start_day or 0,
        )

    def settings_for(self, query: Any) -> dict[str, Any]:
        """The settings `query`'s result depends on, folded into its cache key."""
        settings: dict[str, Any] = {"week_start_day": self.week_start_day}
        if filters_test_accounts(query):
            settings["test_account_filters"] = list(self.test_account_filters)
        return settings


@dataclass
class Rendered:
    """A query's result and cache state, as insights and tiles report them."""

    cache_key: str
    timezone: str
    result: Any = None
    has_more: bool = False
    last_refresh: datetime | None = None
    is_cached: bool = False
    cache_target_age: datetime | None = None
    next_allowed_client_refresh: datetime | None = None
    resolved_date_range: dict[str, Any] | None = None
    # Fields a kind answers besides `results` (HogQL's `columns`, `types`, `hogql`, `limit`, …).
    extra: dict[str, Any] | None = None
    error: dict[str, str] | None = None
    # The field to blame for `error`, as a 400's `attr` (`query__source__breakdownFilter__breakdown_limit`).
    error_attr: str | None = None


def _interval(query: Any) -> str | None:
    source = query.get("source", query) if isinstance(query, dict) else None
    interval = source.get("interval") if isinstance(source, dict) else None
    return interval if isinstance(interval, str) else None


def target_age(query: Any) -> timedelta:
    settings = get_settings()
    hourly = _interval(query) in ("hour", "minute")
    return timedelta(seconds=settings.cache_target_age_hourly_s if hourly else settings.cache_target_age_s)


def _from_cache(
    key: str, team: TeamInfo, query: Any, hit: cache.CachedResult, *, is_cached: bool
) -> Rendered:
    payload = hit.payload
    return Rendered(
        cache_key=key,
        timezone=team.timezone,
        result=payload.get("results"),
        has_more=bool(payload.get("has_more")),
        last_refresh=hit.last_refresh,
        is_cached=is_cached,
        cache_target_age=hit.last_refresh + target_age(query),
        next_allowed_client_refresh=hit.last_refresh
        + timedelta(seconds=get_settings().min_refresh_interval_s),
        resolved_date_range=payload.get("resolved_date_range"),
        extra=payload.get("extra"),
    )


def query_limits() -> QueryLimits:
    settings = get_settings()
    return QueryLimits(
        breakdown_points=settings.query_max_breakdown_points,
        result_bytes=settings.query_max_result_bytes,
        filter_values=settings.query_max_filter_values,
        parameters=settings.query_max_parameters,
        work_mem_kb=settings.query_work_mem_kb,
    )


def cache_key_for(team: TeamInfo, query: Any) -> str:
    return cache.cache_key(team.id, team.timezone, query, team.settings_for(query))


async def render_query(
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
    """Render `query` for `team` under `mode`. `saved`: the query is a saved insight's own, as its dashboards
    and retrieve render it (not one made for a `filters_override` or `/query/`): its cached result is evicted
    only after the team's ad-hoc ones. `prefetched` holds cache rows a caller already read in one
    statement for many queries (lists, dashboards); without it the row is read here. `key` is the query's
    cache key when the caller computed it already (hashing the canonical JSON twice per tile is waste).
    `cache_only`: the caller's transaction writes nothing else (`cache.lock_and_set_timeout`)."""
    if key is None:
        key = cache_key_for(team, query)
    # The connection only when this call reads the cache itself: with `prefetched`, a cached tile then costs
    # no round trip into SQLAlchemy's greenlet at all (`_compute` takes the connection it needs).
    started = datetime.now(UTC)
    if mode in ALWAYS_COMPUTE:
        # Nothing read here decides anything: `_compute` reads the row under its lock.
        return await _compute(session, team, query, key, started, saved=saved, cache_only=cache_only)
    hit = (
        prefetched.get(key)
        if prefetched is not None
        else await cache.read(await session.connection(), key, saved=saved)
    )
    answer = answer_from_cache(team, query, mode, key, hit, started)
    if answer is not None:
        return answer
    return await _compute(session, team, query, key, started, saved=saved, cache_only=cache_only)


def answer_from_cache(
    team: TeamInfo, query: Any, mode: RefreshMode, key: str, hit: cache.CachedResult | None, now: datetime
) -> Rendered | None:
    """What `mode` answers from the cache row `hit` (or its absence) without computing anything; None when
    the query must be computed. No database: callers that read the cache rows already decide with it which
    queries are ready at once (`stream_tiles` sends those first)."""
    if mode is RefreshMode.FORCE_CACHE:
        if hit is None:
            return Rendered(key, team.timezone)
    elif not (mode in USE_FRESH_CACHE and hit is not None and now - hit.last_refresh < target_age(query)):
        return None
    metrics.QUERY_CACHE_HITS.labels(metrics.query_kind(query)).inc()
    return _from_cache(key, team, query, hit, is_cached=True)


def events_backend(session: AsyncSession, conn: AsyncConnection) -> QueryBackend:
    """Where queries read events (TILECAST_EVENTS_BACKEND): PostgreSQL on the computation's connection, or
    the ClickHouse store the session carries (`app.db.create_sessionmaker`)."""
    settings = get_settings()
    if settings.events_backend != "clickhouse":
        return PostgresBackend(conn)
    from app.clickhouse.backend import ClickHouseBackend  # the optional extra `.[clickhouse]`

    store = session.info.get("clickhouse")
    if store is None:
        raise RuntimeError(
            "events live in ClickHouse, but this session's sessionmaker has no ClickHouse store"
        )
    return ClickHouseBackend(
        store,
        timeout_ms=settings.query_timeout_ms,
        max_memory_bytes=settings.clickhouse_max_memory_bytes,
        max_result_rows=settings.clickhouse_max_result_rows,
    )


async def _compute(
    session: AsyncSession,
    team: TeamInfo,
    query: Any,
    key: str,
    started: datetime,
    *,
    saved: bool,
    cache_only: bool,
) -> Rendered:
    """Compute under an advisory lock on the cache key: identical computations in any process run once; the
    ones that waited take the result the first one stored."""
    settings = get_settings()
    conn = await session.connection()
    await cache.lock_and_set_timeout(conn, key, settings.query_timeout_ms, cache_only=cache_only)
    failed: BaseException | None = None
    try:
        hit = await cache.read(conn, key, saved=saved)
        if hit is not None and hit.last_refresh >= started:
            # Computed by another request while this one waited for the lock.
            metrics.QUERY_CACHE_HITS.labels(metrics.query_kind(query)).inc()
            return _from_cache(key, team, query, hit, is_cached=True)
        ctx = QueryContext(
            team_id=team.id,
            timezone=team.timezone,
            now=datetime.now(UTC),
            limits=query_limits(),
            test_account_filters=team.test_account_filters,
            week_start_day=team.week_start_day,
        )
        try:
            # A savepoint: a failed or cancelled statement must not abort the request's transaction (SQL
            # runs on a connection of its own).
            async with contextlib.nullcontext() if engine.runs_in_sql_sandbox(query) else conn.begin_nested():
                computed = await engine.compute(query, ctx, events_backend(session, conn))
        except QueryError as exc:
            metrics.QUERY_COMPUTATIONS.labels(metrics.query_kind(query), "error").inc()
            if isinstance(exc, QueryTooLarge):
                memory.release_soon()  # it may have been refused at 20 MB, after building them
            return Rendered(cache_key=key, timezone=team.timezone, error=exc.as_dict(), error_attr=exc.attr())
        metrics.QUERY_COMPUTATIONS.labels(metrics.query_kind(query), "ok").inc()
        payload = {
            "results": computed.results,
            "has_more": computed.has_more,
            "resolved_date_range": computed.resolved_date_range,
        }
        if computed.extra:
            payload["extra"] = computed.extra
        text = cache.payload_json(payload, computed.serialized)
        # A savepoint too: a write the database refuses leaves the request's transaction usable (the result
        # is still answered, just not kept).
        try:
            async with conn.begin_nested():
                budget = settings.cache_budget_bytes_per_team
                await cache.write(conn, key, team.id, text, ctx.now, saved=saved, budget=budget)
        except DBAPIError as exc:
            if is_transient(exc):
                raise
            logger.warning("a computed result was not cached: %s", type(exc.orig or exc).__name__)
        if len(text) > memory.RELEASE_ABOVE_BYTES:
            memory.release_soon()
        return _from_cache(key, team, query, cache.CachedResult(payload, ctx.now), is_cached=False)
    except BaseException as exc:
        failed = exc
        raise
    finally:
        if failed is None:
            await cache.reset_timeout(conn, settings.db_statement_timeout_ms)
        elif not isinstance(failed, asyncio.CancelledError):
            # For a caller whose transaction goes on; but never instead of the failure itself (the
            # connection may be gone). A cancelled computation's transaction is abandoned: nothing to reset.
            with contextlib.suppress(Exception):
                await cache.reset_timeout(conn, settings.db_statement_timeout_ms)
