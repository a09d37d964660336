"""Dashboard collaborators over HTTP (DESIGN.md "People and access"; PostHog's legacy restriction model).

Collaborators exist only on dashboards with restriction level 37; the creator or a team admin manages them.
"""

from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts import create_personal_api_key
from app.models import ADMIN, MEMBER, OWNER
from tests.factories import Actor, make_member
from tests.resources import USER_BASIC_KEYS

COLLABORATOR_KEYS = {"id", "dashboard_id", "user", "level", "added_at", "updated_at"}
CANNOT_EDIT = "You don't have edit permissions for this dashboard."
LOWEST_LEVEL = "Cannot add collaborators to a dashboard on the lowest restriction level."
NO_ACCESS = "Cannot add collaborators that have no access to the project."
INHERENT = (
    "Cannot add collaborators that already have inherent access (the dashboard owner or a project admin)."
)


# --- helpers ----------------------------------------------------------------------------------------------


async def create_dashboard(client: httpx.AsyncClient, actor: Actor, restriction_level: int = 37) -> int:
    response = await client.post(
        actor.url("dashboards/"),
        json={"name": "Locked", "restriction_level": restriction_level},
        headers=actor.headers,
    )
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def collaborators_url(actor: Actor, dashboard_id: int, user_uuid: object = None) -> str:
    suffix = f"{user_uuid}/" if user_uuid is not None else ""
    return actor.url(f"dashboards/{dashboard_id}/collaborators/{suffix}")


async def add(
    client: httpx.AsyncClient, caller: Actor, dashboard_id: int, user: Actor | str, level: Any = 37
) -> httpx.Response:
    user_uuid = user if isinstance(user, str) else str(user.user.uuid)
    return await client.post(
        collaborators_url(caller, dashboard_id),
        json={"user_uuid": user_uuid, "level": level},
        headers=caller.headers,
    )


async def remove(
    client: httpx.AsyncClient, caller: Actor, dashboard_id: int, user: Actor | str
) -> httpx.Response:
    user_uuid = user if isinstance(user, str) else user.user.uuid
    return await client.delete(collaborators_url(caller, dashboard_id, user_uuid), headers=caller.headers)


async def listed(client: httpx.AsyncClient, caller: Actor, dashboard_id: int) -> list[dict[str, Any]]:
    response = await client.get(collaborators_url(caller, dashboard_id), headers=caller.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert isinstance(body, list), body
    return body


async def listed_uuids(client: httpx.AsyncClient, caller: Actor, dashboard_id: int) -> list[str]:
    return [c["user"]["uuid"] for c in await listed(client, caller, dashboard_id)]


def assert_error(
    response: httpx.Response, status: int, *, detail: str | None = None, attr: str | None = None
) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"type", "code", "detail", "attr"}, body
    assert body["attr"] == attr, body
    if detail is not None:
        assert body["detail"] == detail, body


async def can_edit(client: httpx.AsyncClient, who: Actor, dashboard_id: int) -> bool:
    response = await client.patch(
        who.url(f"dashboards/{dashboard_id}/"), json={"description": "edit attempt"}, headers=who.headers
    )
    assert response.status_code in (200, 403), response.text
    return response.status_code == 200


# --- list ---------------------------------------------------------------------------------------------------


async def test_list_is_empty_at_first(client: httpx.AsyncClient, actor: Actor) -> None:
    dashboard_id = await create_dashboard(client, actor)

    assert await listed(client, actor, dashboard_id) == []


async def test_list_is_a_plain_array_of_collaborators(
    client: httpx.AsyncClient, actor: Actor, db: AsyncSession
) -> None:
    first = await make_member(db, actor.team)
    second = await make_member(db, actor.team)
    dashboard_id = await create_dashboard(client, actor)
    assert (await add(client, actor, dashboard_id, first)).status_code == 201
    assert (await add(client, actor, dashboard_id, second)).status_code == 201

    # Requests in a test share one transaction, so both rows have the same added_at: order by user id here.
    collaborators = sorted(await listed(client, actor, dashboard_id), key=lambda c: c["user"]["id"])

    assert [c["user"]["uuid"] for c in collaborators] == [str(first.user.uuid), str(second.user.uuid)]
    for collaborator, member in zip(collaborators, (first, second), strict=True):
        assert set(collaborator) == COLLABORATOR_KEYS
        assert set(collaborator["user"]) == USER_BASIC_KEYS
        assert collaborator["dashboard_id"] == dashboard_id
        assert collaborator["level"] == 37
        assert collaborator["user"]["id"] == member.user.id
        assert collaborator["user"]["email"] == member.user.email
        assert collaborator["added_at"] is not None
        assert collaborator["updated_at"] is not None
    assert collaborators[0]["id"] != collaborators[1]["id"]


async def test_any_member_with_read_access_can_list(
    client: httpx.AsyncClient, actor: Actor, db: AsyncSession
) -> None:
    collaborator = await make_member(db, actor.team)
    reader = await make_member(db, actor.team, scopes=["dashboard:read"])
    dashboard_id = await create_dashboard(client, actor)
    assert (await add(client, actor, dashboard_id, collaborator)).status_code == 201

    assert await listed_uuids(client, reader, dashboard_id) == [str(collaborator.user.uuid)]


async def test_list_of_a_missing_deleted_or_foreign_dashboard_is_404(
    client: httpx.AsyncClient, actor: Actor, other_actor: Actor
) -> None:
    deleted_id = await create_dashboard(client, actor)
    patched = await client.patch(
        actor.url(f"dashboards/{deleted_id}/"), json={"deleted": True}, headers=actor.headers
    )
    assert patched.status_code == 200
    foreign_id = await create_dashboard(client, other_actor)

    for dashboard_id in (987654321, deleted_id, foreign_id):
        response = await client.get(collaborators_url(actor, dashboard_id), headers=actor.headers)
        assert_error(response, 404, detail="Not found.")
    response = await client.get(actor.url("dashboards/abc/collaborators/"), headers=actor.headers)
    assert_error(response, 404)


async def test_non_member_gets_403_on_my_team_urls(
    client: httpx.AsyncClient, actor: Actor, other_actor: Actor, db: AsyncSession
) -> None:
    member = await make_member(db, actor.team)
    dashboard_id = await create_dashboard(client, actor)
    assert (await add(client, actor, dashboard_id, member)).status_code == 201

    for response in (
        await client.get(collaborators_url(actor, dashboard_id), headers=other_actor.headers),
        await client.post(
            collaborators_url(actor, dashboard_id),
            json={"user_uuid": str(other_actor.user.uuid), "level": 37},
            headers=other_actor.headers,
        ),
        await client.delete(
            collaborators_url(actor, dashboard_id, member.user.uuid), headers=other_actor.headers
        ),
    ):
        assert_error(response, 403, detail="You don't have access to the project.")
    assert await listed_uuids(client, actor, dashboard_id) == [str(member.user.uuid)]


async def test_without_a_key_is_401(client: httpx.AsyncClient, actor: Actor) -> None:
    dashboard_id = await create_dashboard(client, actor)

    assert_error(await client.get(collaborators_url(actor, dashboard_id)), 401)
    response = await client.post(
        collaborators_url(actor, dashboard_id), json={"user_uuid": str(actor.user.uuid), "level": 37}
    )
    assert_error(response, 401)


# --- add ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("manager_level", ["creator", ADMIN, OWNER])
async def test_creator_or_admin_adds_a_collaborator(
    client: httpx.AsyncClient, actor: Actor, db: AsyncSession, manager_level: object
) -> None:
    creator = await make_member(db, actor.team, level=MEMBER)
    manager = (
        creator if manager_level == "creator" else await make_member(db, actor.team, level=int(manager_level))
    )
    member = await make_member(db, actor.team, level=MEMBER)
    dashboard_id = await create_dashboard(client, creator)
    assert not await can_edit(client, member, dashboard_id)

    response = await add(client, manager, dashboard_id, member)

    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body) == COLLABORATOR_KEYS
    assert body["dashboard_id"] == dashboard_id
    assert body["level"] == 37
    assert body["user"]["uuid"] == str(member.user.uuid)
    assert set(body["user"]) == USER_BASIC_KEYS
    assert await listed(client, creator, dashboard_id) == [body]
    assert await can_edit(client, member, dashboard_id)


async def test_cannot_add_to_an_unrestricted_dashboard(
    client: httpx.AsyncClient, actor: Actor, db: AsyncSession
) -> None:
    member = await make_member(db, actor.team)
    dashboard_id = await create_dashboard(client, actor, restriction_level=21)

    assert_error(await add(client, actor, dashboard_id, member), 400, detail=LOWEST_LEVEL)
    assert await listed(client, actor, dashboard_id) == []


async def test_cannot_add_the_creator(client: httpx.AsyncClient, actor: Actor, db: AsyncSession) -> None:
    creator = await make_member(db, actor.team, level=MEMBER)
    dashboard_id = await create_dashboard(client, creator)

    assert_error(await add(client, actor, dashboard_id, creator), 400, detail=INHERENT)
    assert_error(await add(client, creator, dashboard_id, creator), 400, detail=INHERENT)
    assert await listed(client, actor, dashboard_id) == []


@pytest.mark.parametrize("level", [ADMIN, OWNER])
async def test_cannot_add_an_admin(
    client: httpx.AsyncClient, actor: Actor, db: AsyncSession, level: int
) -> None:
    admin = await make_member(db, actor.team, level=level)
    dashboard_id = await create_dashboard(client, actor)

    assert_error(await add(client, actor, dashboard_id, admin), 400, detail=INHERENT)
    assert await listed(client, actor, dashboard_id) == []


async def test_cannot_add_a_non_member(client: httpx.AsyncClient, actor: Actor, other_actor: Actor) -> None:
    dashboard_id = await create_dashboard(client, actor)

    assert_error(await add(client, actor, dashboard_id, other_actor), 400, detail=NO_ACCESS)
    assert await listed(client, actor, dashboard_id) == []
    # ... and the outsider still cannot see the team.
    response = await client.get(actor.url(f"dashboards/{dashboard_id}/"), headers=other_actor.headers)
    assert response.status_code == 403


async def test_cannot_add_an_unknown_user(client: httpx.AsyncClient, actor: Actor) -> None:
    dashboard_id = await create_dashboard(client, actor)

    response = await add(client, actor, dashboard_id, "00000000-0000-4000-8000-000000000000")

    assert response.status_code == 400, response.text
    assert response.json()["type"] == "validation_error"
    assert await listed(client, actor, dashboard_id) == []


async def test_deactivated_users_cannot_be_added_and_are_not_listed(
    client: httpx.AsyncClient, actor: Actor, db: AsyncSession
) -> None:
    leaver = await make_member(db, actor.team)
    listed_leaver = await make_member(db, actor.team)
    dashboard_id = await create_dashboard(client, actor)
    assert (await add(client, actor, dashboard_id, listed_leaver)).status_code == 201
    for member in (leaver, listed_leaver):
        member.user.is_active = False
    await db.commit()

    response = await add(client, actor, dashboard_id, leaver)

    assert response.status_code == 400, response.text
    assert response.json()["type"] == "validation_error"
    assert await listed(client, actor, dashboard_id) == []


async def test_cannot_add_an_existing_collaborator_twice(
    client: httpx.AsyncClient, actor: Actor, db: AsyncSession
) -> None:
    member = await make_member(db, actor.team)
    dashboard_id = await create_dashboard(client, actor)
    first = await add(client, actor, dashboard_id, member)
    assert first.status_code == 201

    again = await add(client, actor, dashboard_id, member)

    assert again.status_code == 400, again.text
    assert again.json()["type"] == "validation_error"
    assert await listed(client, actor, dashboard_id) == [first.json()]


@pytest.mark.parametrize(
    ("body", "attr"),
    [
        ({"user_uuid": "not-a-uuid", "level": 37}, "user_uuid"),
        ({"level": 37}, "user_uuid"),
        ({"user_uuid": "00000000-0000-4000-8000-000000000000"}, "level"),
        ({"user_uuid": "00000000-0000-4000-8000-000000000000", "level": 21}, "level"),
        ({"user_uuid": "00000000-0000-4000-8000-000000000000", "level": "edit"}, "level"),
    ],
)
async def test_add_validates_the_body(
    client: httpx.AsyncClient, actor: Actor, body: dict[str, Any], attr: str
) -> None:
    dashboard_id = await create_dashboard(client, actor)

    response = await client.post(collaborators_url(actor, dashboard_id), json=body, headers=actor.headers)

    assert_error(response, 400, attr=attr)


async def test_add_with_level_21_is_refused_for_a_real_member(
    client: httpx.AsyncClient, actor: Actor, db: AsyncSession
) -> None:
    member = await make_member(db, actor.team)
    dashboard_id = await create_dashboard(client, actor)

    assert_error(await add(client, actor, dashboard_id, member, level=21), 400, attr="level")
    assert await listed(client, actor, dashboard_id) == []


async def test_plain_member_cannot_add(client: httpx.AsyncClient, actor: Actor, db: AsyncSession) -> None:
    member = await make_member(db, actor.team)
    other = await make_member(db, actor.team)
    dashboard_id = await create_dashboard(client, actor)

    assert_error(await add(client, member, dashboard_id, other), 403, detail=CANNOT_EDIT)
    assert_error(await add(client, member, dashboard_id, member), 403, detail=CANNOT_EDIT)
    assert await listed(client, actor, dashboard_id) == []


async def test_collaborator_cannot_manage_collaborators(
    client: httpx.AsyncClient, actor: Actor, db: AsyncSession
) -> None:
    collaborator = await make_member(db, actor.team)
    other = await make_member(db, actor.team)
    dashboard_id = await create_dashboard(client, actor)
    assert (await add(client, actor, dashboard_id, collaborator)).status_code == 201

    assert_error(await add(client, collaborator, dashboard_id, other), 403, detail=CANNOT_EDIT)
    assert_error(await remove(client, collaborator, dashboard_id, collaborator), 403, detail=CANNOT_EDIT)
    assert await listed_uuids(client, actor, dashboard_id) == [str(collaborator.user.uuid)]


async def test_cannot_add_on_a_missing_or_foreign_dashboard(
    client: httpx.AsyncClient, actor: Actor, other_actor: Actor, db: AsyncSession
) -> None:
    member = await make_member(db, actor.team)
    foreign_id = await create_dashboard(client, other_actor)

    assert_error(await add(client, actor, 987654321, member), 404)
    assert_error(await add(client, actor, foreign_id, member), 404)
    assert await listed(client, other_actor, foreign_id) == []


async def test_read_scope_can_list_but_not_manage(
    client: httpx.AsyncClient, actor: Actor, db: AsyncSession
) -> None:
    member = await make_member(db, actor.team)
    dashboard_id = await create_dashboard(client, actor)
    assert (await add(client, actor, dashboard_id, member)).status_code == 201
    # The creator (an owner) with a read-only key: rights do not widen the key.
    read_key = await create_personal_api_key(db, actor.user, scopes=["dashboard:read"])
    await db.commit()
    reader = Actor(user=actor.user, team=actor.team, key=read_key)
    other = await make_member(db, actor.team)

    assert await listed_uuids(client, reader, dashboard_id) == [str(member.user.uuid)]
    missing_scope = "API key missing required scope 'dashboard:write'"
    assert_error(await add(client, reader, dashboard_id, other), 403, detail=missing_scope)
    assert_error(await remove(client, reader, dashboard_id, member), 403, detail=missing_scope)
    assert await listed_uuids(client, actor, dashboard_id) == [str(member.user.uuid)]


# --- remove -------------------------------------------------------------------------------------------------


async def test_remove_a_collaborator(client: httpx.AsyncClient, actor: Actor, db: AsyncSession) -> None:
    staying = await make_member(db, actor.team)
    leaving = await make_member(db, actor.team)
    dashboard_id = await create_dashboard(client, actor)
    for member in (staying, leaving):
        assert (await add(client, actor, dashboard_id, member)).status_code == 201
    assert await can_edit(client, leaving, dashboard_id)

    response = await remove(client, actor, dashboard_id, leaving)

    assert response.status_code == 204, response.text
    assert response.content == b""
    assert await listed_uuids(client, actor, dashboard_id) == [str(staying.user.uuid)]
    assert not await can_edit(client, leaving, dashboard_id)
    view = (await client.get(actor.url(f"dashboards/{dashboard_id}/"), headers=leaving.headers)).json()
    assert (view["effective_privilege_level"], view["user_access_level"]) == (21, "viewer")
    # Gone: removing again is 404, and adding again works.
    assert_error(await remove(client, actor, dashboard_id, leaving), 404)
    assert (await add(client, actor, dashboard_id, leaving)).status_code == 201


async def test_admin_removes_a_collaborator_without_a_trailing_slash(
    client: httpx.AsyncClient, actor: Actor, db: AsyncSession
) -> None:
    admin = await make_member(db, actor.team, level=ADMIN)
    member = await make_member(db, actor.team)
    dashboard_id = await create_dashboard(client, actor)
    assert (await add(client, actor, dashboard_id, member)).status_code == 201

    url = collaborators_url(admin, dashboard_id, member.user.uuid).rstrip("/")
    response = await client.delete(url, headers=admin.headers)

    assert response.status_code == 204, response.text
    assert await listed(client, actor, dashboard_id) == []


async def test_remove_unknown_is_404(client: httpx.AsyncClient, actor: Actor, db: AsyncSession) -> None:
    not_a_collaborator = await make_member(db, actor.team)
    dashboard_id = await create_dashboard(client, actor)

    assert_error(await remove(client, actor, dashboard_id, not_a_collaborator), 404)
    assert_error(await remove(client, actor, dashboard_id, "00000000-0000-4000-8000-000000000000"), 404)
    assert_error(await remove(client, actor, dashboard_id, "not-a-uuid"), 404)
    assert_error(await remove(client, actor, 987654321, not_a_collaborator), 404)


async def test_remove_only_touches_the_given_dashboard(
    client: httpx.AsyncClient, actor: Actor, db: AsyncSession
) -> None:
    member = await make_member(db, actor.team)
    first = await create_dashboard(client, actor)
    second = await create_dashboard(client, actor)
    for dashboard_id in (first, second):
        assert (await add(client, actor, dashboard_id, member)).status_code == 201

    assert (await remove(client, actor, first, member)).status_code == 204

    assert await listed(client, actor, first) == []
    assert await listed_uuids(client, actor, second) == [str(member.user.uuid)]


async def test_plain_member_cannot_remove(client: httpx.AsyncClient, actor: Actor, db: AsyncSession) -> None:
    collaborator = await make_member(db, actor.team)
    member = await make_member(db, actor.team)
    dashboard_id = await create_dashboard(client, actor)
    assert (await add(client, actor, dashboard_id, collaborator)).status_code == 201

    assert_error(await remove(client, member, dashboard_id, collaborator), 403, detail=CANNOT_EDIT)
    assert await listed_uuids(client, actor, dashboard_id) == [str(collaborator.user.uuid)]


async def test_remove_through_another_team_is_404(
    client: httpx.AsyncClient, actor: Actor, other_actor: Actor, db: AsyncSession
) -> None:
    member = await make_member(db, actor.team)
    dashboard_id = await create_dashboard(client, actor)
    assert (await add(client, actor, dashboard_id, member)).status_code == 201

    response = await client.delete(
        collaborators_url(other_actor, dashboard_id, member.user.uuid), headers=other_actor.headers
    )

    assert_error(response, 404)
    assert await listed_uuids(client, actor, dashboard_id) == [str(member.user.uuid)]
