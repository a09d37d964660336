"""Displays (total value, cumulative, smoothing), compare, and the exact shape of a series (B.6, B.7)."""

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.events import event, ingest
from tests.factories import Actor
from tests.trends_helpers import absolute, node, results, run, steady_now, utc

# Every test here runs on PostgreSQL and on ClickHouse (tests/conftest.py).
pytestmark = pytest.mark.both_backends

TOTAL_VALUE = ["BoldNumber", "ActionsPie", "ActionsBarValue", "ActionsTable", "WorldMap"]


@pytest.fixture
async def week(client: httpx.AsyncClient, actor: Actor) -> None:
    """2-8 Mar 2025; pageviews per day [2, 4, 0, 6, 0, 0, 1] by persons a, b, c."""
    per_day = {2: ["a", "a"], 3: ["a", "b", "b", "b"], 5: ["a", "b", "c", "c", "c", "c"], 8: ["c"]}
    await ingest(
        client,
        actor,
        [
            event("$pageview", person, utc(2025, 3, day, 10, i), {"amount": i})
            for day, persons in per_day.items()
            for i, person in enumerate(persons)
        ],
    )


WEEK = absolute("2025-03-02", "2025-03-08")


@pytest.mark.parametrize("display", TOTAL_VALUE)
async def test_total_value_displays(
    client: httpx.AsyncClient, actor: Actor, week: None, display: str
) -> None:
    # BoldNumber does not stretch date_to to the end of its day: the range says so itself.
    range_ = absolute("2025-03-02", "2025-03-08T23:59:59")
    out = await results(
        client,
        actor,
        node(),
        node(math="dau"),
        node(math="max", math_property="amount"),
        trendsFilter={"display": display},
        **range_,
    )
    assert [s["aggregated_value"] for s in out] == [13, 3, 5.0]  # dau over the whole range, not summed
    for series in out:
        assert series["data"] == [] and series["days"] == [] and series["count"] == 0
        assert "labels" not in series
        assert series["filter"]["display"] == display
    assert len(out[0]["action"]["days"]) == 7


async def test_bold_number_uses_the_exact_time_range(client: httpx.AsyncClient, actor: Actor) -> None:
    now = await steady_now()
    await ingest(
        client,
        actor,
        [
            event("$pageview", "a", now - timedelta(days=2, hours=1), {}),  # same day, before now - 2d
            event("$pageview", "b", now - timedelta(days=2) + timedelta(minutes=5), {}),
            event("$pageview", "a", now - timedelta(hours=1), {}),
            event("$pageview", "c", now + timedelta(minutes=30), {}),  # after now
        ],
    )
    body = await run(
        client,
        actor,
        node(math="dau"),
        trendsFilter={"display": "BoldNumber"},
        dateRange={"date_from": "-2d"},
    )
    assert body["results"][0]["aggregated_value"] == 2
    resolved = {k: datetime.fromisoformat(v) for k, v in body["resolved_date_range"].items()}
    assert abs(resolved["date_to"] - datetime.now(UTC)) < timedelta(seconds=30)
    assert resolved["date_to"] - resolved["date_from"] == timedelta(days=2)
    # The pie chart resolves whole days instead.
    [pie] = await results(
        client,
        actor,
        node(math="dau"),
        trendsFilter={"display": "ActionsPie"},
        dateRange={"date_from": "-2d"},
    )
    assert pie["aggregated_value"] == (3 if (now + timedelta(minutes=30)).date() == now.date() else 2)


async def test_weekly_and_monthly_active_as_a_total(client: httpx.AsyncClient, actor: Actor) -> None:
    await ingest(
        client,
        actor,
        [
            event("$pageview", "old", utc(2025, 2, 8, 12), {}),  # 30 days before 10 Mar: out
            event("$pageview", "m", utc(2025, 2, 9, 12), {}),
            event("$pageview", "w", utc(2025, 3, 3, 12), {}),  # before 3 Mar 23:59:59.999: out of the week
            event("$pageview", "x", utc(2025, 3, 4, 0, 0), {}),
            event("$pageview", "y", utc(2025, 3, 10, 23, 0), {}),
        ],
    )
    pie = {"trendsFilter": {"display": "ActionsPie"}, **absolute("2025-03-09", "2025-03-10")}
    [wau] = await results(client, actor, node(math="weekly_active"), **pie)
    [mau] = await results(client, actor, node(math="monthly_active"), **pie)
    [dau] = await results(client, actor, node(math="dau"), **pie)
    assert (wau["aggregated_value"], mau["aggregated_value"], dau["aggregated_value"]) == (2, 4, 1)


async def test_cumulative(client: httpx.AsyncClient, actor: Actor, week: None) -> None:
    cumulative = {"trendsFilter": {"display": "ActionsLineGraphCumulative"}, **WEEK}
    total, dau = await results(client, actor, node(), node(math="dau"), **cumulative)
    assert total["data"] == [2, 6, 6, 12, 12, 12, 13] and total["count"] == 13.0
    # Each person counts once, on their first day: a on 2 Mar, b on 3 Mar, c on 5 Mar.
    assert dau["data"] == [1, 2, 2, 3, 3, 3, 3] and dau["count"] == 3.0


async def test_smoothing(client: httpx.AsyncClient, actor: Actor, week: None) -> None:
    out = await results(
        client,
        actor,
        node(),
        node(math="sum", math_property="amount"),
        trendsFilter={"smoothingIntervals": 3},
        **WEEK,
    )
    # floor of the mean of the last three days (fewer at the start)
    assert out[0]["data"] == [2, 3, 2, 3, 2, 2, 0]
    assert out[0]["count"] == 14.0
    # amounts per day: [1, 6, 0, 15, 0, 0, 0]
    assert out[1]["data"] == [1.0, 3.0, 2.0, 7.0, 5.0, 5.0, 0.0]


async def test_compare_with_the_previous_period(client: httpx.AsyncClient, actor: Actor) -> None:
    await ingest(
        client,
        actor,
        [
            event("$pageview", "a", utc(2025, 3, 1, 23, 59), {}),  # before the previous period
            event("$pageview", "a", utc(2025, 3, 2, 10), {}),
            event("$pageview", "a", utc(2025, 3, 4, 10), {}),
            event("$pageview", "b", utc(2025, 3, 4, 11), {}),
            event("$pageview", "a", utc(2025, 3, 5, 10), {}),
            event("$pageview", "a", utc(2025, 3, 7, 10), {}),
            event("signup", "a", utc(2025, 3, 7, 10), {}),
        ],
    )
    body = await run(
        client,
        actor,
        node(),
        node("signup"),
        compareFilter={"compare": True},
        **absolute("2025-03-05", "2025-03-07"),
    )
    out = body["results"]
    assert [(s["compare_label"], s["label"], s["data"]) for s in out] == [
        ("current", "$pageview", [1, 0, 1]),
        ("current", "signup", [0, 0, 1]),
        ("previous", "$pageview", [1, 0, 2]),
        ("previous", "signup", [0, 0, 0]),
    ]
    assert all(s["compare"] is True for s in out)
    assert [s["order"] for s in out] == [0, 1, 0, 1]
    assert out[0]["days"] == ["2025-03-05", "2025-03-06", "2025-03-07"]
    assert out[2]["days"] == ["2025-03-02", "2025-03-03", "2025-03-04"]
    assert out[2]["labels"] == ["2-Mar-2025", "3-Mar-2025", "4-Mar-2025"]
    assert body["resolved_date_range"] == {
        "date_from": "2025-03-05T00:00:00Z",
        "date_to": "2025-03-07T23:59:59.999Z",
    }


async def test_compare_to_a_given_offset(client: httpx.AsyncClient, actor: Actor) -> None:
    await ingest(
        client,
        actor,
        [
            event("$pageview", "a", utc(2025, 2, 26, 10), {}),
            event("$pageview", "a", utc(2025, 2, 28, 23), {}),
        ],
    )
    out = await results(
        client,
        actor,
        node(),
        compareFilter={"compare": True, "compare_to": "-7d"},
        **absolute("2025-03-05", "2025-03-07"),
    )
    assert out[1]["days"] == ["2025-02-26", "2025-02-27", "2025-02-28"]
    assert out[1]["data"] == [1, 0, 1]


async def test_compare_relative_week(client: httpx.AsyncClient, actor: Actor) -> None:
    now = await steady_now()
    today = now.date()
    out = await results(
        client, actor, node(), compareFilter={"compare": True}, dateRange={"date_from": "-7d"}
    )
    assert out[0]["days"][0] == (today - timedelta(days=7)).isoformat()
    assert out[1]["days"] == [(today - timedelta(days=15 - i)).isoformat() for i in range(8)]


async def test_compare_total_value(client: httpx.AsyncClient, actor: Actor, week: None) -> None:
    out = await results(
        client,
        actor,
        node(math="dau"),
        compareFilter={"compare": True},
        trendsFilter={"display": "ActionsTable"},
        **absolute("2025-03-05", "2025-03-08"),
    )
    # Current 5-8 Mar: a, b, c; previous 1-4 Mar: a, b.
    assert [(s["compare_label"], s["aggregated_value"]) for s in out] == [("current", 3), ("previous", 2)]


async def test_compare_is_off_for_all_time(client: httpx.AsyncClient, actor: Actor, week: None) -> None:
    out = await results(
        client, actor, node(), compareFilter={"compare": True}, dateRange={"date_from": "all"}
    )
    assert len(out) == 1 and "compare" not in out[0] and "compare_label" not in out[0]


async def test_series_shape(client: httpx.AsyncClient, actor: Actor, week: None) -> None:
    query_properties: list[dict[str, Any]] = [
        {"type": "event", "key": "amount", "operator": "gte", "value": 0}
    ]
    [series] = await results(
        client,
        actor,
        node(name="Pageviews", custom_name="Views", math="dau"),
        interval="day",
        properties=query_properties,
        trendsFilter={"display": "ActionsBar", "showLegend": True},
        breakdownFilter={"breakdown_limit": 3},  # no breakdown property: no breakdown
        **absolute("2025-03-02", "2025-03-03"),
    )
    assert set(series) == {"data", "labels", "days", "count", "label", "filter", "action", "order"}
    assert series["label"] == "$pageview"
    assert series["action"] == {
        "days": ["2025-03-02T00:00:00Z", "2025-03-03T00:00:00Z"],
        "id": "$pageview",
        "type": "events",
        "order": 0,
        "name": "$pageview",
        "custom_name": "Views",
        "math": "dau",
        "math_property": None,
        "math_hogql": None,
        "math_group_type_index": None,
        "properties": {},
    }
    assert series["filter"] == {
        "insight": "TRENDS",
        "properties": query_properties,
        "filter_test_accounts": False,
        "date_from": "2025-03-02T00:00:00Z",
        "date_to": "2025-03-03T23:59:59.999Z",
        "entity_type": "events",
        "interval": "day",
        "display": "ActionsBar",
        "showLegend": True,
        "smoothingIntervals": 1,
        "breakdown_type": "event",
        "breakdown_limit": 3,
    }
