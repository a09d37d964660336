"""Every query of the dashboards resource."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ARRAY,
    Integer,
    Row,
    Select,
    bindparam,
    cast,
    column,
    delete,
    exists,
    func,
    literal,
    or_,
    select,
    text,
    type_coerce,
    update,
    values,
)
from sqlalchemy.dialects.postgresql import aggregate_order_by, insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased, contains_eager, selectinload
from sqlalchemy.types import NullType

from app.insights.repository import (
    INSIGHT_RECORD_WIDTH,
    INSIGHT_RECORDS,
    InsightRow,
    insight_record_row,
)
from app.models import (
    Dashboard,
    DashboardPrivilege,
    DashboardTile,
    DashboardView,
    DataColorTheme,
    Insight,
    SharingConfiguration,
    Tag,
    TaggedItem,
    Team,
    Text,
    User,
)
from app.schemas import USER_BASIC_FIELDS, UserBasic
from app.tags import tag_names


@dataclass
class DashboardRow:
    """A dashboard with what its serializers need about the calling user."""

    dashboard: Dashboard
    privilege_level: int | None
    last_viewed_at: datetime | None
    tags: list[str]
    is_shared: bool = False


@dataclass(slots=True)
class DashboardRecord:
    """A dashboard's list columns, read as they are (no ORM object), its creator already a `UserBasic`."""

    created_by: UserBasic | None
    id: int
    team_id: int
    name: str | None
    description: str
    pinned: bool
    created_at: datetime
    created_by_id: int | None
    deleted: bool
    last_accessed_at: datetime | None
    last_refresh: datetime | None
    creation_mode: str
    restriction_level: int


_RECORD_COLUMNS = tuple(
    getattr(Dashboard, name) for name in DashboardRecord.__dataclass_fields__ if name != "created_by"
)


@dataclass(slots=True)
class DashboardFullRecord(DashboardRecord):
    """A dashboard's columns for the full serializer, read as they are (a retrieve)."""

    filters: dict[str, Any]
    variables: dict[str, Any] | None
    breakdown_colors: Any
    data_color_theme_id: int | None


_FULL_RECORD_COLUMNS = tuple(
    getattr(Dashboard, name) for name in DashboardFullRecord.__dataclass_fields__ if name != "created_by"
)


@dataclass
class DashboardFullRow:
    """A retrieved dashboard, with what its serializer needs about the calling user."""

    dashboard: DashboardFullRecord
    privilege_level: int | None
    last_viewed_at: datetime | None
    tags: list[str]
    is_shared: bool = False


@dataclass
class DashboardListRow:
    """A dashboard of a list, with what its serializer needs about the calling user."""

    dashboard: DashboardRecord
    privilege_level: int | None
    last_viewed_at: datetime | None
    tags: list[str]
    is_shared: bool = False


@dataclass(frozen=True)
class ListFilters:
    tags: Sequence[str] = ()
    creation_mode: str | None = None
    search: str | None = None


def _is_shared() -> Any:
    """Whether the dashboard's current share is enabled (`is_shared`), correlated to the dashboard."""
    return (
        exists()
        .where(
            SharingConfiguration.dashboard_id == Dashboard.id,
            SharingConfiguration.expires_at.is_(None),
            SharingConfiguration.enabled.is_(True),
        )
        .correlate(Dashboard)
    )


# One statement per read: the creator, the caller's privilege and last view (outer joins: None when the
# caller has none) and the tags all come with the dashboard. Built once, with the caller as a parameter:
# constructing this statement costs more than running it.
def _build_rows_select() -> Select[Dashboard, int, datetime, list[str], bool]:
    creator = aliased(User)
    caller = bindparam("caller_id", type_=Integer)
    return (
        select(
            Dashboard,
            DashboardPrivilege.level,
            DashboardView.viewed_at,
            tag_names(TaggedItem.dashboard_id, Dashboard.id).correlate(Dashboard),
            _is_shared(),
        )
        .outerjoin(creator, Dashboard.created_by)
        .outerjoin(
            DashboardPrivilege,
            (DashboardPrivilege.dashboard_id == Dashboard.id) & (DashboardPrivilege.user_id == caller),
        )
        .outerjoin(
            DashboardView, (DashboardView.dashboard_id == Dashboard.id) & (DashboardView.user_id == caller)
        )
        .options(contains_eager(Dashboard.created_by.of_type(creator)))
    )


_ROWS = _build_rows_select()


def _build_record_select(columns: Sequence[Any]) -> Select[Any]:
    """Dashboards as plain columns (`columns`, then the creator's `USER_BASIC_FIELDS`, the caller's privilege
    and last view, the tags): no ORM object."""
    creator = aliased(User)
    caller = bindparam("caller_id", type_=Integer)
    return (
        select(
            *columns,
            *(getattr(creator, name) for name in USER_BASIC_FIELDS),
            DashboardPrivilege.level,
            DashboardView.viewed_at,
            # asyncpg returns the array as a list already: no per-row processing by the ARRAY type.
            type_coerce(tag_names(TaggedItem.dashboard_id, Dashboard.id).correlate(Dashboard), NullType()),
            _is_shared(),
        )
        .select_from(Dashboard)
        .outerjoin(creator, creator.id == Dashboard.created_by_id)
        .outerjoin(
            DashboardPrivilege,
            (DashboardPrivilege.dashboard_id == Dashboard.id) & (DashboardPrivilege.user_id == caller),
        )
        .outerjoin(
            DashboardView, (DashboardView.dashboard_id == Dashboard.id) & (DashboardView.user_id == caller)
        )
    )


# The list serializer shows none of the JSON columns: they are neither fetched nor decoded.
_LIST_ROWS = _build_record_select(_RECORD_COLUMNS).order_by(
    Dashboard.pinned.desc(), Dashboard.name.asc().nulls_last(), Dashboard.id
)
_ONE_LIVE_RECORD = _build_record_select(_FULL_RECORD_COLUMNS).where(
    Dashboard.team_id == bindparam("team_id", type_=Integer),
    Dashboard.id == bindparam("dashboard_id", type_=Integer),
    Dashboard.deleted.is_(False),
)
_FULL_OWN = len(_FULL_RECORD_COLUMNS)
_FULL_USER_END = _FULL_OWN + len(USER_BASIC_FIELDS)
_MODES = ("default", "template", "duplicate", "unlisted")  # `CreationMode`
_OWN = len(_RECORD_COLUMNS)
_USER_END = _OWN + len(USER_BASIC_FIELDS)


def _list_row(values: Sequence[Any]) -> DashboardListRow:
    level, viewed, tags, shared, _total = values[_USER_END:]
    record = DashboardRecord(UserBasic.from_columns(values[_OWN:_USER_END]), *values[:_OWN])
    return DashboardListRow(
        dashboard=record, privilege_level=level, last_viewed_at=viewed, tags=tags or [], is_shared=shared
    )


_ONE_ROW = _ROWS.where(
    Dashboard.team_id == bindparam("team_id"), Dashboard.id == bindparam("dashboard_id")
).execution_options(populate_existing=True)
_ONE_LIVE_ROW = _ONE_ROW.where(Dashboard.deleted.is_(False))


def _rows(
    result: Sequence[Row[Dashboard, int | None, datetime | None, list[str] | None, bool]],
) -> list[DashboardRow]:
    return [
        DashboardRow(
            dashboard=d, privilege_level=level, last_viewed_at=viewed, tags=tags or [], is_shared=shared
        )
        for d, level, viewed, tags, shared in result
    ]


def _list_statements(filters: ListFilters) -> tuple[Select[Any], Select[Any]]:
    """The count and the page of a list; the team, limit and offset are parameters."""
    conditions = [Dashboard.team_id == bindparam("team_id", type_=Integer), Dashboard.deleted.is_(False)]
    if filters.creation_mode is not None:
        conditions.append(Dashboard.creation_mode == filters.creation_mode)
    else:
        conditions.append(Dashboard.creation_mode != "unlisted")
    if filters.search:
        pattern = "%" + filters.search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        conditions.append(or_(Dashboard.name.ilike(pattern), Dashboard.description.ilike(pattern)))
    if filters.tags:
        conditions.append(
            exists()
            .where(TaggedItem.dashboard_id == Dashboard.id, TaggedItem.tag_id == Tag.id)
            .where(Tag.name.in_(list(filters.tags)))
        )
    count = select(func.count()).select_from(Dashboard).where(*conditions)
    # The page's rows carry the count of all that match (a window over the whole result, before LIMIT):
    # one statement, unless the page is empty.
    page = (
        _LIST_ROWS.add_columns(func.count().over())
        .where(*conditions)
        .limit(bindparam("limit", type_=Integer))
        .offset(bindparam("offset", type_=Integer))
    )
    return count, page


# Built once for lists without a search or tags (building them costs more than running them).
_LIST_STATEMENTS = {mode: _list_statements(ListFilters(creation_mode=mode)) for mode in (None, *_MODES)}


async def list_dashboards(
    session: AsyncSession, team_id: int, user_id: int, filters: ListFilters, limit: int, offset: int
) -> tuple[list[DashboardListRow], int]:
    prebuilt = None if filters.search or filters.tags else _LIST_STATEMENTS.get(filters.creation_mode)
    count_stmt, page_stmt = prebuilt or _list_statements(filters)
    params = {"team_id": team_id, "caller_id": user_id, "limit": limit, "offset": offset}
    # On the connection: plain rows, none of the ORM's result machinery (a list has nothing to flush).
    rows = (await (await session.connection()).execute(page_stmt, params)).all()
    if rows:
        return [_list_row(row) for row in rows], rows[0][-1]
    # An empty page (none match, or past the end) has no row to carry the count.
    return [], (await session.execute(count_stmt, {"team_id": team_id})).scalar_one()


async def get_dashboard_record(
    session: AsyncSession, team_id: int, dashboard_id: int, user_id: int
) -> DashboardFullRow | None:
    """A live dashboard as plain columns, for a retrieve (which changes nothing of it)."""
    params = {"caller_id": user_id, "team_id": team_id, "dashboard_id": dashboard_id}
    # On the connection: no ORM object. It does not autoflush: a retrieve has nothing to flush.
    values = (await (await session.connection()).execute(_ONE_LIVE_RECORD, params)).first()
    if values is None:
        return None
    level, viewed, tags, shared = values[_FULL_USER_END:]
    record = DashboardFullRecord(
        UserBasic.from_columns(values[_FULL_OWN:_FULL_USER_END]), *values[:_FULL_OWN]
    )
    return DashboardFullRow(
        dashboard=record, privilege_level=level, last_viewed_at=viewed, tags=tags or [], is_shared=shared
    )


async def get_dashboard(
    session: AsyncSession, team_id: int, dashboard_id: int, user_id: int, *, include_deleted: bool = False
) -> DashboardRow | None:
    stmt = _ONE_ROW if include_deleted else _ONE_LIVE_ROW
    params = {"caller_id": user_id, "team_id": team_id, "dashboard_id": dashboard_id}
    rows = _rows((await session.execute(stmt, params)).all())
    return rows[0] if rows else None


async def get_dashboards(
    session: AsyncSession, team_id: int, dashboard_ids: Sequence[int], user_id: int
) -> list[DashboardRow]:
    """Several live dashboards of the team, in one statement (e.g. those an insight is put on)."""
    stmt = _ROWS.where(
        Dashboard.team_id == team_id, Dashboard.id.in_(list(dashboard_ids)), Dashboard.deleted.is_(False)
    )
    return _rows((await session.execute(stmt, {"caller_id": user_id})).all())


# Views noted by retrieves, written in one statement (`app.dashboards.views`): each dashboard's
# `last_accessed_at` and each caller's view, never moved back (another process may have written a later one).
# The dashboards are locked in id order, so that processes writing the same dashboards cannot deadlock; views
# of dashboards or users gone since are dropped.
_RECORD_VIEWS = text(
    """
    WITH v AS (
        SELECT * FROM unnest(CAST(:dashboard_ids AS integer[]), CAST(:user_ids AS integer[]),
                             CAST(:times AS timestamptz[])) AS v(dashboard_id, user_id, viewed_at)
    ), latest AS (
        SELECT dashboard_id, max(viewed_at) AS at FROM v GROUP BY dashboard_id
    ), locked AS (
        SELECT d.id FROM dashboard d WHERE d.id IN (SELECT dashboard_id FROM latest)
        ORDER BY d.id FOR NO KEY UPDATE
    ), touch AS (
        UPDATE dashboard d SET last_accessed_at = GREATEST(d.last_accessed_at, latest.at)
        FROM latest WHERE d.id = latest.dashboard_id AND d.id IN (SELECT id FROM locked)
    )
    INSERT INTO dashboard_view (user_id, dashboard_id, viewed_at)
    SELECT v.user_id, v.dashboard_id, v.viewed_at FROM v
    WHERE EXISTS (SELECT FROM locked WHERE locked.id = v.dashboard_id)
      AND EXISTS (SELECT FROM app_user u WHERE u.id = v.user_id)
    ORDER BY v.dashboard_id, v.user_id
    ON CONFLICT (user_id, dashboard_id)
    DO UPDATE SET viewed_at = GREATEST(dashboard_view.viewed_at, excluded.viewed_at)
    """
)


async def record_views(session: AsyncSession, views: Sequence[tuple[int, int, datetime]]) -> None:
    """`(dashboard id, user id, moment)` views: `last_accessed_at` and each caller's `last_viewed_at`."""
    if views:
        dashboard_ids, user_ids, times = (list(column) for column in zip(*views, strict=True))
        await session.execute(
            _RECORD_VIEWS, {"dashboard_ids": dashboard_ids, "user_ids": user_ids, "times": times}
        )


async def theme_visible(session: AsyncSession, team_id: int, theme_id: int) -> bool:
    stmt = select(DataColorTheme.id).where(
        DataColorTheme.id == theme_id,
        or_(DataColorTheme.team_id == team_id, DataColorTheme.team_id.is_(None)),
    )
    return (await session.execute(stmt)).first() is not None


async def get_user_by_uuid(
    session: AsyncSession, user_uuid: object, *, active_only: bool = False
) -> User | None:
    stmt = select(User).where(User.uuid == user_uuid)
    if active_only:
        stmt = stmt.where(User.is_active.is_(True))
    return (await session.execute(stmt)).scalar_one_or_none()


async def list_collaborators(session: AsyncSession, dashboard_id: int) -> list[DashboardPrivilege]:
    stmt = (
        select(DashboardPrivilege)
        # As in PostHog, deactivated users are not listed (they can no longer act on anything).
        .join(DashboardPrivilege.user)
        .where(DashboardPrivilege.dashboard_id == dashboard_id, User.is_active.is_(True))
        .options(selectinload(DashboardPrivilege.user))
        .order_by(DashboardPrivilege.added_at, DashboardPrivilege.id)
    )
    return list((await session.execute(stmt)).scalars().all())


async def get_collaborator(
    session: AsyncSession, dashboard_id: int, user_id: int
) -> DashboardPrivilege | None:
    stmt = select(DashboardPrivilege).where(
        DashboardPrivilege.dashboard_id == dashboard_id, DashboardPrivilege.user_id == user_id
    )
    return (await session.execute(stmt)).scalar_one_or_none()


# --- tiles ------------------------------------------------------------------------------------------------


@dataclass(slots=True)
class TileRecord:
    """A tile's display columns, read as they are (no ORM object)."""

    id: int
    layouts: dict[str, Any] | None
    color: str | None
    filters_overrides: dict[str, Any] | None
    show_description: bool | None
    transparent_background: bool | None


_TILE_COLUMNS = tuple(getattr(DashboardTile, name) for name in TileRecord.__dataclass_fields__)


@dataclass
class InsightTileRow:
    tile: TileRecord
    insight: InsightRow


@dataclass(slots=True)
class TextRecord:
    """A text's columns, read as they are (no ORM object), its users already `UserBasic`."""

    created_by: UserBasic | None
    last_modified_by: UserBasic | None
    id: int
    body: str | None
    last_modified_at: datetime
    team_id: int


_TEXT_COLUMNS = tuple(
    getattr(Text, name) for name in TextRecord.__dataclass_fields__ if not name.endswith("_by")
)


@dataclass
class TextTileRow:
    tile: TileRecord
    text: TextRecord
    # The text's live tiles on live dashboards: {id, dashboard_id, deleted}.
    text_tiles: list[dict[str, Any]]


def _live(tile_deleted: Any) -> Any:
    return func.coalesce(tile_deleted, False).is_(False)


# A dashboard's insight tiles: the insight as the insights resource reads it, plus the tile, as plain
# columns (rendering changes neither). Tiles of deleted insights are hidden (reference §1.2). Built once; the
# dashboard id is a parameter.
_INSIGHT_TILES = (
    INSIGHT_RECORDS.add_columns(*_TILE_COLUMNS)
    .join(DashboardTile, DashboardTile.insight_id == Insight.id)
    .where(
        DashboardTile.dashboard_id == bindparam("dashboard_id", type_=Integer),
        _live(DashboardTile.deleted),
        Insight.deleted.is_(False),
    )
    .order_by(Insight.order.asc().nulls_last(), DashboardTile.id)
)


def _build_text_tiles() -> Select[Any]:
    """A dashboard's text tiles as plain columns: the tile's (`TileRecord`), the text's (`TextRecord`), its
    creator's and last editor's `USER_BASIC_FIELDS`, then the text's live tiles."""
    creator, editor = aliased(User), aliased(User)
    other = aliased(DashboardTile)
    text_tiles = (
        select(
            func.json_agg(
                aggregate_order_by(
                    func.json_build_object(
                        "id", other.id, "dashboard_id", other.dashboard_id, "deleted", False
                    ),
                    other.id,
                )
            )
        )
        .join(Dashboard, Dashboard.id == other.dashboard_id)
        .where(other.text_id == Text.id, _live(other.deleted), Dashboard.deleted.is_(False))
        .correlate(Text)
        .scalar_subquery()
    )
    return (
        select(
            *_TILE_COLUMNS,
            *_TEXT_COLUMNS,
            *(getattr(creator, name) for name in USER_BASIC_FIELDS),
            *(getattr(editor, name) for name in USER_BASIC_FIELDS),
            text_tiles,
        )
        .select_from(DashboardTile)
        .join(Text, Text.id == DashboardTile.text_id)
        .outerjoin(creator, Text.created_by_id == creator.id)
        .outerjoin(editor, Text.last_modified_by_id == editor.id)
        .where(
            DashboardTile.dashboard_id == bindparam("dashboard_id", type_=Integer),
            _live(DashboardTile.deleted),
        )
        .order_by(DashboardTile.id)
    )


_TEXT_TILES = _build_text_tiles()
_TILE_END = len(_TILE_COLUMNS)
_TEXT_END = _TILE_END + len(_TEXT_COLUMNS)
_EDITOR_AT = _TEXT_END + len(USER_BASIC_FIELDS)
_TEXT_ROW_END = _EDITOR_AT + len(USER_BASIC_FIELDS)


def _text_tile_row(values: Sequence[Any]) -> TextTileRow:
    text = TextRecord(
        UserBasic.from_columns(values[_TEXT_END:_EDITOR_AT]),
        UserBasic.from_columns(values[_EDITOR_AT:_TEXT_ROW_END]),
        *values[_TILE_END:_TEXT_END],
    )
    others = values[_TEXT_ROW_END]
    return TextTileRow(tile=TileRecord(*values[:_TILE_END]), text=text, text_tiles=others or [])


async def load_tiles(
    session: AsyncSession, dashboard_id: int
) -> tuple[list[InsightTileRow], list[TextTileRow]]:
    """Every live tile of a dashboard in two statements, whatever their number."""
    params = {"dashboard_id": dashboard_id}
    # Read on the connection (plain rows, none of the ORM's result machinery), which does not autoflush:
    # changes of a write path are flushed first.
    if session.new or session.dirty or session.deleted:
        await session.flush()
    connection = await session.connection()
    users: dict[Any, UserBasic | None] = {}
    insight_rows = [
        InsightTileRow(tile=TileRecord(*row[INSIGHT_RECORD_WIDTH:]), insight=insight_record_row(row, users))
        for row in (await connection.execute(_INSIGHT_TILES, params)).all()
    ]
    text_rows = [_text_tile_row(row) for row in (await connection.execute(_TEXT_TILES, params)).all()]
    return insight_rows, text_rows


# --- tile writes --------------------------------------------------------------------------------------------


async def all_tiles(session: AsyncSession, dashboard_id: int) -> list[DashboardTile]:
    """Every tile of the dashboard, soft-deleted ones included: the rows a `tiles` update may change."""
    stmt = (
        select(DashboardTile)
        .where(DashboardTile.dashboard_id == dashboard_id)
        .order_by(DashboardTile.id)
        .execution_options(populate_existing=True)
    )
    return list((await session.execute(stmt)).scalars().all())


async def texts_by_id(session: AsyncSession, team_id: int, text_ids: Sequence[int]) -> dict[int, Text]:
    if not text_ids:
        return {}
    stmt = select(Text).where(Text.team_id == team_id, Text.id.in_(list(text_ids)))
    return {text.id: text for text in (await session.execute(stmt)).scalars().all()}


async def live_layouts(session: AsyncSession, dashboard_ids: Sequence[int]) -> dict[int, list[Any]]:
    """The layouts of the live tiles of each dashboard, in one statement: what new tiles must not cover."""
    found: dict[int, list[Any]] = {d: [] for d in dashboard_ids}
    if not dashboard_ids:
        return found
    stmt = select(DashboardTile.dashboard_id, DashboardTile.layouts).where(
        DashboardTile.dashboard_id.in_(list(dashboard_ids)), _live(DashboardTile.deleted)
    )
    for dashboard_id, layouts in (await session.execute(stmt)).all():
        found[dashboard_id].append(layouts)
    return found


async def get_live_tile(
    session: AsyncSession, dashboard_id: int, tile_id: int, *, lock: bool = False
) -> DashboardTile | None:
    """The live tile of this dashboard. With `lock`, its row stays locked until the transaction ends; a tile
    moved or removed by a transaction that committed while this one waited for the lock is not found."""
    stmt = select(DashboardTile).where(
        DashboardTile.id == tile_id, DashboardTile.dashboard_id == dashboard_id, _live(DashboardTile.deleted)
    )
    if lock:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    return (await session.execute(stmt)).scalar_one_or_none()


# The first key of the two-key advisory locks that serialise tile placement on a dashboard (the second is
# the dashboard's id). Two-key locks never conflict with the one-key locks of the query cache.
TILE_PLACEMENT_LOCK = 0x74696C65  # "tile"

_LOCK_PLACEMENT = select(
    func.pg_advisory_xact_lock(
        literal(TILE_PLACEMENT_LOCK, Integer),
        func.unnest(cast(bindparam("dashboard_ids"), ARRAY(Integer))).column_valued("dashboard_id"),
    )
)


async def lock_tile_placement(session: AsyncSession, dashboard_ids: Sequence[int]) -> None:
    """Wait until no other transaction places or edits tiles on these dashboards, and keep them until this
    transaction ends. Taken in the order given: callers sort the ids, so two requests never wait for each
    other in a circle."""
    if dashboard_ids:
        await session.execute(_LOCK_PLACEMENT, {"dashboard_ids": list(dashboard_ids)})


async def tiles_with_content(
    session: AsyncSession, dashboard_id: int, insight_id: int | None, text_id: int | None
) -> list[DashboardTile]:
    """The dashboard's tiles (soft-deleted ones included) showing this insight or this text."""
    content = (
        DashboardTile.insight_id == insight_id if insight_id is not None else DashboardTile.text_id == text_id
    )
    stmt = select(DashboardTile).where(DashboardTile.dashboard_id == dashboard_id, content)
    return list((await session.execute(stmt)).scalars().all())


async def hard_delete_tiles(session: AsyncSession, tile_ids: Sequence[int]) -> None:
    if tile_ids:
        await session.execute(
            delete(DashboardTile)
            .where(DashboardTile.id.in_(list(tile_ids)))
            .execution_options(synchronize_session=False)
        )


async def set_tile_dashboard(session: AsyncSession, tile_id: int, dashboard_id: int) -> None:
    await session.execute(
        update(DashboardTile)
        .where(DashboardTile.id == tile_id)
        .values(dashboard_id=dashboard_id)
        .execution_options(synchronize_session=False)
    )


async def set_every_tile_deleted(session: AsyncSession, dashboard_id: int, deleted: bool) -> None:
    """Every tile of the dashboard, soft-deleted ones included (reference §1.2)."""
    await session.execute(
        update(DashboardTile)
        .where(DashboardTile.dashboard_id == dashboard_id)
        .values(deleted=deleted)
        .execution_options(synchronize_session=False)
    )


async def delete_insights_only_on(session: AsyncSession, dashboard_id: int) -> None:
    """Soft-delete the insights whose one live tile on a live dashboard is on this one. Run while the
    dashboard and its tiles are still live."""
    tile, other = aliased(DashboardTile), aliased(DashboardTile)
    on_this = select(tile.insight_id).where(
        tile.dashboard_id == dashboard_id, tile.insight_id.is_not(None), _live(tile.deleted)
    )
    live_elsewhere = (
        exists()
        .where(other.insight_id == Insight.id, other.dashboard_id != dashboard_id, _live(other.deleted))
        .where(Dashboard.id == other.dashboard_id, Dashboard.deleted.is_(False))
    )
    await session.execute(
        update(Insight)
        .where(Insight.id.in_(on_this), ~live_elsewhere, Insight.deleted.is_(False))
        .values(deleted=True)
        .execution_options(synchronize_session=False)
    )


async def undelete_insights_on(session: AsyncSession, dashboard_id: int) -> None:
    """Restore every insight with a tile on this dashboard, whatever that tile's state (PostHog's restore)."""
    on_this = select(DashboardTile.insight_id).where(
        DashboardTile.dashboard_id == dashboard_id, DashboardTile.insight_id.is_not(None)
    )
    await session.execute(
        update(Insight)
        .where(Insight.id.in_(on_this), Insight.deleted.is_(True))
        .values(deleted=False)
        .execution_options(synchronize_session=False)
    )


@dataclass
class SourceTile:
    """A tile to copy, with its content for a deep copy."""

    tile: DashboardTile
    insight: Insight | None
    text: Text | None


async def tiles_to_copy(
    session: AsyncSession, dashboard_id: int, tile_ids: Sequence[int] | None = None
) -> list[SourceTile]:
    """The dashboard's live tiles (those the dashboard shows: not of a deleted insight) with their insight
    or text, in one statement; only `tile_ids` when given."""
    stmt = (
        select(DashboardTile, Insight, Text)
        .outerjoin(Insight, Insight.id == DashboardTile.insight_id)
        .outerjoin(Text, Text.id == DashboardTile.text_id)
        .where(
            DashboardTile.dashboard_id == dashboard_id,
            _live(DashboardTile.deleted),
            or_(Insight.id.is_(None), Insight.deleted.is_(False)),
        )
        .order_by(DashboardTile.id)
    )
    if tile_ids is not None:
        stmt = stmt.where(DashboardTile.id.in_(list(tile_ids)))
    return [SourceTile(tile, insight, text) for tile, insight, text in (await session.execute(stmt)).all()]


async def copy_insight_tags(session: AsyncSession, copies: Sequence[tuple[int, int]]) -> None:
    """Give each copied insight its original's tags: `(original id, copy id)` pairs, one statement. Tags
    belong to the team, and the copies are in the same team, so the tag rows are reused."""
    if not copies:
        return
    pairs = values(column("original_id", Integer), column("copy_id", Integer), name="copies").data(
        list(copies)
    )
    await session.execute(
        insert(TaggedItem)
        .from_select(
            ["tag_id", "insight_id"],
            select(TaggedItem.tag_id, pairs.c.copy_id).join(
                pairs, pairs.c.original_id == TaggedItem.insight_id
            ),
        )
        .on_conflict_do_nothing()
    )


# --- what a dashboard page needs before its stream ----------------------------------------------------------


@dataclass(frozen=True)
class PageFacts:
    """A live dashboard's name, description, data color theme and number of live tiles (as `stream_tiles`
    sends them: text tiles, and insight tiles whose insight is not deleted)."""

    id: int
    name: str | None
    description: str
    colors: list[Any] | None
    tiles: int


def _build_page_facts() -> Select[Any]:
    tile_count = (
        select(func.count())
        .select_from(DashboardTile)
        .outerjoin(Insight, Insight.id == DashboardTile.insight_id)
        .where(
            DashboardTile.dashboard_id == Dashboard.id,
            _live(DashboardTile.deleted),
            or_(DashboardTile.text_id.is_not(None), Insight.deleted.is_(False)),
        )
        .correlate(Dashboard)
        .scalar_subquery()
    )
    return (
        select(Dashboard.id, Dashboard.name, Dashboard.description, DataColorTheme.colors, tile_count)
        .outerjoin(DataColorTheme, DataColorTheme.id == Dashboard.data_color_theme_id)
        .where(
            Dashboard.id == bindparam("dashboard_id", type_=Integer),
            Dashboard.team_id == bindparam("team_id", type_=Integer),
            Dashboard.deleted.is_(False),
        )
    )


_PAGE_FACTS = _build_page_facts()


async def page_facts(session: AsyncSession, team_id: int, dashboard_id: int) -> PageFacts | None:
    """One statement; None when the team has no such live dashboard."""
    params = {"team_id": team_id, "dashboard_id": dashboard_id}
    row = (await (await session.connection()).execute(_PAGE_FACTS, params)).first()
    if row is None:
        return None
    return PageFacts(id=row[0], name=row[1], description=row[2] or "", colors=row[3], tiles=int(row[4]))


async def lock_team(session: AsyncSession, team_id: int) -> None:
    """Hold the team's row until the transaction ends: requests that must not run at once for one team
    (`create_unlisted_dashboard`) queue here, whichever worker serves them."""
    await session.execute(select(Team.id).where(Team.id == team_id).with_for_update())


async def unlisted_dashboard_exists(session: AsyncSession, team_id: int, tag: str) -> bool:
    """Whether the team has a live unlisted dashboard tagged `tag`."""
    query = (
        select(Dashboard.id)
        .join(TaggedItem, TaggedItem.dashboard_id == Dashboard.id)
        .join(Tag, Tag.id == TaggedItem.tag_id)
        .where(
            Dashboard.team_id == team_id,
            Dashboard.creation_mode == "unlisted",
            Dashboard.deleted.is_(False),
            Tag.name == tag,
        )
        .limit(1)
    )
    return (await session.execute(query)).first() is not None
