"""An insight's query is checked when it is saved: a TrendsQuery (the kind the engine implements) that fails
its schema or breaks a limit is a 400 naming the field; kinds and fields not implemented yet are stored and
render as a tile error."""

import json
from typing import Any

import httpx
import pytest

from tests.factories import Actor
from tests.trends_helpers import node, trends_query


def _with(series: dict[str, Any] | None = None, **source: Any) -> dict[str, Any]:
    return trends_query(series or node(), **source)


def _nested_groups(depth: int) -> dict[str, Any]:
    group: dict[str, Any] = {"key": "a", "value": "x"}
    for _ in range(depth):
        group = {"type": "AND", "values": [group]}
    return group


async def save(
    client: httpx.AsyncClient, actor: Actor, method: str, url: str, body_json: str
) -> httpx.Response:
    headers = {**actor.headers, "Content-Type": "application/json"}
    return await client.request(method, url, content=body_json.encode(), headers=headers)


def _insight_body(query_json: str) -> str:
    return '{"name": "x", "query": ' + query_json + "}"


TRENDS_HEAD = (
    '{"kind": "InsightVizNode", "source": {"kind": "TrendsQuery", "series": [{"kind": "EventsNode"}]'
)
REFUSED_AT_SAVE = [
    (
        TRENDS_HEAD
        + ', "interval": "hour", "breakdownFilter": {"breakdown": "b", "breakdown_limit": 5000}}}',
        "query__source__breakdownFilter__breakdown_limit",
        "query_too_large",
    ),
    (
        TRENDS_HEAD + ', "properties": [{"key": "n", "value": 1e400}]}}',
        "query__source__properties__0__value",
        None,
    ),
    (
        TRENDS_HEAD + ', "properties": [{"key": "n", "value": [' + ",".join(["1"] * 40_000) + "]}]}}",
        "query__source__properties__0__value",
        "query_too_large",
    ),
    (
        TRENDS_HEAD + ', "properties": ' + json.dumps(_nested_groups(200)) + "}}",
        "query__source__properties__values",
        None,
    ),
    (
        '{"kind": "InsightVizNode", "x": '
        + "[" * 300
        + "]" * 300
        + ', "source": {"kind": "TrendsQuery", "series": []}}',
        "query__x",
        None,
    ),
    (
        '{"kind": "InsightVizNode", "source": {"kind": "TrendsQuery", "series": "x"}}',
        "query",
        "invalid_query",
    ),
    ('{"kind": "TrendsQuery", "series": [{"kind": "EventsNode", "math": "sum"}]}', "query", "invalid_query"),
    (
        TRENDS_HEAD + ', "interval": "hour", "dateRange": {"date_from": "-3y"}}}',
        "query__source__dateRange",
        None,
    ),
    (TRENDS_HEAD + ', "dateRange": {"date_from": "last tuesday"}}}', "query", "invalid_query"),
    # Any kind, even one not implemented yet: JSON that could not be stored or served back.
    ('{"kind": "InsightVizNode", "source": {"kind": "FunnelsQuery", "x": 1e400}}', "query__source__x", None),
    ('{"kind": "FunnelsQuery", "a": ' + "[" * 300 + "]" * 300 + "}", "query__a", None),
]


@pytest.mark.parametrize(
    ("query_json", "attr", "code"), REFUSED_AT_SAVE, ids=[a for _, a, _ in REFUSED_AT_SAVE]
)
@pytest.mark.parametrize("method", ["POST", "PATCH", "PUT"])
async def test_a_trends_query_that_fails_validation_or_a_cap_is_refused_at_save(
    client: httpx.AsyncClient, actor: Actor, method: str, query_json: str, attr: str, code: str | None
) -> None:
    url = actor.url("insights/")
    if method != "POST":
        made = await client.post(url, json={"name": "x"}, headers=actor.headers)
        url = actor.url(f"insights/{made.json()['id']}/")
    response = await save(client, actor, method, url, _insight_body(query_json))
    assert response.status_code == 400, response.text[:300]
    body = response.json()
    assert body["type"] == "validation_error" and body["attr"] == attr, body
    if code is not None:
        assert body["code"] == code
    listed = await client.get(actor.url("insights/"), headers=actor.headers)
    assert all(i["query"] is None for i in listed.json()["results"])


@pytest.mark.parametrize(
    "query",
    [
        {
            "kind": "InsightVizNode",
            "source": {
                "kind": "StickinessQuery",
                "series": [],
                "breakdownFilter": {"breakdown_limit": 10**9},
            },
        },
        {
            "kind": "InsightVizNode",
            "source": {
                "kind": "FunnelsQuery",
                "series": [{"kind": "EventsNode", "event": "a"}, {"kind": "EventsNode", "event": "b"}],
                "funnelsFilter": {"funnelAggregateByHogQL": "properties.$session_id"},
            },
        },
        {
            "kind": "InsightVizNode",
            "source": {"kind": "RetentionQuery", "retentionFilter": {}, "anything": "goes"},
        },
        {"kind": "EventsQuery", "select": ["*"]},
        trends_query({"kind": "GroupNode", "operator": "AND", "nodes": [node(), node("$screen")]}),
        _with(node(math="hogql", math_hogql="count()")),
    ],
    ids=["stickiness", "funnel-field", "retention", "events-query", "group-and", "math-hogql"],
)
async def test_kinds_and_fields_not_implemented_yet_are_stored_and_render_as_a_tile_error(
    client: httpx.AsyncClient, actor: Actor, query: dict[str, Any]
) -> None:
    board = (await client.post(actor.url("dashboards/"), json={"name": "b"}, headers=actor.headers)).json()[
        "id"
    ]
    made = await client.post(
        actor.url("insights/"),
        json={"name": "x", "query": query, "dashboards": [board]},
        headers=actor.headers,
    )
    assert made.status_code == 201, made.text[:300]
    assert made.json()["query"] == query
    dashboard = await client.get(
        actor.url(f"dashboards/{board}/"), params={"refresh": "blocking"}, headers=actor.headers
    )
    assert dashboard.status_code == 200
    [tile] = dashboard.json()["tiles"]
    assert tile["error"]["type"] == "UnsupportedQuery"


async def test_a_valid_trends_query_is_saved_as_given(client: httpx.AsyncClient, actor: Actor) -> None:
    query = _with(
        breakdownFilter={"breakdown": "$browser", "breakdown_limit": 100},
        properties={"type": "AND", "values": [{"key": "n", "operator": "gt", "value": 2.5}]},
        dateRange={"date_from": "all"},
    )
    made = await client.post(
        actor.url("insights/"), json={"name": "x", "query": query}, headers=actor.headers
    )
    assert made.status_code == 201, made.text[:300]
    patched = await client.patch(
        actor.url(f"insights/{made.json()['id']}/"), json={"name": "y"}, headers=actor.headers
    )
    assert patched.status_code == 200 and patched.json()["query"] == query


async def test_an_unknown_insight_is_a_404_before_its_query_is_checked(
    client: httpx.AsyncClient, actor: Actor
) -> None:
    body = {"query": _with(breakdownFilter={"breakdown": "b", "breakdown_limit": 10**9})}
    response = await client.patch(actor.url("insights/999999/"), json=body, headers=actor.headers)
    assert response.status_code == 404
