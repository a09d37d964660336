"""Helpers shared by the trends tests (no tests here): run a TrendsQuery through `POST /query/`.

Events go in through the capture API (`tests.events.ingest`); results come back through HTTP, exactly as a
PostHog client sees them.
"""

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from tests.factories import Actor


def node(event: str | None = "$pageview", **fields: Any) -> dict[str, Any]:
    return {"kind": "EventsNode", "event": event, **fields}


def trends_query(*series: dict[str, Any], **source: Any) -> dict[str, Any]:
    return {"kind": "InsightVizNode", "source": {"kind": "TrendsQuery", "series": list(series), **source}}


async def post_query(client: httpx.AsyncClient, actor: Actor, query: dict[str, Any]) -> httpx.Response:
    return await client.post(
        actor.url("query/"), json={"query": query, "refresh": "force_blocking"}, headers=actor.headers
    )


async def run(
    client: httpx.AsyncClient, actor: Actor, *series: dict[str, Any], **source: Any
) -> dict[str, Any]:
    """Run a TrendsQuery (wrapped in an InsightVizNode) and return the whole response body."""
    response = await post_query(client, actor, trends_query(*series, **source))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def results(
    client: httpx.AsyncClient, actor: Actor, *series: dict[str, Any], **source: Any
) -> list[Any]:
    body = await run(client, actor, *series, **source)
    out: list[Any] = body["results"]
    return out


async def error(client: httpx.AsyncClient, actor: Actor, query: dict[str, Any]) -> dict[str, Any]:
    """Run a query that must be refused; return the 400 body."""
    response = await post_query(client, actor, query)
    assert response.status_code == 400, response.text
    body: dict[str, Any] = response.json()
    return body


def data(series_results: list[dict[str, Any]]) -> list[list[Any]]:
    return [item["data"] for item in series_results]


async def set_timezone(db: AsyncSession, actor: Actor, timezone: str) -> None:
    actor.team.timezone = timezone
    await db.commit()


def absolute(date_from: str, date_to: str, **extra: Any) -> dict[str, Any]:
    return {"dateRange": {"date_from": date_from, "date_to": date_to, **extra}}


async def steady_now(timezone: str = "UTC") -> datetime:
    """Now in `timezone`, at least a few seconds away from the next hour (so from the next day too): tests
    with relative ranges compute their expected buckets from this clock, and the server reads its own a
    moment later."""
    tz = ZoneInfo(timezone)
    now = datetime.now(tz)
    next_hour = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    if (next_hour - now).total_seconds() < 5:
        await asyncio.sleep((next_hour - now).total_seconds() + 0.5)
        now = datetime.now(tz)
    return now


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]
