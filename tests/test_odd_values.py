"""Odd values answer a 400 naming the field, never a 500: JSON nested too deep, lone surrogates in enum
fields, lists longer than a statement can bind."""

import json

import httpx
import pytest

from tests.factories import Actor
from tests.resources import new_dashboard


def nested(depth: int) -> object:
    value: object = 1
    for _ in range(depth):
        value = {"a": value}
    return value


@pytest.mark.parametrize("field", ["filters", "variables", "breakdown_colors"])
@pytest.mark.parametrize("depth", [65, 300])
async def test_json_nested_too_deep_is_a_400_naming_the_field(
    client: httpx.AsyncClient, actor: Actor, field: str, depth: int
) -> None:
    dashboard = await new_dashboard(client, actor)
    headers = {**actor.headers, "Content-Type": "application/json"}
    body = json.dumps({field: {"x": nested(depth)} if field != "breakdown_colors" else [nested(depth)]})
    response = await client.patch(actor.url(f"dashboards/{dashboard}/"), content=body, headers=headers)
    assert response.status_code == 400, response.text
    assert response.json()["attr"] == field
    assert response.json()["detail"] == "JSON nested more than 64 levels deep."
    fine = json.dumps({field: {"x": nested(40)} if field != "breakdown_colors" else [nested(40)]})
    response = await client.patch(actor.url(f"dashboards/{dashboard}/"), content=fine, headers=headers)
    assert response.status_code == 200, response.text


async def test_json_nested_too_deep_in_an_insight_query_is_a_400(
    client: httpx.AsyncClient, actor: Actor
) -> None:
    body = json.dumps({"name": "deep", "query": {"kind": "InsightVizNode", "source": nested(300)}})
    response = await client.post(
        actor.url("insights/"), content=body, headers={**actor.headers, "Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["attr"].startswith("query")  # naming where it nests too deep


async def test_a_lone_surrogate_in_an_enum_field_is_a_400(client: httpx.AsyncClient, actor: Actor) -> None:
    dashboard = await new_dashboard(client, actor)
    response = await client.patch(
        actor.url(f"dashboards/{dashboard}/"),
        content=b'{"restriction_level": "\\ud800"}',
        headers={**actor.headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json() == {
        "type": "validation_error",
        "code": "invalid_choice",
        "detail": '"?" is not a valid choice.',
        "attr": "restriction_level",
    }


TOO_MANY = {
    "code": "max_length",
    "detail": "Ensure this field has no more than 1000 elements.",
    "type": "validation_error",
}


async def test_lists_longer_than_a_statement_can_bind_are_400s(
    client: httpx.AsyncClient, actor: Actor
) -> None:
    dashboard = await new_dashboard(client, actor)
    tags = [f"t{i}" for i in range(20_000)]
    for url, body in (
        (f"dashboards/{dashboard}/", {"tags": tags}),
        ("dashboards/", {"name": "d", "tags": tags}),
        ("insights/", {"name": "i", "tags": tags}),
        ("insights/", {"name": "i", "dashboards": list(range(1, 40_001))}),
    ):
        send = client.patch if url.endswith(f"{dashboard}/") else client.post
        response = await send(actor.url(url), json=body, headers=actor.headers)
        assert response.status_code == 400, (url, response.text[:200])
        assert response.json() == {**TOO_MANY, "attr": next(iter(k for k in body if k != "name"))}
    listed = await client.get(
        actor.url("dashboards/"), params=[("tags", f"t{i}") for i in range(1001)], headers=actor.headers
    )
    assert listed.status_code == 400
    assert listed.json()["attr"] == "tags"
    # At the limit, all is stored.
    response = await client.patch(
        actor.url(f"dashboards/{dashboard}/"), json={"tags": tags[:1000]}, headers=actor.headers
    )
    assert response.status_code == 200
    assert len(response.json()["tags"]) == 1000


@pytest.mark.parametrize("name", ["filters_override", "variables_override"])
async def test_overrides_nested_too_deep_are_400s(client: httpx.AsyncClient, actor: Actor, name: str) -> None:
    dashboard = await new_dashboard(client, actor)
    for raw, detail in (
        ("[" * 1500 + "]" * 1500, f"Invalid JSON passed in {name} parameter"),  # past json's recursion limit
        (json.dumps({"x": nested(100)}), "JSON nested more than 64 levels deep."),
    ):
        response = await client.get(
            actor.url(f"dashboards/{dashboard}/"),
            params={name: raw, "refresh": "blocking"},
            headers=actor.headers,
        )
        assert response.status_code == 400, response.text[:200]
        assert response.json()["attr"] == name
        assert response.json()["detail"] == detail
