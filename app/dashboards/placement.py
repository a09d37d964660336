"""Room for new tiles: the caps on tiles (settings), and the lock that lets one request at a time place or
edit tiles on a dashboard.

Every way a tile is made goes through here: `tiles` and `duplicate_tiles` on an update, an insight's
`dashboards`, duplicating a dashboard, `move_tile`. Without the lock, requests adding tiles to one dashboard
at the same moment all read the same free slots and put their tiles on top of each other, and together
could pass the cap each of them checked alone.
"""

from collections.abc import Iterable, Mapping

from sqlalchemy.ext.asyncio import AsyncSession

from app.config import get_settings
from app.dashboards import repository
from app.dashboards.layout import Placer
from app.errors import ValidationFailed

TOO_MANY_NEW = "A request may add at most {cap} tiles; this one adds {count}."
DASHBOARD_FULL = "A dashboard may hold at most {cap} tiles; {which} would hold {count}."


def check_new_tiles(count: int, attr: str) -> None:
    """A request creates at most `max_new_tiles_per_request` tiles: a 400 naming `attr` otherwise."""
    cap = get_settings().max_new_tiles_per_request
    if count > cap:
        raise ValidationFailed(TOO_MANY_NEW.format(cap=cap, count=count), attr=attr, code="max_length")


def check_room(dashboard_id: int | None, live: int, attr: str) -> None:
    """A request that adds tiles leaves at most `max_tiles_per_dashboard` live ones: a 400 naming `attr`
    otherwise. (One that only edits or removes tiles is never refused, even on a dashboard over the cap.)
    `dashboard_id` None is a dashboard the request itself creates."""
    cap = get_settings().max_tiles_per_dashboard
    if live > cap:
        which = "the new dashboard" if dashboard_id is None else f"dashboard {dashboard_id}"
        raise ValidationFailed(
            DASHBOARD_FULL.format(cap=cap, which=which, count=live), attr=attr, code="max_length"
        )


async def lock(session: AsyncSession, dashboard_ids: Iterable[int]) -> None:
    """Serialise tile placement and edits on these dashboards until the transaction ends. Take it before
    reading the tiles that decide where new ones go; requests locking several dashboards lock them in one
    order, so they never wait for each other in a circle."""
    await repository.lock_tile_placement(session, sorted(set(dashboard_ids)))


async def make_room(session: AsyncSession, adding: Mapping[int, int], attr: str) -> dict[int, Placer]:
    """Lock the dashboards, check each has room for `adding[id]` more live tiles, and return a placer
    around each one's live tiles."""
    await lock(session, adding)
    layouts = await repository.live_layouts(session, list(adding))
    for dashboard_id, count in adding.items():
        check_room(dashboard_id, len(layouts[dashboard_id]) + count, attr)
    return {dashboard_id: Placer(layouts[dashboard_id]) for dashboard_id in adding}
