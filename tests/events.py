"""Sending events through the capture API, as PostHog's SDKs do (the way every test puts events in)."""

import uuid
from datetime import datetime
from typing import Any

import httpx

from tests.factories import Actor


def event(
    name: str,
    distinct_id: str,
    timestamp: datetime | str,
    properties: dict[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    return {
        "event": name,
        "distinct_id": distinct_id,
        "timestamp": timestamp if isinstance(timestamp, str) else timestamp.isoformat(),
        "properties": properties or {},
        "uuid": str(uuid.uuid4()),
        **extra,
    }


async def ingest(client: httpx.AsyncClient, actor: Actor, events: list[dict[str, Any]]) -> None:
    """POST a `batch` envelope to `/batch/` with the team's project key; fails the test unless accepted."""
    response = await client.post("/batch/", json={"api_key": actor.team.api_token, "batch": events})
    assert response.status_code == 200, response.text
