"""A dashboard's tiles as PostHog serializes them: each insight rendered from its effective query.

Every tile goes through the one rendering path (`app.query.render`). A dashboard is first planned in the
request's read transaction (`plan_tiles`): its tiles in order, their effective queries and, in one statement,
their cached results. With results cached (or a cache-only read), that is all: a dashboard costs a fixed
number of statements whatever its tile count: two for the tiles, one for every cached result (and, at most
once a minute per result, one more renewing their use stamps). Tiles that must be computed are computed
after that transaction has ended, on the worker's render pool (`app.query.pool`): several at once, each
distinct query once, each in a short session of its own (`compute`, or `stream_tiles` one by one).
"""

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.dependencies import TeamAccess
from app.dashboards import repository
from app.dashboards.repository import DashboardFullRecord, TextTileRow, TileRecord
from app.dashboards.schemas import TextContent, Tile
from app.insights.repository import InsightRow
from app.insights.schemas import DashboardTileBasic
from app.insights.service import to_schema as insight_schema
from app.insights.service import with_access
from app.models import Dashboard, DashboardTile
from app.query import cache
from app.query.effective import effective_query, merge_filters
from app.query.pool import RenderPool, cancel_all
from app.query.render import ALWAYS_COMPUTE, RefreshMode, Rendered, TeamInfo, answer_from_cache
from app.query.saved import NOT_RENDERED, cache_keys
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


@dataclass(slots=True)
class PlannedTile:
    """One live tile of a dashboard, in order, with what it needs to be serialized: `rendered` once its result
    is known (at once when the cache answers, or when there is nothing to compute), else `key`, the render
    it waits for (tiles with the same effective query wait for the same one)."""

    tile: TileRecord
    order: int
    insight: InsightRow | None = None
    text: TextTileRow | None = None
    query: Any = None
    key: str | None = None
    rendered: Rendered | None = None
    ready: bool = True

    @property
    def id(self) -> int:
        return self.tile.id


@dataclass
class TilePlan:
    """A dashboard's tiles as one read transaction found them: every live tile in order, the results of those
    the cache answers, and which must still be computed (`pending`)."""

    team: TeamInfo
    mode: RefreshMode
    saved: bool
    tiles: list[PlannedTile]

    @property
    def pending(self) -> list[PlannedTile]:
        return [t for t in self.tiles if not t.ready]

    def renders(self, tiles: list[PlannedTile]) -> dict[str, list[PlannedTile]]:
        """The renders these tiles wait for, each with its tiles: one per distinct effective query."""
        by_key: dict[str, list[PlannedTile]] = {}
        for t in tiles:
            if not t.ready and t.key is not None:
                by_key.setdefault(t.key, []).append(t)
        return by_key

    def submit(self, pool: RenderPool, key: str, tiles: list[PlannedTile]) -> "asyncio.Future[Rendered]":
        # No cache row is handed over: the cache could not answer (that is why it is pending), and the
        # computation reads the row again under its lock anyway. A stream waiting for its turn keeps none.
        return pool.submit(self.team, tiles[0].query, self.mode, saved=self.saved, key=key, prefetched={})


async def plan_tiles(
    session: AsyncSession,
    access: TeamAccess,
    dashboard: Dashboard | DashboardFullRecord,
    filters_override: dict[str, Any],
    mode: RefreshMode,
    layout_size: str = "sm",
    wanted: Callable[[int], bool] | None = None,
) -> TilePlan:
    """The dashboard's live tiles, ordered by their position in `layout_size`, each with `order`. Those
    `wanted` (by tile id; all by default) get their effective query, their cache row (one statement for all)
    and, when `mode` lets the cache answer, their result."""
    insight_rows, text_rows = await repository.load_tiles(session, dashboard.id)
    size = layout_size if layout_size in LAYOUT_SIZES else "sm"
    planned = [PlannedTile(row.tile, 0, insight=row.insight) for row in insight_rows]
    planned += [PlannedTile(row.tile, 0, text=row) for row in text_rows]
    # A stable sort: tiles at the same position keep the insight order they were loaded in.
    planned.sort(key=lambda t: layout_position(t.tile.layouts, size))
    for order, t in enumerate(planned):
        t.order = order

    team = TeamInfo.of(access.team)
    # The tiles as saved; with a `filters_override` they are one-off results, evicted first.
    saved = not filters_override
    chosen = [t for t in planned if t.insight is not None and (wanted is None or wanted(t.id))]
    await with_access(session, access, [t.insight for t in chosen if t.insight is not None])
    filters = merge_filters(dashboard.filters, filters_override)
    for t in chosen:
        assert t.insight is not None
        t.query = effective_query(t.insight.insight.query, filters, t.tile.filters_overrides)
    keys = cache_keys(team, {t.id: t.query for t in chosen})
    # Modes that always compute read no cache row here (the computation reads it under its lock).
    hits = (
        {}
        if mode in ALWAYS_COMPUTE
        else await cache.read_many(await session.connection(), list(keys.values()), saved=saved)
    )
    now = datetime.now(UTC)
    for t in chosen:
        if t.query is None:
            continue  # an insight without a query (legacy filters only): nothing to render
        key = keys.get(t.id)
        if key is None:  # a query that cannot even be hashed (logged by `cache_keys`)
            t.rendered = Rendered(cache_key="", timezone=team.timezone, error=dict(NOT_RENDERED))
            continue
        t.key = key
        t.rendered = answer_from_cache(team, t.query, mode, key, hits.get(key), now)
        t.ready = t.rendered is not None
    return TilePlan(team=team, mode=mode, saved=saved, tiles=planned)


async def compute(plan: TilePlan, pool: RenderPool, tiles: list[PlannedTile]) -> None:
    """Compute these tiles' results on the pool, each distinct query once, all at the same time (within the
    pool's limit); a database fault fails the whole (the other renders are dropped)."""
    renders = plan.renders(tiles)
    futures = {key: plan.submit(pool, key, waiting) for key, waiting in renders.items()}
    try:
        await asyncio.gather(*futures.values())
    except BaseException:
        cancel_all(list(futures.values()))
        raise
    for key, future in futures.items():
        for t in renders[key]:
            t.rendered = future.result()
            t.ready = True


def tile_of(t: PlannedTile, access: TeamAccess) -> Tile:
    """The tile as PostHog serializes it, from its planned (and rendered) state."""
    if t.text is not None:
        content = {"insight": None, "text": _text(t.text), "last_refresh": None, "is_cached": False}
        return _tile(t.tile, t.order, **content)
    assert t.insight is not None
    rendered = t.rendered
    insight = insight_schema(t.insight, access, rendered, raw_result=True)
    if t.query is not None and t.query is not t.insight.insight.query:
        # Filters applied: the tile shows the query it was rendered from (a copy only then).
        insight = insight.model_copy(update={"query": t.query})
    return _tile(
        t.tile,
        t.order,
        insight=insight,
        text=None,
        last_refresh=insight.last_refresh,
        is_cached=insight.is_cached,
        error=rendered.error if rendered else None,
    )
