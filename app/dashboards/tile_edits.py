"""Writing a dashboard's tiles: the `tiles` of an update, copies made by duplication, and `duplicate_tiles`.

Every function works on the whole batch at once: it reads what it needs in one or two statements and lets
one flush write the rest, so twenty tile items cost what two do. New tiles without a layout get a place
(`app.dashboards.layout`), within the caps and under the dashboard's placement lock
(`app.dashboards.placement`).
"""

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.dependencies import TeamAccess
from app.dashboards import placement, repository
from app.dashboards.layout import Placer
from app.dashboards.repository import SourceTile
from app.dashboards.schemas import TileDuplicate, TileEdit
from app.errors import ValidationFailed
from app.insights.service import new_short_id
from app.models import DashboardTile, Insight, Text

TEXT_NOT_FOUND = "Text tile not found."


def _does_not_exist(pk: int, attr: str) -> ValidationFailed:
    return ValidationFailed(f'Invalid pk "{pk}" - object does not exist.', attr=attr, code="does_not_exist")


def _live_layouts(tiles: Sequence[DashboardTile]) -> list[Any]:
    return [t.layouts for t in tiles if not t.deleted]


def creates_tile(item: TileEdit) -> bool:
    """An item with a text and neither a tile id nor a text id makes a new text tile."""
    return item.text is not None and item.text.id is None and item.id is None


async def apply_tile_edits(
    session: AsyncSession, access: TeamAccess, dashboard_id: int, items: Sequence[TileEdit]
) -> None:
    """Apply an update's `tiles` (reference §2.2 update step 6), all or nothing: every item is checked
    before anything is written, and a bad one is a 400 naming it."""
    # Before the tiles are read: where new tiles go depends on every other tile's place.
    await placement.lock(session, [dashboard_id])
    tiles = await repository.all_tiles(session, dashboard_id)
    by_id = {t.id: t for t in tiles}
    by_text = {t.text_id: t for t in tiles if t.text_id is not None}
    # The texts the items edit, in one statement: those named by `text.id` that are on this dashboard, and
    # those of text tiles named by the tile's `id` alone.
    needed: set[int] = set()
    for item in items:
        if item.text is None:
            continue
        if item.text.id is not None:
            needed.add(item.text.id)
        elif item.id is not None and (named := by_id.get(item.id)) is not None and named.text_id is not None:
            needed.add(named.text_id)
    texts = await repository.texts_by_id(session, access.team.id, sorted(needed & set(by_text)))

    # Resolve every item first: (item, its tile or None for a new one, its text or None for a new one).
    plan: list[tuple[TileEdit, DashboardTile | None, Text | None]] = []
    for i, item in enumerate(items):
        attr = f"tiles__{i}"
        tile = None
        if item.id is not None:
            tile = by_id.get(item.id)
            if tile is None:
                raise _does_not_exist(item.id, f"{attr}__id")
        if item.text is not None:
            text = None
            if item.text.id is not None:
                text = texts.get(item.text.id)
                if text is None:
                    raise ValidationFailed(TEXT_NOT_FOUND, attr=f"{attr}__text__id")
                # A text has one tile per dashboard: the item changes that tile.
                tile = tile or by_text[text.id]
            if tile is not None:
                if tile.text_id is None or (text is not None and tile.text_id != text.id):
                    raise ValidationFailed(
                        f"Tile {tile.id} does not show this text; a tile's content cannot change.",
                        attr=f"{attr}__id",
                    )
                text = texts.get(tile.text_id)
                if text is None:
                    raise ValidationFailed(TEXT_NOT_FOUND, attr=f"{attr}__text__id")
            plan.append((item, tile, text))
        elif item.display_fields():
            if tile is None:
                # Insight tiles are added from the insight (`dashboards`), so a new tile here needs a text.
                raise ValidationFailed("This field is required.", attr=f"{attr}__id", code="required")
            plan.append((item, tile, None))
        # Anything else (an `insight`, `order` or `is_cached` alone) is read-only: nothing to do.

    # The live tiles the request leaves: it may make room by removing tiles, and use it by adding new ones
    # or bringing removed ones back.
    deleted = {t.id: bool(t.deleted) for t in tiles}
    for item, tile, _ in plan:
        if tile is not None and "deleted" in item.model_fields_set:
            deleted[tile.id] = bool(item.deleted)
    created = sum(1 for _, tile, _ in plan if tile is None)
    revived = sum(1 for t in tiles if t.deleted and not deleted[t.id])
    if created or revived:
        live = sum(not gone for gone in deleted.values()) + created
        placement.check_room(dashboard_id, live, "tiles")

    now = datetime.now(UTC)
    new_texts: list[tuple[TileEdit, Text]] = []
    for item, tile, text in plan:
        if item.text is not None:
            if text is None:
                text = Text(team_id=access.team.id, created_by_id=access.user.id, body=item.text.body)
                session.add(text)
                new_texts.append((item, text))
            elif "body" in item.text.model_fields_set:
                text.body = item.text.body
            text.last_modified_by_id = access.user.id
            text.last_modified_at = now
        if tile is not None:
            for name, value in item.display_fields().items():
                setattr(tile, name, value)
    await session.flush()
    if new_texts:
        # Placed around the tiles as this request leaves them (a tile removed by it frees its slot).
        placer = Placer(_live_layouts(tiles))
        for item, text in new_texts:
            fields = item.display_fields()
            fields["layouts"] = placer.place(fields.get("layouts"))
            session.add(DashboardTile(dashboard_id=dashboard_id, text_id=text.id, **fields))
        await session.flush()


def _copy_display(tile: DashboardTile) -> dict[str, Any]:
    return {
        "color": tile.color,
        "filters_overrides": tile.filters_overrides,
        "show_description": tile.show_description,
        "transparent_background": tile.transparent_background,
    }


async def _deep_copies(
    session: AsyncSession, access: TeamAccess, sources: Sequence[SourceTile]
) -> list[tuple[int | None, int | None]]:
    """A new insight (named "<name> (Copy)", with the original's query, description and tags) or a new text
    for each source tile, in order: their (insight id, text id)."""
    now = datetime.now(UTC)
    copies: list[Insight | Text] = []
    for source in sources:
        if source.insight is not None:
            original = source.insight
            copies.append(
                Insight(
                    team_id=access.team.id,
                    short_id=new_short_id(),
                    # As PostHog: an unnamed insight stays unnamed (its derived name is copied).
                    name=f"{original.name} (Copy)" if original.name else None,
                    derived_name=original.derived_name,
                    description=original.description,
                    query=original.query,
                    filters=original.filters,
                    order=original.order,
                    saved=original.saved,
                    created_by_id=access.user.id,
                    last_modified_by_id=access.user.id,
                    last_modified_at=now,
                )
            )
        else:
            assert source.text is not None
            copies.append(
                Text(
                    team_id=access.team.id,
                    body=source.text.body,
                    created_by_id=access.user.id,
                    last_modified_by_id=access.user.id,
                    last_modified_at=now,
                )
            )
    session.add_all(copies)
    await session.flush()
    await repository.copy_insight_tags(
        session,
        [
            (source.insight.id, copy.id)
            for source, copy in zip(sources, copies, strict=True)
            if source.insight is not None
        ],
    )
    return [(copy.id, None) if isinstance(copy, Insight) else (None, copy.id) for copy in copies]


async def copy_dashboard_tiles(
    session: AsyncSession, access: TeamAccess, source_id: int, target_id: int, *, deep: bool
) -> None:
    """Duplicate every live tile of `source_id` onto the new dashboard `target_id` (reference §2.2 create
    step 6): tiles pointing at the same insights and texts, or at copies of them when `deep`. Layouts and
    display fields are kept; a tile without a layout gets a place."""
    sources = await repository.tiles_to_copy(session, source_id)
    if not sources:
        return
    # The new dashboard is this transaction's own: no other request can place tiles on it, so no lock.
    placement.check_new_tiles(len(sources), "use_dashboard")
    placement.check_room(None, len(sources), "use_dashboard")
    content = (
        await _deep_copies(session, access, sources)
        if deep
        else [(s.tile.insight_id, s.tile.text_id) for s in sources]
    )
    placer = Placer(s.tile.layouts for s in sources if s.tile.layouts)
    session.add_all(
        DashboardTile(
            dashboard_id=target_id,
            insight_id=insight_id,
            text_id=text_id,
            layouts=dict(s.tile.layouts) if s.tile.layouts else placer.place(),
            deleted=False,
            **_copy_display(s.tile),
        )
        for s, (insight_id, text_id) in zip(sources, content, strict=True)
    )
    await session.flush()


async def duplicate_tiles(
    session: AsyncSession, access: TeamAccess, dashboard_id: int, items: Sequence[TileDuplicate]
) -> None:
    """An update's `duplicate_tiles` (reference §2.2 update step 7): each listed live tile is copied onto
    the same dashboard with a copy of its insight or text, at the given `layouts` or at a free place."""
    if not items:
        return
    wanted = list(dict.fromkeys(item.id for item in items))
    found = {s.tile.id: s for s in await repository.tiles_to_copy(session, dashboard_id, wanted)}
    for i, item in enumerate(items):
        if item.id not in found:
            raise _does_not_exist(item.id, f"duplicate_tiles__{i}__id")
    sources = [found[item.id] for item in items]
    placer = (await placement.make_room(session, {dashboard_id: len(items)}, "duplicate_tiles"))[dashboard_id]
    content = await _deep_copies(session, access, sources)
    session.add_all(
        DashboardTile(
            dashboard_id=dashboard_id,
            insight_id=insight_id,
            text_id=text_id,
            layouts=placer.place(item.layouts),
            deleted=False,
            **_copy_display(source.tile),
        )
        for item, source, (insight_id, text_id) in zip(items, sources, content, strict=True)
    )
    await session.flush()
