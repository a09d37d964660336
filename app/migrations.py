"""Running Alembic from code: `tilecast migrate`, `tilecast serve` and the tests use this."""

import asyncio
from dataclasses import dataclass
from pathlib import Path

import asyncpg
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError


def _project_root() -> Path:
    """The folder holding `alembic.ini` and `migrations/`: the checkout for an editable install, else the
    working directory (the Docker image installs the package and runs from /app)."""
    checkout = Path(__file__).resolve().parent.parent
    return checkout if (checkout / "alembic.ini").exists() else Path.cwd()


ROOT = _project_root()


def alembic_config(url: str) -> Config:
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "migrations"))
    # ConfigParser interpolation: a literal % must be doubled.
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str = "base") -> None:
    command.downgrade(alembic_config(url), revision)


async def upgrade_async(url: str, revision: str = "head") -> None:
    """Alembic's env runs its own event loop, so from async code it runs in a thread."""
    await asyncio.to_thread(upgrade, url, revision)


def setup_sql_sandbox(url: str) -> str | None:
    """SQL insights' per-team roles, schemas and views, for every team not set up as currently configured
    (`app.sql_sandbox.roles.setup_all`); what the database user lacks to do it, None when done."""
    from sqlalchemy.ext.asyncio import create_async_engine

    from app.config import get_settings
    from app.db import async_url
    from app.sql_sandbox import roles

    async def run() -> str | None:
        engine = create_async_engine(async_url(url))
        try:
            async with engine.begin() as conn:
                return await conn.run_sync(roles.setup_all, get_settings())
        finally:
            await engine.dispose()

    return asyncio.run(run())


@dataclass(frozen=True)
class DatabaseFacts:
    """What `tilecast` logs about its database at start."""

    safe_url: str  # the URL without its password or query string
    server_version: str
    revision: str | None  # the schema's migration, None before the first


def describe_database(url: str) -> DatabaseFacts:
    from app.db import async_url

    async def read() -> tuple[str, str | None]:
        dsn = async_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        conn = await asyncpg.connect(dsn)
        try:
            version = await conn.fetchval("SHOW server_version")
            exists = await conn.fetchval("SELECT to_regclass('alembic_version') IS NOT NULL")
            revision = await conn.fetchval("SELECT version_num FROM alembic_version") if exists else None
            return str(version), revision
        finally:
            await conn.close()

    version, revision = asyncio.run(read())
    return DatabaseFacts(_loggable_url(url), version, revision)


def _loggable_url(url: str) -> str:
    """The URL without its password or query string (`sslmode`, …); a Unix socket directory given as the
    `host` query parameter is named after it."""
    from sqlalchemy import make_url

    parsed = make_url(url)
    socket = parsed.query.get("host")
    text = parsed.set(query={}).render_as_string(hide_password=True)
    return f"{text} (socket {socket})" if isinstance(socket, str) else text


def schema_status(revision: str | None) -> str:
    """`current` (the code's latest migration), `older` (a migration of this code's, or none: migrate), or
    `newer` (a migration this code does not know: a newer release migrated it)."""
    script = ScriptDirectory.from_config(alembic_config(""))
    if revision == script.get_current_head():
        return "current"
    if revision is None:
        return "older"
    try:
        known = script.get_revision(revision) is not None
    except CommandError:
        known = False
    return "older" if known else "newer"
