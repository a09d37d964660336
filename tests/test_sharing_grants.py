"""`sharing_access_token` on API requests: a sharing grant reads the shared dashboard and its team's themes,
GET only, in shared context; every other route refuses it (the route table is walked, so a new route cannot
slip through)."""

import re
import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import RouteContext, iter_route_contexts
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.dependencies import (
    GET_ONLY,
    NOT_FOR_GRANTS,
    OTHER_ORIGIN,
    accepted_grant,
    accepts_session_posts,
    get_principal,
    get_team_access,
)
from app.auth.sessions import COOKIE_NAME
from app.query.render import RefreshMode, shared_refresh
from app.templates.builtin import PRODUCT_ANALYTICS
from tests.factories import Actor
from tests.resources import new_dashboard
from tests.sharing_helpers import patch_sharing, shared_dashboard

# Every API route a grant may use (by route name, under both prefixes), GET only. `stream_tiles` joins them
# when it is wired (DashboardReadOrShared).
GRANT_ROUTES = {
    "dashboards_retrieve",
    "dashboards_stream_tiles_retrieve",
    "data_color_themes_list",
    "data_color_themes_retrieve",
}
# The routes of dashboard templates and of dashboards made from them: keys alone.
TEMPLATE_ROUTES = {
    "dashboard_templates_list",
    "dashboard_templates_create",
    "dashboard_templates_retrieve",
    "dashboard_templates_partial_update",
    "dashboard_templates_update",
    "dashboard_templates_json_schema_retrieve",
    "dashboards_create_from_template_json_create",
    "dashboards_create_unlisted_dashboard_create",
}
# Every API route a signed-in viewer's session may POST to (from this site): never one a grant may use.
SESSION_POST_ROUTES = {"dashboards_snapshot_create", "dashboards_analyze_refresh_result_create"}
# API routes that take no principal at all: they answer the same to anyone.
NO_PRINCIPAL_ROUTES = {"dashboards_destroy", "insights_destroy", "dashboard_templates_destroy"}
# Routes outside the API: none takes a key or a grant as a principal.
OTHER_PATHS = {
    "/openapi.json",
    "/docs",
    "/redoc",
    "/static/docs/{name}",
    "/static/web/{name}",
    "/_health",
    "/_readyz",
    "/metrics",  # its own bearer token (TILECAST_METRICS_TOKEN), never a key, grant or session
    "/capture/",
    "/batch/",
    "/e/",
    "/i/v0/e/",
    "/shared/{token}.json",
    "/embedded/{token}.json",
    "/shared/{token}",
    "/embedded/{token}",
    # A signed-in viewer's pages: their principal is a session, as the API's GET routes (below).
    "/",
    "/sign-in",
    "/sign-out",
    "/project/{team_id}/dashboard/{dashboard_id}",
}


def _calls(dependant: Dependant) -> list[Any]:
    found = []
    for dep in dependant.dependencies:
        found.append(dep.call)
        found.extend(_calls(dep))
    return found


def _routes(app: FastAPI) -> list[RouteContext]:
    """Every route the app serves, its included routers' routes with their full paths."""
    return list(iter_route_contexts(app.routes))


def _api_routes(app: FastAPI) -> list[RouteContext]:
    return [r for r in _routes(app) if r.path.startswith("/api/")]


def _principal_kind(route: RouteContext) -> str | None:
    dependant = getattr(route, "dependant", None)
    calls = _calls(dependant) if dependant is not None else []
    grants = {accepted_grant(call) for call in calls} - {None}
    if grants:
        return "grant"
    # A team's routes take the key on that team; the caller's own (user, keys, organizations, projects) take
    # the key alone.
    if get_team_access in calls or get_principal in calls:
        return "key"
    if any(accepts_session_posts(call) for call in calls):
        return "key or session post"
    return None


def _fill(path: str, values: dict[str, str]) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: values.get(m.group(1), "1"), path)


async def test_only_the_declared_routes_accept_grants(app: FastAPI) -> None:
    accepting = {r.name for r in _routes(app) if _principal_kind(r) == "grant"}
    assert accepting == GRANT_ROUTES
    for route in _api_routes(app):
        kind = _principal_kind(route)
        assert kind is not None or route.name in NO_PRINCIPAL_ROUTES, route.path
        if route.name in GRANT_ROUTES:
            assert route.methods == {"GET"}, route.name
    others = {r.path for r in _routes(app) if not r.path.startswith("/api/")}
    assert others == OTHER_PATHS
    session_posts = {r.name for r in _routes(app) if _principal_kind(r) == "key or session post"}
    assert session_posts == SESSION_POST_ROUTES
    for route in _api_routes(app):
        if route.name in SESSION_POST_ROUTES:
            assert route.methods == {"POST"}, route.name


async def test_every_route_refuses_a_grant_it_does_not_accept(
    app: FastAPI, client: httpx.AsyncClient, actor: Actor, db: AsyncSession
) -> None:
    dashboard, token = await shared_dashboard(client, actor)
    theme = (
        await db.execute(text("SELECT min(id) FROM data_color_theme WHERE team_id IS NULL"))
    ).scalar_one()
    values = {
        "project_id": str(actor.team.id),
        "dashboard_id": str(dashboard),
        "user__uuid": str(uuid.uuid4()),
    }
    checked = 0
    for route in _api_routes(app):
        ids = {
            "id": str(
                theme
                if "data_color_themes" in route.path
                else PRODUCT_ANALYTICS.id
                if "dashboard_templates" in route.path
                else dashboard
            )
        }
        url = _fill(route.path, {**values, **ids})
        for method in sorted(route.methods):
            # The grant comes with the owner's own key: a grant refused is refused whatever else is presented.
            response = await client.request(
                method, url, params={"sharing_access_token": token}, json={}, headers=actor.headers
            )
            checked += 1
            if route.name in NO_PRINCIPAL_ROUTES:
                assert response.status_code == 405, (method, url)
            elif route.name in GRANT_ROUTES and method == "GET":
                assert response.status_code == 200, (method, url, response.text)
            else:
                assert response.status_code == 401, (method, url, response.text)
                assert response.json()["detail"] == (GET_ONLY if method != "GET" else NOT_FOR_GRANTS)
    assert checked >= 40
    # The templates' routes and the dashboards' template actions were walked too.
    assert {r.name for r in _api_routes(app)} >= TEMPLATE_ROUTES


async def test_a_grant_reads_its_dashboard_in_shared_context(client: httpx.AsyncClient, actor: Actor) -> None:
    dashboard, token = await shared_dashboard(client, actor, filters={"date_from": "-14d"})
    url = actor.url(f"dashboards/{dashboard}/")
    # The key's retrieve without `refresh` reads the cache only: nothing is computed yet.
    assert (await client.get(url, headers=actor.headers)).json()["tiles"][0]["insight"]["result"] is None
    params: dict[str, str] = {"sharing_access_token": token, "filters_override": '{"date_from": "-90d"}'}
    shared = await client.get(url, params=params)
    assert shared.status_code == 200
    body = shared.json()
    assert body["effective_restriction_level"] == 37 and body["effective_privilege_level"] == 21
    assert body["user_access_level"] is None and body["last_viewed_at"] is None
    # Overrides ignored (even malformed); no `refresh` is `lazy_async`: the missing result is computed.
    assert body["filters"] == {"date_from": "-14d"}
    (tile,) = body["tiles"]
    assert tile["insight"]["result"] is not None
    assert tile["insight"]["query"]["source"]["dateRange"]["date_from"] == "-14d"
    malformed = await client.get(url, params={"sharing_access_token": token, "filters_override": "{nope"})
    assert malformed.status_code == 200
    # `force_blocking` becomes `blocking`: the fresh cached result serves.
    forced = await client.get(url, params={"sharing_access_token": token, "refresh": "force_blocking"})
    assert forced.json()["tiles"][0]["insight"]["is_cached"] is True
    by_key = await client.get(url, params={"refresh": "force_blocking"}, headers=actor.headers)
    assert by_key.json()["tiles"][0]["insight"]["is_cached"] is False


def test_refresh_modes_in_shared_context() -> None:
    assert shared_refresh(RefreshMode.FORCE_BLOCKING) is RefreshMode.BLOCKING
    assert shared_refresh(RefreshMode.ASYNC) is RefreshMode.ASYNC
    for mode in (
        RefreshMode.FORCE_CACHE,
        RefreshMode.BLOCKING,
        RefreshMode.ASYNC_EXCEPT_ON_CACHE_MISS,
        RefreshMode.LAZY_ASYNC,
        RefreshMode.FORCE_ASYNC,
    ):
        assert shared_refresh(mode) is RefreshMode.LAZY_ASYNC


async def test_a_grant_reads_the_teams_themes(client: httpx.AsyncClient, actor: Actor) -> None:
    made = await client.post(
        actor.url("data_color_themes/"), json={"name": "Ours", "colors": ["#fff"]}, headers=actor.headers
    )
    _, token = await shared_dashboard(client, actor)
    listed = await client.get(actor.url("data_color_themes/"), params={"sharing_access_token": token})
    assert listed.status_code == 200
    assert made.json()["id"] in {t["id"] for t in listed.json()["results"]}
    one = await client.get(
        actor.url(f"data_color_themes/{made.json()['id']}/"), params={"sharing_access_token": token}
    )
    assert one.status_code == 200


async def test_a_grant_reaches_only_its_dashboard_and_team(
    client: httpx.AsyncClient, actor: Actor, other_actor: Actor
) -> None:
    _, token = await shared_dashboard(client, actor)
    another = await new_dashboard(client, actor)
    params = {"sharing_access_token": token}
    assert (await client.get(actor.url(f"dashboards/{another}/"), params=params)).status_code == 403
    theirs = await new_dashboard(client, other_actor)
    assert (await client.get(other_actor.url(f"dashboards/{theirs}/"), params=params)).status_code == 403
    assert (await client.get(other_actor.url("data_color_themes/"), params=params)).status_code == 403


@pytest.mark.parametrize("value", ["", "not-a-token", "a.b.c"])
async def test_an_invalid_grant_is_401(client: httpx.AsyncClient, actor: Actor, value: str) -> None:
    dashboard, _ = await shared_dashboard(client, actor)
    response = await client.get(actor.url(f"dashboards/{dashboard}/"), params={"sharing_access_token": value})
    assert response.status_code == 401


async def test_a_disabled_or_rotated_share_grants_nothing(client: httpx.AsyncClient, actor: Actor) -> None:
    dashboard, token = await shared_dashboard(client, actor)
    url = actor.url(f"dashboards/{dashboard}/")
    assert (await client.get(url, params={"sharing_access_token": token})).status_code == 200
    await patch_sharing(client, actor, dashboard, enabled=False)
    assert (await client.get(url, params={"sharing_access_token": token})).status_code == 401


async def test_a_grant_on_the_projects_prefix(client: httpx.AsyncClient, actor: Actor) -> None:
    dashboard, token = await shared_dashboard(client, actor)
    response = await client.get(
        actor.url(f"dashboards/{dashboard}/", prefix="projects"), params={"sharing_access_token": token}
    )
    assert response.status_code == 200


async def test_a_session_reads_on_every_key_route_and_writes_on_none(
    app: FastAPI, client: httpx.AsyncClient, actor: Actor, db: AsyncSession
) -> None:
    """A signed-in viewer's session cookie is a principal for GET and HEAD wherever a key is one, and for no
    other method, but for the POSTs of `snapshot` and `analyze_refresh_result` from this site."""
    dashboard = await new_dashboard(client, actor)
    signed_in = await client.post("/sign-in", data={"personal_api_key": actor.key})
    assert signed_in.status_code == 303 and client.cookies.get(COOKIE_NAME)
    theme = (
        await db.execute(text("SELECT min(id) FROM data_color_theme WHERE team_id IS NULL"))
    ).scalar_one()
    values = {
        "project_id": str(actor.team.id),
        "dashboard_id": str(dashboard),
        "user__uuid": str(uuid.uuid4()),
    }
    reads = writes = 0
    for route in _api_routes(app):
        if route.name in NO_PRINCIPAL_ROUTES:
            continue
        ids = {
            "id": str(
                theme
                if "data_color_themes" in route.path
                else PRODUCT_ANALYTICS.id
                if "dashboard_templates" in route.path
                else dashboard
            )
        }
        url = _fill(route.path, {**values, **ids})
        for method in sorted(route.methods):
            response = await client.request(method, url, json={} if method != "GET" else None)
            if method in ("GET", "HEAD"):
                reads += 1
                assert response.status_code not in (401, 403), (method, url, response.text)
            elif route.name in SESSION_POST_ROUTES:
                # From no site (no `Origin`): refused; from this one: the session's.
                assert response.status_code == 403, (method, url, response.text)
                assert response.json()["detail"] == OTHER_ORIGIN
                own = await client.request(method, url, json={}, headers={"Origin": "http://testserver"})
                assert own.status_code not in (401, 403), (method, url, own.text)
            else:
                writes += 1
                assert response.status_code == 401, (method, url, response.text)
                assert response.json()["code"] == "not_authenticated"
    assert reads >= 15 and writes >= 20
