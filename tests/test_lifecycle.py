"""LifecycleQuery on hand-built events, worked out by hand (insight-kinds §3), through `POST /query/`."""

from typing import Any

import httpx

from tests.events import event
from tests.factories import Actor
from tests.kinds_helpers import days, pageview, put, query, refused, team_settings


def series(event_name: str | None = "$pageview", **fields: Any) -> list[dict[str, Any]]:
    return [{"kind": "EventsNode", "event": event_name, "name": event_name, **fields}]


def by_status(body: dict[str, Any]) -> dict[str, list[float]]:
    return {result["status"]: result["data"] for result in body["results"]}


async def test_worked_example_field_by_field(client: httpx.AsyncClient, actor: Actor) -> None:
    """§3.4: a created Jan 1 (pageviews Jan 1, 2, 4); b created 2023-12-20 by another event (pageview Jan 2);
    c created Jan 3 (pageviews Jan 3, 4)."""
    await put(
        client,
        actor,
        pageview("a", "2024-01-01T10:00:00Z"),
        pageview("a", "2024-01-02T10:00:00Z"),
        pageview("a", "2024-01-04T10:00:00Z"),
        event("signed_up", "b", "2023-12-20T10:00:00Z"),
        pageview("b", "2024-01-02T11:00:00Z"),
        pageview("c", "2024-01-03T10:00:00Z"),
        pageview("c", "2024-01-04T11:00:00Z"),
    )
    body = await query(
        client,
        actor,
        "LifecycleQuery",
        series=series(),
        interval="day",
        dateRange=days("2024-01-01", "2024-01-04"),
    )
    labels = ["1-Jan-2024", "2-Jan-2024", "3-Jan-2024", "4-Jan-2024"]
    day_keys = ["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04"]
    action = {"id": "$pageview", "name": "$pageview", "type": "events", "order": 0, "math": "total"}
    assert body["results"] == [
        {
            "action": action,
            "data": [1.0, 0.0, 1.0, 0.0],
            "count": 2.0,
            "labels": labels,
            "days": day_keys,
            "label": "$pageview - new",
            "status": "new",
        },
        {
            "action": action,
            "data": [0.0, 1.0, 0.0, 1.0],
            "count": 2.0,
            "labels": labels,
            "days": day_keys,
            "label": "$pageview - returning",
            "status": "returning",
        },
        {
            "action": action,
            "data": [0.0, 1.0, 0.0, 1.0],
            "count": 2.0,
            "labels": labels,
            "days": day_keys,
            "label": "$pageview - resurrecting",
            "status": "resurrecting",
        },
        {
            "action": action,
            "data": [0.0, 0.0, -2.0, 0.0],
            "count": -2.0,
            "labels": labels,
            "days": day_keys,
            "label": "$pageview - dormant",
            "status": "dormant",
        },
    ]
    assert body["resolved_date_range"] == {
        "date_from": "2024-01-01T00:00:00Z",
        "date_to": "2024-01-04T23:59:59.999Z",
    }
