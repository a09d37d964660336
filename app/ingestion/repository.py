"""Writing events: one statement per request, however many events it carries."""

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import Team

# unnest() over parallel arrays inserts every event of a request in one round trip; a uuid already stored
# for the team (a retried request) is skipped, so retries are idempotent.
_INSERT = text(
    """
    INSERT INTO events (team_id, uuid, event, distinct_id, timestamp, properties)
    SELECT :team_id, u, e, d, t, CAST(p AS jsonb)
    FROM unnest(
        CAST(:uuids AS uuid[]), CAST(:events AS text[]), CAST(:distinct_ids AS text[]),
        CAST(:timestamps AS timestamptz[]), CAST(:properties AS text[])
    ) AS rows(u, e, d, t, p)
    ON CONFLICT (team_id, uuid) DO NOTHING
    """
)


@dataclass(frozen=True)
class NewEvent:
    uuid: UUID
    event: str
    distinct_id: str
    timestamp: datetime
    properties: dict[str, Any]


async def get_team_by_token(session: AsyncSession, token: str) -> Team | None:
    return (await session.execute(select(Team).where(Team.api_token == token))).scalar_one_or_none()


async def insert_events(session: AsyncSession, team_id: int, events: Sequence[NewEvent]) -> None:
    if not events:
        return
    await session.execute(
        _INSERT,
        {
            "team_id": team_id,
            "uuids": [e.uuid for e in events],
            "events": [e.event for e in events],
            "distinct_ids": [e.distinct_id for e in events],
            "timestamps": [e.timestamp for e in events],
            "properties": [json.dumps(e.properties, separators=(",", ":")) for e in events],
        },
    )
