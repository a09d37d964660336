"""Definitions use cases: parsing PostHog's query parameters, and shaping pages. Rows are written by capture
(`app.ingestion.definitions`); nothing here changes them."""

import json
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.dependencies import TeamAccess
from app.definitions import repository
from app.definitions.schemas import EventDefinition, PropertyDefinition
from app.errors import NotFound, ValidationFailed
from app.models import PROPERTY_EVENT, PROPERTY_PERSON
from app.models import EventDefinition as EventDefinitionRow
from app.models import PropertyDefinition as PropertyDefinitionRow
from app.pagination import Page
from app.schemas import Paginated
from app.validation import MAX_LIST_ITEMS

EVENT_ORDERINGS = frozenset({"name", "last_seen_at", "last_seen_at::date"})
DEFAULT_EVENT_ORDERING = (("last_seen_at::date", True), ("name", False))
# `event_type`: `all` and `action_event` would add actions, which Tilecast does not have.
EVENT_TYPES = {"event": None, "all": None, "action_event": None, "event_posthog": True, "event_custom": False}
# Event properties that ingestion records but PostHog never lists (they update persons, or are not
# properties users filter on).
HIDDEN_EVENT_PROPERTIES = frozenset(
    {
        "distinct_id",
        "$set",
        "$set_once",
        "$initial_referrer",
        "$initial_referring_domain",
        "$groups",
        "$group_type",
        "$group_key",
        "$group_set",
        *(f"$group_{i}" for i in range(5)),
    }
)
GROUP_TYPES_LIMIT = 5


def json_names(attr: str, raw: str | None) -> list[str] | None:
    """A JSON-encoded list of strings given as a query parameter (400 naming it otherwise)."""
    if raw is None:
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        raise ValidationFailed("Must be a JSON-encoded list of strings.", attr=attr) from None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValidationFailed("Must be a JSON-encoded list of strings.", attr=attr)
    if len(value) > MAX_LIST_ITEMS:
        raise ValidationFailed(f"Ensure this list has no more than {MAX_LIST_ITEMS} items.", attr=attr)
    return value


def _ordering(raw: Sequence[str]) -> list[tuple[str, bool]]:
    ordering = []
    for item in raw:
        column = item.removeprefix("-")
        if column not in EVENT_ORDERINGS:
            allowed = ", ".join(sorted(EVENT_ORDERINGS))
            detail = f"Unknown ordering '{item}': use {allowed}, or '-' before one."
            raise ValidationFailed(detail, attr="ordering")
        ordering.append((column, item.startswith("-")))
    return ordering or list(DEFAULT_EVENT_ORDERING)


def _event_schema(row: EventDefinitionRow, volumes: dict[str, int]) -> EventDefinition:
    return EventDefinition(
        id=row.id,
        name=row.name,
        created_at=row.created_at,
        last_seen_at=row.last_seen_at,
        volume_30_day=volumes.get(row.name, 0),
    )


async def list_event_definitions(
    session: AsyncSession,
    access: TeamAccess,
    page: Page,
    now: datetime,
    *,
    search: str,
    ordering: Sequence[str],
    excluded_properties: str | None,
    event_type: str,
) -> Paginated[EventDefinition]:
    if event_type not in EVENT_TYPES:
        detail = f'"{event_type}" is not a valid choice.'
        raise ValidationFailed(detail, attr="event_type", code="invalid_choice")
    f = repository.EventFilter(
        search=search,
        excluded=json_names("excluded_properties", excluded_properties) or [],
        posthog_events=EVENT_TYPES[event_type],
        ordering=_ordering(ordering),
    )
    rows, count = await repository.list_event_definitions(session, access.team.id, f, page.limit, page.offset)
    volumes = await repository.volumes_30_day(session, access.team.id, [r.name for r in rows], now)
    nxt, prev = page.links(count)
    return Paginated[EventDefinition](
        count=count, next=nxt, previous=prev, results=[_event_schema(r, volumes) for r in rows]
    )


def _uuid(raw: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise NotFound() from None


async def retrieve_event_definition(
    session: AsyncSession, access: TeamAccess, id_: str, now: datetime
) -> EventDefinition:
    row = await repository.get_event_definition(session, access.team.id, _uuid(id_))
    if row is None:
        raise NotFound()
    volumes = await repository.volumes_30_day(session, access.team.id, [row.name], now)
    return _event_schema(row, volumes)


PropertyType = Literal["event", "person", "group", "session"]


def _property_schema(row: PropertyDefinitionRow, seen: bool | None) -> PropertyDefinition:
    return PropertyDefinition(
        id=row.id,
        name=row.name,
        is_numerical=row.is_numerical,
        property_type=row.property_type,
        is_seen_on_filtered_events=seen,
    )


async def list_property_definitions(
    session: AsyncSession,
    access: TeamAccess,
    page: Page,
    *,
    type_: PropertyType,
    group_type_index: int | None,
    search: str,
    properties: str | None,
    is_numerical: bool | None,
    is_feature_flag: bool | None,
    event_names: str | None,
    filter_by_event_names: bool | None,
    excluded_properties: str | None,
) -> Paginated[PropertyDefinition]:
    # PostHog's checks, in its order and words.
    if type_ == "group" and group_type_index is None:
        raise ValidationFailed("`group_type_index` must be set for `group` type")
    if type_ != "group" and group_type_index is not None:
        raise ValidationFailed("`group_type_index` can only set for `group` type")
    if group_type_index is not None and not 0 <= group_type_index < GROUP_TYPES_LIMIT:
        raise ValidationFailed("Invalid value for `group_type_index`")
    names = json_names("event_names", event_names)
    if type_ != "event" and names:
        raise ValidationFailed("`event_names` can only be set for `event` type")
    excluded = json_names("excluded_properties", excluded_properties) or []
    wanted = None if not properties else [p for p in properties.split(",") if p]
    if wanted is not None and len(wanted) > MAX_LIST_ITEMS:
        raise ValidationFailed(
            f"Ensure this list has no more than {MAX_LIST_ITEMS} items.", attr="properties"
        )
    if type_ not in ("event", "person"):
        # Groups and sessions are not recorded by Tilecast: there is nothing to list.
        nxt, prev = page.links(0)
        return Paginated[PropertyDefinition](count=0, next=nxt, previous=prev, results=[])
    if type_ == "event":
        excluded = [*excluded, *sorted(HIDDEN_EVENT_PROPERTIES)]
    f = repository.PropertyFilter(
        kind=PROPERTY_EVENT if type_ == "event" else PROPERTY_PERSON,
        search=search,
        excluded=excluded,
        names=wanted,
        # As PostHog: `is_numerical=false` filters nothing.
        numerical_only=bool(is_numerical),
        feature_flags=is_feature_flag,
        event_names=names or None,
        only_seen_on_events=bool(filter_by_event_names) and bool(names),
    )
    rows, count = await repository.list_property_definitions(
        session, access.team.id, f, page.limit, page.offset
    )
    nxt, prev = page.links(count)
    return Paginated[PropertyDefinition](
        count=count, next=nxt, previous=prev, results=[_property_schema(r, s) for r, s in rows]
    )


async def retrieve_property_definition(
    session: AsyncSession, access: TeamAccess, id_: str
) -> PropertyDefinition:
    row = await repository.get_property_definition(session, access.team.id, _uuid(id_))
    if row is None:
        raise NotFound()
    return _property_schema(row, None)
