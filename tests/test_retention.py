"""RetentionQuery on hand-built events, worked out by hand (insight-kinds §2), through `POST /query/`."""

from typing import Any

import httpx

from tests.events import event
from tests.factories import Actor
from tests.kinds_helpers import days, pageview, put, query, refused, team_settings


def retention(**fields: Any) -> dict[str, Any]:
    return {"period": "Day", "totalIntervals": 4, **fields}


def matrix(body: dict[str, Any]) -> list[list[int]]:
    return [[value["count"] for value in row["values"]] for row in body["results"]]


async def _worked_example(client: httpx.AsyncClient, actor: Actor) -> None:
    """§2.4: a on Jan 1, 2 and 4; b on Jan 1 and 3; c on Jan 2 and 3."""
    visits = {"a": (1, 2, 4), "b": (1, 3), "c": (2, 3)}
    await put(
        client,
        actor,
        *(pageview(who, f"2024-01-0{day}T12:00:00Z") for who, on in visits.items() for day in on),
    )


async def test_worked_example_recurring_field_by_field(client: httpx.AsyncClient, actor: Actor) -> None:
    await _worked_example(client, actor)
    body = await query(
        client,
        actor,
        "RetentionQuery",
        dateRange=days("2024-01-01", "2024-01-04"),
        retentionFilter=retention(),
    )
    assert body["results"][0] == {
        "values": [
            {"count": 2, "label": "Day 0"},
            {"count": 1, "label": "Day 1"},
            {"count": 1, "label": "Day 2"},
            {"count": 1, "label": "Day 3"},
        ],
        "label": "Day 0",
        "date": "2024-01-01T00:00:00Z",
        "breakdown_value": None,
    }
    assert matrix(body) == [[2, 1, 1, 1], [2, 1, 1, 0], [2, 0, 0, 0], [1, 0, 0, 0]]
    assert [row["label"] for row in body["results"]] == ["Day 0", "Day 1", "Day 2", "Day 3"]
    assert [row["date"][:10] for row in body["results"]] == [f"2024-01-0{d}" for d in range(1, 5)]
    assert body["is_cached"] is False and "cache_key" in body


async def test_worked_example_first_time_and_cumulative(client: httpx.AsyncClient, actor: Actor) -> None:
    await _worked_example(client, actor)
    first_time = await query(
        client,
        actor,
        "RetentionQuery",
        dateRange=days("2024-01-01", "2024-01-04"),
        retentionFilter=retention(retentionType="retention_first_time"),
    )
    assert matrix(first_time) == [[2, 1, 1, 1], [1, 1, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]
    cumulative = await query(
        client,
        actor,
        "RetentionQuery",
        dateRange=days("2024-01-01", "2024-01-04"),
        retentionFilter=retention(cumulative=True),
    )
    assert matrix(cumulative) == [[2, 2, 2, 1], [2, 2, 1, 0], [2, 0, 0, 0], [1, 0, 0, 0]]
