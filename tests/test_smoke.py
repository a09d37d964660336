import httpx

from tests.factories import Actor


async def test_create_then_list(client: httpx.AsyncClient, actor: Actor) -> None:
    created = await client.post(actor.url("dashboards/"), json={"name": "Hello"}, headers=actor.headers)
    assert created.status_code == 201, created.text
    listed = await client.get(actor.url("dashboards"), headers=actor.headers)
    assert listed.status_code == 200
    assert [d["name"] for d in listed.json()["results"]] == ["Hello"]
    got = await client.get(actor.url(f"dashboards/{created.json()['id']}"), headers=actor.headers)
    assert got.status_code == 200, got.text
