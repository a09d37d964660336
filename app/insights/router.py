"""Insights endpoints: thin handlers over `app.insights.service`."""

from typing import Annotated

from fastapi import APIRouter, Body, Depends, Query, status

from app.auth.dependencies import TeamAccess, scoped
from app.db import SessionDep
from app.insights import service
from app.insights.repository import ListFilters
from app.insights.schemas import Insight, InsightWrite
from app.pagination import PageDep
from app.query.render import parse_refresh
from app.rendering import add_hard_delete_refusal
from app.schemas import Paginated
from app.validation import PathId, SafeStr

router = APIRouter(prefix="/insights", tags=["insights"])

InsightRead = Annotated[TeamAccess, scoped("insight:read")]
InsightWriteAccess = Annotated[TeamAccess, scoped("insight:write")]
# PostHog requires no body on create or update: no body means `{}`.
WriteBody = Annotated[InsightWrite, Body(default_factory=InsightWrite)]

REFRESH_DESCRIPTION = (
    "`force_cache` (default: cached result or none), `blocking`, `async`, `lazy_async`, "
    "`async_except_on_cache_miss` (computed in the request unless a fresh result is cached), "
    "`force_blocking`, `force_async` (always computed)."
)


async def get_list_filters(
    short_id: Annotated[SafeStr | None, Query()] = None,
    created_by: Annotated[int | None, Query(ge=0, le=2_147_483_647)] = None,
    saved: Annotated[bool | None, Query()] = None,
    favorited: Annotated[bool | None, Query()] = None,
    search: Annotated[
        SafeStr | None, Query(description="Case-insensitive match on names and description.")
    ] = None,
) -> ListFilters:
    return ListFilters(
        short_id=short_id, created_by=created_by, saved=saved, favorited=favorited, search=search
    )


@router.get("/", name="insights_list")
async def list_insights(
    session: SessionDep,
    access: InsightRead,
    page: PageDep,
    filters: Annotated[ListFilters, Depends(get_list_filters)],
    basic: Annotated[
        bool, Query(description="Return basic insight metadata only (no results, faster).")
    ] = False,
) -> Paginated[Insight]:
    """List the team's insights, most recently modified first, with their cached results."""
    return await service.list_insights(session, access, page, filters, basic=basic)


@router.post("/", name="insights_create", status_code=status.HTTP_201_CREATED)
async def create_insight(data: WriteBody, session: SessionDep, access: InsightWriteAccess) -> Insight:
    """Create an insight; `dashboards: [ids]` puts it on those dashboards."""
    return await service.create_insight(session, access, data)


@router.get("/{id}/", name="insights_retrieve")
async def retrieve_insight(
    id: PathId,
    session: SessionDep,
    access: InsightRead,
    refresh: Annotated[str | None, Query(description=REFRESH_DESCRIPTION)] = None,
) -> Insight:
    """Retrieve an insight with its result, from the cache or computed as `refresh` says."""
    return await service.retrieve_insight(session, access, id, parse_refresh(refresh))


@router.patch("/{id}/", name="insights_partial_update")
async def partial_update_insight(
    id: PathId, data: WriteBody, session: SessionDep, access: InsightWriteAccess
) -> Insight:
    """Update an insight; `{"deleted": true}` soft-deletes it, `dashboards` moves its tiles."""
    return await service.update_insight(session, access, id, data)


@router.put("/{id}/", name="insights_update")
async def update_insight(
    id: PathId, data: WriteBody, session: SessionDep, access: InsightWriteAccess
) -> Insight:
    """Update an insight (fields left out keep their values, as in PostHog)."""
    return await service.update_insight(session, access, id, data)


add_hard_delete_refusal(router, "insights_destroy", "insight:write")
