"""Test fixtures: a real PostgreSQL (embedded, or TILECAST_TEST_DATABASE_URL), migrated once per run.

Most tests run inside one transaction that is rolled back at the end: the app's sessions join it through
SAVEPOINTs (`join_transaction_mode="create_savepoint"`), so each request still commits or rolls back on
its own. Tests whose data must be visible to other connections use `committed_database_url` instead.
"""

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.clickhouse.client import ClickHouse, ServerClient
from app.clickhouse.schema import migrate
from app.config import get_settings
from app.dashboards.views import ViewRecorder
from app.db import async_url, create_engine
from app.main import create_app
from app.migrations import upgrade
from app.sql_sandbox.roles import role_name
from tests.clickhouse_helpers import SERVER_URL, ChdbClient, clickhouse_app_on, drop_database, open_database
from tests.factories import Actor, make_actor
from tests.streams import SlowQueries

# The ClickHouse fixtures (`clickhouse`, `clickhouse_app`), usable in any test module.
pytest_plugins = ["tests.clickhouse_helpers"]

# The events backends a `both_backends` test runs on.
# With TILECAST_CLICKHOUSE_URL, on that ClickHouse server too (clickhouse-connect), as `clickhouse-server`.
EVENTS_BACKENDS = ["postgres", "clickhouse", *(["clickhouse-server"] if SERVER_URL else [])]

# Requests see rows a test changes at once (tests of the per-process principal cache turn it on themselves;
# TILECAST_TEST_AUTH_CACHE_TTL_S runs the suite with it on, where only tests changing a key's rows must fail).
os.environ["TILECAST_AUTH_CACHE_TTL_S"] = os.environ.get("TILECAST_TEST_AUTH_CACHE_TTL_S", "0")
get_settings.cache_clear()  # read at import already (`app.main:app`)


def _admin_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    configured = os.environ.get("TILECAST_TEST_DATABASE_URL")
    if configured:
        yield configured
        return
    from app.embedded import EmbeddedPostgres

    server = EmbeddedPostgres(tmp_path_factory.mktemp("embedded-pg"))
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture(scope="session")
def admin_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A server URL with rights to create databases."""
    yield from _admin_url(tmp_path_factory)


def _with_database(url: str, name: str) -> str:
    return make_url(url).set(database=name).render_as_string(hide_password=False)


async def _create_database(admin: str, name: str) -> None:
    conn = await asyncpg.connect(str(async_url(admin).set(drivername="postgresql").render_as_string(False)))
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def _drop_database(admin: str, name: str) -> None:
    """The database, and the SQL insights roles of its teams (roles outlive a database: they are the
    server's)."""
    conn = await asyncpg.connect(str(async_url(admin).set(drivername="postgresql").render_as_string(False)))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        prefix = role_name(name, 0).removesuffix("0")
        for role in await conn.fetch("SELECT rolname FROM pg_roles WHERE starts_with(rolname, $1)", prefix):
            await conn.execute(f'DROP ROLE IF EXISTS "{role["rolname"]}"')
    finally:
        await conn.close()


class FreshDatabases:
    """Creates empty databases on the test server and drops them at the end of the run."""

    def __init__(self, admin: str) -> None:
        self.admin = admin
        self.names: list[str] = []

    def create(self, migrated: bool = True) -> str:
        name = f"tilecast_test_{uuid.uuid4().hex[:12]}"
        asyncio.run(_create_database(self.admin, name))
        self.names.append(name)
        url = _with_database(self.admin, name)
        if migrated:
            upgrade(url)
        return url

    def drop_all(self) -> None:
        for name in self.names:
            asyncio.run(_drop_database(self.admin, name))


@pytest.fixture(scope="session")
def fresh_databases(admin_url: str) -> Iterator[FreshDatabases]:
    databases = FreshDatabases(admin_url)
    yield databases
    databases.drop_all()


@pytest.fixture(scope="session")
def database_url(fresh_databases: FreshDatabases) -> str:
    """The migrated database shared by the transactional tests."""
    return fresh_databases.create()


@pytest.fixture(scope="session")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url, get_settings())
    yield engine
    await engine.dispose()


@pytest.fixture(scope="session")
def app(engine: AsyncEngine) -> FastAPI:
    application = create_app()
    application.state.engine = engine
    return application


@pytest.fixture
async def db(engine: AsyncEngine, app: FastAPI) -> AsyncIterator[AsyncSession]:
    """A session inside the test's transaction; the app's request sessions join the same transaction."""
    async with engine.connect() as conn:
        trans = await conn.begin()
        maker = async_sessionmaker(
            bind=conn, expire_on_commit=False, autoflush=False, join_transaction_mode="create_savepoint"
        )
        app.state.sessionmaker = maker
        # Views noted by an earlier test (and rolled back with it) are not this test's to write.
        app.state.views = ViewRecorder(lambda: app.state.sessionmaker)
        async with maker() as session:
            yield session
        await trans.rollback()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "both_backends: run the module's tests on each events backend, PostgreSQL and ClickHouse (chdb), "
        "through the `client` fixture",
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Tests marked `both_backends` run once per events backend: the same test, the same assertions."""
    if (
        not metafunc.definition.get_closest_marker("both_backends")
        or "events_backend" not in metafunc.fixturenames
    ):
        return
    chosen = any(
        mark.args[:1] == ("events_backend",) for mark in metafunc.definition.iter_markers("parametrize")
    )
    if not chosen:  # a test may run on one backend only, naming it
        metafunc.parametrize("events_backend", EVENTS_BACKENDS, indirect=True)


@pytest.fixture
def events_backend(request: pytest.FixtureRequest) -> str:
    """Where the test's events live and its queries compute: `postgres` unless the test is parametrized."""
    backend: str = getattr(request, "param", "postgres")
    return backend


@pytest.fixture(scope="session")
async def shared_events_store(chdb_path: Path) -> AsyncIterator[ChdbClient]:
    """One migrated chdb database for every `both_backends` test of the run (migrating one takes a second):
    their teams are all distinct (ids are never reused), and every query is scoped to its team."""
    store = await open_database(chdb_path)
    try:
        yield store
    finally:
        await drop_database(store)


@pytest.fixture(scope="session")
async def shared_server_store() -> AsyncIterator[ServerClient]:
    """As `shared_events_store`, a database on the server at TILECAST_CLICKHOUSE_URL."""
    assert SERVER_URL
    parts = urlsplit(SERVER_URL)
    store = ServerClient(urlunsplit(parts._replace(path=f"/tilecast_test_{uuid.uuid4().hex[:12]}")))
    await migrate(store)
    try:
        yield store
    finally:
        await drop_database(store)


@pytest.fixture
def events_store(events_backend: str, request: pytest.FixtureRequest) -> ClickHouse | None:
    """The ClickHouse store of a test on ClickHouse (chdb, or the server); None on PostgreSQL."""
    if events_backend == "postgres":
        return None
    shared = "shared_server_store" if events_backend == "clickhouse-server" else "shared_events_store"
    store: ClickHouse = request.getfixturevalue(shared)
    return store


@pytest.fixture
async def client(
    app: FastAPI, db: AsyncSession, events_store: ClickHouse | None, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[httpx.AsyncClient]:
    """Requests to the app, in the test's transaction; on the ClickHouse backend, to an app whose events are
    captured into and computed from `events_store`."""
    target = app if events_store is None else clickhouse_app_on(app, events_store, monkeypatch)
    transport = httpx.ASGITransport(app=target)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http
    if events_store is not None:
        monkeypatch.undo()
        get_settings.cache_clear()


@pytest.fixture
async def actor(db: AsyncSession) -> Actor:
    """An organization owner with a `*` key on a fresh team."""
    return await make_actor(db)


@pytest.fixture
async def other_actor(db: AsyncSession) -> Actor:
    """Someone in another organization and team."""
    return await make_actor(db)


@pytest.fixture
def configured(
    app: FastAPI, db: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., Any]]:
    """`async with configured(TILECAST_X="1") as client:` a client of an app built under those settings,
    sharing the test's transaction."""

    @asynccontextmanager
    async def client_for(**env: str) -> AsyncIterator[httpx.AsyncClient]:
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        get_settings.cache_clear()
        other = create_app()
        other.state.engine = app.state.engine
        other.state.sessionmaker = app.state.sessionmaker
        transport = httpx.ASGITransport(app=other)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            yield c

    yield client_for
    monkeypatch.undo()
    get_settings.cache_clear()


@pytest.fixture
def slow(monkeypatch: pytest.MonkeyPatch) -> SlowQueries:
    """Latency injected into the tiles' query path: `slow.delays["event"] = seconds` (or `slow.default`) makes
    each computation of that event's query first run `pg_sleep` on its own connection."""
    return SlowQueries(monkeypatch)
