"""Dashboards endpoints: thin handlers over `app.dashboards.service`."""

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Body, Depends, Query, Request, Response, status

from app.auth.dependencies import GrantTarget, TeamAccess, carries_grant, scoped
from app.clock import NowDep
from app.dashboards import service, snapshots
from app.dashboards.from_template import TemplateJsonCreate, UnlistedCreate
from app.dashboards.repository import ListFilters
from app.dashboards.responses import dashboard_response, list_response
from app.dashboards.schemas import (
    Collaborator,
    CollaboratorCreate,
    CreationMode,
    Dashboard,
    DashboardBasic,
    DashboardUpdate,
    DashboardWrite,
    MoveTile,
)
from app.dashboards.snapshot_schemas import (
    AnalyzeRequest,
    RefreshAnalysis,
    SnapshotCreated,
    SnapshotRequest,
)
from app.dashboards.views import ViewsDep
from app.db import SessionDep
from app.insights.router import REFRESH_DESCRIPTION
from app.pagination import PageDep
from app.query.pool import RenderPoolDep
from app.query.render import parse_refresh
from app.rendering import FormatDep, add_hard_delete_refusal
from app.schemas import Paginated
from app.validation import PathId, SafeStr, TagList

router = APIRouter(prefix="/dashboards", tags=["dashboards"])

DashboardRead = Annotated[TeamAccess, scoped("dashboard:read")]
DashboardWriteAccess = Annotated[TeamAccess, scoped("dashboard:write")]
# A key with `dashboard:read`, or a sharing grant of this very dashboard (the route's `id`): retrieve and
# `stream_tiles`.
DashboardReadOrShared = Annotated[TeamAccess, scoped("dashboard:read", grants=GrantTarget.DASHBOARD)]


async def get_overrides(
    request: Request,
    filters_override: Annotated[
        str | None, Query(description="JSON object merged over the dashboard's stored filters.")
    ] = None,
    variables_override: Annotated[
        str | None, Query(description="JSON object merged over the dashboard's stored variables.")
    ] = None,
) -> service.Overrides:
    if carries_grant(request):
        return service.NO_OVERRIDES  # ignored in shared context, even when malformed
    return service.Overrides(
        filters=service.parse_override("filters_override", filters_override),
        variables=service.parse_override("variables_override", variables_override),
    )


OverridesDep = Annotated[service.Overrides, Depends(get_overrides)]

# Every field is optional and PostHog does not require a body on create or update: no body means `{}`.
CreateBody = Annotated[DashboardWrite, Body(default_factory=DashboardWrite)]
UpdateBody = Annotated[DashboardUpdate, Body(default_factory=DashboardUpdate)]


async def get_list_filters(
    tags: Annotated[TagList | None, Query(description="Dashboards with any of these tags.")] = None,
    creation_mode: Annotated[
        CreationMode | None,
        Query(description="Exact creation mode; unlisted dashboards show only when asked."),
    ] = None,
    search: Annotated[
        SafeStr | None, Query(description="Case-insensitive match on name or description.")
    ] = None,
) -> ListFilters:
    return ListFilters(
        tags=tuple(t.strip().lower() for t in tags or () if t.strip()),
        creation_mode=creation_mode,
        search=search,
    )


@router.get("/", name="dashboards_list", response_model=Paginated[DashboardBasic])
async def list_dashboards(
    session: SessionDep,
    access: DashboardRead,
    page: PageDep,
    fmt: FormatDep,
    filters: Annotated[ListFilters, Depends(get_list_filters)],
    views: ViewsDep,
) -> Response:
    """List the team's dashboards, pinned first, then by name."""
    return list_response(fmt, await service.list_dashboards(session, access, page, filters, views))


@router.post("/", name="dashboards_create", response_model=Dashboard, status_code=status.HTTP_201_CREATED)
async def create_dashboard(
    session: SessionDep,
    access: DashboardWriteAccess,
    fmt: FormatDep,
    overrides: OverridesDep,
    data: CreateBody,
) -> Response:
    """Create a dashboard, optionally duplicating another with `use_dashboard`."""
    created = await service.create_dashboard(session, access, data, overrides)
    return dashboard_response(fmt, created, status.HTTP_201_CREATED)


@router.post(
    "/create_from_template_json/",
    name="dashboards_create_from_template_json_create",
    response_model=Dashboard,
    status_code=status.HTTP_200_OK,
)
async def create_from_template_json(
    session: SessionDep, access: DashboardWriteAccess, fmt: FormatDep, data: TemplateJsonCreate
) -> Response:
    """Create a dashboard from a template's JSON (checked against `dashboard_templates/json_schema/`); needs
    `insight:write` too."""
    return dashboard_response(fmt, await service.create_from_template_json(session, access, data))


@router.post(
    "/create_unlisted_dashboard/",
    name="dashboards_create_unlisted_dashboard_create",
    response_model=Dashboard,
    status_code=status.HTTP_201_CREATED,
)
async def create_unlisted_dashboard(
    session: SessionDep,
    access: DashboardWriteAccess,
    fmt: FormatDep,
    data: Annotated[UnlistedCreate, Body(default_factory=UnlistedCreate)],
) -> Response:
    """Creates an unlisted dashboard from template by tag. Enforces uniqueness (one per tag per team).
    Returns 409 if unlisted dashboard with this tag already exists."""
    created = await service.create_unlisted_dashboard(session, access, data)
    return dashboard_response(fmt, created, status.HTTP_201_CREATED)


@router.get("/{id}/", name="dashboards_retrieve", response_model=Dashboard)
async def retrieve_dashboard(
    id: PathId,
    session: SessionDep,
    access: DashboardReadOrShared,
    fmt: FormatDep,
    overrides: OverridesDep,
    views: ViewsDep,
    pool: RenderPoolDep,
    refresh: Annotated[str | None, Query(description=REFRESH_DESCRIPTION)] = None,
    layout_size: Annotated[
        Literal["sm", "xs"], Query(description="The layout whose positions order the tiles.")
    ] = "sm",
) -> Response:
    """Retrieve a dashboard with its tiles; records the access and the caller's view. Also open to a sharing
    grant of this dashboard (`sharing_access_token`)."""
    mode = parse_refresh(refresh)
    dashboard = await service.retrieve_dashboard(
        session, access, id, overrides, views, pool, mode, layout_size
    )
    return dashboard_response(fmt, dashboard)


@router.patch("/{id}/", name="dashboards_partial_update", response_model=Dashboard)
async def partial_update_dashboard(
    id: PathId,
    session: SessionDep,
    access: DashboardWriteAccess,
    fmt: FormatDep,
    overrides: OverridesDep,
    data: UpdateBody,
) -> Response:
    """Update some fields; `{"deleted": true}` soft-deletes the dashboard, `{"deleted": false}` restores."""
    return dashboard_response(fmt, await service.update_dashboard(session, access, id, data, overrides))


@router.put("/{id}/", name="dashboards_update", response_model=Dashboard)
async def update_dashboard(
    id: PathId,
    session: SessionDep,
    access: DashboardWriteAccess,
    fmt: FormatDep,
    overrides: OverridesDep,
    data: UpdateBody,
) -> Response:
    """Update a dashboard (fields left out keep their values, as in PostHog)."""
    return dashboard_response(fmt, await service.update_dashboard(session, access, id, data, overrides))


add_hard_delete_refusal(router, "dashboards_destroy", "dashboard:write")


@router.patch("/{id}/move_tile/", name="dashboards_move_tile_partial_update", response_model=Dashboard)
async def move_tile(
    id: PathId,
    session: SessionDep,
    access: DashboardWriteAccess,
    fmt: FormatDep,
    overrides: OverridesDep,
    data: MoveTile,
) -> Response:
    """Move a tile to another dashboard; answers with this (the source) dashboard."""
    return dashboard_response(fmt, await service.move_tile(session, access, id, data, overrides))


@router.get("/{dashboard_id}/collaborators/", name="dashboards_collaborators_list")
async def list_collaborators(
    dashboard_id: PathId, session: SessionDep, access: DashboardRead
) -> list[Collaborator]:
    """List the explicit collaborators of a dashboard."""
    return await service.list_collaborators(session, access, dashboard_id)


@router.post(
    "/{dashboard_id}/collaborators/",
    name="dashboards_collaborators_create",
    status_code=status.HTTP_201_CREATED,
)
async def add_collaborator(
    dashboard_id: PathId, data: CollaboratorCreate, session: SessionDep, access: DashboardWriteAccess
) -> Collaborator:
    """Let a project member edit a dashboard restricted to collaborators (level 37)."""
    return await service.add_collaborator(session, access, dashboard_id, data)


@router.delete(
    "/{dashboard_id}/collaborators/{user__uuid}/",
    name="dashboards_collaborators_destroy",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
)
async def remove_collaborator(
    dashboard_id: PathId, user__uuid: uuid.UUID, session: SessionDep, access: DashboardWriteAccess
) -> Response:
    """Remove a collaborator from a dashboard."""
    await service.remove_collaborator(session, access, dashboard_id, user__uuid)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# --- snapshot and analyze_refresh_result ("what changed?") --------------------------------------------------
# A key with `dashboard:write`, or a signed-in viewer's session posting from this site.
DashboardWriteOrSession = Annotated[TeamAccess, scoped("dashboard:write", session_posts=True)]


@router.post("/{id}/snapshot/", name="dashboards_snapshot_create", response_model=SnapshotCreated)
async def snapshot(
    id: PathId,
    session: SessionDep,
    access: DashboardWriteOrSession,
    now: NowDep,
    data: Annotated[SnapshotRequest, Body(default_factory=SnapshotRequest)],
) -> SnapshotCreated:
    """Keep the tiles' results before a refresh (the client's `client_results`, or the cached ones) for 30
    minutes; answers the `cache_key` to give `analyze_refresh_result`."""
    return await snapshots.take_snapshot(session, access, id, data, now)


@router.post(
    "/{id}/analyze_refresh_result/",
    name="dashboards_analyze_refresh_result_create",
    response_model=RefreshAnalysis,
)
async def analyze_refresh_result(
    id: PathId,
    session: SessionDep,
    access: DashboardWriteOrSession,
    now: NowDep,
    data: Annotated[AnalyzeRequest, Body(default_factory=AnalyzeRequest)],
) -> Response | RefreshAnalysis:
    """Compare the tiles' cached results with a `snapshot`'s: a summary of the largest changes and every
    changed tile and series."""
    analysis = await snapshots.analyze(session, access, id, data, now)
    return analysis if isinstance(analysis, RefreshAnalysis) else analysis.response()
