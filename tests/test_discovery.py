"""What PostHog's clients call first: who am I, my organizations and projects, and `@current` in every URL."""

import uuid

import httpx
import pytest
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts import add_member, create_personal_api_key, get_or_create_team, new_personal_api_key
from app.models import OrganizationMembership, User
from tests.factories import Actor, make_actor
from tests.resources import new_dashboard, trends


def missing(scope: str) -> dict[str, object]:
    return {
        "type": "authentication_error",
        "code": "permission_denied",
        "detail": f"API key missing required scope '{scope}'",
        "attr": None,
    }


async def second_team(db: AsyncSession, actor: Actor, name: str = "second") -> int:
    """Another team in the actor's organization."""
    team = await get_or_create_team(db, actor.user, name)
    await db.commit()
    return team.id


async def test_users_me_describes_the_user_its_team_and_organizations(
    client: httpx.AsyncClient, actor: Actor
) -> None:
    me = await client.get("/api/users/@me/", headers=actor.headers)
    assert me.status_code == 200, me.text
    body = me.json()
    assert (body["id"], body["uuid"], body["email"]) == (
        actor.user.id,
        str(actor.user.uuid),
        actor.user.email,
    )
    assert body["distinct_id"] == actor.user.distinct_id
    assert body["has_password"] is False and body["is_staff"] is False
    team = body["team"]
    assert team == {
        "id": actor.team.id,
        "uuid": str(actor.team.uuid),
        "organization": str(actor.team.organization_id),
        "project_id": actor.team.id,
        "api_token": actor.team.api_token,
        "name": actor.team.name,
        "completed_snippet_onboarding": True,
        "has_completed_onboarding_for": None,
        "ingested_event": False,
        "is_demo": False,
        "timezone": "UTC",
        "access_control": False,
    }
    org = body["organization"]
    assert org["id"] == str(actor.team.organization_id)
    assert org["membership_level"] == 15 and org["member_count"] == 1
    assert [t["id"] for t in org["teams"]] == [actor.team.id]
    assert org["projects"] == [
        {"id": actor.team.id, "organization_id": str(actor.team.organization_id), "name": actor.team.name}
    ]
    assert [o["id"] for o in body["organizations"]] == [org["id"]]
    assert body["organizations"][0]["membership_level"] == 15
    # Without a trailing slash too, as every path.
    assert (await client.get("/api/users/@me", headers=actor.headers)).json()["id"] == actor.user.id


async def test_discovery_needs_its_scopes(client: httpx.AsyncClient, actor: Actor, db: AsyncSession) -> None:
    narrow = await make_actor(db, team=actor.team, scopes=["dashboard:read"])
    org = actor.team.organization_id
    for path, scope in (
        ("/api/users/@me/", "user:read"),
        ("/api/organizations/", "organization:read"),
        (f"/api/organizations/{org}/", "organization:read"),
        ("/api/organizations/@current/", "organization:read"),
        (f"/api/organizations/{org}/projects/", "project:read"),
        ("/api/projects/", "project:read"),
        ("/api/projects/@current/", "project:read"),
        ("/api/environments/@current/", "project:read"),
        ("/api/personal_api_keys/", "personal_api_key:read"),
    ):
        refused = await client.get(path, headers=narrow.headers)
        assert refused.status_code == 403, path
        assert refused.json() == missing(scope), path
    patched = await client.patch("/api/users/@me/", json={"set_current_team": 1}, headers=narrow.headers)
    assert patched.json() == missing("user:write")
    assert (await client.get("/api/users/@me/")).status_code == 401
    # `user:write` reads as well.
    writer = await make_actor(db, team=actor.team, scopes=["user:write"])
    assert (await client.get("/api/users/@me/", headers=writer.headers)).status_code == 200


async def test_organizations_and_projects(
    client: httpx.AsyncClient, actor: Actor, other_actor: Actor, db: AsyncSession
) -> None:
    second = await second_team(db, actor)
    org = str(actor.team.organization_id)
    listed = await client.get("/api/organizations/", headers=actor.headers)
    assert listed.status_code == 200
    assert listed.json()["count"] == 1 and listed.json()["next"] is None
    assert [o["id"] for o in listed.json()["results"]] == [org]
    assert [t["id"] for t in listed.json()["results"][0]["teams"]] == [actor.team.id, second]
    for ident in (org, "@current"):
        got = await client.get(f"/api/organizations/{ident}/", headers=actor.headers)
        assert got.status_code == 200 and got.json()["id"] == org
    project = (await client.get(f"/api/projects/{actor.team.id}/", headers=actor.headers)).json()
    assert {
        k: project[k] for k in ("completed_snippet_onboarding", "ingested_event", "is_demo", "access_control")
    } == {
        "completed_snippet_onboarding": True,
        "ingested_event": False,
        "is_demo": False,
        "access_control": False,
    }
    projects = await client.get(f"/api/organizations/{org}/projects/", headers=actor.headers)
    assert [p["id"] for p in projects.json()["results"]] == [actor.team.id, second]
    assert projects.json()["results"][0]["api_token"] == actor.team.api_token
    assert (await client.get("/api/projects/", headers=actor.headers)).json() == projects.json() | {
        "results": projects.json()["results"]
    }
    paged = await client.get("/api/projects/?limit=1", headers=actor.headers)
    assert paged.json()["count"] == 2 and [p["id"] for p in paged.json()["results"]] == [actor.team.id]
    assert paged.json()["next"].endswith("/api/projects/?limit=1&offset=1")
    # Someone else's organization, an unknown one, a malformed id: 404.
    theirs = str(other_actor.team.organization_id)
    for ident in (theirs, str(uuid.uuid4()), "nope"):
        for path in (f"/api/organizations/{ident}/", f"/api/organizations/{ident}/projects/"):
            missing_org = await client.get(path, headers=actor.headers)
            assert missing_org.status_code == 404, path
            assert missing_org.json()["code"] == "not_found"


async def test_a_scoped_key_sees_only_what_it_reaches(
    client: httpx.AsyncClient, actor: Actor, other_actor: Actor, db: AsyncSession
) -> None:
    second = await second_team(db, actor)
    scoped = await create_personal_api_key(db, actor.user, scopes=["*"], scoped_teams=[second])
    await db.commit()
    headers = {"Authorization": f"Bearer {scoped}"}
    me = (await client.get("/api/users/@me/", headers=headers)).json()
    assert me["team"]["id"] == second
    assert [t["id"] for t in me["organization"]["teams"]] == [second]
    projects = await client.get("/api/projects/", headers=headers)
    assert [p["id"] for p in projects.json()["results"]] == [second]
    assert (await client.get("/api/projects/@current/", headers=headers)).json()["id"] == second
    refused = await client.get(f"/api/projects/{actor.team.id}/", headers=headers)
    assert refused.status_code == 403
    assert refused.json()["detail"] == "You don't have access to the project."

    # A key limited to another organization reaches nothing of this one.
    other_org = await create_personal_api_key(db, other_actor.user, scopes=["*"])
    await db.commit()
    theirs = {"Authorization": f"Bearer {other_org}"}
    assert (await client.get("/api/organizations/", headers=theirs)).json()["count"] == 1


async def test_a_key_limited_to_organizations(
    client: httpx.AsyncClient, actor: Actor, db: AsyncSession
) -> None:
    # The user joins a second organization; the key is limited to the first.
    elsewhere = await make_actor(db)
    await add_member(db, actor.user, elsewhere.team, 1)
    _, key = await new_personal_api_key(
        db, actor.user, scopes=["*"], scoped_organizations=[str(actor.team.organization_id)]
    )
    await db.commit()
    headers = {"Authorization": f"Bearer {key}"}
    assert (await client.get("/api/organizations/", headers=actor.headers)).json()["count"] == 2
    listed = await client.get("/api/organizations/", headers=headers)
    assert [o["id"] for o in listed.json()["results"]] == [str(actor.team.organization_id)]
    refused = await client.get(f"/api/organizations/{elsewhere.team.organization_id}/", headers=headers)
    assert refused.status_code == 403
    assert refused.json()["detail"] == (
        f"API key does not have access to the requested organization: ID {elsewhere.team.organization_id}."
    )


async def test_set_current_team_moves_current_everywhere(
    client: httpx.AsyncClient, actor: Actor, other_actor: Actor, db: AsyncSession
) -> None:
    second = await second_team(db, actor)
    assert (await client.get("/api/projects/@current/", headers=actor.headers)).json()["id"] == actor.team.id
    moved = await client.patch("/api/users/@me/", json={"set_current_team": second}, headers=actor.headers)
    assert moved.status_code == 200, moved.text
    assert moved.json()["team"]["id"] == second
    stored = (await db.execute(select(User.current_team_id).where(User.id == actor.user.id))).scalar_one()
    assert stored == second
    assert (await client.get("/api/environments/@current/", headers=actor.headers)).json()["id"] == second
    # `current_team` is taken as the same, as a string too.
    back = await client.patch(
        "/api/users/@me/", json={"current_team": str(actor.team.id)}, headers=actor.headers
    )
    assert back.json()["team"]["id"] == actor.team.id
    for value in (other_actor.team.id, 999_999_999, "x"):
        refused = await client.patch(
            "/api/users/@me/", json={"set_current_team": value}, headers=actor.headers
        )
        assert refused.status_code == 400
        assert refused.json() == {
            "type": "validation_error",
            "code": "does_not_exist",
            "detail": f"Object with id={value} does not exist.",
            "attr": "set_current_team",
        }
    # Nothing to change: the user as it is.
    assert (await client.patch("/api/users/@me/", json={}, headers=actor.headers)).json()["team"]["id"] == (
        actor.team.id
    )


@pytest.mark.parametrize("prefix", ["projects", "environments"])
async def test_current_on_every_route_family(
    client: httpx.AsyncClient, actor: Actor, db: AsyncSession, prefix: str
) -> None:
    """`@current` works wherever a project id does: one request per family of routes."""
    dashboard = await new_dashboard(client, actor, name="Current")
    base = f"/api/{prefix}/@current"
    h = actor.headers
    insight = await client.post(f"{base}/insights/", json={"name": "i", "query": trends()}, headers=h)
    assert insight.status_code == 201, insight.text
    checks = {
        f"{base}/": actor.team.id,
        f"{base}/dashboards/": None,
        f"{base}/dashboards/{dashboard}/": dashboard,
        f"{base}/insights/{insight.json()['id']}/": insight.json()["id"],
        f"{base}/data_color_themes/": None,
        f"{base}/dashboards/{dashboard}/sharing/": None,
    }
    for path, ident in checks.items():
        got = await client.get(path, headers=h)
        assert got.status_code == 200, (path, got.text)
        if ident is not None:
            assert got.json()["id"] == ident, path
    listed = (await client.get(f"{base}/dashboards/", headers=h)).json()
    assert [d["id"] for d in listed["results"]] == [dashboard]
    query = await client.post(f"{base}/query/", json={"query": trends()}, headers=h)
    assert query.status_code == 200, query.text
    stream = await client.get(f"{base}/dashboards/{dashboard}/stream_tiles/", headers=h)
    assert stream.status_code == 200
    assert '"complete"' in stream.text


async def test_current_for_a_scoped_key_and_for_none(
    client: httpx.AsyncClient, actor: Actor, db: AsyncSession
) -> None:
    second = await second_team(db, actor)
    user = (await db.execute(select(User).where(User.id == actor.user.id))).scalar_one()
    user.current_team_id = actor.team.id
    scoped = await create_personal_api_key(db, actor.user, scopes=["*"], scoped_teams=[second])
    await db.commit()
    # The user's current team is outside the key's teams: the key's first team.
    scoped_headers = {"Authorization": f"Bearer {scoped}"}
    made = await client.post(
        "/api/environments/@current/dashboards/", json={"name": "s"}, headers=scoped_headers
    )
    assert made.status_code == 201
    assert (
        await client.get(f"/api/environments/{second}/dashboards/{made.json()['id']}/", headers=actor.headers)
    ).status_code == 200
    assert (await client.get("/api/projects/@current/", headers=scoped_headers)).json()["id"] == second
    assert (await client.get("/api/projects/@current/", headers=actor.headers)).json()["id"] == actor.team.id
    # A user in no organization: `@current` is no project of theirs.
    lonely = await make_actor(db)
    await db.execute(delete(OrganizationMembership).where(OrganizationMembership.user_id == lonely.user.id))
    await db.commit()
    refused = await client.get("/api/projects/@current/dashboards/", headers=lonely.headers)
    assert refused.status_code == 403
    assert refused.json()["detail"] == "You don't have access to the project."
    assert (await client.get("/api/organizations/@current/", headers=lonely.headers)).status_code == 404
    me = (await client.get("/api/users/@me/", headers=lonely.headers)).json()
    assert (me["team"], me["organization"], me["organizations"]) == (None, None, [])
    # An unknown key on `@current`: 401 as anywhere.
    bad = await client.get("/api/projects/@current/", headers={"Authorization": "Bearer phx_nope"})
    assert bad.status_code == 401
