"""Writing events: one statement per request finds the team by its project key and inserts every event."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple
from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

# The team lookup and the insert travel together: a request costs one round trip, however many events it
# carries (unnest() over parallel arrays). An unknown key selects no team, so nothing is inserted and the
# statement returns no row. A uuid already stored for the team (a retried request) is skipped, which makes
# retries idempotent.
_INSERT_ROWS = """
        INSERT INTO events (team_id, uuid, event, distinct_id, timestamp, properties)
        SELECT t.id, rows.u, rows.e, rows.d, rows.ts, CAST(rows.p AS jsonb)
        FROM {source}, unnest(
            CAST(:uuids AS uuid[]), CAST(:events AS text[]), CAST(:distinct_ids AS text[]),
            CAST(:timestamps AS timestamptz[]), CAST(:properties AS text[])
        ) AS rows(u, e, d, ts, p)
        {condition}
        ON CONFLICT (team_id, uuid) DO NOTHING
"""
_CAPTURE = text(
    f"""
    WITH t AS (SELECT id FROM team WHERE api_token = :token),
    inserted AS ({_INSERT_ROWS.format(source="t", condition="")})
    SELECT id, 0 FROM t
    """
)
# With a rate limit: the team's count for this minute grows by the request's events (a new minute restarts
# it), and the events are inserted only if the count stays within the limit. Over it, the caller rolls the
# transaction back, so refused events are not counted. The counter's row lock is held until the commit that
# follows at once: one team's requests serialise only for that moment.
_CAPTURE_COUNTED = text(
    f"""
    WITH team_row AS (SELECT id FROM team WHERE api_token = :token),
    counted AS (
        INSERT INTO capture_rate_limit AS r (team_id, window_start, events)
        SELECT id, date_trunc('minute', now()), :n FROM team_row
        ON CONFLICT (team_id) DO UPDATE SET
            events = CASE WHEN r.window_start = excluded.window_start
                          THEN r.events + excluded.events ELSE excluded.events END,
            window_start = excluded.window_start
        RETURNING r.team_id AS id, r.events
    ),
    inserted AS ({_INSERT_ROWS.format(source="counted t", condition="WHERE t.events <= :limit")})
    SELECT id, events FROM counted
    """
)


class NewEvent(NamedTuple):
    """One row to store. A tuple: capture builds a hundred per request, and a tuple is the cheapest record
    to build and to turn into the insert's columns (`zip(*events)`)."""

    uuid: UUID
    event: str
    distinct_id: str
    timestamp: datetime
    # Already serialised JSON, cleaned of what jsonb refuses (NUL, lone surrogates).
    properties_json: str


@dataclass(frozen=True, slots=True)
class Stored:
    team_id: int
    # Events the team sent this minute, this request's included (0 when capture is not rate limited).
    events_this_minute: int


async def insert_events_for_token(
    session: AsyncSession, token: str, events: Sequence[NewEvent], rate_limit: int = 0
) -> Stored | None:
    """Store `events` for the team whose project API key is `token`, or None if no team has this key (then
    nothing was stored). With a `rate_limit` (events a minute), nothing is stored once the count passes it."""
    uuids, names, distinct_ids, timestamps, properties = zip(*events, strict=True) if events else ((),) * 5
    params = {
        "token": token,
        "uuids": uuids,
        "events": names,
        "distinct_ids": distinct_ids,
        "timestamps": timestamps,
        "properties": properties,
    }
    if rate_limit:
        result = await session.execute(_CAPTURE_COUNTED, {**params, "n": len(events), "limit": rate_limit})
    else:
        result = await session.execute(_CAPTURE, params)
    row = result.one_or_none()
    return None if row is None else Stored(team_id=row[0], events_this_minute=row[1])
