"""A fixed event set for SQL insights, and running HogQL through `/query/`."""

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.clickhouse.client import ClickHouse, ServerClient
from app.clickhouse.schema import migrate
from app.config import get_settings
from app.db import create_engine, create_sessionmaker
from app.main import create_app
from app.migrations import setup_sql_sandbox
from tests.clickhouse_helpers import SERVER_URL, drop_database, open_database
from tests.conftest import FreshDatabases
from tests.events import event, ingest
from tests.factories import Actor
from tests.streams import asgi_client, new_actor

# Eight events of three people (times UTC), chosen so that each query of the corpus has a result worked
# out by hand in the test.
EVENTS = [
    ("$pageview", "u1", "2026-01-01T10:00:00Z", {"$browser": "Chrome", "$current_url": "https://a.com/x",
                                                  "price": 10, "$session_id": "s1"}),
    ("$pageview", "u1", "2026-01-01T23:30:00Z", {"$browser": "Chrome", "price": "5.5", "$session_id": "s1"}),
    ("$pageview", "u2", "2026-01-02T09:00:00Z", {"$browser": "Firefox", "tags": "a,b",
                                                  "$set": {"email": "b@x.com", "plan": "pro"}}),
    ("signup", "u2", "2026-01-02T09:05:00Z", {"plan": "pro", "nested": {"k": {"z": "deep"}}}),
    ("$pageview", "u3", "2026-01-03T12:00:00Z", {"$browser": "Safari", "price": 20}),
    ("purchase", "u1", "2026-01-03T13:00:00Z", {"amount": 30, "$set": {"email": "a@x.com"}}),
    ("purchase", "u3", "2026-01-04T00:15:00Z", {"amount": 12.5, "flag": True}),
    ("$autocapture", "u2", "2026-01-04T08:00:00Z", {}),
]  # fmt: skip
# Another team's events: no query of the first team may see them.
OTHER_EVENTS = [
    ("$pageview", "intruder", "2026-01-02T10:00:00Z", {"$browser": "Secret", "$set": {"email": "x@secret"}}),
    ("purchase", "intruder", "2026-01-03T10:00:00Z", {"amount": 1000}),
]


async def put_events(client: httpx.AsyncClient, actor: Actor, rows: list[tuple[str, str, str, Any]]) -> None:
    await ingest(client, actor, [event(name, who, when, dict(props)) for name, who, when, props in rows])


async def hogql(client: httpx.AsyncClient, actor: Actor, sql: str, **fields: Any) -> httpx.Response:
    """POST a HogQLQuery to `/query/` (fresh: `force_blocking`)."""
    query = {"kind": "HogQLQuery", "query": sql, **fields}
    return await client.post(
        actor.url("query/"), json={"query": query, "refresh": "force_blocking"}, headers=actor.headers
    )


async def rows(client: httpx.AsyncClient, actor: Actor, sql: str, **fields: Any) -> Any:
    response = await hogql(client, actor, sql, **fields)
    assert response.status_code == 200, f"{sql}: {response.text}"
    return response.json()["results"]


@dataclass
class World:
    """A committed database set up as `tilecast migrate` sets it up (SQL insights run on connections of
    their own, as each team's role): `ours` and `berlin` hold `EVENTS`, `theirs` holds `OTHER_EVENTS`."""

    app: FastAPI
    engine: AsyncEngine
    client: httpx.AsyncClient
    ours: Actor
    theirs: Actor
    berlin: Actor


def sql_database(fresh_databases: FreshDatabases) -> str:
    """A fresh migrated database with SQL insights set up (as `tilecast migrate` does); its URL."""
    url = fresh_databases.create()
    assert setup_sql_sandbox(url) is None
    return url


@asynccontextmanager
async def sql_world(url: str, events_store: ClickHouse | None = None) -> AsyncIterator[World]:
    """The world; with `events_store`, on the ClickHouse events backend (events captured into it, SQL
    computed from it: TILECAST_EVENTS_BACKEND=clickhouse while the world lives)."""
    previous = os.environ.get("TILECAST_EVENTS_BACKEND")
    if events_store is not None:
        os.environ["TILECAST_EVENTS_BACKEND"] = "clickhouse"
        get_settings.cache_clear()
    try:
        async with _sql_world(url, events_store) as world:
            yield world
    finally:
        if events_store is not None:
            if previous is None:
                os.environ.pop("TILECAST_EVENTS_BACKEND", None)
            else:
                os.environ["TILECAST_EVENTS_BACKEND"] = previous
            get_settings.cache_clear()


@asynccontextmanager
async def _sql_world(url: str, events_store: ClickHouse | None) -> AsyncIterator[World]:
    app = create_app()
    engine = create_engine(url, get_settings())
    app.state.engine = engine
    app.state.sessionmaker = create_sessionmaker(engine, events_store)
    if events_store is not None:
        app.state.clickhouse = events_store
    ours, theirs, berlin = await new_actor(engine), await new_actor(engine), await new_actor(engine)
    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE team SET timezone = 'Europe/Berlin' WHERE id = :id"), {"id": berlin.team.id}
        )
    async with asgi_client(app) as client:
        await put_events(client, ours, EVENTS)
        await put_events(client, berlin, EVENTS)
        await put_events(client, theirs, OTHER_EVENTS)
        yield World(app, engine, client, ours, theirs, berlin)
    await app.state.sandbox.close()
    await engine.dispose()


@asynccontextmanager
async def events_store(events_backend: str, request: Any) -> AsyncIterator[ClickHouse | None]:
    """A fresh ClickHouse database for a `both_backends` module's world on `events_backend` (None:
    PostgreSQL). Fresh, not the session's shared store: each module's PostgreSQL database numbers its teams
    from 1, so two worlds' teams would share ids."""
    if events_backend == "postgres":
        yield None
        return
    if events_backend == "clickhouse-server":
        assert SERVER_URL
        parts = urlsplit(SERVER_URL)
        store: ClickHouse = ServerClient(
            urlunsplit(parts._replace(path=f"/tilecast_test_{uuid.uuid4().hex[:12]}"))
        )
        await migrate(store)
    else:
        store = await open_database(request.getfixturevalue("chdb_path"))
    try:
        yield store
    finally:
        await drop_database(store)
