"""Mounts the feature routers under both of PostHog's prefixes, with PostHog's operation ids.

Each operation's security requirement names its scope through the `scoped(...)` dependency
(`app.auth.dependencies`), so nothing here has to patch the generated schema.
"""

from fastapi import APIRouter, Depends, FastAPI
from fastapi.routing import APIRoute

from app.auth.dependencies import ProjectIdPath
from app.dashboards.router import router as dashboards_router
from app.definitions.router import router as definitions_router
from app.insights.router import router as insights_router
from app.query.router import router as query_router
from app.sharing.router import router as sharing_router
from app.streaming.router import router as streaming_router
from app.teams.router import router as teams_router
from app.templates.router import router as templates_router
from app.themes.router import router as themes_router

FEATURE_ROUTERS = [
    dashboards_router,
    streaming_router,
    sharing_router,
    insights_router,
    themes_router,
    query_router,
    teams_router,
    templates_router,
    definitions_router,
]


def _environments_id(route: APIRoute) -> str:
    return f"environments_{route.name}"


def _projects_id(route: APIRoute) -> str:
    return route.name


async def _project_id(project_id: ProjectIdPath) -> None:
    """Documents `project_id` on every operation, including those that never read it."""


def mount_api(app: FastAPI) -> None:
    team_api = APIRouter(dependencies=[Depends(_project_id)])
    for router in FEATURE_ROUTERS:
        team_api.include_router(router)
    app.include_router(
        team_api, prefix="/api/environments/{project_id}", generate_unique_id_function=_environments_id
    )
    app.include_router(
        team_api, prefix="/api/projects/{project_id}", generate_unique_id_function=_projects_id
    )
