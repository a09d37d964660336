"""The database's own confinement of SQL insights: one PostgreSQL login role and one schema per team.

For team 5 of database `tilecast`:

- role `tilecast_<8 hex of sha256("tilecast")>_team_5`: LOGIN, NOINHERIT, member of nothing, no privilege on
  any table of `public`; CONNECTION LIMIT `TILECAST_SQL_TEAM_CONNECTIONS`; role settings `search_path` (its
  schema only), `default_transaction_read_only`, `statement_timeout`, `idle_in_transaction_session_timeout`,
  `work_mem`, and `temp_file_limit` where the database user is a superuser (only superusers may set it).
  Role names are cluster-wide while team ids are per database: the hash of the database's name keeps the
  roles of two Tilecast databases on one server apart.
- schema `tilecast_team_5`, owned by the database user, holding the views `events` and `person` =
  `SELECT * FROM public.<table> WHERE team_id = 5`. The role has USAGE on that schema and SELECT on those two
  views, nothing else.
- its password: HMAC-SHA256 of the role's name keyed by `TILECAST_SQL_SANDBOX_SECRET` or the secret stored in
  `app_secret`, never stored; the role gets a SCRAM verifier of it, so the password is never in a statement.

And once per database, row security on `public.events` and `public.person`:

- the views belong to one role, `tilecast_<hash>_team_reader`: NOLOGIN, member of nothing, SELECT on those
  two tables only (the database user is made a member of it, to own views through it);
- a restrictive policy `tilecast_sql_team` on both tables, for that role: `team_id` = the team of the
  *logged-in* role (`current_user`, read from its name once per query; no other role gets any row). So a
  view reads its team's rows only, and PostgreSQL applies the policy before any condition of the query that
  could reveal a value (a failing cast, a function), as it does for every row-security policy: not even a
  failing cast in a `WHERE` runs on another team's rows. Nothing a SELECT can change picks the team: no
  setting, and no `SET ROLE` (the login role is a member of nothing). Policies rather than
  `security_barrier` views, because PostgreSQL plans through a barrier without the columns' statistics
  (a `GROUP BY distinct_id` planned for 200 groups); through a policy it plans as for the table itself.
- a permissive policy `tilecast_sql_everyone` (every command, every role, every row), so that roles other
  than the reader see the tables as before; the tables' owner (Tilecast's database user) is not subject
  to row security at all.
- database-wide: PUBLIC loses every privilege on the tables and sequences of `public`, and, where the
  database user owns schema `public`, USAGE on it (every role holding a privilege on one of its tables, and
  the database user, is granted USAGE first, so none loses access).

`setup_team` runs when a team is created (in its transaction, skipped where the user may not create roles)
and `setup_all` after Alembic in `tilecast migrate` (idempotent: a team whose schema's comment is current and
whose role holds no membership is skipped; under an advisory lock, so many hosts may run it at once). Both
set up the row security first where it is missing (its DDL locks the tables, so it runs only then).
Migrations that change `events` or `person` would be refused while views depend on them: the Alembic
environment drops the views first and recreates them once at the latest migration (`drop_views`,
`recreate_views`), in the same transaction.

The functions take a synchronous SQLAlchemy `Connection` (Alembic's, or an async one's `run_sync`), but
`setup_new_team` (the request's `AsyncSession`).
"""

import base64
import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from app.config import Settings, get_settings

log = logging.getLogger("tilecast.sql_sandbox")

# Bumped when what `setup_team` does changes, so that `tilecast migrate` sets every team up again.
SETUP_VERSION = 2
SECRET_NAME = "sql_sandbox"
SCHEMA_PREFIX = "tilecast_team_"
TABLES = ("events", "person")
# The disk a team's query may fill with temporary files (sorts, hashes): only superusers may set it.
TEMP_FILE_LIMIT = "1GB"
# "tilesand": the advisory lock `setup_all` holds.
SETUP_LOCK_ID = 0x74696C6573616E64


# Whether the current role (a team role, when it logs in) holds more than a team role may: checked on every
# new sandbox connection.
OVERPRIVILEGED_SELF = (
    "SELECT rolsuper OR rolcreaterole OR rolcreatedb OR rolreplication OR rolbypassrls "
    "OR EXISTS (SELECT FROM pg_auth_members m WHERE m.member = r.oid) "
    "FROM pg_roles r WHERE rolname = current_user"
)


def role_name(database: str, team_id: int) -> str:
    digest = hashlib.sha256(database.encode()).hexdigest()[:8]
    return f"tilecast_{digest}_team_{team_id}"


def reader_name(database: str) -> str:
    """The role owning every team's views, subject to the team policy."""
    return role_name(database, 0).removesuffix("0") + "reader"


def schema_name(team_id: int) -> str:
    return f"{SCHEMA_PREFIX}{team_id}"


def role_password(secret: str, role: str) -> str:
    return hmac.new(secret.encode(), role.encode(), hashlib.sha256).hexdigest()


def scram_verifier(password: str, *, iterations: int = 4096) -> str:
    """PostgreSQL's stored form of a SCRAM-SHA-256 password (RFC 5802/7677), as `CREATE ROLE ... PASSWORD`
    accepts it: the plaintext never appears in a statement (nor in a server log of DDL)."""
    salt = secrets.token_bytes(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    stored_key = hashlib.sha256(hmac.new(salted, b"Client Key", hashlib.sha256).digest()).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()

    def b64(value: bytes) -> str:
        return base64.b64encode(value).decode()

    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


def _ident(name: str) -> str:
    """Our own names only (letters, digits, underscores), double-quoted."""
    if not name.replace("_", "").isalnum():
        raise ValueError(f"not a sandbox identifier: {name!r}")
    return f'"{name}"'


def _quote(name: str) -> str:
    """Any name (a database's, a role's), as a quoted identifier."""
    return '"' + name.replace('"', '""') + '"'


def secret_value(conn: Connection, settings: Settings) -> str:
    """`TILECAST_SQL_SANDBOX_SECRET`, else the stored one (generated and stored on first use)."""
    if settings.sql_sandbox_secret is not None:
        return settings.sql_sandbox_secret.get_secret_value()
    conn.execute(
        text("INSERT INTO app_secret (name, value) VALUES (:name, :value) ON CONFLICT (name) DO NOTHING"),
        {"name": SECRET_NAME, "value": secrets.token_urlsafe(48)},
    )
    value = conn.execute(text("SELECT value FROM app_secret WHERE name = :name"), {"name": SECRET_NAME})
    return str(value.scalar_one())


@dataclass(frozen=True)
class Privileges:
    database: str
    superuser: bool
    # What the database user lacks to set the sandbox up, as an operator would read it; None: nothing.
    missing: str | None


def privileges(conn: Connection) -> Privileges:
    row = conn.execute(
        text(
            "SELECT current_database(), current_user, r.rolsuper, r.rolsuper OR r.rolcreaterole, "
            "has_database_privilege(current_database(), 'CREATE') "
            "FROM pg_roles r WHERE r.rolname = current_user"
        )
    ).one()
    database, user, superuser, createrole, create = row
    missing = None
    if not createrole:
        missing = (
            f'the database user "{user}" may not create roles: run `ALTER ROLE "{user}" CREATEROLE` as a '
            "superuser (or run `tilecast migrate` as a user that may), then `tilecast migrate`"
        )
    elif not create:
        missing = (
            f'the database user "{user}" may not create schemas in database "{database}": run '
            f'`GRANT CREATE ON DATABASE "{database}" TO "{user}"`, then `tilecast migrate`'
        )
    return Privileges(str(database), bool(superuser), missing)


def _marker(role: str, settings: Settings, secret: str) -> str:
    """The schema's comment: what it was set up with (the secret only as a fingerprint)."""
    fingerprint = hmac.new(secret.encode(), b"fingerprint", hashlib.sha256).hexdigest()[:12]
    return (
        f"tilecast sql sandbox v{SETUP_VERSION} role={role} connections={settings.sql_team_connections} "
        f"timeout_ms={settings.sql_timeout_ms} work_mem_kb={settings.query_work_mem_kb} secret={fingerprint}"
    )


def _views_sql(team_id: int, role: str, reader: str) -> list[str]:
    schema = _ident(schema_name(team_id))
    # A view's new owner must be allowed to create in its schema, only for the moment it becomes the owner.
    statements = [f"GRANT CREATE ON SCHEMA {schema} TO {_ident(reader)}"]
    for table in TABLES:
        statements += [
            f"DROP VIEW IF EXISTS {schema}.{table}",
            f"CREATE VIEW {schema}.{table} AS SELECT * FROM public.{table} WHERE team_id = {int(team_id)}",
            # Read as the reader, so the team policy applies (the tables' owner would bypass it).
            f"ALTER VIEW {schema}.{table} OWNER TO {_ident(reader)}",
            f"REVOKE ALL ON {schema}.{table} FROM PUBLIC",
            f"GRANT SELECT ON {schema}.{table} TO {_ident(role)}",
        ]
    return [*statements, f"REVOKE CREATE ON SCHEMA {schema} FROM {_ident(reader)}"]


def _team_of_current_user(database: str) -> str:
    """The team id of the logged-in team role (`current_user`), NULL for any other role: evaluated once per
    query (a scalar subquery), as the policy's `team_id = ...`."""
    prefix = role_name(database, 0).removesuffix("0")
    digits = f"substr(current_user::text, {len(prefix) + 1})"
    is_team = f"starts_with(current_user::text, '{prefix}') AND {digits} ~ '^[1-9][0-9]{{0,17}}$'"
    return f"(SELECT CASE WHEN {is_team} THEN {digits}::bigint END)"


def _row_security_sql(database: str) -> list[str]:
    """The reader role and the policies (see the module's docstring), each part only where it is missing or
    not as it should be: the policies' DDL locks the tables."""
    reader = reader_name(database)
    quoted = _ident(reader)
    team = _team_of_current_user(database)
    prefix = role_name(database, 0).removesuffix("0")
    statements = [
        f"IF EXISTS (SELECT FROM pg_roles WHERE rolname = '{reader}' AND (rolsuper OR rolbypassrls OR "
        "rolcreaterole OR rolcreatedb OR rolreplication OR rolcanlogin)) THEN RAISE EXCEPTION "
        f"'role {reader} holds attributes the SQL insights reader must not have: drop it'; END IF",
        f"IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{reader}') THEN "
        f"CREATE ROLE {quoted} WITH NOLOGIN NOINHERIT; END IF",
        "DECLARE granted text; BEGIN FOR granted IN SELECT g.rolname FROM pg_auth_members m "
        "JOIN pg_roles g ON g.oid = m.roleid JOIN pg_roles r ON r.oid = m.member "
        f"WHERE r.rolname = '{reader}' LOOP EXECUTE format('REVOKE %I FROM {quoted}', granted); "
        "END LOOP; END",
        # Owning views through it needs a membership that may SET ROLE (PostgreSQL 16 gives the creator of
        # a role only ADMIN on it).
        f"IF NOT pg_has_role(current_user, '{reader}', 'USAGE') THEN "
        "IF current_setting('server_version_num')::int >= 160000 THEN "
        f"EXECUTE 'GRANT {quoted} TO current_user WITH INHERIT TRUE, SET TRUE'; "
        f"ELSE GRANT {quoted} TO current_user; END IF; END IF",
    ]
    for table in TABLES:
        qualified = f"public.{table}"
        statements += [
            f"IF NOT has_table_privilege('{reader}', '{qualified}', 'SELECT') THEN "
            f"GRANT SELECT ON {qualified} TO {quoted}; END IF",
            f"IF NOT (SELECT relrowsecurity FROM pg_class WHERE oid = '{qualified}'::regclass) THEN "
            f"ALTER TABLE {qualified} ENABLE ROW LEVEL SECURITY; END IF",
            f"IF NOT EXISTS (SELECT FROM pg_policy WHERE polrelid = '{qualified}'::regclass AND polname = "
            f"'tilecast_sql_everyone') THEN CREATE POLICY tilecast_sql_everyone ON {qualified} AS PERMISSIVE "
            "FOR ALL TO PUBLIC USING (true) WITH CHECK (true); END IF",
            # Made again when its text differs (a renamed database: other role names).
            f"IF NOT EXISTS (SELECT FROM pg_policy p WHERE p.polrelid = '{qualified}'::regclass "
            "AND p.polname = 'tilecast_sql_team' AND NOT p.polpermissive "
            f"AND p.polroles = ARRAY['{reader}'::regrole::oid] "
            f"AND position('{prefix}' IN pg_get_expr(p.polqual, p.polrelid)) > 0) THEN "
            f"DROP POLICY IF EXISTS tilecast_sql_team ON {qualified}; "
            f"CREATE POLICY tilecast_sql_team ON {qualified} AS RESTRICTIVE FOR SELECT TO {quoted} "
            f"USING (team_id = {team}); END IF",
        ]
    return statements


def _run(conn: Connection, statements: list[str]) -> None:
    """The statements in one round trip: a `DO` block (one statement, as prepared statements require). Our
    own identifiers and literals only, so no dollar quote can occur inside."""
    conn.exec_driver_sql("DO $tilecast$ BEGIN\n" + ";\n".join(statements) + ";\nEND $tilecast$")


def create_views(conn: Connection, team_id: int, role: str, database: str) -> None:
    """The team's two views, made anew (their columns are the tables' at this moment), readable by its role
    alone."""
    _run(conn, [*_row_security_sql(database), *_views_sql(team_id, role, reader_name(database))])


def setup_team(conn: Connection, team_id: int, settings: Settings, secret: str, facts: Privileges) -> None:
    """Create or bring up to date the role, schema and views of one team (see the module's docstring), in
    one statement."""
    role = role_name(facts.database, team_id)
    schema = schema_name(team_id)
    quoted_role, quoted_schema = _ident(role), _ident(schema)
    verifier = scram_verifier(role_password(secret, role))
    options = f"LOGIN NOINHERIT CONNECTION LIMIT {int(settings.sql_team_connections)} PASSWORD '{verifier}'"
    role_settings = {
        "search_path": quoted_schema,
        "default_transaction_read_only": "on",
        "statement_timeout": str(int(settings.sql_timeout_ms)),
        "idle_in_transaction_session_timeout": str(int(settings.sql_timeout_ms)),
    }
    if settings.query_work_mem_kb:
        role_settings["work_mem"] = f"'{int(settings.query_work_mem_kb)}kB'"
    if facts.superuser:
        role_settings["temp_file_limit"] = f"'{TEMP_FILE_LIMIT}'"
    statements = [
        # A role of that name made by someone else with more rights than a team role is never used.
        f"IF EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}' AND (rolsuper OR rolcreaterole OR "
        f"rolcreatedb OR rolreplication OR rolbypassrls)) THEN RAISE EXCEPTION 'role {role} holds attributes "
        f"a team role must not have: drop it'; END IF",
        f"IF EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN ALTER ROLE {quoted_role} WITH "
        f"{options}; ELSE CREATE ROLE {quoted_role} WITH {options}; END IF",
        # Member of nothing: a membership someone granted is taken back.
        "DECLARE granted text; BEGIN FOR granted IN SELECT g.rolname FROM pg_auth_members m "
        "JOIN pg_roles g ON g.oid = m.roleid JOIN pg_roles r ON r.oid = m.member "
        f"WHERE r.rolname = '{role}' LOOP EXECUTE format('REVOKE %I FROM {quoted_role}', granted); "
        "END LOOP; END",
        *(f"ALTER ROLE {quoted_role} SET {name} = {value}" for name, value in role_settings.items()),
        f"CREATE SCHEMA IF NOT EXISTS {quoted_schema}",
        f"REVOKE ALL ON SCHEMA {quoted_schema} FROM PUBLIC",
        # Grants to any other role (a restored dump's roles of another database) are taken back.
        "DECLARE other text; BEGIN FOR other IN SELECT DISTINCT g.rolname FROM pg_namespace n "
        "CROSS JOIN LATERAL aclexplode(n.nspacl) a JOIN pg_roles g ON g.oid = a.grantee "
        f"WHERE n.nspname = '{schema}' AND a.grantee <> n.nspowner AND g.rolname <> '{role}' "
        f"LOOP EXECUTE format('REVOKE ALL ON SCHEMA {quoted_schema} FROM %I', other); END LOOP; END",
        f"GRANT USAGE ON SCHEMA {quoted_schema} TO {quoted_role}",
        *_row_security_sql(facts.database),
        *_views_sql(team_id, role, reader_name(facts.database)),
        f"COMMENT ON SCHEMA {quoted_schema} IS '{_marker(role, settings, secret)}'",
    ]
    _run(conn, statements)


def harden_public_schema(conn: Connection) -> None:
    """PUBLIC (so every team role) loses its privileges on schema `public` and its tables and sequences.
    Roles that read Tilecast's tables through a grant, and the database user, keep USAGE on the schema
    (granted explicitly first). Where the database user does not own the schema, USAGE stays (logged)."""
    # Only what PUBLIC holds is revoked (a REVOKE rewrites the catalog row even when nothing changes).
    granted = conn.execute(
        text(
            "SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' "
            "AND EXISTS (SELECT FROM aclexplode(c.relacl) a WHERE a.grantee = 0)"
        )
    ).scalars()
    for relation in list(granted):
        conn.exec_driver_sql(f"REVOKE ALL ON {relation} FROM PUBLIC")
    public_usage = conn.execute(
        text(
            "SELECT EXISTS (SELECT FROM pg_namespace n, "
            "aclexplode(coalesce(n.nspacl, acldefault('n', n.nspowner))) a "
            "WHERE n.nspname = 'public' AND a.grantee = 0)"
        )
    ).scalar_one()
    if not public_usage:
        return
    owns = conn.execute(
        text("SELECT pg_has_role(current_user, nspowner, 'USAGE') FROM pg_namespace WHERE nspname = 'public'")
    ).scalar()
    if not owns:
        log.warning(
            "SQL insights: PUBLIC keeps USAGE on schema public (the database user does not own it); the team "
            "roles still have no privilege on its tables. An owner may run `REVOKE ALL ON SCHEMA public FROM "
            "PUBLIC` after granting USAGE to the roles that need it"
        )
        return
    readers = conn.execute(
        text(
            "SELECT DISTINCT r.rolname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "CROSS JOIN LATERAL aclexplode(c.relacl) a JOIN pg_roles r ON r.oid = a.grantee "
            "WHERE n.nspname = 'public' UNION SELECT current_user::text"
        )
    ).scalars()
    for reader in list(readers):
        conn.exec_driver_sql(f"GRANT USAGE ON SCHEMA public TO {_quote(reader)}")
    conn.execute(text("REVOKE ALL ON SCHEMA public FROM PUBLIC"))


def setup_all(conn: Connection, settings: Settings) -> str | None:
    """Set up every team that is not (or not as currently configured): `tilecast migrate`, after Alembic.
    Returns what is missing (the privileges of `Privileges.missing`), None when done."""
    facts = privileges(conn)
    if facts.missing is not None:
        return facts.missing
    conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": SETUP_LOCK_ID})
    secret = secret_value(conn, settings)
    harden_public_schema(conn)
    schemas = conn.execute(
        text(
            "SELECT n.nspname, obj_description(n.oid, 'pg_namespace') FROM pg_namespace n "
            "WHERE n.nspname LIKE :prefix"
        ),
        {"prefix": SCHEMA_PREFIX.replace("_", r"\_") + "%"},
    )
    current = {str(name): comment for name, comment in schemas}
    # Roles holding a membership someone granted are set up again (which takes it back).
    roles = set(
        conn.execute(
            text(
                "SELECT rolname FROM pg_roles r WHERE rolname LIKE :prefix "
                "AND NOT EXISTS (SELECT FROM pg_auth_members m WHERE m.member = r.oid)"
            ),
            {"prefix": role_name(facts.database, 0).removesuffix("0").replace("_", r"\_") + "%"},
        ).scalars()
    )
    done = 0
    for team_id in conn.execute(text("SELECT id FROM team ORDER BY id")).scalars():
        role = role_name(facts.database, team_id)
        if role in roles and current.get(schema_name(team_id)) == _marker(role, settings, secret):
            continue
        with conn.begin_nested():
            setup_team(conn, team_id, settings, secret, facts)
        done += 1
    if done:
        log.info("SQL insights: set up the roles of %d team%s", done, "" if done == 1 else "s")
    return None


def drop_views(conn: Connection) -> list[int]:
    """Drop every team's views (before migrations that may change `events` or `person`): the teams whose
    views were dropped."""
    teams = []
    for schema in conn.execute(
        text("SELECT nspname FROM pg_namespace WHERE nspname LIKE :prefix"),
        {"prefix": SCHEMA_PREFIX.replace("_", r"\_") + "%"},
    ).scalars():
        suffix = schema.removeprefix(SCHEMA_PREFIX)
        if not suffix.isdigit():
            continue
        for table in TABLES:
            conn.exec_driver_sql(f"DROP VIEW IF EXISTS {_ident(schema)}.{table}")
        teams.append(int(suffix))
    return teams


def recreate_views(conn: Connection, teams: list[int]) -> None:
    """The views `drop_views` dropped, on the tables as migrated, for the teams still there."""
    database = str(conn.execute(text("SELECT current_database()")).scalar_one())
    alive = set(conn.execute(text("SELECT id FROM team")).scalars())
    for team_id in teams:
        role = role_name(database, team_id)
        exists = conn.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :role"), {"role": role}).first()
        if team_id in alive and exists is not None:
            create_views(conn, team_id, role, database)


def _setup_new_team(session: Session, team_id: int) -> None:
    conn = session.connection()
    facts = privileges(conn)
    if facts.missing is not None:
        log.debug("SQL insights: team %d gets no role: %s", team_id, facts.missing)
        return
    settings = get_settings()
    setup_team(conn, team_id, settings, secret_value(conn, settings), facts)


async def setup_new_team(session: AsyncSession, team_id: int) -> None:
    """A new team's role, schema and views, in the transaction creating the team; where the database user
    may not create them (or anything fails), the team is created without (SQL insights then say why)."""
    try:
        async with session.begin_nested():
            await session.run_sync(_setup_new_team, team_id)
    except Exception:
        log.warning("SQL insights: team %d was created without its role", team_id, exc_info=True)
