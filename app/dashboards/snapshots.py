"""`snapshot` and `analyze_refresh_result`: what changed on a dashboard between before and after a refresh.

`snapshot` keeps the "before" state (the client's `client_results`, or each insight tile's cached result) as a
`dashboard_snapshot` row, bound to the dashboard and the caller, for 30 minutes; `analyze_refresh_result`
reads the "after" state the same way and compares the two (`app.dashboards.refresh_analysis`). Rows live in
PostgreSQL, so any worker answers either call. Both read the cache only: they never compute a tile.
"""

import secrets
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.dependencies import TeamAccess
from app.dashboards import refresh_analysis, snapshot_repository
from app.dashboards.repository import DashboardFullRecord, get_dashboard_record
from app.dashboards.snapshot_schemas import (
    AnalyzeRequest,
    RefreshAnalysis,
    SnapshotCreated,
    SnapshotRequest,
)
from app.dashboards.tiles import plan_tiles
from app.errors import ErrorBody, NotFound
from app.query import cache
from app.query.render import RefreshMode

LIFETIME = timedelta(minutes=30)
KEY_REQUIRED = "cache_key is required"
NOT_FOUND = "Analysis context expired or not found. Please refresh the dashboard again."


async def _dashboard(session: AsyncSession, access: TeamAccess, dashboard_id: int) -> DashboardFullRecord:
    row = await get_dashboard_record(session, access.team.id, dashboard_id, access.user.id)
    if row is None:
        raise NotFound()
    return row.dashboard


async def cached_state(
    session: AsyncSession, access: TeamAccess, dashboard: DashboardFullRecord
) -> list[tuple[str, dict[str, Any]]]:
    """Each insight tile's cached result, in the dashboard's order, through the one rendering path in its
    cache-only mode; tiles without a cached result, or whose query cannot render, are left out."""
    plan = await plan_tiles(session, access, dashboard, {}, RefreshMode.FORCE_CACHE)
    state = []
    for t in plan.tiles:
        rendered = t.rendered
        # No cache row (`last_refresh` None), an error, or nothing rendered: nothing to compare.
        if t.insight is None or rendered is None or rendered.error or rendered.result is None:
            continue
        insight = t.insight.insight
        name = insight.name or insight.derived_name or "Untitled insight"
        state.append((str(t.id), {"insight_name": name, "data": cache.decoded(rendered.result)}))
    return state


async def take_snapshot(
    session: AsyncSession, access: TeamAccess, dashboard_id: int, data: SnapshotRequest, now: datetime
) -> SnapshotCreated:
    dashboard = await _dashboard(session, access, dashboard_id)
    if data.client_results:
        tiles = {tile_id: result.model_dump() for tile_id, result in data.client_results.items()}
    else:
        tiles = dict(await cached_state(session, access, dashboard))
    # PostHog's key, and a random part: a key cannot be guessed from the dashboard, the user and the time.
    key = (
        f"dashboard_refresh_before_{dashboard_id}_{access.user.id}_{now.timestamp()}_"
        f"{secrets.token_urlsafe(24)}"
    )
    await snapshot_repository.delete_expired(session, now)
    await snapshot_repository.add(
        session,
        cache_key=key,
        team_id=access.team.id,
        dashboard_id=dashboard_id,
        user_id=access.user.id,
        tiles=tiles,
        now=now,
        expires_at=now + LIFETIME,
    )
    return SnapshotCreated(cache_key=key)


async def analyze(
    session: AsyncSession, access: TeamAccess, dashboard_id: int, body: AnalyzeRequest, now: datetime
) -> RefreshAnalysis | ErrorBody:
    """The changes since the snapshot `cache_key` (of this dashboard and caller, not expired), or the error
    to answer for an unknown or expired key."""
    dashboard = await _dashboard(session, access, dashboard_id)
    key = body.cache_key
    if key is None or key == "":
        raise ErrorBody(400, KEY_REQUIRED)
    await snapshot_repository.delete_expired(session, now)
    before = None
    if isinstance(key, str) and key.isascii() and "\x00" not in key and len(key) <= 200:
        before = await snapshot_repository.get_live(
            session, key, access.team.id, dashboard_id, access.user.id, now
        )
    if before is None:
        # Answered, not raised: the request's transaction commits, with the expired rows it deleted.
        return ErrorBody(400, NOT_FOUND)
    changes = refresh_analysis.compare(before, await cached_state(session, access, dashboard))
    return RefreshAnalysis.model_validate(
        {"result": refresh_analysis.summary(changes), "changes": [asdict(c) for c in changes]}
    )
