"""Permissions are the same whichever endpoint is used.

Scopes: an action needs the write scope of every kind of object it creates, changes or deletes, checked
before any change. Restrictions: an insight on a dashboard only its owner, admins and collaborators may edit
can be changed only by them (its effective restriction is the highest of its dashboards', as PostHog)."""

import httpx
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import iter_route_contexts
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.dependencies import get_scoped_principal
from app.models import MEMBER
from tests.factories import Actor, make_member
from tests.resources import new_dashboard, trends

BOTH_DASHBOARD = ["dashboard:write", "insight:read"]
BOTH_INSIGHT = ["insight:write", "dashboard:read"]
CANNOT_EDIT_INSIGHT = (
    "This insight is on a dashboard that can only be edited by its owner, team members invited to editing "
    "the dashboard, and project admins."
)


def missing(scope: str) -> dict[str, object]:
    return {
        "type": "authentication_error",
        "code": "permission_denied",
        "detail": f"API key missing required scope '{scope}'",
        "attr": None,
    }


async def insight_on(client: httpx.AsyncClient, actor: Actor, dashboard: int, name: str = "i") -> int:
    made = await client.post(
        actor.url("insights/"),
        json={"name": name, "query": trends(), "dashboards": [dashboard]},
        headers=actor.headers,
    )
    assert made.status_code == 201, made.text
    return int(made.json()["id"])


async def live_insights(client: httpx.AsyncClient, actor: Actor) -> set[str]:
    listed = await client.get(actor.url("insights/"), headers=actor.headers)
    return {i["name"] for i in listed.json()["results"]}


# --- scopes of every object changed -------------------------------------------------------------------------


async def test_delete_insights_needs_insight_write(
    client: httpx.AsyncClient, actor: Actor, db: AsyncSession
) -> None:
    dashboard = await new_dashboard(client, actor)
    await insight_on(client, actor, dashboard, "only here")
    writer = await make_member(db, actor.team, scopes=BOTH_DASHBOARD)
    body = {"deleted": True, "delete_insights": True}
    refused = await client.patch(actor.url(f"dashboards/{dashboard}/"), json=body, headers=writer.headers)
    assert refused.status_code == 403
    assert refused.json() == missing("insight:write")
    # Nothing changed: the dashboard and its insight are live.
    assert (await client.get(actor.url(f"dashboards/{dashboard}/"), headers=actor.headers)).status_code == 200
    assert await live_insights(client, actor) == {"only here"}
    # Deleting the dashboard alone changes only the dashboard.
    plain = await client.patch(
        actor.url(f"dashboards/{dashboard}/"), json={"deleted": True}, headers=writer.headers
    )
    assert plain.status_code == 200
    assert await live_insights(client, actor) == {"only here"}


async def test_restoring_a_dashboard_restores_insights_so_needs_insight_write(
    client: httpx.AsyncClient, actor: Actor, db: AsyncSession
) -> None:
    dashboard = await new_dashboard(client, actor)
    await insight_on(client, actor, dashboard)
    gone = await client.patch(
        actor.url(f"dashboards/{dashboard}/"),
        json={"deleted": True, "delete_insights": True},
        headers=actor.headers,
    )
    assert gone.status_code == 200
    writer = await make_member(db, actor.team, scopes=BOTH_DASHBOARD)
    refused = await client.patch(
        actor.url(f"dashboards/{dashboard}/"), json={"deleted": False}, headers=writer.headers
    )
    assert refused.status_code == 403
    assert refused.json() == missing("insight:write")
    assert (await client.get(actor.url(f"dashboards/{dashboard}/"), headers=actor.headers)).status_code == 404
    # A live dashboard told `deleted: false` restores nothing: no insight scope needed.
    other = await new_dashboard(client, actor)
    noop = await client.patch(
        actor.url(f"dashboards/{other}/"), json={"deleted": False}, headers=writer.headers
    )
    assert noop.status_code == 200


async def test_duplicating_tiles_creates_insights_so_needs_insight_write(
    client: httpx.AsyncClient, actor: Actor, db: AsyncSession
) -> None:
    source = await new_dashboard(client, actor)
    await insight_on(client, actor, source)
    writer = await make_member(db, actor.team, scopes=BOTH_DASHBOARD)
    deep = await client.post(
        actor.url("dashboards/"),
        json={"name": "copy", "use_dashboard": source, "duplicate_tiles": True},
        headers=writer.headers,
    )
    assert deep.status_code == 403
    assert deep.json() == missing("insight:write")
    listed = await client.get(actor.url("dashboards/"), headers=actor.headers)
    assert listed.json()["count"] == 1  # no dashboard was created
    shallow = await client.post(
        actor.url("dashboards/"), json={"name": "copy", "use_dashboard": source}, headers=writer.headers
    )
    assert shallow.status_code == 201  # the same insights on a new dashboard: only dashboards change
    tile = (await client.get(actor.url(f"dashboards/{source}/"), headers=actor.headers)).json()["tiles"][0]
    patched = await client.patch(
        actor.url(f"dashboards/{source}/"),
        json={"duplicate_tiles": [{"id": tile["id"]}]},
        headers=writer.headers,
    )
    assert patched.status_code == 403
    assert patched.json() == missing("insight:write")
    assert (
        len((await client.get(actor.url(f"dashboards/{source}/"), headers=actor.headers)).json()["tiles"])
        == 1
    )


async def test_what_changed_needs_dashboard_write(
    client: httpx.AsyncClient, actor: Actor, db: AsyncSession
) -> None:
    dashboard = await new_dashboard(client, actor)
    await insight_on(client, actor, dashboard)
    made = await client.post(actor.url(f"dashboards/{dashboard}/snapshot/"), headers=actor.headers)
    assert made.status_code == 200
    reader = await make_member(db, actor.team, scopes=["dashboard:read", "insight:read"])
    for action, body in (("snapshot", {}), ("analyze_refresh_result", made.json())):
        url = actor.url(f"dashboards/{dashboard}/{action}/")
        refused = await client.post(url, json=body, headers=reader.headers)
        assert refused.status_code == 403
        assert refused.json() == missing("dashboard:write")


async def test_an_insights_dashboards_need_dashboard_write(
    client: httpx.AsyncClient, actor: Actor, db: AsyncSession
) -> None:
    dashboard = await new_dashboard(client, actor)
    writer = await make_member(db, actor.team, scopes=BOTH_INSIGHT)
    created = await client.post(
        actor.url("insights/"),
        json={"name": "i", "query": trends(), "dashboards": [dashboard]},
        headers=writer.headers,
    )
    assert created.status_code == 403
    assert created.json() == missing("dashboard:write")
    assert await live_insights(client, actor) == set()
    insight = await insight_on(client, actor, dashboard)
    for body in ({"dashboards": []}, {"dashboards": [dashboard, await new_dashboard(client, actor)]}):
        changed = await client.patch(actor.url(f"insights/{insight}/"), json=body, headers=writer.headers)
        assert changed.status_code == 403, body
        assert changed.json() == missing("dashboard:write")
    tiles = (await client.get(actor.url(f"dashboards/{dashboard}/"), headers=actor.headers)).json()["tiles"]
    assert len(tiles) == 1
    # The same dashboards again (a client echoing the object back) change no dashboard: allowed.
    same = await client.patch(
        actor.url(f"insights/{insight}/"),
        json={"name": "renamed", "dashboards": [dashboard]},
        headers=writer.headers,
    )
    assert same.status_code == 200, same.text
    assert same.json()["name"] == "renamed"


# --- restrictions hold through insights --------------------------------------------------------------------


async def test_insights_on_a_restricted_dashboard_are_edited_only_by_its_editors(
    client: httpx.AsyncClient, actor: Actor, db: AsyncSession
) -> None:
    locked = (
        await client.post(
            actor.url("dashboards/"), json={"name": "Locked", "restriction_level": 37}, headers=actor.headers
        )
    ).json()["id"]
    open_dashboard = await new_dashboard(client, actor)
    on_locked = await insight_on(client, actor, locked, "on locked")
    on_open = await insight_on(client, actor, open_dashboard, "on open")
    member = await make_member(db, actor.team, level=MEMBER)

    seen = await client.get(actor.url(f"insights/{on_locked}/"), headers=member.headers)
    assert seen.status_code == 200
    assert (seen.json()["effective_restriction_level"], seen.json()["effective_privilege_level"]) == (37, 21)
    assert seen.json()["user_access_level"] == "viewer"
    for body in ({"name": "hijacked"}, {"deleted": True}, {"query": trends("other")}):
        refused = await client.patch(actor.url(f"insights/{on_locked}/"), json=body, headers=member.headers)
        assert refused.status_code == 403, body
        assert refused.json()["detail"] == CANNOT_EDIT_INSIGHT
    put = await client.put(
        actor.url(f"insights/{on_locked}/"), json={"name": "hijacked"}, headers=member.headers
    )
    assert put.status_code == 403
    # The owner's dashboard still shows the tile, unchanged.
    tiles = (await client.get(actor.url(f"dashboards/{locked}/"), headers=actor.headers)).json()["tiles"]
    assert [t["insight"]["name"] for t in tiles] == ["on locked"]
    owner_view = tiles[0]["insight"]
    assert (owner_view["effective_restriction_level"], owner_view["effective_privilege_level"]) == (37, 37)

    # On an unrestricted dashboard, any member edits.
    fine = await client.patch(
        actor.url(f"insights/{on_open}/"), json={"name": "renamed"}, headers=member.headers
    )
    assert fine.status_code == 200
    assert (fine.json()["effective_restriction_level"], fine.json()["effective_privilege_level"]) == (21, 37)
    # The list reports the same levels.
    listed = {
        i["name"]: (i["effective_restriction_level"], i["effective_privilege_level"])
        for i in (await client.get(actor.url("insights/"), headers=member.headers)).json()["results"]
    }
    assert listed == {"on locked": (37, 21), "renamed": (21, 37)}

    # A collaborator with edit rights may edit it.
    added = await client.post(
        actor.url(f"dashboards/{locked}/collaborators/"),
        json={"user_uuid": str(member.user.uuid), "level": 37},
        headers=actor.headers,
    )
    assert added.status_code == 201, added.text
    allowed = await client.patch(
        actor.url(f"insights/{on_locked}/"), json={"name": "edited"}, headers=member.headers
    )
    assert allowed.status_code == 200
    assert allowed.json()["effective_privilege_level"] == 37


# --- the caller's own routes (user, keys, organizations, projects) ------------------------------------------


def _own_scope(dependant: Dependant) -> str | None:
    """The scope a route outside any team asks for (`key_scoped`); None for those that take any key."""
    for dep in dependant.dependencies:
        if dep.call is get_scoped_principal:
            (scope,) = dep.own_oauth_scopes or []
            return scope
        found = _own_scope(dep)
        if found is not None:
            return found
    return None


async def test_every_route_outside_a_team_needs_its_scope(
    app: FastAPI, client: httpx.AsyncClient, actor: Actor, db: AsyncSession
) -> None:
    """Walks the route table: every route taking the key alone (not on a team) refuses a key without its scope
    with 403 naming it, before anything else; `@current` of the keys is the one route any key may read."""
    narrow = await make_member(db, actor.team, scopes=["dashboard:read"])
    own_key = (await client.get("/api/personal_api_keys/@current/", headers=narrow.headers)).json()["id"]
    organization = str(actor.team.organization_id)
    checked = 0
    for route in iter_route_contexts(app.routes):
        dependant = getattr(route, "dependant", None)
        if dependant is None or not route.path.startswith("/api/") or "{project_id}" in route.path:
            continue
        scope = _own_scope(dependant)
        if scope is None:
            assert route.path == "/api/personal_api_keys/@current/", route.path
            continue
        ident = own_key if "personal_api_keys" in route.path else organization
        url = route.path.replace("{id}", ident)
        for method in route.methods:
            response = await client.request(method, url, json={"label": "x"}, headers=narrow.headers)
            assert response.status_code == 403, (method, url, response.text)
            assert response.json() == missing(scope), (method, url)
            checked += 1
    assert checked >= 12
    # Nothing changed: the key is still there, unrolled.
    assert (await client.get("/api/personal_api_keys/@current/", headers=narrow.headers)).json()[
        "id"
    ] == own_key
