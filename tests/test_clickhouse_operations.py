"""Operating the ClickHouse events backend: `migrate` and `serve` create and migrate its tables, `serve`
refuses several workers on chdb and says which backend it uses, /_readyz checks ClickHouse, the tables'
layout on one server and on a cluster (the cluster DDL is checked as text: no cluster runs here), retention,
and, with
TILECAST_CLICKHOUSE_URL set, capture into a real ClickHouse server."""

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest

from app.clickhouse.client import ChdbClient, ServerClient
from app.clickhouse.schema import Layout, latest_version, migrate, schema_statements
from app.ingestion.clickhouse import insert_new_events
from app.ingestion.retention import prune_events
from tests.clickhouse_helpers import SERVER_URL, ClickHouseApp, requires_server, stored_events
from tests.conftest import FreshDatabases
from tests.events import event, ingest
from tests.factories import Actor
from tests.live import env_without_database, run_cli, serve


def _env(url: str, data: Path, **extra: str) -> dict[str, str]:
    env = env_without_database(
        DATABASE_URL=url, TILECAST_DATA_DIR=str(data), TILECAST_EVENTS_BACKEND="clickhouse", **extra
    )
    if "TILECAST_CLICKHOUSE_URL" not in extra:
        env.pop("TILECAST_CLICKHOUSE_URL", None)
    return env


def test_serve_refuses_several_workers_on_chdb(tmp_path: Path) -> None:
    result = run_cli(["serve", "--workers", "2"], _env("postgresql://nobody@127.0.0.1:1/none", tmp_path))
    assert result.returncode == 2
    assert "--workers 2" in result.stderr
    assert "one process only" in result.stderr
    assert "TILECAST_CLICKHOUSE_URL" in result.stderr


def test_migrate_creates_the_clickhouse_tables_once(fresh_databases: FreshDatabases, tmp_path: Path) -> None:
    env = _env(fresh_databases.create(migrated=False), tmp_path)
    first = run_cli(["migrate"], env)
    assert first.returncode == 0, first.stderr
    assert f"schema at migration {latest_version()} (applied 1, 2)" in first.stderr
    assert "chdb in this process" in first.stderr
    again = run_cli(["migrate"], env)
    assert again.returncode == 0, again.stderr
    assert f"schema at migration {latest_version()}" in again.stderr
    assert "applied" not in again.stderr


def test_serve_on_chdb_captures_and_says_so(fresh_databases: FreshDatabases, tmp_path: Path) -> None:
    url = fresh_databases.create(migrated=False)
    env = _env(url, tmp_path / "data")
    created = run_cli(["create-key", "--email", "ch@example.com", "--json"], env)
    assert created.returncode == 0, created.stderr
    token = json.loads(created.stdout)["project_api_key"]
    sent = event("served", "zed", "2026-05-01T00:00:00Z")
    with serve(env, tmp_path) as (base, log):
        assert httpx.get(f"{base}/_readyz").json() == {"status": "ok"}
        response = httpx.post(f"{base}/batch/", json={"api_key": token, "batch": [sent, sent]})
        assert response.status_code == 200, response.text
        text = log.read_text()
    assert "events: in ClickHouse (chdb in this process" in text
    assert "events are stored and computed in ClickHouse" in text
    # chdb's folder is this process's: the server stopped, another may open it (not two at once).
    again = run_cli(["serve", "--no-migrate", "--workers", "2"], env)
    assert again.returncode == 2
    with serve(env, tmp_path, args=["--no-migrate"]) as (base, log):
        assert f"schema at migration {latest_version()}" in log.read_text()
        response = httpx.post(f"{base}/batch/", json={"api_key": token, "batch": [sent]})
        assert response.status_code == 200
    # Stored once (two copies, then a retry): `prune-events` deletes that one event from ClickHouse.
    pruned = run_cli(["prune-events", "--before", "2026-06-01"], env)
    assert pruned.returncode == 0, pruned.stderr
    assert json.loads(pruned.stdout) == {"deleted": 1}


def test_serve_on_postgres_says_so(fresh_databases: FreshDatabases, tmp_path: Path) -> None:
    env = env_without_database(DATABASE_URL=fresh_databases.create(migrated=False))
    env.pop("TILECAST_EVENTS_BACKEND", None)
    with serve(env, tmp_path) as (_, log):
        assert "events: in PostgreSQL" in log.read_text()


async def test_readyz_is_503_when_clickhouse_does_not_answer(clickhouse_app: ClickHouseApp) -> None:
    assert (await clickhouse_app.client.get("/_readyz")).status_code == 200
    clickhouse_app.app.state.clickhouse = ServerClient("http://127.0.0.1:1/nowhere")
    response = await clickhouse_app.client.get("/_readyz")
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable"}


async def test_the_events_table_is_shaped_like_posthogs(clickhouse: ChdbClient) -> None:
    rows = await clickhouse.query(
        "SELECT name, engine, partition_key, sorting_key FROM system.tables"
        " WHERE database = {db:String} ORDER BY name",
        {"db": clickhouse.database},
    )
    tables = {name: (engine, partition, sorting) for name, engine, partition, sorting in rows}
    assert tables["events"] == (
        "MergeTree",
        "toYYYYMM(timestamp)",
        "team_id, toDate(timestamp), event, cityHash64(distinct_id), cityHash64(uuid)",
    )
    assert tables["person"][0] == "ReplacingMergeTree"
    indexes = await clickhouse.query(
        "SELECT name, type FROM system.data_skipping_indices"
        " WHERE database = {db:String} AND table = 'events'",
        {"db": clickhouse.database},
    )
    assert indexes == [("uuid_bloom", "bloom_filter")]
    assert await migrate(clickhouse) == []  # migrated by the fixture already


def test_the_cluster_ddl_replicates_and_distributes_by_distinct_id() -> None:
    statements = schema_statements(Layout("tilecast", "main"))
    assert all(" ON CLUSTER main" in statement for statement in statements)
    assert statements[0] == "CREATE DATABASE IF NOT EXISTS tilecast ON CLUSTER main"
    text = "\n".join(statements)
    for table, engine in (("events", "ReplicatedMergeTree("), ("person", "ReplicatedReplacingMergeTree(")):
        local = next(s for s in statements if f"tilecast.{table}_local ON CLUSTER" in s)
        assert engine in local
        assert f"'/clickhouse/tables/{{shard}}/tilecast/{table}_local', '{{replica}}'" in local
        distributed = next(s for s in statements if f"tilecast.{table} ON CLUSTER" in s)
        assert f"Distributed(main, tilecast, {table}_local, cityHash64(distinct_id))" in distributed
    events_local = next(s for s in statements if "tilecast.events_local" in s)
    assert "PARTITION BY toYYYYMM(timestamp)" in events_local
    assert "ORDER BY (team_id, toDate(timestamp), event, cityHash64(distinct_id), cityHash64(uuid))" in text
    single = schema_statements(Layout("tilecast"))
    assert not any("ON CLUSTER" in s or "Replicated" in s or "Distributed" in s for s in single)
    with pytest.raises(ValueError):
        schema_statements(Layout("tilecast", "main; DROP TABLE x"))


@pytest.fixture
async def server() -> AsyncIterator[ServerClient]:
    """A fresh database on the ClickHouse server at TILECAST_CLICKHOUSE_URL."""
    assert SERVER_URL
    parts = urlsplit(SERVER_URL)
    client = ServerClient(urlunsplit(parts._replace(path=f"/tilecast_test_{uuid.uuid4().hex[:12]}")))
    await migrate(client)
    try:
        yield client
    finally:
        await client.command(f"DROP DATABASE IF EXISTS {client.database}")
        await client.close()


@requires_server
async def test_capture_into_a_clickhouse_server(
    clickhouse_app: ClickHouseApp, server: ServerClient, actor: Actor
) -> None:
    clickhouse_app.app.state.clickhouse = server
    first = event("served", "sam", "2026-05-02T00:00:00Z", {"$set": {"plan": "pro"}})
    await ingest(clickhouse_app.client, actor, [first, first, event("other", "sam", "2026-05-02T00:00:01Z")])
    await ingest(clickhouse_app.client, actor, [first | {"timestamp": "2026-05-02T00:09:00Z"}])
    rows = await stored_events(server, actor.team.id)
    assert [r["event"] for r in rows] == ["served", "other"]
    assert str(rows[0]["uuid"]) == first["uuid"]
    assert (await clickhouse_app.client.get("/_readyz")).status_code == 200
    assert await insert_new_events(server, actor.team.id, []) == 0


async def test_prune_events_deletes_old_events_from_clickhouse(
    clickhouse_app: ClickHouseApp, actor: Actor, other_actor: Actor
) -> None:
    times = ["2026-01-10T00:00:00Z", "2026-02-20T00:00:00Z", "2026-03-05T00:00:00Z", "2026-03-20T00:00:00Z"]
    for who in (actor, other_actor):
        await ingest(clickhouse_app.client, who, [event("e", "d", t) for t in times])
    ch = clickhouse_app.clickhouse
    maker = clickhouse_app.app.state.sessionmaker
    cut = datetime(2026, 3, 10, tzinfo=UTC)
    # One team first: a mutation, the other team's events stay.
    assert await prune_events(maker, cut, actor.team.id, clickhouse=ch) == 3
    assert [r["timestamp"].day for r in await stored_events(ch, actor.team.id)] == [20]
    assert len(await stored_events(ch, other_actor.team.id)) == 4
    # Every team: January and February go as partitions, early March by a mutation.
    assert await prune_events(maker, cut, clickhouse=ch) == 3
    assert [r["timestamp"].day for r in await stored_events(ch, other_actor.team.id)] == [20]
    months = await ch.query(
        "SELECT DISTINCT partition FROM system.parts WHERE database = {db:String} AND table = 'events'"
        " AND active ORDER BY partition",
        {"db": ch.database},
    )
    assert months == [("202603",)]
    assert await prune_events(maker, cut, clickhouse=ch) == 0


def test_demo_refuses_the_clickhouse_backend_and_says_what_to_do(tmp_path: Path) -> None:
    result = run_cli(["demo", "--events", "10"], _env("postgresql://nobody@127.0.0.1:1/none", tmp_path))
    assert result.returncode == 2
    assert "tilecast migrate-events --to clickhouse" in result.stderr
