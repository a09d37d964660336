"""The query endpoint and the result cache around it (the engine's own numbers are tested elsewhere)."""

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from tests.factories import Actor, make_member


async def test_unknown_kind_is_a_400_naming_it(client: httpx.AsyncClient, actor: Actor) -> None:
    response = await client.post(
        actor.url("query/"), json={"query": {"kind": "PathsQuery", "series": []}}, headers=actor.headers
    )
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["code"] == "unsupported_query"
    assert "PathsQuery" in body["detail"]


async def test_query_needs_the_query_read_scope(
    client: httpx.AsyncClient, db: AsyncSession, actor: Actor
) -> None:
    reader = await make_member(db, actor.team, scopes=["dashboard:read"])
    response = await client.post(
        actor.url("query/"), json={"query": {"kind": "TrendsQuery", "series": []}}, headers=reader.headers
    )
    assert response.status_code == 403
    assert response.json()["detail"] == "API key missing required scope 'query:read'"


async def test_unstorable_text_in_a_query_is_a_400(client: httpx.AsyncClient, actor: Actor) -> None:
    raw = b'{"query": {"kind": "TrendsQuery", "series": [{"kind": "EventsNode", "event": "\\ud800"}]}}'
    response = await client.post(
        actor.url("query/"), content=raw, headers={**actor.headers, "Content-Type": "application/json"}
    )
    assert response.status_code == 400, response.text
    assert response.json()["attr"].startswith("query")


async def test_unstorable_text_in_filters_override_is_a_400(client: httpx.AsyncClient, actor: Actor) -> None:
    made = await client.post(actor.url("dashboards/"), json={"name": "d"}, headers=actor.headers)
    response = await client.get(
        actor.url(f"dashboards/{made.json()['id']}/"),
        params={"filters_override": '{"date_from": "\\ud800"}'},
        headers=actor.headers,
    )
    assert response.status_code == 400, response.text
    assert response.json()["attr"] == "filters_override"


@pytest.mark.both_backends
async def test_a_cached_result_is_the_computed_one(client: httpx.AsyncClient, actor: Actor) -> None:
    query = {
        "kind": "TrendsQuery",
        "series": [{"kind": "EventsNode", "event": "$pageview"}],
        "dateRange": {"date_from": "-7d"},
    }
    computed = await client.post(actor.url("query/"), json={"query": query}, headers=actor.headers)
    cached = await client.post(actor.url("query/"), json={"query": query}, headers=actor.headers)
    assert computed.status_code == cached.status_code == 200, cached.text
    assert cached.headers["content-type"] == "application/json"
    first, second = computed.json(), cached.json()
    assert (first["is_cached"], second["is_cached"]) == (False, True)
    assert second["results"] == first["results"] and len(second["results"]) == 1
    assert list(second) == list(first)
    assert {k: v for k, v in second.items() if k != "is_cached"} == {
        k: v for k, v in first.items() if k != "is_cached"
    }
