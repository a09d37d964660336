"""A dashboard's tiles as PostHog serializes them: each insight rendered from its effective query.

Every tile goes through the one rendering path (`app.query.render`). With results cached, a dashboard costs
a fixed number of statements whatever its tile count: two for the tiles, one for every cached result (and,
at most once a minute per result, one more renewing their use stamps).
"""

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.dependencies import TeamAccess
from app.dashboards import repository
from app.dashboards.repository import DashboardFullRecord, TextTileRow, TileRecord
from app.dashboards.schemas import TextContent, Tile
from app.insights.schemas import DashboardTileBasic
from app.insights.service import to_schema as insight_schema
from app.insights.service import with_access
from app.models import Dashboard, DashboardTile
from app.query import cache
from app.query.effective import effective_query, merge_filters
from app.query.render import RefreshMode, Rendered, TeamInfo
from app.query.saved import cache_keys, render_saved
from app.schemas import trusted

LAYOUT_SIZES = ("sm", "xs")
_MISSING = 100  # PostHog sorts a tile without a position for the layout as if at y = x = 100


def layout_position(layouts: Any, size: str) -> tuple[float, float]:
    box = layouts.get(size) if isinstance(layouts, dict) else None
    if not isinstance(box, dict):
        return (_MISSING, _MISSING)

    def coordinate(name: str) -> float:
        value = box.get(name)
        return value if isinstance(value, int | float) and not isinstance(value, bool) else _MISSING

    return (coordinate("y"), coordinate("x"))


def _text(row: TextTileRow) -> TextContent:
    text = row.text
    return trusted(
        TextContent,
        {
            "id": text.id,
            "body": text.body,
            "created_by": text.created_by,
            "last_modified_at": text.last_modified_at,
            "last_modified_by": text.last_modified_by,
            "team": text.team_id,
            "dashboard_tiles": [trusted(DashboardTileBasic, t) for t in row.text_tiles],
        },
    )


def _tile(tile: DashboardTile | TileRecord, order: int, **content: Any) -> Tile:
    # Trusted values (the database's and the serializers'): built without validation.
    return trusted(
        Tile,
        dict(
            id=tile.id,
            layouts=tile.layouts or {},
            color=tile.color,
            filters_overrides=tile.filters_overrides,
            show_description=tile.show_description,
            transparent_background=tile.transparent_background,
            order=order,
            **content,
        ),
    )


def _remember(hits: dict[str, cache.CachedResult], rendered: Rendered) -> None:
    """A result computed for one tile serves the other tiles with the same effective query."""
    if rendered.last_refresh is not None and not rendered.is_cached:
        payload = {
            "results": rendered.result,
            "has_more": rendered.has_more,
            "resolved_date_range": rendered.resolved_date_range,
        }
        hits[rendered.cache_key] = cache.CachedResult(payload, rendered.last_refresh)


async def render_tiles(
    session: AsyncSession,
    access: TeamAccess,
    dashboard: Dashboard | DashboardFullRecord,
    filters_override: dict[str, Any],
    mode: RefreshMode,
    layout_size: str = "sm",
) -> list[Tile]:
    """The dashboard's live tiles, ordered by their position in `layout_size`, each with `order`."""
    insight_rows, text_rows = await repository.load_tiles(session, dashboard.id)
    await with_access(session, access, [row.insight for row in insight_rows])
    team = TeamInfo.of(access.team)
    filters = merge_filters(dashboard.filters, filters_override)
    queries = {
        row.tile.id: effective_query(row.insight.insight.query, filters, row.tile.filters_overrides)
        for row in insight_rows
    }
    keys = cache_keys(team, queries)
    # The tiles as saved; with a `filters_override` they are one-off results, evicted first.
    saved = not filters_override
    hits = await cache.read_many(await session.connection(), list(keys.values()), saved=saved)

    pending: list[tuple[DashboardTile | TileRecord, dict[str, Any]]] = []
    for row in insight_rows:
        query = queries[row.tile.id]
        rendered = None
        if query is not None:
            key = keys.get(row.tile.id)
            rendered = await render_saved(session, team, query, mode, saved=saved, prefetched=hits, key=key)
            _remember(hits, rendered)
        insight = insight_schema(row.insight, access, rendered, raw_result=True)
        if query is not row.insight.insight.query:
            # Filters applied: the tile shows the query it was rendered from (a copy only then).
            insight = insight.model_copy(update={"query": query})
        pending.append(
            (
                row.tile,
                {
                    "insight": insight,
                    "text": None,
                    "last_refresh": insight.last_refresh,
                    "is_cached": insight.is_cached,
                    "error": rendered.error if rendered else None,
                },
            )
        )
    for text_row in text_rows:
        content = {"insight": None, "text": _text(text_row), "last_refresh": None, "is_cached": False}
        pending.append((text_row.tile, content))

    size = layout_size if layout_size in LAYOUT_SIZES else "sm"
    # A stable sort: tiles at the same position keep the insight order they were loaded in.
    pending.sort(key=lambda item: layout_position(item[0].layouts, size))
    return [_tile(tile, order, **content) for order, (tile, content) in enumerate(pending)]
