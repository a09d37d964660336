"""`stream_tiles` and retrieve with several renders at once, on a committed database with an app and a pool
of its own per test (as `tilecast serve` builds them): tiles render in parallel under the per-worker limit,
the request's own connection is released first, a client that leaves cancels its renders and returns their
connections, streams are bounded in number, lifetime and send time, and end cleanly at shutdown (also with
a live `tilecast serve` and SIGTERM).

Latency is injected into the tiles' query path (`tests.streams.SlowQueries`): a real `pg_sleep` on the
render's own connection before its query runs.
"""

import asyncio
import json
import signal
import time
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from app.db import async_url
from app.query.cache import lock_id
from app.query.render import TeamInfo, cache_key_for
from app.streaming.stream import LIFETIME_REACHED, SHUTTING_DOWN
from tests.conftest import FreshDatabases
from tests.live import env_without_database, run_cli, serve_process
from tests.resources import trends
from tests.streams import (
    SlowQueries,
    app_on,
    asgi_client,
    board_of,
    new_actor,
    parse,
    payloads,
    served,
    sleeping_queries,
    stream,
    stream_url,
    terminate_sleeping,
    tiles_of,
    wait_until,
)

TILE_S = 0.2


@pytest.fixture(scope="module")
def committed(fresh_databases: FreshDatabases) -> str:
    return fresh_databases.create()


def no_renders_left(app: FastAPI) -> bool:
    return bool(app.state.renders.running == 0 and app.state.renders.waiting == 0)


async def timed(coroutine: Any) -> tuple[Any, float]:
    started = time.perf_counter()
    result = await coroutine
    return result, time.perf_counter() - started


# --- parallel renders ----------------------------------------------------------------------------------


async def median_seconds(request: Any, runs: int = 3) -> float:
    """The median time of `runs` calls of `request()` (this machine's cores are shared with other work)."""
    times = []
    for _ in range(runs):
        _, seconds = await timed(request())
        times.append(seconds)
    return sorted(times)[runs // 2]


async def test_eight_slow_tiles_stream_in_about_the_time_of_one(
    committed: str, monkeypatch: pytest.MonkeyPatch, slow: SlowQueries
) -> None:
    slow.default = TILE_S
    async with app_on(committed, monkeypatch) as (app, engine), asgi_client(app) as client:
        assert app.state.renders.limit == 8  # the default
        actor = await new_actor(engine)
        one = await board_of(client, actor, ["solo"])
        eight = await board_of(client, actor, [f"e{i}" for i in range(8)])
        response = await stream(client, actor, eight, refresh="force_blocking")
        data = payloads(parse(response.text))
        assert [d["type"] for d in data] == ["metadata", *["tile"] * 8, "complete"]
        assert all(d["tile"]["is_cached"] is False for d in data[1:-1])
        # That first run opened the pool's connections; a running server has them already.

        single = await median_seconds(lambda: stream(client, actor, one, refresh="force_blocking"))
        eight_at_once = await median_seconds(lambda: stream(client, actor, eight, refresh="force_blocking"))
        # Rendered one after another they would take 8 x 200 ms.
        assert single >= TILE_S
        assert eight_at_once < 1.5 * single, (eight_at_once, single)
        assert engine.pool.checkedout() == 0


async def test_retrieve_computes_its_tiles_in_parallel_too(
    committed: str, monkeypatch: pytest.MonkeyPatch, slow: SlowQueries
) -> None:
    slow.default = TILE_S
    async with app_on(committed, monkeypatch) as (app, engine), asgi_client(app) as client:
        actor = await new_actor(engine)
        one = await board_of(client, actor, ["solo"])
        eight = await board_of(client, actor, [f"r{i}" for i in range(8)])
        forced = {"refresh": "force_blocking"}
        response = await client.get(actor.url(f"dashboards/{eight}/"), params=forced, headers=actor.headers)
        assert response.status_code == 200
        assert [t["is_cached"] for t in response.json()["tiles"]] == [False] * 8

        single = await median_seconds(
            lambda: client.get(actor.url(f"dashboards/{one}/"), params=forced, headers=actor.headers)
        )
        eight_at_once = await median_seconds(
            lambda: client.get(actor.url(f"dashboards/{eight}/"), params=forced, headers=actor.headers)
        )
        assert single >= TILE_S
        assert eight_at_once < 1.5 * single, (eight_at_once, single)
        # Without `refresh` nothing is computed: one read transaction, no renders.
        slow.computed.clear()
        cached = await client.get(actor.url(f"dashboards/{eight}/"), headers=actor.headers)
        assert [t["is_cached"] for t in cached.json()["tiles"]] == [True] * 8 and slow.computed == []


async def test_the_render_limit_bounds_connections_and_the_request_holds_none_while_rendering(
    committed: str, monkeypatch: pytest.MonkeyPatch, slow: SlowQueries
) -> None:
    """A pool of ONE connection still serves a stream and a retrieve of three slow tiles: the request gives
    its connection back before its renders take it, one at a time (the limit is the pool less one, at least
    one)."""
    slow.default = TILE_S
    env = {"TILECAST_DB_POOL_SIZE": "1", "TILECAST_DB_MAX_OVERFLOW": "0", "TILECAST_DB_POOL_TIMEOUT_S": "1"}
    async with app_on(committed, monkeypatch, **env) as (app, engine), asgi_client(app) as client:
        assert app.state.renders.limit == 1
        actor = await new_actor(engine)
        board = await board_of(client, actor, ["p", "q", "s"])
        response, seconds = await timed(stream(client, actor, board))
        assert [d["type"] for d in payloads(parse(response.text))] == [
            "metadata",
            "tile",
            "tile",
            "tile",
            "complete",
        ]
        assert seconds >= 3 * TILE_S  # one render at a time
        retrieved = await client.get(
            actor.url(f"dashboards/{board}/"), params={"refresh": "force_blocking"}, headers=actor.headers
        )
        assert retrieved.status_code == 200 and len(retrieved.json()["tiles"]) == 3
    # With the default pool, at most 8 renders run at once, whatever the number of tiles and streams.
    slow.default = 0.5
    async with app_on(committed, monkeypatch) as (app, engine), asgi_client(app) as client:
        actor = await new_actor(engine)
        boards = [await board_of(client, actor, [f"b{b}t{i}" for i in range(6)]) for b in range(2)]
        tasks = [asyncio.create_task(stream(client, actor, board)) for board in boards]
        await wait_until(lambda: _sleeping(committed, 8), 5, "8 renders running their query")
        assert app.state.renders.running == 8 and app.state.renders.waiting == 4
        assert engine.pool.checkedout() == 8  # the renders' connections only: the requests hold none
        for task in tasks:
            response = await task
            assert len(tiles_of(parse(response.text))) == 6


# --- failures ---------------------------------------------------------------------------------------------


async def test_an_unexpected_failure_on_one_tile_is_an_error_message_and_the_stream_goes_on(
    committed: str, monkeypatch: pytest.MonkeyPatch, slow: SlowQueries
) -> None:
    slow.delays["doomed"] = 30
    async with app_on(committed, monkeypatch) as (app, engine), asgi_client(app) as client:
        actor = await new_actor(engine)
        board = await board_of(client, actor, ["fine", "doomed", "also fine"])
        pending = asyncio.create_task(stream(client, actor, board))
        await wait_until(lambda: sleeping_queries(committed), 10, "the doomed render is running")
        # Its connection dies mid-query (a database restart, a killed backend).
        assert await terminate_sleeping(committed) == 1
        response = await asyncio.wait_for(pending, 20)
        messages = parse(response.text)
        data = payloads(messages)
        # The other tiles finish whenever they do; the error comes when the doomed render fails.
        assert [d["type"] for d in data][0::4] == ["metadata", "complete"]
        assert sorted(d["type"] for d in data[1:-1]) == ["error", "tile", "tile"]
        retrieved = await client.get(actor.url(f"dashboards/{board}/"), headers=actor.headers)
        doomed = next(t["id"] for t in retrieved.json()["tiles"] if t["insight"]["name"] == "doomed")
        [error] = [d for d in data if d["type"] == "error"]
        assert error == {
            "type": "error",
            "tile_id": doomed,
            "error": "The database was unavailable; this tile could not be rendered.",
        }
        assert {t["insight"]["name"] for t in tiles_of(messages)} == {"fine", "also fine"}
        # The failed tile counts as delivered: a client that reconnects after `complete` is told it is done.
        done = await stream(client, actor, board, headers={"Last-Event-ID": messages[-1].id or ""})
        assert done.status_code == 204
        await wait_until(lambda: engine.pool.checkedout() == 0, 2, "connections back in the pool")


async def test_the_lifetime_limit_ends_a_stream_with_a_fatal_error_and_no_complete(
    committed: str, monkeypatch: pytest.MonkeyPatch, slow: SlowQueries
) -> None:
    slow.delays["slow"] = 30
    env = {"TILECAST_STREAM_MAX_LIFETIME_S": "1"}
    async with app_on(committed, monkeypatch, **env) as (app, engine), asgi_client(app) as client:
        actor = await new_actor(engine)
        board = await board_of(client, actor, ["quick", "slow"])
        response, seconds = await timed(stream(client, actor, board))
        messages = parse(response.text)
        data = payloads(messages)
        assert [d["type"] for d in data] == ["metadata", "tile", "error"]
        assert data[-1] == {"type": "error", "error": LIFETIME_REACHED}
        assert 1 <= seconds < 5
        # The slow render was cancelled: its statement stopped and its connection went back.
        await wait_until(lambda: engine.pool.checkedout() == 0, 2, "connections back in the pool")
        assert await sleeping_queries(committed) == 0 and no_renders_left(app)
        # A reconnection resumes after the quick tile.
        last_id = messages[1].id or ""
        slow.delays["slow"] = 0
        resumed = await stream(client, actor, board, headers={"Last-Event-ID": last_id})
        assert [t["insight"]["name"] for t in tiles_of(parse(resumed.text))] == ["slow"]


# --- clients that leave or stall; the cap; shutdown ---------------------------------------------------------


async def test_a_client_that_leaves_cancels_its_renders_and_no_connection_stays_checked_out(
    committed: str, monkeypatch: pytest.MonkeyPatch, slow: SlowQueries
) -> None:
    slow.default = 30
    async with app_on(committed, monkeypatch) as (app, engine), asgi_client(app) as setup:
        actor = await new_actor(engine)
        board = await board_of(setup, actor, [f"long{i}" for i in range(12)])
        async with served(app) as (base, _server), httpx.AsyncClient(base_url=base, timeout=30) as client:
            async with client.stream("GET", stream_url(actor, board), headers=actor.headers) as response:
                assert response.status_code == 200
                lines = response.aiter_lines()
                first = await anext(lines)
                while not first.startswith("data:"):
                    first = await anext(lines)
                assert json.loads(first.removeprefix("data: "))["type"] == "metadata"
                await wait_until(lambda: _sleeping(committed, 8), 5, "8 renders running their query")
                assert app.state.renders.running == 8 and app.state.renders.waiting == 4
                assert app.state.streams.open == 1
            # The client left mid-stream (the connection is closed).
            took = await wait_until(lambda: engine.pool.checkedout() == 0, 1, "no connection checked out")
            assert took < 1
            assert no_renders_left(app) and app.state.streams.open == 0
            await wait_until(lambda: _sleeping(committed, 0), 2, "their statements stopped")


async def _sleeping(url: str, count: int) -> bool:
    return await sleeping_queries(url) == count


async def test_past_the_stream_cap_a_request_is_answered_503_with_retry_after(
    committed: str, monkeypatch: pytest.MonkeyPatch, slow: SlowQueries
) -> None:
    slow.delays["slow"] = 1
    env = {"TILECAST_STREAM_MAX_STREAMS": "2"}
    async with app_on(committed, monkeypatch, **env) as (app, engine), asgi_client(app) as client:
        actor = await new_actor(engine)
        board = await board_of(client, actor, ["slow"])
        open_streams = [
            asyncio.create_task(stream(client, actor, board, refresh="force_blocking")) for _ in range(2)
        ]
        await wait_until(lambda: app.state.streams.open == 2, 5, "two streams open")
        refused = await stream(client, actor, board)
        assert refused.status_code == 503
        assert refused.headers["retry-after"] == "5"
        assert refused.headers["content-type"] == "application/json"
        assert refused.json() == {
            "type": "server_error",
            "code": "service_unavailable",
            "detail": "This server has too many open streams; try again later.",
            "attr": None,
        }
        for task in open_streams:
            assert (await task).status_code == 200
        # Places are given back: by ended streams, and by requests that never streamed (errors, 204).
        assert app.state.streams.open == 0
        assert (await stream(client, actor, 2_000_000_000)).status_code == 404
        assert (await client.get(stream_url(actor, board))).status_code == 401
        assert app.state.streams.open == 0
        assert (await stream(client, actor, board)).status_code == 200


async def test_a_client_that_stops_reading_is_dropped_after_the_send_timeout(
    committed: str, monkeypatch: pytest.MonkeyPatch, slow: SlowQueries
) -> None:
    """Driven at the ASGI interface: the client's socket is full, so every send blocks."""
    slow.default = 30
    env = {"TILECAST_STREAM_SEND_TIMEOUT_S": "0.5"}
    async with app_on(committed, monkeypatch, **env) as (app, engine), asgi_client(app) as client:
        actor = await new_actor(engine)
        board = await board_of(client, actor, ["a", "b", "c"])
        sent: list[dict[str, Any]] = []
        stalled = asyncio.Event()

        async def receive() -> dict[str, Any]:
            if not sent:
                return {"type": "http.request", "body": b"", "more_body": False}
            await asyncio.Event().wait()  # the client never leaves
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)
            if message["type"] == "http.response.body":
                stalled.set()
                await asyncio.Event().wait()  # the client reads nothing more

        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": stream_url(actor, board),
            "raw_path": stream_url(actor, board).encode(),
            "query_string": b"",
            "root_path": "",
            "headers": [(b"host", b"testserver"), (b"authorization", f"Bearer {actor.key}".encode())],
            "client": ("127.0.0.1", 1234),
            "server": ("testserver", 80),
        }
        _, seconds = await timed(asyncio.wait_for(app(scope, receive, send), 10))
        assert sent[0]["type"] == "http.response.start" and sent[0]["status"] == 200
        assert stalled.is_set() and 0.5 <= seconds < 3
        await wait_until(lambda: engine.pool.checkedout() == 0, 2, "connections back in the pool")
        assert no_renders_left(app) and app.state.streams.open == 0


async def test_server_shutdown_ends_open_streams_cleanly(
    committed: str, monkeypatch: pytest.MonkeyPatch, slow: SlowQueries
) -> None:
    slow.default = 30
    async with app_on(committed, monkeypatch) as (app, engine), asgi_client(app) as setup:
        actor = await new_actor(engine)
        board = await board_of(setup, actor, ["x", "y"])
        async with served(app) as (base, server), httpx.AsyncClient(base_url=base, timeout=30) as client:
            async with client.stream("GET", stream_url(actor, board), headers=actor.headers) as response:
                lines = response.aiter_lines()
                seen: list[dict[str, Any]] = []
                async for line in lines:
                    if line.startswith("data:"):
                        seen.append(json.loads(line.removeprefix("data: ")))
                        if seen[-1]["type"] == "metadata":
                            await wait_until(lambda: app.state.renders.running == 2, 5, "renders running")
                            server.should_exit = True  # as on SIGTERM
                # The body ended properly (a clean end of the chunked response, no error raised).
            assert [m["type"] for m in seen] == ["metadata", "error"]
            assert seen[-1] == {"type": "error", "error": SHUTTING_DOWN}
        await wait_until(lambda: engine.pool.checkedout() == 0, 2, "connections back in the pool")
        assert no_renders_left(app) and app.state.streams.open == 0


def test_sigterm_ends_a_live_servers_open_streams_cleanly(
    fresh_databases: FreshDatabases, tmp_path: Path
) -> None:
    """`tilecast serve` itself, stopped by SIGTERM with a stream open: the stream says so and ends, the server
    exits, nothing is logged as failed. The open tile waits on its query's lock, held here (no latency can be
    injected into another process)."""
    database_url = fresh_databases.create(migrated=False)
    env = env_without_database(DATABASE_URL=database_url, TILECAST_LOG_LEVEL="INFO")
    created = json.loads(run_cli(["create-key", "--email", "sigterm@example.com", "--json"], env).stdout)
    headers = {"Authorization": f"Bearer {created['key']}"}
    loop = asyncio.new_event_loop()
    with serve_process(env, tmp_path) as (base, log, proc):
        api = f"{base}/api/environments/{created['team_id']}"
        board = httpx.post(f"{api}/dashboards/", json={"name": "d"}, headers=headers).json()["id"]
        ids = {}
        for name in ("quick", "held"):
            body = {"name": name, "query": trends(name), "dashboards": [board]}
            ids[name] = httpx.post(f"{api}/insights/", json=body, headers=headers).json()["id"]
        query = httpx.get(f"{api}/insights/{ids['held']}/", headers=headers).json()["query"]
        lock = lock_id(cache_key_for(TeamInfo(id=created["team_id"], timezone="UTC"), query))
        url = str(async_url(database_url).set(drivername="postgresql").render_as_string(False))
        holder = loop.run_until_complete(asyncpg.connect(url))
        try:
            loop.run_until_complete(holder.execute("SELECT pg_advisory_lock($1)", lock))
            seen: list[dict[str, Any]] = []
            stream_tiles = f"{api}/dashboards/{board}/stream_tiles/"
            with httpx.stream("GET", stream_tiles, headers=headers, timeout=30) as r:
                for line in r.iter_lines():
                    if line.startswith("data:"):
                        seen.append(json.loads(line.removeprefix("data: ")))
                        if [m["type"] for m in seen] == ["metadata", "tile"]:
                            proc.send_signal(signal.SIGTERM)
            assert [m["type"] for m in seen] == ["metadata", "tile", "error"]
            assert seen[1]["tile"]["insight"]["name"] == "quick"
            assert seen[2] == {"type": "error", "error": SHUTTING_DOWN}
            proc.wait(timeout=30)
        finally:
            loop.run_until_complete(holder.close())
            loop.close()
    logged = log.read_text()
    assert f"/dashboards/{board}/stream_tiles/ 200" in logged
    assert "Traceback" not in logged and "ERROR" not in logged, logged
