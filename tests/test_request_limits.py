"""Every request body is bounded before it is parsed or authenticated: a declared length over the limit is
refused unread, a streamed body stops being read at the limit, and the answer is a 413 in PostHog's error
body. Capture keeps its own, larger limit (tests/test_ingestion.py)."""

import json
from collections.abc import AsyncIterator

import httpx

from app.config import Settings, get_settings
from tests.factories import Actor

LIMIT = get_settings().max_body_bytes
EXPECTED = {
    "type": "invalid_request",
    "code": "payload_too_large",
    "detail": f"Request body is larger than {LIMIT} bytes.",
    "attr": None,
}


def test_the_default_limit_is_5_mb(monkeypatch: object) -> None:
    assert Settings().max_body_bytes == 5 * 1024 * 1024


async def test_a_declared_length_over_the_limit_is_refused_unread_and_unauthenticated(
    client: httpx.AsyncClient, actor: Actor
) -> None:
    read = 0

    async def chunks() -> AsyncIterator[bytes]:
        nonlocal read
        read += 1
        yield b"{}"

    for headers in ({}, actor.headers):  # no key: 413 before 401; a key: 413 before any lookup
        response = await client.post(
            actor.url("dashboards/"),
            content=chunks(),
            headers={**headers, "Content-Length": str(LIMIT + 1), "Content-Type": "application/json"},
        )
        assert response.status_code == 413
        assert response.json() == EXPECTED
    assert read == 0


async def test_a_streamed_body_stops_being_read_at_the_limit(client: httpx.AsyncClient, actor: Actor) -> None:
    sent = 0
    chunk = b" " * 65536

    async def chunks() -> AsyncIterator[bytes]:
        nonlocal sent
        yield b'{"name": "padded"'
        for _ in range(4 * LIMIT // len(chunk)):  # four times the limit, with no Content-Length
            sent += len(chunk)
            yield chunk
        yield b"}"

    for headers in ({}, actor.headers):
        sent = 0
        response = await client.post(
            actor.url("dashboards/"),
            content=chunks(),
            headers={**headers, "Content-Type": "application/json"},
        )
        assert response.status_code == 413, response.text
        assert response.json() == EXPECTED
        assert sent <= LIMIT + 2 * len(chunk)
    listed = await client.get(actor.url("dashboards/"), headers=actor.headers)
    assert listed.json()["count"] == 0  # nothing half-written


async def test_a_body_within_the_limit_is_served(client: httpx.AsyncClient, actor: Actor) -> None:
    body = json.dumps({"name": "padded"}).encode()
    padded = body[:-1] + b" " * (LIMIT - len(body)) + b"}"
    assert len(padded) == LIMIT
    response = await client.post(
        actor.url("dashboards/"),
        content=padded,
        headers={**actor.headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 201, response.text


async def test_a_get_with_a_body_is_bounded_too(client: httpx.AsyncClient, actor: Actor) -> None:
    # The key may travel in a JSON body even on GET (as in PostHog); that body is bounded as well.
    response = await client.request(
        "GET",
        actor.url("dashboards/"),
        content=b" " * (LIMIT + 1),
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 413
    assert response.json() == EXPECTED


async def test_capture_keeps_its_own_larger_limit(client: httpx.AsyncClient, actor: Actor) -> None:
    event = {"event": "big", "distinct_id": "d", "properties": {"pad": "x" * (LIMIT + 1000)}}
    response = await client.post("/batch/", json={"api_key": actor.team.api_token, "batch": [event]})
    assert response.status_code == 200, response.text[:200]
