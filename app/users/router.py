"""Discovery, as PostHog's clients do it first: who am I (`/api/users/@me/`), my organizations and my
projects. Thin handlers over `app.users.service`; each takes a key alone, with PostHog's scope."""

from typing import Annotated

from fastapi import APIRouter, Body, Path

from app.auth.dependencies import Principal, key_scoped
from app.db import SessionDep
from app.pagination import PageDep
from app.schemas import Paginated
from app.users import service
from app.users.schemas import Organization, TeamBasic, User, UserUpdate

router = APIRouter(prefix="/api")

UserRead = Annotated[Principal, key_scoped("user:read")]
UserWrite = Annotated[Principal, key_scoped("user:write")]
OrganizationRead = Annotated[Principal, key_scoped("organization:read")]
ProjectRead = Annotated[Principal, key_scoped("project:read")]
OrganizationId = Annotated[
    str, Path(description="The organization's id (a UUID), or `@current` for your current organization.")
]


@router.get("/users/@me/", name="users_retrieve", tags=["users"])
async def retrieve_me(session: SessionDep, principal: UserRead) -> User:
    """The key's user, its current team and organization, and the organizations the key reaches."""
    return await service.me(session, principal)


@router.patch("/users/@me/", name="users_partial_update", tags=["users"])
async def update_me(
    session: SessionDep, principal: UserWrite, data: Annotated[UserUpdate, Body(default_factory=UserUpdate)]
) -> User:
    """Set the user's current team (`set_current_team`): the project `@current` stands for in every URL."""
    return await service.update_me(session, principal, data)


@router.get("/organizations/", name="organizations_list", tags=["organizations"])
async def list_organizations(
    session: SessionDep, principal: OrganizationRead, page: PageDep
) -> Paginated[Organization]:
    """The organizations the key reaches."""
    return await service.list_organizations(session, principal, page)


@router.get("/organizations/{id}/", name="organizations_retrieve", tags=["organizations"])
async def retrieve_organization(
    session: SessionDep, principal: OrganizationRead, id: OrganizationId
) -> Organization:
    """One organization, with the teams and projects the key reaches in it."""
    return await service.get_organization(session, principal, id)


@router.get("/organizations/{id}/projects/", name="organizations_projects_list", tags=["projects"])
async def list_organization_projects(
    session: SessionDep, principal: ProjectRead, page: PageDep, id: OrganizationId
) -> Paginated[TeamBasic]:
    """The organization's projects the key reaches."""
    return await service.list_projects(session, principal, page, id)


@router.get("/projects/", name="projects_list", tags=["projects"])
async def list_projects(session: SessionDep, principal: ProjectRead, page: PageDep) -> Paginated[TeamBasic]:
    """The projects the key reaches in the current organization."""
    return await service.list_projects(session, principal, page)
