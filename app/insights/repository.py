"""Every query of the insights resource, tiles included."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Integer, Row, ScalarSelect, Select, bindparam, func, or_, select, type_coerce, update
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased, contains_eager
from sqlalchemy.types import NullType

from app.models import Dashboard, DashboardTile, Insight, TaggedItem, User
from app.schemas import USER_BASIC_FIELDS, UserBasic
from app.tags import tag_names

EVERYONE_CAN_EDIT = 21  # PostHog's lowest restriction level


@dataclass(slots=True)
class InsightRecord:
    """An insight read as plain columns (read paths that change nothing): what its serializer needs, the
    users already as `UserBasic`."""

    created_by: UserBasic | None
    last_modified_by: UserBasic | None
    id: int
    short_id: str
    name: str | None
    derived_name: str | None
    description: str | None
    query: dict[str, Any] | None
    filters: dict[str, Any]
    order: int | None
    deleted: bool
    saved: bool
    favorited: bool
    is_sample: bool
    created_at: datetime
    last_modified_at: datetime
    updated_at: datetime


# The insight's own columns in `InsightRecord`'s order (its two users follow, then tags, tiles, restriction).
INSIGHT_RECORD_COLUMNS = tuple(
    getattr(Insight, name) for name in InsightRecord.__dataclass_fields__ if not name.endswith("_by")
)


@dataclass
class InsightRow:
    # The ORM object where the insight may be changed; its plain columns on read paths.
    insight: Insight | InsightRecord
    tags: list[str]
    # Live tiles on live dashboards: {id, dashboard_id, deleted}.
    tiles: list[dict[str, Any]]
    # The highest restriction level of those dashboards (21 when on none), and whether the caller may edit
    # every one of them that is restricted (set by the service: it depends on the caller).
    restriction_level: int = EVERYONE_CAN_EDIT
    can_edit: bool = True


@dataclass(frozen=True)
class ListFilters:
    short_id: str | None = None
    created_by: int | None = None
    saved: bool | None = None
    favorited: bool | None = None
    search: str | None = None


def _over_live_tiles(column: Any) -> ScalarSelect[Any]:
    """`column` aggregated over the insight's live tiles on live dashboards (NULL when none)."""
    return (
        select(column)
        .select_from(DashboardTile)
        .join(Dashboard, Dashboard.id == DashboardTile.dashboard_id)
        .where(
            DashboardTile.insight_id == Insight.id,
            func.coalesce(DashboardTile.deleted, False).is_(False),
            Dashboard.deleted.is_(False),
        )
        .correlate(Insight)
        .scalar_subquery()
    )


def _tiles_column() -> ScalarSelect[Any]:
    """The insight's live tiles on live dashboards, as a JSON array column."""
    tile = func.json_build_object(
        "id", DashboardTile.id, "dashboard_id", DashboardTile.dashboard_id, "deleted", False
    )
    return _over_live_tiles(func.json_agg(aggregate_order_by(tile, DashboardTile.id)))


def _restriction_column() -> ScalarSelect[Any]:
    """The highest restriction level of the live dashboards the insight is live on."""
    return _over_live_tiles(func.max(Dashboard.restriction_level))


# Built once (see app/dashboards/repository.py): the insight, its creator and last editor, tags, tiles and
# the highest restriction of their dashboards.
def _build_rows_select() -> Select[Insight, list[str], Any, int]:
    creator, editor = aliased(User), aliased(User)
    return (
        select(
            Insight,
            tag_names(TaggedItem.insight_id, Insight.id).correlate(Insight),
            _tiles_column(),
            _restriction_column(),
        )
        .outerjoin(creator, Insight.created_by_id == creator.id)
        .outerjoin(editor, Insight.last_modified_by_id == editor.id)
        .options(
            contains_eager(Insight.created_by.of_type(creator)),
            contains_eager(Insight.last_modified_by.of_type(editor)),
        )
    )


INSIGHT_ROWS = _build_rows_select()


def _build_record_select() -> Select[Any]:
    """`INSIGHT_ROWS` as plain columns: the insight's (`INSIGHT_RECORD_COLUMNS`), its creator's and last
    editor's (`USER_BASIC_FIELDS` each), tags, tiles and restriction. No ORM object is made of them."""
    creator, editor = aliased(User), aliased(User)
    return (
        select(
            *INSIGHT_RECORD_COLUMNS,
            *(getattr(creator, name) for name in USER_BASIC_FIELDS),
            *(getattr(editor, name) for name in USER_BASIC_FIELDS),
            # asyncpg returns the array as a list already: no per-row processing by the ARRAY type.
            type_coerce(tag_names(TaggedItem.insight_id, Insight.id).correlate(Insight), NullType()),
            _tiles_column(),
            _restriction_column(),
        )
        .select_from(Insight)
        .outerjoin(creator, Insight.created_by_id == creator.id)
        .outerjoin(editor, Insight.last_modified_by_id == editor.id)
    )


INSIGHT_RECORDS = _build_record_select()
# Where each part of an `INSIGHT_RECORDS` row begins.
_OWN = len(INSIGHT_RECORD_COLUMNS)
_USER = len(USER_BASIC_FIELDS)
INSIGHT_RECORD_WIDTH = _OWN + 2 * _USER + 3


def _user(values: Sequence[Any], users: dict[Any, UserBasic | None] | None) -> UserBasic | None:
    if users is None:
        return UserBasic.from_columns(values)
    # Rows of one statement: the same id is the same user. One model each, shared by the rows (read-only).
    user_id = values[0]
    if user_id not in users:
        users[user_id] = UserBasic.from_columns(values)
    return users[user_id]


def insight_record_row(values: Sequence[Any], users: dict[Any, UserBasic | None] | None = None) -> InsightRow:
    """The `InsightRow` of the first `INSIGHT_RECORD_WIDTH` values of an `INSIGHT_RECORDS` row. `users`: the
    creators and editors already made for other rows of the same statement (a dashboard's insights are
    mostly made by the same few people)."""
    creator_at, editor_at, rest_at = _OWN, _OWN + _USER, _OWN + 2 * _USER
    record = InsightRecord(
        _user(values[creator_at:editor_at], users),
        _user(values[editor_at:rest_at], users),
        *values[:_OWN],
    )
    tags, tiles, restriction = values[rest_at : rest_at + 3]
    return insight_row(record, tags, tiles, restriction)


_ROWS = INSIGHT_ROWS
_ONE = _ROWS.where(
    Insight.team_id == bindparam("team_id", type_=Integer),
    Insight.id == bindparam("insight_id", type_=Integer),
).execution_options(populate_existing=True)
_ONE_LIVE = _ONE.where(Insight.deleted.is_(False))


def insight_row(
    insight: Insight | InsightRecord,
    tags: list[str] | None,
    tiles: list[dict[str, Any]] | None,
    restriction: int | None,
) -> InsightRow:
    return InsightRow(
        insight=insight,
        tags=tags or [],
        tiles=tiles or [],
        restriction_level=restriction or EVERYONE_CAN_EDIT,
    )


def _rows(result: Sequence[Row[Insight, list[str] | None, Any, int | None]]) -> list[InsightRow]:
    return [insight_row(i, tags, tiles, restriction) for i, tags, tiles, restriction in result]


async def list_insights(
    session: AsyncSession, team_id: int, filters: ListFilters, limit: int, offset: int
) -> tuple[list[InsightRow], int]:
    conditions = [Insight.team_id == team_id, Insight.deleted.is_(False)]
    if filters.short_id is not None:
        conditions.append(Insight.short_id == filters.short_id)
    if filters.created_by is not None:
        conditions.append(Insight.created_by_id == filters.created_by)
    if filters.saved is not None:
        conditions.append(Insight.saved.is_(filters.saved))
    if filters.favorited is not None:
        conditions.append(Insight.favorited.is_(filters.favorited))
    if filters.search:
        pattern = "%" + filters.search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        conditions.append(
            or_(
                Insight.name.ilike(pattern),
                Insight.derived_name.ilike(pattern),
                Insight.description.ilike(pattern),
            )
        )
    count = (await session.execute(select(func.count()).select_from(Insight).where(*conditions))).scalar_one()
    stmt = _ROWS.where(*conditions).order_by(Insight.last_modified_at.desc(), Insight.id.desc())
    return _rows((await session.execute(stmt.limit(limit).offset(offset))).all()), count


async def get_insight(
    session: AsyncSession, team_id: int, insight_id: int, *, include_deleted: bool = False
) -> InsightRow | None:
    stmt = _ONE if include_deleted else _ONE_LIVE
    rows = _rows((await session.execute(stmt, {"team_id": team_id, "insight_id": insight_id})).all())
    return rows[0] if rows else None


async def short_id_taken(session: AsyncSession, team_id: int, short_id: str) -> bool:
    stmt = select(Insight.id).where(Insight.team_id == team_id, Insight.short_id == short_id)
    return (await session.execute(stmt)).first() is not None


async def tiles_of(session: AsyncSession, insight_id: int) -> list[DashboardTile]:
    """Every tile of the insight, deleted ones included (they are revived rather than duplicated)."""
    stmt = select(DashboardTile).where(DashboardTile.insight_id == insight_id)
    return list((await session.execute(stmt)).scalars().all())


async def set_tiles_deleted(session: AsyncSession, tile_ids: Sequence[int], deleted: bool) -> None:
    if tile_ids:
        await session.execute(
            update(DashboardTile).where(DashboardTile.id.in_(list(tile_ids))).values(deleted=deleted)
        )
