"""Funnel breakdowns (insight-kinds §1.2.7, §1.3.2): attribution types, `[""]` for missing values, `["Other"]`
past the limit, person properties; time to convert's histogram (§1.2.9)."""

from datetime import timedelta
from typing import Any

import httpx
import pytest

from tests.events import event, ingest
from tests.factories import Actor
from tests.funnels_helpers import funnel, step
from tests.trends_helpers import absolute, utc

pytestmark = pytest.mark.both_backends

JAN = absolute("2024-01-01", "2024-01-07")
BROWSER = {"breakdownFilter": {"breakdown": "$browser", "breakdown_type": "event"}}


def groups(results: list[list[dict[str, Any]]]) -> list[tuple[list[str], list[int]]]:
    out = []
    for group in results:
        assert all(s["breakdown"] == s["breakdown_value"] == group[0]["breakdown_value"] for s in group)
        out.append((group[0]["breakdown_value"], [s["count"] for s in group]))
    return out


@pytest.fixture
async def browsers(client: httpx.AsyncClient, actor: Actor) -> None:
    """p: a on Chrome, b on Safari. q: a without a browser, b on Firefox. r: a on Chrome, no b."""
    await ingest(
        client,
        actor,
        [
            event("a", "p", utc(2024, 1, 1, 10), {"$browser": "Chrome"}),
            event("b", "p", utc(2024, 1, 1, 11), {"$browser": "Safari"}),
            event("a", "q", utc(2024, 1, 1, 10)),
            event("b", "q", utc(2024, 1, 1, 11), {"$browser": "Firefox"}),
            event("a", "r", utc(2024, 1, 1, 10), {"$browser": "Chrome"}),
        ],
    )


async def _by(client: httpx.AsyncClient, actor: Actor, attribution: str, **extra: Any) -> Any:
    funnels_filter = {"breakdownAttributionType": attribution, **extra}
    return await funnel(client, actor, step("a"), step("b"), funnelsFilter=funnels_filter, **BROWSER, **JAN)


async def test_first_touch(client: httpx.AsyncClient, actor: Actor, browsers: None) -> None:
    # p Chrome (its a), q Firefox (its first non-empty value, on b), r Chrome. Chrome and Firefox tie at the
    # last step (1 each); Chrome has more at step 1.
    results = await _by(client, actor, "first_touch")
    assert groups(results) == [(["Chrome"], [2, 1]), (["Firefox"], [1, 1])]
    assert results[0][1]["average_conversion_time"] == 3600.0


async def test_last_touch(client: httpx.AsyncClient, actor: Actor, browsers: None) -> None:
    # p Safari, q Firefox, r Chrome. Ties (1, 1) in value order; Chrome, who never converted, last.
    results = await _by(client, actor, "last_touch")
    assert groups(results) == [(["Firefox"], [1, 1]), (["Safari"], [1, 1]), (["Chrome"], [1, 0])]


async def test_all_events(client: httpx.AsyncClient, actor: Actor, browsers: None) -> None:
    # Per value, only the events carrying it: p Chrome (a only) and Safari (b only: not in the funnel); q ""
    # (a only) and Firefox (b only); r Chrome.
    results = await _by(client, actor, "all_events")
    assert groups(results) == [(["Chrome"], [2, 0]), ([""], [1, 0])]


async def test_step_attribution(client: httpx.AsyncClient, actor: Actor, browsers: None) -> None:
    # The value of the b (step 1) event: p Safari and q Firefox convert; r has no b: "".
    results = await _by(client, actor, "step", breakdownAttributionValue=1)
    assert groups(results) == [(["Firefox"], [1, 1]), (["Safari"], [1, 1]), ([""], [1, 0])]


async def test_missing_value_is_empty_string(client: httpx.AsyncClient, actor: Actor) -> None:
    await ingest(client, actor, [event("a", "s", utc(2024, 1, 1, 10)), event("b", "s", utc(2024, 1, 1, 11))])
    results = await _by(client, actor, "first_touch")
    assert groups(results) == [([""], [1, 1])]


async def test_other_past_the_limit(client: httpx.AsyncClient, actor: Actor, browsers: None) -> None:
    results = await funnel(
        client,
        actor,
        step("a"),
        step("b"),
        breakdownFilter={"breakdown": "$browser", "breakdown_type": "event", "breakdown_limit": 1},
        **JAN,
    )
    # first_touch: Chrome (p, r) ranks first; Firefox (q) goes to Other.
    assert groups(results) == [(["Chrome"], [2, 1]), (["Other"], [1, 1])]


async def test_other_sorts_by_its_counts(client: httpx.AsyncClient, actor: Actor, browsers: None) -> None:
    # last_touch with limit 1: Firefox is kept; Safari and Chrome merge into Other: [2, 1], first.
    results = await funnel(
        client,
        actor,
        step("a"),
        step("b"),
        funnelsFilter={"breakdownAttributionType": "last_touch"},
        breakdownFilter={"breakdown": "$browser", "breakdown_limit": 1},
        **JAN,
    )
    assert groups(results) == [(["Other"], [2, 1]), (["Firefox"], [1, 1])]


async def test_person_property_breakdown(client: httpx.AsyncClient, actor: Actor, browsers: None) -> None:
    # The persons' properties as capture sets them (on either backend's person store).
    await ingest(
        client,
        actor,
        [
            event("$identify", "p", utc(2024, 1, 1), {"$set": {"plan": "pro"}}),
            event("$identify", "q", utc(2024, 1, 1), {"$set": {"plan": "free"}}),
        ],
    )
    results = await funnel(
        client,
        actor,
        step("a"),
        step("b"),
        breakdownFilter={"breakdown": "plan", "breakdown_type": "person"},
        **JAN,
    )
    # r has no person: "".
    assert groups(results) == [(["free"], [1, 1]), (["pro"], [1, 1]), ([""], [1, 0])]


async def test_breakdown_as_a_one_item_list(client: httpx.AsyncClient, actor: Actor, browsers: None) -> None:
    results = await funnel(
        client, actor, step("a"), step("b"), breakdownFilter={"breakdown": ["$browser"]}, **JAN
    )
    assert groups(results) == [(["Chrome"], [2, 1]), (["Firefox"], [1, 1])]


@pytest.fixture
async def three_converters(client: httpx.AsyncClient, actor: Actor) -> None:
    """a → b in 2220 s (37 min), 3600 s and 82800 s (23 h); one more actor never converts."""
    batch = [event("a", "never", utc(2024, 1, 1, 9))]
    for i, seconds in enumerate([2220, 3600, 82800]):
        batch += [
            event("a", f"p{i}", utc(2024, 1, 1, 10)),
            event("b", f"p{i}", utc(2024, 1, 1, 10) + timedelta(seconds=seconds)),
        ]
    await ingest(client, actor, batch)


async def test_time_to_convert_histogram(
    client: httpx.AsyncClient, actor: Actor, three_converters: None
) -> None:
    # 3 actors: ceil(cbrt(3)) = 2 bins, width ceil((82800 - 2220) / 2) = 40290, bins + 1 starts.
    results = await funnel(
        client, actor, step("a"), step("b"), funnelsFilter={"funnelVizType": "time_to_convert"}, **JAN
    )
    assert results == {
        "bins": [[2220, 2], [42510, 0], [82800, 1]],
        "average_conversion_time": 29540.0,
        "median_conversion_time": 3600.0,
    }


async def test_time_to_convert_custom_bins_and_breakdown_ignored(
    client: httpx.AsyncClient, actor: Actor, three_converters: None
) -> None:
    results = await funnel(
        client,
        actor,
        step("a"),
        step("b"),
        funnelsFilter={"funnelVizType": "time_to_convert", "binCount": 4},
        **BROWSER,
        **JAN,
    )
    # width ceil(80580 / 4) = 20145.
    assert results["bins"] == [[2220, 2], [22365, 0], [42510, 0], [62655, 0], [82800, 1]]


async def test_time_to_convert_between_chosen_steps(client: httpx.AsyncClient, actor: Actor) -> None:
    # a 10:00, b 10:10, c 10:40: from step 1 to step 2 is 1800 s; from 0 to 2 is 2400 s.
    await ingest(
        client,
        actor,
        [
            event("a", "p", utc(2024, 1, 1, 10)),
            event("b", "p", utc(2024, 1, 1, 10, 10)),
            event("c", "p", utc(2024, 1, 1, 10, 40)),
        ],
    )
    steps = (step("a"), step("b"), step("c"))
    viz = {"funnelVizType": "time_to_convert"}
    whole = await funnel(client, actor, *steps, funnelsFilter=viz, **JAN)
    assert whole["average_conversion_time"] == 2400.0
    part = await funnel(client, actor, *steps, funnelsFilter={**viz, "funnelFromStep": 1}, **JAN)
    assert part["average_conversion_time"] == 1800.0
    assert part["bins"] == [[1800, 1], [1860, 0]]


async def test_time_to_convert_without_converters(client: httpx.AsyncClient, actor: Actor) -> None:
    results = await funnel(
        client, actor, step("a"), step("b"), funnelsFilter={"funnelVizType": "time_to_convert"}, **JAN
    )
    assert results == {
        "bins": [[0, 0], [60, 0]],
        "average_conversion_time": None,
        "median_conversion_time": None,
    }


async def test_trends_from_and_to_steps(client: httpx.AsyncClient, actor: Actor) -> None:
    # Day 1: p a→b→c, q a→b, r a. Day 2: s a. From step 1 to step 2 on day 1: of p and q (who reached b), p
    # reached c: 50%. Day 2: nobody reached b: 0.
    await ingest(
        client,
        actor,
        [
            event("a", "p", utc(2024, 1, 1, 10)),
            event("b", "p", utc(2024, 1, 1, 11)),
            event("c", "p", utc(2024, 1, 1, 12)),
            event("a", "q", utc(2024, 1, 1, 10)),
            event("b", "q", utc(2024, 1, 1, 11)),
            event("a", "r", utc(2024, 1, 1, 10)),
            event("a", "s", utc(2024, 1, 2, 10)),
        ],
    )
    steps = (step("a"), step("b"), step("c"))
    days = absolute("2024-01-01", "2024-01-02")
    whole = await funnel(client, actor, *steps, funnelsFilter={"funnelVizType": "trends"}, **days)
    assert whole[0]["data"] == [33.33, 0.0]
    part = await funnel(
        client, actor, *steps, funnelsFilter={"funnelVizType": "trends", "funnelFromStep": 1}, **days
    )
    assert part[0]["data"] == [50.0, 0.0]
    weekly = await funnel(
        client,
        actor,
        *steps,
        funnelsFilter={"funnelVizType": "trends"},
        interval="week",
        **absolute("2024-01-01", "2024-01-13"),
    )
    # Weeks start on Sunday: 2023-12-31 and 2024-01-07.
    assert weekly[0]["days"] == ["2023-12-31", "2024-01-07"]
    assert weekly[0]["data"] == [25.0, 0.0]
    assert weekly[0]["count"] == 2
