"""Async Alembic environment. The URL comes from the `sqlalchemy.url` option set by `app.migrations`,
else DATABASE_URL; a connection passed in `config.attributes["connection"]` is used as is."""

import asyncio

from alembic import context
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

import app.models  # noqa: F401  (registers every table on the metadata)
from app.config import get_settings
from app.db import Base, async_url
from app.sql_sandbox import roles as sandbox_roles

config = context.config
target_metadata = Base.metadata

# Hosts starting at once on one database migrate one after the other: each takes this transaction-scoped
# advisory lock before Alembic reads the schema's version, so the first migrates and the others, once it
# commits, find the schema current and do nothing. (Any 64-bit number; this one spells "tilemigr".)
MIGRATION_LOCK_ID = 0x74696C656D696772


def _url() -> str:
    url = config.get_main_option("sqlalchemy.url") or get_settings().database_url
    if not url:
        raise SystemExit("Set DATABASE_URL, or run `tilecast migrate`, which starts the embedded PostgreSQL.")
    return url


def _configure(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata, compare_server_default=True)
    with context.begin_transaction():
        connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": MIGRATION_LOCK_ID})
        # SQL insights' views select every column of `events` and `person`, which PostgreSQL would not let a
        # migration drop or change: they are dropped first and made anew on the migrated tables, in this
        # same transaction (`app.sql_sandbox.roles`).
        heads = set(ScriptDirectory.from_config(config).get_heads())
        migration = context.get_context()
        pending = set(migration.get_current_heads()) != heads or context.get_revision_argument() not in (
            "head",
            "heads",
        )
        dropped = sandbox_roles.drop_views(connection) if pending else []
        context.run_migrations()
        if dropped and set(migration.get_current_heads()) == heads:
            sandbox_roles.recreate_views(connection, dropped)


async def _run_async() -> None:
    engine = create_async_engine(async_url(_url()))
    async with engine.connect() as connection:
        await connection.run_sync(_configure)
        await connection.commit()
    await engine.dispose()


def run_migrations_offline() -> None:
    context.configure(url=str(async_url(_url())), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
    else:
        asyncio.run(_run_async())


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
