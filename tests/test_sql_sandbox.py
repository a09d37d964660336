"""SQL insights' second layer: raw SQL sent straight to a team's sandbox (`app.sql_sandbox.run_sql`), the
HogQL compiler bypassed, reads nothing but that team's rows, writes nothing and runs bounded.

The data is committed (the sandbox logs in on connections of its own, as each team's role), in a database
set up as `tilecast migrate` sets it up. Catalogs every PostgreSQL role may read (`pg_class`, ...) stay
readable: they hold names, never Tilecast's rows.
"""

import asyncio
import base64
import hashlib
import hmac
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.accounts import get_or_create_team, get_or_create_user
from app.config import get_settings
from app.db import async_url, create_engine, create_sessionmaker
from app.main import create_app
from app.migrations import downgrade, setup_sql_sandbox, upgrade
from app.query.base import QueryError, QueryTimeout, SandboxBusy, SandboxUnavailable
from app.sql_sandbox import Sandbox, SandboxResult, pools, run_sql
from app.sql_sandbox.pools import NOT_A_QUERY, TIMEOUT_MESSAGE
from app.sql_sandbox.roles import create_views, reader_name, role_name
from tests.conftest import FreshDatabases
from tests.events import event, ingest
from tests.factories import Actor
from tests.streams import asgi_client, new_actor

T = "2026-01-05T10:00:00+00:00"


def plain(url: str) -> str:
    return async_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@dataclass
class World:
    url: str
    app: FastAPI
    engine: AsyncEngine
    ours: Actor
    theirs: Actor

    async def sql(
        self,
        query: str,
        params: Sequence[Any] = (),
        *,
        team: Actor | None = None,
        timeout_ms: int = 5000,
        max_rows: int = 100,
    ) -> SandboxResult:
        team_id = (team or self.ours).team.id
        return await run_sql(self.app.state, team_id, query, params, timeout_ms=timeout_ms, max_rows=max_rows)

    async def refused(self, query: str, **kwargs: Any) -> str:
        """The message of the `QueryError` (exactly that class) the query is refused with."""
        with pytest.raises(QueryError) as raised:
            await self.sql(query, **kwargs)
        assert type(raised.value) is QueryError
        return raised.value.message

    async def admin(self, query: str) -> Any:
        """The query run (and committed) as Tilecast's own database user."""
        async with self.engine.begin() as conn:
            result = await conn.execute(text(query))
            return result.all() if result.returns_rows else None


@pytest.fixture(scope="module")
def sandbox_url(fresh_databases: FreshDatabases) -> str:
    url = fresh_databases.create()
    assert setup_sql_sandbox(url) is None  # as `tilecast migrate` runs it
    return url


@pytest.fixture(scope="module")
async def world(sandbox_url: str) -> AsyncIterator[World]:
    app = create_app()
    engine = create_engine(sandbox_url, get_settings())
    app.state.engine = engine
    app.state.sessionmaker = create_sessionmaker(engine)
    ours, theirs = await new_actor(engine), await new_actor(engine)
    async with asgi_client(app) as client:
        await ingest(
            client,
            ours,
            [
                event("$pageview", "u1", T, {"x": "1", "$set": {"email": "u1@ours.example"}}),
                event("$pageview", "u2", T, {"x": "2"}),
                event("signup", "u1", T, {"x": "3"}),
            ],
        )
        await ingest(
            client,
            theirs,
            [
                event("$pageview", "v1", T, {"x": "abc", "$set": {"email": "v1@theirs.example"}}),
                event("$pageview", "v2", T, {"x": "def"}),
            ],
        )
    yield World(sandbox_url, app, engine, ours, theirs)
    await app.state.sandbox.close()
    await engine.dispose()


async def test_a_team_reads_its_own_rows_with_columns_types_and_parameters(world: World) -> None:
    result = await world.sql(
        "SELECT event, properties->>'x' AS x, timestamp FROM events WHERE event = $1 ORDER BY x",
        ["$pageview"],
    )
    assert result.columns == ["event", "x", "timestamp"]
    assert result.types == ["varchar", "text", "timestamptz"]
    assert [row[:2] for row in result.rows] == [("$pageview", "1"), ("$pageview", "2")]
    assert result.has_more is False
    persons = await world.sql("SELECT distinct_id, properties->>'email' FROM person ORDER BY 1")
    assert persons.rows == [("u1", "u1@ours.example")]
    theirs = await world.sql("SELECT count(*), min(properties->>'x') FROM events", team=world.theirs)
    assert theirs.rows == [(2, "abc")]
    who = await world.sql("SELECT current_user::text, current_setting('search_path')")
    database = make_url(world.url).database
    assert database is not None
    assert who.rows == [(role_name(database, world.ours.team.id), f"tilecast_team_{world.ours.team.id}")]


async def test_rows_stop_at_the_cap_and_say_there_were_more(world: World) -> None:
    started = time.monotonic()
    # A set-returning function in the select list yields rows as they are fetched (one in FROM makes all of
    # them first: bounded by the timeout, below).
    result = await world.sql("SELECT generate_series(1, 10000000000) AS n", max_rows=5)
    assert result.rows == [(1,), (2,), (3,), (4,), (5,)]
    assert result.has_more is True
    assert time.monotonic() - started < 3
    exact = await world.sql("SELECT n FROM generate_series(1, 3) AS n", max_rows=3)
    assert (exact.rows, exact.has_more) == ([(1,), (2,), (3,)], False)


@pytest.mark.parametrize(
    "table",
    [
        "public.events",
        "public.person",
        "public.personal_api_key",
        "public.app_user",
        "public.team",
        "public.app_secret",
        "public.sharing_configuration",
        '"public"."events"',
        "PUBLIC.EVENTS",
        "public . events",
    ],
)
async def test_base_tables_are_refused(world: World, table: str) -> None:
    message = await world.refused(f"SELECT count(*) FROM {table}")
    assert message == "permission denied for schema public"


async def test_the_team_role_holds_no_privilege_but_select_on_its_views(world: World) -> None:
    result = await world.sql(
        "SELECT has_table_privilege('events', 'SELECT'), has_table_privilege('events', 'INSERT'), "
        "has_table_privilege('person', 'UPDATE'), has_schema_privilege('public', 'USAGE'), "
        "has_schema_privilege('pg_catalog', 'CREATE'), "
        "(SELECT count(*) FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.member "
        "WHERE r.rolname = current_user)"
    )
    assert result.rows == [(True, False, False, False, False, 0)]


async def test_other_teams_views_are_refused(world: World) -> None:
    schema = f"tilecast_team_{world.theirs.team.id}"
    for query in (
        f"SELECT count(*) FROM {schema}.events",
        f"SELECT count(*) FROM {schema}.person",
        f'SELECT count(*) FROM "{schema}"."events"',
        f"SELECT count(*) FROM events UNION ALL SELECT count(*) FROM {schema}.events",
        f"WITH t AS (SELECT * FROM {schema}.events) SELECT count(*) FROM t",
        f"SELECT count(*) FROM events e JOIN {schema}.events o ON o.uuid = e.uuid",
    ):
        assert await world.refused(query) == f"permission denied for schema {schema}"


async def test_changing_the_search_path_reaches_nothing_else(world: World) -> None:
    theirs = f"tilecast_team_{world.theirs.team.id}"
    # In the same statement (names are resolved before it runs) and for the next ones (rolled back).
    same = await world.sql(
        f"SELECT set_config('search_path', '{theirs}, public', false), count(*) FROM events"
    )
    assert same.rows == [(f"{theirs}, public", 3)]
    after = await world.sql("SELECT count(*), current_setting('search_path') FROM events")
    assert after.rows == [(3, f"tilecast_team_{world.ours.team.id}")]
    assert await world.refused(
        f"SELECT set_config('search_path', '{theirs}', true), (SELECT count(*) FROM {theirs}.events)"
    ) == (f"permission denied for schema {theirs}")


async def test_switching_roles_is_refused(world: World) -> None:
    assert await world.refused("SELECT set_config('role', 'postgres', false)") == (
        'permission denied to set role "postgres"'
    )
    other = role_name(make_url(world.url).database or "", world.theirs.team.id)
    assert await world.refused(f"SELECT set_config('role', '{other}', true)") == (
        f'permission denied to set role "{other}"'
    )
    assert await world.refused("SELECT set_config('session_authorization', 'postgres', false)") == (
        'permission denied to set session authorization "postgres"'
    )
    # Statements without result columns never run: SET ROLE, RESET ROLE, SET SESSION AUTHORIZATION.
    for statement in ("SET ROLE postgres", "reset role", "Set Session Authorization postgres"):
        assert await world.refused(statement) == NOT_A_QUERY
    database = make_url(world.url).database or ""
    assert (await world.sql("SELECT current_user::text")).rows == [(role_name(database, world.ours.team.id),)]


async def test_writes_are_refused(world: World) -> None:
    for query, message in (
        (
            "INSERT INTO events (team_id, uuid, event, distinct_id, timestamp) "
            "VALUES (1, gen_random_uuid(), 'e', 'd', now()) RETURNING 1",
            "permission denied for view events",
        ),
        ("UPDATE events SET event = 'x' RETURNING 1", "permission denied for view events"),
        ("DELETE FROM person RETURNING 1", "permission denied for view person"),
        (
            "WITH d AS (DELETE FROM events RETURNING 1) SELECT count(*) FROM d",
            "permission denied for view events",
        ),
        (
            "INSERT INTO public.app_secret (name, value) VALUES ('x', 'y') RETURNING 1",
            "permission denied for schema public",
        ),
        ("SELECT * FROM events FOR UPDATE", "permission denied for view events"),
        (
            "SELECT set_config('transaction_read_only', 'off', true)",
            "transaction read-write mode must be set before any query",
        ),
        ("CREATE TABLE stolen (a int)", NOT_A_QUERY),
        ("CREATE TEMP TABLE stolen AS SELECT * FROM events", NOT_A_QUERY),
        ("COPY events TO STDOUT", NOT_A_QUERY),
        ("COPY (SELECT 1) TO '/tmp/stolen'", NOT_A_QUERY),
        ("DROP VIEW events", NOT_A_QUERY),
        ("GRANT SELECT ON events TO PUBLIC", NOT_A_QUERY),
    ):
        assert await world.refused(query) == message, query
    assert await world.admin("SELECT count(*) FROM events") == [(5,)]
    assert await world.admin("SELECT count(*) FROM app_secret WHERE name = 'x'") == [(0,)]


async def test_slow_and_endless_queries_stop_at_the_timeout(world: World) -> None:
    for query in (
        "SELECT pg_sleep(60)",
        "SELECT n FROM generate_series(1, 10000000000) AS n",
        "SELECT n FROM generate_series(1, 10000000000) AS n ORDER BY n DESC",
        "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT count(*) FROM r",
        "SELECT count(*) FROM events, generate_series(1, 1000000000)",
    ):
        started = time.monotonic()
        with pytest.raises(QueryTimeout) as raised:
            await world.sql(query, timeout_ms=500)
        assert raised.value.message == TIMEOUT_MESSAGE
        assert time.monotonic() - started < 3, query
    # The team's connection is fine afterwards.
    assert (await world.sql("SELECT count(*) FROM events")).rows == [(3,)]


async def test_server_functions_are_refused(world: World) -> None:
    for function in ("pg_read_file('/etc/passwd')", "pg_ls_dir('.')", "pg_read_binary_file('/etc/passwd')"):
        name = function.split("(")[0]
        assert await world.refused(f"SELECT {function}") == f"permission denied for function {name}"
    assert (
        await world.refused("SELECT lo_import('/etc/passwd')") == "permission denied for function lo_import"
    )
    assert await world.refused("SELECT dblink('dbname=postgres', 'SELECT 1')") == (
        "function dblink(unknown, unknown) does not exist No function matches the given name and argument "
        "types. You might need to add explicit type casts."
    )
    assert await world.refused("CREATE EXTENSION dblink") == NOT_A_QUERY


async def test_several_statements_are_refused(world: World) -> None:
    for query in (
        "SELECT 1; SELECT 2",
        "SELECT 1; DROP TABLE events",
        "SELECT count(*) FROM events;/* */SET ROLE postgres",
        "SELECT 1 --\n; SELECT * FROM public.events",
    ):
        assert await world.refused(query) == "cannot insert multiple commands into a prepared statement"
    assert (await world.sql("SELECT 1;")).rows == [(1,)]


async def test_predicates_never_run_on_other_teams_rows(world: World) -> None:
    # Their `x` is not a number: the same filter over the whole table fails...
    with pytest.raises(Exception, match='invalid input syntax for type integer: "abc"'):
        await world.admin("SELECT count(*) FROM public.events WHERE (properties->>'x')::int > 0")
    # ...while the team's policy keeps it off their rows.
    result = await world.sql("SELECT count(*) FROM events WHERE (properties->>'x')::int > 0")
    assert result.rows == [(3,)]
    joined = await world.sql(
        "SELECT count(*) FROM events e JOIN person p ON p.distinct_id = e.distinct_id "
        "WHERE (e.properties->>'x')::int >= 1 AND p.properties->>'email' LIKE '%'"
    )
    assert joined.rows == [(2,)]


async def test_errors_in_the_sql_are_query_errors_with_postgresql_messages(world: World) -> None:
    assert await world.refused("SELECT 1 / 0") == "division by zero"
    assert await world.refused("SELECT 'abc'::int") == 'invalid input syntax for type integer: "abc"'
    assert await world.refused("SELECT nope FROM events") == 'column "nope" does not exist'
    assert await world.refused("SELEC 1") == 'syntax error at or near "SELEC"'


async def test_catalogs_are_readable_but_hold_no_rows_of_the_tables(world: World) -> None:
    await world.admin("ANALYZE public.events")
    result = await world.sql(
        "SELECT (SELECT count(*) FROM pg_class WHERE relname = 'events' "
        "AND relnamespace = 'public'::regnamespace), "
        "(SELECT count(*) FROM pg_stats WHERE schemaname = 'public'), "
        "(SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%app_secret%' AND usename = 'postgres')"
    )
    # Names are visible; the statistics (most common values of the events) are not; nor others' queries.
    assert result.rows == [(1, 0, 0)]


async def test_a_pooled_connection_follows_views_that_changed_shape(world: World) -> None:
    """Connections stay open between queries; `tilecast migrate` may replace the views meanwhile."""
    team_id = world.ours.team.id
    schema = f"tilecast_team_{team_id}"
    query = "SELECT * FROM events ORDER BY uuid LIMIT 1"
    before = await world.sql(query)
    assert "extra" not in before.columns
    await world.admin(
        f"CREATE OR REPLACE VIEW {schema}.events AS "
        f"SELECT *, 42 AS extra FROM public.events WHERE team_id = {team_id}"
    )
    try:
        after = await world.sql(query)
        assert after.columns == [*before.columns, "extra"]
        assert after.rows[0][-1] == 42
    finally:
        # As `tilecast migrate` makes them.
        async with world.engine.begin() as conn:
            database = _database(world)
            await conn.run_sync(create_views, team_id, role_name(database, team_id), database)
    assert (await world.sql(query)).columns == before.columns


def _database(world: World) -> str:
    database = make_url(world.url).database
    assert database is not None
    return database


async def test_advisory_locks_a_query_takes_are_released(world: World) -> None:
    await world.sql("SELECT pg_advisory_lock(424242)")
    assert await world.admin("SELECT pg_try_advisory_lock(424242), pg_advisory_unlock(424242)") == [
        (True, True)
    ]


async def test_least_recently_used_teams_lose_their_connections_first(world: World) -> None:
    third = await new_actor(world.engine)
    sandbox = Sandbox(lambda: world.engine, get_settings().model_copy(update={"sql_max_connections": 2}))
    try:
        for team in (world.ours, world.theirs, world.ours):
            await run_sql(sandbox, team.team.id, "SELECT 1", [], timeout_ms=5000, max_rows=1)
        assert sandbox.team_pool_sizes() == {world.theirs.team.id: 1, world.ours.team.id: 1}
        result = await run_sql(
            sandbox, third.team.id, "SELECT count(*) FROM events", [], timeout_ms=5000, max_rows=1
        )
        assert result.rows == [(0,)]
        assert sandbox.team_pool_sizes() == {world.ours.team.id: 1, third.team.id: 1}
        assert sandbox.open_connections == 2
    finally:
        await sandbox.close()


async def test_a_team_past_its_connections_waits_then_is_told_to_retry(world: World) -> None:
    settings = get_settings().model_copy(update={"sql_team_connections": 1})
    sandbox = Sandbox(lambda: world.engine, settings)
    try:
        slow = asyncio.create_task(
            run_sql(sandbox, world.ours.team.id, "SELECT pg_sleep(2)", [], timeout_ms=5000, max_rows=1)
        )
        for _ in range(1000):  # until the slow query holds the team's one connection
            if sandbox.team_pool_sizes().get(world.ours.team.id) == 1:
                break
            await asyncio.sleep(0.01)
        with pytest.raises(SandboxBusy) as raised:
            await run_sql(sandbox, world.ours.team.id, "SELECT 1", [], timeout_ms=300, max_rows=1)
        assert raised.value.message == "Too many SQL queries are running at once; retry in a moment."
        # Another team is not held up.
        other = await run_sql(sandbox, world.theirs.team.id, "SELECT 2", [], timeout_ms=5000, max_rows=1)
        assert other.rows == [(2,)]
        assert (await slow).rows == [(None,)]
        waited = await run_sql(sandbox, world.ours.team.id, "SELECT 3", [], timeout_ms=5000, max_rows=1)
        assert waited.rows == [(3,)]
    finally:
        await sandbox.close()


async def test_migrate_sets_up_teams_made_before_and_only_once(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    async with world.engine.begin() as conn:
        team_id = int(
            (
                await conn.execute(
                    text(
                        "INSERT INTO team (uuid, organization_id, name, timezone, api_token) SELECT "
                        "gen_random_uuid(), organization_id, 'old', 'UTC', :token FROM team WHERE id = :team "
                        "RETURNING id"
                    ),
                    {"token": f"phc_{uuid.uuid4().hex}", "team": world.ours.team.id},
                )
            ).scalar_one()
        )
    database = make_url(world.url).database or ""
    assert await world.admin(
        f"SELECT count(*) FROM pg_roles WHERE rolname = '{role_name(database, team_id)}'"
    ) == [(0,)]
    with caplog.at_level(logging.INFO, logger="tilecast.sql_sandbox"):
        assert await asyncio.to_thread(setup_sql_sandbox, world.url) is None
        assert "SQL insights: set up the roles of 1 team" in caplog.messages
        caplog.clear()
        assert await asyncio.to_thread(setup_sql_sandbox, world.url) is None
        assert caplog.messages == []
    result = await run_sql(
        world.app.state, team_id, "SELECT count(*) FROM events", [], timeout_ms=5000, max_rows=1
    )
    assert result.rows == [(0,)]


async def test_a_team_without_its_role_gets_it_on_first_use(world: World) -> None:
    async with world.engine.begin() as conn:
        team_id = int(
            (
                await conn.execute(
                    text(
                        "INSERT INTO team (uuid, organization_id, name, timezone, api_token) SELECT "
                        "gen_random_uuid(), organization_id, 'old', 'UTC', :token FROM team WHERE id = :team "
                        "RETURNING id"
                    ),
                    {"token": f"phc_{uuid.uuid4().hex}", "team": world.ours.team.id},
                )
            ).scalar_one()
        )
    result = await run_sql(
        world.app.state, team_id, "SELECT count(*) FROM person", [], timeout_ms=5000, max_rows=1
    )
    assert result.rows == [(0,)]


@pytest.fixture
def another_url(fresh_databases: FreshDatabases) -> str:
    return fresh_databases.create()


async def test_migrations_keep_the_views_current(another_url: str) -> None:
    url = another_url
    app = create_app()
    engine = create_engine(url, get_settings())
    app.state.engine, app.state.sessionmaker = engine, create_sessionmaker(engine)
    try:
        actor = await new_actor(engine)
        async with asgi_client(app) as client:
            await ingest(client, actor, [event("$pageview", "u1", T, {"x": "1"})])
        await asyncio.to_thread(downgrade, url, "-1")
        await asyncio.to_thread(upgrade, url)
        result = await run_sql(
            app.state, actor.team.id, "SELECT count(*) FROM events", [], timeout_ms=5000, max_rows=1
        )
        assert result.rows == [(1,)]
    finally:
        await app.state.sandbox.close()
        await engine.dispose()


async def test_without_createrole_sql_insights_name_the_missing_setup_and_the_rest_works(
    admin_url: str,
) -> None:
    user = f"tilecast_nocr_{uuid.uuid4().hex[:8]}"
    database = f"tilecast_test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(plain(admin_url))
    await admin.execute(f"CREATE ROLE {user} LOGIN PASSWORD 'secret-{user}'")
    await admin.execute(f"CREATE DATABASE {database} OWNER {user}")
    url = make_url(admin_url).set(username=user, password=f"secret-{user}", database=database)
    url_text = url.render_as_string(hide_password=False)
    app = create_app()
    engine = create_engine(url_text, get_settings())
    app.state.engine, app.state.sessionmaker = engine, create_sessionmaker(engine)
    try:
        await asyncio.to_thread(upgrade, url_text)
        missing = (
            f'the database user "{user}" may not create roles: run `ALTER ROLE "{user}" CREATEROLE` as a '
            "superuser (or run `tilecast migrate` as a user that may), then `tilecast migrate`"
        )
        assert await asyncio.to_thread(setup_sql_sandbox, url_text) == missing
        actor = await new_actor(engine)  # teams are made all the same
        async with asgi_client(app) as client:
            await ingest(client, actor, [event("$pageview", "u1", T, {"x": "1"})])
            response = await client.get(actor.url("dashboards/"), headers=actor.headers)
            assert response.status_code == 200, response.text
        with pytest.raises(SandboxUnavailable) as raised:
            await run_sql(
                app.state, actor.team.id, "SELECT count(*) FROM events", [], timeout_ms=5000, max_rows=1
            )
        assert raised.value.message == f"SQL insights are not set up on this server: {missing}."
        # What docs/sql-insights.md tells an operator to run.
        await admin.execute(f"ALTER ROLE {user} CREATEROLE")
        assert await asyncio.to_thread(setup_sql_sandbox, url_text) is None
        result = await run_sql(
            app.state, actor.team.id, "SELECT count(*) FROM events", [], timeout_ms=5000, max_rows=1
        )
        assert result.rows == [(1,)]
    finally:
        await app.state.sandbox.close()
        await engine.dispose()
        await admin.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
        prefix = role_name(database, 0).removesuffix("0")
        for row in await admin.fetch("SELECT rolname FROM pg_roles WHERE starts_with(rolname, $1)", prefix):
            await admin.execute(f'DROP ROLE "{row["rolname"]}"')
        await admin.execute(f"DROP ROLE {user}")
        await admin.close()


async def test_the_views_are_of_one_team_and_read_through_its_policy(world: World) -> None:
    result = await world.sql(
        "SELECT c.relname::text, pg_get_viewdef(c.oid) FROM pg_class c "
        "WHERE c.relnamespace = current_schema()::regnamespace ORDER BY 1"
    )
    team = world.ours.team.id
    assert [name for name, _ in result.rows] == ["events", "person"]
    # PostgreSQL 15 names the columns with their table, newer versions do not.
    for name, definition in result.rows:
        assert re.search(rf"FROM public\.{name}\s+WHERE \(({name}\.)?team_id = {team}\);$", definition), (
            definition
        )
    database = _database(world)
    reader = reader_name(database)
    owners = await world.admin(
        f"SELECT DISTINCT pg_get_userbyid(c.relowner)::text FROM pg_class c "
        f"WHERE c.relnamespace = 'tilecast_team_{team}'::regnamespace"
    )
    assert owners == [(reader,)]
    # The reader logs in never, holds no attribute, is a member of nothing; the team role is not its member.
    assert await world.admin(
        "SELECT rolcanlogin OR rolsuper OR rolbypassrls OR rolcreaterole, "
        "EXISTS (SELECT FROM pg_auth_members m WHERE m.member = r.oid), "
        f"pg_has_role('{role_name(database, team)}', r.oid, 'MEMBER') "
        f"FROM pg_roles r WHERE rolname = '{reader}'"
    ) == [(False, False, False)]
    assert await world.admin(
        "SELECT c.relname::text, c.relrowsecurity, p.polpermissive, "
        "array(SELECT unnest(p.polroles)::regrole::text) "
        "FROM pg_class c JOIN pg_policy p ON p.polrelid = c.oid "
        "WHERE c.oid IN ('public.events'::regclass, 'public.person'::regclass) "
        "AND p.polname = 'tilecast_sql_team' ORDER BY 1"
    ) == [("events", True, False, [reader]), ("person", True, False, [reader])]


async def test_another_teams_view_granted_by_mistake_still_shows_only_the_team_s_rows(world: World) -> None:
    """The policy keys on the logged-in role, not on the view: a grant someone adds by mistake reveals
    nothing of the other team."""
    database = _database(world)
    ours, theirs = role_name(database, world.ours.team.id), world.theirs.team.id
    schema = f"tilecast_team_{theirs}"
    await world.admin(f'GRANT USAGE ON SCHEMA {schema} TO "{ours}"')
    await world.admin(f'GRANT SELECT ON {schema}.events TO "{ours}"')
    try:
        assert (await world.sql(f"SELECT count(*) FROM {schema}.events")).rows == [(0,)]
        assert (await world.sql(f"SELECT count(*) FROM {schema}.events", team=world.theirs)).rows == [(2,)]
    finally:
        await world.admin(f'REVOKE SELECT ON {schema}.events FROM "{ours}"')
        await world.admin(f'REVOKE USAGE ON SCHEMA {schema} FROM "{ours}"')


async def test_the_role_password_is_the_hmac_of_its_name_stored_as_scram(world: World) -> None:
    database = make_url(world.url).database or ""
    role = role_name(database, world.ours.team.id)
    stored = await world.admin(f"SELECT rolpassword FROM pg_authid WHERE rolname = '{role}'")
    secret = await world.admin("SELECT value FROM app_secret WHERE name = 'sql_sandbox'")
    method, rest = stored[0][0].split("$", 1)
    iterations_salt, keys = rest.split("$")
    iterations, salt = iterations_salt.split(":")
    stored_key, _ = keys.split(":")
    password = hmac.new(secret[0][0].encode(), role.encode(), hashlib.sha256).hexdigest()
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(salt), int(iterations))
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    assert (method, base64.b64encode(hashlib.sha256(client_key).digest()).decode()) == (
        "SCRAM-SHA-256",
        stored_key,
    )


async def test_migrate_takes_public_privileges_back_and_keeps_readers_reading(world: World) -> None:
    reader = f"tilecast_reader_{uuid.uuid4().hex[:8]}"
    database = make_url(world.url).database or ""
    team_role = role_name(database, world.ours.team.id)
    await world.admin(f"CREATE ROLE {reader}")
    try:
        await world.admin(f"GRANT SELECT ON public.events TO {reader}")
        await world.admin("GRANT SELECT ON public.team TO PUBLIC")
        await world.admin("GRANT USAGE ON SCHEMA public TO PUBLIC")
        assert await asyncio.to_thread(setup_sql_sandbox, world.url) is None
        checks = await world.admin(
            f"SELECT has_schema_privilege('{reader}', 'public', 'USAGE'), "
            f"has_table_privilege('{reader}', 'public.events', 'SELECT'), "
            f"has_schema_privilege('{team_role}', 'public', 'USAGE'), "
            f"has_table_privilege('{team_role}', 'public.team', 'SELECT')"
        )
        assert checks == [(True, True, False, False)]
    finally:
        await world.admin(f"REVOKE ALL ON SCHEMA public FROM {reader}")
        await world.admin(f"REVOKE ALL ON public.events FROM {reader}")
        await world.admin(f"DROP ROLE {reader}")


async def test_a_role_given_a_membership_is_refused_until_migrate_takes_it_back(world: World) -> None:
    team = await new_actor(world.engine)
    role = role_name(make_url(world.url).database or "", team.team.id)
    # pg_read_all_data may read every table: a team role must never reach it, not even by SET ROLE.
    await world.admin(f"GRANT pg_read_all_data TO {role}")
    with pytest.raises(SandboxUnavailable) as raised:
        await run_sql(world.app.state, team.team.id, "SELECT 1", [], timeout_ms=5000, max_rows=1)
    assert raised.value.message == (
        f"The project's role {role} was given more than its own views (a membership of another role, or a "
        "role attribute); run `tilecast migrate`, which takes memberships back."
    )
    assert await asyncio.to_thread(setup_sql_sandbox, world.url) is None
    result = await run_sql(
        world.app.state, team.team.id, "SELECT count(*) FROM events", [], timeout_ms=5000, max_rows=1
    )
    assert result.rows == [(0,)]
    with pytest.raises(QueryError) as refused:
        await run_sql(
            world.app.state,
            team.team.id,
            "SELECT set_config('role', 'pg_read_all_data', false)",
            [],
            timeout_ms=5000,
            max_rows=1,
        )
    assert refused.value.message == 'permission denied to set role "pg_read_all_data"'


async def test_notifications_a_query_sends_are_never_delivered(world: World) -> None:
    listener = await asyncpg.connect(plain(world.url))
    received: list[str] = []
    await listener.add_listener("tilecast_sandbox_probe", lambda *args: received.append(args[3]))
    try:
        result = await world.sql("SELECT pg_notify('tilecast_sandbox_probe', 'from a query')")
        assert result.rows == [(None,)]
        await listener.execute("SELECT pg_notify('tilecast_sandbox_probe', 'from the app')")
        for _ in range(200):
            if received:
                break
            await asyncio.sleep(0.01)
        # Every query's transaction is rolled back: its NOTIFY never leaves it.
        assert received == ["from the app"]
    finally:
        await listener.close()


async def test_a_team_still_being_created_is_refused_in_bounded_time(world: World) -> None:
    # Its role exists only in the transaction creating it: the sandbox cannot log in as it, and setting it
    # up anew waits for that transaction's lock at most the lock timeout, instead of forever.
    async with world.engine.connect() as conn:
        transaction = await conn.begin()
        session = AsyncSession(bind=conn, expire_on_commit=False)
        user = await get_or_create_user(session, f"pending-{uuid.uuid4().hex[:8]}@example.com")
        team = await get_or_create_team(session, user, "pending")
        started = time.monotonic()
        with pytest.raises(SandboxUnavailable) as raised:
            await run_sql(world.app.state, team.id, "SELECT 1", [], timeout_ms=5000, max_rows=1)
        assert raised.value.message == (
            "SQL insights are not set up for this project and setting them up failed; run `tilecast migrate` "
            "(its log says why)."
        )
        assert time.monotonic() - started < 15
        await transaction.rollback()


async def test_idle_connections_close_after_a_while(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pools, "IDLE_SECONDS", 0.3)
    sandbox = Sandbox(lambda: world.engine, get_settings())
    expiry = asyncio.create_task(sandbox.expire_idle_connections())
    try:
        await run_sql(sandbox, world.ours.team.id, "SELECT 1", [], timeout_ms=5000, max_rows=1)
        assert (sandbox.team_pool_sizes(), sandbox.open_connections) == ({world.ours.team.id: 1}, 1)
        await asyncio.sleep(0.8)
        assert (sandbox.team_pool_sizes(), sandbox.open_connections) == ({}, 0)
    finally:
        expiry.cancel()
        await sandbox.close()
