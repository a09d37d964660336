"""Room for new tiles: the caps on tiles (settings).

Every way a tile is made goes through here: `tiles` and `duplicate_tiles` on an update, an insight's
`dashboards`, duplicating a dashboard, `move_tile`.
"""

from collections.abc import Mapping

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


async def make_room(session: AsyncSession, adding: Mapping[int, int], attr: str) -> dict[int, Placer]:
    """Check each dashboard has room for `adding[id]` more live tiles, and return a placer around each one's
    live tiles."""
    layouts = await repository.live_layouts(session, list(adding))
    for dashboard_id, count in adding.items():
        check_room(dashboard_id, len(layouts[dashboard_id]) + count, attr)
    return {dashboard_id: Placer(layouts[dashboard_id]) for dashboard_id in adding}
