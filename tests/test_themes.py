"""Data color themes through HTTP: the team's own and the global ones (docs payloads, DESIGN.md rules)."""

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from tests.factories import Actor, make_actor, make_member

SEEDED_GLOBAL_THEMES = {"Default Theme", "Muted"}
THEME_FIELDS = {"id", "name", "colors", "is_global", "created_at", "created_by"}
USER_FIELDS = {
    "id",
    "uuid",
    "distinct_id",
    "first_name",
    "last_name",
    "email",
    "is_email_verified",
    "hedgehog_config",
    "role_at_organization",
}
GLOBAL_READ_ONLY = {
    "type": "authentication_error",
    "code": "permission_denied",
    "detail": "Only staff users can edit global themes.",
    "attr": None,
}
NOT_FOUND = {"type": "invalid_request", "code": "not_found", "detail": "Not found.", "attr": None}


def themes_url(actor: Actor, theme_id: int | None = None, *, prefix: str = "environments") -> str:
    return actor.url(
        "data_color_themes/" if theme_id is None else f"data_color_themes/{theme_id}/", prefix=prefix
    )


async def create_theme(
    client: httpx.AsyncClient, actor: Actor, name: str = "Brand", colors: list[str] | None = None
) -> dict[str, Any]:
    response = await client.post(
        themes_url(actor),
        json={"name": name, "colors": colors or ["#1d4aff", "#621da6"]},
        headers=actor.headers,
    )
    assert response.status_code == 201, response.text
    return response.json()


async def list_all(client: httpx.AsyncClient, actor: Actor) -> list[dict[str, Any]]:
    response = await client.get(themes_url(actor), headers=actor.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["count"] == len(body["results"])
    return body["results"]


async def global_theme(client: httpx.AsyncClient, actor: Actor) -> dict[str, Any]:
    return next(t for t in await list_all(client, actor) if t["name"] == "Default Theme")


def validation_error(attr: str | None, code: str | None = None) -> dict[str, Any]:
    """The parts of a 400 body that must hold; `detail` is checked separately where it matters."""
    expected: dict[str, Any] = {"type": "validation_error", "attr": attr}
    if code is not None:
        expected["code"] = code
    return expected


def assert_error(response: httpx.Response, status: int, expected: dict[str, Any]) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"type", "code", "detail", "attr"}
    assert {key: body[key] for key in expected} == expected
    assert isinstance(body["detail"], str) and body["detail"]


# --- list ---------------------------------------------------------------------------------------------------


async def test_list_is_paginated_with_the_global_themes(client: httpx.AsyncClient, actor: Actor) -> None:
    response = await client.get(themes_url(actor), headers=actor.headers)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"count", "next", "previous", "results"}
    assert body["next"] is None and body["previous"] is None
    assert {t["name"] for t in body["results"]} == SEEDED_GLOBAL_THEMES
    assert body["count"] == len(SEEDED_GLOBAL_THEMES)
    for theme in body["results"]:
        assert set(theme) == THEME_FIELDS
        assert theme["is_global"] is True
        assert theme["created_by"] is None
        assert theme["colors"] and all(c.startswith("#") for c in theme["colors"])
    default = next(t for t in body["results"] if t["name"] == "Default Theme")
    assert default["colors"][:3] == ["#1d4aff", "#621da6", "#42827e"]


async def test_list_has_own_themes_and_never_another_teams(
    client: httpx.AsyncClient, actor: Actor, other_actor: Actor
) -> None:
    mine = await create_theme(client, actor, "Mine")
    theirs = await create_theme(client, other_actor, "Theirs")
    listed = await list_all(client, actor)
    assert {t["name"] for t in listed} == SEEDED_GLOBAL_THEMES | {"Mine"}
    assert theirs["id"] not in {t["id"] for t in listed}
    own = next(t for t in listed if t["id"] == mine["id"])
    assert own["is_global"] is False
    assert own == mine
    assert {t["name"] for t in await list_all(client, other_actor)} == SEEDED_GLOBAL_THEMES | {"Theirs"}


async def test_list_shares_themes_with_other_members_of_the_team(
    client: httpx.AsyncClient, db: AsyncSession, actor: Actor
) -> None:
    await create_theme(client, actor, "Team theme")
    member = await make_member(db, actor.team, scopes=["project:read"])
    assert "Team theme" in {t["name"] for t in await list_all(client, member)}


async def test_pagination_links_with_limit_one(client: httpx.AsyncClient, actor: Actor) -> None:
    for name in ("A", "B"):
        await create_theme(client, actor, name)
    url = themes_url(actor)
    first = await client.get(url, params={"limit": 1}, headers=actor.headers)
    assert first.status_code == 200
    page = first.json()
    assert page["count"] == 4
    assert len(page["results"]) == 1
    assert page["previous"] is None
    assert page["next"] == f"http://testserver{url}?limit=1&offset=1"

    seen = [page["results"][0]["id"]]
    previous_links = []
    while page["next"]:
        response = await client.get(page["next"], headers=actor.headers)
        assert response.status_code == 200
        page = response.json()
        assert page["count"] == 4 and len(page["results"]) == 1
        seen.append(page["results"][0]["id"])
        previous_links.append(page["previous"])
    assert len(seen) == 4 and len(set(seen)) == 4
    assert set(seen) == {t["id"] for t in await list_all(client, actor)}
    assert previous_links == [
        f"http://testserver{url}?limit=1",
        f"http://testserver{url}?limit=1&offset=1",
        f"http://testserver{url}?limit=1&offset=2",
    ]

    past_the_end = await client.get(url, params={"limit": 2, "offset": 10}, headers=actor.headers)
    assert past_the_end.json()["results"] == []
    assert past_the_end.json()["count"] == 4
    assert past_the_end.json()["next"] is None


# --- create -------------------------------------------------------------------------------------------------


async def test_create_returns_the_theme(client: httpx.AsyncClient, actor: Actor) -> None:
    before = datetime.now(UTC)
    response = await client.post(
        themes_url(actor),
        json={"name": "Brand", "colors": ["#1d4aff", "#FFF", "#00000080"]},
        headers=actor.headers,
    )
    assert response.status_code == 201, response.text
    theme = response.json()
    assert set(theme) == THEME_FIELDS
    assert isinstance(theme["id"], int)
    assert theme["name"] == "Brand"
    assert theme["colors"] == ["#1d4aff", "#FFF", "#00000080"]
    assert theme["is_global"] is False
    assert theme["created_at"].endswith("Z")
    created_at = datetime.fromisoformat(theme["created_at"].replace("Z", "+00:00"))
    assert before - timedelta(seconds=5) <= created_at <= datetime.now(UTC) + timedelta(seconds=5)
    creator = theme["created_by"]
    assert set(creator) == USER_FIELDS
    assert creator["id"] == actor.user.id
    assert creator["uuid"] == str(actor.user.uuid)
    assert creator["email"] == actor.user.email


async def test_create_ignores_read_only_fields(
    client: httpx.AsyncClient, actor: Actor, other_actor: Actor
) -> None:
    response = await client.post(
        themes_url(actor),
        json={
            "name": "Sneaky",
            "colors": ["#000"],
            "is_global": True,
            "id": 1,
            "created_by": other_actor.user.id,
            "team_id": other_actor.team.id,
        },
        headers=actor.headers,
    )
    assert response.status_code == 201, response.text
    theme = response.json()
    assert theme["is_global"] is False
    assert theme["created_by"]["id"] == actor.user.id
    assert theme["id"] != 1
    assert "Sneaky" not in {t["name"] for t in await list_all(client, other_actor)}


async def test_name_of_exactly_100_characters_is_accepted(client: httpx.AsyncClient, actor: Actor) -> None:
    theme = await create_theme(client, actor, "n" * 100)
    assert theme["name"] == "n" * 100


async def test_name_is_trimmed(client: httpx.AsyncClient, actor: Actor) -> None:
    theme = await create_theme(client, actor, "  Brand  ")
    assert theme["name"] == "Brand"


async def test_unicode_name_round_trips(client: httpx.AsyncClient, actor: Actor) -> None:
    theme = await create_theme(client, actor, "Thème 🎨 日本")
    got = await client.get(themes_url(actor, theme["id"]), headers=actor.headers)
    assert got.json()["name"] == "Thème 🎨 日本"


@pytest.mark.parametrize(
    ("body", "attr", "code"),
    [
        ({"colors": ["#fff"]}, "name", "required"),
        ({"name": None, "colors": ["#fff"]}, "name", "null"),
        ({"name": "", "colors": ["#fff"]}, "name", "blank"),
        ({"name": "   ", "colors": ["#fff"]}, "name", "blank"),
        ({"name": "n" * 101, "colors": ["#fff"]}, "name", "max_length"),
        ({"name": 5, "colors": ["#fff"]}, "name", None),
        ({"name": "a\x00b", "colors": ["#fff"]}, "name", "null_characters_not_allowed"),
        ({"name": "No colors"}, "colors", "required"),
        ({"name": "x", "colors": None}, "colors", "null"),
        ({"name": "x", "colors": []}, "colors", None),
        ({"name": "x", "colors": "red"}, "colors", None),
        ({"name": "x", "colors": 5}, "colors", None),
        ({"name": "x", "colors": {"a": "#fff"}}, "colors", None),
        ({"name": "x", "colors": ["red"]}, "colors", None),
        ({"name": "x", "colors": ["#12"]}, "colors", None),
        ({"name": "x", "colors": ["#1234567"]}, "colors", None),
        ({"name": "x", "colors": ["#12345"]}, "colors", None),
        ({"name": "x", "colors": ["#ggg"]}, "colors", None),
        ({"name": "x", "colors": ["fff"]}, "colors", None),
        ({"name": "x", "colors": [" #fff"]}, "colors", None),
        ({"name": "x", "colors": ["#fff\n"]}, "colors", None),
        ({"name": "x", "colors": ["#fff", "nope"]}, "colors", None),
    ],
)
async def test_create_validation(
    client: httpx.AsyncClient, actor: Actor, body: dict[str, Any], attr: str, code: str | None
) -> None:
    response = await client.post(themes_url(actor), json=body, headers=actor.headers)
    assert_error(response, 400, validation_error(attr, code))
    assert {t["name"] for t in await list_all(client, actor)} == SEEDED_GLOBAL_THEMES


async def test_validation_messages_say_what_is_wrong(client: httpx.AsyncClient, actor: Actor) -> None:
    response = await client.post(themes_url(actor), json={"colors": ["#fff"]}, headers=actor.headers)
    assert response.json()["detail"] == "This field is required."
    response = await client.post(
        themes_url(actor), json={"name": "n" * 101, "colors": ["#fff"]}, headers=actor.headers
    )
    assert response.json()["detail"] == "Ensure this field has no more than 100 characters."
    response = await client.post(
        themes_url(actor), json={"name": "x", "colors": ["red"]}, headers=actor.headers
    )
    assert "red" in response.json()["detail"]
    assert response.json()["attr"] == "colors"
    response = await client.post(themes_url(actor), json={"name": "x", "colors": 5}, headers=actor.headers)
    assert response.json() == {
        "type": "validation_error",
        "code": "not_a_list",
        "detail": "Expected a list of items.",
        "attr": "colors",
    }


# --- retrieve -----------------------------------------------------------------------------------------------


async def test_retrieve_own_theme(client: httpx.AsyncClient, actor: Actor) -> None:
    created = await create_theme(client, actor)
    response = await client.get(themes_url(actor, created["id"]), headers=actor.headers)
    assert response.status_code == 200
    assert response.json() == created


async def test_retrieve_global_theme(client: httpx.AsyncClient, actor: Actor) -> None:
    default = await global_theme(client, actor)
    response = await client.get(themes_url(actor, default["id"]), headers=actor.headers)
    assert response.status_code == 200
    assert response.json() == default
    assert response.json()["is_global"] is True


@pytest.mark.parametrize("theme_id", ["999999", "0", "-1", "abc", "1.5", "99999999999999999999999999999"])
async def test_retrieve_unknown_or_malformed_id_is_404(
    client: httpx.AsyncClient, actor: Actor, theme_id: str
) -> None:
    response = await client.get(actor.url(f"data_color_themes/{theme_id}/"), headers=actor.headers)
    assert response.status_code == 404, response.text
    assert response.json() == NOT_FOUND


# --- another team's theme -----------------------------------------------------------------------------------


async def test_another_teams_theme_is_404_everywhere(
    client: httpx.AsyncClient, actor: Actor, other_actor: Actor
) -> None:
    theirs = await create_theme(client, other_actor, "Theirs", ["#111111"])
    url = themes_url(actor, theirs["id"])
    for method, body in [
        ("GET", None),
        ("PATCH", {"name": "Stolen"}),
        ("PUT", {"name": "Stolen", "colors": ["#000"]}),
        ("DELETE", None),
    ]:
        response = await client.request(method, url, json=body, headers=actor.headers)
        assert response.status_code == 404, (method, response.text)
        assert response.json() == NOT_FOUND
    still = await client.get(themes_url(other_actor, theirs["id"]), headers=other_actor.headers)
    assert still.status_code == 200
    assert still.json() == theirs


async def test_own_theme_through_another_teams_url_is_403(
    client: httpx.AsyncClient, actor: Actor, other_actor: Actor
) -> None:
    mine = await create_theme(client, actor)
    response = await client.get(themes_url(other_actor, mine["id"]), headers=actor.headers)
    assert response.status_code == 403


# --- update -------------------------------------------------------------------------------------------------


async def test_patch_name_only(client: httpx.AsyncClient, actor: Actor) -> None:
    created = await create_theme(client, actor, "Old", ["#010203"])
    response = await client.patch(
        themes_url(actor, created["id"]), json={"name": "New"}, headers=actor.headers
    )
    assert response.status_code == 200, response.text
    assert response.json() == {**created, "name": "New"}
    got = await client.get(themes_url(actor, created["id"]), headers=actor.headers)
    assert got.json() == {**created, "name": "New"}


async def test_patch_colors_only(client: httpx.AsyncClient, actor: Actor) -> None:
    created = await create_theme(client, actor, "Keep", ["#010203"])
    response = await client.patch(
        themes_url(actor, created["id"]), json={"colors": ["#abc", "#abcdef"]}, headers=actor.headers
    )
    assert response.status_code == 200, response.text
    assert response.json() == {**created, "colors": ["#abc", "#abcdef"]}
    got = await client.get(themes_url(actor, created["id"]), headers=actor.headers)
    assert got.json()["colors"] == ["#abc", "#abcdef"]


async def test_patch_with_empty_body_changes_nothing(client: httpx.AsyncClient, actor: Actor) -> None:
    created = await create_theme(client, actor)
    response = await client.patch(themes_url(actor, created["id"]), json={}, headers=actor.headers)
    assert response.status_code == 200
    assert response.json() == created


async def test_patch_cannot_change_read_only_fields(client: httpx.AsyncClient, actor: Actor) -> None:
    created = await create_theme(client, actor)
    response = await client.patch(
        themes_url(actor, created["id"]),
        json={"is_global": True, "created_at": "2000-01-01T00:00:00Z", "id": 5},
        headers=actor.headers,
    )
    assert response.status_code == 200
    assert response.json() == created


@pytest.mark.parametrize(
    ("body", "attr", "code"),
    [
        ({"name": None}, "name", "null"),
        ({"name": "n" * 101}, "name", "max_length"),
        ({"colors": None}, "colors", "null"),
        ({"colors": []}, "colors", None),
        ({"colors": ["#12"]}, "colors", None),
        ({"colors": "red"}, "colors", None),
    ],
)
async def test_patch_validation(
    client: httpx.AsyncClient, actor: Actor, body: dict[str, Any], attr: str, code: str | None
) -> None:
    created = await create_theme(client, actor)
    response = await client.patch(themes_url(actor, created["id"]), json=body, headers=actor.headers)
    assert_error(response, 400, validation_error(attr, code))
    got = await client.get(themes_url(actor, created["id"]), headers=actor.headers)
    assert got.json() == created


async def test_put_replaces_name_and_colors(client: httpx.AsyncClient, actor: Actor) -> None:
    created = await create_theme(client, actor, "Old", ["#010203"])
    response = await client.put(
        themes_url(actor, created["id"]), json={"name": "Replaced", "colors": ["#fff"]}, headers=actor.headers
    )
    assert response.status_code == 200, response.text
    assert response.json() == {**created, "name": "Replaced", "colors": ["#fff"]}
    got = await client.get(themes_url(actor, created["id"]), headers=actor.headers)
    assert got.json() == response.json()


@pytest.mark.parametrize(
    ("body", "attr"), [({"name": "Only name"}, "colors"), ({"colors": ["#fff"]}, "name"), ({}, "name")]
)
async def test_put_requires_every_field(
    client: httpx.AsyncClient, actor: Actor, body: dict[str, Any], attr: str
) -> None:
    created = await create_theme(client, actor)
    response = await client.put(themes_url(actor, created["id"]), json=body, headers=actor.headers)
    assert_error(response, 400, validation_error(attr, "required"))
    got = await client.get(themes_url(actor, created["id"]), headers=actor.headers)
    assert got.json() == created


# --- global themes are read-only ----------------------------------------------------------------------------


async def test_global_theme_cannot_be_changed_or_deleted(client: httpx.AsyncClient, actor: Actor) -> None:
    default = await global_theme(client, actor)
    url = themes_url(actor, default["id"])
    for method, body in [
        ("PATCH", {"name": "Mine now"}),
        ("PUT", {"name": "Mine now", "colors": ["#000"]}),
        ("DELETE", None),
    ]:
        response = await client.request(method, url, json=body, headers=actor.headers)
        assert response.status_code == 403, (method, response.text)
        assert response.json() == GLOBAL_READ_ONLY
    assert (await client.get(url, headers=actor.headers)).json() == default


async def test_global_theme_is_read_only_even_for_an_owner_with_a_legacy_key(
    client: httpx.AsyncClient, db: AsyncSession, actor: Actor
) -> None:
    legacy = await make_actor(db, scopes=[])
    default = await global_theme(client, legacy)
    response = await client.delete(themes_url(legacy, default["id"]), headers=legacy.headers)
    assert response.status_code == 403
    assert response.json() == GLOBAL_READ_ONLY


# --- delete -------------------------------------------------------------------------------------------------


async def test_delete_own_theme(client: httpx.AsyncClient, db: AsyncSession, actor: Actor) -> None:
    created = await create_theme(client, actor)
    url = themes_url(actor, created["id"])
    response = await client.delete(url, headers=actor.headers)
    assert response.status_code == 204
    assert response.content == b""
    assert (await client.get(url, headers=actor.headers)).status_code == 404
    assert (await client.delete(url, headers=actor.headers)).status_code == 404
    assert created["id"] not in {t["id"] for t in await list_all(client, actor)}
    # A hard delete: the row is gone.
    remaining = await db.execute(
        text("SELECT count(*) FROM data_color_theme WHERE id = :i"), {"i": created["id"]}
    )
    assert remaining.scalar_one() == 0


async def test_dashboard_using_a_deleted_theme_falls_back_to_null(
    client: httpx.AsyncClient, actor: Actor
) -> None:
    theme = await create_theme(client, actor)
    created = await client.post(
        actor.url("dashboards/"),
        json={"name": "Colored", "data_color_theme_id": theme["id"]},
        headers=actor.headers,
    )
    assert created.status_code == 201, created.text
    assert created.json()["data_color_theme_id"] == theme["id"]
    dashboard_url = actor.url(f"dashboards/{created.json()['id']}/")

    assert (await client.delete(themes_url(actor, theme["id"]), headers=actor.headers)).status_code == 204
    got = await client.get(dashboard_url, headers=actor.headers)
    assert got.status_code == 200, got.text
    assert got.json()["data_color_theme_id"] is None


async def test_dashboard_may_use_a_global_theme(client: httpx.AsyncClient, actor: Actor) -> None:
    default = await global_theme(client, actor)
    created = await client.post(
        actor.url("dashboards/"),
        json={"name": "Global", "data_color_theme_id": default["id"]},
        headers=actor.headers,
    )
    assert created.status_code == 201, created.text
    assert created.json()["data_color_theme_id"] == default["id"]


# --- scopes -------------------------------------------------------------------------------------------------


async def test_project_read_reads_but_does_not_write(
    client: httpx.AsyncClient, db: AsyncSession, actor: Actor
) -> None:
    created = await create_theme(client, actor, "Team")
    reader = await make_member(db, actor.team, scopes=["project:read"])
    assert (await client.get(themes_url(actor), headers=reader.headers)).status_code == 200
    got = await client.get(themes_url(actor, created["id"]), headers=reader.headers)
    assert got.status_code == 200
    assert got.json() == created
    missing = {
        "type": "authentication_error",
        "code": "permission_denied",
        "detail": "API key missing required scope 'project:write'",
        "attr": None,
    }
    for method, url, body in [
        ("POST", themes_url(actor), {"name": "New", "colors": ["#000"]}),
        ("PATCH", themes_url(actor, created["id"]), {"name": "Changed"}),
        ("PUT", themes_url(actor, created["id"]), {"name": "Changed", "colors": ["#000"]}),
        ("DELETE", themes_url(actor, created["id"]), None),
    ]:
        response = await client.request(method, url, json=body, headers=reader.headers)
        assert response.status_code == 403, (method, response.text)
        assert response.json() == missing
    assert {t["name"] for t in await list_all(client, actor)} == SEEDED_GLOBAL_THEMES | {"Team"}


async def test_project_write_does_everything(
    client: httpx.AsyncClient, db: AsyncSession, actor: Actor
) -> None:
    writer = await make_member(db, actor.team, scopes=["project:write"])
    theme = await create_theme(client, writer, "Written")
    assert theme["created_by"]["id"] == writer.user.id
    url = themes_url(actor, theme["id"])
    assert (await client.get(url, headers=writer.headers)).status_code == 200
    assert (await client.patch(url, json={"name": "W2"}, headers=writer.headers)).status_code == 200
    put = await client.put(url, json={"name": "W3", "colors": ["#000"]}, headers=writer.headers)
    assert put.status_code == 200
    assert (await client.delete(url, headers=writer.headers)).status_code == 204


@pytest.mark.parametrize("scopes", [["dashboard:read"], ["dashboard:write"], ["insight:write"]])
async def test_other_scopes_cannot_read_themes(
    client: httpx.AsyncClient, db: AsyncSession, actor: Actor, scopes: list[str]
) -> None:
    created = await create_theme(client, actor)
    other = await make_member(db, actor.team, scopes=scopes)
    for url in (themes_url(actor), themes_url(actor, created["id"])):
        response = await client.get(url, headers=other.headers)
        assert response.status_code == 403
        assert response.json()["detail"] == "API key missing required scope 'project:read'"


async def test_members_edit_themes_of_their_team(
    client: httpx.AsyncClient, db: AsyncSession, actor: Actor
) -> None:
    created = await create_theme(client, actor)
    member = await make_member(db, actor.team)
    response = await client.patch(
        themes_url(actor, created["id"]), json={"name": "By member"}, headers=member.headers
    )
    assert response.status_code == 200
    assert response.json()["created_by"]["id"] == actor.user.id


# --- both prefixes, with and without the slash --------------------------------------------------------------


@pytest.mark.parametrize("prefix", ["environments", "projects"])
@pytest.mark.parametrize("slash", ["/", ""])
async def test_every_operation_under_both_prefixes_and_slash_forms(
    client: httpx.AsyncClient, actor: Actor, prefix: str, slash: str
) -> None:
    base = actor.url("data_color_themes", prefix=prefix) + slash
    created = await client.post(base, json={"name": "P", "colors": ["#000"]}, headers=actor.headers)
    assert created.status_code == 201, created.text
    theme_id = created.json()["id"]
    listed = await client.get(base, headers=actor.headers)
    assert listed.status_code == 200
    assert theme_id in {t["id"] for t in listed.json()["results"]}
    item = actor.url(f"data_color_themes/{theme_id}", prefix=prefix) + slash
    got = await client.get(item, headers=actor.headers)
    assert got.status_code == 200
    assert got.json() == created.json()
    patched = await client.patch(item, json={"name": "P2"}, headers=actor.headers)
    assert patched.status_code == 200 and patched.json()["name"] == "P2"
    put = await client.put(item, json={"name": "P3", "colors": ["#fff"]}, headers=actor.headers)
    assert put.status_code == 200 and put.json()["name"] == "P3"
    # The other prefix sees the same theme.
    other_prefix = "projects" if prefix == "environments" else "environments"
    seen = await client.get(
        actor.url(f"data_color_themes/{theme_id}/", prefix=other_prefix), headers=actor.headers
    )
    assert seen.json()["name"] == "P3"
    assert (await client.delete(item, headers=actor.headers)).status_code == 204
    assert (await client.get(item, headers=actor.headers)).status_code == 404
