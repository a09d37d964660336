"""What each math counts (capture-and-trends.md B.4), on fixed dates in a UTC team."""

from typing import Any

import httpx
import pytest

from tests.events import event, ingest
from tests.factories import Actor
from tests.trends_helpers import absolute, data, node, results, utc

# Every test here runs on PostgreSQL and on ClickHouse (tests/conftest.py).
pytestmark = pytest.mark.both_backends

DAYS = ["2025-03-01", "2025-03-02", "2025-03-03", "2025-03-04", "2025-03-05"]
RANGE = absolute("2025-03-01", "2025-03-05")


async def _five_days(client: httpx.AsyncClient, actor: Actor) -> None:
    await ingest(
        client,
        actor,
        [
            event("$pageview", "u1", utc(2025, 3, 1, 10), {"revenue": 10, "$session_id": "s1"}),
            event("$pageview", "u1", utc(2025, 3, 1, 11), {"revenue": "20", "$session_id": "s1"}),
            event("$pageview", "u2", utc(2025, 3, 1, 12), {"revenue": "abc", "$session_id": "s2"}),
            event("$pageview", "u2", utc(2025, 3, 3, 9), {"revenue": 5.5, "$session_id": "s3"}),
            event("$pageview", "u3", utc(2025, 3, 3, 10), {"revenue": 1}),
            event("$pageview", "u4", utc(2025, 3, 3, 11), {}),
            event("$pageview", "u1", utc(2025, 3, 4, 23, 59, 59), {"revenue": True}),
            event("$pageview", "u5", utc(2025, 3, 5, 0, 0, 0), {"revenue": -4, "$session_id": "s4"}),
            # Other events and events just outside the range never count.
            event("signup", "u2", utc(2025, 3, 3, 9), {"revenue": 100, "$session_id": "s3"}),
            event("$pageview", "u9", utc(2025, 2, 28, 23, 59, 59), {"revenue": 1000}),
            event("$pageview", "u9", utc(2025, 3, 6, 0, 0, 0), {"revenue": 1000}),
        ],
    )


async def test_total_counts_events_per_day(client: httpx.AsyncClient, actor: Actor) -> None:
    await _five_days(client, actor)
    [series] = await results(client, actor, node(), interval="day", **RANGE)
    assert series["data"] == [3, 0, 3, 1, 1]
    assert series["count"] == 8.0 and isinstance(series["count"], float)
    assert series["days"] == DAYS
    assert series["labels"] == ["1-Mar-2025", "2-Mar-2025", "3-Mar-2025", "4-Mar-2025", "5-Mar-2025"]
    assert series["label"] == "$pageview"
    # `math` absent means total.
    [explicit] = await results(client, actor, node(math="total"), interval="day", **RANGE)
    assert explicit["data"] == series["data"]


async def test_dau_counts_distinct_ids_per_bucket(client: httpx.AsyncClient, actor: Actor) -> None:
    await _five_days(client, actor)
    [series] = await results(client, actor, node(math="dau"), **RANGE)
    assert series["data"] == [2, 0, 3, 1, 1]
    assert series["count"] == 7.0


async def test_unique_session_counts_missing_session_ids_as_one(
    client: httpx.AsyncClient, actor: Actor
) -> None:
    await _five_days(client, actor)
    [series] = await results(client, actor, node(math="unique_session"), **RANGE)
    # 3 Mar: s3 plus one shared empty value for u3 and u4; 4 Mar: only the empty value.
    assert series["data"] == [2, 0, 2, 1, 1]


@pytest.mark.parametrize(
    ("math", "expected"),
    [
        # "abc" and true are not numbers: left out; days without numbers show 0.
        ("sum", [30.0, 0.0, 6.5, 0.0, -4.0]),
        ("avg", [15.0, 0.0, 3.25, 0.0, -4.0]),
        ("min", [10.0, 0.0, 1.0, 0.0, -4.0]),
        ("max", [20.0, 0.0, 5.5, 0.0, -4.0]),
        ("median", [15.0, 0.0, 3.25, 0.0, -4.0]),
    ],
)
async def test_property_math(
    client: httpx.AsyncClient, actor: Actor, math: str, expected: list[float]
) -> None:
    await _five_days(client, actor)
    [series] = await results(client, actor, node(math=math, math_property="revenue"), **RANGE)
    assert series["data"] == expected
    assert all(isinstance(value, float) for value in series["data"])
    assert series["count"] == sum(expected)
    assert series["action"]["math"] == math and series["action"]["math_property"] == "revenue"


@pytest.mark.parametrize(
    ("math", "q"), [("median", 0.5), ("p75", 0.75), ("p90", 0.9), ("p95", 0.95), ("p99", 0.99)]
)
async def test_percentiles_interpolate(client: httpx.AsyncClient, actor: Actor, math: str, q: float) -> None:
    await ingest(
        client,
        actor,
        [event("$pageview", f"u{v}", utc(2025, 3, 1, 12, v), {"latency": v}) for v in (5, 1, 4, 2, 3)],
    )
    [series] = await results(
        client, actor, node(math=math, math_property="latency"), **absolute("2025-03-01", "2025-03-02")
    )
    # Linear interpolation between the closest ranks of 1..5.
    assert series["data"] == [pytest.approx(1 + q * 4, abs=1e-9), 0.0]


async def _active_users(client: httpx.AsyncClient, actor: Actor) -> None:
    await ingest(
        client,
        actor,
        [
            event("$pageview", "u4", utc(2025, 1, 31, 12), {}),
            event("$pageview", "u1", utc(2025, 2, 25, 12), {}),
            event("$pageview", "u2", utc(2025, 3, 1, 12), {}),
            event("$pageview", "u6", utc(2025, 3, 3, 12), {}),
            event("$pageview", "u1", utc(2025, 3, 5, 12), {}),
            event("$pageview", "u1", utc(2025, 3, 5, 13), {}),
            event("$pageview", "u3", utc(2025, 3, 9, 12), {}),
            event("signup", "u7", utc(2025, 3, 9, 12), {}),
        ],
    )


async def test_weekly_active_counts_the_seven_days_up_to_each_day(
    client: httpx.AsyncClient, actor: Actor
) -> None:
    await _active_users(client, actor)
    [series] = await results(
        client, actor, node(math="weekly_active"), **absolute("2025-03-01", "2025-03-10")
    )
    # 1 Mar looks back to 23 Feb: u1 on 25 Feb counts until 3 Mar, not on 4 Mar; u6 (3 Mar) until 9 Mar.
    assert series["data"] == [2, 2, 3, 2, 3, 3, 3, 2, 3, 2]
    assert series["days"][0] == "2025-03-01" and series["days"][-1] == "2025-03-10"


async def test_monthly_active_counts_the_thirty_days_up_to_each_day(
    client: httpx.AsyncClient, actor: Actor
) -> None:
    await _active_users(client, actor)
    [series] = await results(
        client, actor, node(math="monthly_active"), **absolute("2025-03-01", "2025-03-10")
    )
    # u4 (31 Jan) is 29 days before 1 Mar: counted on 1 Mar only.
    assert series["data"] == [3, 2, 3, 3, 3, 3, 3, 3, 4, 4]


async def test_weekly_active_by_hour(client: httpx.AsyncClient, actor: Actor) -> None:
    await _active_users(client, actor)
    hours = {"interval": "hour", **absolute("2025-03-08T10:00:00", "2025-03-08T13:00:00")}
    [series] = await results(client, actor, node(math="weekly_active"), **hours)
    # u2's event at 1 Mar 12:00 counts up to the 8 Mar 11:00 bucket.
    assert series["data"] == [3, 3, 2, 2]


async def test_weekly_active_by_breakdown(client: httpx.AsyncClient, actor: Actor) -> None:
    await ingest(
        client,
        actor,
        [
            event("$pageview", "a", utc(2025, 3, 1, 12), {"$browser": "Chrome"}),
            event("$pageview", "a", utc(2025, 3, 4, 12), {"$browser": "Chrome"}),
            event("$pageview", "a", utc(2025, 3, 2, 12), {"$browser": "Safari"}),
            event("$pageview", "b", utc(2025, 3, 3, 12), {"$browser": "Chrome"}),
            event("$pageview", "c", utc(2025, 2, 27, 12), {"$browser": "Safari"}),
        ],
    )
    out = await results(
        client, actor, node(math="weekly_active"), breakdownFilter={"breakdown": "$browser"}, **RANGE
    )
    assert [(s["breakdown_value"], s["data"]) for s in out] == [
        ("Safari", [1, 2, 2, 2, 2]),
        ("Chrome", [1, 1, 2, 2, 2]),
    ]


async def test_weekly_active_by_week_is_weekly_uniques(client: httpx.AsyncClient, actor: Actor) -> None:
    await _active_users(client, actor)
    week = {"interval": "week", **absolute("2025-03-01", "2025-03-10")}
    [wau] = await results(client, actor, node(math="weekly_active"), **week)
    [dau] = await results(client, actor, node(math="dau"), **week)
    # Weeks start on Sunday; the first (23 Feb - 1 Mar) starts reading at 1 Mar, the range's first day.
    assert wau["days"] == ["2025-02-23", "2025-03-02", "2025-03-09"]
    assert wau["data"] == [1, 2, 1] == dau["data"]


async def test_all_events_series(client: httpx.AsyncClient, actor: Actor) -> None:
    await _active_users(client, actor)
    [series] = await results(client, actor, node(None, math="dau"), **absolute("2025-03-09", "2025-03-09"))
    assert series["data"] == [2]  # u3's pageview and u7's signup
    assert series["label"] == "All events"
    assert series["action"]["id"] is None and series["action"]["name"] == "All events"


async def test_several_series_keep_their_order(client: httpx.AsyncClient, actor: Actor) -> None:
    await _five_days(client, actor)
    out: list[dict[str, Any]] = await results(
        client, actor, node(math="dau"), node("signup"), node(math="sum", math_property="revenue"), **RANGE
    )
    assert [s["order"] for s in out] == [0, 1, 2]
    assert [s["action"]["order"] for s in out] == [0, 1, 2]
    assert data(out) == [[2, 0, 3, 1, 1], [0, 0, 1, 0, 0], [30.0, 0.0, 6.5, 0.0, -4.0]]
