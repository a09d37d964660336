"""`tilecast migrate-events --to clickhouse`: PostgreSQL's events copied into ClickHouse, every one once, even
when a run is interrupted (between chunks, or between a chunk's insert and its progress record) or killed.

The interrupted copy holds 100,000 events by default (a few seconds); TILECAST_TEST_MIGRATE_EVENTS=1000000
runs it on a million (the other tests keep 100,000).
"""

import json
import os
import signal
import subprocess
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest

from app.clickhouse.client import ChdbClient
from app.clickhouse.migrate_events import Progress, Stop, copy_events, counts
from app.db import async_url, create_engine
from tests.conftest import FreshDatabases
from tests.factories import make_actor
from tests.live import TILECAST, env_without_database

SMALL = 100_000
EVENTS = int(os.environ.get("TILECAST_TEST_MIGRATE_EVENTS", str(SMALL)))

# Two teams' events, a second apart from 2026-01-01, in a few names, with their index in the properties.
_GENERATE = """
    INSERT INTO events (team_id, uuid, event, distinct_id, timestamp, properties)
    SELECT CASE WHEN i % 3 = 0 THEN $2::int ELSE $1::int END, gen_random_uuid(), 'event ' || (i % 7),
           'user ' || (i % 997), timestamptz '2026-01-01 00:00:00+00' + i * interval '1 second',
           jsonb_build_object('i', i, 'name', 'n' || i, 'nested', jsonb_build_object('k', i % 5))
    FROM generate_series(1, $3::int) AS i
"""


async def _teams(url: str) -> tuple[int, int]:
    from app.config import get_settings
    from app.db import create_sessionmaker

    engine = create_engine(url, get_settings())
    try:
        async with create_sessionmaker(engine)() as session:
            first = await make_actor(session)
            second = await make_actor(session)
            return first.team.id, second.team.id
    finally:
        await engine.dispose()


def _dsn(url: str) -> str:
    return async_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture
def source_url(fresh_databases: FreshDatabases) -> str:
    return fresh_databases.create()


Source = tuple[str, asyncpg.Connection, tuple[int, int]]


@pytest.fixture
async def source(source_url: str, request: pytest.FixtureRequest) -> AsyncIterator[Source]:
    """A committed database holding SMALL events (or the `source` parameter's number) of two teams, and
    three persons."""
    url = source_url
    teams = await _teams(url)
    conn = await asyncpg.connect(_dsn(url))
    await conn.execute(_GENERATE, teams[0], teams[1], getattr(request, "param", SMALL))
    await conn.execute(
        "INSERT INTO person (team_id, distinct_id, properties) VALUES"
        " ($1, 'user 1', '{\"plan\": \"pro\"}'), ($1, 'user 2', '{}'), ($2, 'user 3', '{\"a\": 1}')",
        *teams,
    )
    await conn.execute("ANALYZE events")
    try:
        yield url, conn, teams
    finally:
        await conn.close()


async def _per_team(client: ChdbClient) -> dict[int, int]:
    rows = await client.query(f"SELECT team_id, count() FROM {client.database}.events GROUP BY team_id")
    return {int(team): int(n) for team, n in rows}


@pytest.mark.parametrize("source", [EVENTS], indirect=True)
async def test_a_copy_interrupted_twice_ends_with_every_event_once(
    source: Source, clickhouse: ChdbClient
) -> None:
    _, postgres, teams = source
    chunk = max(EVENTS // 10, 1)

    def stop_after_two_chunks(progress: Progress) -> None:
        if progress.chunks == 2:
            raise Stop

    with pytest.raises(Stop):
        await copy_events(postgres, clickhouse, chunk_size=chunk, report=stop_after_two_chunks)
    assert (await counts(postgres, clickhouse, None))["events_in_clickhouse"] == 2 * chunk

    # Killed between a chunk's insert and its progress record: that chunk is in ClickHouse, unrecorded.
    def crash_after_inserting(progress: Progress) -> None:
        if progress.chunks == 2:
            raise Stop

    with pytest.raises(Stop):
        await copy_events(postgres, clickhouse, chunk_size=chunk, after_insert=crash_after_inserting)
    # Two chunks recorded, then three inserted, the third not recorded.
    assert (await counts(postgres, clickhouse, None))["events_in_clickhouse"] == 5 * chunk

    done = await copy_events(postgres, clickhouse, chunk_size=chunk)
    assert done.skipped == chunk  # the unrecorded chunk, read again, inserted no event twice
    assert done.resumed_after is not None
    assert done.persons == 3
    assert await counts(postgres, clickhouse, None) == {
        "events_in_postgres": EVENTS,
        "events_in_clickhouse": EVENTS,
        "duplicates_in_clickhouse": 0,
    }
    in_postgres = await postgres.fetch("SELECT team_id, count(*) FROM events GROUP BY team_id")
    assert await _per_team(clickhouse) == {row[0]: row[1] for row in in_postgres}
    assert set(await _per_team(clickhouse)) == set(teams)

    # Values are copied exactly.
    sample = await postgres.fetch(
        "SELECT team_id, uuid, event, distinct_id, timestamp, properties::text FROM events"
        " ORDER BY random() LIMIT 50"
    )
    for row in sample:
        stored = await clickhouse.query(
            f"SELECT event, distinct_id, timestamp, properties FROM {clickhouse.database}.events"
            " WHERE team_id = {team:Int64} AND uuid = {uuid:UUID}",
            {"team": row[0], "uuid": str(row[1])},
        )
        assert len(stored) == 1
        event, distinct_id, timestamp, properties = stored[0]
        assert (event, distinct_id, timestamp) == (row[2], row[3], row[4])
        assert json.loads(properties) == json.loads(row[5])

    persons = await clickhouse.query(
        f"SELECT team_id, distinct_id, argMax(properties, version) FROM {clickhouse.database}.person"
        " GROUP BY team_id, distinct_id ORDER BY team_id, distinct_id"
    )
    assert [(t, d, json.loads(p)) for t, d, p in persons] == [
        (teams[0], "user 1", {"plan": "pro"}),
        (teams[0], "user 2", {}),
        (teams[1], "user 3", {"a": 1}),
    ]

    # Events captured into PostgreSQL afterwards, whatever their keys (before the last copied one too): a
    # further run reads everything again and copies just them.
    await postgres.execute(
        "INSERT INTO events (team_id, uuid, event, distinct_id, timestamp, properties) VALUES"
        " ($1, '00000000-0000-4000-8000-000000000001', 'late', 'u', '2025-12-31', '{}'),"
        " ($2, 'ffffffff-ffff-4fff-bfff-ffffffffffff', 'late', 'u', '2026-06-01', '{}')",
        *teams,
    )
    again = await copy_events(postgres, clickhouse, chunk_size=chunk)
    assert again.resumed_after is None
    assert (again.inserted, again.skipped) == (2, EVENTS)
    assert await counts(postgres, clickhouse, None) == {
        "events_in_postgres": EVENTS + 2,
        "events_in_clickhouse": EVENTS + 2,
        "duplicates_in_clickhouse": 0,
    }


async def test_since_copies_only_the_later_events_and_skips_what_capture_stored(
    source: Source, clickhouse: ChdbClient
) -> None:
    _, postgres, _ = source
    since = datetime(2026, 1, 1, tzinfo=UTC).replace(second=0) + (SMALL // 2) * (
        datetime(2026, 1, 1, 0, 0, 1, tzinfo=UTC) - datetime(2026, 1, 1, tzinfo=UTC)
    )
    later = await postgres.fetchval("SELECT count(*) FROM events WHERE timestamp >= $1", since)
    # One of them already reached ClickHouse (a capture that went to both stores).
    one = await postgres.fetchrow(
        "SELECT team_id, uuid::text, event, distinct_id, timestamp, properties::text FROM events"
        " WHERE timestamp >= $1 LIMIT 1",
        since,
    )
    await clickhouse.insert(
        f"{clickhouse.database}.events",
        ("team_id", "uuid", "event", "distinct_id", "timestamp", "properties"),
        [tuple(one)],
    )
    done = await copy_events(postgres, clickhouse, since=since, chunk_size=max(SMALL // 7, 1))
    assert (done.inserted, done.skipped) == (later - 1, 1)
    assert await counts(postgres, clickhouse, since) == {
        "events_in_postgres": later,
        "events_in_clickhouse": later,
        "duplicates_in_clickhouse": 0,
    }
    earliest = await clickhouse.query(f"SELECT min(timestamp) FROM {clickhouse.database}.events")
    assert earliest[0][0] >= since


def _command(url: str, data: Path, chunk: int) -> tuple[list[str], dict[str, str]]:
    env = env_without_database(DATABASE_URL=url, TILECAST_DATA_DIR=str(data))
    env.pop("TILECAST_CLICKHOUSE_URL", None)
    return [TILECAST, "migrate-events", "--to", "clickhouse", "--chunk-size", str(chunk)], env


def test_the_command_killed_mid_copy_resumes_without_duplicates(source: Source, tmp_path: Path) -> None:
    url, _, _ = source
    chunk = max(SMALL // 20, 1)
    command, env = _command(url, tmp_path, chunk)
    log = tmp_path / "first.log"
    with log.open("w") as out:
        first = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        for _ in range(1200):  # until a few chunks are copied
            if "chunk 3:" in log.read_text():
                break
            if first.poll() is not None:
                break
            time.sleep(0.05)
        assert first.poll() is None, log.read_text()
        first.send_signal(signal.SIGKILL)
    finally:
        first.wait(timeout=30)

    second = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stderr
    assert "resuming the previous run" in second.stderr
    summary = json.loads(second.stdout)
    assert summary["events_in_postgres"] == SMALL
    assert summary["events_in_clickhouse"] == SMALL
    assert summary["duplicates_in_clickhouse"] == 0
    assert 0 < summary["copied"] < SMALL
    assert summary["persons"] == 3


def test_the_command_refuses_a_bad_chunk_size(tmp_path: Path) -> None:
    command, env = _command("postgresql://nobody@127.0.0.1:1/none", tmp_path, 0)
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "--chunk-size must be 1 or more" in result.stderr
