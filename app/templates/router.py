"""Dashboard templates endpoints: thin handlers over `app.templates.service`."""

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Query, status

from app.auth.dependencies import TeamAccess, scoped
from app.db import SessionDep
from app.pagination import PageDep
from app.rendering import FormatDep, add_hard_delete_refusal, render
from app.schemas import Paginated
from app.templates import service
from app.templates.json_schema import DASHBOARD_TEMPLATE_SCHEMA
from app.templates.repository import ListFilters
from app.templates.schemas import DashboardTemplate, DashboardTemplateWrite
from app.validation import SafeStr

router = APIRouter(prefix="/dashboard_templates", tags=["dashboard_templates"])

TemplateRead = Annotated[TeamAccess, scoped("dashboard_template:read")]
TemplateWrite = Annotated[TeamAccess, scoped("dashboard_template:write")]
# A malformed id matches no template (404).
TemplateId = Annotated[str, Path(description="A UUID string identifying this dashboard template.")]
WriteBody = Annotated[DashboardTemplateWrite, Body(default_factory=DashboardTemplateWrite)]


async def get_list_filters(
    scope: Annotated[
        SafeStr | None,
        Query(description="`global`: the global templates only; `feature_flag`: those of that scope."),
    ] = None,
    search: Annotated[
        SafeStr | None, Query(description="Case-insensitive match on name or description, or a tag.")
    ] = None,
) -> ListFilters:
    return ListFilters(scope=scope, search=search or None)


@router.get("/", name="dashboard_templates_list", response_model=Paginated[DashboardTemplate])
async def list_templates(
    session: SessionDep,
    access: TemplateRead,
    page: PageDep,
    fmt: FormatDep,
    filters: Annotated[ListFilters, Depends(get_list_filters)],
) -> Any:
    """List the built-in templates and the team's own."""
    return render(fmt, await service.list_templates(session, access, page, filters))


@router.post("/", name="dashboard_templates_create", status_code=status.HTTP_201_CREATED)
async def create_template(data: WriteBody, session: SessionDep, access: TemplateWrite) -> DashboardTemplate:
    """Create a template for the team (`tiles` must not be empty)."""
    return await service.create_template(session, access, data)


@router.get("/json_schema/", name="dashboard_templates_json_schema_retrieve")
async def json_schema(access: TemplateRead) -> dict[str, Any]:
    """The JSON schema a template must match to be posted to `dashboards/create_from_template_json/`."""
    return DASHBOARD_TEMPLATE_SCHEMA


@router.get("/{id}/", name="dashboard_templates_retrieve", response_model=DashboardTemplate)
async def retrieve_template(id: TemplateId, session: SessionDep, access: TemplateRead, fmt: FormatDep) -> Any:
    """Retrieve a built-in template or one of the team's own."""
    return render(fmt, await service.retrieve_template(session, access, id))


@router.patch("/{id}/", name="dashboard_templates_partial_update")
async def partial_update_template(
    id: TemplateId, data: WriteBody, session: SessionDep, access: TemplateWrite
) -> DashboardTemplate:
    """Change some fields; `{"deleted": true}` soft-deletes (built-in templates are read-only)."""
    return await service.update_template(session, access, id, data)


@router.put("/{id}/", name="dashboard_templates_update")
async def update_template(
    id: TemplateId, data: WriteBody, session: SessionDep, access: TemplateWrite
) -> DashboardTemplate:
    """Update a template (fields left out keep their values; built-in templates are read-only)."""
    return await service.update_template(session, access, id, data)


add_hard_delete_refusal(router, "dashboard_templates_destroy", "dashboard_template:write")
