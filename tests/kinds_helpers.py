"""Helpers shared by the retention, lifecycle and stickiness tests (no tests here): events put in through the
capture API, queries run through `POST /query/`, team settings changed through the API."""

from datetime import datetime
from typing import Any

import httpx

from tests.events import event, ingest
from tests.factories import Actor
from tests.trends_helpers import post_query


def insight(kind: str, **source: Any) -> dict[str, Any]:
    return {"kind": "InsightVizNode", "source": {"kind": kind, **source}}


def pageview(distinct_id: str, at: datetime | str, **properties: Any) -> dict[str, Any]:
    return event("$pageview", distinct_id, at, properties)


async def put(client: httpx.AsyncClient, actor: Actor, *events: dict[str, Any]) -> None:
    await ingest(client, actor, list(events))


async def query(client: httpx.AsyncClient, actor: Actor, kind: str, **source: Any) -> dict[str, Any]:
    """The whole response body of a query of `kind` (wrapped in an InsightVizNode), which must succeed."""
    response = await post_query(client, actor, insight(kind, **source))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def refused(client: httpx.AsyncClient, actor: Actor, kind: str, **source: Any) -> dict[str, Any]:
    """The 400 body of a query of `kind` that must be refused."""
    response = await post_query(client, actor, insight(kind, **source))
    assert response.status_code == 400, response.text
    body: dict[str, Any] = response.json()
    return body


async def team_settings(client: httpx.AsyncClient, actor: Actor, **settings: Any) -> None:
    response = await client.patch(f"/api/projects/{actor.team.id}/", json=settings, headers=actor.headers)
    assert response.status_code == 200, response.text


def days(date_from: str, date_to: str) -> dict[str, Any]:
    return {"date_from": date_from, "date_to": date_to}
