"""Concurrent requests on the same tiles: new tiles never share a slot, and a tile moved by several requests
at once is moved by exactly one of them (the others are told it is no longer there, as for any tile not on
the source dashboard).

These need requests that really run side by side on separate connections, so each test runs an app of its
own with its own pool on a committed database.
"""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from app.config import get_settings
from app.db import create_engine, create_sessionmaker
from app.main import create_app
from tests.conftest import FreshDatabases
from tests.factories import Actor, make_actor
from tests.resources import trends

NOT_FOUND = {"type": "invalid_request", "code": "not_found", "detail": "Not found.", "attr": None}


@pytest.fixture(scope="module")
def race_database(fresh_databases: FreshDatabases) -> str:
    return fresh_databases.create()


@asynccontextmanager
async def running(url: str) -> AsyncIterator[tuple[Actor, httpx.AsyncClient]]:
    """An app on `url` with a pool of its own (as `serve` builds it), and a new actor on it."""
    app = create_app()
    engine = create_engine(url, get_settings())
    app.state.engine = engine
    app.state.sessionmaker = create_sessionmaker(engine)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    try:
        async with create_sessionmaker(engine)() as session:
            actor = await make_actor(session)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver", timeout=60) as client:
            yield actor, client
    finally:
        await engine.dispose()


async def new_dashboard(client: httpx.AsyncClient, actor: Actor, name: str = "D") -> int:
    response = await client.post(actor.url("dashboards/"), json={"name": name}, headers=actor.headers)
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


async def get_tiles(client: httpx.AsyncClient, actor: Actor, dashboard_id: int) -> list[dict[str, Any]]:
    response = await client.get(actor.url(f"dashboards/{dashboard_id}/"), headers=actor.headers)
    assert response.status_code == 200, response.text
    return list(response.json()["tiles"])


def overlapping_pairs(tiles: list[dict[str, Any]]) -> list[tuple[int, int]]:
    boxes = [(t["id"], t["layouts"]["sm"]) for t in tiles]
    return [
        (a_id, b_id)
        for i, (a_id, a) in enumerate(boxes)
        for b_id, b in boxes[i + 1 :]
        if a["x"] < b["x"] + b["w"]
        and b["x"] < a["x"] + a["w"]
        and a["y"] < b["y"] + b["h"]
        and b["y"] < a["y"] + a["h"]
    ]


async def test_twenty_concurrent_patches_place_their_tiles_on_twenty_slots(race_database: str) -> None:
    async with running(race_database) as (actor, client):
        board = await new_dashboard(client, actor)
        url = actor.url(f"dashboards/{board}/")

        responses = await asyncio.gather(
            *(
                client.patch(url, json={"tiles": [{"text": {"body": f"t{i}"}}]}, headers=actor.headers)
                for i in range(20)
            )
        )

        assert [r.status_code for r in responses] == [200] * 20, [r.text for r in responses]
        tiles = await get_tiles(client, actor, board)
        assert len(tiles) == 20
        assert overlapping_pairs(tiles) == []
        assert len({t["layouts"]["xs"]["y"] for t in tiles}) == 20


async def test_insights_put_on_one_dashboard_at_once_get_slots_of_their_own(race_database: str) -> None:
    async with running(race_database) as (actor, client):
        board = await new_dashboard(client, actor)

        responses = await asyncio.gather(
            *(
                client.post(
                    actor.url("insights/"),
                    json={"name": f"i{i}", "query": trends(), "dashboards": [board]},
                    headers=actor.headers,
                )
                for i in range(10)
            ),
            *(
                client.patch(
                    actor.url(f"dashboards/{board}/"),
                    json={"tiles": [{"text": {"body": f"t{i}"}}]},
                    headers=actor.headers,
                )
                for i in range(10)
            ),
        )

        assert all(r.status_code in (200, 201) for r in responses), [r.text for r in responses]
        tiles = await get_tiles(client, actor, board)
        assert len(tiles) == 20
        assert overlapping_pairs(tiles) == []


async def test_concurrent_patches_never_take_a_dashboard_past_its_cap(
    race_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TILECAST_MAX_TILES_PER_DASHBOARD", "7")
    get_settings.cache_clear()
    try:
        async with running(race_database) as (actor, client):
            board = await new_dashboard(client, actor)
            url = actor.url(f"dashboards/{board}/")

            responses = await asyncio.gather(
                *(
                    client.patch(url, json={"tiles": [{"text": {"body": f"t{i}"}}]}, headers=actor.headers)
                    for i in range(12)
                )
            )

            assert sorted(r.status_code for r in responses) == [200] * 7 + [400] * 5
            assert len(await get_tiles(client, actor, board)) == 7
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()


async def _moves(
    client: httpx.AsyncClient, actor: Actor, source: int, tile_id: int, to: list[int]
) -> list[Any]:
    return list(
        await asyncio.gather(
            *(
                client.patch(
                    actor.url(f"dashboards/{source}/move_tile/"),
                    json={"tile": {"id": tile_id}, "toDashboard": destination},
                    headers=actor.headers,
                )
                for destination in to
            )
        )
    )


# The window between reading the tile and moving it is a few milliseconds: each test races several times.
ROUNDS = 5


async def test_ten_concurrent_moves_of_one_tile_move_it_once(race_database: str) -> None:
    async with running(race_database) as (actor, client):
        source = await new_dashboard(client, actor, "source")
        destinations = [await new_dashboard(client, actor, f"to {i}") for i in range(10)]
        for round in range(ROUNDS):
            response = await client.patch(
                actor.url(f"dashboards/{source}/"),
                json={"tiles": [{"text": {"body": f"moving {round}"}}]},
                headers=actor.headers,
            )
            (tile,) = response.json()["tiles"]

            responses = await _moves(client, actor, source, tile["id"], destinations)

            statuses = [r.status_code for r in responses]
            assert sorted(statuses) == [200] + [404] * 9, [r.text for r in responses]
            assert all(r.json() == NOT_FOUND for r in responses if r.status_code == 404)
            assert responses[statuses.index(200)].json()["tiles"] == []
            winner = destinations[statuses.index(200)]
            holding = [
                d for d in destinations if tile["id"] in {t["id"] for t in await get_tiles(client, actor, d)}
            ]
            assert holding == [winner]


async def test_ten_concurrent_moves_of_one_insight_tile_to_one_dashboard(race_database: str) -> None:
    async with running(race_database) as (actor, client):
        source = await new_dashboard(client, actor, "source")
        for _ in range(ROUNDS):
            destination = await new_dashboard(client, actor, "destination")
            insight = await client.post(
                actor.url("insights/"),
                json={"name": "moving", "query": trends(), "dashboards": [source]},
                headers=actor.headers,
            )
            (tile,) = await get_tiles(client, actor, source)

            responses = await _moves(client, actor, source, tile["id"], [destination] * 10)

            statuses = sorted(r.status_code for r in responses)
            assert statuses == [200] + [404] * 9, [r.text for r in responses]
            assert all(r.json() == NOT_FOUND for r in responses if r.status_code == 404)
            assert await get_tiles(client, actor, source) == []
            (arrived,) = await get_tiles(client, actor, destination)
            assert arrived["id"] == tile["id"] and arrived["insight"]["id"] == insight.json()["id"]
