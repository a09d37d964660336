"""One ClickHouse user per team, for SQL insights on a ClickHouse server: the DDL, generated in one place.

The compiler already confines a query to its team (every `events` / `person` reference is filtered by the
team, table functions and `system.*` are refused), but on a server ClickHouse confines it too: HogQL queries
run as the team's own user, which

- reads `events` and `person` only (GRANT SELECT on those two tables, nothing else: no table functions,
  no `CREATE TEMPORARY TABLE`, no `REMOTE`, `URL`, `FILE`, `S3` sources, no `system` tables beyond what
  ClickHouse always lets a user read),
- sees its team's rows only: a ROW POLICY `team_id = N` on both tables for that user (ClickHouse then hides
  every other row from it, as PostgreSQL's row security does for the sandbox roles). Since a table with row
  policies hides its rows from users no policy names, Tilecast's own user gets a policy `USING 1`
  (`owner_statements`),
- runs under a SETTINGS PROFILE fixing `readonly = 1` and the per-query limits as `CONST` constraints, so a
  query's `SETTINGS` clause can neither lift nor change them.

Its password is derived as the PostgreSQL sandbox roles' are (`app.sql_sandbox.roles.role_password`: an HMAC
of the user's name keyed by the sandbox secret), never stored; ClickHouse keeps its SHA-256 only. Tilecast's
own ClickHouse user needs `access_management = 1` (and the grants it hands out, WITH GRANT OPTION) to create
them. Each statement is idempotent (`IF NOT EXISTS` / `OR REPLACE`), so `tilecast migrate` can run them again
for every team.
"""

import hashlib
import re
from dataclasses import dataclass
from typing import Any

from app.clickhouse.client import ClickHouse
from app.clickhouse.schema import EVENTS_TABLE, PERSON_TABLE
from app.config import Settings
from app.sql_sandbox.roles import role_password

TABLES = (EVENTS_TABLE, PERSON_TABLE)
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class Limits:
    """What a team's query may use: ClickHouse's own settings, fixed in the user's settings profile."""

    max_execution_time_s: float
    max_memory_usage: int
    max_result_rows: int


def user_name(database: str, team_id: int) -> str:
    """The team's ClickHouse user: per database (two installations can share a server), per team."""
    digest = hashlib.sha256(database.encode()).hexdigest()[:8]
    return f"tilecast_{digest}_team_{int(team_id)}"


def user_password(secret: str, user: str) -> str:
    return role_password(secret, user)


def _identifier(name: str) -> str:
    if not _NAME.match(name):
        raise ValueError(f"not a plain ClickHouse identifier: {name!r}")
    return name


def _on_cluster(cluster: str | None) -> str:
    return f" ON CLUSTER {_identifier(cluster)}" if cluster else ""


def owner_statements(database: str, owner: str, cluster: str | None = None) -> list[str]:
    """Policies letting Tilecast's own user (`owner`) read every row. Once a table has a row policy,
    ClickHouse hides its rows from every user no policy names: the owner needs one of its own."""
    db = _identifier(database)
    user = _identifier(owner)
    on = _on_cluster(cluster)
    digest = hashlib.sha256(db.encode()).hexdigest()[:8]
    return [
        f"CREATE ROW POLICY OR REPLACE tilecast_{digest}_owner_{table}{on} ON {db}.{table} "
        f"FOR SELECT USING 1 TO {user}"
        for table in TABLES
    ]


def team_user_statements(
    database: str, team_id: int, secret: str, limits: Limits, cluster: str | None = None
) -> list[str]:
    """Statements creating (or bringing up to date) the team's user, profile, row policies and grants."""
    db = _identifier(database)
    team = int(team_id)
    user = user_name(db, team)
    profile = f"{user}_profile"
    on = _on_cluster(cluster)
    digest = hashlib.sha256(user_password(secret, user).encode()).hexdigest()
    seconds = limits.max_execution_time_s
    statements = [
        f"CREATE SETTINGS PROFILE OR REPLACE {profile}{on} SETTINGS "
        f"readonly = 1 CONST, "
        f"allow_ddl = 0 CONST, "
        f"max_execution_time = {seconds:g} CONST, "
        f"max_memory_usage = {int(limits.max_memory_usage)} CONST, "
        f"max_result_rows = {int(limits.max_result_rows)} CONST, "
        f"result_overflow_mode = 'throw' CONST",
        f"CREATE USER IF NOT EXISTS {user}{on} IDENTIFIED WITH sha256_hash BY '{digest}' "
        f"DEFAULT DATABASE {db} SETTINGS PROFILE {profile}",
        # The password and profile again for a user that already existed (a changed secret or limits).
        f"ALTER USER {user}{on} IDENTIFIED WITH sha256_hash BY '{digest}' "
        f"DEFAULT DATABASE {db} SETTINGS PROFILE {profile}",
        f"REVOKE{on} ALL ON *.* FROM {user}",
    ]
    for table in TABLES:
        policy = f"{user}_{table}"
        statements.append(
            f"CREATE ROW POLICY OR REPLACE {policy}{on} ON {db}.{table} "
            f"FOR SELECT USING team_id = {team} TO {user}"
        )
        statements.append(f"GRANT{on} SELECT ON {db}.{table} TO {user}")
    return statements


def drop_team_user_statements(database: str, team_id: int, cluster: str | None = None) -> list[str]:
    """Statements removing the team's user, its policies and profile (a deleted team)."""
    db = _identifier(database)
    user = user_name(db, int(team_id))
    on = _on_cluster(cluster)
    return [
        *(f"DROP ROW POLICY IF EXISTS {user}_{table}{on} ON {db}.{table}" for table in TABLES),
        f"DROP USER IF EXISTS {user}{on}",
        f"DROP SETTINGS PROFILE IF EXISTS {user}_profile{on}",
    ]


def teams_and_secret(conn: Any, settings: Settings) -> tuple[list[int], str]:
    """Every team's id and the sandbox secret, from PostgreSQL (a sync connection, `run_sync`)."""
    from sqlalchemy import text

    from app.sql_sandbox.roles import secret_value

    secret = secret_value(conn, settings)
    teams = [int(row[0]) for row in conn.execute(text("SELECT id FROM team ORDER BY id"))]
    return teams, secret


async def setup_team_users(
    client: ClickHouse, team_ids: list[int], secret: str, settings: Settings, owner: str
) -> int:
    """Create or bring up to date every team's ClickHouse user (a server only: `tilecast migrate`, which
    passes Tilecast's own user as `owner`); the number of teams."""
    limits = Limits(
        max_execution_time_s=settings.query_timeout_ms / 1000,
        max_memory_usage=settings.clickhouse_max_memory_bytes,
        max_result_rows=settings.clickhouse_max_result_rows,
    )
    cluster = settings.clickhouse_cluster
    for statement in owner_statements(client.database, owner, cluster):
        await client.command(statement)
    for team_id in team_ids:
        for statement in team_user_statements(client.database, team_id, secret, limits, cluster):
            await client.command(statement)
    return len(team_ids)
