"""The connections SQL insights run on: per team, logged in as the team's own role (`app.sql_sandbox.roles`),
opened on first use, under one cap for every team of the worker (`TILECAST_SQL_MAX_CONNECTIONS`): when a
team needs a connection and the cap is reached, an idle connection of the least recently used team is closed
first; with none idle, the query waits for one (up to its timeout). A team uses at most
`TILECAST_SQL_TEAM_CONNECTIONS` at once, which is also its role's CONNECTION LIMIT across every worker and
host. Idle connections close after `IDLE_SECONDS`, so other workers may use the team's slots.

Each query runs as one prepared statement (the extended protocol: one statement, never a `;` list) in a READ
ONLY transaction with `SET LOCAL statement_timeout`, fetches at most `max_rows + 1` rows (a portal's first
batch), and is always rolled back; the connection is then reset (session settings, open cursors and advisory
locks a query took, released) before the next query of the team uses it.

Round trips are what a short query pays for, so a query costs four on a warm connection: the transaction's
start with its settings (one simple-protocol message), the statement's preparation (to check that it is a
query before it runs), the bind with the first batch, and the rollback with the reset.
"""

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.config import Settings
from app.query.base import QueryError, QueryTimeout, SandboxBusy, SandboxUnavailable
from app.sql_sandbox import roles

log = logging.getLogger("tilecast.sql_sandbox")

IDLE_SECONDS = 30.0
CONNECT_TIMEOUT_S = 10.0
# The client's own bound past the statement timeout, for a server that stopped answering.
CLIENT_MARGIN_S = 5.0
NOT_A_QUERY = "Only a SELECT statement can run here."
TIMEOUT_MESSAGE = (
    "Query has hit the max execution time before completing. See our docs for how to improve your query "
    "performance. You may need to materialize."
)


@dataclass
class SandboxResult:
    columns: list[str]
    # PostgreSQL's name of each column's type (`int4`, `text`, `timestamptz`, `jsonb`, `numeric`, ...).
    types: list[str]
    # asyncpg's values: jsonb as its JSON text, numeric as Decimal, timestamptz as aware datetimes.
    rows: list[tuple[Any, ...]]
    # More than `max_rows` rows existed.
    has_more: bool


@dataclass
class _TeamPool:
    idle: list[tuple[asyncpg.Connection, float]] = field(default_factory=list)
    busy: int = 0


@dataclass(frozen=True)
class _Facts:
    dsn: str
    database: str
    secret: str
    server_version: int


class Sandbox:
    """The worker's sandbox connections (see the module's docstring); on `app.state.sandbox`."""

    def __init__(self, engine: Callable[[], AsyncEngine], settings: Settings) -> None:
        # A getter: tests swap the app's engine.
        self._engine = engine
        self._settings = settings
        self.max_connections = settings.sql_max_connections
        self.team_connections = min(settings.sql_team_connections, settings.sql_max_connections)
        self._pools: OrderedDict[int, _TeamPool] = OrderedDict()  # least recently used first
        self._open = 0
        self._changed = asyncio.Condition()
        self._facts: _Facts | None = None
        self._facts_lock = asyncio.Lock()
        self._closed = False

    @property
    def open_connections(self) -> int:
        return self._open

    def team_pool_sizes(self) -> dict[int, int]:
        """Open connections per team, least recently used team first."""
        return {team: len(pool.idle) + pool.busy for team, pool in self._pools.items()}

    async def _get_facts(self) -> _Facts:
        if self._facts is None:
            async with self._facts_lock:
                if self._facts is None:
                    engine = self._engine()
                    async with engine.begin() as conn:
                        database, version = (
                            await conn.execute(
                                text("SELECT current_database(), current_setting('server_version_num')::int")
                            )
                        ).one()
                        secret = await conn.run_sync(roles.secret_value, self._settings)
                    dsn = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
                    self._facts = _Facts(dsn, str(database), secret, int(version))
        return self._facts

    async def server_version(self) -> int:
        """PostgreSQL's `server_version_num` (160000 for 16.0): what SQL the compiler may use."""
        return (await self._get_facts()).server_version

    async def ensure_team(self, team_id: int) -> None:
        """Set the team's role up now (a team made before `tilecast migrate`, or where creating it failed);
        `SandboxUnavailable` naming the missing setup where the database user may not."""
        try:
            async with self._engine().begin() as conn:
                # Never wait long behind a transaction that is creating the same team (and its role).
                await conn.execute(text(f"SET LOCAL lock_timeout = {int(CONNECT_TIMEOUT_S * 1000)}"))
                facts = await conn.run_sync(roles.privileges)
                if facts.missing is not None:
                    raise SandboxUnavailable(f"SQL insights are not set up on this server: {facts.missing}.")
                secret = await conn.run_sync(roles.secret_value, self._settings)
                await conn.run_sync(roles.setup_team, team_id, self._settings, secret, facts)
        except SandboxUnavailable:
            raise
        except Exception as exc:
            log.exception("SQL insights: the role of team %d could not be set up", team_id)
            raise SandboxUnavailable(
                "SQL insights are not set up for this project and setting them up failed; run `tilecast "
                "migrate` (its log says why)."
            ) from exc

    async def _connect(self, team_id: int) -> asyncpg.Connection:
        facts = await self._get_facts()
        role = roles.role_name(facts.database, team_id)
        for attempt in (1, 2):
            try:
                connection: asyncpg.Connection = await asyncpg.connect(
                    facts.dsn,
                    user=role,
                    password=roles.role_password(facts.secret, role),
                    timeout=CONNECT_TIMEOUT_S,
                    server_settings={"application_name": "tilecast-sql"},
                )
                if await connection.fetchval(roles.OVERPRIVILEGED_SELF):
                    connection.terminate()
                    raise SandboxUnavailable(
                        f"The project's role {role} was given more than its own views (a membership of "
                        "another role, or a role attribute); run `tilecast migrate`, which takes memberships "
                        "back."
                    )
                return connection
            except asyncpg.TooManyConnectionsError as exc:
                raise SandboxBusy(
                    "Too many SQL queries of this project are running at once; retry in a moment."
                ) from exc
            except (asyncpg.InvalidAuthorizationSpecificationError, asyncpg.InvalidPasswordError) as exc:
                if attempt == 2:
                    raise SandboxUnavailable(
                        f"SQL insights cannot log in as the project's role {role}: {exc}. Run `tilecast "
                        "migrate`; the server must accept password logins of that role (pg_hba.conf)."
                    ) from exc
                await self.ensure_team(team_id)
        raise AssertionError("unreachable")

    def _drop_if_empty(self, team_id: int) -> None:
        pool = self._pools.get(team_id)
        if pool is not None and not pool.idle and not pool.busy:
            del self._pools[team_id]

    def _expire_idle(self, before: float) -> None:
        """Close the connections idle since before `before`."""
        for team_id, pool in list(self._pools.items()):
            for connection, since in [entry for entry in pool.idle if entry[1] < before]:
                pool.idle.remove((connection, since))
                connection.terminate()
                self._open -= 1
            self._drop_if_empty(team_id)

    def _close_least_recently_used(self, exclude: int) -> bool:
        """Close one idle connection of the least recently used team that has one (not `exclude`)."""
        for team_id, pool in self._pools.items():
            if team_id != exclude and pool.idle:
                pool.idle.pop(0)[0].terminate()
                self._open -= 1
                self._drop_if_empty(team_id)
                return True
        return False

    async def _acquire(self, team_id: int, deadline: float) -> asyncpg.Connection:
        async with self._changed:
            self._expire_idle(time.monotonic() - IDLE_SECONDS)
            while True:
                if self._closed:
                    self._drop_if_empty(team_id)
                    raise SandboxUnavailable("The server is shutting down.")
                pool = self._pools.setdefault(team_id, _TeamPool())
                self._pools.move_to_end(team_id)
                if pool.idle:
                    pool.busy += 1
                    return pool.idle.pop()[0]
                if pool.busy < self.team_connections and (
                    self._open < self.max_connections or self._close_least_recently_used(team_id)
                ):
                    pool.busy += 1
                    self._open += 1
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    self._drop_if_empty(team_id)
                    raise SandboxBusy(
                        "Too many SQL queries are running at once; retry in a moment.",
                    )
                try:
                    await asyncio.wait_for(self._changed.wait(), remaining)
                except TimeoutError:
                    pass
        try:
            return await self._connect(team_id)
        except BaseException:
            await self._release(team_id, None)
            raise

    async def _release(self, team_id: int, connection: asyncpg.Connection | None) -> None:
        """Give a connection back (None: it is gone), reset for the team's next query."""
        if connection is not None:
            try:
                await asyncio.wait_for(connection.execute(_END), CONNECT_TIMEOUT_S)
            except Exception:
                connection.terminate()
                connection = None
        async with self._changed:
            pool = self._pools.setdefault(team_id, _TeamPool())
            pool.busy -= 1
            if connection is not None and not self._closed and not connection.is_closed():
                pool.idle.append((connection, time.monotonic()))
            else:
                if connection is not None:
                    connection.terminate()
                self._open -= 1
                self._drop_if_empty(team_id)
            self._changed.notify_all()

    async def run(
        self, team_id: int, sql: str, params: Sequence[Any], *, timeout_ms: int, max_rows: int
    ) -> SandboxResult:
        if max_rows < 0 or timeout_ms < 1:
            raise ValueError("max_rows must be >= 0 and timeout_ms >= 1")
        deadline = time.monotonic() + timeout_ms / 1000
        connection = await self._acquire(team_id, deadline)
        try:
            result = await asyncio.wait_for(
                _execute(connection, sql, params, timeout_ms, max_rows),
                timeout_ms / 1000 + CLIENT_MARGIN_S,
            )
        except TimeoutError:
            connection.terminate()
            await self._release(team_id, None)
            raise QueryTimeout(TIMEOUT_MESSAGE) from None
        except BaseException:
            await self._release(team_id, connection)
            raise
        await self._release(team_id, connection)
        return result

    async def expire_idle_connections(self) -> None:
        """Close connections idle for `IDLE_SECONDS`, forever (a task of the worker's lifespan)."""
        while True:
            await asyncio.sleep(IDLE_SECONDS / 3)
            async with self._changed:
                self._expire_idle(time.monotonic() - IDLE_SECONDS)

    async def close(self) -> None:
        """Close every idle connection; connections in use close when their query ends."""
        async with self._changed:
            self._closed = True
            for pool in self._pools.values():
                for connection, _ in pool.idle:
                    await connection.close(timeout=CONNECT_TIMEOUT_S)
                    self._open -= 1
                pool.idle = []
            self._changed.notify_all()


# The rollback and what `asyncpg.Connection.reset` runs, in one round trip. Nothing a query can do survives
# it: its transaction (and with it `SET LOCAL`), session settings, cursors and advisory locks.
_END = "ROLLBACK; SELECT pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL;"


def _begin(timeout_ms: int) -> str:
    return f"BEGIN READ ONLY; SET LOCAL statement_timeout = {int(timeout_ms)}"


async def _execute(
    connection: asyncpg.Connection, sql: str, params: Sequence[Any], timeout_ms: int, max_rows: int
) -> SandboxResult:
    try:
        await connection.execute(_begin(timeout_ms))
        statement = await connection.prepare(sql)
        attributes = statement.get_attributes()
        if not attributes:
            # Parsed, never run: SET, RESET, COPY, DDL and other statements without result columns.
            raise QueryError(NOT_A_QUERY)
        records = []
        # One round trip: the portal's bind and its first `max_rows + 1` rows; the rest is never read.
        async for record in statement.cursor(*params, prefetch=max_rows + 1):
            records.append(record)
            if len(records) > max_rows:
                break
    except asyncpg.QueryCanceledError as exc:
        raise QueryTimeout(TIMEOUT_MESSAGE) from exc
    except asyncpg.PostgresError as exc:
        raise QueryError(_message(exc)) from exc
    except (asyncpg.InterfaceError, asyncpg.exceptions.DataError) as exc:
        raise QueryError(str(exc)) from exc
    rows = [tuple(record) for record in records[:max_rows]]
    return SandboxResult(
        columns=[attribute.name for attribute in attributes],
        types=[attribute.type.name for attribute in attributes],
        rows=rows,
        has_more=len(records) > max_rows,
    )


def _message(exc: asyncpg.PostgresError) -> str:
    """PostgreSQL's own message (and its detail or hint when it gives one)."""
    message = str(exc.args[0]) if exc.args else type(exc).__name__
    detail = getattr(exc, "detail", None)
    hint = getattr(exc, "hint", None)
    return " ".join(part for part in (message, detail, hint) if part)
