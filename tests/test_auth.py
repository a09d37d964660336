"""Personal API key authentication, scopes and team access, through HTTP (PostHog rules, DESIGN codes)."""

import hashlib
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.accounts import add_member, create_personal_api_key
from app.models import MEMBER
from tests.factories import Actor, make_actor
from tests.statements import recorded_statements

NOT_AUTHENTICATED = {
    "type": "authentication_error",
    "code": "not_authenticated",
    "detail": "Authentication credentials were not provided.",
    "attr": None,
}
NO_PROJECT_ACCESS = "You don't have access to the project."


def invalid_key(source: str) -> dict[str, Any]:
    return {
        "type": "authentication_error",
        "code": "authentication_failed",
        "detail": f"Personal API key found in request {source} is invalid.",
        "attr": None,
    }


def permission_denied(detail: str) -> dict[str, Any]:
    return {"type": "authentication_error", "code": "permission_denied", "detail": detail, "attr": None}


def missing_scope(scope: str) -> dict[str, Any]:
    return permission_denied(f"API key missing required scope '{scope}'")


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def key_row(db: AsyncSession, user_id: int) -> dict[str, Any]:
    """The user's only key row, read with SQL so that nothing cached in the session hides what is stored."""
    rows = (
        (await db.execute(text("SELECT * FROM personal_api_key WHERE user_id = :u"), {"u": user_id}))
        .mappings()
        .all()
    )
    assert len(rows) == 1
    return dict(rows[0])


async def set_key_columns(db: AsyncSession, user_id: int, **values: Any) -> None:
    assignments = ", ".join(f"{name} = :{name}" for name in values)
    await db.execute(
        text(f"UPDATE personal_api_key SET {assignments} WHERE user_id = :u"), {**values, "u": user_id}
    )
    await db.commit()


# --- no credentials, bad credentials ------------------------------------------------------------------------


async def test_no_credentials_is_401_with_bearer_challenge(client: httpx.AsyncClient, actor: Actor) -> None:
    for method, path in [("GET", "dashboards/"), ("POST", "dashboards/"), ("GET", "data_color_themes/")]:
        response = await client.request(
            method, actor.url(path), json={"name": "x"} if method == "POST" else None
        )
        assert response.status_code == 401, (method, path, response.text)
        assert response.json() == NOT_AUTHENTICATED
        assert response.headers["WWW-Authenticate"] == "Bearer"


async def test_unknown_key_in_header_is_401(client: httpx.AsyncClient, actor: Actor) -> None:
    response = await client.get(actor.url("dashboards/"), headers=bearer("phx_not_a_real_key"))
    assert response.status_code == 401
    assert response.json() == invalid_key("Authorization header")
    assert response.headers["WWW-Authenticate"] == "Bearer"


async def test_unknown_key_in_body_is_401(client: httpx.AsyncClient, actor: Actor) -> None:
    response = await client.post(
        actor.url("dashboards/"), json={"name": "Nope", "personal_api_key": "phx_not_a_real_key"}
    )
    assert response.status_code == 401
    assert response.json() == invalid_key("body")


async def test_unknown_key_in_query_string_is_401(client: httpx.AsyncClient, actor: Actor) -> None:
    response = await client.get(actor.url("dashboards/"), params={"personal_api_key": "phx_not_a_real_key"})
    assert response.status_code == 401
    assert response.json() == invalid_key("query string")


async def test_a_key_that_differs_by_one_character_is_refused(
    client: httpx.AsyncClient, actor: Actor
) -> None:
    tampered = actor.key[:-1] + ("A" if actor.key[-1] != "A" else "B")
    response = await client.get(actor.url("dashboards/"), headers=bearer(tampered))
    assert response.status_code == 401
    assert response.json() == invalid_key("Authorization header")


async def test_the_stored_hash_itself_is_not_a_key(
    client: httpx.AsyncClient, db: AsyncSession, actor: Actor
) -> None:
    stored = (await key_row(db, actor.user.id))["secure_value"]
    response = await client.get(actor.url("dashboards/"), headers=bearer(stored))
    assert response.status_code == 401


async def test_inactive_user_is_401(client: httpx.AsyncClient, db: AsyncSession, actor: Actor) -> None:
    assert (await client.get(actor.url("dashboards/"), headers=actor.headers)).status_code == 200
    await db.execute(text("UPDATE app_user SET is_active = false WHERE id = :u"), {"u": actor.user.id})
    await db.commit()
    response = await client.get(actor.url("dashboards/"), headers=actor.headers)
    assert response.status_code == 401
    assert response.json() == invalid_key("Authorization header")
    response = await client.get(actor.url("dashboards/"), params={"personal_api_key": actor.key})
    assert response.status_code == 401
    assert response.json() == invalid_key("query string")


# --- where the key is read from -----------------------------------------------------------------------------


async def test_key_from_authorization_header(client: httpx.AsyncClient, actor: Actor) -> None:
    response = await client.get(actor.url("dashboards/"), headers=actor.headers)
    assert response.status_code == 200, response.text
    assert response.json()["count"] == 0


async def test_bearer_may_be_followed_by_several_spaces(client: httpx.AsyncClient, actor: Actor) -> None:
    response = await client.get(actor.url("dashboards/"), headers={"Authorization": f"Bearer    {actor.key}"})
    assert response.status_code == 200, response.text


async def test_key_from_json_body_on_post(client: httpx.AsyncClient, actor: Actor) -> None:
    response = await client.post(
        actor.url("dashboards/"), json={"name": "From body", "personal_api_key": actor.key}
    )
    assert response.status_code == 201, response.text
    assert response.json()["name"] == "From body"
    assert response.json()["created_by"]["id"] == actor.user.id
    theme = await client.post(
        actor.url("data_color_themes/"),
        json={"name": "Body theme", "colors": ["#000"], "personal_api_key": actor.key},
    )
    assert theme.status_code == 201, theme.text


async def test_key_from_json_body_on_patch(client: httpx.AsyncClient, actor: Actor) -> None:
    created = await client.post(actor.url("dashboards/"), json={"name": "Before"}, headers=actor.headers)
    response = await client.patch(
        actor.url(f"dashboards/{created.json()['id']}/"),
        json={"name": "After", "personal_api_key": actor.key},
    )
    assert response.status_code == 200, response.text
    assert response.json()["name"] == "After"


async def test_key_from_query_string(client: httpx.AsyncClient, actor: Actor) -> None:
    response = await client.get(actor.url("dashboards/"), params={"personal_api_key": actor.key})
    assert response.status_code == 200, response.text
    response = await client.post(
        actor.url("dashboards/"), params={"personal_api_key": actor.key}, json={"name": "From query"}
    )
    assert response.status_code == 201, response.text


async def test_header_wins_over_query_string(client: httpx.AsyncClient, actor: Actor) -> None:
    response = await client.get(
        actor.url("dashboards/"), headers=bearer("phx_bad"), params={"personal_api_key": actor.key}
    )
    assert response.status_code == 401
    assert response.json() == invalid_key("Authorization header")
    response = await client.get(
        actor.url("dashboards/"), headers=actor.headers, params={"personal_api_key": "phx_bad"}
    )
    assert response.status_code == 200, response.text


async def test_header_wins_over_body(client: httpx.AsyncClient, actor: Actor) -> None:
    response = await client.post(
        actor.url("dashboards/"), headers=bearer("phx_bad"), json={"name": "x", "personal_api_key": actor.key}
    )
    assert response.status_code == 401
    assert response.json() == invalid_key("Authorization header")


async def test_body_wins_over_query_string(client: httpx.AsyncClient, actor: Actor) -> None:
    response = await client.post(
        actor.url("dashboards/"),
        params={"personal_api_key": actor.key},
        json={"name": "x", "personal_api_key": "phx_bad"},
    )
    assert response.status_code == 401
    assert response.json() == invalid_key("body")


@pytest.mark.parametrize("header", ["Token abc", "Basic dXNlcjpwYXNz", "Bearer", "Bearer ", "bearer-ish x"])
async def test_malformed_authorization_header_is_ignored(
    client: httpx.AsyncClient, actor: Actor, header: str
) -> None:
    alone = await client.get(actor.url("dashboards/"), headers={"Authorization": header})
    assert alone.status_code == 401
    assert alone.json() == NOT_AUTHENTICATED
    with_query = await client.get(
        actor.url("dashboards/"), headers={"Authorization": header}, params={"personal_api_key": actor.key}
    )
    assert with_query.status_code == 200, with_query.text


async def test_key_from_json_body_of_a_get(client: httpx.AsyncClient, actor: Actor) -> None:
    # As PostHog, which reads `request.data` whatever the method.
    response = await client.request("GET", actor.url("dashboards/"), json={"personal_api_key": actor.key})
    assert response.status_code == 200, response.text


async def test_non_string_body_key_is_ignored(client: httpx.AsyncClient, actor: Actor) -> None:
    response = await client.post(actor.url("dashboards/"), json={"name": "x", "personal_api_key": 12345})
    assert response.status_code == 401
    assert response.json() == NOT_AUTHENTICATED


# --- storage ------------------------------------------------------------------------------------------------


async def test_key_is_stored_only_as_its_sha256(db: AsyncSession, actor: Actor) -> None:
    row = await key_row(db, actor.user.id)
    assert actor.key.startswith("phx_")
    assert row["secure_value"] == "sha256$" + hashlib.sha256(actor.key.encode()).hexdigest()
    assert row["mask_value"] == f"phx_...{actor.key[-4:]}"
    dumped = (
        await db.execute(
            text("SELECT row_to_json(k)::text FROM personal_api_key k WHERE user_id = :u"),
            {"u": actor.user.id},
        )
    ).scalar_one()
    secret_part = actor.key.removeprefix("phx_")
    assert secret_part not in dumped
    assert secret_part[:12] not in dumped


async def test_two_keys_never_share_a_value(db: AsyncSession, actor: Actor) -> None:
    second = await create_personal_api_key(db, actor.user, scopes=["*"])
    await db.commit()
    assert second != actor.key
    assert second.startswith("phx_") and len(second) >= 40


# --- last_used_at -------------------------------------------------------------------------------------------


async def test_last_used_at_is_set_on_first_use(
    client: httpx.AsyncClient, db: AsyncSession, actor: Actor
) -> None:
    assert (await key_row(db, actor.user.id))["last_used_at"] is None
    before = datetime.now(UTC)
    assert (await client.get(actor.url("dashboards/"), headers=actor.headers)).status_code == 200
    used = (await key_row(db, actor.user.id))["last_used_at"]
    assert used is not None
    assert before - timedelta(seconds=1) <= used <= datetime.now(UTC) + timedelta(seconds=1)


async def test_last_used_at_is_not_rewritten_within_the_hour(
    client: httpx.AsyncClient, db: AsyncSession, actor: Actor
) -> None:
    recent = (datetime.now(UTC) - timedelta(minutes=30)).replace(microsecond=0)
    await set_key_columns(db, actor.user.id, last_used_at=recent)
    assert (await client.get(actor.url("dashboards/"), headers=actor.headers)).status_code == 200
    assert (await key_row(db, actor.user.id))["last_used_at"] == recent


async def test_last_used_at_is_refreshed_after_an_hour(
    client: httpx.AsyncClient, db: AsyncSession, actor: Actor
) -> None:
    old = (datetime.now(UTC) - timedelta(hours=2)).replace(microsecond=0)
    await set_key_columns(db, actor.user.id, last_used_at=old)
    before = datetime.now(UTC)
    assert (await client.get(actor.url("dashboards/"), headers=actor.headers)).status_code == 200
    used = (await key_row(db, actor.user.id))["last_used_at"]
    assert used > old
    assert used >= before - timedelta(seconds=1)


# --- cost -------------------------------------------------------------------------------------------------


def _queries(statements: list[str]) -> list[str]:
    # The test's transaction turns each request's transaction into a savepoint: not a query.
    skipped = ("SAVEPOINT", "RELEASE", "ROLLBACK TO")
    return [s for s in statements if not s.lstrip().upper().startswith(skipped)]


async def test_key_user_team_and_membership_come_in_one_statement(
    client: httpx.AsyncClient, db: AsyncSession, actor: Actor, other_actor: Actor, engine: AsyncEngine
) -> None:
    await set_key_columns(db, actor.user.id, last_used_at=datetime.now(UTC) - timedelta(minutes=5))
    with recorded_statements(engine) as listed:
        assert (await client.get(actor.url("dashboards/"), headers=actor.headers)).status_code == 200
    auth = [s for s in _queries(listed) if "personal_api_key" in s]
    assert len(auth) == 1 and "organization_membership" in auth[0] and "JOIN team" in auth[0]
    # Refused at the team (another organization's), or for a scope: the lookup is the whole request.
    with recorded_statements(engine) as refused:
        response = await client.get(other_actor.url("dashboards/"), headers=actor.headers)
    assert response.status_code == 403 and response.json() == permission_denied(NO_PROJECT_ACCESS)
    assert len(_queries(refused)) == 1
    limited = await create_personal_api_key(db, actor.user, scopes=["insight:read"])
    await db.commit()
    await set_key_columns(db, actor.user.id, last_used_at=datetime.now(UTC))
    with recorded_statements(engine) as unscoped:
        response = await client.get(actor.url("dashboards/"), headers=bearer(limited))
    assert response.status_code == 403 and response.json() == missing_scope("dashboard:read")
    assert len(_queries(unscoped)) == 1


async def test_last_used_at_is_written_once_for_many_requests(
    client: httpx.AsyncClient, actor: Actor, engine: AsyncEngine
) -> None:
    with recorded_statements(engine) as sql:
        for _ in range(3):
            assert (await client.get(actor.url("dashboards/"), headers=actor.headers)).status_code == 200
    assert len([s for s in sql if s.lstrip().upper().startswith("UPDATE PERSONAL_API_KEY")]) == 1


# --- scopes -------------------------------------------------------------------------------------------------

OPERATIONS = ("list_dashboards", "create_dashboard", "list_themes", "create_theme")
REQUIRED_SCOPE = {
    "list_dashboards": "dashboard:read",
    "create_dashboard": "dashboard:write",
    "list_themes": "project:read",
    "create_theme": "project:write",
}


async def run_operation(client: httpx.AsyncClient, actor: Actor, operation: str) -> httpx.Response:
    if operation == "list_dashboards":
        return await client.get(actor.url("dashboards/"), headers=actor.headers)
    if operation == "create_dashboard":
        return await client.post(actor.url("dashboards/"), json={"name": "Scoped"}, headers=actor.headers)
    if operation == "list_themes":
        return await client.get(actor.url("data_color_themes/"), headers=actor.headers)
    assert operation == "create_theme"
    return await client.post(
        actor.url("data_color_themes/"), json={"name": "Scoped", "colors": ["#abc"]}, headers=actor.headers
    )


@pytest.mark.parametrize(
    ("scopes", "allowed"),
    [
        (["dashboard:read"], {"list_dashboards"}),
        (["dashboard:write"], {"list_dashboards", "create_dashboard"}),
        (["project:read"], {"list_themes"}),
        (["project:write"], {"list_themes", "create_theme"}),
        (["dashboard:read", "project:write"], {"list_dashboards", "list_themes", "create_theme"}),
        (["insight:read", "insight:write", "sharing_configuration:write"], set()),
        (["*"], set(OPERATIONS)),
        (None, set(OPERATIONS)),  # a legacy key: scopes NULL
        ([], set(OPERATIONS)),  # a legacy key: scopes empty
    ],
    ids=lambda v: repr(v),
)
async def test_scope_matrix(
    client: httpx.AsyncClient, db: AsyncSession, scopes: list[str] | None, allowed: set[str]
) -> None:
    scoped = await make_actor(db, scopes=["*"] if scopes is None else scopes)
    if scopes is None:
        await set_key_columns(db, scoped.user.id, scopes=None)
        assert (await key_row(db, scoped.user.id))["scopes"] is None
    for operation in OPERATIONS:
        response = await run_operation(client, scoped, operation)
        if operation in allowed:
            assert response.status_code in (200, 201), (operation, response.text)
        else:
            assert response.status_code == 403, (operation, response.text)
            assert response.json() == missing_scope(REQUIRED_SCOPE[operation])


async def test_write_scope_implies_read_on_retrieve(
    client: httpx.AsyncClient, db: AsyncSession, actor: Actor
) -> None:
    dashboard = await client.post(actor.url("dashboards/"), json={"name": "D"}, headers=actor.headers)
    theme = await client.post(
        actor.url("data_color_themes/"), json={"name": "T", "colors": ["#123456"]}, headers=actor.headers
    )
    writer = await make_actor(db, team=actor.team, scopes=["dashboard:write", "project:write"])
    got = await client.get(actor.url(f"dashboards/{dashboard.json()['id']}/"), headers=writer.headers)
    assert got.status_code == 200, got.text
    got = await client.get(actor.url(f"data_color_themes/{theme.json()['id']}/"), headers=writer.headers)
    assert got.status_code == 200, got.text


async def test_read_scope_cannot_update_or_delete(
    client: httpx.AsyncClient, db: AsyncSession, actor: Actor
) -> None:
    dashboard = await client.post(actor.url("dashboards/"), json={"name": "D"}, headers=actor.headers)
    theme = await client.post(
        actor.url("data_color_themes/"), json={"name": "T", "colors": ["#123456"]}, headers=actor.headers
    )
    reader = await make_actor(db, team=actor.team, scopes=["dashboard:read", "project:read"])
    response = await client.patch(
        actor.url(f"dashboards/{dashboard.json()['id']}/"), json={"name": "X"}, headers=reader.headers
    )
    assert response.status_code == 403
    assert response.json() == missing_scope("dashboard:write")
    theme_url = actor.url(f"data_color_themes/{theme.json()['id']}/")
    for method in ("PATCH", "PUT", "DELETE"):
        body = {"name": "X", "colors": ["#000"]} if method != "DELETE" else None
        response = await client.request(method, theme_url, json=body, headers=reader.headers)
        assert response.status_code == 403, method
        assert response.json() == missing_scope("project:write")
    unchanged = await client.get(theme_url, headers=actor.headers)
    assert unchanged.json()["name"] == "T"


# --- team access --------------------------------------------------------------------------------------------


async def test_key_scoped_to_another_team_is_403(
    client: httpx.AsyncClient, db: AsyncSession, actor: Actor, other_actor: Actor
) -> None:
    # The user belongs to both teams; the key is limited to the other one.
    await add_member(db, actor.user, other_actor.team, MEMBER)
    key = await create_personal_api_key(db, actor.user, scopes=["*"], scoped_teams=[other_actor.team.id])
    await db.commit()
    for path in ("dashboards/", "data_color_themes/"):
        response = await client.get(actor.url(path), headers=bearer(key))
        assert response.status_code == 403, path
        assert response.json() == permission_denied(NO_PROJECT_ACCESS)
        response = await client.get(other_actor.url(path), headers=bearer(key))
        assert response.status_code == 200, response.text
    # The user's unscoped key reaches both teams.
    assert (await client.get(actor.url("dashboards/"), headers=actor.headers)).status_code == 200
    assert (await client.get(other_actor.url("dashboards/"), headers=actor.headers)).status_code == 200


async def test_scoped_teams_do_not_grant_membership(
    client: httpx.AsyncClient, db: AsyncSession, other_actor: Actor
) -> None:
    outsider = await make_actor(db, scoped_teams=[other_actor.team.id])
    response = await client.get(other_actor.url("dashboards/"), headers=outsider.headers)
    assert response.status_code == 403
    assert response.json() == permission_denied(NO_PROJECT_ACCESS)


async def test_key_scoped_to_another_organization_is_403(
    client: httpx.AsyncClient, db: AsyncSession, actor: Actor, other_actor: Actor
) -> None:
    await set_key_columns(db, actor.user.id, scoped_organizations=[str(other_actor.team.organization_id)])
    response = await client.get(actor.url("dashboards/"), headers=actor.headers)
    assert response.status_code == 403
    assert response.json() == permission_denied(NO_PROJECT_ACCESS)
    await set_key_columns(db, actor.user.id, scoped_organizations=[str(actor.team.organization_id)])
    assert (await client.get(actor.url("dashboards/"), headers=actor.headers)).status_code == 200


@pytest.mark.parametrize("path", ["dashboards/", "data_color_themes/"])
async def test_non_member_is_403(
    client: httpx.AsyncClient, actor: Actor, other_actor: Actor, path: str
) -> None:
    for prefix in ("environments", "projects"):
        response = await client.get(other_actor.url(path, prefix=prefix), headers=actor.headers)
        assert response.status_code == 403, prefix
        assert response.json() == permission_denied(NO_PROJECT_ACCESS)
    response = await client.post(
        other_actor.url(path), json={"name": "Intruder", "colors": ["#fff"]}, headers=actor.headers
    )
    assert response.status_code == 403
    assert response.json() == permission_denied(NO_PROJECT_ACCESS)
    listed = await client.get(other_actor.url(path), headers=other_actor.headers)
    assert all(item["name"] != "Intruder" for item in listed.json()["results"])


async def test_member_of_another_team_of_the_same_organization_reaches_it(
    client: httpx.AsyncClient, db: AsyncSession, actor: Actor
) -> None:
    # Organization membership gives access to every team of the organization, as in PostHog.
    member = await make_actor(db, team=actor.team, level=MEMBER, scopes=["dashboard:read"])
    response = await client.get(actor.url("dashboards/"), headers=member.headers)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("team_id", ["999999", "0", "-1", "abc", "1e3", "١٢", "99999999999999999999", "%20"])
async def test_unknown_or_malformed_team_is_403(
    client: httpx.AsyncClient, actor: Actor, team_id: str
) -> None:
    for path in ("dashboards/", "data_color_themes/"):
        response = await client.get(f"/api/environments/{team_id}/{path}", headers=actor.headers)
        assert response.status_code == 403, (team_id, path, response.text)
        assert response.json() == permission_denied(NO_PROJECT_ACCESS)


async def test_unknown_team_without_credentials_is_still_401(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/environments/999999/dashboards/")
    assert response.status_code == 401
    assert response.json() == NOT_AUTHENTICATED


# --- the key never reaches the logs -------------------------------------------------------------------------


async def test_access_log_never_contains_the_key(
    client: httpx.AsyncClient, actor: Actor, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    await client.get(actor.url("dashboards/"), params={"personal_api_key": actor.key})
    await client.get(actor.url("dashboards"), params={"personal_api_key": actor.key, "limit": 5})
    await client.get(actor.url("dashboards/"), headers=actor.headers)
    await client.post(actor.url("dashboards/"), json={"name": "x", "personal_api_key": actor.key})
    await client.get(actor.url("dashboards/"), params={"personal_api_key": actor.key + "-wrong"})
    await client.get(actor.url("dashboards/"), headers=bearer(actor.key + "-wrong"))

    access = [r.getMessage() for r in caplog.records if r.name == "tilecast.access"]
    assert len(access) == 6
    assert f"GET /api/environments/{actor.team.id}/dashboards/ 200" in access[0]
    assert any(" 401 " in line for line in access)
    secret = actor.key.removeprefix("phx_")
    # httpx (the test's own client) logs the URLs it requests; everything else is the server's.
    server_records = [r for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))]
    assert len(server_records) >= 6
    for record in server_records:
        message = record.getMessage()
        assert secret[:16] not in message, record.name
        assert "personal_api_key" not in message, record.name


UNPARSEABLE_BODIES = {
    "deep-array": b"[" * 100_000 + b"]" * 100_000,
    "deep-object": b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
    "not-utf8": b"\xff\xfe",
    "malformed": b"{bad",
}


@pytest.mark.parametrize("raw", UNPARSEABLE_BODIES.values(), ids=UNPARSEABLE_BODIES.keys())
@pytest.mark.parametrize("method", ["POST", "DELETE"])
async def test_unparseable_body_without_key_is_a_clean_4xx(
    client: httpx.AsyncClient, actor: Actor, method: str, raw: bytes
) -> None:
    # The body is searched for `personal_api_key`; one that cannot be parsed simply holds no key. DELETE
    # takes no body, so only that search ever reads it.
    path = "dashboards/" if method == "POST" else "data_color_themes/1/"
    response = await client.request(
        method, actor.url(path), content=raw, headers={"Content-Type": "application/json"}
    )
    assert response.status_code in (400, 401), response.text
    assert set(response.json()) == {"type", "code", "detail", "attr"}
    if method == "DELETE":
        assert response.json() == NOT_AUTHENTICATED
