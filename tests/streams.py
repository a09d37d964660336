"""Helpers for the `stream_tiles` tests (no tests here): reading an event stream, dashboards of insights,
latency injected into the tiles' query path, and apps with a pool of their own on a committed database."""

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.config import get_settings
from app.db import async_url, create_engine, create_sessionmaker
from app.main import create_app
from app.query import engine as query_engine
from tests.factories import Actor, make_actor
from tests.live import free_port
from tests.resources import trends


@dataclass
class Message:
    """One SSE message as a client parses it."""

    data: dict[str, Any] | None = None
    id: str | None = None
    retry: int | None = None
    event: str | None = None
    comments: list[str] = field(default_factory=list)


def parse(body: str) -> list[Message]:
    """The messages of an event stream (fields per the SSE spec; every `data:` here is one JSON line)."""
    found = []
    for block in body.replace("\r\n", "\n").split("\n\n"):
        if not block.strip():
            continue
        message = Message()
        for line in block.split("\n"):
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "":
                message.comments.append(value)
            elif name == "data":
                assert message.data is None, "one data line per message"
                message.data = json.loads(value)
            elif name == "id":
                message.id = value
            elif name == "retry":
                message.retry = int(value)
            elif name == "event":
                message.event = value
        found.append(message)
    return found


def payloads(messages: list[Message]) -> list[dict[str, Any]]:
    return [m.data for m in messages if m.data is not None]


def tiles_of(messages: list[Message]) -> list[dict[str, Any]]:
    """Every tile the stream delivered: those in the metadata, then those of `tile` messages."""
    found: list[dict[str, Any]] = []
    for data in payloads(messages):
        if data["type"] == "metadata":
            found.extend(data["dashboard"]["tiles"])
        elif data["type"] == "tile":
            found.append(data["tile"])
    return found


def stream_url(actor: Actor, board: int) -> str:
    return actor.url(f"dashboards/{board}/stream_tiles/")


async def stream(
    client: httpx.AsyncClient,
    actor: Actor,
    board: int,
    *,
    headers: dict[str, str] | None = None,
    **params: str,
) -> httpx.Response:
    return await client.get(
        stream_url(actor, board), params=params, headers={**actor.headers, **(headers or {})}
    )


async def insight_on(client: httpx.AsyncClient, actor: Actor, board: int, query: Any, name: str = "i") -> int:
    response = await client.post(
        actor.url("insights/"),
        json={"name": name, "query": query, "dashboards": [board]},
        headers=actor.headers,
    )
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


async def board_of(client: httpx.AsyncClient, actor: Actor, events: list[str], name: str = "D") -> int:
    """A dashboard with one insight per event name (a trend of that event), named after it."""
    response = await client.post(actor.url("dashboards/"), json={"name": name}, headers=actor.headers)
    assert response.status_code == 201, response.text
    board = int(response.json()["id"])
    for event_name in events:
        await insight_on(client, actor, board, trends(event_name), name=event_name)
    return board


def event_of(query: Any) -> str | None:
    source = query.get("source", query) if isinstance(query, dict) else None
    series = source.get("series") if isinstance(source, dict) else None
    if isinstance(series, list) and series and isinstance(series[0], dict):
        event_name = series[0].get("event")
        return event_name if isinstance(event_name, str) else None
    return None


class SlowQueries:
    """The engine's `compute`, preceded for chosen events by a real `pg_sleep` on the render's own
    connection (latency injected into the tile's query path: the connection is held, as by a slow query).
    Counts the computations of each event."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.delays: dict[str, float] = {}
        self.default = 0.0
        self.computed: list[str | None] = []
        real = query_engine.compute

        async def compute(query: Any, ctx: Any, backend: Any) -> Any:
            event_name = event_of(query)
            self.computed.append(event_name)
            seconds = self.delays.get(event_name or "", self.default)
            if seconds:
                await backend.connection.execute(text("SELECT pg_sleep(:s)"), {"s": seconds})
            return await real(query, ctx, backend)

        monkeypatch.setattr(query_engine, "compute", compute)


@asynccontextmanager
async def app_on(
    url: str, monkeypatch: pytest.MonkeyPatch, **env: str
) -> AsyncIterator[tuple[FastAPI, AsyncEngine]]:
    """An app with a pool of its own on a committed database (as `serve` builds it), under `env` settings."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    app = create_app()
    engine = create_engine(url, get_settings())
    app.state.engine = engine
    app.state.sessionmaker = create_sessionmaker(engine)
    try:
        yield app, engine
    finally:
        await engine.dispose()
        for name in env:
            monkeypatch.delenv(name)
        get_settings.cache_clear()


async def new_actor(engine: AsyncEngine) -> Actor:
    async with create_sessionmaker(engine)() as session:
        return await make_actor(session)


def asgi_client(app: FastAPI) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://testserver", timeout=60)


@asynccontextmanager
async def served(app: FastAPI) -> AsyncIterator[tuple[str, uvicorn.Server]]:
    """The app behind a real uvicorn server on this event loop (a socket clients can leave mid-stream)."""
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, lifespan="off", log_level="warning", access_log=False
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}", server
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 30)


async def wait_until(condition: Any, within: float, what: str) -> float:
    """Poll `condition()` (sync or async) until true; the seconds it took. Fails after `within` s."""
    started = asyncio.get_running_loop().time()
    while True:
        value = condition()
        if asyncio.iscoroutine(value):
            value = await value
        elapsed = asyncio.get_running_loop().time() - started
        if value:
            return elapsed
        if elapsed > within:
            raise AssertionError(f"not within {within} s: {what}")
        await asyncio.sleep(0.02)


async def sleeping_queries(url: str) -> int:
    """Statements running `pg_sleep` on the database now (the injected latency of renders in flight)."""
    conn = await asyncpg.connect(str(async_url(url).set(drivername="postgresql").render_as_string(False)))
    try:
        database = await conn.fetchval("SELECT current_database()")
        count = await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND state = 'active' "
            "AND query LIKE '%pg_sleep%' AND pid <> pg_backend_pid()",
            database,
        )
        return int(count)
    finally:
        await conn.close()


async def terminate_sleeping(url: str) -> int:
    """End the server processes running a `pg_sleep` (a render's connection lost mid-query)."""
    conn = await asyncpg.connect(str(async_url(url).set(drivername="postgresql").render_as_string(False)))
    try:
        database = await conn.fetchval("SELECT current_database()")
        return len(
            await conn.fetch(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 "
                "AND state = 'active' AND query LIKE '%pg_sleep%' AND pid <> pg_backend_pid()",
                database,
            )
        )
    finally:
        await conn.close()
