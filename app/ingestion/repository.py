"""Writing events: one statement per request finds the team by its project key and inserts every event."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

# The team lookup and the insert travel together: a request costs one round trip, however many events it
# carries (unnest() over parallel arrays). An unknown key selects no team, so nothing is inserted and the
# statement returns no row. A uuid already stored for the team (a retried request) is skipped, which makes
# retries idempotent.
_CAPTURE = text(
    """
    WITH t AS (SELECT id FROM team WHERE api_token = :token),
    inserted AS (
        INSERT INTO events (team_id, uuid, event, distinct_id, timestamp, properties)
        SELECT t.id, rows.u, rows.e, rows.d, rows.ts, CAST(rows.p AS jsonb)
        FROM t, unnest(
            CAST(:uuids AS uuid[]), CAST(:events AS text[]), CAST(:distinct_ids AS text[]),
            CAST(:timestamps AS timestamptz[]), CAST(:properties AS text[])
        ) AS rows(u, e, d, ts, p)
        ON CONFLICT (team_id, uuid) DO NOTHING
    )
    SELECT id FROM t
    """
)


@dataclass(frozen=True, slots=True)
class NewEvent:
    uuid: UUID
    event: str
    distinct_id: str
    timestamp: datetime
    # Already serialised JSON, cleaned of what jsonb refuses (NUL, lone surrogates).
    properties_json: str


async def insert_events_for_token(
    session: AsyncSession, token: str, events: Sequence[NewEvent]
) -> int | None:
    """Store `events` for the team whose project API key is `token`; that team's id, or None if no team
    has this key (then nothing was stored)."""
    result = await session.execute(
        _CAPTURE,
        {
            "token": token,
            "uuids": [e.uuid for e in events],
            "events": [e.event for e in events],
            "distinct_ids": [e.distinct_id for e in events],
            "timestamps": [e.timestamp for e in events],
            "properties": [e.properties_json for e in events],
        },
    )
    team_id: int | None = result.scalar_one_or_none()
    return team_id
