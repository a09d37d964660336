"""Signed-in viewers over HTTP: the sign-in page, the session's cookie and row, what a session may do (GET and
HEAD, with its key's scopes and teams; explicit credentials win), and how it ends (sign-out, a revoked or
rolled key, its 12 hours)."""

import hashlib
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.dependencies import OTHER_ORIGIN, SESSION_ENDED
from app.auth.sessions import COOKIE_NAME
from tests.factories import Actor, make_actor
from tests.resources import new_dashboard
from tests.sharing_helpers import shared_dashboard


async def sign_in(client: httpx.AsyncClient, key: str, **headers: str) -> httpx.Response:
    return await client.post("/sign-in", data={"personal_api_key": key}, headers=headers)


def _cookie_parts(response: httpx.Response) -> list[str]:
    (cookie,) = [c for c in response.headers.get_list("set-cookie") if c.startswith(COOKIE_NAME + "=")]
    return [part.strip() for part in cookie.split(";")]


async def _rows(db: AsyncSession) -> list[Any]:
    return list((await db.execute(text("SELECT * FROM viewer_session ORDER BY id"))).mappings().all())


async def test_signing_in_makes_a_session_of_the_keys_id_and_a_hash(
    client: httpx.AsyncClient, actor: Actor, db: AsyncSession
) -> None:
    page = await client.get("/")
    assert page.status_code == 200 and 'action="/sign-in"' in page.text
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    response = await sign_in(client, actor.key)
    assert response.status_code == 303 and response.headers["location"] == "/"
    parts = _cookie_parts(response)
    secret = parts[0].split("=", 1)[1]
    assert len(secret) >= 40 and actor.key not in secret
    assert {"HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=43200"} <= set(parts)
    assert "Secure" not in parts  # plain http
    (row,) = [r for r in await _rows(db) if r["secret_hash"] == hashlib.sha256(secret.encode()).hexdigest()]
    key_id = (
        await db.execute(text("SELECT id FROM personal_api_key WHERE user_id = :u"), {"u": actor.user.id})
    ).scalar_one()
    assert row["key_id"] == key_id
    assert row["expires_at"] - row["created_at"] == timedelta(hours=12)
    assert secret not in str(dict(row)) and actor.key not in str(dict(row))
    # The list of the key's teams and their dashboards.
    listing = await client.get("/")
    assert f'data-team-id="{actor.team.id}"' in listing.text and "Sign out" in listing.text


async def test_the_cookie_is_secure_over_https(actor: Actor, app: Any) -> None:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as secure:
        response = await sign_in(secure, actor.key)
    assert "Secure" in _cookie_parts(response)


async def test_a_wrong_key_signs_nobody_in(client: httpx.AsyncClient, actor: Actor, db: AsyncSession) -> None:
    before = len(await _rows(db))
    for value in ("phx_nope", "", "é" * 10, actor.key + "x"):
        response = await sign_in(client, value)
        assert response.status_code == 401
        assert "That personal API key is not valid." in response.text
        assert "set-cookie" not in response.headers
    assert len(await _rows(db)) == before


async def test_a_session_reads_with_its_keys_rights_and_writes_nothing(
    client: httpx.AsyncClient, actor: Actor, other_actor: Actor
) -> None:
    dashboard = await new_dashboard(client, actor, name="Mine")
    await sign_in(client, actor.key)
    assert (await client.get(actor.url("dashboards/"))).status_code == 200
    assert (await client.get(actor.url(f"dashboards/{dashboard}/"))).json()["name"] == "Mine"
    assert (await client.get(actor.url("dashboards/", prefix="projects"))).status_code == 200
    stream = await client.get(actor.url(f"dashboards/{dashboard}/stream_tiles/"))
    assert stream.status_code == 200 and '"complete"' in stream.text
    # Another team's: as for the key.
    assert (await client.get(other_actor.url("dashboards/"))).status_code == 403
    # Writes are not a session's: 401 as if no credentials came.
    for method, path in (("POST", "dashboards/"), ("PATCH", f"dashboards/{dashboard}/")):
        response = await client.request(method, actor.url(path), json={"name": "x"})
        assert response.status_code == 401 and response.json()["code"] == "not_authenticated"
    assert (await client.get(actor.url(f"dashboards/{dashboard}/"))).json()["name"] == "Mine"


async def test_a_sessions_key_scopes_still_apply(client: httpx.AsyncClient, db: AsyncSession) -> None:
    reader = await make_actor(db, scopes=["insight:read"])
    await sign_in(client, reader.key)
    assert (await client.get(reader.url("insights/"))).status_code == 200
    refused = await client.get(reader.url("dashboards/"))
    assert refused.status_code == 403 and "dashboard:read" in refused.json()["detail"]
    assert "no <code>dashboard:read</code> scope" in (await client.get("/")).text


async def test_explicit_credentials_win_over_the_session(
    client: httpx.AsyncClient, actor: Actor, other_actor: Actor
) -> None:
    mine = await new_dashboard(client, actor)
    shared, token = await shared_dashboard(client, other_actor)
    await sign_in(client, actor.key)
    # Another key in the header, the body or the query string: that key, not the session.
    assert (await client.get(actor.url("dashboards/"), headers=other_actor.headers)).status_code == 403
    assert (await client.get(other_actor.url("dashboards/"), headers=other_actor.headers)).status_code == 200
    by_query = await client.get(actor.url("dashboards/"), params={"personal_api_key": other_actor.key})
    assert by_query.status_code == 403
    bad = await client.get(actor.url("dashboards/"), headers={"Authorization": "Bearer phx_wrong"})
    assert bad.status_code == 401 and "invalid" in bad.json()["detail"]
    # A sharing token: the grant, not the session (its dashboard only; refused on key-only routes).
    grant = {"sharing_access_token": token}
    assert (await client.get(other_actor.url(f"dashboards/{shared}/"), params=grant)).status_code == 200
    assert (await client.get(actor.url(f"dashboards/{mine}/"), params=grant)).status_code == 403
    assert (await client.get(actor.url("dashboards/"), params=grant)).status_code == 401


async def test_revoking_or_rolling_the_key_ends_its_sessions(
    client: httpx.AsyncClient, actor: Actor, db: AsyncSession
) -> None:
    rolled = await make_actor(db)
    await sign_in(client, rolled.key)
    assert (await client.get(rolled.url("dashboards/"))).status_code == 200
    await db.execute(
        text("UPDATE personal_api_key SET last_rolled_at = :t WHERE user_id = :u"),
        {"t": datetime.now(UTC) + timedelta(seconds=1), "u": rolled.user.id},
    )
    ended = await client.get(rolled.url("dashboards/"))
    assert ended.status_code == 401 and ended.json()["detail"] == SESSION_ENDED

    await sign_in(client, actor.key)
    assert (await client.get(actor.url("dashboards/"))).status_code == 200
    key_id = (
        await db.execute(text("SELECT id FROM personal_api_key WHERE user_id = :u"), {"u": actor.user.id})
    ).scalar_one()
    assert [r for r in await _rows(db) if r["key_id"] == key_id]
    await db.execute(text("DELETE FROM personal_api_key WHERE id = :k"), {"k": key_id})
    assert [r for r in await _rows(db) if r["key_id"] == key_id] == []  # deleted with the key
    refused = await client.get(actor.url("dashboards/"))
    assert refused.status_code == 401 and refused.json()["detail"] == SESSION_ENDED
    page = await client.get("/")
    assert 'action="/sign-in"' in page.text
    assert any(c.startswith(f"{COOKIE_NAME}=;") for c in page.headers.get_list("set-cookie"))


async def test_a_session_ends_after_12_hours(
    client: httpx.AsyncClient, actor: Actor, db: AsyncSession
) -> None:
    await sign_in(client, actor.key)
    await db.execute(text("UPDATE viewer_session SET expires_at = now() - interval '1 second'"))
    assert (await client.get(actor.url("dashboards/"))).status_code == 401


async def test_signing_out_deletes_the_row_and_only_from_this_site(
    client: httpx.AsyncClient, actor: Actor, db: AsyncSession
) -> None:
    await sign_in(client, actor.key)
    secret = client.cookies[COOKIE_NAME]
    digest = hashlib.sha256(secret.encode()).hexdigest()
    # Another site's post (its Origin, or Sec-Fetch-Site) is refused; the session goes on.
    for headers in (
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site", "Origin": "http://testserver"},
    ):
        refused = await client.post("/sign-out", headers=headers)
        assert refused.status_code == 403
        assert [r for r in await _rows(db) if r["secret_hash"] == digest]
        refused = await sign_in(client, actor.key, **headers)
        assert refused.status_code == 403
    response = await client.post("/sign-out", headers={"Origin": "http://testserver"})
    assert response.status_code == 303
    assert _cookie_parts(response)[:2] == [f"{COOKIE_NAME}=", "Max-Age=0"]
    assert not [r for r in await _rows(db) if r["secret_hash"] == digest]
    client.cookies.set(COOKIE_NAME, secret)
    assert (await client.get(actor.url("dashboards/"))).status_code == 401


async def test_the_list_searches_and_puts_pinned_first(client: httpx.AsyncClient, actor: Actor) -> None:
    await new_dashboard(client, actor, name="Alpha <b>")
    await new_dashboard(client, actor, name="Beta")
    pinned = await new_dashboard(client, actor, name="Zulu", pinned=True)
    await sign_in(client, actor.key)
    page = (await client.get("/")).text
    assert page.index("Zulu") < page.index("Alpha &lt;b&gt;") < page.index("Beta")
    assert f'href="/project/{actor.team.id}/dashboard/{pinned}"' in page
    found = (await client.get("/", params={"search": "bet"})).text
    assert "Beta" in found and "Alpha" not in found and "Zulu" not in found
    assert "No dashboards match." in (await client.get("/", params={"search": "%_"})).text


async def test_the_dashboard_page_of_a_signed_in_viewer(client: httpx.AsyncClient, actor: Actor) -> None:
    dashboard = await new_dashboard(client, actor, name="Mine")
    path = f"/project/{actor.team.id}/dashboard/{dashboard}"
    signed_out = await client.get(path)
    assert signed_out.status_code == 303 and signed_out.headers["location"] == "/"
    await sign_in(client, actor.key)
    page = await client.get(path)
    assert page.status_code == 200
    assert (
        f'data-stream-url="/api/environments/{actor.team.id}/dashboards/{dashboard}/stream_tiles/"'
        in page.text
    )
    assert "&quot;controls&quot;:true" in page.text
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert (await client.get(f"/project/{actor.team.id}/dashboard/999999999")).status_code == 404
    assert (await client.get(f"/project/{actor.team.id}/dashboard/abc")).status_code == 404
    assert (await client.get(f"/project/{actor.team.id + 1000}/dashboard/{dashboard}")).status_code == 403


async def test_no_log_line_carries_a_session_id_or_a_key(
    client: httpx.AsyncClient, actor: Actor, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    await sign_in(client, actor.key)
    secret = client.cookies[COOKIE_NAME]
    await client.get(actor.url("dashboards/"), params={"filters_override": "{}"})
    await sign_in(client, "phx_wrong_key")
    await client.post("/sign-out")
    # The server's log lines (not the test client's own).
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("tilecast"))
    assert secret not in logged and actor.key not in logged and "phx_wrong_key" not in logged
    assert "filters_override" not in logged


async def test_a_session_may_post_snapshot_and_analyze_from_this_site_only(
    client: httpx.AsyncClient, actor: Actor, configured: Any, db: AsyncSession
) -> None:
    dashboard = await new_dashboard(client, actor, name="Mine")
    await sign_in(client, actor.key)
    snapshot = actor.url(f"dashboards/{dashboard}/snapshot/")
    analyze = actor.url(f"dashboards/{dashboard}/analyze_refresh_result/")
    own = {"Origin": "http://testserver"}
    made = await client.post(snapshot, json={}, headers=own)
    assert made.status_code == 200, made.text
    key = made.json()["cache_key"]
    assert key.startswith(f"dashboard_refresh_before_{dashboard}_{actor.user.id}_")
    analysed = await client.post(analyze, json={"cache_key": key}, headers=own)
    assert analysed.status_code == 200 and analysed.json()["changes"] == []
    # No Origin, another site's, `null`, or this host on another scheme or port: refused (CSRF).
    for headers in ({}, {"Origin": "https://evil.example"}, {"Origin": "null"}, {"Origin": "https://testserver"},
                    {"Origin": "http://testserver:8080"}, {"Sec-Fetch-Site": "same-origin"}):  # fmt: skip
        for url, body in ((snapshot, {}), (analyze, {"cache_key": key})):
            refused = await client.post(url, json=body, headers=headers)
            assert refused.status_code == 403, (url, headers)
            assert refused.json()["detail"] == OTHER_ORIGIN
    # Other methods on these paths, and POSTs anywhere else, are still not a session's: 401.
    for method, url in (
        ("POST", actor.url("dashboards/")),
        ("PATCH", actor.url(f"dashboards/{dashboard}/")),
        ("POST", actor.url(f"dashboards/{dashboard}/collaborators/")),
        ("POST", actor.url(f"dashboards/{dashboard}/sharing/refresh/")),
        ("POST", actor.url("insights/")),
        ("POST", actor.url("query/")),
    ):
        refused = await client.request(method, url, json={"name": "x"}, headers=own)
        assert refused.status_code == 401, (method, url, refused.text)
        assert refused.json()["code"] == "not_authenticated"
    # The session's key still needs `dashboard:write`.
    reader = await make_actor(db, scopes=["dashboard:read"])
    theirs = await new_dashboard(client, actor)
    await sign_in(client, reader.key)
    refused = await client.post(reader.url(f"dashboards/{theirs}/snapshot/"), json={}, headers=own)
    assert refused.status_code == 403 and "dashboard:write" in refused.json()["detail"]
    # Behind a proxy: the public URL's origin is this service's too.
    async with configured(TILECAST_PUBLIC_URL="https://dash.example.com/") as proxied:
        signed = await sign_in(proxied, actor.key)
        # A `Secure` cookie (the public URL is https): sent by hand over the test's plain http.
        cookie = {"Cookie": _cookie_parts(signed)[0]}
        public = {"Origin": "https://dash.example.com", **cookie}
        proxied.cookies.clear()
        assert (await proxied.post(snapshot, json={}, headers=public)).status_code == 200
        other = {"Origin": "https://other.example.com", **cookie}
        assert (await proxied.post(snapshot, json={}, headers=other)).status_code == 403
