"""StickinessQuery on hand-built events, worked out by hand (insight-kinds §4), through `POST /query/`."""

from typing import Any

import httpx
import pytest

from tests.events import event
from tests.factories import Actor
from tests.kinds_helpers import days, pageview, put, query, refused

pytestmark = pytest.mark.both_backends


def node(event_name: str | None = "$pageview", **fields: Any) -> dict[str, Any]:
    return {"kind": "EventsNode", "event": event_name, "name": event_name, **fields}


async def _worked_example(client: httpx.AsyncClient, actor: Actor) -> None:
    """§4.4: a active on Jan 1, 2 and 4 (two pageviews on Jan 1); b on Jan 1; c on Jan 2 and 3."""
    await put(
        client,
        actor,
        pageview("a", "2024-01-01T09:00:00Z"),
        pageview("a", "2024-01-01T10:00:00Z"),
        pageview("a", "2024-01-02T10:00:00Z"),
        pageview("a", "2024-01-04T10:00:00Z"),
        pageview("b", "2024-01-01T10:00:00Z"),
        pageview("c", "2024-01-02T10:00:00Z"),
        pageview("c", "2024-01-03T10:00:00Z"),
        event("other", "d", "2024-01-03T10:00:00Z"),
    )


async def test_worked_example_field_by_field(client: httpx.AsyncClient, actor: Actor) -> None:
    await _worked_example(client, actor)
    body = await query(
        client,
        actor,
        "StickinessQuery",
        series=[node()],
        interval="day",
        dateRange=days("2024-01-01", "2024-01-05"),
    )
    assert body["results"] == [
        {
            "count": 3,
            "data": [1, 1, 1, 0, 0],
            "days": [1, 2, 3, 4, 5],
            "labels": ["1 day", "2 days", "3 days", "4 days", "5 days"],
            "label": "$pageview",
            "action": {
                "order": 0,
                "type": "events",
                "name": "$pageview",
                "id": "$pageview",
                "custom_name": None,
            },
        }
    ]


async def test_cumulative_and_criteria(client: httpx.AsyncClient, actor: Actor) -> None:
    await _worked_example(client, actor)
    cumulative = await query(
        client,
        actor,
        "StickinessQuery",
        series=[node()],
        dateRange=days("2024-01-01", "2024-01-05"),
        stickinessFilter={"computedAs": "cumulative"},
    )
    (result,) = cumulative["results"]
    assert result["data"] == [3, 2, 1, 0, 0] and result["count"] == 3
    assert result["labels"] == [
        "1 day or more",
        "2 days or more",
        "3 days or more",
        "4 days or more",
        "5 days or more",
    ]
    # Only days with at least 2 pageviews count: a on Jan 1 alone.
    criteria = await query(
        client,
        actor,
        "StickinessQuery",
        series=[node()],
        dateRange=days("2024-01-01", "2024-01-05"),
        stickinessFilter={"stickinessCriteria": {"operator": "gte", "value": 2}},
    )
    assert criteria["results"][0]["data"] == [1, 0, 0, 0, 0] and criteria["results"][0]["count"] == 1
    # At most 1 pageview: a's Jan 2 and Jan 4, b's Jan 1, c's Jan 2 and 3.
    at_most = await query(
        client,
        actor,
        "StickinessQuery",
        series=[node()],
        dateRange=days("2024-01-01", "2024-01-05"),
        stickinessFilter={"stickinessCriteria": {"operator": "lte", "value": 1}},
    )
    assert at_most["results"][0]["data"] == [1, 2, 0, 0, 0]
    exact = await query(
        client,
        actor,
        "StickinessQuery",
        series=[node()],
        dateRange=days("2024-01-01", "2024-01-05"),
        stickinessFilter={"stickinessCriteria": {"operator": "exact", "value": 1}},
    )
    assert exact["results"][0]["data"] == [1, 2, 0, 0, 0]


async def test_compare_interleaves_per_series(client: httpx.AsyncClient, actor: Actor) -> None:
    """Current Jan 8-14, previous Jan 1-7. a: pageviews Jan 8, 9 and Jan 2, a sign-up Jan 10; b: pageviews Jan
    3, 4, 5."""
    await put(
        client,
        actor,
        pageview("a", "2024-01-08T10:00:00Z"),
        pageview("a", "2024-01-09T10:00:00Z"),
        pageview("a", "2024-01-02T10:00:00Z"),
        pageview("b", "2024-01-03T10:00:00Z"),
        pageview("b", "2024-01-04T10:00:00Z"),
        pageview("b", "2024-01-05T10:00:00Z"),
        event("signed_up", "a", "2024-01-10T10:00:00Z"),
    )
    body = await query(
        client,
        actor,
        "StickinessQuery",
        series=[node(), node("signed_up")],
        dateRange=days("2024-01-08", "2024-01-14"),
        compareFilter={"compare": True},
    )
    summary = [
        (r["label"], r["compare_label"], r["data"], r["count"], r["action"]["order"]) for r in body["results"]
    ]
    assert summary == [
        ("$pageview", "current", [0, 1, 0, 0, 0, 0, 0], 1, 0),
        ("$pageview", "previous", [1, 0, 1, 0, 0, 0, 0], 2, 0),
        ("signed_up", "current", [1, 0, 0, 0, 0, 0, 0], 1, 1),
        ("signed_up", "previous", [0, 0, 0, 0, 0, 0, 0], 0, 1),
    ]
    assert all(r["compare"] is True for r in body["results"])


async def test_interval_count_and_weeks(client: httpx.AsyncClient, actor: Actor) -> None:
    """Jan 1-6 in intervals of 2 days counted back from Jan 6: {5, 6}, {3, 4}, {1, 2}. a: Jan 1 and 2 (one
    interval); b: Jan 2 and 3 (two); c: Jan 1, 4 and 6 (three)."""
    await put(
        client,
        actor,
        *(
            pageview(who, f"2024-01-0{day}T10:00:00Z")
            for who, on in {"a": (1, 2), "b": (2, 3), "c": (1, 4, 6)}.items()
            for day in on
        ),
    )
    pairs = await query(
        client,
        actor,
        "StickinessQuery",
        series=[node()],
        intervalCount=2,
        dateRange=days("2024-01-01", "2024-01-06"),
    )
    (result,) = pairs["results"]
    assert (result["data"], result["days"], result["labels"]) == (
        [1, 1, 1],
        [1, 2, 3],
        ["1 day", "2 days", "3 days"],
    )
    # Fri Jan 5 to Wed Jan 10 covers parts of 2 weeks (Sunday starts): events from Jan 5 on are read.
    await put(
        client,
        actor,
        pageview("w", "2024-01-04T10:00:00Z"),
        pageview("w", "2024-01-09T10:00:00Z"),
        pageview("v", "2024-01-05T10:00:00Z"),
        pageview("v", "2024-01-08T10:00:00Z"),
    )
    weeks = await query(
        client,
        actor,
        "StickinessQuery",
        series=[node()],
        interval="week",
        dateRange=days("2024-01-05", "2024-01-10"),
        properties=[{"key": "$distinct_id", "value": "x", "operator": "is_not"}],
    )
    (result,) = weeks["results"]
    # a, b, c (c: Jan 6) and w are active 1 week; v 2 weeks. c's Jan 6 -> 1 week.
    assert result["labels"] == ["1 week", "2 weeks"]
    assert result["data"] == [2, 1]


async def test_unsupported_fields_are_named(client: httpx.AsyncClient, actor: Actor) -> None:
    cases: list[tuple[dict[str, Any], str, str]] = [
        (
            {"series": [node(math="unique_group", math_group_type_index=0)]},
            "query__source__series__0__math",
            "unsupported_query",
        ),
        (
            {"series": [node()], "breakdownFilter": {"breakdown": "$browser"}},
            "query__source__breakdownFilter",
            "unsupported_query",
        ),
        (
            {"series": [node()], "aggregation_group_type_index": 1},
            "query__source__aggregation_group_type_index",
            "unsupported_query",
        ),
        ({"series": [node()], "interval": "minute"}, "query__source__interval", "unsupported_query"),
        (
            {"series": [node()], "stickinessFilter": {"x": 1}},
            "query__source__stickinessFilter__x",
            "unsupported_query",
        ),
        ({"series": [node()], "intervalCount": 0}, "query__source__intervalCount", "invalid_query"),
        ({"series": []}, "query__source__series", "invalid_query"),
    ]
    for source, attr, code in cases:
        body = await refused(client, actor, "StickinessQuery", **source)
        assert (body["attr"], body["code"]) == (attr, code), (source, body)


async def test_months_interval_count_person_filter_and_criteria_agree_on_both_backends(
    client: httpx.AsyncClient, actor: Actor
) -> None:
    """Where ClickHouse differs: periods between two months are counted with its own date arithmetic
    (`dateDiff`), person properties come from its own person table (joined only when a filter reads them), and
    properties are JSON text read as PostgreSQL's `->>`. Intervals of two months counted back from June:
    (May, Jun), (Mar, Apr), (Jan, Feb). a (plan "pro"): Jan 20, Feb 3, Jun 1; b: Mar 10, Apr 10, May 10;
    c: Jun 30."""
    await put(
        client,
        actor,
        event("$pageview", "a", "2024-01-20T10:00:00Z", {"$set": {"plan": "pro"}}),
        pageview("a", "2024-02-03T10:00:00Z"),
        pageview("a", "2024-06-01T10:00:00Z"),
        pageview("b", "2024-03-10T10:00:00Z"),
        pageview("b", "2024-04-10T10:00:00Z"),
        pageview("b", "2024-05-10T10:00:00Z"),
        pageview("c", "2024-06-30T12:00:00Z"),
    )
    source = {
        "series": [node()],
        "interval": "month",
        "intervalCount": 2,
        "dateRange": days("2024-01-01", "2024-06-30"),
    }
    [every] = (await query(client, actor, "StickinessQuery", **source))["results"]
    assert every["data"] == [1, 2, 0]  # c in one interval; a and b in two
    assert every["labels"] == ["1 month", "2 months", "3 months"]
    pro = [{"key": "plan", "type": "person", "value": "pro", "operator": "exact"}]
    [filtered] = (await query(client, actor, "StickinessQuery", properties=pro, **source))["results"]
    assert filtered["data"] == [0, 1, 0]
    # At least two events in an interval: a's (Jan, Feb) and b's (Mar, Apr).
    criteria = {"stickinessCriteria": {"operator": "gte", "value": 2}}
    [busy] = (await query(client, actor, "StickinessQuery", stickinessFilter=criteria, **source))["results"]
    assert busy["data"] == [2, 0, 0]
