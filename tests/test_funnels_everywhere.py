"""Funnels wherever a query goes: saved insights (`result`), dashboard tiles (dashboard filters applied), the
plain-text rendering (one line per funnel with each step's conversion), and the query endpoint's cache."""

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.events import event, ingest
from tests.factories import Actor
from tests.funnels_helpers import funnel_query, step
from tests.test_dashboard_tiles import dashboard, insight_on, tiles
from tests.trends_helpers import post_query

pytestmark = pytest.mark.both_backends

STEPS = (step("signup"), step("view"), step("buy"))


@pytest.fixture
async def recent(client: httpx.AsyncClient, actor: Actor) -> None:
    """Two days ago: 3 sign-ups (Chrome, Chrome, Safari), 2 views an hour later, 1 purchase the next hour."""
    start = (datetime.now(UTC) - timedelta(days=2)).replace(hour=10, minute=0, second=0, microsecond=0)
    batch = []
    for i, browser in enumerate(["Chrome", "Chrome", "Safari"]):
        batch.append(event("signup", f"u{i}", start, {"$browser": browser}))
    for i in range(2):
        batch.append(event("view", f"u{i}", start + timedelta(hours=1), {"$browser": "Chrome"}))
    batch.append(event("buy", "u0", start + timedelta(hours=2), {"$browser": "Chrome"}))
    await ingest(client, actor, batch)


async def test_insight_result_is_posthogs_funnel(
    client: httpx.AsyncClient, actor: Actor, recent: None
) -> None:
    query = funnel_query(*STEPS, dateRange={"date_from": "-7d"})
    response = await client.post(
        actor.url("insights/"), json={"name": "Funnel", "query": query}, headers=actor.headers
    )
    assert response.status_code == 201, response.text
    insight_id = response.json()["id"]
    response = await client.get(
        actor.url(f"insights/{insight_id}/"), params={"refresh": "blocking"}, headers=actor.headers
    )
    assert response.status_code == 200, response.text
    result = response.json()["result"]
    assert [(s["action_id"], s["order"], s["count"]) for s in result] == [
        ("signup", 0, 3),
        ("view", 1, 2),
        ("buy", 2, 1),
    ]
    assert result[1]["average_conversion_time"] == 3600.0 and result[2]["median_conversion_time"] == 3600.0


async def test_tile_and_txt(client: httpx.AsyncClient, actor: Actor, recent: None) -> None:
    board = await dashboard(client, actor, description="Growth")
    await insight_on(
        client, actor, board, funnel_query(*STEPS, dateRange={"date_from": "-7d"}), name="Signup funnel"
    )
    [tile] = await tiles(client, actor, board, refresh="blocking")
    assert "error" not in tile
    assert [s["count"] for s in tile["insight"]["result"]] == [3, 2, 1]
    response = await client.get(
        actor.url(f"dashboards/{board}/"), params={"format": "txt"}, headers=actor.headers
    )
    assert response.status_code == 200
    assert "Signup funnel: signup 3 \u2192 view 2 (66.7%) \u2192 buy 1 (33.3%)" in response.text.splitlines()


async def test_dashboard_filters_apply_to_funnel_tiles(
    client: httpx.AsyncClient, actor: Actor, recent: None
) -> None:
    # The dashboard's date range (today only) leaves no events; its breakdown replaces the query's.
    board = await dashboard(client, actor, filters={"date_from": "-1d", "date_to": "-1d"})
    await insight_on(client, actor, board, funnel_query(*STEPS, dateRange={"date_from": "-7d"}), name="F")
    [tile] = await tiles(client, actor, board, refresh="blocking")
    assert tile["insight"]["result"] == []
    other = await dashboard(client, actor, filters={"breakdown_filter": {"breakdown": "$browser"}})
    await insight_on(client, actor, other, funnel_query(*STEPS, dateRange={"date_from": "-7d"}), name="G")
    [tile] = await tiles(client, actor, other, refresh="blocking")
    result: list[list[dict[str, Any]]] = tile["insight"]["result"]
    assert [(g[0]["breakdown_value"], [s["count"] for s in g]) for g in result] == [
        (["Chrome"], [2, 2, 1]),
        (["Safari"], [1, 0, 0]),
    ]
    response = await client.get(
        actor.url(f"dashboards/{other}/"), params={"format": "txt"}, headers=actor.headers
    )
    assert (
        "G: Chrome: signup 2 \u2192 view 2 (100.0%) \u2192 buy 1 (50.0%); "
        "Safari: signup 1 \u2192 view 0 (0.0%) \u2192 buy 0 (0.0%)"
    ) in response.text.splitlines()


async def test_unsupported_funnel_field_is_the_tiles_error(client: httpx.AsyncClient, actor: Actor) -> None:
    board = await dashboard(client, actor)
    query = funnel_query(*STEPS, funnelsFilter={"funnelAggregateByHogQL": "properties.$session_id"})
    await insight_on(client, actor, board, query, name="F")
    [tile] = await tiles(client, actor, board, refresh="blocking")
    assert tile["error"]["type"] == "UnsupportedQuery"
    assert "funnelAggregateByHogQL" in tile["error"]["message"]


async def test_query_endpoint_caches_funnels(client: httpx.AsyncClient, actor: Actor, recent: None) -> None:
    query = funnel_query(
        *STEPS, dateRange={"date_from": "-7d"}, funnelsFilter={"funnelVizType": "time_to_convert"}
    )
    first = await post_query(client, actor, query)
    assert first.status_code == 200, first.text
    assert first.json()["results"]["average_conversion_time"] == 7200.0
    response = await client.post(
        actor.url("query/"), json={"query": query, "refresh": "blocking"}, headers=actor.headers
    )
    body = response.json()
    assert body["is_cached"] is True and body["results"] == first.json()["results"]


async def test_saving_an_invalid_funnel_is_refused(client: httpx.AsyncClient, actor: Actor) -> None:
    query = funnel_query(step("a"))
    response = await client.post(
        actor.url("insights/"), json={"name": "x", "query": query}, headers=actor.headers
    )
    assert response.status_code == 400, response.text
    assert response.json()["attr"] == "query__source__series"


async def test_txt_of_funnel_trends_and_time_to_convert(
    client: httpx.AsyncClient, actor: Actor, recent: None
) -> None:
    board = await dashboard(client, actor)
    trends = funnel_query(*STEPS, dateRange={"date_from": "-7d"}, funnelsFilter={"funnelVizType": "trends"})
    await insight_on(client, actor, board, trends, name="Over time")
    ttc = funnel_query(
        *STEPS, dateRange={"date_from": "-7d"}, funnelsFilter={"funnelVizType": "time_to_convert"}
    )
    await insight_on(client, actor, board, ttc, name="Time")
    await tiles(client, actor, board, refresh="blocking")
    response = await client.get(
        actor.url(f"dashboards/{board}/"), params={"format": "txt"}, headers=actor.headers
    )
    lines = response.text.splitlines()
    # Today nobody entered the funnel: the latest period's conversion is 0.
    assert "Over time: conversion 0.0%" in lines
    assert "Time: time to convert: average 7200 s" in lines
