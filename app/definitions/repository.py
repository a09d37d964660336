"""Every query of the definitions resources. Each one is scoped to the caller's team."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import ColumnElement, String, and_, cast, exists, false, func, literal, not_, select, true
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import Event, EventDefinition, EventProperty, PropertyDefinition

VOLUME_DAYS = 30
# Names sort by their bytes, whatever the database's collation: the same order on every server.
BYTE_ORDER = "C"


def _escape_like(term: str) -> str:
    return term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def name_search(column: Any, search: str) -> ColumnElement[bool]:
    """PostHog's term search: every whitespace-separated term of `search` is in the name, in any case."""
    terms = search.split()
    return and_(true(), *(column.ilike(f"%{_escape_like(t)}%", escape="\\") for t in terms))


@dataclass(frozen=True)
class EventFilter:
    search: str
    excluded: Sequence[str]
    # None: every event; True: PostHog's own (`$…`) only; False: custom events only.
    posthog_events: bool | None
    # (column name, descending), applied before `name` ascending.
    ordering: Sequence[tuple[str, bool]]


def _event_conditions(team_id: int, f: EventFilter) -> list[ColumnElement[bool]]:
    conditions = [EventDefinition.team_id == team_id, name_search(EventDefinition.name, f.search)]
    if f.excluded:
        conditions.append(EventDefinition.name.not_in(list(f.excluded)))
    if f.posthog_events is not None:
        posthog = EventDefinition.name.startswith("$", autoescape=True)
        conditions.append(posthog if f.posthog_events else not_(posthog))
    return conditions


def _event_order(column: str, descending: bool) -> Any:
    expression: Any = EventDefinition.name.collate(BYTE_ORDER)
    if column == "last_seen_at":
        expression = EventDefinition.last_seen_at
    elif column == "last_seen_at::date":
        expression = func.date(func.timezone("UTC", EventDefinition.last_seen_at))
    # PostHog: nulls first when ascending, last when descending.
    return expression.desc().nulls_last() if descending else expression.asc().nulls_first()


async def list_event_definitions(
    session: AsyncSession, team_id: int, f: EventFilter, limit: int, offset: int
) -> tuple[list[EventDefinition], int]:
    conditions = _event_conditions(team_id, f)
    count = (
        await session.execute(select(func.count()).select_from(EventDefinition).where(*conditions))
    ).scalar_one()
    stmt = (
        select(EventDefinition)
        .where(*conditions)
        .order_by(
            *(_event_order(c, d) for c, d in f.ordering), EventDefinition.name.collate(BYTE_ORDER).asc()
        )
        .limit(limit)
        .offset(offset)
    )
    return list((await session.execute(stmt)).scalars().all()), count


async def get_event_definition(session: AsyncSession, team_id: int, id_: UUID) -> EventDefinition | None:
    stmt = select(EventDefinition).where(EventDefinition.team_id == team_id, EventDefinition.id == id_)
    return (await session.execute(stmt)).scalar_one_or_none()


async def volumes_30_day(
    session: AsyncSession, team_id: int, names: Sequence[str], now: datetime
) -> dict[str, int]:
    """Events per name with a timestamp in the 30 days before `now`, for one page of names: one count per
    name, each a range read of the events index on (team_id, event, timestamp) (an index-only scan once the
    table is vacuumed), rather than one pass over all the team's events."""
    if not names:
        return {}
    page = func.unnest(cast(list(names), ARRAY(String))).table_valued("name").render_derived()
    count = (
        select(func.count())
        .where(
            Event.team_id == team_id,
            Event.event == page.c.name,
            Event.timestamp >= now - timedelta(days=VOLUME_DAYS),
            Event.timestamp <= now,
        )
        .scalar_subquery()
    )
    rows = (await session.execute(select(page.c.name, count))).all()
    return {name: int(n) for name, n in rows}


@dataclass(frozen=True)
class PropertyFilter:
    kind: int
    search: str
    excluded: Sequence[str]
    names: Sequence[str] | None  # `properties`: only these names
    numerical_only: bool
    # `is_feature_flag`: None every property; True `$feature/…` only; False all but those.
    feature_flags: bool | None
    event_names: Sequence[str] | None
    only_seen_on_events: bool


# PostHog's `is_numerical=true` leaves these out: numbers, but not measures.
NOT_MEASURES = ("distinct_id", "timestamp")


async def list_property_definitions(
    session: AsyncSession, team_id: int, f: PropertyFilter, limit: int, offset: int
) -> tuple[list[tuple[PropertyDefinition, bool | None]], int]:
    """A page of definitions, each with whether it was seen on one of `f.event_names` (None without)."""
    conditions: list[ColumnElement[bool]] = [
        PropertyDefinition.team_id == team_id,
        PropertyDefinition.type == f.kind,
        name_search(PropertyDefinition.name, f.search),
    ]
    if f.excluded:
        conditions.append(PropertyDefinition.name.not_in(list(f.excluded)))
    if f.names is not None:
        conditions.append(PropertyDefinition.name.in_(list(f.names)) if f.names else false())
    if f.numerical_only:
        conditions.append(PropertyDefinition.is_numerical.is_(True))
        conditions.append(PropertyDefinition.name.not_in(NOT_MEASURES))
    if f.feature_flags is not None:
        flag = PropertyDefinition.name.startswith("$feature/", autoescape=True)
        conditions.append(flag if f.feature_flags else not_(flag))
    seen: ColumnElement[Any] = literal(None)
    if f.event_names is not None:
        seen = exists().where(
            EventProperty.team_id == team_id,
            EventProperty.event.in_(list(f.event_names)),
            EventProperty.property == PropertyDefinition.name,
        )
        if f.only_seen_on_events:
            conditions.append(seen)
    count = (
        await session.execute(select(func.count()).select_from(PropertyDefinition).where(*conditions))
    ).scalar_one()
    seen_column = seen.label("is_seen_on_filtered_events")
    order: list[Any] = [] if f.event_names is None else [seen_column.desc()]
    stmt = (
        select(PropertyDefinition, seen_column)
        .where(*conditions)
        .order_by(*order, PropertyDefinition.name.collate(BYTE_ORDER).asc())
        .limit(limit)
        .offset(offset)
    )
    rows = (await session.execute(stmt)).all()
    return [(row[0], row[1]) for row in rows], count


async def get_property_definition(
    session: AsyncSession, team_id: int, id_: UUID
) -> PropertyDefinition | None:
    stmt = select(PropertyDefinition).where(
        PropertyDefinition.team_id == team_id, PropertyDefinition.id == id_
    )
    return (await session.execute(stmt)).scalar_one_or_none()
