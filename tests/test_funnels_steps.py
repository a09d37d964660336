"""FunnelsQuery steps (insight-kinds §1): hand-built events, answers worked out by hand in each test."""

from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from tests.events import event, ingest
from tests.factories import Actor
from tests.funnels_helpers import counts, funnel, step
from tests.trends_helpers import absolute, set_timezone, utc

pytestmark = pytest.mark.both_backends

JAN = absolute("2024-01-01", "2024-01-07")
STEPS = (step("signup"), step("view"), step("buy"))


def _step(name: str, order: int, count: int, avg: float | None, median: float | None) -> dict[str, Any]:
    return {
        "action_id": name,
        "name": name,
        "custom_name": None,
        "order": order,
        "people": [],
        "count": count,
        "type": "events",
        "average_conversion_time": avg,
        "median_conversion_time": median,
    }


@pytest.fixture
async def worked(client: httpx.AsyncClient, actor: Actor) -> None:
    """§1.4: u1 converts fully, u2 reaches view, u3 signs up only, u4 views without signing up."""
    await ingest(
        client,
        actor,
        [
            event("signup", "u1", utc(2024, 1, 1, 10), {"$browser": "Chrome"}),
            event("view", "u1", utc(2024, 1, 1, 11), {"$browser": "Chrome"}),
            event("buy", "u1", utc(2024, 1, 2, 10), {"$browser": "Chrome"}),
            event("signup", "u2", utc(2024, 1, 2, 9), {"$browser": "Chrome"}),
            event("view", "u2", utc(2024, 1, 2, 9, 30), {"$browser": "Chrome"}),
            event("signup", "u3", utc(2024, 1, 3, 12), {"$browser": "Safari"}),
            event("view", "u4", utc(2024, 1, 3, 8), {"$browser": "Safari"}),
        ],
    )


async def test_worked_example_field_by_field(client: httpx.AsyncClient, actor: Actor, worked: None) -> None:
    results = await funnel(client, actor, *STEPS, **JAN)
    # view: u1 3600 s and u2 1800 s (mean and median 2700); buy: u1 alone, 23 h = 82800 s.
    assert results == [
        _step("signup", 0, 3, None, None),
        _step("view", 1, 2, 2700.0, 2700.0),
        _step("buy", 2, 1, 82800.0, 82800.0),
    ]


async def test_worked_example_breakdown(client: httpx.AsyncClient, actor: Actor, worked: None) -> None:
    results = await funnel(
        client, actor, *STEPS, breakdownFilter={"breakdown": "$browser", "breakdown_type": "event"}, **JAN
    )
    assert [[s["count"] for s in group] for group in results] == [[2, 2, 1], [1, 0, 0]]
    assert [group[0]["breakdown_value"] for group in results] == [["Chrome"], ["Safari"]]
    assert all(s["breakdown"] == s["breakdown_value"] for group in results for s in group)
    assert results[1][1]["average_conversion_time"] is None


async def test_worked_example_exclusion_drops_actor(
    client: httpx.AsyncClient, actor: Actor, worked: None
) -> None:
    await ingest(client, actor, [event("cancel", "u2", utc(2024, 1, 2, 9, 10))])
    exclusion = {"kind": "EventsNode", "event": "cancel", "funnelFromStep": 0, "funnelToStep": 1}
    results = await funnel(client, actor, *STEPS, funnelsFilter={"exclusions": [exclusion]}, **JAN)
    # u2 is dropped entirely: signup 2 (u1, u3), view 1, buy 1.
    assert counts(results) == [2, 1, 1]
    assert results[1]["average_conversion_time"] == 3600.0


async def test_worked_example_trends(client: httpx.AsyncClient, actor: Actor, worked: None) -> None:
    results = await funnel(
        client,
        actor,
        *STEPS,
        funnelsFilter={"funnelVizType": "trends"},
        **absolute("2024-01-01", "2024-01-03"),
    )
    assert results == [
        {
            "count": 3,
            "data": [100.0, 0.0, 0.0],
            "days": ["2024-01-01", "2024-01-02", "2024-01-03"],
            "labels": ["1-Jan-2024", "2-Jan-2024", "3-Jan-2024"],
        }
    ]


async def test_no_events_gives_empty_results(client: httpx.AsyncClient, actor: Actor) -> None:
    assert await funnel(client, actor, *STEPS, **JAN) == []


async def test_window_edge_is_inclusive(client: httpx.AsyncClient, actor: Actor) -> None:
    # A window of 1 hour: a at 10:00, b at 11:00 exactly (in), c at 11:00:01 after d's start (out).
    await ingest(
        client,
        actor,
        [
            event("a", "in", utc(2024, 1, 1, 10)),
            event("b", "in", utc(2024, 1, 1, 11)),
            event("a", "out", utc(2024, 1, 1, 10)),
            event("b", "out", utc(2024, 1, 1, 11, 0, 1)),
        ],
    )
    results = await funnel(
        client,
        actor,
        step("a"),
        step("b"),
        funnelsFilter={"funnelWindowInterval": 1, "funnelWindowIntervalUnit": "hour"},
        **JAN,
    )
    assert counts(results) == [2, 1]
    assert results[1]["average_conversion_time"] == 3600.0


async def test_window_measured_from_step_one(client: httpx.AsyncClient, actor: Actor) -> None:
    # a 00:00, b 00:40, c 01:20: c is 80 minutes after a, outside a 1-hour window even though b → c is 40.
    await ingest(
        client,
        actor,
        [
            event("a", "p", utc(2024, 1, 1, 0)),
            event("b", "p", utc(2024, 1, 1, 0, 40)),
            event("c", "p", utc(2024, 1, 1, 1, 20)),
        ],
    )
    window = {"funnelWindowInterval": 60, "funnelWindowIntervalUnit": "minute"}
    results = await funnel(client, actor, step("a"), step("b"), step("c"), funnelsFilter=window, **JAN)
    assert counts(results) == [1, 1, 0]


async def test_latest_start_is_credited(client: httpx.AsyncClient, actor: Actor) -> None:
    # a 10:00, a 12:00, b 13:00: the conversion is credited to the 12:00 start (1 hour, not 3).
    await ingest(
        client,
        actor,
        [
            event("a", "p", utc(2024, 1, 1, 10)),
            event("a", "p", utc(2024, 1, 1, 12)),
            event("b", "p", utc(2024, 1, 1, 13)),
        ],
    )
    results = await funnel(client, actor, step("a"), step("b"), **JAN)
    assert counts(results) == [1, 1]
    assert results[1]["average_conversion_time"] == 3600.0


async def test_every_step_inside_the_date_range(client: httpx.AsyncClient, actor: Actor) -> None:
    # b happens the day after the range ends: not counted even though within the window.
    await ingest(
        client,
        actor,
        [event("a", "p", utc(2024, 1, 7, 23)), event("b", "p", utc(2024, 1, 8, 1))],
    )
    assert counts(await funnel(client, actor, step("a"), step("b"), **JAN)) == [1, 0]


async def test_same_timestamp_counts_in_step_order(client: httpx.AsyncClient, actor: Actor) -> None:
    # a and b at the same instant count as a → b, with a conversion time of 0 (left out of the mean).
    await ingest(
        client,
        actor,
        [
            event("b", "p", utc(2024, 1, 1, 10)),
            event("a", "p", utc(2024, 1, 1, 10)),
            event("a", "q", utc(2024, 1, 1, 10)),
            event("b", "q", utc(2024, 1, 1, 10, 10)),
        ],
    )
    results = await funnel(client, actor, step("a"), step("b"), **JAN)
    assert counts(results) == [2, 2]
    assert results[1]["average_conversion_time"] == 600.0
    assert results[1]["median_conversion_time"] == 600.0


async def test_repeated_step_needs_two_events(client: httpx.AsyncClient, actor: Actor) -> None:
    await ingest(
        client,
        actor,
        [
            event("a", "once", utc(2024, 1, 1, 10)),
            event("a", "twice", utc(2024, 1, 1, 10)),
            event("a", "twice", utc(2024, 1, 1, 11)),
        ],
    )
    assert counts(await funnel(client, actor, step("a"), step("a"), **JAN)) == [2, 1]


async def test_average_and_median_conversion_times(client: httpx.AsyncClient, actor: Actor) -> None:
    # Conversion times 60, 120 and 600 s: mean 260, median 120; a fourth of 1200 s makes the median (120 +
    # 600) / 2 = 360 and the mean 495.
    batch = []
    for i, seconds in enumerate([60, 120, 600, 1200]):
        batch += [
            event("a", f"p{i}", utc(2024, 1, 2, 10)),
            event("b", f"p{i}", utc(2024, 1, 2, 10, seconds // 60)),
        ]
    await ingest(client, actor, batch)
    results = await funnel(client, actor, step("a"), step("b"), **JAN)
    assert results[1]["average_conversion_time"] == 495.0
    assert results[1]["median_conversion_time"] == 360.0


async def test_step_properties(client: httpx.AsyncClient, actor: Actor) -> None:
    pro = [{"type": "event", "key": "plan", "value": ["pro"], "operator": "exact"}]
    await ingest(
        client,
        actor,
        [
            event("a", "p", utc(2024, 1, 1, 10)),
            event("b", "p", utc(2024, 1, 1, 11), {"plan": "free"}),
            event("a", "q", utc(2024, 1, 1, 10)),
            event("b", "q", utc(2024, 1, 1, 11), {"plan": "pro"}),
        ],
    )
    results = await funnel(client, actor, step("a"), step("b", properties=pro), **JAN)
    assert counts(results) == [2, 1]


async def test_global_properties_apply_to_every_step(client: httpx.AsyncClient, actor: Actor) -> None:
    web = [{"type": "event", "key": "$lib", "value": "web", "operator": "exact"}]
    await ingest(
        client,
        actor,
        [
            event("a", "p", utc(2024, 1, 1, 10), {"$lib": "web"}),
            event("b", "p", utc(2024, 1, 1, 11), {"$lib": "ios"}),
            event("a", "q", utc(2024, 1, 1, 10), {"$lib": "web"}),
            event("b", "q", utc(2024, 1, 1, 11), {"$lib": "web"}),
        ],
    )
    assert counts(await funnel(client, actor, step("a"), step("b"), properties=web, **JAN)) == [2, 1]


async def test_strict_order_broken_by_an_event_in_between(client: httpx.AsyncClient, actor: Actor) -> None:
    # p: a, x, b (broken by x); q: a, b (converts). Ordered counts both.
    await ingest(
        client,
        actor,
        [
            event("a", "p", utc(2024, 1, 1, 10)),
            event("x", "p", utc(2024, 1, 1, 10, 30)),
            event("b", "p", utc(2024, 1, 1, 11)),
            event("a", "q", utc(2024, 1, 1, 10)),
            event("b", "q", utc(2024, 1, 1, 11)),
        ],
    )
    strict = await funnel(
        client, actor, step("a"), step("b"), funnelsFilter={"funnelOrderType": "strict"}, **JAN
    )
    assert counts(strict) == [2, 1]
    ordered = await funnel(client, actor, step("a"), step("b"), **JAN)
    assert counts(ordered) == [2, 2]


async def test_strict_ignores_events_the_global_filters_drop(client: httpx.AsyncClient, actor: Actor) -> None:
    web = [{"type": "event", "key": "$lib", "value": "web", "operator": "exact"}]
    await ingest(
        client,
        actor,
        [
            event("a", "p", utc(2024, 1, 1, 10), {"$lib": "web"}),
            event("x", "p", utc(2024, 1, 1, 10, 30), {"$lib": "ios"}),
            event("b", "p", utc(2024, 1, 1, 11), {"$lib": "web"}),
        ],
    )
    strict = {"funnelOrderType": "strict"}
    results = await funnel(client, actor, step("a"), step("b"), funnelsFilter=strict, properties=web, **JAN)
    assert counts(results) == [1, 1]


async def test_unordered_steps(client: httpx.AsyncClient, actor: Actor) -> None:
    # p does c, b, a (all three, any order) within 2 hours; q does b then a; r does a alone; s does c, then a
    # 20 days later (outside the 14-day window: one step at a time).
    await ingest(
        client,
        actor,
        [
            event("c", "p", utc(2024, 1, 1, 10)),
            event("b", "p", utc(2024, 1, 1, 11)),
            event("a", "p", utc(2024, 1, 1, 12)),
            event("b", "q", utc(2024, 1, 2, 10)),
            event("a", "q", utc(2024, 1, 2, 10, 30)),
            event("a", "r", utc(2024, 1, 3, 10)),
            event("c", "s", utc(2024, 1, 1, 10)),
            event("a", "s", utc(2024, 1, 21, 10)),
        ],
    )
    results = await funnel(
        client,
        actor,
        step("a"),
        step("b"),
        step("c"),
        funnelsFilter={"funnelOrderType": "unordered"},
        **absolute("2024-01-01", "2024-01-31"),
    )
    assert [(s["name"], s["action_id"], s["count"]) for s in results] == [
        ("Completed 1 step", None, 4),
        ("Completed 2 steps", None, 2),
        ("Completed 3 steps", None, 1),
    ]
    # Gaps between the sorted times: into 2 steps p 3600 and q 1800; into 3 steps p 3600.
    assert results[1]["average_conversion_time"] == 2700.0
    assert results[2]["average_conversion_time"] == 3600.0


async def test_exclusion_only_when_it_is_the_furthest_progress(
    client: httpx.AsyncClient, actor: Actor
) -> None:
    # p: a, cancel, a (a fresh start), b: the fresh attempt converts, p counts. q: a, cancel, b: dropped.
    # r: a, cancel (never got further): counted at step 1.
    await ingest(
        client,
        actor,
        [
            event("a", "p", utc(2024, 1, 1, 10)),
            event("cancel", "p", utc(2024, 1, 1, 10, 10)),
            event("a", "p", utc(2024, 1, 1, 10, 20)),
            event("b", "p", utc(2024, 1, 1, 10, 30)),
            event("a", "q", utc(2024, 1, 1, 10)),
            event("cancel", "q", utc(2024, 1, 1, 10, 10)),
            event("b", "q", utc(2024, 1, 1, 10, 30)),
            event("a", "r", utc(2024, 1, 1, 10)),
            event("cancel", "r", utc(2024, 1, 1, 10, 10)),
        ],
    )
    exclusion = {"kind": "EventsNode", "event": "cancel", "funnelFromStep": 0, "funnelToStep": 1}
    results = await funnel(
        client, actor, step("a"), step("b"), funnelsFilter={"exclusions": [exclusion]}, **JAN
    )
    assert counts(results) == [2, 1]
    assert results[1]["average_conversion_time"] == 600.0


async def test_timezone_day_boundaries(client: httpx.AsyncClient, actor: Actor, db: AsyncSession) -> None:
    # In New York (UTC-5) the range 2024-01-02 starts at 05:00 UTC: the a at 04:00 UTC is on 01-01.
    await set_timezone(db, actor, "America/New_York")
    await ingest(
        client,
        actor,
        [
            event("a", "early", utc(2024, 1, 2, 4)),
            event("b", "early", utc(2024, 1, 2, 6)),
            event("a", "late", utc(2024, 1, 3, 4, 59)),
            event("b", "late", utc(2024, 1, 3, 5, 1)),
        ],
    )
    results = await funnel(client, actor, step("a"), step("b"), **absolute("2024-01-02", "2024-01-02"))
    # early's a is before the range; late's a (23:59 local on 01-02) is in, its b (00:01 on 01-03) is not.
    assert counts(results) == [1, 0]
    trends = await funnel(
        client,
        actor,
        step("a"),
        step("b"),
        funnelsFilter={"funnelVizType": "trends"},
        **absolute("2024-01-01", "2024-01-03"),
    )
    # Entries by local day: early on 01-01 (converts), late on 01-02 (converts).
    assert trends[0]["data"] == [100.0, 100.0, 0.0]
