"""`…/dashboards/{dashboard_id}/sharing/…`: thin handlers over `app.sharing.service`."""

from typing import Annotated, Any

from fastapi import APIRouter, Body, Request, Response, status

from app.auth.dependencies import TeamAccess, scoped
from app.clock import NowDep
from app.db import SessionDep
from app.sharing import service
from app.sharing.passwords import PasswordChecks
from app.sharing.schemas import SharePasswordCreate, SharePasswordCreated, SharingConfiguration, SharingUpdate
from app.validation import PathId

router = APIRouter(prefix="/dashboards", tags=["dashboards"])

SharingRead = Annotated[TeamAccess, scoped("sharing_configuration:read")]
SharingWrite = Annotated[TeamAccess, scoped("sharing_configuration:write")]
UpdateBody = Annotated[SharingUpdate, Body(default_factory=SharingUpdate)]
PasswordBody = Annotated[SharePasswordCreate, Body(default_factory=SharePasswordCreate)]
# `refresh` reads no body; PostHog documents the configuration as one (ignored), and so does Tilecast.
IGNORED_BODY: dict[str, Any] = {
    "requestBody": {
        "required": False,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/SharingConfiguration"}}},
    }
}


def _checks(request: Request) -> PasswordChecks:
    checks: PasswordChecks = request.app.state.password_checks
    return checks


@router.get("/{dashboard_id}/sharing/", name="dashboards_sharing_list")
async def get_sharing(dashboard_id: PathId, session: SessionDep, access: SharingRead) -> SharingConfiguration:
    """The dashboard's sharing configuration (a default one, not stored, until the first change)."""
    return await service.get_sharing(session, access, dashboard_id)


@router.patch("/{dashboard_id}/sharing/", name="dashboards_sharing_partial_update")
async def update_sharing(
    dashboard_id: PathId, session: SessionDep, access: SharingWrite, data: UpdateBody
) -> SharingConfiguration:
    """Enable or disable the public link, change its display `settings`, or require a password."""
    return await service.update_sharing(session, access, dashboard_id, data)


@router.post(
    "/{dashboard_id}/sharing/refresh/", name="dashboards_sharing_refresh_create", openapi_extra=IGNORED_BODY
)
async def refresh_sharing(
    dashboard_id: PathId, session: SessionDep, access: SharingWrite, now: NowDep
) -> SharingConfiguration:
    """A new token for the link; the old one keeps working for 5 minutes. Passwords carry over."""
    return await service.refresh_sharing(session, access, dashboard_id, now)


@router.post(
    "/{dashboard_id}/sharing/passwords/",
    name="dashboards_sharing_passwords_create",
    status_code=status.HTTP_201_CREATED,
)
async def create_password(
    dashboard_id: PathId, session: SessionDep, access: SharingWrite, data: PasswordBody, request: Request
) -> SharePasswordCreated:
    """Create a password for a password-protected share (generated when blank); shown this once."""
    return await service.create_password(session, access, dashboard_id, data, _checks(request))


@router.delete(
    "/{dashboard_id}/sharing/passwords/{password_id}/",
    name="dashboards_sharing_passwords_destroy",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
)
async def delete_password(
    dashboard_id: PathId, password_id: PathId, session: SessionDep, access: SharingWrite
) -> Response:
    """Delete a password; links unlocked with it stop working at once."""
    await service.delete_password(session, access, dashboard_id, password_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
