"""Opening a stream: everything decided in the request's one read transaction, before the stream opens.

The dashboard (404 when missing), the caller's view noted, the tiles in order, the cached results of those
the client does not have yet; then the read transaction ends and its connection goes back to the pool (the
one exception to one transaction per request, DESIGN.md): the stream's renders open short sessions of their
own. It uses the dashboards' tile interface (`plan_tiles`, `tile_of`), as retrieve does.
"""

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.dependencies import TeamAccess
from app.dashboards.repository import DashboardFullRow
from app.dashboards.service import Overrides, end_read_transaction, get_viewed, shared_context
from app.dashboards.tiles import PlannedTile, TilePlan, plan_tiles
from app.dashboards.views import ViewRecorder
from app.query.effective import merge_filters
from app.query.render import RefreshMode
from app.streaming import resume

# The first tiles to send travel with the metadata when their results are ready (PostHog sends two there).
TILES_WITH_METADATA = 2


@dataclass
class OpenedStream:
    """What a stream sends: the dashboard, the tiles the client lacks (in order), and its resume state."""

    access: TeamAccess
    row: DashboardFullRow
    overrides: Overrides
    version: str
    # Tiles of the dashboard the client already has (a reconnection's `Last-Event-ID`).
    delivered: set[int]
    plan: TilePlan
    # The tiles to send, in order: first those with the metadata (when ready), then every other.
    with_metadata: list[PlannedTile]
    missing: list[PlannedTile]


async def open_stream(
    session: AsyncSession,
    access: TeamAccess,
    dashboard_id: int,
    overrides: Overrides,
    views: ViewRecorder,
    mode: RefreshMode,
    layout_size: str,
    last_event_id: str | None,
) -> OpenedStream | None:
    """The stream to send, or None when a reconnection has nothing left to receive (answered 204). For a
    sharing grant, in shared context: overrides ignored, refresh modes remapped (`shared_context`)."""
    mode, overrides = shared_context(access, mode, overrides)
    row = await get_viewed(session, access, dashboard_id, views)
    d = row.dashboard
    version = resume.dashboard_version(
        d.id,
        merge_filters(d.filters, overrides.filters),
        {**(d.variables or {}), **overrides.variables},
        layout_size,
    )
    found = resume.decode(last_event_id)
    # An id of another version (the filters changed, say): the tiles the client has are stale, send all.
    has = found if found is not None and found.version == version else None
    plan = await plan_tiles(
        session,
        access,
        d,
        overrides.filters,
        mode,
        layout_size,
        wanted=None if has is None else (lambda tile_id: tile_id not in has),
    )
    await end_read_transaction(session)
    missing = [t for t in plan.tiles if has is None or t.id not in has]
    if has is not None and not missing:
        return None
    return OpenedStream(
        access=access,
        row=row,
        overrides=overrides,
        version=version,
        delivered={t.id for t in plan.tiles if has is not None and t.id in has},
        plan=plan,
        with_metadata=[t for t in missing[:TILES_WITH_METADATA] if t.ready],
        missing=missing,
    )
