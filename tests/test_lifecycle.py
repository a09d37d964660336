"""LifecycleQuery on hand-built events, worked out by hand (insight-kinds §3), through `POST /query/`."""

from typing import Any

import httpx
import pytest

from app.config import get_settings
from tests.events import event
from tests.factories import Actor
from tests.kinds_helpers import days, insight, pageview, put, query, refused, team_settings
from tests.trends_helpers import post_query

pytestmark = pytest.mark.both_backends


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


async def test_posthogs_own_case_dormant_after_each_burst(client: httpx.AsyncClient, actor: Actor) -> None:
    """One actor active on Jan 9, 11, 12, 13, 15, 17, 18 and 19, 2020 (its first event Jan 9)."""
    await put(
        client,
        actor,
        *(pageview("g", f"2020-01-{day:02d}T12:00:00Z") for day in (9, 11, 12, 13, 15, 17, 18, 19)),
    )
    body = await query(
        client, actor, "LifecycleQuery", series=series(), dateRange=days("2020-01-09", "2020-01-19")
    )
    assert by_status(body) == {
        "new": [1.0] + [0.0] * 10,
        "returning": [0.0, 0, 0, 1, 1, 0, 0, 0, 0, 1, 1],
        "resurrecting": [0.0, 0, 1, 0, 0, 0, 1, 0, 1, 0, 0],
        "dormant": [0.0, -1, 0, 0, 0, -1, 0, -1, 0, 0, 0],
    }
    assert [result["count"] for result in body["results"]] == [1.0, 4.0, 3.0, -3.0]


async def test_active_the_period_before_the_range_counts(client: httpx.AsyncClient, actor: Actor) -> None:
    """r active Dec 31 and Jan 1: returning on Jan 1, not new. s active Dec 31 only: dormant on Jan 1. t's
    first event is a signup on Dec 1; its first pageview (Jan 2) is resurrecting."""
    await put(
        client,
        actor,
        pageview("r", "2023-12-31T10:00:00Z"),
        pageview("r", "2024-01-01T10:00:00Z"),
        pageview("s", "2023-12-31T10:00:00Z"),
        event("signed_up", "t", "2023-12-01T10:00:00Z"),
        pageview("t", "2024-01-02T10:00:00Z"),
    )
    body = await query(
        client, actor, "LifecycleQuery", series=series(), dateRange=days("2024-01-01", "2024-01-02")
    )
    assert by_status(body) == {
        "new": [0.0, 0.0],
        "returning": [1.0, 0.0],
        "resurrecting": [0.0, 1.0],
        "dormant": [-1.0, -1.0],
    }


async def test_weeks_in_the_team_timezone(client: httpx.AsyncClient, actor: Actor) -> None:
    """In Tokyo: u's first event Sunday Jan 7 01:00; v on Saturday Jan 6 23:00 and Sunday Jan 14 00:00. In UTC
    all three are on Saturdays (Jan 6, Jan 6, Jan 13)."""
    await put(
        client,
        actor,
        pageview("u", "2024-01-06T16:00:00Z"),
        pageview("v", "2024-01-06T14:00:00Z"),
        pageview("v", "2024-01-13T15:00:00Z"),
    )
    weekly = {"series": series(), "interval": "week", "dateRange": days("2024-01-07", "2024-01-20")}
    await team_settings(client, actor, timezone="Asia/Tokyo")
    tokyo = await query(client, actor, "LifecycleQuery", **weekly)
    assert by_status(tokyo) == {
        "new": [1.0, 0.0],
        "returning": [0.0, 0.0],
        "resurrecting": [0.0, 1.0],
        "dormant": [-1.0, -1.0],
    }
    assert tokyo["results"][0]["labels"] == ["7\u201313 Jan", "14\u201320 Jan"]
    assert tokyo["results"][0]["days"] == ["2024-01-07", "2024-01-14"]
    await team_settings(client, actor, timezone="UTC")
    utc = await query(client, actor, "LifecycleQuery", **weekly)
    assert by_status(utc) == {
        "new": [0.0, 0.0],
        "returning": [1.0, 0.0],
        "resurrecting": [0.0, 0.0],
        "dormant": [-1.0, -1.0],
    }


async def test_all_events_filters_and_no_data(client: httpx.AsyncClient, actor: Actor) -> None:
    empty = await query(
        client, actor, "LifecycleQuery", series=series(), dateRange=days("2024-01-01", "2024-01-03")
    )
    assert by_status(empty) == {
        status: [0.0, 0.0, 0.0] for status in ("new", "returning", "resurrecting", "dormant")
    }
    await put(
        client,
        actor,
        event("click", "a", "2024-01-01T10:00:00Z", {"button": "buy"}),
        event("click", "a", "2024-01-02T10:00:00Z", {"button": "nav"}),
        event("view", "b", "2024-01-02T10:00:00Z"),
    )
    everything = await query(
        client,
        actor,
        "LifecycleQuery",
        series=series(None, custom_name="Anything"),
        dateRange=days("2024-01-01", "2024-01-02"),
    )
    assert everything["results"][0]["label"] == "All events - new"
    assert everything["results"][0]["action"] == {
        "id": None,
        "name": "All events",
        "type": "events",
        "order": 0,
        "math": "total",
        "custom_name": "Anything",
    }
    assert by_status(everything)["new"] == [1.0, 1.0] and by_status(everything)["returning"] == [0.0, 1.0]
    buys = await query(
        client,
        actor,
        "LifecycleQuery",
        series=series("click", properties=[{"key": "button", "value": "buy", "operator": "exact"}]),
        dateRange=days("2024-01-01", "2024-01-02"),
    )
    assert by_status(buys) == {
        "new": [1.0, 0.0],
        "returning": [0.0, 0.0],
        "resurrecting": [0.0, 0.0],
        "dormant": [0.0, -1.0],
    }


async def test_unsupported_fields_are_named(client: httpx.AsyncClient, actor: Actor) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"series": series() + series("other")}, "query__source__series"),
        ({"series": series(), "interval": "minute"}, "query__source__interval"),
        ({"series": [{"kind": "ActionsNode", "id": 1}]}, "query__source__series__0__kind"),
        (
            {"series": series(), "breakdownFilter": {"breakdown": "$browser"}},
            "query__source__breakdownFilter",
        ),
        ({"series": series(), "lifecycleFilter": {"bogus": True}}, "query__source__lifecycleFilter__bogus"),
        ({"series": series(), "samplingFactor": 0.1}, "query__source__samplingFactor"),
    ]
    for source, attr in cases:
        body = await refused(client, actor, "LifecycleQuery", **source)
        assert (body["attr"], body["code"]) == (attr, "unsupported_query"), (source, body)
    toggled = await query(
        client,
        actor,
        "LifecycleQuery",
        series=series(),
        lifecycleFilter={"toggledLifecycles": ["new", "dormant"], "showLegend": True, "stacked": True},
    )
    assert [result["status"] for result in toggled["results"]] == [
        "new",
        "returning",
        "resurrecting",
        "dormant",
    ]
    bad = await refused(
        client, actor, "LifecycleQuery", series=series(), lifecycleFilter={"toggledLifecycles": ["gone"]}
    )
    assert bad["code"] == "invalid_query"


async def test_months_and_first_and_last_periods_agree_on_both_backends(
    client: httpx.AsyncClient, actor: Actor
) -> None:
    """Where ClickHouse differs: its `lagInFrame`/`leadInFrame` give 1970-01-01, not NULL, before an actor's
    first active period and after its last, and see only the rows of a stated frame; a SELECT alias is visible
    in its WHERE. Here each actor has periods with nothing before or after, and gaps, by calendar month.
    a: Jan 15, Feb 10, Apr 5 (created in Jan); b: created in Dec 2023 by another event, a pageview Mar 3."""
    await put(
        client,
        actor,
        pageview("a", "2024-01-15T10:00:00Z"),
        pageview("a", "2024-02-10T10:00:00Z"),
        pageview("a", "2024-04-05T10:00:00Z"),
        event("signed_up", "b", "2023-12-20T10:00:00Z"),
        pageview("b", "2024-03-03T10:00:00Z"),
    )
    body = await query(
        client,
        actor,
        "LifecycleQuery",
        series=series(),
        interval="month",
        dateRange=days("2024-01-01", "2024-04-30"),
    )
    # a: Jan new, Feb returning, Mar dormant, Apr resurrecting; b: Mar resurrecting (created before), Apr
    # dormant.
    assert by_status(body) == {
        "new": [1.0, 0.0, 0.0, 0.0],
        "returning": [0.0, 1.0, 0.0, 0.0],
        "resurrecting": [0.0, 0.0, 1.0, 1.0],
        "dormant": [0.0, 0.0, -1.0, -1.0],
    }
    assert body["results"][0]["days"] == ["2024-01-01", "2024-02-01", "2024-03-01", "2024-04-01"]


async def test_clickhouse_limits_apply_to_lifecycle_and_stickiness(
    client: httpx.AsyncClient,
    actor: Actor,
    events_backend: str,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> None:
    """The per-query limits of the ClickHouse backend hold for these kinds as for trends: past one, a query
    error naming the setting (PostgreSQL has no such setting and answers)."""
    await put(
        client,
        actor,
        pageview("a", "2024-01-01T10:00:00Z"),
        pageview("a", "2024-01-02T10:00:00Z"),
        pageview("b", "2024-01-02T10:00:00Z"),
    )
    monkeypatch.setenv("TILECAST_CLICKHOUSE_MAX_RESULT_ROWS", "1")
    get_settings.cache_clear()
    request.addfinalizer(get_settings.cache_clear)  # before monkeypatch restores the environment
    jan = days("2024-01-01", "2024-01-03")
    for kind in ("LifecycleQuery", "StickinessQuery"):
        response = await post_query(client, actor, insight(kind, series=series(), dateRange=jan))
        if events_backend == "postgres":
            assert response.status_code == 200, response.text
            continue
        assert response.status_code == 400, response.text
        body = response.json()
        assert body["code"] == "query_too_large", kind
        assert "TILECAST_CLICKHOUSE_MAX_RESULT_ROWS" in body["detail"], kind
