"""`/api/personal_api_keys/`: the caller's own keys, as PostHog; a key never makes or changes a key wider than
itself; a rolled or deleted key stops working at once (the principal cache included) and ends its sessions."""

from typing import Any

import httpx
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts import add_member, get_or_create_team
from app.auth.sessions import COOKIE_NAME
from app.models import MEMBER, OrganizationMembership, ViewerSession
from tests.factories import Actor, make_actor

BASE = "/api/personal_api_keys/"
KEY_FIELDS = {
    "id",
    "label",
    "value",
    "mask_value",
    "created_at",
    "last_used_at",
    "user_id",
    "scopes",
    "scoped_teams",
    "scoped_organizations",
    "last_rolled_at",
}


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def denied(detail: str) -> dict[str, Any]:
    return {"type": "authentication_error", "code": "permission_denied", "detail": detail, "attr": None}


def invalid(attr: str | None, detail: str, code: str = "invalid_input") -> dict[str, Any]:
    return {"type": "validation_error", "code": code, "detail": detail, "attr": attr}


async def create(client: httpx.AsyncClient, headers: dict[str, str], **body: Any) -> httpx.Response:
    return await client.post(BASE, json={"label": "k", "scopes": ["dashboard:read"], **body}, headers=headers)


async def test_create_list_retrieve_and_current(
    client: httpx.AsyncClient, actor: Actor, other_actor: Actor
) -> None:
    legacy_id = (await client.get(f"{BASE}@current/", headers=actor.headers)).json()["id"]
    made = await create(client, actor.headers, label="CI", scopes=["dashboard:read", "insight:write"])
    assert made.status_code == 201, made.text
    body = made.json()
    assert set(body) == KEY_FIELDS
    value = body["value"]
    assert value.startswith("phx_") and body["mask_value"] == f"phx_...{value[-4:]}"
    assert (body["label"], body["scopes"], body["scoped_teams"], body["scoped_organizations"]) == (
        "CI",
        ["dashboard:read", "insight:write"],
        [],
        [],
    )
    assert (body["user_id"], body["last_used_at"], body["last_rolled_at"]) == (actor.user.id, None, None)
    # The new key works, with its scopes.
    assert (await client.get(actor.url("dashboards/"), headers=bearer(value))).status_code == 200
    assert (await client.get(actor.url("data_color_themes/"), headers=bearer(value))).status_code == 403

    listed = await client.get(BASE, headers=actor.headers)
    assert listed.status_code == 200
    assert [k["id"] for k in listed.json()] == [body["id"], legacy_id]  # newest first
    assert len(listed.json()) == 2 and all(k["value"] is None for k in listed.json())
    got = await client.get(f"{BASE}{body['id']}/", headers=actor.headers)
    # As created, without its value, and used since.
    assert got.json() == body | {"value": None, "last_used_at": got.json()["last_used_at"]}
    assert got.json()["last_used_at"] is not None
    # Another user's key is not found; nor an unknown one.
    for key_id in (body["id"], "nope"):
        assert (await client.get(f"{BASE}{key_id}/", headers=other_actor.headers)).status_code == 404
    assert [k["user_id"] for k in (await client.get(BASE, headers=other_actor.headers)).json()] == [
        other_actor.user.id
    ]

    # `@current`: the key making the request, whatever its scopes (with or without the trailing slash).
    for path in (f"{BASE}@current/", f"{BASE}@current"):
        current = await client.get(path, headers=bearer(value))
        assert current.status_code == 200, current.text
        assert current.json()["id"] == body["id"] and current.json()["value"] is None
    legacy = (await client.get(f"{BASE}@current/", headers=actor.headers)).json()
    assert legacy["scopes"] == ["*"]


async def test_bad_input_is_400(client: httpx.AsyncClient, actor: Actor) -> None:
    cases = [
        ({"scopes": ["*"]}, invalid("label", "This field is required.", "required")),
        ({"label": " ", "scopes": ["*"]}, invalid("label", "This field may not be blank.", "blank")),
        (
            {"label": "x" * 41, "scopes": ["*"]},
            invalid("label", "Ensure this field has no more than 40 characters.", "max_length"),
        ),
        ({"label": "k"}, invalid("scopes", "This field is required.", "required")),
        ({"label": "k", "scopes": []}, invalid("scopes", "This list may not be empty.", "empty")),
        ({"label": "k", "scopes": ["dashboard:admin"]}, invalid("scopes", "Invalid scope: dashboard:admin")),
        ({"label": "k", "scopes": ["nothing:read"]}, invalid("scopes", "Invalid scope: nothing:read")),
        (
            {"label": "k", "scopes": ["*"], "scoped_teams": [999_999_999]},
            invalid("scoped_teams", "You must be a member of all teams that you are scoping the key to."),
        ),
        (
            {"label": "k", "scopes": ["*"], "scoped_organizations": ["nope"]},
            invalid("scoped_organizations", "Invalid organization UUID"),
        ),
        (
            {"label": "k", "scopes": ["*"], "scoped_organizations": ["00000000-0000-0000-0000-000000000001"]},
            invalid(
                "scoped_organizations",
                "You must be a member of all organizations that you are scoping the key to.",
            ),
        ),
        ({"label": "k", "scopes": "*"}, invalid("scopes", "Expected a list of items.", "not_a_list")),
    ]
    for body, expected in cases:
        response = await client.post(BASE, json=body, headers=actor.headers)
        assert response.status_code == 400, body
        assert response.json() == expected, body
    assert len((await client.get(BASE, headers=actor.headers)).json()) == 1
    key_id = (await client.get(f"{BASE}@current/", headers=actor.headers)).json()["id"]
    for body, expected in (
        ({"label": None}, invalid("label", "This field may not be null.", "null")),
        ({"scopes": []}, invalid("scopes", "This list may not be empty.", "empty")),
    ):
        response = await client.patch(f"{BASE}{key_id}/", json=body, headers=actor.headers)
        assert response.status_code == 400 and response.json() == expected, body


async def test_at_most_ten_keys(client: httpx.AsyncClient, actor: Actor) -> None:
    for n in range(9):
        assert (await create(client, actor.headers, label=f"k{n}")).status_code == 201
    refused = await create(client, actor.headers, label="eleventh")
    assert refused.status_code == 400
    assert refused.json() == invalid(
        None, "You can only have 10 personal API keys. Remove an existing key before creating a new one."
    )
    assert len((await client.get(BASE, headers=actor.headers)).json()) == 10


async def test_scopes_of_the_keys_api(client: httpx.AsyncClient, actor: Actor, db: AsyncSession) -> None:
    reader = await make_actor(db, team=actor.team, scopes=["personal_api_key:read"])
    assert (await client.get(BASE, headers=reader.headers)).status_code == 200
    refused = await create(client, reader.headers)
    assert refused.status_code == 403
    assert refused.json() == denied("API key missing required scope 'personal_api_key:write'")
    own = (await client.get(f"{BASE}@current/", headers=reader.headers)).json()["id"]
    for method, path in (
        ("PATCH", f"{BASE}{own}/"),
        ("DELETE", f"{BASE}{own}/"),
        ("POST", f"{BASE}{own}/roll/"),
    ):
        response = await client.request(method, path, json={}, headers=reader.headers)
        assert response.status_code == 403, (method, path)
    nothing = await make_actor(db, team=actor.team, scopes=["dashboard:read"])
    assert (await client.get(BASE, headers=nothing.headers)).json() == denied(
        "API key missing required scope 'personal_api_key:read'"
    )
    assert (await client.get(f"{BASE}@current/", headers=nothing.headers)).status_code == 200


async def test_a_key_never_makes_a_key_wider_than_itself(
    client: httpx.AsyncClient, actor: Actor, db: AsyncSession
) -> None:
    second = (await get_or_create_team(db, actor.user, "second")).id
    third = (await get_or_create_team(db, actor.user, "third")).id
    await db.commit()
    org = str(actor.team.organization_id)
    limited = (
        await create(
            client,
            actor.headers,
            scopes=["personal_api_key:write", "dashboard:write"],
            scoped_teams=[second, third],
        )
    ).json()
    h = bearer(limited["value"])
    for body, detail in (
        ({"scopes": ["*"]}, "A key without the '*' scope cannot give a key the '*' scope."),
        ({"scopes": ["insight:read"]}, "A key cannot give a key a scope it does not have: 'insight:read'."),
        (
            {"scopes": ["dashboard:read"]},
            "A key limited to some projects cannot give a key access to all projects.",
        ),
        (
            {"scopes": ["dashboard:read"], "scoped_teams": [second, actor.team.id]},
            f"A key cannot give a key access to a project it cannot reach: ID {actor.team.id}.",
        ),
        (
            {"scopes": ["dashboard:read"], "scoped_organizations": [org]},
            "A key limited to some projects cannot give a key access to all projects.",
        ),
    ):
        refused = await create(client, h, **body)
        assert refused.status_code == 403, body
        assert refused.json() == denied(detail), body
    # Narrower is fine: fewer scopes (write implies read), fewer teams.
    narrower = await create(client, h, scopes=["dashboard:read"], scoped_teams=[third])
    assert narrower.status_code == 201, narrower.text
    assert (narrower.json()["scopes"], narrower.json()["scoped_teams"]) == (["dashboard:read"], [third])

    # Changing: neither the limited key's own limits nor another key may widen.
    widen_self = await client.patch(f"{BASE}@current/", json={"scoped_teams": []}, headers=h)
    assert widen_self.status_code == 403
    assert widen_self.json() == denied(
        "A key limited to some projects cannot give a key access to all projects."
    )
    widen_other = await client.patch(
        f"{BASE}{narrower.json()['id']}/", json={"scopes": ["insight:write"]}, headers=h
    )
    assert widen_other.json() == denied("A key cannot give a key a scope it does not have: 'insight:write'.")
    renamed = await client.patch(f"{BASE}{narrower.json()['id']}/", json={"label": "renamed"}, headers=h)
    assert renamed.status_code == 200 and renamed.json()["label"] == "renamed"
    # A wider key (the owner's `*` key) can be neither changed, rolled nor deleted by it.
    owner_key = (await client.get(f"{BASE}@current/", headers=actor.headers)).json()["id"]
    for method, path in (
        ("PATCH", f"{BASE}{owner_key}/"),
        ("POST", f"{BASE}{owner_key}/roll/"),
        ("DELETE", f"{BASE}{owner_key}/"),
    ):
        response = await client.request(method, path, json={"label": "x"}, headers=h)
        assert response.status_code == 403, (method, path)
        assert response.json() == denied("A key without the '*' scope cannot give a key the '*' scope."), path
    assert (await client.get(actor.url("dashboards/"), headers=actor.headers)).status_code == 200

    # A key limited to an organization may make keys limited to it, or to its teams, but not beyond.
    org_key = (await create(client, actor.headers, scopes=["*"], scoped_organizations=[org])).json()
    oh = bearer(org_key["value"])
    assert (await create(client, oh, scopes=["*"], scoped_teams=[second])).status_code == 201
    assert (await create(client, oh, scopes=["*"], scoped_organizations=[org])).status_code == 201
    unlimited = await create(client, oh, scopes=["*"])
    assert unlimited.json() == denied(
        "A key limited to some organizations cannot give a key access to all organizations."
    )


async def test_patch_changes_what_the_key_may_do_at_once(client: httpx.AsyncClient, actor: Actor) -> None:
    made = (await create(client, actor.headers, scopes=["dashboard:read"])).json()
    h = bearer(made["value"])
    assert (await client.get(actor.url("dashboards/"), headers=h)).status_code == 200  # now remembered
    changed = await client.patch(
        f"{BASE}{made['id']}/", json={"scopes": ["insight:read"], "label": "renamed"}, headers=actor.headers
    )
    assert changed.status_code == 200
    assert (changed.json()["label"], changed.json()["scopes"]) == ("renamed", ["insight:read"])
    assert (await client.get(actor.url("dashboards/"), headers=h)).status_code == 403
    assert (await client.get(actor.url("insights/"), headers=h)).status_code == 200


async def test_roll_gives_a_new_value_and_the_old_one_stops_at_once(
    client: httpx.AsyncClient, actor: Actor, db: AsyncSession
) -> None:
    made = (await create(client, actor.headers, scopes=["*"])).json()
    old = made["value"]
    # Used on a team and signed in: both remembered.
    assert (await client.get(actor.url("dashboards/"), headers=bearer(old))).status_code == 200
    signed_in = await client.post("/sign-in", data={"personal_api_key": old})
    assert signed_in.status_code == 303 and client.cookies.get(COOKIE_NAME)
    assert (await client.get(actor.url("dashboards/"))).status_code == 200

    rolled = await client.post(f"{BASE}{made['id']}/roll/", headers=actor.headers)
    assert rolled.status_code == 200, rolled.text
    new = rolled.json()["value"]
    assert new != old and rolled.json()["mask_value"] == f"phx_...{new[-4:]}"
    assert rolled.json()["last_rolled_at"] is not None and rolled.json()["id"] == made["id"]
    # The old value is refused at once, on a team and elsewhere; the session signed in with it has ended.
    for path in (actor.url("dashboards/"), "/api/users/@me/"):
        refused = await client.get(path, headers=bearer(old))
        assert refused.status_code == 401, path
        assert (
            refused.json()["detail"] == "Personal API key found in request Authorization header is invalid."
        )
    assert (await client.get(actor.url("dashboards/"))).status_code == 401
    sessions = select(func.count()).select_from(ViewerSession).where(ViewerSession.key_id == made["id"])
    assert (await db.execute(sessions)).scalar_one() == 0
    assert (await client.get(actor.url("dashboards/"), headers=bearer(new))).status_code == 200
    # A key rolls itself through `@current`.
    again = await client.post(f"{BASE}@current/roll/", headers=bearer(new))
    assert again.status_code == 200 and again.json()["id"] == made["id"]
    assert (await client.get(actor.url("dashboards/"), headers=bearer(new))).status_code == 401


async def test_delete_stops_the_key_and_ends_its_sessions(
    client: httpx.AsyncClient, actor: Actor, other_actor: Actor, db: AsyncSession
) -> None:
    made = (await create(client, actor.headers, scopes=["*"])).json()
    value = made["value"]
    assert (await client.get(actor.url("dashboards/"), headers=bearer(value))).status_code == 200
    assert (await client.post("/sign-in", data={"personal_api_key": value})).status_code == 303
    assert (await client.delete(f"{BASE}{made['id']}/", headers=other_actor.headers)).status_code == 404
    gone = await client.delete(f"{BASE}{made['id']}/", headers=actor.headers)
    assert gone.status_code == 204 and gone.content == b""
    assert (await client.get(actor.url("dashboards/"), headers=bearer(value))).status_code == 401
    assert (await client.get(actor.url("dashboards/"))).status_code == 401
    sessions = select(func.count()).select_from(ViewerSession).where(ViewerSession.key_id == made["id"])
    assert (await db.execute(sessions)).scalar_one() == 0
    assert (await client.get(f"{BASE}{made['id']}/", headers=actor.headers)).status_code == 404


async def test_a_label_change_keeps_limits_the_user_has_since_lost(
    client: httpx.AsyncClient, actor: Actor, db: AsyncSession
) -> None:
    elsewhere = await make_actor(db)
    await add_member(db, actor.user, elsewhere.team, MEMBER)
    await db.commit()
    made = (await create(client, actor.headers, scopes=["*"], scoped_teams=[elsewhere.team.id])).json()
    await db.execute(
        delete(OrganizationMembership).where(
            OrganizationMembership.user_id == actor.user.id,
            OrganizationMembership.organization_id == elsewhere.team.organization_id,
        )
    )
    await db.commit()
    renamed = await client.patch(f"{BASE}{made['id']}/", json={"label": "renamed"}, headers=actor.headers)
    assert renamed.status_code == 200, renamed.text
    assert (renamed.json()["label"], renamed.json()["scoped_teams"]) == ("renamed", [elsewhere.team.id])
    # Given again, the limit is checked as on create.
    again = await client.patch(
        f"{BASE}{made['id']}/", json={"scoped_teams": [elsewhere.team.id]}, headers=actor.headers
    )
    assert again.status_code == 400
    assert again.json() == invalid(
        "scoped_teams", "You must be a member of all teams that you are scoping the key to."
    )
    # A key limited to the user's organization may not change it: that team is beyond its reach.
    org_key = (
        await create(
            client, actor.headers, scopes=["*"], scoped_organizations=[str(actor.team.organization_id)]
        )
    ).json()
    refused = await client.patch(
        f"{BASE}{made['id']}/", json={"label": "x"}, headers=bearer(org_key["value"])
    )
    assert refused.status_code == 403
    assert refused.json() == denied(
        f"A key cannot give a key access to a project it cannot reach: ID {elsewhere.team.id}."
    )
