"""StickinessQuery on hand-built events, worked out by hand (insight-kinds §4), through `POST /query/`."""

from typing import Any

import httpx

from tests.events import event
from tests.factories import Actor
from tests.kinds_helpers import days, pageview, put, query, refused


def node(event_name: str | None = "$pageview", **fields: Any) -> dict[str, Any]:
    return {"kind": "EventsNode", "event": event_name, "name": event_name, **fields}


async def _worked_example(client: httpx.AsyncClient, actor: Actor) -> None:
    """§4.4: a active on Jan 1, 2 and 4 (two pageviews on Jan 1); b on Jan 1; c on Jan 2 and 3."""
    await put(
        client,
        actor,
        pageview("a", "2024-01-01T09:00:00Z"),
        pageview("a", "2024-01-01T10:00:00Z"),
        pageview("a", "2024-01-02T10:00:00Z"),
        pageview("a", "2024-01-04T10:00:00Z"),
        pageview("b", "2024-01-01T10:00:00Z"),
        pageview("c", "2024-01-02T10:00:00Z"),
        pageview("c", "2024-01-03T10:00:00Z"),
        event("other", "d", "2024-01-03T10:00:00Z"),
    )


async def test_worked_example_field_by_field(client: httpx.AsyncClient, actor: Actor) -> None:
    await _worked_example(client, actor)
    body = await query(
        client,
        actor,
        "StickinessQuery",
        series=[node()],
        interval="day",
        dateRange=days("2024-01-01", "2024-01-05"),
    )
    assert body["results"] == [
        {
            "count": 3,
            "data": [1, 1, 1, 0, 0],
            "days": [1, 2, 3, 4, 5],
            "labels": ["1 day", "2 days", "3 days", "4 days", "5 days"],
            "label": "$pageview",
            "action": {
                "order": 0,
                "type": "events",
                "name": "$pageview",
                "id": "$pageview",
                "custom_name": None,
            },
        }
    ]


async def test_cumulative_and_criteria(client: httpx.AsyncClient, actor: Actor) -> None:
    await _worked_example(client, actor)
    cumulative = await query(
        client,
        actor,
        "StickinessQuery",
        series=[node()],
        dateRange=days("2024-01-01", "2024-01-05"),
        stickinessFilter={"computedAs": "cumulative"},
    )
    (result,) = cumulative["results"]
    assert result["data"] == [3, 2, 1, 0, 0] and result["count"] == 3
    assert result["labels"] == [
        "1 day or more",
        "2 days or more",
        "3 days or more",
        "4 days or more",
        "5 days or more",
    ]
    # Only days with at least 2 pageviews count: a on Jan 1 alone.
    criteria = await query(
        client,
        actor,
        "StickinessQuery",
        series=[node()],
        dateRange=days("2024-01-01", "2024-01-05"),
        stickinessFilter={"stickinessCriteria": {"operator": "gte", "value": 2}},
    )
    assert criteria["results"][0]["data"] == [1, 0, 0, 0, 0] and criteria["results"][0]["count"] == 1
    # At most 1 pageview: a's Jan 2 and Jan 4, b's Jan 1, c's Jan 2 and 3.
    at_most = await query(
        client,
        actor,
        "StickinessQuery",
        series=[node()],
        dateRange=days("2024-01-01", "2024-01-05"),
        stickinessFilter={"stickinessCriteria": {"operator": "lte", "value": 1}},
    )
    assert at_most["results"][0]["data"] == [1, 2, 0, 0, 0]
    exact = await query(
        client,
        actor,
        "StickinessQuery",
        series=[node()],
        dateRange=days("2024-01-01", "2024-01-05"),
        stickinessFilter={"stickinessCriteria": {"operator": "exact", "value": 1}},
    )
    assert exact["results"][0]["data"] == [1, 2, 0, 0, 0]
