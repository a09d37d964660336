"""`tilecast migrate-events --to clickhouse`: copy the events (and persons) PostgreSQL holds into ClickHouse,
for an installation moving its events to ClickHouse.

Events are read in chunks in their key order, `(team_id, uuid)` (the primary key's index: no sort, no
offset), each chunk inserted into ClickHouse and then its last key recorded (`tilecast_migrate_events`, in
ClickHouse), so a run that stops (interrupted, killed, ClickHouse away) resumes after the last recorded chunk.
A chunk inserted but not yet recorded is read again: its events are looked up in ClickHouse first, as
capture does, and only those missing are inserted, so nothing is ever copied twice. The same check skips
events capture already stored there (a retry that reached both stores).

A run that finished is recorded as done: the next one reads every event again (events captured into
PostgreSQL since may have any key) and copies only those ClickHouse lacks, which is how an installation
catches up after switching backends. `--since DATE` limits a run to events timed from then on (its own
progress record). Persons are copied whole at the end of every run (a newer version of a person replaces
an older one, so copying again is harmless).
"""

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import asyncpg

from app.clickhouse.client import ClickHouse
from app.clickhouse.schema import EVENTS_TABLE, PERSON_TABLE, PROGRESS_TABLE
from app.ingestion.clickhouse import stored_uuids

CHUNK_SIZE = 20_000
_NO_KEY = (0, UUID(int=0))  # before every key: team ids start at 1

_EVENTS_AFTER = """
    SELECT team_id, uuid, event, distinct_id, timestamp, CAST(properties AS text), inserted_at
    FROM events
    WHERE (team_id, uuid) > ($1, $2) AND ($3::timestamptz IS NULL OR timestamp >= $3)
    ORDER BY team_id, uuid
    LIMIT $4
"""
_PERSONS_AFTER = """
    SELECT team_id, distinct_id, CAST(properties AS text), created_at,
           CAST(floor(extract(epoch FROM updated_at) * 1000000) AS bigint)
    FROM person
    WHERE (team_id, distinct_id) > ($1, $2)
    ORDER BY team_id, distinct_id
    LIMIT $3
"""
EVENT_COLUMNS = ("team_id", "uuid", "event", "distinct_id", "timestamp", "properties", "inserted_at")
PERSON_COLUMNS = ("team_id", "distinct_id", "properties", "created_at", "version")


@dataclass
class Progress:
    """What a run did so far: events read from PostgreSQL in this run, inserted into ClickHouse, and
    skipped because ClickHouse held them already."""

    run: str
    read: int = 0
    inserted: int = 0
    skipped: int = 0
    chunks: int = 0
    resumed_after: tuple[int, str] | None = None
    persons: int = 0


class Stop(Exception):
    """Raised by a test's hook to stop a run where it stands (as an interruption would)."""


def run_key(since: datetime | None) -> str:
    return "since " + since.astimezone(UTC).isoformat() if since else "all"


async def resume_point(client: ClickHouse, since: datetime | None) -> tuple[int, UUID] | None:
    """Where an unfinished run for `since` stopped (None: the next run starts from the first event)."""
    return await _last_key(client, run_key(since))


async def _last_key(client: ClickHouse, run: str) -> tuple[int, UUID] | None:
    rows = await client.query(
        "SELECT argMax(team_id, recorded_at), argMax(uuid, recorded_at), argMax(done, recorded_at), count()"
        f" FROM {client.database}.{PROGRESS_TABLE} WHERE run = {{run:String}}",
        {"run": run},
    )
    if not rows or not rows[0][3] or rows[0][2]:
        return None
    return int(rows[0][0]), UUID(str(rows[0][1]))


async def _record(
    client: ClickHouse, run: str, key: tuple[int, UUID], copied: int, done: bool = False
) -> None:
    await client.insert(
        f"{client.database}.{PROGRESS_TABLE}",
        ("run", "team_id", "uuid", "copied", "done", "recorded_at"),
        [(run, key[0], str(key[1]), copied, int(done), datetime.now(UTC))],
    )


async def _insert_missing(client: ClickHouse, rows: list[Any]) -> int:
    """Insert the chunk's events ClickHouse does not hold yet; returns how many went in."""
    by_team: dict[int, list[Any]] = {}
    for row in rows:
        by_team.setdefault(row[0], []).append(row)
    missing: list[tuple[Any, ...]] = []
    for team_id, team_rows in by_team.items():
        texts = [str(row[1]) for row in team_rows]
        known = await stored_uuids(client, team_id, texts)
        missing.extend(
            (team_id, text, row[2], row[3], row[4], row[5], row[6])
            for row, text in zip(team_rows, texts, strict=True)
            if text not in known
        )
    await client.insert(f"{client.database}.{EVENTS_TABLE}", EVENT_COLUMNS, missing)
    return len(missing)


async def copy_events(
    postgres: asyncpg.Connection,
    client: ClickHouse,
    since: datetime | None = None,
    chunk_size: int = CHUNK_SIZE,
    report: Callable[[Progress], None] = lambda _: None,
    after_insert: Callable[[Progress], None] = lambda _: None,
) -> Progress:
    """Copy the events (resuming the run for `since` where it stopped), then the persons. `report` is
    called after each recorded chunk; `after_insert` between a chunk's insert and its record (tests stop a
    run there)."""
    progress = Progress(run_key(since))
    last = await _last_key(client, progress.run)
    if last is not None:
        progress.resumed_after = (last[0], str(last[1]))
    key = last or _NO_KEY
    while True:
        rows = await postgres.fetch(_EVENTS_AFTER, key[0], key[1], since, chunk_size)
        if not rows:
            break
        progress.read += len(rows)
        inserted = await _insert_missing(client, rows)
        progress.inserted += inserted
        progress.skipped += len(rows) - inserted
        after_insert(progress)
        key = (rows[-1][0], rows[-1][1])
        await _record(client, progress.run, key, progress.inserted)
        progress.chunks += 1
        report(progress)
        if len(rows) < chunk_size:
            break
    await _record(client, progress.run, key, progress.inserted, done=True)
    progress.persons = await copy_persons(postgres, client, chunk_size)
    return progress


async def copy_persons(postgres: asyncpg.Connection, client: ClickHouse, chunk_size: int = CHUNK_SIZE) -> int:
    """Every person, versioned by its last update (capture's later writes carry later versions)."""
    key: tuple[int, str] = (0, "")
    copied = 0
    while True:
        rows = await postgres.fetch(_PERSONS_AFTER, key[0], key[1], chunk_size)
        if not rows:
            return copied
        await client.insert(f"{client.database}.{PERSON_TABLE}", PERSON_COLUMNS, [tuple(row) for row in rows])
        copied += len(rows)
        key = (rows[-1][0], rows[-1][1])
        if len(rows) < chunk_size:
            return copied


async def counts(postgres: asyncpg.Connection, client: ClickHouse, since: datetime | None) -> dict[str, int]:
    """Events in PostgreSQL (from `since`) and in ClickHouse, and ClickHouse's events sharing a
    (team, uuid) with another (0 unless something went wrong)."""
    in_postgres = await postgres.fetchval(
        "SELECT count(*) FROM events WHERE $1::timestamptz IS NULL OR timestamp >= $1", since
    )
    rows = await client.query(
        f"SELECT count(), count() - uniqExact(team_id, uuid) FROM {client.database}.{EVENTS_TABLE}"
    )
    return {
        "events_in_postgres": int(in_postgres),
        "events_in_clickhouse": int(rows[0][0]),
        "duplicates_in_clickhouse": int(rows[0][1]),
    }


def describe_progress(progress: Progress, started: float) -> str:
    elapsed = max(time.monotonic() - started, 1e-9)
    return (
        f"chunk {progress.chunks}: {progress.read:,} events read, {progress.inserted:,} copied, "
        f"{progress.skipped:,} already there ({progress.read / elapsed:,.0f} events/s)"
    )
