"""Breakdowns by event property (capture-and-trends.md B.5): ranking, null and other values, limits."""

from typing import Any

import httpx
import pytest

from tests.events import event, ingest
from tests.factories import Actor
from tests.trends_helpers import absolute, node, results, run, utc

# Every test here runs on PostgreSQL and on ClickHouse (tests/conftest.py).
pytestmark = pytest.mark.both_backends

NULL = "$$_posthog_breakdown_null_$$"
OTHER = "$$_posthog_breakdown_other_$$"
RANGE = absolute("2025-03-01", "2025-03-03")


@pytest.fixture
async def browsers(client: httpx.AsyncClient, actor: Actor) -> None:
    """Totals: Chrome 4; Edge, Firefox, Safari and no browser 2 each (Safari by one person)."""
    rows: list[tuple[str, str | None, int]] = [
        ("u1", "Chrome", 1),
        ("u2", "Chrome", 1),
        ("u3", "Chrome", 1),
        ("u1", "Chrome", 3),
        ("u9", "Safari", 2),
        ("u9", "Safari", 2),
        ("u4", "Firefox", 1),
        ("u5", "Firefox", 3),
        ("u10", "Edge", 3),
        ("u11", "Edge", 3),
        ("u6", None, 2),  # no $browser at all
        ("u7", "", 3),  # an empty string is the null value too
    ]
    batch = []
    for i, (person, browser, day) in enumerate(rows):
        properties = {} if browser is None else {"$browser": browser}
        batch.append(event("$pageview", person, utc(2025, 3, day, 12, i), properties))
    batch.append(event("signup", "u1", utc(2025, 3, 1, 12), {"$browser": "Opera"}))
    await ingest(client, actor, batch)


def breakdown(**fields: Any) -> dict[str, Any]:
    return {"breakdownFilter": {"breakdown": "$browser", "breakdown_type": "event", **fields}}


def by_value(out: list[dict[str, Any]]) -> list[tuple[str, list[Any]]]:
    return [(s["breakdown_value"], s["data"]) for s in out]


async def test_values_ranked_by_total_then_value(
    client: httpx.AsyncClient, actor: Actor, browsers: None
) -> None:
    body = await run(client, actor, node(), **breakdown(), **RANGE)
    # Ties (2) in byte order; the null value takes part in the ranking but is listed after the others.
    assert by_value(body["results"]) == [
        ("Chrome", [3, 0, 1]),
        ("Edge", [0, 0, 2]),
        ("Firefox", [1, 0, 1]),
        ("Safari", [0, 2, 0]),
        (NULL, [0, 1, 1]),
    ]
    assert [s["label"] for s in body["results"]] == ["Chrome", "Edge", "Firefox", "Safari", NULL]
    assert [s["count"] for s in body["results"]] == [4.0, 2.0, 2.0, 2.0, 2.0]
    assert body["hasMore"] is False
    assert {s["order"] for s in body["results"]} == {0}


async def test_limit_sums_the_rest_into_other(
    client: httpx.AsyncClient, actor: Actor, browsers: None
) -> None:
    body = await run(client, actor, node(), **breakdown(breakdown_limit=2), **RANGE)
    assert by_value(body["results"]) == [("Chrome", [3, 0, 1]), (NULL, [0, 1, 1]), (OTHER, [1, 2, 3])]
    assert body["results"][-1]["label"] == OTHER
    assert body["hasMore"] is True

    body = await run(client, actor, node(), **breakdown(breakdown_limit=3), **RANGE)
    assert by_value(body["results"]) == [
        ("Chrome", [3, 0, 1]),
        ("Edge", [0, 0, 2]),
        (NULL, [0, 1, 1]),
        (OTHER, [1, 2, 1]),
    ]


async def test_hidden_other_still_reports_more(
    client: httpx.AsyncClient, actor: Actor, browsers: None
) -> None:
    body = await run(
        client, actor, node(), **breakdown(breakdown_limit=2, breakdown_hide_other_aggregation=True), **RANGE
    )
    assert by_value(body["results"]) == [("Chrome", [3, 0, 1]), (NULL, [0, 1, 1])]
    assert body["hasMore"] is True


async def test_each_series_ranks_its_own_values(
    client: httpx.AsyncClient, actor: Actor, browsers: None
) -> None:
    out = await results(client, actor, node(), node(math="dau"), **breakdown(breakdown_limit=2), **RANGE)
    assert [(s["order"], s["label"], s["data"]) for s in out] == [
        (0, "$pageview - Chrome", [3, 0, 1]),
        (0, f"$pageview - {NULL}", [0, 1, 1]),
        (0, f"$pageview - {OTHER}", [1, 2, 3]),
        # By persons Safari has 1, so the top two are Chrome and the null value; "other" sums daily uniques.
        (1, "$pageview - Chrome", [3, 0, 1]),
        (1, f"$pageview - {NULL}", [0, 1, 1]),
        (1, f"$pageview - {OTHER}", [1, 1, 3]),
    ]
    assert [s["breakdown_value"] for s in out[:3]] == ["Chrome", NULL, OTHER]


async def test_total_value_breakdown(client: httpx.AsyncClient, actor: Actor, browsers: None) -> None:
    display = {"trendsFilter": {"display": "ActionsPie"}}
    out = await results(client, actor, node(), **breakdown(), **display, **RANGE)
    assert [(s["breakdown_value"], s["aggregated_value"]) for s in out] == [
        ("Chrome", 4),
        ("Edge", 2),
        ("Firefox", 2),
        ("Safari", 2),
        (NULL, 2),
    ]
    assert all(s["data"] == [] and s["days"] == [] and "labels" not in s for s in out)
    limited = await run(client, actor, node(math="dau"), **breakdown(breakdown_limit=2), **display, **RANGE)
    # Over the whole range Chrome has 3 persons (u1 twice), the null value 2, the rest 2 + 2 + 1.
    assert [(s["breakdown_value"], s["aggregated_value"]) for s in limited["results"]] == [
        ("Chrome", 3),
        (NULL, 2),
        (OTHER, 5),
    ]
    assert limited["hasMore"] is True


async def test_world_map_shows_up_to_250_values(
    client: httpx.AsyncClient, actor: Actor, browsers: None
) -> None:
    body = await run(
        client, actor, node(), **breakdown(breakdown_limit=1), trendsFilter={"display": "WorldMap"}, **RANGE
    )
    assert [s["breakdown_value"] for s in body["results"]] == ["Chrome", "Edge", "Firefox", "Safari", NULL]
    assert body["hasMore"] is False


async def test_cumulative_dau_counts_a_person_once_per_value(
    client: httpx.AsyncClient, actor: Actor, browsers: None
) -> None:
    out = await results(
        client,
        actor,
        node(math="dau"),
        **breakdown(),
        trendsFilter={"display": "ActionsLineGraphCumulative"},
        **RANGE,
    )
    # u1's Chrome visit on 3 Mar is not new.
    assert by_value(out)[0] == ("Chrome", [3, 3, 3])
    assert out[0]["count"] == 3.0


async def test_non_string_values_are_their_json_text(client: httpx.AsyncClient, actor: Actor) -> None:
    await ingest(
        client,
        actor,
        [
            event("$pageview", "a", utc(2025, 3, 1, 12), {"level": 2}),
            event("$pageview", "b", utc(2025, 3, 1, 12), {"level": 2}),
            event("$pageview", "c", utc(2025, 3, 1, 12), {"level": True}),
            event("$pageview", "d", utc(2025, 3, 1, 12), {"level": 2.5}),
            event("$pageview", "e", utc(2025, 3, 1, 12), {"level": None}),
        ],
    )
    out = await results(client, actor, node(), breakdownFilter={"breakdown": "level"}, **RANGE)
    assert by_value(out) == [("2", [2, 0, 0]), ("2.5", [1, 0, 0]), ("true", [1, 0, 0]), (NULL, [1, 0, 0])]


async def test_normalized_urls(client: httpx.AsyncClient, actor: Actor) -> None:
    urls = ["https://a.com/x/", "https://a.com/x?", "https://a.com/x", "/", "https://a.com/y#"]
    await ingest(
        client, actor, [event("$pageview", "a", utc(2025, 3, 1, 12), {"$current_url": u}) for u in urls]
    )
    normalized = await results(
        client,
        actor,
        node(),
        breakdownFilter={"breakdown": "$current_url", "breakdown_normalize_url": True},
        **RANGE,
    )
    assert by_value(normalized) == [
        ("https://a.com/x", [3, 0, 0]),
        ("/", [1, 0, 0]),
        ("https://a.com/y", [1, 0, 0]),
    ]
    raw = await results(client, actor, node(), breakdownFilter={"breakdown": "$current_url"}, **RANGE)
    assert len(raw) == 5


async def test_property_math_breakdown_skips_an_empty_null_value(
    client: httpx.AsyncClient, actor: Actor
) -> None:
    await ingest(
        client,
        actor,
        [
            event("$pageview", "a", utc(2025, 3, 1, 12), {"$browser": "Chrome", "revenue": 5}),
            event("$pageview", "a", utc(2025, 3, 2, 12), {"$browser": "Chrome", "revenue": 7}),
            event("$pageview", "b", utc(2025, 3, 1, 12), {"$browser": "Safari", "revenue": 11}),
            event("$pageview", "c", utc(2025, 3, 2, 12), {"$browser": "Edge", "revenue": 1.5}),
            event("$pageview", "d", utc(2025, 3, 2, 12), {"revenue": "none"}),
        ],
    )
    revenue = node(math="sum", math_property="revenue")
    out = await results(client, actor, revenue, **breakdown(), **RANGE)
    # The null value has events but no number: a 0 series, left out.
    assert by_value(out) == [
        ("Chrome", [5.0, 7.0, 0.0]),
        ("Safari", [11.0, 0.0, 0.0]),
        ("Edge", [0.0, 1.5, 0.0]),
    ]
    out = await results(client, actor, revenue, **breakdown(breakdown_limit=1), **RANGE)
    # Chrome 12 ranks above Safari 11; "other" adds up the others' daily sums.
    assert by_value(out) == [("Chrome", [5.0, 7.0, 0.0]), (OTHER, [11.0, 1.5, 0.0])]


async def test_no_events_no_breakdown_series(client: httpx.AsyncClient, actor: Actor) -> None:
    body = await run(client, actor, node(), **breakdown(), **RANGE)
    assert body["results"] == [] and body["hasMore"] is False
