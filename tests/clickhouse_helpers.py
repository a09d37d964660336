"""Tests on the ClickHouse events backend, in process with chdb (no server needed).

chdb opens ONE data directory per process (a second path is refused: "EmbeddedServer already initialized
with path ..."), so the whole test run shares one chdb store (`chdb_path`, session-wide), and each test gets
a fresh database in it (`clickhouse`: a `ChdbClient` on database `t_<hex>`, migrated, dropped at the end).
SQL must therefore name tables through `client.database` (`f"{ch.database}.events"`), never a fixed one.

The fixtures are registered for every test module (`pytest_plugins` in conftest.py): just name them.

    async def test_x(clickhouse_app: ClickHouseApp, actor: Actor) -> None:
        await ingest(clickhouse_app.client, actor, [...])          # captured into ClickHouse
        rows = await stored_events(clickhouse_app.clickhouse, actor.team.id)

`clickhouse_app` is an app built with TILECAST_EVENTS_BACKEND=clickhouse (the env var is set for the test, so
`get_settings()` says so too) sharing the test's PostgreSQL transaction (the `db` fixture, as `client` does),
with `app.state.clickhouse` set to the test's chdb database. Server tests (clickhouse-connect) run only when
TILECAST_CLICKHOUSE_URL is set: `requires_server` skips them otherwise.
"""

import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from app.clickhouse.client import ChdbClient, ClickHouse
from app.clickhouse.schema import migrate
from app.config import get_settings
from app.main import create_app

SERVER_URL = os.environ.get("TILECAST_CLICKHOUSE_URL")
requires_server = pytest.mark.skipif(
    not SERVER_URL, reason="TILECAST_CLICKHOUSE_URL is not set: no ClickHouse server to test against"
)


@pytest.fixture(scope="session")
def chdb_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The one chdb data directory of this test process."""
    return tmp_path_factory.mktemp("chdb")


async def open_database(path: Path) -> ChdbClient:
    """A fresh, migrated database in the process's chdb store."""
    client = ChdbClient(path, database=f"t_{uuid.uuid4().hex[:12]}")
    await migrate(client)
    return client


async def drop_database(client: ClickHouse) -> None:
    await client.command(f"DROP DATABASE IF EXISTS {client.database}")
    await client.close()


@pytest.fixture
async def clickhouse(chdb_path: Path) -> AsyncIterator[ChdbClient]:
    """A chdb client on a fresh database holding the migrated `events` and `person` tables."""
    pytest.importorskip("chdb", reason="no ClickHouse extra: pip install -e '.[clickhouse]'")
    client = await open_database(chdb_path)
    try:
        yield client
    finally:
        await drop_database(client)


def clickhouse_app_on(app: FastAPI, clickhouse: ClickHouse, monkeypatch: pytest.MonkeyPatch) -> FastAPI:
    """An app like `app` (its engine and the test's sessions) whose events backend is `clickhouse`: captured
    into it (`app.state.clickhouse`) and computed from it (the sessions carry it to the query engine). The
    setting stays on until `monkeypatch` is undone."""
    monkeypatch.setenv("TILECAST_EVENTS_BACKEND", "clickhouse")
    get_settings.cache_clear()
    other = create_app()
    other.state.engine = app.state.engine
    app.state.sessionmaker.configure(info={"clickhouse": clickhouse})
    other.state.sessionmaker = app.state.sessionmaker
    other.state.clickhouse = clickhouse
    return other


@dataclass
class ClickHouseApp:
    app: FastAPI
    client: httpx.AsyncClient  # requests to `app`
    clickhouse: ChdbClient  # the app's events store (`app.state.clickhouse`)


@pytest.fixture
async def clickhouse_app(
    app: FastAPI, db: AsyncSession, clickhouse: ChdbClient, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[ClickHouseApp]:
    """An app whose events backend is ClickHouse (chdb), in the test's PostgreSQL transaction."""
    other = clickhouse_app_on(app, clickhouse, monkeypatch)
    transport = httpx.ASGITransport(app=other)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield ClickHouseApp(other, http, clickhouse)
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()


async def stored_events(client: ClickHouse, team_id: int) -> list[dict[str, Any]]:
    """The team's events in ClickHouse, oldest first, as dicts of their columns."""
    columns = ("uuid", "event", "distinct_id", "timestamp", "properties")
    rows = await client.query(
        f"SELECT {', '.join(columns)} FROM {client.database}.events"
        " WHERE team_id = {team:Int64} ORDER BY timestamp, uuid",
        {"team": team_id},
    )
    return [dict(zip(columns, row, strict=True)) for row in rows]


async def stored_persons(client: ClickHouse, team_id: int) -> dict[str, str]:
    """Each distinct id's latest properties (JSON text) in ClickHouse's `person` table."""
    rows = await client.query(
        f"SELECT distinct_id, argMax(properties, version) FROM {client.database}.person"
        " WHERE team_id = {team:Int64} GROUP BY distinct_id",
        {"team": team_id},
    )
    return {row[0]: row[1] for row in rows}
