"""Retention, lifecycle and stickiness through everything the engine shares, on both events backends:
test-account and person filters, saved insights, dashboard tiles with dashboard filters, and `format=txt`."""

from typing import Any

import httpx
import pytest

from app.clickhouse.backend import SUPPORTED_KINDS
from tests.events import event
from tests.factories import Actor
from tests.kinds_helpers import days, insight, pageview, put, query, team_settings
from tests.resources import new_dashboard

pytestmark = pytest.mark.both_backends

PAGEVIEWS = [{"kind": "EventsNode", "event": "$pageview", "name": "$pageview"}]


async def _staff_and_user(client: httpx.AsyncClient, actor: Actor) -> None:
    """staff (email at tilecast.dev) and user (example.com): pageviews on Jan 1 and 2."""
    await put(
        client,
        actor,
        event("signed_up", "staff", "2024-01-01T09:00:00Z", {"$set": {"email": "me@tilecast.dev"}}),
        event("signed_up", "user", "2024-01-01T09:00:00Z", {"$set": {"email": "u@example.com"}}),
        *(pageview(who, f"2024-01-0{day}T10:00:00Z") for who in ("staff", "user") for day in (1, 2)),
    )


def _queries(events_backend: str, **extra: Any) -> dict[str, dict[str, Any]]:
    """The kinds' queries the events backend computes (on ClickHouse: each kind once it compiles there)."""
    jan = days("2024-01-01", "2024-01-02")
    queries = {
        "RetentionQuery": {"dateRange": jan, "retentionFilter": {"totalIntervals": 2}, **extra},
        "LifecycleQuery": {"series": PAGEVIEWS, "dateRange": jan, **extra},
        "StickinessQuery": {"series": PAGEVIEWS, "dateRange": jan, **extra},
    }
    if events_backend == "postgres":
        return queries
    return {kind: source for kind, source in queries.items() if kind in SUPPORTED_KINDS}


def _numbers(kind: str, body: dict[str, Any]) -> Any:
    if kind == "RetentionQuery":
        return [[value["count"] for value in row["values"]] for row in body["results"]]
    if kind == "LifecycleQuery":
        return [result["data"] for result in body["results"]]
    return body["results"][0]["data"]


async def test_test_accounts_and_person_filters_apply_to_every_kind(
    client: httpx.AsyncClient, actor: Actor, events_backend: str
) -> None:
    await _staff_and_user(client, actor)
    staff = [{"key": "email", "type": "person", "value": "tilecast.dev", "operator": "not_icontains"}]
    await team_settings(client, actor, test_account_filters=staff)
    both = {
        "RetentionQuery": [[2, 2], [2, 0]],
        "LifecycleQuery": [[2.0, 0.0], [0.0, 2.0], [0.0, 0.0], [0.0, 0.0]],
        "StickinessQuery": [0, 2],
    }
    one = {
        "RetentionQuery": [[1, 1], [1, 0]],
        "LifecycleQuery": [[1.0, 0.0], [0.0, 1.0], [0.0, 0.0], [0.0, 0.0]],
        "StickinessQuery": [0, 1],
    }
    for kind, source in _queries(events_backend).items():
        assert _numbers(kind, await query(client, actor, kind, **source)) == both[kind], kind
    for kind, source in _queries(events_backend, filterTestAccounts=True).items():
        assert _numbers(kind, await query(client, actor, kind, **source)) == one[kind], kind
    person = [{"key": "email", "type": "person", "value": "example.com", "operator": "icontains"}]
    for kind, source in _queries(events_backend, properties=person).items():
        assert _numbers(kind, await query(client, actor, kind, **source)) == one[kind], kind


async def test_insights_tiles_dashboard_filters_and_txt(
    client: httpx.AsyncClient, actor: Actor, events_backend: str
) -> None:
    await _staff_and_user(client, actor)
    board = await new_dashboard(client, actor, name="Kinds")
    for kind, source in _queries(events_backend).items():
        body = {"name": kind, "query": insight(kind, **source), "dashboards": [board]}
        response = await client.post(actor.url("insights/"), json=body, headers=actor.headers)
        assert response.status_code == 201, response.text
    response = await client.get(
        actor.url(f"dashboards/{board}/"), params={"refresh": "blocking"}, headers=actor.headers
    )
    assert response.status_code == 200, response.text
    results = {tile["insight"]["name"]: tile["insight"]["result"] for tile in response.json()["tiles"]}
    for kind, source in _queries(events_backend).items():
        assert results[kind] == (await query(client, actor, kind, **source))["results"], kind

    text = (
        await client.get(actor.url(f"dashboards/{board}/"), params={"format": "txt"}, headers=actor.headers)
    ).text
    lines = text.splitlines()
    if "RetentionQuery" in results:
        at = lines.index("RetentionQuery:")
        expected = ["  Day 0 (2024-01-01): 2, 2 (100%)", "  Day 1 (2024-01-02): 2, 0 (0%)"]
        assert lines[at + 1 : at + 3] == expected
    at = lines.index("LifecycleQuery:")
    assert lines[at + 1 : at + 5] == [
        "  $pageview - new: 2 in total, 0 in 2-Jan-2024",
        "  $pageview - returning: 2 in total, 2 in 2-Jan-2024",
        "  $pageview - resurrecting: 0 in total, 0 in 2-Jan-2024",
        "  $pageview - dormant: 0 in total, 0 in 2-Jan-2024",
    ]
    at = lines.index("StickinessQuery:")
    assert lines[at + 1] == "  $pageview: 2 actors; 1 day 0, 2 days 2"

    # Dashboard filters: the date range replaces each query's; a breakdown applies to retention only.
    filters = {
        "date_from": "2024-01-02",
        "date_to": "2024-01-02",
        "breakdown_filter": {"breakdown": "$browser"},
    }
    response = await client.patch(
        actor.url(f"dashboards/{board}/"), json={"filters": filters}, headers=actor.headers
    )
    assert response.status_code == 200, response.text
    response = await client.get(
        actor.url(f"dashboards/{board}/"), params={"refresh": "blocking"}, headers=actor.headers
    )
    tiles = {tile["insight"]["name"]: tile for tile in response.json()["tiles"]}
    assert all(tile.get("error") is None for tile in tiles.values()), tiles
    if "RetentionQuery" in tiles:
        retention = tiles["RetentionQuery"]["insight"]["result"]
        assert [(row["date"][:10], row["breakdown_value"]) for row in retention] == [("2024-01-02", "")]
    assert tiles["StickinessQuery"]["insight"]["result"][0]["data"] == [2]
    assert tiles["LifecycleQuery"]["insight"]["result"][1]["data"] == [2.0]


async def test_saving_an_invalid_query_is_refused_by_field(client: httpx.AsyncClient, actor: Actor) -> None:
    body = {"name": "bad", "query": insight("RetentionQuery", retentionFilter={"totalIntervals": 0})}
    response = await client.post(actor.url("insights/"), json=body, headers=actor.headers)
    assert response.status_code == 400, response.text
    assert response.json()["attr"] == "query__source__retentionFilter__totalIntervals"
