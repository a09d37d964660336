"""Event and property definitions endpoints (read-only): thin handlers over `app.definitions.service`."""

from typing import Annotated

from fastapi import APIRouter, Path, Query

from app.auth.dependencies import TeamAccess, scoped
from app.clock import NowDep
from app.db import SessionDep
from app.definitions import service
from app.definitions.schemas import EventDefinition, PropertyDefinition
from app.pagination import PageDep
from app.schemas import Paginated
from app.validation import SafeStr

router = APIRouter(tags=["definitions"])

EventDefinitionRead = Annotated[TeamAccess, scoped("event_definition:read")]
PropertyDefinitionRead = Annotated[TeamAccess, scoped("property_definition:read")]
DefinitionId = Annotated[str, Path(description="A UUID string identifying this definition.")]
Search = Annotated[
    SafeStr, Query(max_length=400, description="Terms that must all be in the name (any case).")
]
Excluded = Annotated[
    str | None, Query(max_length=100_000, description="JSON-encoded list of names to leave out.")
]


@router.get("/event_definitions/", name="event_definitions_list")
async def list_event_definitions(
    session: SessionDep,
    access: EventDefinitionRead,
    page: PageDep,
    now: NowDep,
    search: Search = "",
    ordering: Annotated[
        list[str] | None,
        Query(description="`name`, `last_seen_at` or `last_seen_at::date`, `-` for descending; repeatable."),
    ] = None,
    excluded_properties: Excluded = None,
    event_type: Annotated[
        str, Query(description="`event` (default, same as `all`), `event_custom` or `event_posthog` (`$…`).")
    ] = "event",
) -> Paginated[EventDefinition]:
    """List the event names the team has sent, most recently seen day first, then by name."""
    return await service.list_event_definitions(
        session,
        access,
        page,
        now,
        search=search,
        ordering=ordering or [],
        excluded_properties=excluded_properties,
        event_type=event_type,
    )


@router.get("/event_definitions/{id}/", name="event_definitions_retrieve")
async def retrieve_event_definition(
    id: DefinitionId, session: SessionDep, access: EventDefinitionRead, now: NowDep
) -> EventDefinition:
    """Retrieve one event definition."""
    return await service.retrieve_event_definition(session, access, id, now)


@router.get("/property_definitions/", name="property_definitions_list")
async def list_property_definitions(
    session: SessionDep,
    access: PropertyDefinitionRead,
    page: PageDep,
    type: Annotated[
        service.PropertyType, Query(description="What property definitions to return: `event` or `person`.")
    ] = "event",
    group_type_index: Annotated[int | None, Query(description="Only with `type=group`.")] = None,
    search: Search = "",
    properties: Annotated[
        str | None, Query(max_length=100_000, description="Comma-separated list of names to return.")
    ] = None,
    is_numerical: Annotated[
        bool | None, Query(description="`true`: numerical properties only (`false` filters nothing).")
    ] = None,
    is_feature_flag: Annotated[
        bool | None, Query(description="`true`: `$feature/…` properties only; `false`: all but those.")
    ] = None,
    event_names: Annotated[
        str | None,
        Query(
            max_length=100_000,
            description="JSON-encoded list of event names: fills `is_seen_on_filtered_events` and lists "
            "the properties seen on them first.",
        ),
    ] = None,
    filter_by_event_names: Annotated[
        bool | None, Query(description="`true`: only the properties seen on `event_names`.")
    ] = None,
    excluded_properties: Excluded = None,
) -> Paginated[PropertyDefinition]:
    """List the property keys the team has sent on events (`type=event`) or set on persons (`type=person`)."""
    return await service.list_property_definitions(
        session,
        access,
        page,
        type_=type,
        group_type_index=group_type_index,
        search=search,
        properties=properties,
        is_numerical=is_numerical,
        is_feature_flag=is_feature_flag,
        event_names=event_names,
        filter_by_event_names=filter_by_event_names,
        excluded_properties=excluded_properties,
    )


@router.get("/property_definitions/{id}/", name="property_definitions_retrieve")
async def retrieve_property_definition(
    id: DefinitionId, session: SessionDep, access: PropertyDefinitionRead
) -> PropertyDefinition:
    """Retrieve one property definition."""
    return await service.retrieve_property_definition(session, access, id)
