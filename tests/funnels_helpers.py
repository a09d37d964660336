"""Helpers shared by the funnel tests (no tests here): run a FunnelsQuery through `POST /query/`."""

from typing import Any

import httpx

from tests.factories import Actor
from tests.trends_helpers import post_query


def step(event: str | None, **fields: Any) -> dict[str, Any]:
    return {"kind": "EventsNode", "event": event, "name": event, **fields}


def funnel_query(
    *steps: dict[str, Any], funnels_filter: dict[str, Any] | None = None, **source: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {"kind": "FunnelsQuery", "series": list(steps), **source}
    if funnels_filter is not None:
        body["funnelsFilter"] = funnels_filter
    return {"kind": "InsightVizNode", "source": body}


async def funnel(client: httpx.AsyncClient, actor: Actor, *steps: dict[str, Any], **source: Any) -> Any:
    """The `results` of a FunnelsQuery (wrapped in an InsightVizNode)."""
    response = await post_query(client, actor, funnel_query(*steps, **source))
    assert response.status_code == 200, response.text
    return response.json()["results"]


async def refused(
    client: httpx.AsyncClient, actor: Actor, *steps: dict[str, Any], **source: Any
) -> dict[str, Any]:
    response = await post_query(client, actor, funnel_query(*steps, **source))
    assert response.status_code == 400, response.text
    body: dict[str, Any] = response.json()
    return body


def counts(results: list[dict[str, Any]]) -> list[int]:
    return [s["count"] for s in results]
