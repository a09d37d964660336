"""Capture over HTTP on a real PostgreSQL: paths, payload shapes, tokens, encodings, limits, event fields.

Every test checks what was stored (or that nothing was), through the test's own session."""

import base64
import gzip
import json
import tracemalloc
import uuid
import zlib
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select, text
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.config import Settings, get_settings
from app.ingestion.repository import NewEvent, insert_events_for_token
from app.ingestion.router import receive_time
from app.models import Event
from tests.events import event, ingest
from tests.factories import Actor
from tests.statements import recorded_statements_and_driver_queries

PATHS = ["/capture", "/batch", "/e", "/i/v0/e"]


# --- helpers ------------------------------------------------------------------------------------------------


def ev(name: str = "$pageview", distinct_id: Any = "user-1", **extra: Any) -> dict[str, Any]:
    """A raw event with a fresh uuid; `extra` adds or overrides top-level fields."""
    return {"event": name, "distinct_id": distinct_id, "properties": {}, "uuid": str(uuid.uuid4()), **extra}


async def stored(db: AsyncSession, team_id: int) -> list[Row[Any]]:
    result = await db.execute(
        select(Event.uuid, Event.event, Event.distinct_id, Event.timestamp, Event.properties)
        .where(Event.team_id == team_id)
        .order_by(Event.timestamp, Event.uuid)
    )
    return list(result.all())


async def total_events(db: AsyncSession) -> int:
    return int((await db.execute(select(func.count()).select_from(Event))).scalar_one())


async def post_json(client: httpx.AsyncClient, path: str, payload: Any, **kwargs: Any) -> httpx.Response:
    return await client.post(path, content=json.dumps(payload), **kwargs)


def gz(payload: Any) -> bytes:
    return gzip.compress(json.dumps(payload).encode())


@pytest.fixture
def fixed_now(app: FastAPI) -> Iterator[Callable[[datetime], None]]:
    """Set the receive time capture computes event times from."""

    def set_now(now: datetime) -> None:
        app.dependency_overrides[receive_time] = lambda: now

    yield set_now
    app.dependency_overrides.pop(receive_time, None)


@pytest.fixture
def small_limits(app: FastAPI) -> Iterator[Settings]:
    settings = get_settings().model_copy(
        update={"capture_max_body_bytes": 10_000, "capture_max_payload_bytes": 50_000}
    )
    app.dependency_overrides[get_settings] = lambda: settings
    yield settings
    app.dependency_overrides.pop(get_settings, None)


# --- paths, methods, responses ------------------------------------------------------------------------------


@pytest.mark.parametrize("slash", ["/", ""], ids=["slash", "no-slash"])
@pytest.mark.parametrize("path", PATHS)
async def test_every_path_stores_an_event_with_and_without_slash(
    client: httpx.AsyncClient, actor: Actor, db: AsyncSession, path: str, slash: str
) -> None:
    one = ev("signed up", api_key=actor.team.api_token)
    response = await post_json(client, path + slash, one)
    assert response.status_code == 200, response.text
    assert response.json() == {"status": 1}
    rows = await stored(db, actor.team.id)
    assert [(str(r.uuid), r.event, r.distinct_id) for r in rows] == [(one["uuid"], "signed up", "user-1")]


@pytest.mark.parametrize("path", ["/e/", "/i/v0/e", "/batch/"])
async def test_get_with_data_in_the_query(
    client: httpx.AsyncClient, actor: Actor, db: AsyncSession, path: str
) -> None:
    plain = ev("plain", token=actor.team.api_token)
    assert (await client.get(path, params={"data": json.dumps(plain)})).status_code == 200
    encoded = ev("encoded", token=actor.team.api_token)
    b64 = base64.b64encode(json.dumps(encoded).encode()).decode()
    response = await client.get(path, params={"data": b64, "ver": "1.0"})
    assert response.status_code == 200, response.text
    assert {r.event for r in await stored(db, actor.team.id)} == {"plain", "encoded"}


async def test_get_without_data_is_400(client: httpx.AsyncClient, actor: Actor, db: AsyncSession) -> None:
    response = await client.get("/e/")
    assert response.status_code == 400
    assert response.text == "request missing data payload"
    assert await stored(db, actor.team.id) == []


@pytest.mark.parametrize("path", ["/i/v0/e/", "/batch", "/e"])
async def test_options_preflight_is_permissive(client: httpx.AsyncClient, path: str) -> None:
    response = await client.options(
        path,
        headers={
            "Origin": "https://shop.example.com",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type,x-custom",
        },
    )
    assert response.status_code == 200
    assert response.json() == {"status": "Ok"}
    assert response.headers["access-control-allow-origin"] == "https://shop.example.com"
    assert response.headers["access-control-allow-credentials"] == "true"
    assert response.headers["access-control-allow-headers"] == "content-type,x-custom"
    assert set(response.headers["access-control-allow-methods"].replace(" ", "").split(",")) == {
        "GET",
        "POST",
        "OPTIONS",
    }


async def test_post_responses_carry_cors_headers_on_success_and_error(
    client: httpx.AsyncClient, actor: Actor, db: AsyncSession
) -> None:
    origin = {"Origin": "https://app.example.org"}
    ok = await post_json(client, "/i/v0/e/", [ev(properties={"token": actor.team.api_token})], headers=origin)
    assert ok.status_code == 200
    assert ok.headers["access-control-allow-origin"] == "https://app.example.org"
    assert ok.headers["access-control-allow-credentials"] == "true"
    bad = await post_json(client, "/i/v0/e/", [ev(properties={"token": "phc_nobody"})], headers=origin)
    assert bad.status_code == 401
    assert bad.headers["access-control-allow-origin"] == "https://app.example.org"
    assert len(await stored(db, actor.team.id)) == 1


async def test_beacon_answers_204_without_a_body(
    client: httpx.AsyncClient, actor: Actor, db: AsyncSession
) -> None:
    response = await post_json(
        client, "/e/", ev(properties={"token": actor.team.api_token}), params={"beacon": "1"}
    )
    assert response.status_code == 204
    assert response.content == b""
    assert len(await stored(db, actor.team.id)) == 1


async def test_errors_are_plain_text(client: httpx.AsyncClient, actor: Actor) -> None:
    response = await client.post("/batch/", content=b"{nope")
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("text/plain")
    assert response.text.startswith("failed to parse request:")


async def test_one_statement_per_request_however_many_events(
    client: httpx.AsyncClient, actor: Actor, db: AsyncSession, engine: AsyncEngine
) -> None:
    def queries(statements: list[str]) -> list[str]:
        # The test's transaction turns each request's transaction into a savepoint: not a query.
        return [s for s in statements if not s.lstrip().upper().startswith(("SAVEPOINT", "RELEASE"))]

    # A connection's first capture has asyncpg look up the array types it has not met yet (a few queries,
    # once a connection, then cached; SQLAlchemy's execute path did the same, unseen): not this test's.
    await post_json(client, "/batch/", {"api_key": actor.team.api_token, "batch": [ev()]})
    # Both SQLAlchemy's statements and those sent through asyncpg directly (the insert goes that way).
    async with recorded_statements_and_driver_queries(engine, db) as one:
        await post_json(client, "/batch/", {"api_key": actor.team.api_token, "batch": [ev()]})
    async with recorded_statements_and_driver_queries(engine, db) as many:
        await post_json(
            client, "/batch/", {"api_key": actor.team.api_token, "batch": [ev() for _ in range(250)]}
        )
    assert len(queries(one)) == 1, one
    assert len(queries(many)) == 1, many
    assert "INSERT INTO events" in queries(many)[0]
    assert len(await stored(db, actor.team.id)) == 252


async def test_the_repository_stores_any_json_text_and_uuid_exactly(db: AsyncSession, actor: Actor) -> None:
    # The insert sends the properties as one newline-separated text: JSON with raw newlines (whitespace
    # between tokens) is stored all the same; a newline escaped in a string stays in the string.
    at = datetime(2024, 1, 31, 12, 0, 0, 123456, tzinfo=UTC)
    ids = [uuid.uuid4(), uuid.UUID("{12345678-1234-5678-1234-567812345678}")]
    events = [
        NewEvent(ids[0], "pretty", "d1", at, '{\n  "a": "x\\ny",\n  "b": [1,\n 2]\n}'),
        NewEvent(ids[1], "flat", "d2", at, '{"c":"line\\nbreak"}'),
    ]
    result = await insert_events_for_token(db, actor.team.api_token, events)
    assert result is not None and result.team_id == actor.team.id
    rows = {r.event: r for r in await stored(db, actor.team.id)}
    assert rows["pretty"].properties == {"a": "x\ny", "b": [1, 2]}
    assert rows["flat"].properties == {"c": "line\nbreak"}
    assert [rows["pretty"].uuid, rows["flat"].uuid] == ids
    assert rows["pretty"].timestamp == at and rows["flat"].distinct_id == "d2"
    assert await insert_events_for_token(db, actor.team.api_token, []) is not None


# --- payload shapes and tokens ------------------------------------------------------------------------------


async def test_single_event_array_and_batch_envelope(
    client: httpx.AsyncClient, actor: Actor, db: AsyncSession
) -> None:
    token = actor.team.api_token
    single = ev("single", api_key=token)
    array = [ev("array", properties={"token": token}) for _ in range(3)]
    batch = [ev("batch") for _ in range(2)]
    assert (await post_json(client, "/capture/", single)).status_code == 200
    assert (await post_json(client, "/e/", array)).status_code == 200
    assert (await post_json(client, "/batch/", {"token": token, "batch": batch})).status_code == 200
    rows = await stored(db, actor.team.id)
    assert sorted(r.event for r in rows) == ["array"] * 3 + ["batch"] * 2 + ["single"]
    assert {str(r.uuid) for r in rows} == {e["uuid"] for e in [single, *array, *batch]}


@pytest.mark.parametrize(
    "place",
    ["api_key", "token", "$token", "properties.token"],
)
async def test_token_in_any_of_its_places(
    client: httpx.AsyncClient, actor: Actor, db: AsyncSession, place: str
) -> None:
    one = ev()
    if place == "properties.token":
        one["properties"]["token"] = actor.team.api_token
    else:
        one[place] = actor.team.api_token
    assert (await post_json(client, "/capture/", one)).status_code == 200
    assert [str(r.uuid) for r in await stored(db, actor.team.id)] == [one["uuid"]]


async def test_array_with_one_token_among_tokenless_events(
    client: httpx.AsyncClient, actor: Actor, db: AsyncSession
) -> None:
    events = [ev(), ev(token=actor.team.api_token), ev(properties={"token": actor.team.api_token})]
    assert (await post_json(client, "/e/", events)).status_code == 200
    assert len(await stored(db, actor.team.id)) == 3


async def test_envelope_key_wins_over_the_events_keys(
    client: httpx.AsyncClient, actor: Actor, other_actor: Actor, db: AsyncSession
) -> None:
    # Events carrying team B's key inside team A's envelope belong to team A: the envelope decides.
    events = [ev(token=other_actor.team.api_token), ev(properties={"token": "phc_whatever"})]
    response = await post_json(client, "/batch/", {"api_key": actor.team.api_token, "batch": events})
    assert response.status_code == 200
    assert len(await stored(db, actor.team.id)) == 2
    assert await stored(db, other_actor.team.id) == []


async def test_a_teams_key_never_writes_another_teams_rows(
    client: httpx.AsyncClient, actor: Actor, other_actor: Actor, db: AsyncSession
) -> None:
    await ingest(client, actor, [event("a-event", "shared-user", datetime.now(UTC))])
    await ingest(client, other_actor, [event("b-event", "shared-user", datetime.now(UTC))])
    shared = ev("dup")
    for who in (actor, other_actor):  # the same uuid in two teams is two events
        await post_json(client, "/batch/", {"api_key": who.team.api_token, "batch": [shared]})
    assert sorted(r.event for r in await stored(db, actor.team.id)) == ["a-event", "dup"]
    assert sorted(r.event for r in await stored(db, other_actor.team.id)) == ["b-event", "dup"]


@pytest.mark.parametrize(
    ("make_payload", "message"),
    [
        (lambda t, o: ev(), "event submitted without an api_key"),
        (lambda t, o: [ev(), ev()], "event submitted without an api_key"),
        (lambda t, o: {"batch": [ev()]}, "event submitted without an api_key"),
        (lambda t, o: [ev(token=t), ev(token=o)], "batch submitted with inconsistent api_key values"),
        (
            lambda t, o: [ev(token=t), ev(properties={"token": o})],
            "batch submitted with inconsistent api_key values",
        ),
        (lambda t, o: ev(api_key=""), "API key is not valid: empty"),
        (lambda t, o: {"api_key": "", "batch": [ev(token=t)]}, "API key is not valid: empty"),
        (lambda t, o: ev(api_key="phc_" + "x" * 61), "API key is not valid: too_long"),
        (lambda t, o: ev(api_key="phc_ключ"), "API key is not valid: not_ascii"),
        (lambda t, o: ev(api_key="phc_a\u0000b"), "API key is not valid"),
        (lambda t, o: ev(api_key="phc_doesnotexist"), "API key is not valid: no project has this API key"),
    ],
    ids=[
        "single-without",
        "array-without",
        "envelope-without",
        "inconsistent",
        "inconsistent-properties",
        "empty",
        "envelope-empty",
        "too-long",
        "not-ascii",
        "null-byte",
        "unknown",
    ],
)
async def test_token_problems_are_401_and_store_nothing(
    client: httpx.AsyncClient,
    actor: Actor,
    other_actor: Actor,
    db: AsyncSession,
    make_payload: Callable[[str, str], Any],
    message: str,
) -> None:
    before = await total_events(db)
    response = await post_json(
        client, "/batch/", make_payload(actor.team.api_token, other_actor.team.api_token)
    )
    assert response.status_code == 401, response.text
    assert response.text.startswith(message)
    assert await total_events(db) == before


async def test_a_personal_api_key_is_refused(
    client: httpx.AsyncClient, actor: Actor, db: AsyncSession
) -> None:
    response = await post_json(client, "/batch/", {"api_key": actor.key, "batch": [ev()]})
    assert response.status_code == 401
    assert response.text == "API key is not valid: personal_api_key"
    assert await stored(db, actor.team.id) == []


# --- encodings ----------------------------------------------------------------------------------------------


async def test_gzip_by_header_by_query_hint_and_by_magic_bytes(
    client: httpx.AsyncClient, actor: Actor, db: AsyncSession
) -> None:
    token = actor.team.api_token
    by_header = ev("by header")
    by_query = ev("by query", properties={"token": token})
    by_magic = ev("by magic", token=token)
    by_form_field = ev("by form field", token=token)
    r1 = await client.post(
        "/batch/",
        content=gz({"api_key": token, "batch": [by_header]}),
        headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
    )
    r2 = await client.post(
        "/i/v0/e/",
        content=gz([by_query]),
        params={"compression": "gzip-js", "ver": "1.200.0"},
        headers={"Content-Type": "text/plain"},
    )
    r3 = await client.post("/e", content=gz(by_magic))
    r4 = await client.post(
        "/e/",
        content=b"compression=gzip-js&data=" + quote(base64.b64encode(gz(by_form_field))).encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert [r.status_code for r in (r1, r2, r3, r4)] == [200, 200, 200, 200], [
        r.text for r in (r1, r2, r3, r4)
    ]
    assert {r.event for r in await stored(db, actor.team.id)} == {
        "by header",
        "by query",
        "by magic",
        "by form field",
    }


async def test_multi_member_gzip(client: httpx.AsyncClient, actor: Actor, db: AsyncSession) -> None:
    text = json.dumps({"api_key": actor.team.api_token, "batch": [ev("multi")]}).encode()
    body = gzip.compress(text[:20]) + gzip.compress(text[20:])
    assert (await client.post("/batch/", content=body)).status_code == 200
    assert [r.event for r in await stored(db, actor.team.id)] == ["multi"]


def _b64_with_plus(token: str) -> tuple[dict[str, Any], str]:
    """An event whose base64 encoding contains '+', so that url-decoding damage can happen."""
    for i in range(1000):
        one = ev("with plus", properties={"token": token, "$current_url": f"https://x.test/?q={'~' * i}"})
        encoded = base64.b64encode(json.dumps([one]).encode()).decode()
        if "+" in encoded:
            return one, encoded
    raise AssertionError("no base64 with '+' found")


async def test_form_bodies_as_posthog_js_sends_them(
    client: httpx.AsyncClient, actor: Actor, db: AsyncSession
) -> None:
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    escaped_event, encoded = _b64_with_plus(actor.team.api_token)
    # Current posthog-js: `data=` + encodeURIComponent(base64), with `compression=base64` in the query.
    r1 = await client.post(
        "/i/v0/e/",
        content=f"data={quote(encoded, safe='')}".encode(),
        params={"compression": "base64", "_": "1767607202000"},
        headers=form,
    )
    # Older posthog-js left '+' unescaped, so url-decoding turned it into a space: capture repairs it.
    damaged_event, damaged = _b64_with_plus(actor.team.api_token)
    r2 = await client.post("/e/", content=f"data={damaged}&ver=1.2".encode(), headers=form)
    # Plain JSON in the form field, no base64 at all.
    plain_event = ev("plain form", token=actor.team.api_token)
    r3 = await client.post(
        "/capture/", content=f"data={quote(json.dumps(plain_event))}".encode(), headers=form
    )
    assert [r.status_code for r in (r1, r2, r3)] == [200, 200, 200], [r.text for r in (r1, r2, r3)]
    assert {str(r.uuid) for r in await stored(db, actor.team.id)} == {
        escaped_event["uuid"],
        damaged_event["uuid"],
        plain_event["uuid"],
    }


async def test_base64_bodies(client: httpx.AsyncClient, actor: Actor, db: AsyncSession) -> None:
    token = actor.team.api_token
    plain_b64 = ev("b64 body", token=token)
    hinted = ev("b64 hinted", token=token)
    twice = ev("b64 of gzip of b64", token=token)
    r1 = await client.post("/i/v0/e/", content=base64.b64encode(json.dumps(plain_b64).encode()))
    r2 = await client.post(
        "/batch/",
        content=base64.b64encode(json.dumps(hinted).encode()),
        headers={"Content-Encoding": "b64"},
    )
    # The legacy endpoints accept base64 once more after decompression.
    inner = base64.b64encode(json.dumps(twice).encode())
    r3 = await client.post("/e/", content=base64.b64encode(gzip.compress(inner)))
    assert [r.status_code for r in (r1, r2, r3)] == [200, 200, 200], [r.text for r in (r1, r2, r3)]
    assert {r.event for r in await stored(db, actor.team.id)} == {
        "b64 body",
        "b64 hinted",
        "b64 of gzip of b64",
    }


async def test_form_without_data_field_is_400(
    client: httpx.AsyncClient, actor: Actor, db: AsyncSession
) -> None:
    response = await client.post(
        "/e/",
        content=b"ver=1.0&compression=base64",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 400
    assert "form data" in response.text
    assert await stored(db, actor.team.id) == []


async def test_lz_string_is_refused_with_400(
    client: httpx.AsyncClient, actor: Actor, db: AsyncSession
) -> None:
    response = await client.post(
        "/e/",
        content=b"data=N4IgLgTg9gJg...",
        params={"compression": "lz64"},
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 400
    assert "lz-string" in response.text
    assert await stored(db, actor.team.id) == []


# --- limits -------------------------------------------------------------------------------------------------


def test_default_limits() -> None:
    settings = Settings()
    assert settings.capture_max_body_bytes == 20 * 1024 * 1024
    assert settings.capture_max_payload_bytes == 20 * 1024 * 1024


def test_body_limit_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TILECAST_CAPTURE_MAX_BODY_BYTES", "12345")
    assert Settings().capture_max_body_bytes == 12345


async def test_body_over_the_limit_is_413(
    client: httpx.AsyncClient, actor: Actor, db: AsyncSession, small_limits: Settings
) -> None:
    token = actor.team.api_token
    fits = {"api_key": token, "batch": [ev(properties={"pad": "x" * 5_000})]}
    too_big = {"api_key": token, "batch": [ev(properties={"pad": "x" * 10_000})]}
    assert (await post_json(client, "/batch/", fits)).status_code == 200
    response = await post_json(client, "/batch/", too_big)
    assert response.status_code == 413
    assert response.text.startswith("maximum event size exceeded")
    assert len(await stored(db, actor.team.id)) == 1


async def test_streamed_body_stops_being_read_at_the_limit(
    client: httpx.AsyncClient, actor: Actor, db: AsyncSession, small_limits: Settings
) -> None:
    sent = 0

    async def chunks() -> AsyncIterator[bytes]:
        nonlocal sent
        yield b'{"api_key": "' + actor.team.api_token.encode() + b'", "batch": [], "pad": "'
        for _ in range(1000):  # 1 MB in all, 100 times the limit, with no Content-Length
            sent += 1
            yield b"x" * 1000
        yield b'"}'

    response = await client.post("/batch/", content=chunks())
    assert response.status_code == 413
    assert sent <= 12  # reading stopped once past 10,000 bytes
    assert await stored(db, actor.team.id) == []


async def test_declared_length_over_the_limit_is_refused_before_reading(
    client: httpx.AsyncClient, actor: Actor, small_limits: Settings
) -> None:
    read = 0

    async def chunks() -> AsyncIterator[bytes]:
        nonlocal read
        read += 1
        yield b"[]"

    response = await client.post("/batch/", content=chunks(), headers={"Content-Length": "20000"})
    assert response.status_code == 413
    assert read == 0


async def test_decompressed_payload_over_the_limit_is_413(
    client: httpx.AsyncClient, actor: Actor, db: AsyncSession, small_limits: Settings
) -> None:
    token = actor.team.api_token
    small = gz({"api_key": token, "batch": [ev(properties={"pad": "y" * 40_000})]})
    big = gz({"api_key": token, "batch": [ev(properties={"pad": "y" * 60_000})]})
    assert len(big) < 10_000  # the body itself is within its limit
    assert (await client.post("/batch/", content=small)).status_code == 200
    response = await client.post("/batch/", content=big, headers={"Content-Encoding": "gzip"})
    assert response.status_code == 413
    assert "decompressed" in response.text
    assert len(await stored(db, actor.team.id)) == 1


async def test_a_gzip_bomb_is_refused_without_inflating_it(
    client: httpx.AsyncClient, actor: Actor, db: AsyncSession
) -> None:
    # 256 MiB of zeros, a quarter of a MB compressed; the default limits apply (20 MiB inflated at most).
    compressor = zlib.compressobj(6, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = b"\0" * (1 << 20)
    bomb = b"".join(compressor.compress(block) for _ in range(256)) + compressor.flush()
    assert len(bomb) < 1024 * 1024
    tracemalloc.start()
    try:
        response = await client.post("/batch/", content=bomb, headers={"Content-Encoding": "gzip"})
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert response.status_code == 413
    assert peak < 100 * 1024 * 1024, f"peak {peak / 2**20:.0f} MiB"
    assert await stored(db, actor.team.id) == []


def test_event_count_and_rate_limit_defaults() -> None:
    settings = Settings()
    assert settings.capture_max_events == 10_000
    assert settings.capture_rate_limit_per_minute == 0  # off


@pytest.fixture
def capture_settings(app: FastAPI) -> Iterator[Callable[..., Settings]]:
    def configure(**update: Any) -> Settings:
        settings = get_settings().model_copy(update=update)
        app.dependency_overrides[get_settings] = lambda: settings
        return settings

    yield configure
    app.dependency_overrides.pop(get_settings, None)


@pytest.mark.parametrize("path", PATHS)
async def test_more_events_than_the_cap_is_413_and_stores_nothing(
    client: httpx.AsyncClient,
    actor: Actor,
    db: AsyncSession,
    capture_settings: Callable[..., Settings],
    path: str,
) -> None:
    capture_settings(capture_max_events=5)
    token = actor.team.api_token
    at_cap = {"api_key": token, "batch": [ev() for _ in range(5)]}
    assert (await post_json(client, path, at_cap)).status_code == 200
    over = gz({"api_key": token, "batch": [ev() for _ in range(6)]})
    response = await client.post(path, content=over, headers={"Content-Encoding": "gzip"})
    assert response.status_code == 413
    assert response.text == "maximum event count exceeded: more than 5 events in one request"
    assert len(await stored(db, actor.team.id)) == 5


async def test_a_tiny_gzip_body_of_400_000_events_is_refused(
    client: httpx.AsyncClient, actor: Actor, db: AsyncSession
) -> None:
    tiny = ',{"event":"e","distinct_id":"d"}'
    text = '{"api_key":"' + actor.team.api_token + '","batch":[' + (tiny * 400_000)[1:] + "]}"
    body = gzip.compress(text.encode(), 9)
    assert len(body) < 100_000
    response = await client.post("/batch/", content=body, headers={"Content-Encoding": "gzip"})
    assert response.status_code == 413
    assert await stored(db, actor.team.id) == []


async def test_rate_limit_per_project_key_counts_accepted_events(
    client: httpx.AsyncClient,
    actor: Actor,
    other_actor: Actor,
    db: AsyncSession,
    capture_settings: Callable[..., Settings],
) -> None:
    capture_settings(capture_rate_limit_per_minute=10)
    token = actor.team.api_token

    async def send(n: int, key: str = token) -> httpx.Response:
        return await post_json(client, "/batch/", {"api_key": key, "batch": [ev() for _ in range(n)]})

    assert (await send(6)).status_code == 200
    refused = await send(5)  # 11 > 10: refused whole, and not counted
    assert refused.status_code == 429
    assert refused.text == "rate limited"
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert (await send(4)).status_code == 200  # exactly 10
    assert (await send(1)).status_code == 429
    assert len(await stored(db, actor.team.id)) == 10
    # Another project's key has its own budget.
    assert (await send(10, other_actor.team.api_token)).status_code == 200
    # A new minute starts a new count.
    await db.execute(text("UPDATE capture_rate_limit SET window_start = window_start - interval '1 minute'"))
    assert (await send(10)).status_code == 200
    assert len(await stored(db, actor.team.id)) == 20


async def test_an_unknown_key_is_401_with_the_rate_limit_on(
    client: httpx.AsyncClient, db: AsyncSession, capture_settings: Callable[..., Settings]
) -> None:
    capture_settings(capture_rate_limit_per_minute=10)
    before = await total_events(db)
    response = await post_json(client, "/batch/", {"api_key": "phc_nobody", "batch": [ev()]})
    assert response.status_code == 401
    assert await total_events(db) == before
    assert (await db.execute(text("SELECT count(*) FROM capture_rate_limit"))).scalar_one() == 0


# --- timestamps (capture-and-trends.md §A.6) ----------------------------------------------------------------

NOON = datetime(2026, 1, 5, 12, 0, 0, tzinfo=UTC)


async def _one_time(
    client: httpx.AsyncClient, db: AsyncSession, actor: Actor, payload: Any, path: str = "/batch/", **kw: Any
) -> datetime:
    response = await post_json(client, path, payload, **kw)
    assert response.status_code == 200, response.text
    rows = await stored(db, actor.team.id)
    assert len(rows) == 1
    stamp: datetime = rows[0].timestamp
    return stamp


async def test_skew_correction_example(
    client: httpx.AsyncClient, actor: Actor, db: AsyncSession, fixed_now: Callable[[datetime], None]
) -> None:
    # now 12:00:00, sent_at 12:00:05, timestamp 11:59:55 → 11:59:50.
    fixed_now(NOON)
    payload = {
        "api_key": actor.team.api_token,
        "sent_at": "2026-01-05T12:00:05Z",
        "batch": [ev(timestamp="2026-01-05T11:59:55Z")],
    }
    assert await _one_time(client, db, actor, payload) == datetime(2026, 1, 5, 11, 59, 50, tzinfo=UTC)


async def test_skew_correction_keeps_milliseconds(
    client: httpx.AsyncClient, actor: Actor, db: AsyncSession, fixed_now: Callable[[datetime], None]
) -> None:
    # now 12:00:00.100, sent_at …00.200, timestamp …00.750 → 12:00:00.650.
    fixed_now(NOON + timedelta(milliseconds=100))
    payload = {
        "api_key": actor.team.api_token,
        "sent_at": "2026-01-05T12:00:00.200Z",
        "batch": [ev(timestamp="2026-01-05T12:00:00.750Z")],
    }
    assert await _one_time(client, db, actor, payload) == NOON + timedelta(milliseconds=650)


async def test_offset_overrides_the_timestamp(
    client: httpx.AsyncClient, actor: Actor, db: AsyncSession, fixed_now: Callable[[datetime], None]
) -> None:
    # offset 5000 → now - 5 s, whatever the timestamp and sent_at say.
    fixed_now(NOON)
    payload = {
        "api_key": actor.team.api_token,
        "sent_at": "2026-01-05T12:00:05Z",
        "batch": [ev(timestamp="2026-01-01T00:00:00Z", offset=5000)],
    }
    assert await _one_time(client, db, actor, payload) == NOON - timedelta(seconds=5)


async def test_a_timestamp_24_hours_ahead_is_clamped_to_now(
    client: httpx.AsyncClient, actor: Actor, db: AsyncSession, fixed_now: Callable[[datetime], None]
) -> None:
    fixed_now(NOON)
    ahead = ev(timestamp=(NOON + timedelta(hours=24)).isoformat(), token=actor.team.api_token)
    assert await _one_time(client, db, actor, ahead, path="/e/") == NOON


async def test_22_hours_ahead_is_kept(
    client: httpx.AsyncClient, actor: Actor, db: AsyncSession, fixed_now: Callable[[datetime], None]
) -> None:
    fixed_now(NOON)
    ahead = ev(timestamp=(NOON + timedelta(hours=22)).isoformat(), token=actor.team.api_token)
    assert await _one_time(client, db, actor, ahead, path="/e/") == NOON + timedelta(hours=22)


async def test_the_reference_example_request(
    client: httpx.AsyncClient, actor: Actor, db: AsyncSession, fixed_now: Callable[[datetime], None]
) -> None:
    # capture-and-trends.md §A.8, received at 10:00:00.000Z.
    fixed_now(datetime(2026, 1, 5, 10, 0, 0, tzinfo=UTC))
    payload = {
        "api_key": actor.team.api_token,
        "historical_migration": False,
        "sent_at": "2026-01-05T10:00:02.000Z",
        "batch": [
            {
                "event": "order placed",
                "distinct_id": "user-42",
                "uuid": "0194379c-7d2a-7c1e-9a3b-2f4d5e6a7b8c",
                "timestamp": "2026-01-05T09:59:58.000Z",
                "properties": {"amount": 19.5, "$lib": "posthog-python"},
                "$set": {"plan": "pro"},
            }
        ],
    }
    response = await client.post("/batch/", content=gz(payload), headers={"Content-Encoding": "gzip"})
    assert response.status_code == 200
    (row,) = await stored(db, actor.team.id)
    assert row.timestamp == datetime(2026, 1, 5, 9, 59, 56, tzinfo=UTC)
    assert str(row.uuid) == "0194379c-7d2a-7c1e-9a3b-2f4d5e6a7b8c"
    assert (row.event, row.distinct_id) == ("order placed", "user-42")
    assert row.properties["$set"] == {"plan": "pro"}
    assert row.properties["$sent_at"] == "2026-01-05T10:00:02Z"  # RFC 3339, digits as needed
    assert row.properties["amount"] == 19.5 and row.properties["$lib"] == "posthog-python"


async def test_ignore_sent_at_takes_the_timestamp_as_is(
    client: httpx.AsyncClient, actor: Actor, db: AsyncSession, fixed_now: Callable[[datetime], None]
) -> None:
    fixed_now(NOON)
    payload = {
        "api_key": actor.team.api_token,
        "sent_at": "2026-01-05T12:00:05Z",
        "batch": [ev(timestamp="2026-01-05T11:59:55Z", properties={"$ignore_sent_at": True})],
    }
    assert await _one_time(client, db, actor, payload) == datetime(2026, 1, 5, 11, 59, 55, tzinfo=UTC)


async def test_camel_case_sent_at_is_ignored(
    client: httpx.AsyncClient, actor: Actor, db: AsyncSession, fixed_now: Callable[[datetime], None]
) -> None:
    fixed_now(NOON)
    payload = {
        "api_key": actor.team.api_token,
        "sentAt": "2026-01-05T12:00:05Z",
        "batch": [ev(timestamp="2026-01-05T11:59:55Z")],
    }
    assert await _one_time(client, db, actor, payload) == datetime(2026, 1, 5, 11, 59, 55, tzinfo=UTC)
    (row,) = await stored(db, actor.team.id)
    assert "$sent_at" not in row.properties


async def test_sent_at_from_the_underscore_query_parameter(
    client: httpx.AsyncClient, actor: Actor, db: AsyncSession, fixed_now: Callable[[datetime], None]
) -> None:
    fixed_now(NOON)
    sent_ms = int((NOON + timedelta(seconds=5)).timestamp() * 1000)
    one = [ev(timestamp="2026-01-05T11:59:55Z", properties={"token": actor.team.api_token})]
    stamp = await _one_time(client, db, actor, one, path="/i/v0/e/", params={"_": str(sent_ms), "ver": "1"})
    assert stamp == datetime(2026, 1, 5, 11, 59, 50, tzinfo=UTC)
    (row,) = await stored(db, actor.team.id)
    assert row.properties["$sent_at"] == "2026-01-05T12:00:05Z"


async def test_underscore_in_seconds_is_ignored(
    client: httpx.AsyncClient, actor: Actor, db: AsyncSession, fixed_now: Callable[[datetime], None]
) -> None:
    fixed_now(NOON)
    seconds = str(int((NOON + timedelta(seconds=5)).timestamp()))
    one = [ev(timestamp="2026-01-05T11:59:55Z", properties={"token": actor.team.api_token})]
    stamp = await _one_time(client, db, actor, one, path="/i/v0/e/", params={"_": seconds})
    assert stamp == datetime(2026, 1, 5, 11, 59, 55, tzinfo=UTC)


async def test_an_unparseable_timestamp_is_now_without_skew(
    client: httpx.AsyncClient, actor: Actor, db: AsyncSession, fixed_now: Callable[[datetime], None]
) -> None:
    fixed_now(NOON)
    for bad in ("13/32/2023", "99999-01-01T00:00:00Z", "", "yesterday"):
        payload = {
            "api_key": actor.team.api_token,
            "sent_at": "2026-01-05T12:00:05Z",
            "batch": [ev(timestamp=bad)],
        }
        assert await _one_time(client, db, actor, payload) == NOON, bad
        await db.execute(Event.__table__.delete().where(Event.team_id == actor.team.id))


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2026-01-05T14:30:00+03", datetime(2026, 1, 5, 11, 30, tzinfo=UTC)),
        ("2026-01-05T14:30:00+03:00", datetime(2026, 1, 5, 11, 30, tzinfo=UTC)),
        ("2026-01-05", datetime(2026, 1, 5, tzinfo=UTC)),
        ("2026-01-05 11:30:00", datetime(2026, 1, 5, 11, 30, tzinfo=UTC)),
        ("2026-01-05T11:30:00", datetime(2026, 1, 5, 11, 30, tzinfo=UTC)),
        ("01/05/2026", datetime(2026, 1, 5, tzinfo=UTC)),
        ("2026/01/05", datetime(2026, 1, 5, tzinfo=UTC)),
        ("Mon, 05 Jan 2026 11:30:00 +0000", datetime(2026, 1, 5, 11, 30, tzinfo=UTC)),
        ("1767612600", datetime(2026, 1, 5, 11, 30, tzinfo=UTC)),
        ("1767612600123", datetime(2026, 1, 5, 11, 30, 0, 123000, tzinfo=UTC)),
    ],
)
async def test_timestamp_formats(
    client: httpx.AsyncClient,
    actor: Actor,
    db: AsyncSession,
    fixed_now: Callable[[datetime], None],
    raw: str,
    expected: datetime,
) -> None:
    fixed_now(NOON)
    one = ev(timestamp=raw, token=actor.team.api_token)
    assert await _one_time(client, db, actor, one, path="/capture/") == expected


# Times past what a timestamp can hold: before year 1 is 1970 (the formula's out-of-range rule), past year
# 9999 is the far future (clamped to now). One such event never fails its batch: SDKs would retry it forever.
OUT_OF_RANGE = [
    ("0001-01-01T00:00:00+14:00", None, datetime(1970, 1, 1, tzinfo=UTC)),
    ("9999-12-31T23:59:59-14:00", None, NOON),
    ("Fri, 31 Dec 9999 23:59:59 -1400", None, NOON),
    ("0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z", datetime(1970, 1, 1, tzinfo=UTC)),
    ("9999-12-31T23:59:59Z", "0001-01-01T00:00:00+14:00", NOON),
    ("2026-01-05T11:00:00Z", "0001-01-01T00:00:00+14:00", NOON),
    ("2026-01-05T11:00:00Z", "Fri, 31 Dec 9999 23:59:59 -1400", datetime(1970, 1, 1, tzinfo=UTC)),
]


@pytest.mark.parametrize("path", PATHS)
async def test_out_of_range_times_never_fail_the_batch(
    client: httpx.AsyncClient,
    actor: Actor,
    db: AsyncSession,
    fixed_now: Callable[[datetime], None],
    path: str,
) -> None:
    fixed_now(NOON)
    for timestamp, sent_at, expected in OUT_OF_RANGE:
        fine = ev("fine", timestamp="2026-01-05T11:00:00Z")
        odd = ev("odd", timestamp=timestamp)
        payload: dict[str, Any] = {"api_key": actor.team.api_token, "batch": [fine, odd]}
        if sent_at is not None:
            payload["sent_at"] = sent_at
        response = await post_json(client, path + "/", payload)
        assert response.status_code == 200, (timestamp, sent_at, response.text)
        rows = {row.event: row for row in await stored(db, actor.team.id)}
        assert rows["odd"].timestamp == expected, (timestamp, sent_at)
        assert set(rows) == {"fine", "odd"}
        await db.execute(Event.__table__.delete().where(Event.team_id == actor.team.id))


@pytest.mark.parametrize("offset", [10**30, -(10**30), 2**63])
async def test_huge_offsets_are_stored_in_range(
    client: httpx.AsyncClient,
    actor: Actor,
    db: AsyncSession,
    fixed_now: Callable[[datetime], None],
    offset: int,
) -> None:
    fixed_now(NOON)
    stamp = await _one_time(client, db, actor, ev(offset=offset, token=actor.team.api_token), path="/e/")
    assert stamp == (datetime(1970, 1, 1, tzinfo=UTC) if offset > 0 else NOON)


async def test_skew_and_offset_against_the_real_clock(
    client: httpx.AsyncClient, actor: Actor, db: AsyncSession
) -> None:
    # No fixed clock: a client 1 hour fast, and an event that happened 30 s before it was sent.
    client_now = datetime.now(UTC) + timedelta(hours=1)
    payload = {
        "api_key": actor.team.api_token,
        "sent_at": client_now.isoformat(),
        "batch": [
            ev("skewed", timestamp=(client_now - timedelta(seconds=30)).isoformat()),
            ev("offset", offset=90_000),
        ],
    }
    before = datetime.now(UTC)
    assert (await post_json(client, "/batch/", payload)).status_code == 200
    after = datetime.now(UTC)
    rows = {r.event: r.timestamp for r in await stored(db, actor.team.id)}
    assert before - timedelta(seconds=30) <= rows["skewed"] <= after - timedelta(seconds=30)
    assert before - timedelta(seconds=90) <= rows["offset"] <= after - timedelta(seconds=90)


# --- event fields -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("user-7", "user-7"),
        (23, "23"),
        (23.4, "23.4"),
        (True, "true"),
        (["a", "b"], '["a","b"]'),
        ({"b": 1, "a": {"d": 2, "c": 3}}, '{"a":{"c":3,"d":2},"b":1}'),
        ("nul\u0000here", "nul\ufffdhere"),
        ("é" * 300, "é" * 200),
    ],
    ids=["string", "int", "float", "bool", "array", "object", "nul", "long"],
)
async def test_distinct_id_coercion(
    client: httpx.AsyncClient, actor: Actor, db: AsyncSession, given: Any, expected: str
) -> None:
    assert (
        await post_json(client, "/capture/", ev(distinct_id=given, token=actor.team.api_token))
    ).status_code == 200
    (row,) = await stored(db, actor.team.id)
    assert row.distinct_id == expected


async def test_distinct_id_aliases(client: httpx.AsyncClient, actor: Actor, db: AsyncSession) -> None:
    dollar = ev("dollar")
    del dollar["distinct_id"]
    dollar["$distinct_id"] = "via-dollar"
    in_properties = ev("props", distinct_id=None, properties={"distinct_id": "via-properties"})
    response = await post_json(
        client, "/batch/", {"api_key": actor.team.api_token, "batch": [dollar, in_properties]}
    )
    assert response.status_code == 200
    assert {r.event: r.distinct_id for r in await stored(db, actor.team.id)} == {
        "dollar": "via-dollar",
        "props": "via-properties",
    }


@pytest.mark.parametrize("bad", [None, ""], ids=["missing", "empty"])
async def test_one_event_without_distinct_id_fails_the_whole_request(
    client: httpx.AsyncClient, actor: Actor, db: AsyncSession, bad: str | None
) -> None:
    nameless = ev()
    if bad is None:
        del nameless["distinct_id"]
    else:
        nameless["distinct_id"] = bad
    response = await post_json(
        client, "/batch/", {"api_key": actor.team.api_token, "batch": [ev(), nameless]}
    )
    assert response.status_code == 400
    assert response.text == "event submitted without a distinct_id"
    assert await stored(db, actor.team.id) == []


async def test_same_uuid_is_one_event(client: httpx.AsyncClient, actor: Actor, db: AsyncSession) -> None:
    one = ev("first")
    again = {**one, "event": "retried"}
    token = actor.team.api_token
    assert (await post_json(client, "/batch/", {"api_key": token, "batch": [one]})).status_code == 200
    assert (await post_json(client, "/batch/", {"api_key": token, "batch": [again]})).status_code == 200
    # Twice within one request as well.
    twin = ev("twin")
    assert (await post_json(client, "/batch/", {"api_key": token, "batch": [twin, twin]})).status_code == 200
    rows = await stored(db, actor.team.id)
    assert sorted(r.event for r in rows) == ["first", "twin"]


async def test_events_without_uuid_get_a_uuid7_each(
    client: httpx.AsyncClient, actor: Actor, db: AsyncSession
) -> None:
    bare = {"event": "no uuid", "distinct_id": "u", "properties": {"token": actor.team.api_token}}
    for _ in range(2):
        assert (await post_json(client, "/e/", bare)).status_code == 200
    assert (await post_json(client, "/e/", {**bare, "uuid": ""})).status_code == 200
    rows = await stored(db, actor.team.id)
    assert len(rows) == 3
    assert all(r.uuid.version == 7 for r in rows)


async def test_top_level_set_and_set_once_merge_into_properties(
    client: httpx.AsyncClient, actor: Actor, db: AsyncSession
) -> None:
    one = ev(
        "$identify",
        properties={"$set": {"plan": "free", "seats": 3}, "$set_once": {"first_seen": "x"}, "other": 1},
        **{"$set": {"plan": "pro", "email": "a@b.c"}, "$set_once": {"first_seen": "y", "initial": True}},
    )
    only_top = ev("only top", **{"$set": {"name": "Ana"}})
    response = await post_json(client, "/batch/", {"api_key": actor.team.api_token, "batch": [one, only_top]})
    assert response.status_code == 200
    rows = {r.event: r.properties for r in await stored(db, actor.team.id)}
    assert rows["$identify"]["$set"] == {"plan": "pro", "seats": 3, "email": "a@b.c"}
    assert rows["$identify"]["$set_once"] == {"first_seen": "y", "initial": True}
    assert rows["$identify"]["other"] == 1
    assert rows["only top"]["$set"] == {"name": "Ana"}
    assert "$set_once" not in rows["only top"]


async def test_performance_events_are_dropped(
    client: httpx.AsyncClient, actor: Actor, db: AsyncSession
) -> None:
    token = actor.team.api_token
    mixed = [ev("$performance_event"), ev("$pageview")]
    assert (await post_json(client, "/batch/", {"api_key": token, "batch": mixed})).status_code == 200
    only_dropped = {"api_key": token, "batch": [ev("$performance_event")]}
    response = await post_json(client, "/batch/", only_dropped)
    assert response.status_code == 200 and response.json() == {"status": 1}
    assert [r.event for r in await stored(db, actor.team.id)] == ["$pageview"]


async def test_only_dropped_events_with_an_unknown_key_is_still_401(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    response = await post_json(
        client, "/batch/", {"api_key": "phc_unknown", "batch": [ev("$performance_event")]}
    )
    assert response.status_code == 401


async def test_ip_is_recorded_unless_given(client: httpx.AsyncClient, actor: Actor, db: AsyncSession) -> None:
    given = ev("given", properties={"$ip": "203.0.113.9"})
    internal = ev("internal", properties={"capture_internal": True})
    plain = ev("plain")
    response = await post_json(
        client, "/batch/", {"api_key": actor.team.api_token, "batch": [given, internal, plain]}
    )
    assert response.status_code == 200
    rows = {r.event: r.properties for r in await stored(db, actor.team.id)}
    assert rows["given"]["$ip"] == "203.0.113.9"
    assert rows["internal"]["$ip"] == "127.0.0.1"
    assert rows["plain"]["$ip"] == "127.0.0.1"  # the test client's address


async def test_long_event_names_are_cut_to_the_column(
    client: httpx.AsyncClient, actor: Actor, db: AsyncSession
) -> None:
    assert (await post_json(client, "/e/", ev("n" * 500, token=actor.team.api_token))).status_code == 200
    (row,) = await stored(db, actor.team.id)
    assert row.event == "n" * 400


async def test_nul_and_lone_surrogates_are_replaced_not_refused(
    client: httpx.AsyncClient, actor: Actor, db: AsyncSession
) -> None:
    # Written by hand: json.dumps would escape the backslash of the literal `\\u0000` case differently.
    body = (
        (
            '{"api_key": "TOKEN", "batch": [{"event": "nul\\u0000name", "distinct_id": "d\\u0000",'
            ' "uuid": "UUID",'
            ' "properties": {"k\\u0000ey": "v\\u0000al", "nested": [{"deep": "\\u0000"}],'
            ' "lone": "a\\ud800b", "pair": "\\ud83d\\ude00", "literal": "\\\\u0000 stays"}}]}'
        )
        .replace("TOKEN", actor.team.api_token)
        .replace("UUID", str(uuid.uuid4()))
    )
    response = await client.post("/batch/", content=body.encode())
    assert response.status_code == 200, response.text
    (row,) = await stored(db, actor.team.id)
    assert row.event == "nul\ufffdname"
    assert row.distinct_id == "d\ufffd"
    assert row.properties["k\ufffdey"] == "v\ufffdal"
    assert row.properties["nested"] == [{"deep": "\ufffd"}]
    assert row.properties["lone"] == "a\ufffdb"
    assert row.properties["pair"] == "😀"
    assert row.properties["literal"] == "\\u0000 stays"


async def test_unicode_survives(client: httpx.AsyncClient, actor: Actor, db: AsyncSession) -> None:
    one = ev("café ☕", distinct_id="ユーザー", properties={"emoji": "😀", "text": "naïve"})
    response = await post_json(client, "/batch/", {"api_key": actor.team.api_token, "batch": [one]})
    assert response.status_code == 200
    (row,) = await stored(db, actor.team.id)
    assert (row.event, row.distinct_id) == ("café ☕", "ユーザー")
    assert row.properties["emoji"] == "😀" and row.properties["text"] == "naïve"


# --- malformed requests: 400, never 500 ---------------------------------------------------------------------


def _malformed(token: str) -> list[tuple[str, bytes, dict[str, str]]]:
    def j(payload: Any) -> bytes:
        return json.dumps(payload).encode()

    def batch(*events: Any) -> bytes:
        return j({"api_key": token, "batch": list(events)})

    return [
        ("empty body", b"", {}),
        ("not json", b"hello there", {}),
        ("truncated json", b'{"api_key": "x", "batch": [', {}),
        ("empty array", b"[]", {}),
        ("empty batch", batch(), {}),
        ("batch not a list", j({"api_key": token, "batch": {"event": "x"}}), {}),
        ("json string", b'"just a string"', {}),
        ("json number", b"42", {}),
        ("array of numbers", j([1, 2]), {}),
        ("event not an object", batch("x"), {}),
        ("missing event name", batch({"distinct_id": "d"}), {}),
        ("empty event name", batch({"event": "", "distinct_id": "d"}), {}),
        ("event name not a string", batch({"event": 5, "distinct_id": "d"}), {}),
        ("properties not an object", batch({"event": "e", "distinct_id": "d", "properties": [1]}), {}),
        ("bad uuid", batch({"event": "e", "distinct_id": "d", "uuid": "not-a-uuid"}), {}),
        ("uuid not a string", batch({"event": "e", "distinct_id": "d", "uuid": 12}), {}),
        ("offset not a number", batch({"event": "e", "distinct_id": "d", "offset": "soon"}), {}),
        ("$set not an object", batch({"event": "e", "distinct_id": "d", "$set": "x"}), {}),
        (
            "cookieless not a bool",
            batch({"event": "e", "distinct_id": "d", "properties": {"$cookieless_mode": "yes"}}),
            {},
        ),
        (
            "NaN",
            b'{"api_key": "%s", "batch": [{"event": "e", "distinct_id": "d", "x": NaN}]}' % token.encode(),
            {},
        ),
        (
            "huge number",
            b'{"api_key": "%s", "batch": [{"event": "e", "distinct_id": "d", "properties": {"x": 1e400}}]}'
            % token.encode(),
            {},
        ),
        ("invalid utf-8", b'{"api_key": "' + token.encode() + b'", "batch": [{"event": "\xff\xfe"}]}', {}),
        ("deep nesting", b"[" * 100_000 + b"]" * 100_000, {}),
        ("gzip hint, not gzip", batch({"event": "e", "distinct_id": "d"}), {"Content-Encoding": "gzip"}),
        ("truncated gzip", gzip.compress(batch({"event": "e", "distinct_id": "d"}))[:-12], {}),
        ("token not a string", j({"event": "e", "distinct_id": "d", "token": 123}), {}),
        (
            "form that is not a form",
            b"\xff\xfe",
            {"Content-Type": "application/x-www-form-urlencoded"},
        ),
        ("base64 of garbage", base64.b64encode(b"\x00\x01garbage!"), {}),
    ]


@pytest.mark.parametrize("case", range(len(_malformed("t"))), ids=[c[0] for c in _malformed("t")])
async def test_malformed_bodies_are_400(
    client: httpx.AsyncClient, actor: Actor, db: AsyncSession, case: int
) -> None:
    _, body, headers = _malformed(actor.team.api_token)[case]
    before = await total_events(db)
    response = await client.post("/batch/", content=body, headers=headers)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("text/plain")
    assert await total_events(db) == before
