"""Links and addresses a client cannot forge: pagination links without the caller's key and from the public
URL when one is set, forwarded headers honoured only from configured proxies, and credentials that cannot
be encoded refused as credentials."""

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.models import Event
from tests.factories import Actor


async def two_dashboards(client: httpx.AsyncClient, actor: Actor) -> None:
    for name in ("a", "b"):
        made = await client.post(actor.url("dashboards/"), json={"name": name}, headers=actor.headers)
        assert made.status_code == 201


async def test_links_never_carry_the_key_from_the_query_string(
    client: httpx.AsyncClient, actor: Actor
) -> None:
    await two_dashboards(client, actor)
    page = await client.get(actor.url("dashboards/"), params={"personal_api_key": actor.key, "limit": 1})
    assert page.status_code == 200
    body = page.json()
    assert body["next"] == f"http://testserver{actor.url('dashboards/')}?limit=1&offset=1"
    second = await client.get(body["next"] + f"&personal_api_key={actor.key}")
    assert second.json()["previous"] == f"http://testserver{actor.url('dashboards/')}?limit=1"
    assert actor.key not in page.text + second.text


async def test_forwarded_proto_from_an_unconfigured_peer_is_ignored(
    client: httpx.AsyncClient, actor: Actor
) -> None:
    await two_dashboards(client, actor)
    page = await client.get(
        actor.url("dashboards/"),
        params={"limit": 1},
        headers={**actor.headers, "X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"},
    )
    assert page.json()["next"].startswith("http://testserver/")


def test_defaults_trust_no_proxy_and_no_public_url() -> None:
    settings = Settings()
    assert settings.trusted_proxies == ""
    assert settings.public_url is None


@pytest.mark.parametrize("bad", ["dash.example.com", "ftp://dash.example.com", "https://", "https://x/?a=1"])
def test_a_public_url_must_be_an_http_url(monkeypatch: pytest.MonkeyPatch, bad: str) -> None:
    monkeypatch.setenv("TILECAST_PUBLIC_URL", bad)
    with pytest.raises(ValueError, match="TILECAST_PUBLIC_URL"):
        Settings()


async def test_public_url_builds_the_links_whatever_the_host(
    client: httpx.AsyncClient, actor: Actor, configured: Callable[..., Any]
) -> None:
    await two_dashboards(client, actor)
    async with configured(TILECAST_PUBLIC_URL="https://dash.example.com/") as other:
        page = await other.get(
            actor.url("dashboards/"),
            params={"limit": 1},
            headers={**actor.headers, "Host": "evil.example.net", "X-Forwarded-Proto": "http"},
        )
        assert page.json()["next"] == f"https://dash.example.com{actor.url('dashboards/')}?limit=1&offset=1"


async def test_a_configured_proxy_sets_scheme_and_client_address(
    client: httpx.AsyncClient, actor: Actor, db: AsyncSession, configured: Callable[..., Any]
) -> None:
    await two_dashboards(client, actor)
    # httpx's ASGI transport connects from 127.0.0.1.
    async with configured(TILECAST_TRUSTED_PROXIES="127.0.0.1") as other:
        page = await other.get(
            actor.url("dashboards/"),
            params={"limit": 1},
            headers={**actor.headers, "X-Forwarded-Proto": "https"},
        )
        assert page.json()["next"].startswith("https://testserver/")
        sent = await other.post(
            "/batch/",
            json={"api_key": actor.team.api_token, "batch": [{"event": "proxied", "distinct_id": "d"}]},
            headers={"X-Forwarded-For": "203.0.113.9"},
        )
        assert sent.status_code == 200
    ips = await _ips(db, actor)
    assert ips == {"proxied": "203.0.113.9"}


async def test_x_forwarded_for_from_an_unconfigured_peer_is_not_the_ip(
    client: httpx.AsyncClient, actor: Actor, db: AsyncSession
) -> None:
    sent = await client.post(
        "/batch/",
        json={"api_key": actor.team.api_token, "batch": [{"event": "direct", "distinct_id": "d"}]},
        headers={"X-Forwarded-For": "203.0.113.9"},
    )
    assert sent.status_code == 200
    assert await _ips(db, actor) == {"direct": "127.0.0.1"}


async def _ips(db: AsyncSession, actor: Actor) -> dict[str, str]:
    rows = await db.execute(select(Event.event, Event.properties).where(Event.team_id == actor.team.id))
    return {name: properties["$ip"] for name, properties in rows.all()}


@pytest.mark.parametrize("where", ["body", "query", "header"])
async def test_a_key_that_cannot_be_encoded_is_bad_credentials(
    client: httpx.AsyncClient, actor: Actor, where: str
) -> None:
    url = actor.url("dashboards/")
    if where == "body":
        raw = b'{"personal_api_key": "phx_\\ud800"}'
        response = await client.request("GET", url, content=raw, headers={"Content-Type": "application/json"})
    elif where == "query":
        response = await client.get(url + "?personal_api_key=phx_%ED%BF%BF")  # a surrogate in UTF-8
    else:
        response = await client.get(url, headers={"Authorization": b"Bearer phx_\xed\xbf\xbf"})
    assert response.status_code == 401, response.text
    assert response.json()["code"] == "authentication_failed"
