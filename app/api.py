"""Mounts the feature routers under both of PostHog's prefixes, with PostHog's operation ids."""

from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute

from app.auth.dependencies import RequireScope
from app.dashboards.router import router as dashboards_router
from app.themes.router import router as themes_router

FEATURE_ROUTERS = [dashboards_router, themes_router]


def _environments_id(route: APIRoute) -> str:
    return f"environments_{route.name}"


def _projects_id(route: APIRoute) -> str:
    return route.name


def _required_scope(route: APIRoute) -> str | None:
    pending = list(route.dependant.dependencies)
    while pending:
        dep = pending.pop()
        if isinstance(dep.call, RequireScope):
            return dep.call.scope
        pending.extend(dep.dependencies)
    return None


def mount_api(app: FastAPI) -> None:
    team_api = APIRouter()
    for router in FEATURE_ROUTERS:
        team_api.include_router(router)
    app.include_router(team_api, prefix="/api/environments/{project_id}", generate_unique_id_function=_environments_id)
    app.include_router(team_api, prefix="/api/projects/{project_id}", generate_unique_id_function=_projects_id)
    # Each operation's security names the scope it needs, as PostHog's schema does.
    for route in app.routes:
        if isinstance(route, APIRoute) and (scope := _required_scope(route)):
            route.openapi_extra = {**(route.openapi_extra or {}), "security": [{"PersonalAPIKeyAuth": [scope]}]}
