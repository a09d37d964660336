"""Event property filters: every operator, lists, AND/OR groups, query-level ANDed with series-level."""

from typing import Any

import httpx
import pytest

from tests.events import event, ingest
from tests.factories import Actor
from tests.trends_helpers import absolute, node, results, utc

# Every test here runs on PostgreSQL and on ClickHouse (tests/conftest.py).
pytestmark = pytest.mark.both_backends

RANGE = absolute("2025-03-01", "2025-03-01")

PROPERTIES: list[dict[str, Any]] = [
    {"$browser": "Chrome", "$current_url": "https://a.com/x?y", "plan": "pro", "amount": 10, "flag": True},
    {"$browser": "Safari", "$current_url": "https://B.com/pricing", "plan": "free", "amount": "25"},
    {"$browser": "Firefox", "amount": 3.5, "flag": False, "plan": None},
    {},
    {"$browser": "chrome", "amount": "n/a", "$current_url": "100%_sure"},
]


@pytest.fixture
async def events(client: httpx.AsyncClient, actor: Actor) -> None:
    batch = [event("$pageview", f"u{i}", utc(2025, 3, 1, 12, i), p) for i, p in enumerate(PROPERTIES)]
    # Same properties on another event name: never counted by a $pageview series.
    batch += [event("signup", f"s{i}", utc(2025, 3, 1, 12, i), p) for i, p in enumerate(PROPERTIES)]
    await ingest(client, actor, batch)


def prop(key: str, operator: str | None, value: Any = None) -> dict[str, Any]:
    item: dict[str, Any] = {"type": "event", "key": key, "value": value}
    if operator is not None:
        item["operator"] = operator
    return item


async def count(client: httpx.AsyncClient, actor: Actor, query_properties: Any, **series: Any) -> int:
    [result] = await results(client, actor, node(**series), properties=query_properties, **RANGE)
    total: int = result["data"][0]
    return total


CASES = [
    # (filter, matching events by index into PROPERTIES)
    (prop("$browser", "exact", "Chrome"), {0}),
    (prop("$browser", None, "Chrome"), {0}),  # no operator means exact
    (prop("$browser", "exact", ["Chrome", "Safari"]), {0, 1}),
    (prop("$browser", "exact", []), set()),
    (prop("$browser", "is_not", "Chrome"), {1, 2, 3, 4}),  # without the property too
    (prop("$browser", "is_not", ["Chrome", "Safari"]), {2, 3, 4}),
    (prop("$browser", "icontains", "chrome"), {0, 4}),
    (prop("$browser", "icontains", ["saf", "FIRE"]), {1, 2}),
    (prop("$browser", "not_icontains", "chrome"), {1, 2, 3}),
    (prop("$current_url", "icontains", "a.com/x?"), {0}),  # no pattern characters
    (prop("$current_url", "icontains", "%_"), {4}),
    (prop("$current_url", "icontains", "b.COM"), {1}),
    (prop("$browser", "regex", "^(Chrome|Safari)$"), {0, 1}),
    (prop("$browser", "regex", "^[cC]hr"), {0, 4}),
    (prop("$browser", "not_regex", "^Chr"), {1, 2, 3, 4}),
    (prop("amount", "gt", 5), {0, 1}),  # "25" is a number in a string
    (prop("amount", "gt", "4"), {0, 1}),
    (prop("amount", "gte", 10), {0, 1}),
    (prop("amount", "lt", 10), {2}),  # "n/a" and missing values never compare
    (prop("amount", "lte", 3.5), {2}),
    (prop("amount", "gt", 25), set()),
    (prop("plan", "is_set"), {0, 1}),  # JSON null is not set
    (prop("plan", "is_not_set"), {2, 3, 4}),
    (prop("amount", "exact", 10), {0}),
    (prop("amount", "exact", 25), {1}),
    (prop("amount", "exact", 3.5), {2}),
    (prop("amount", "is_not", 10), {1, 2, 3, 4}),
    (prop("flag", "exact", True), {0}),
    (prop("flag", "exact", "false"), {2}),
]


@pytest.mark.parametrize(
    ("flt", "expected"), CASES, ids=[f"{c[0]['key']}-{c[0].get('operator')}-{c[0]['value']}" for c in CASES]
)
async def test_operator(
    client: httpx.AsyncClient, actor: Actor, events: None, flt: dict[str, Any], expected: set[int]
) -> None:
    assert await count(client, actor, [flt]) == len(expected)
    # The same filter on the series, and in a one-item group, gives the same number.
    assert await count(client, actor, [], properties=[flt]) == len(expected)
    assert await count(client, actor, {"type": "AND", "values": [flt]}) == len(expected)


async def test_filters_in_a_list_are_anded(client: httpx.AsyncClient, actor: Actor, events: None) -> None:
    both = [prop("$browser", "icontains", "chrome"), prop("amount", "exact", 10)]
    assert await count(client, actor, both) == 1


async def test_or_and_groups(client: httpx.AsyncClient, actor: Actor, events: None) -> None:
    group = {
        "type": "OR",
        "values": [
            {"type": "AND", "values": [prop("$browser", "exact", "Chrome"), prop("plan", "exact", "pro")]},
            {"type": "AND", "values": [prop("$browser", "exact", "Firefox")]},
            {"type": "AND", "values": [prop("$browser", "exact", "Safari"), prop("plan", "exact", "pro")]},
        ],
    }
    assert await count(client, actor, group) == 2
    nested = {
        "type": "AND",
        "values": [
            {"type": "OR", "values": [prop("amount", "gt", 5), prop("plan", "is_not_set")]},
            {"type": "OR", "values": [prop("$browser", "icontains", "o")]},
        ],
    }
    # Every event passes the first OR; the browsers containing "o" are Chrome, Firefox and chrome.
    assert await count(client, actor, nested) == 3
    assert await count(client, actor, {"type": "AND", "values": []}) == 5


async def test_query_and_series_filters_are_anded(
    client: httpx.AsyncClient, actor: Actor, events: None
) -> None:
    out = await results(
        client,
        actor,
        node(properties=[prop("$browser", "exact", "Safari")]),
        node(properties=[prop("$browser", "exact", "Firefox")]),
        node("signup", properties=[prop("$browser", "exact", "Chrome")]),
        properties=[prop("plan", "is_set")],
        **RANGE,
    )
    assert [s["data"] for s in out] == [[1], [0], [1]]
