"""Sharing: the sharing API of a dashboard, its public links, and password-protected shares."""

import logging
import re
from collections.abc import Iterator

import httpx
import jwt
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.grants import JWT_AUDIENCE, JwtSecret
from app.clock import system_clock
from app.config import get_settings
from app.models import MEMBER
from tests.factories import Actor, make_member
from tests.resources import new_dashboard
from tests.sharing_helpers import (
    FakeClock,
    Protected,
    add_password,
    jwt_for,
    patch_sharing,
    protected_dashboard,
    shared_dashboard,
    sharing_url,
    unlock,
)

SHARING_KEYS = {"created_at", "enabled", "access_token", "settings", "password_required", "share_passwords"}


@pytest.fixture
def clock(app: FastAPI) -> Iterator[FakeClock]:
    fake = FakeClock()
    app.state.clock = fake
    yield fake
    app.state.clock = system_clock


async def count(db: AsyncSession, table: str) -> int:
    return int((await db.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one())


# --- the sharing API --------------------------------------------------------------------------------------


async def test_get_answers_an_unsaved_default_with_a_new_token_each_time(
    client: httpx.AsyncClient, actor: Actor, db: AsyncSession
) -> None:
    dashboard = await new_dashboard(client, actor)
    first = await client.get(sharing_url(actor, dashboard), headers=actor.headers)
    second = await client.get(sharing_url(actor, dashboard), headers=actor.headers)
    assert first.status_code == second.status_code == 200
    body = first.json()
    assert set(body) == SHARING_KEYS
    assert body["created_at"] is None
    assert body["enabled"] is False and body["password_required"] is False
    assert body["settings"] is None and body["share_passwords"] == []
    assert body["access_token"] != second.json()["access_token"]
    assert await count(db, "sharing_configuration") == 0


async def test_patch_writes_the_row_and_the_token_stays(client: httpx.AsyncClient, actor: Actor) -> None:
    dashboard = await new_dashboard(client, actor)
    enabled = await patch_sharing(client, actor, dashboard, enabled=True)
    assert enabled["enabled"] is True and enabled["created_at"] is not None
    again = (await client.get(sharing_url(actor, dashboard), headers=actor.headers)).json()
    assert again["access_token"] == enabled["access_token"]
    assert again["created_at"] == enabled["created_at"]


async def test_tokens_carry_at_least_128_bits(client: httpx.AsyncClient, actor: Actor) -> None:
    tokens = set()
    for _ in range(5):
        dashboard = await new_dashboard(client, actor)
        token = (await patch_sharing(client, actor, dashboard, enabled=True))["access_token"]
        # URL-safe base64: 6 bits a character.
        assert re.fullmatch(r"[A-Za-z0-9_-]+", token) and len(token) * 6 >= 128
        tokens.add(token)
    assert len(tokens) == 5


async def test_is_shared_follows_enabled(client: httpx.AsyncClient, actor: Actor) -> None:
    dashboard = await new_dashboard(client, actor)

    async def shared() -> tuple[bool, bool]:
        one = (await client.get(actor.url(f"dashboards/{dashboard}/"), headers=actor.headers)).json()
        listed = (await client.get(actor.url("dashboards/"), headers=actor.headers)).json()["results"]
        return one["is_shared"], next(d["is_shared"] for d in listed if d["id"] == dashboard)

    assert await shared() == (False, False)
    await patch_sharing(client, actor, dashboard, enabled=True)
    assert await shared() == (True, True)
    patched = await client.patch(
        actor.url(f"dashboards/{dashboard}/"), json={"name": "N"}, headers=actor.headers
    )
    assert patched.json()["is_shared"] is True
    await patch_sharing(client, actor, dashboard, enabled=False)
    assert await shared() == (False, False)


async def test_settings_keep_known_flags_and_refuse_wrong_types(
    client: httpx.AsyncClient, actor: Actor
) -> None:
    dashboard = await new_dashboard(client, actor)
    body = await patch_sharing(
        client, actor, dashboard, settings={"whitelabel": True, "noHeader": False, "secret": "dropped"}
    )
    assert body["settings"] == {"whitelabel": True, "noHeader": False}
    for bad in ({"legend": "yes please"}, {"detailed": [1]}, ["whitelabel"], "x"):
        refused = await client.patch(
            sharing_url(actor, dashboard), json={"settings": bad}, headers=actor.headers
        )
        assert refused.status_code == 400, bad
        assert refused.json() == {"error": "Invalid settings format"}
    wrong = await client.patch(
        sharing_url(actor, dashboard), json={"enabled": "maybe"}, headers=actor.headers
    )
    assert wrong.status_code == 400
    assert wrong.json()["attr"] == "enabled"
    # Nothing of the refused requests was kept.
    kept = (await client.get(sharing_url(actor, dashboard), headers=actor.headers)).json()
    assert kept["settings"] == {"whitelabel": True, "noHeader": False}


async def test_scopes(client: httpx.AsyncClient, actor: Actor, db: AsyncSession) -> None:
    dashboard = await new_dashboard(client, actor)
    reader = await make_member(db, actor.team, scopes=["sharing_configuration:read"])
    writer = await make_member(db, actor.team, scopes=["sharing_configuration:write"])
    other = await make_member(db, actor.team, scopes=["dashboard:write"])
    assert (await client.get(sharing_url(actor, dashboard), headers=reader.headers)).status_code == 200
    refused = await client.patch(
        sharing_url(actor, dashboard), json={"enabled": True}, headers=reader.headers
    )
    assert refused.status_code == 403
    assert refused.json()["detail"] == "API key missing required scope 'sharing_configuration:write'"
    for path in ("refresh/", "passwords/"):
        post = await client.post(sharing_url(actor, dashboard, path), json={}, headers=reader.headers)
        assert post.status_code == 403, path
    assert (await client.get(sharing_url(actor, dashboard), headers=other.headers)).status_code == 403
    done = await client.patch(sharing_url(actor, dashboard), json={"enabled": True}, headers=writer.headers)
    assert done.status_code == 200


async def test_edits_follow_the_dashboards_restriction_level(
    client: httpx.AsyncClient, actor: Actor, db: AsyncSession
) -> None:
    restricted = await new_dashboard(client, actor, restriction_level=37)
    open_one = await new_dashboard(client, actor)
    member = await make_member(db, actor.team, level=MEMBER)
    # Reading is fine; changing a dashboard only collaborators may edit is not.
    assert (await client.get(sharing_url(actor, restricted), headers=member.headers)).status_code == 200
    for method, path, body in (
        ("PATCH", "", {"enabled": True}),
        ("POST", "refresh/", None),
        ("POST", "passwords/", {"raw_password": "long enough"}),
        ("DELETE", "passwords/1/", None),
    ):
        refused = await client.request(
            method, sharing_url(actor, restricted, path), json=body, headers=member.headers
        )
        assert refused.status_code == 403, (method, path)
        assert refused.json()["detail"] == "You don't have edit permissions for this dashboard."
    assert (await patch_sharing(client, member, open_one, enabled=True))["enabled"] is True
    # A collaborator may.
    added = await client.post(
        actor.url(f"dashboards/{restricted}/collaborators/"),
        json={"user_uuid": str(member.user.uuid), "level": 37},
        headers=actor.headers,
    )
    assert added.status_code == 201
    assert (await patch_sharing(client, member, restricted, enabled=True))["enabled"] is True


async def test_unknown_deleted_and_foreign_dashboards(
    client: httpx.AsyncClient, actor: Actor, other_actor: Actor
) -> None:
    missing = await client.get(sharing_url(actor, 2_000_000_000), headers=actor.headers)
    assert missing.status_code == 404
    assert missing.json()["detail"] == "Dashboard not found."
    dashboard = await new_dashboard(client, actor)
    await client.patch(actor.url(f"dashboards/{dashboard}/"), json={"deleted": True}, headers=actor.headers)
    assert (await client.get(sharing_url(actor, dashboard), headers=actor.headers)).status_code == 404
    theirs = await new_dashboard(client, other_actor)
    assert (await client.get(sharing_url(actor, theirs), headers=actor.headers)).status_code == 404
    other_team = await client.get(sharing_url(other_actor, theirs), headers=actor.headers)
    assert other_team.status_code == 403


async def test_refresh_rotates_with_a_grace_period(
    client: httpx.AsyncClient, actor: Actor, clock: FakeClock
) -> None:
    dashboard, old = await shared_dashboard(client, actor)
    await patch_sharing(client, actor, dashboard, settings={"legend": True})
    rotated = await client.post(sharing_url(actor, dashboard, "refresh/"), headers=actor.headers)
    assert rotated.status_code == 200
    new = rotated.json()
    assert new["access_token"] != old
    assert new["enabled"] is True and new["settings"] == {"legend": True}
    current = (await client.get(sharing_url(actor, dashboard), headers=actor.headers)).json()
    assert current["access_token"] == new["access_token"]
    # Both work within the grace period.
    assert (await client.get(f"/shared/{old}.json")).status_code == 200
    assert (await client.get(f"/shared/{new['access_token']}.json")).status_code == 200
    clock.advance(seconds=299)
    assert (await client.get(f"/shared/{old}.json")).status_code == 200
    clock.advance(seconds=2)
    assert (await client.get(f"/shared/{old}.json")).status_code == 404
    assert (await client.get(f"/shared/{old}")).status_code == 404
    assert (await client.get(f"/shared/{new['access_token']}.json")).status_code == 200


async def test_refresh_before_any_write_creates_the_share(client: httpx.AsyncClient, actor: Actor) -> None:
    dashboard = await new_dashboard(client, actor)
    rotated = await client.post(sharing_url(actor, dashboard, "refresh/"), headers=actor.headers)
    assert rotated.status_code == 200
    assert rotated.json()["enabled"] is False and rotated.json()["created_at"] is not None


async def test_passwords_and_protection_carry_over_on_rotation(
    client: httpx.AsyncClient, actor: Actor, clock: FakeClock
) -> None:
    share = await protected_dashboard(client, actor)
    before = await jwt_for(client, share)
    second, _ = await add_password(client, actor, share.dashboard, "another one!")
    rotated = (
        await client.post(sharing_url(actor, share.dashboard, "refresh/"), headers=actor.headers)
    ).json()
    new_token = rotated["access_token"]
    assert rotated["password_required"] is True
    assert {p["id"] for p in rotated["share_passwords"]} >= {share.password_id}
    assert len(rotated["share_passwords"]) == 2
    # The new token is locked; both passwords open it.
    assert (await client.get(f"/shared/{new_token}.json")).json() == {"type": "unlock"}
    for password in (share.password, second):
        assert (await unlock(client, new_token, password)).status_code == 200
    # A JWT of the old token works until its grace period ends, then stops.
    assert (
        await client.get(f"/shared/{share.token}.json", headers={"Authorization": f"Bearer {before}"})
    ).json()["type"] == "scene"
    clock.advance(seconds=301)
    late = await client.get(f"/shared/{share.token}.json", headers={"Authorization": f"Bearer {before}"})
    assert late.status_code == 404
    refused = await client.get(
        actor.url(f"dashboards/{share.dashboard}/"), params={"sharing_access_token": before}
    )
    assert refused.status_code == 401


async def test_password_rules(client: httpx.AsyncClient, actor: Actor, db: AsyncSession) -> None:
    dashboard, _ = await shared_dashboard(client, actor)
    url = sharing_url(actor, dashboard, "passwords/")
    not_yet = await client.post(url, json={"raw_password": "long enough"}, headers=actor.headers)
    assert not_yet.status_code == 400
    assert not_yet.json() == {"error": "Password protection must be enabled before creating passwords"}
    await patch_sharing(client, actor, dashboard, password_required=True)
    short = await client.post(url, json={"raw_password": "short"}, headers=actor.headers)
    assert short.status_code == 400
    assert short.json() == {"error": "Password must be at least 8 characters long."}
    for odd in (
        '{"raw_password": "\\ud800\\ud800\\ud800\\ud800\\ud800\\ud800\\ud800\\ud800"}',
        '{"note": "a\\u0000"}',
    ):
        answer = await client.post(
            url, content=odd, headers={**actor.headers, "Content-Type": "application/json"}
        )
        assert answer.status_code == 400, odd
    long_note = await client.post(url, json={"note": "n" * 101}, headers=actor.headers)
    assert long_note.status_code == 400 and long_note.json()["attr"] == "note"
    made = await client.post(url, json={"note": "for Ann"}, headers=actor.headers)
    assert made.status_code == 201
    body = made.json()
    assert set(body) == {"id", "password", "note", "created_at", "created_by_email"}
    assert len(body["password"]) >= 16 and body["note"] == "for Ann"
    assert body["created_by_email"] == actor.user.email
    # Only a hash is stored, argon2id.
    stored = await db.execute(
        text("SELECT password_hash FROM share_password WHERE id = :i"), {"i": body["id"]}
    )
    assert stored.scalar_one().startswith("$argon2id$")
    listed = (await client.get(sharing_url(actor, dashboard), headers=actor.headers)).json()[
        "share_passwords"
    ]
    assert listed == [
        {
            "id": body["id"],
            "created_at": body["created_at"],
            "note": "for Ann",
            "created_by_email": actor.user.email,
            "is_active": True,
        }
    ]


async def test_at_most_20_active_passwords(client: httpx.AsyncClient, actor: Actor) -> None:
    share = await protected_dashboard(client, actor)
    url = sharing_url(actor, share.dashboard, "passwords/")
    for i in range(19):
        assert (await client.post(url, json={"note": str(i)}, headers=actor.headers)).status_code == 201
    over = await client.post(url, json={}, headers=actor.headers)
    assert over.status_code == 400
    assert over.json() == {"error": "A share can have at most 20 active passwords."}
    gone = await client.delete(
        sharing_url(actor, share.dashboard, f"passwords/{share.password_id}/"), headers=actor.headers
    )
    assert gone.status_code == 204
    assert (await client.post(url, json={}, headers=actor.headers)).status_code == 201


async def test_deleting_a_password(client: httpx.AsyncClient, actor: Actor) -> None:
    share = await protected_dashboard(client, actor)
    url = sharing_url(actor, share.dashboard, f"passwords/{share.password_id}/")
    assert (await client.delete(url, headers=actor.headers)).status_code == 204
    again = await client.delete(url, headers=actor.headers)
    assert again.status_code == 404
    assert again.json() == {"error": "Password not found"}
    listed = (await client.get(sharing_url(actor, share.dashboard), headers=actor.headers)).json()
    assert listed["share_passwords"] == []
    assert (await unlock(client, share.token, share.password)).status_code == 401


# --- public links -----------------------------------------------------------------------------------------


async def test_shared_json_is_the_exported_data_in_shared_context(
    client: httpx.AsyncClient, actor: Actor, db: AsyncSession
) -> None:
    dashboard, token = await shared_dashboard(client, actor, name="Sales", description="Weekly")
    await patch_sharing(client, actor, dashboard, settings={"noHeader": True})
    accessed = text("SELECT last_accessed_at FROM dashboard WHERE id = :id")
    assert (await db.execute(accessed, {"id": dashboard})).scalar_one() is None
    response = await client.get(f"/shared/{token}.json")
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["type"] == "scene" and body["accessToken"] == token
    assert body["noHeader"] is True and body["whitelabel"] is False
    assert {"showInspector", "legend", "detailed", "hideExtraDetails"} <= set(body)
    shared = body["dashboard"]
    assert shared["id"] == dashboard and shared["name"] == "Sales" and shared["is_shared"] is True
    assert shared["effective_restriction_level"] == 37 and shared["effective_privilege_level"] == 21
    assert shared["user_access_level"] is None and shared["last_viewed_at"] is None
    # Shared context computes what is missing (no `refresh` is `lazy_async` there).
    (tile,) = shared["tiles"]
    assert tile["insight"]["result"] is not None
    assert tile["insight"]["effective_privilege_level"] == 21
    assert any(theme["is_global"] for theme in body["themes"])
    embedded = (await client.get(f"/embedded/{token}.json")).json()
    assert embedded["type"] == "embed"
    # The access is recorded (written after the response), with no view of anyone's.
    assert shared["last_accessed_at"] is not None
    assert (await db.execute(accessed, {"id": dashboard})).scalar_one() is not None
    views = text("SELECT count(*) FROM dashboard_view WHERE dashboard_id = :id")
    assert (await db.execute(views, {"id": dashboard})).scalar_one() == 0


async def test_shared_json_answers_404_when_the_share_does_not_open(
    client: httpx.AsyncClient, actor: Actor
) -> None:
    dashboard, token = await shared_dashboard(client, actor)
    assert (await client.get("/shared/no-such-token.json")).status_code == 404
    await patch_sharing(client, actor, dashboard, enabled=False)
    for path in (
        f"/shared/{token}.json",
        f"/embedded/{token}.json",
        f"/shared/{token}",
        f"/embedded/{token}",
    ):
        assert (await client.get(path)).status_code == 404, path
    page = await client.get(f"/shared/{token}")
    assert page.headers["content-type"].startswith("text/html")
    await patch_sharing(client, actor, dashboard, enabled=True)
    assert (await client.get(f"/shared/{token}.json")).status_code == 200
    await client.patch(actor.url(f"dashboards/{dashboard}/"), json={"deleted": True}, headers=actor.headers)
    assert (await client.get(f"/shared/{token}.json")).status_code == 404
    assert (await client.get(f"/embedded/{token}")).status_code == 404


async def test_pages_name_the_dashboard_and_may_be_framed(client: httpx.AsyncClient, actor: Actor) -> None:
    _, token = await shared_dashboard(client, actor, name="<Q4 & more>", description="For the board")
    for prefix in ("shared", "embedded"):
        page = await client.get(f"/{prefix}/{token}")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert "&lt;Q4 &amp; more&gt;" in page.text and "<Q4" not in page.text
        assert "For the board" in page.text
        assert "x-frame-options" not in page.headers
        assert "frame-ancestors *" in page.headers["content-security-policy"]
        assert page.headers["cache-control"] == "no-store"
    # `Accept: application/json` on the page answers the exported data, as PostHog.
    as_json = await client.get(f"/shared/{token}", headers={"Accept": "application/json"})
    assert as_json.json()["type"] == "scene"


async def test_a_locked_share_names_nothing(client: httpx.AsyncClient, actor: Actor) -> None:
    share = await protected_dashboard(client, actor, name="Secret plans", description="Do not read")
    locked = await client.get(f"/shared/{share.token}.json")
    assert locked.status_code == 200
    assert locked.json() == {"type": "unlock"}
    assert (await client.get(f"/embedded/{share.token}.json")).json() == {"type": "unlock"}
    for prefix in ("shared", "embedded"):
        page = await client.get(f"/{prefix}/{share.token}")
        assert page.status_code == 200
        assert "Secret plans" not in page.text and "Do not read" not in page.text
        assert "password protected" in page.text
    # Its token alone gets no data anywhere.
    params = {"sharing_access_token": share.token}
    retrieve = await client.get(actor.url(f"dashboards/{share.dashboard}/"), params=params)
    assert retrieve.status_code == 401
    themes = await client.get(actor.url("data_color_themes/"), params=params)
    assert themes.status_code == 401
    with_token_as_jwt = await client.get(f"/shared/{share.token}.json", params=params)
    assert with_token_as_jwt.json() == {"type": "unlock"}
    bearer = await client.get(
        f"/shared/{share.token}.json", headers={"Authorization": f"Bearer {share.token}"}
    )
    assert bearer.json() == {"type": "unlock"}


async def test_unlock_answers_and_the_cookie(client: httpx.AsyncClient, actor: Actor) -> None:
    share = await protected_dashboard(client, actor)
    wrong = await unlock(client, share.token, "not the password")
    assert wrong.status_code == 401
    assert wrong.json() == {"error": "Incorrect password"}
    assert "set-cookie" not in wrong.headers
    right = await unlock(client, share.token, share.password)
    assert right.status_code == 200
    token = right.json()["shareToken"]
    assert set(right.json()) == {"shareToken"}
    cookie = right.headers["set-cookie"]
    parts = [p.strip() for p in cookie.split(";")]
    assert parts[0] == f"posthog_sharing_token={token}"
    assert f"Path=/shared/{share.token}" in parts
    assert "HttpOnly" in parts and "SameSite=Lax" in parts and "Max-Age=86400" in parts
    assert any(p.startswith("Expires=") for p in parts)
    assert "Secure" not in parts
    embedded = await unlock(client, share.token, share.password, prefix="embedded")
    assert f"Path=/embedded/{share.token}" in embedded.headers["set-cookie"]
    # A form body works as well.
    form = await client.post(f"/shared/{share.token}", data={"password": share.password})
    assert form.status_code == 200
    # Odd passwords are incorrect ones, never a 5xx.
    for odd in ('{"password": "\\ud800"}', '{"password": 12}', "[]", "not json", '{"password": "a\\u0000b"}'):
        answer = await client.post(
            f"/shared/{share.token}", content=odd, headers={"Content-Type": "application/json"}
        )
        assert answer.status_code == 401, odd
    # Unknown token: 404; a share without a password: 400.
    assert (await unlock(client, "nope", "whatever")).status_code == 404
    _, open_token = await shared_dashboard(client, actor)
    assert (await unlock(client, open_token, "whatever")).status_code == 400


async def test_the_cookie_is_secure_over_https(app: FastAPI, actor: Actor, client: httpx.AsyncClient) -> None:
    share = await protected_dashboard(client, actor)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as https:
        right = await unlock(https, share.token, share.password)
    parts = [p.strip() for p in right.headers["set-cookie"].split(";")]
    assert "Secure" in parts


async def test_the_jwt_opens_the_share_as_cookie_bearer_or_parameter(
    client: httpx.AsyncClient, actor: Actor
) -> None:
    share = await protected_dashboard(client, actor, name="Opened")
    token = await jwt_for(client, share)
    # The cookie the unlock set unlocks reloads of that page (its path is the page's: not sent to `.json`).
    assert "Opened" in (await client.get(f"/shared/{share.token}")).text
    as_json = await client.get(f"/shared/{share.token}", headers={"Accept": "application/json"})
    assert as_json.json()["dashboard"]["name"] == "Opened"
    assert (await client.get(f"/shared/{share.token}.json")).json() == {"type": "unlock"}
    client.cookies.clear()
    assert "Opened" not in (await client.get(f"/shared/{share.token}")).text
    by_bearer = await client.get(f"/shared/{share.token}.json", headers={"Authorization": f"Bearer {token}"})
    assert by_bearer.json()["type"] == "scene"
    by_param = await client.get(f"/embedded/{share.token}.json", params={"sharing_access_token": token})
    assert by_param.json()["type"] == "embed"
    api = await client.get(
        actor.url(f"dashboards/{share.dashboard}/"), params={"sharing_access_token": token}
    )
    assert api.status_code == 200 and api.json()["name"] == "Opened"
    # A JWT names its share: another share's page stays locked.
    other = await protected_dashboard(client, actor)
    client.cookies.clear()
    assert (
        await client.get(f"/shared/{other.token}.json", headers={"Authorization": f"Bearer {token}"})
    ).json() == {"type": "unlock"}


async def test_revoking_a_password_kills_its_jwts_at_once(client: httpx.AsyncClient, actor: Actor) -> None:
    share = await protected_dashboard(client, actor)
    kept_password, _ = await add_password(client, actor, share.dashboard, "the other one")
    doomed = await jwt_for(client, share)
    kept = (await unlock(client, share.token, kept_password)).json()["shareToken"]
    client.cookies.clear()
    gone = await client.delete(
        sharing_url(actor, share.dashboard, f"passwords/{share.password_id}/"), headers=actor.headers
    )
    assert gone.status_code == 204
    bearer = {"Authorization": f"Bearer {doomed}"}
    assert (await client.get(f"/shared/{share.token}.json", headers=bearer)).json() == {"type": "unlock"}
    api = await client.get(
        actor.url(f"dashboards/{share.dashboard}/"), params={"sharing_access_token": doomed}
    )
    assert api.status_code == 401
    # The other password's JWT still works.
    still = await client.get(f"/shared/{share.token}.json", headers={"Authorization": f"Bearer {kept}"})
    assert still.json()["type"] == "scene"


async def test_jwts_last_24_hours(client: httpx.AsyncClient, actor: Actor, clock: FakeClock) -> None:
    share = await protected_dashboard(client, actor)
    token = await jwt_for(client, share)
    client.cookies.clear()
    bearer = {"Authorization": f"Bearer {token}"}
    clock.advance(hours=23, minutes=59)
    assert (await client.get(f"/shared/{share.token}.json", headers=bearer)).json()["type"] == "scene"
    clock.advance(minutes=2)
    assert (await client.get(f"/shared/{share.token}.json", headers=bearer)).json() == {"type": "unlock"}


async def test_a_forged_or_tampered_jwt_opens_nothing(client: httpx.AsyncClient, actor: Actor) -> None:
    share = await protected_dashboard(client, actor)
    token = await jwt_for(client, share)
    client.cookies.clear()
    claims = jwt.decode(token, options={"verify_signature": False})
    forged = jwt.encode(claims, "not the secret, though long enough for HS256", algorithm="HS256")
    unsigned = jwt.encode(claims, None, algorithm="none")
    for value in (forged, unsigned, token[:-2] + ("AA" if not token.endswith("AA") else "BB")):
        headers = {"Authorization": f"Bearer {value}"}
        assert (await client.get(f"/shared/{share.token}.json", headers=headers)).json() == {"type": "unlock"}


async def test_configured_jwt_secret_signs_and_is_never_logged(
    configured: object, actor: Actor, client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    share = await protected_dashboard(client, actor)
    secret = "a-configured-secret-of-enough-length-0123456789"
    caplog.set_level(logging.DEBUG)
    async with configured(TILECAST_SHARING_JWT_SECRET=secret) as other:  # type: ignore[operator]
        token = (await unlock(other, share.token, share.password)).json()["shareToken"]
    claims = jwt.decode(token, secret, algorithms=["HS256"], audience=JWT_AUDIENCE)
    assert claims["access_token"] == share.token and claims["share_password_id"] == share.password_id
    assert claims["team_id"] == actor.team.id and claims["exp"] - claims["iat"] == 86400
    assert secret not in caplog.text and share.password not in caplog.text


async def test_a_generated_jwt_secret_is_stored(
    app: FastAPI, client: httpx.AsyncClient, actor: Actor, db: AsyncSession
) -> None:
    share: Protected = await protected_dashboard(client, actor)
    # A process that has not read the secret yet (this app's copy is of an earlier, rolled back, test).
    kept = app.state.sharing_secret
    app.state.sharing_secret = JwtSecret(get_settings())
    try:
        token = await jwt_for(client, share)
    finally:
        app.state.sharing_secret = kept
    stored = (await db.execute(text("SELECT value FROM app_secret WHERE name = 'sharing_jwt'"))).scalar_one()
    assert len(stored) >= 40
    assert jwt.decode(token, stored, algorithms=["HS256"], audience=JWT_AUDIENCE)["team_id"] == actor.team.id


async def test_unlock_attempts_are_logged_with_the_client_address(
    client: httpx.AsyncClient, actor: Actor, caplog: pytest.LogCaptureFixture
) -> None:
    share = await protected_dashboard(client, actor)
    caplog.set_level(logging.INFO, logger="tilecast.sharing")
    await unlock(client, share.token, "wrong password")
    await unlock(client, share.token, share.password)
    lines = [r.getMessage() for r in caplog.records if r.name == "tilecast.sharing"]
    assert any("incorrect password from 127.0.0.1" in line for line in lines)
    assert any("unlocked from 127.0.0.1" in line for line in lines)
    # The token is masked; the passwords are not written.
    assert share.token not in caplog.text and share.password not in caplog.text


async def test_failed_attempts_are_rate_limited_per_address(
    client: httpx.AsyncClient, actor: Actor, db: AsyncSession, clock: FakeClock
) -> None:
    share = await protected_dashboard(client, actor)
    for _ in range(10):
        assert (await unlock(client, share.token, "wrong password")).status_code == 401
    limited = await unlock(client, share.token, "wrong password")
    assert limited.status_code == 429
    assert 1 <= int(limited.headers["retry-after"]) <= 60
    assert limited.json()["type"] == "throttled_error"
    # Even the right password waits: guessing must not tell which one is right.
    assert (await unlock(client, share.token, share.password)).status_code == 429
    # The next minute starts again.
    await db.execute(
        text("UPDATE sharing_unlock_attempt SET window_start = window_start - interval '1 minute'")
    )
    assert (await unlock(client, share.token, share.password)).status_code == 200


async def test_successes_do_not_count(client: httpx.AsyncClient, actor: Actor, clock: FakeClock) -> None:
    share = await protected_dashboard(client, actor)
    for _ in range(15):
        assert (await unlock(client, share.token, share.password)).status_code == 200
    assert (await unlock(client, share.token, "wrong password")).status_code == 401


async def test_failed_attempts_are_rate_limited_per_share(
    app: FastAPI, client: httpx.AsyncClient, actor: Actor, clock: FakeClock
) -> None:
    share = await protected_dashboard(client, actor)
    statuses = []
    for i in range(32):
        transport = httpx.ASGITransport(app=app, client=(f"10.0.0.{i}", 1234))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as from_elsewhere:
            statuses.append((await unlock(from_elsewhere, share.token, "wrong password")).status_code)
    assert statuses[:30] == [401] * 30
    assert statuses[30:] == [429, 429]
    # Another share is not affected.
    other = await protected_dashboard(client, actor)
    assert (await unlock(client, other.token, other.password)).status_code == 200


async def test_a_limit_of_zero_is_off(
    configured: object, client: httpx.AsyncClient, actor: Actor, db: AsyncSession
) -> None:
    share = await protected_dashboard(client, actor)
    env = {"TILECAST_SHARING_UNLOCK_LIMIT_PER_ADDRESS": "0", "TILECAST_SHARING_UNLOCK_LIMIT_PER_TOKEN": "12"}
    async with configured(**env) as other:  # type: ignore[operator]
        other._transport.app.state.clock = FakeClock()  # the minute cannot turn during the test
        statuses = [(await unlock(other, share.token, "wrong password")).status_code for _ in range(13)]
    assert statuses == [401] * 12 + [429]
    assert await count(db, "sharing_unlock_attempt") == 1  # the share's row alone
