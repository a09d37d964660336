"""The ClickHouse tables, created and migrated by `tilecast migrate` (and `tilecast serve`, which migrates).

`events` is shaped like PostHog's: partitioned by month, sorted by team, day, event and hashes of the distinct
id and uuid, so no two events share a sort key. Properties are JSON text, read with `JSONExtract*`. Capture
removes duplicate uuids before inserting (a bloom filter index on `uuid` keeps its look-up cheap), so counts
need no `FINAL`.

`person` mirrors PostgreSQL's person table (a distinct id's merged properties); a newer row replaces an older
one, so readers take the latest version per distinct id (`argMax(properties, version)`).

On a cluster (`TILECAST_CLICKHOUSE_CLUSTER`), the data lives in `events_local` / `person_local`, replicated
tables on every shard, and `events` / `person` are Distributed tables over them, sharded by a hash of the
distinct id; every statement runs `ON CLUSTER`. Readers and writers name `events` and `person` either way.

Changes are numbered migrations, applied once each and recorded in `tilecast_schema_migrations`.
"""

from collections.abc import Callable
from dataclasses import dataclass

from app.clickhouse.client import ClickHouse

EVENTS_TABLE = "events"
PERSON_TABLE = "person"
MIGRATIONS_TABLE = "tilecast_schema_migrations"
PROGRESS_TABLE = "tilecast_migrate_events"

_EVENTS_COLUMNS = """
            team_id Int64,
            uuid UUID,
            event String,
            distinct_id String,
            timestamp DateTime64(6, 'UTC'),
            properties String,
            inserted_at DateTime64(6, 'UTC') DEFAULT now64(6)"""
# Capture's look-up of a request's uuids among a team's stored events skips granules through this index.
_EVENTS_INDEXES = """,
            INDEX uuid_bloom uuid TYPE bloom_filter(0.01) GRANULARITY 1"""
_EVENTS_LAYOUT = """
        PARTITION BY toYYYYMM(timestamp)
        ORDER BY (team_id, toDate(timestamp), event, cityHash64(distinct_id), cityHash64(uuid))"""
_PERSON_COLUMNS = """
            team_id Int64,
            distinct_id String,
            properties String,
            version UInt64,
            created_at DateTime64(6, 'UTC')"""
_PERSON_LAYOUT = """
        ORDER BY (team_id, distinct_id)"""


@dataclass(frozen=True)
class Layout:
    """Where the tables go: one server (`cluster` None) or a named ClickHouse cluster."""

    database: str
    cluster: str | None = None

    @property
    def on_cluster(self) -> str:
        return f" ON CLUSTER {_identifier(self.cluster)}" if self.cluster else ""


def _identifier(name: str) -> str:
    if not name.replace("_", "").replace("-", "").isalnum():
        raise ValueError(f"not a ClickHouse identifier: {name!r}")
    return f"`{name}`" if "-" in name else name


def _table(
    layout: Layout, name: str, columns: tuple[str, str], engine: str, replicated_engine: str, rest: str
) -> list[str]:
    """One table on a server; on a cluster, its replicated `<name>_local` and a Distributed `<name>` (the
    same columns, without the skip indexes)."""
    db = layout.database
    plain, indexes = columns
    if layout.cluster is None:
        create = f"CREATE TABLE IF NOT EXISTS {db}.{name} ({plain}{indexes}\n        )\n"
        return [f"{create}        ENGINE = {engine}{rest}"]
    cluster = _identifier(layout.cluster)
    local = f"{name}_local"
    path = f"'/clickhouse/tables/{{shard}}/{db}/{local}', '{{replica}}'"
    return [
        f"CREATE TABLE IF NOT EXISTS {db}.{local}{layout.on_cluster} ({plain}{indexes}\n        )\n"
        f"        ENGINE = {replicated_engine.format(path=path)}{rest}",
        f"CREATE TABLE IF NOT EXISTS {db}.{name}{layout.on_cluster} ({plain}\n        )\n"
        f"        ENGINE = Distributed({cluster}, {db}, {local}, cityHash64(distinct_id))",
    ]


def events_ddl(layout: Layout) -> list[str]:
    return _table(
        layout,
        EVENTS_TABLE,
        (_EVENTS_COLUMNS, _EVENTS_INDEXES),
        "MergeTree",
        "ReplicatedMergeTree({path})",
        _EVENTS_LAYOUT,
    )


def person_ddl(layout: Layout) -> list[str]:
    return _table(
        layout,
        PERSON_TABLE,
        (_PERSON_COLUMNS, ""),
        "ReplacingMergeTree(version)",
        "ReplicatedReplacingMergeTree({path}, version)",
        _PERSON_LAYOUT,
    )


def _bookkeeping_table(layout: Layout, name: str, columns: str, order_by: str) -> str:
    """A small table of Tilecast's own records. On a cluster one replicated table shared by every node (one
    ZooKeeper path, no shard), so whichever node a later command reaches reads the same records."""
    engine = "MergeTree"
    if layout.cluster:
        path = f"'/clickhouse/tables/tilecast/{layout.database}/{name}', '{{replica}}'"
        engine = f"ReplicatedMergeTree({path})"
    return (
        f"CREATE TABLE IF NOT EXISTS {layout.database}.{name}{layout.on_cluster} ({columns}\n"
        f"        )\n        ENGINE = {engine}\n        ORDER BY {order_by}"
    )


def migrations_table_ddl(layout: Layout) -> str:
    """The record of applied migrations."""
    columns = """
            version UInt32,
            name String,
            applied_at DateTime64(6, 'UTC') DEFAULT now64(6)"""
    return _bookkeeping_table(layout, MIGRATIONS_TABLE, columns, "version")


def progress_table_ddl(layout: Layout) -> list[str]:
    """`migrate-events`' progress: each run's last copied key, one row per chunk (`done` on its last)."""
    columns = """
            run String,
            team_id Int64,
            uuid UUID,
            copied UInt64,
            done UInt8 DEFAULT 0,
            recorded_at DateTime64(6, 'UTC')"""
    return [_bookkeeping_table(layout, PROGRESS_TABLE, columns, "(run, recorded_at)")]


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    statements: Callable[[Layout], list[str]]


# Append only: a release adds the next number; applied migrations never change.
MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "events and person tables", lambda layout: events_ddl(layout) + person_ddl(layout)),
    Migration(2, "migrate-events progress", progress_table_ddl),
)


def schema_statements(layout: Layout) -> list[str]:
    """Every statement `migrate` runs on an empty database, in order (for review, and for the tests of the
    cluster DDL)."""
    statements = (
        [f"CREATE DATABASE IF NOT EXISTS {layout.database}{layout.on_cluster}"] if layout.cluster else []
    )
    statements.append(migrations_table_ddl(layout))
    for migration in MIGRATIONS:
        statements.extend(migration.statements(layout))
    return statements


async def applied_versions(client: ClickHouse) -> set[int]:
    rows = await client.query(f"SELECT version FROM {client.database}.{MIGRATIONS_TABLE}")
    return {int(row[0]) for row in rows}


async def migrate(client: ClickHouse, cluster: str | None = None) -> list[int]:
    """Apply the migrations not applied yet; returns their versions. Safe to run again (and, since every
    statement says IF NOT EXISTS, on several hosts at once)."""
    layout = Layout(client.database, cluster)
    if cluster:
        # The client created it on the node it reached; the other nodes need it too.
        await client.command(f"CREATE DATABASE IF NOT EXISTS {client.database}{layout.on_cluster}")
    await client.command(migrations_table_ddl(layout))
    done = await applied_versions(client)
    applied = []
    for migration in MIGRATIONS:
        if migration.version in done:
            continue
        for statement in migration.statements(layout):
            await client.command(statement)
        await client.insert(
            f"{client.database}.{MIGRATIONS_TABLE}",
            ("version", "name"),
            [(migration.version, migration.name)],
        )
        applied.append(migration.version)
    return applied


async def create_tables(client: ClickHouse) -> None:
    """The tables at the latest migration, on one server (tests, chdb)."""
    await migrate(client)


def latest_version() -> int:
    return MIGRATIONS[-1].version
