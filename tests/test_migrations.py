"""The migrations are the schema: they match the models, and they go down to base and up again."""

import asyncio
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

import app.models  # noqa: F401  (every table on the metadata)
from app.db import Base, async_url
from app.migrations import downgrade, upgrade
from tests.conftest import FreshDatabases


async def _diff(url: str) -> list[Any]:
    engine = create_async_engine(async_url(url))
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(
                lambda sync: compare_metadata(
                    MigrationContext.configure(sync, opts={"compare_server_default": True}), Base.metadata
                )
            )
    finally:
        await engine.dispose()


async def _scalar(url: str, sql: str) -> Any:
    engine = create_async_engine(async_url(url))
    try:
        async with engine.connect() as conn:
            return (await conn.execute(text(sql))).scalar()
    finally:
        await engine.dispose()


def test_models_and_migrations_agree(fresh_databases: FreshDatabases) -> None:
    url = fresh_databases.create(migrated=True)
    assert asyncio.run(_diff(url)) == []


def test_downgrade_to_base_and_upgrade_again(fresh_databases: FreshDatabases) -> None:
    url = fresh_databases.create(migrated=True)
    downgrade(url, "base")
    tables = asyncio.run(
        _scalar(
            url,
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public' "
            "AND table_name <> 'alembic_version'",
        )
    )
    assert tables == 0
    upgrade(url)
    assert asyncio.run(_diff(url)) == []
    # The seed runs again: global themes exist after the second upgrade.
    assert asyncio.run(_scalar(url, "SELECT count(*) FROM data_color_theme WHERE team_id IS NULL")) >= 1


async def _execute(url: str, *statements: str) -> list[Any]:
    engine = create_async_engine(async_url(url))
    try:
        async with engine.begin() as conn:
            results = [await conn.execute(text(sql)) for sql in statements]
            return [r.all() if r.returns_rows else None for r in results]
    finally:
        await engine.dispose()


def test_cached_results_from_before_the_budget_get_a_size_a_kind_and_a_use_stamp(
    fresh_databases: FreshDatabases,
) -> None:
    url = fresh_databases.create(migrated=False)
    upgrade(url, "0003")
    asyncio.run(
        _execute(
            url,
            "INSERT INTO organization (id, name) VALUES (gen_random_uuid(), 'o')",
            "INSERT INTO team (id, uuid, organization_id, name, api_token) "
            "SELECT 1, gen_random_uuid(), id, 't', 'phc_t' FROM organization",
            "INSERT INTO query_cache VALUES ('k', 1, '{\"results\": [1, 2]}', '2026-01-02T03:04:05Z')",
        )
    )
    upgrade(url)
    [rows] = asyncio.run(
        _execute(url, "SELECT size_bytes, saved, last_used_at = last_refresh FROM query_cache")
    )
    # Counted as ad hoc (evicted first) until a saved insight reads them.
    assert [tuple(r) for r in rows] == [(len('{"results": [1, 2]}'), False, True)]
