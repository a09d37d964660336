"""When the database is away, busy or slow, clients get a 503 with `Retry-After` (capture too, so SDKs retry),
never a 500; an insight computation that runs too long stays a 504 (or a tile error); and the service recovers
by itself. Each test runs an app of its own on a committed database, with the settings it needs."""

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from app.config import Settings, get_settings
from app.db import async_url, create_engine, create_sessionmaker
from app.main import create_app
from tests.conftest import FreshDatabases
from tests.factories import Actor, make_actor
from tests.resources import trends

UNAVAILABLE = {
    "type": "server_error",
    "code": "service_unavailable",
    "detail": "Service temporarily unavailable, try again later.",
    "attr": None,
}


@pytest.fixture(scope="module")
def fault_database(fresh_databases: FreshDatabases) -> str:
    return fresh_databases.create()


@pytest.fixture
def settings_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Settings]]:
    """Set TILECAST_* variables for the app under test (read through `get_settings()`)."""

    def configure(**env: str) -> Settings:
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        get_settings.cache_clear()
        return get_settings()

    yield configure
    monkeypatch.undo()
    get_settings.cache_clear()


@asynccontextmanager
async def running(url: str) -> AsyncIterator[tuple[FastAPI, AsyncEngine, httpx.AsyncClient]]:
    """An app on `url` with its own pool, as `serve` builds it (current settings)."""
    app = create_app()
    engine = create_engine(url, get_settings())
    app.state.engine = engine
    app.state.sessionmaker = create_sessionmaker(engine)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield app, engine, client
    finally:
        await engine.dispose()


async def new_actor(engine: AsyncEngine) -> Actor:
    async with create_sessionmaker(engine)() as session:
        return await make_actor(session)


def plain(url: str) -> str:
    return async_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.json() == UNAVAILABLE
    assert int(response.headers["Retry-After"]) >= 1


async def test_pool_exhaustion_is_a_quick_503(
    fault_database: str, settings_env: Callable[..., Settings]
) -> None:
    settings_env(TILECAST_DB_POOL_SIZE="1", TILECAST_DB_MAX_OVERFLOW="0", TILECAST_DB_POOL_TIMEOUT_S="0.5")
    async with running(fault_database) as (_, engine, client):
        actor = await new_actor(engine)
        async with engine.connect():  # the pool's only connection, held
            started = asyncio.get_running_loop().time()
            response = await client.get(actor.url("dashboards/"), headers=actor.headers)
            waited = asyncio.get_running_loop().time() - started
        assert_unavailable(response)
        assert waited < 5
        captured = await client.post(
            "/batch/", json={"api_key": actor.team.api_token, "batch": [{"event": "e", "distinct_id": "d"}]}
        )
        assert captured.status_code == 200  # the connection is back: served again


async def test_default_pool_timeout_is_5_seconds() -> None:
    assert Settings().db_pool_timeout_s == 5


async def drop_connections(admin_url: str, database_url: str) -> None:
    """The server drops every connection to the database (a restart, a failover, an idle timeout)."""
    admin = await asyncpg.connect(plain(admin_url))
    try:
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = $1 AND pid <> pg_backend_pid()",
            make_url(database_url).database,
        )
    finally:
        await admin.close()


async def test_lost_connections_are_503_then_recover(fault_database: str, admin_url: str) -> None:
    async with running(fault_database) as (_, engine, client):
        actor = await new_actor(engine)
        assert (await client.get(actor.url("dashboards/"), headers=actor.headers)).status_code == 200
        await drop_connections(admin_url, fault_database)
        lost = await client.get(actor.url("dashboards/"), headers=actor.headers)
        assert_unavailable(lost)
        assert (await client.get(actor.url("dashboards/"), headers=actor.headers)).status_code == 200


async def test_capture_on_lost_connections_is_503_then_recovers(fault_database: str, admin_url: str) -> None:
    # Capture's insert runs on asyncpg directly: a dead connection must still leave the pool, and be a 503.
    async with running(fault_database) as (_, engine, client):
        actor = await new_actor(engine)
        body = {"api_key": actor.team.api_token, "batch": [{"event": "e", "distinct_id": "d"}]}
        assert (await client.post("/batch/", json=body)).status_code == 200
        await drop_connections(admin_url, fault_database)
        lost = await client.post("/batch/", json=body)
        assert lost.status_code == 503
        assert lost.text == "transient error, please retry"
        assert (await client.post("/batch/", json=body)).status_code == 200


async def test_no_database_at_all_is_503_for_the_api_and_capture() -> None:
    async with running("postgresql://nobody@127.0.0.1:9/nowhere") as (_, _engine, client):
        response = await client.get(
            "/api/environments/1/dashboards/", headers={"Authorization": "Bearer phx_x"}
        )
        assert_unavailable(response)
        captured = await client.post(
            "/batch/", json={"api_key": "phc_x", "batch": [{"event": "e", "distinct_id": "d"}]}
        )
        assert captured.status_code == 503
        assert captured.text == "transient error, please retry"
        assert int(captured.headers["Retry-After"]) >= 1
        ready = await client.get("/_readyz")
        assert ready.status_code == 503


@asynccontextmanager
async def table_locked(url: str, table: str) -> AsyncIterator[None]:
    """Another session holds an exclusive lock on `table` (a migration, a long maintenance statement)."""
    conn = await asyncpg.connect(plain(url))
    try:
        tx = conn.transaction()
        await tx.start()
        await conn.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
        yield
        await tx.rollback()
    finally:
        await conn.close()


async def test_a_statement_timeout_is_503_for_the_api_and_capture(
    fault_database: str, settings_env: Callable[..., Settings]
) -> None:
    settings_env(TILECAST_DB_STATEMENT_TIMEOUT_MS="300")
    async with running(fault_database) as (_, engine, client):
        actor = await new_actor(engine)
        async with table_locked(fault_database, "dashboard"):
            response = await client.get(actor.url("dashboards/"), headers=actor.headers)
        assert_unavailable(response)
        event: dict[str, Any] = {"event": "e", "distinct_id": "d"}
        async with table_locked(fault_database, "events"):
            captured = await client.post("/batch/", json={"api_key": actor.team.api_token, "batch": [event]})
        assert captured.status_code == 503
        assert captured.text == "transient error, please retry"
        assert (
            await client.post("/batch/", json={"api_key": actor.team.api_token, "batch": [event]})
        ).status_code == 200


async def test_a_computation_past_the_query_timeout_stays_a_504_and_a_tile_error(
    fault_database: str, settings_env: Callable[..., Settings]
) -> None:
    settings_env(TILECAST_QUERY_TIMEOUT_MS="300")
    async with running(fault_database) as (_, engine, client):
        actor = await new_actor(engine)
        dashboard = await client.post(actor.url("dashboards/"), json={"name": "d"}, headers=actor.headers)
        insight = await client.post(
            actor.url("insights/"),
            json={"name": "i", "query": trends(), "dashboards": [dashboard.json()["id"]]},
            headers=actor.headers,
        )
        assert insight.status_code == 201, insight.text
        async with table_locked(fault_database, "events"):
            response = await client.post(
                actor.url("query/"), json={"query": trends()["source"]}, headers=actor.headers
            )
            assert response.status_code == 504, response.text
            assert response.json()["code"] == "query_timeout"
            tiles = await client.get(
                actor.url(f"dashboards/{dashboard.json()['id']}/"),
                params={"refresh": "blocking"},
                headers=actor.headers,
            )
        assert tiles.status_code == 200, tiles.text
        (tile,) = tiles.json()["tiles"]
        assert tile["error"] == {
            "type": "QueryTimeout",
            "message": "The query took too long and was cancelled.",
        }
