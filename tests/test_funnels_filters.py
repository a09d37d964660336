"""Funnels with the team's settings and the less common combinations: test accounts filtered from every step
and exclusion, breakdowns of strict and unordered funnels, exclusions over part of the steps."""

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from tests.events import event, ingest
from tests.factories import Actor
from tests.funnels_helpers import counts, funnel, step
from tests.trends_helpers import absolute, utc

pytestmark = pytest.mark.both_backends

JAN = absolute("2024-01-01", "2024-01-07")


async def test_filter_test_accounts_applies_to_steps_and_exclusions(
    client: httpx.AsyncClient, actor: Actor, db: AsyncSession
) -> None:
    actor.team.test_account_filters = [
        {"key": "email", "value": "@example.com", "operator": "not_icontains", "type": "event"}
    ]
    await db.commit()
    await ingest(
        client,
        actor,
        [
            # p converts; its test-account cancel is filtered out, so it does not exclude p.
            event("a", "p", utc(2024, 1, 1, 10)),
            event("cancel", "p", utc(2024, 1, 1, 10, 5), {"email": "qa@example.com"}),
            event("b", "p", utc(2024, 1, 1, 11)),
            # t is a test account: not in the funnel at all.
            event("a", "t", utc(2024, 1, 1, 10), {"email": "t@example.com"}),
            event("b", "t", utc(2024, 1, 1, 11), {"email": "t@example.com"}),
        ],
    )
    exclusion = {"kind": "EventsNode", "event": "cancel", "funnelFromStep": 0, "funnelToStep": 1}
    filtered = await funnel(
        client,
        actor,
        step("a"),
        step("b"),
        funnelsFilter={"exclusions": [exclusion]},
        filterTestAccounts=True,
        **JAN,
    )
    assert counts(filtered) == [1, 1]
    unfiltered = await funnel(
        client, actor, step("a"), step("b"), funnelsFilter={"exclusions": [exclusion]}, **JAN
    )
    # Without the filter, p's cancel drops p; t converts.
    assert counts(unfiltered) == [1, 1]
    plain = await funnel(client, actor, step("a"), step("b"), **JAN)
    assert counts(plain) == [2, 2]


async def test_exclusion_between_later_steps(client: httpx.AsyncClient, actor: Actor) -> None:
    # Exclusion between steps 1 and 2 only. p: a, x, b, c: the x comes before b, outside the range: kept.
    # q: a, b, x, c: dropped. r: a, b, x (never reached c): counted up to b.
    await ingest(
        client,
        actor,
        [
            event("a", "p", utc(2024, 1, 1, 10)),
            event("x", "p", utc(2024, 1, 1, 10, 10)),
            event("b", "p", utc(2024, 1, 1, 10, 20)),
            event("c", "p", utc(2024, 1, 1, 10, 30)),
            event("a", "q", utc(2024, 1, 1, 10)),
            event("b", "q", utc(2024, 1, 1, 10, 10)),
            event("x", "q", utc(2024, 1, 1, 10, 20)),
            event("c", "q", utc(2024, 1, 1, 10, 30)),
            event("a", "r", utc(2024, 1, 1, 10)),
            event("b", "r", utc(2024, 1, 1, 10, 10)),
            event("x", "r", utc(2024, 1, 1, 10, 20)),
        ],
    )
    exclusion = {"kind": "EventsNode", "event": "x", "funnelFromStep": 1, "funnelToStep": 2}
    results = await funnel(
        client, actor, step("a"), step("b"), step("c"), funnelsFilter={"exclusions": [exclusion]}, **JAN
    )
    assert counts(results) == [2, 2, 1]


async def test_exclusion_outside_the_window_does_not_count(client: httpx.AsyncClient, actor: Actor) -> None:
    # Window 1 hour. p: a 10:00, b 10:30, then a cancel at 12:00 (past the window of the a): p converts.
    await ingest(
        client,
        actor,
        [
            event("a", "p", utc(2024, 1, 1, 10)),
            event("b", "p", utc(2024, 1, 1, 10, 30)),
            event("cancel", "p", utc(2024, 1, 1, 12)),
        ],
    )
    exclusion = {"kind": "EventsNode", "event": "cancel", "funnelFromStep": 0, "funnelToStep": 1}
    window = {"funnelWindowInterval": 1, "funnelWindowIntervalUnit": "hour", "exclusions": [exclusion]}
    assert counts(await funnel(client, actor, step("a"), step("b"), funnelsFilter=window, **JAN)) == [1, 1]


async def test_strict_funnel_with_all_events_breakdown(client: httpx.AsyncClient, actor: Actor) -> None:
    # p on Chrome: a, b (converts); then on Safari: a, x, b (x breaks Safari's path; the x is on Safari too).
    await ingest(
        client,
        actor,
        [
            event("a", "p", utc(2024, 1, 1, 10), {"$browser": "Chrome"}),
            event("b", "p", utc(2024, 1, 1, 10, 10), {"$browser": "Chrome"}),
            event("a", "p", utc(2024, 1, 1, 11), {"$browser": "Safari"}),
            event("x", "p", utc(2024, 1, 1, 11, 10), {"$browser": "Safari"}),
            event("b", "p", utc(2024, 1, 1, 11, 20), {"$browser": "Safari"}),
        ],
    )
    results = await funnel(
        client,
        actor,
        step("a"),
        step("b"),
        funnelsFilter={"funnelOrderType": "strict", "breakdownAttributionType": "all_events"},
        breakdownFilter={"breakdown": "$browser"},
        **JAN,
    )
    assert [(g[0]["breakdown_value"], [s["count"] for s in g]) for g in results] == [
        (["Chrome"], [1, 1]),
        (["Safari"], [1, 0]),
    ]


async def test_unordered_funnel_with_breakdown(client: httpx.AsyncClient, actor: Actor) -> None:
    # p (Chrome first) does b then a; q (Safari) does a only.
    await ingest(
        client,
        actor,
        [
            event("b", "p", utc(2024, 1, 1, 10), {"$browser": "Chrome"}),
            event("a", "p", utc(2024, 1, 1, 10, 30), {"$browser": "Firefox"}),
            event("a", "q", utc(2024, 1, 1, 10), {"$browser": "Safari"}),
        ],
    )
    results = await funnel(
        client,
        actor,
        step("a"),
        step("b"),
        funnelsFilter={"funnelOrderType": "unordered"},
        breakdownFilter={"breakdown": "$browser"},
        **JAN,
    )
    assert [(g[0]["breakdown_value"], [s["count"] for s in g]) for g in results] == [
        (["Chrome"], [1, 1]),
        (["Safari"], [1, 0]),
    ]
    assert results[0][1]["name"] == "Completed 2 steps"
    assert results[0][1]["average_conversion_time"] == 1800.0


async def test_any_event_step(client: httpx.AsyncClient, actor: Actor) -> None:
    # Step 2 is any event: p's x counts; q has nothing after a.
    await ingest(
        client,
        actor,
        [
            event("a", "p", utc(2024, 1, 1, 10)),
            event("x", "p", utc(2024, 1, 1, 10, 5)),
            event("a", "q", utc(2024, 1, 1, 10)),
        ],
    )
    results = await funnel(client, actor, step("a"), step(None), **JAN)
    assert counts(results) == [2, 1]
    assert results[1]["action_id"] is None and results[1]["name"] is None


async def test_custom_name_and_month_window(client: httpx.AsyncClient, actor: Actor) -> None:
    # A month is 31 days: b 31 days after a is in, 31 days and a second is out.
    await ingest(
        client,
        actor,
        [
            event("a", "in", utc(2024, 1, 1, 0)),
            event("b", "in", utc(2024, 2, 1, 0)),
            event("a", "out", utc(2024, 1, 1, 0)),
            event("b", "out", utc(2024, 2, 1, 0, 0, 1)),
        ],
    )
    results = await funnel(
        client,
        actor,
        step("a", custom_name="Arrived"),
        step("b"),
        funnelsFilter={"funnelWindowInterval": 1, "funnelWindowIntervalUnit": "month"},
        **absolute("2024-01-01", "2024-02-29"),
    )
    assert counts(results) == [2, 1]
    assert results[0]["custom_name"] == "Arrived" and results[0]["name"] == "a"
