"""The ClickHouse tables, created (and later migrated) by `tilecast migrate`.

`events` is shaped like PostHog's: partitioned by month, sorted by team, day, event and hashes of the distinct
id and uuid, so no two events share a sort key. Properties are JSON text, read with `JSONExtract*`. Capture
removes duplicate uuids before inserting, so counts need no `FINAL`.

`person` mirrors PostgreSQL's person table (a distinct id's merged properties); a newer row replaces an older
one, so readers take the latest version per distinct id (`argMax(properties, version)`).
"""

from app.clickhouse.client import ClickHouse

EVENTS_TABLE = "events"
PERSON_TABLE = "person"


def events_ddl(database: str) -> str:
    return f"""
        CREATE TABLE IF NOT EXISTS {database}.{EVENTS_TABLE} (
            team_id Int64,
            uuid UUID,
            event String,
            distinct_id String,
            timestamp DateTime64(6, 'UTC'),
            properties String,
            inserted_at DateTime64(6, 'UTC') DEFAULT now64(6)
        )
        ENGINE = MergeTree
        PARTITION BY toYYYYMM(timestamp)
        ORDER BY (team_id, toDate(timestamp), event, cityHash64(distinct_id), cityHash64(uuid))
    """


def person_ddl(database: str) -> str:
    return f"""
        CREATE TABLE IF NOT EXISTS {database}.{PERSON_TABLE} (
            team_id Int64,
            distinct_id String,
            properties String,
            version UInt64,
            created_at DateTime64(6, 'UTC')
        )
        ENGINE = ReplacingMergeTree(version)
        ORDER BY (team_id, distinct_id)
    """


async def create_tables(client: ClickHouse) -> None:
    await client.command(events_ddl(client.database))
    await client.command(person_ddl(client.database))
