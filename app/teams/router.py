"""The team's own endpoints (`/api/projects/{id}/`, `/api/environments/{id}/`): thin handlers over
`app.teams.service`."""

from typing import Annotated

from fastapi import APIRouter, Body

from app.auth.dependencies import TeamAccess, scoped
from app.db import SessionDep
from app.teams import service
from app.teams.schemas import Team, TeamUpdate

router = APIRouter(tags=["projects"])

ProjectRead = Annotated[TeamAccess, scoped("project:read")]
ProjectWrite = Annotated[TeamAccess, scoped("project:write")]
UpdateBody = Annotated[TeamUpdate, Body(default_factory=TeamUpdate)]


@router.get("/", name="retrieve")
async def retrieve_team(session: SessionDep, access: ProjectRead) -> Team:
    """The team (PostHog's project and environment): its id, key and the settings queries read."""
    return await service.retrieve_team(session, access)


@router.patch("/", name="partial_update")
async def update_team(session: SessionDep, access: ProjectWrite, data: UpdateBody) -> Team:
    """Change the team's name, timezone, week start or test-account filters. Cached results computed under
    the old settings are not served again: the settings a result depends on are part of its cache key."""
    return await service.update_team(session, access, data)
