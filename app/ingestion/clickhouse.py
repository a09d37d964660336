"""Capture into ClickHouse (`TILECAST_EVENTS_BACKEND=clickhouse`): the events of a request go to ClickHouse in
one insert; the project key, the rate limit, person properties and definitions stay in PostgreSQL, as on the
PostgreSQL backend.

A request is answered 200 only once ClickHouse has accepted its insert; when ClickHouse fails, the request
is a 503 (PostgreSQL's transaction rolls back) and the SDK retries, so no acknowledged event is lost.

ClickHouse has no unique key, so duplicates are removed before the insert, by (team_id, uuid), the first
copy winning as in PostgreSQL: within the request, then against the team's stored events (a retried request
whose first attempt was stored but not acknowledged). Two requests carrying the same uuid must not both
pass that check: a team's captures take a PostgreSQL advisory lock on the team for the rest of their
transaction, held from before the check until after the insert (and the commit), whichever worker or host
serves them. One team's inserts into ClickHouse are therefore one at a time (see docs/clickhouse.md).

Persons: after PostgreSQL merged a request's `$set`/`$set_once`, the merged properties are written to
ClickHouse's `person` table too, versioned by PostgreSQL's clock read under the team's lock (a later write
of a person has a larger version), so readers take `argMax(properties, version)`.
"""

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.clickhouse.client import ClickHouse, ClickHouseError
from app.clickhouse.schema import EVENTS_TABLE, PERSON_TABLE
from app.ingestion import repository
from app.ingestion.definitions import NewDefinitions
from app.ingestion.errors import CaptureError
from app.ingestion.repository import NewEvent, PersonUpdate, Stored

logger = logging.getLogger("tilecast.capture")

# Advisory locks keyed (namespace, team id): the two-integer key space, apart from the one-bigint keys.
CAPTURE_LOCK_NAMESPACE = 0x74637074  # "tcpt"

EVENT_COLUMNS = ("team_id", "uuid", "event", "distinct_id", "timestamp", "properties")
PERSON_COLUMNS = ("team_id", "distinct_id", "properties", "version", "created_at")

_LOCK_TEAM = text("SELECT pg_advisory_xact_lock(:namespace, :team)").bindparams(
    namespace=CAPTURE_LOCK_NAMESPACE
)
# Read after the capture statement merged the request's properties, in its transaction, under the team's lock.
_MERGED_PERSONS = text(
    "SELECT distinct_id, CAST(properties AS text), created_at,"
    " CAST(floor(extract(epoch FROM clock_timestamp()) * 1000000) AS bigint)"
    " FROM person WHERE team_id = :team AND distinct_id = ANY(:ids)"
)


async def lock_team(session: AsyncSession, team_id: int) -> None:
    """Take the team's capture lock until the transaction ends (waiting for the request holding it)."""
    await session.execute(_LOCK_TEAM, {"team": team_id})


async def merged_persons(
    session: AsyncSession, team_id: int, persons: Sequence[PersonUpdate]
) -> list[tuple[int, str, str, int, datetime]]:
    """The `person` rows for ClickHouse: each distinct id's properties as PostgreSQL now holds them."""
    ids = [person.distinct_id for person in persons]
    rows = (await session.execute(_MERGED_PERSONS, {"team": team_id, "ids": ids})).all()
    return [(team_id, row[0], row[1], int(row[3]), row[2]) for row in rows]


def first_copies(events: Sequence[NewEvent]) -> list[NewEvent]:
    """The events without later copies of a uuid seen earlier in the request."""
    seen: set[Any] = set()
    kept = []
    for event in events:
        if event.uuid not in seen:
            seen.add(event.uuid)
            kept.append(event)
    return kept


async def stored_uuids(client: ClickHouse, team_id: int, uuids: Sequence[str]) -> set[str]:
    """Which of these uuids the team's stored events hold already."""
    if not uuids:
        return set()
    rows = await client.query(
        f"SELECT DISTINCT toString(uuid) FROM {client.database}.{EVENTS_TABLE}"
        " WHERE team_id = {team:Int64} AND uuid IN {uuids:Array(UUID)}",
        {"team": team_id, "uuids": list(uuids)},
    )
    return {row[0] for row in rows}


async def insert_new_events(client: ClickHouse, team_id: int, events: Sequence[NewEvent]) -> int:
    """Insert the events whose uuid the team does not hold yet (first copies only); returns how many.
    The caller serialises a team's calls (`lock_team`)."""
    unique = first_copies(events)
    texts = [str(event.uuid) for event in unique]
    known = await stored_uuids(client, team_id, texts)
    rows = [
        (team_id, uuid_text, event.event, event.distinct_id, event.timestamp, event.properties_json)
        for event, uuid_text in zip(unique, texts, strict=True)
        if uuid_text not in known
    ]
    await client.insert(f"{client.database}.{EVENTS_TABLE}", EVENT_COLUMNS, rows)
    return len(rows)


async def capture(
    session: AsyncSession,
    client: ClickHouse,
    token: str,
    events: Sequence[NewEvent],
    persons: Sequence[PersonUpdate],
    rate_limit: int,
    definitions: NewDefinitions | None,
) -> Stored | None:
    """Store a request's events in ClickHouse and the rest in PostgreSQL; None for an unknown project key.
    Over the rate limit, nothing goes to ClickHouse (the caller refuses the request and rolls back)."""
    stored = await repository.insert_events_for_token(
        session, token, (), persons, rate_limit, definitions, count=len(events)
    )
    if stored is None or (rate_limit and stored.events_this_minute > rate_limit):
        return stored
    # Taken after PostgreSQL's part (persons, definitions, the rate limit's counter): the lock is held only
    # for the check and insert below. A request holding it has no row lock left to take, so none waits in
    # a cycle; and a later update of a person (waiting on its row lock until this request commits) reads
    # its version after this one's.
    team_id = stored.team_id
    await lock_team(session, team_id)
    person_rows = await merged_persons(session, team_id, persons) if persons else []
    try:
        await insert_new_events(client, team_id, events)
        await client.insert(f"{client.database}.{PERSON_TABLE}", PERSON_COLUMNS, person_rows)
    except ClickHouseError as exc:
        logger.warning("ClickHouse refused a capture insert (code %s): %s", exc.code, str(exc)[:300])
        raise CaptureError(503, "transient error, please retry", headers={"Retry-After": "2"}) from None
    return stored
