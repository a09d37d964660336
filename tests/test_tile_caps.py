"""How many tiles a dashboard holds and a request adds, and how fast new tiles are placed.

Two settings bound tiles: `TILECAST_MAX_TILES_PER_DASHBOARD` (live tiles on one dashboard, default 500) and
`TILECAST_MAX_NEW_TILES_PER_REQUEST` (tiles one request creates, default 200). Both hold for every way a tile
is made: `tiles` and `duplicate_tiles` on PATCH/PUT, an insight's `dashboards`, duplication with
`use_dashboard`, and `move_tile`. A refusal is a 400 with PostHog's error body naming the field; nothing of
the request is kept. Placing N new tiles costs time in proportion to N and the tiles already there.
"""

import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings, get_settings
from app.models import DashboardTile, Text
from tests.factories import Actor
from tests.resources import new_dashboard, trends

ERROR_KEYS = {"type", "code", "detail", "attr"}


@pytest.fixture
def caps(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., None]]:
    """`caps(dashboard=5, request=3)`: the tile caps the app reads from here on, for this test only."""

    def configure(*, dashboard: int | None = None, request: int | None = None) -> None:
        if dashboard is not None:
            monkeypatch.setenv("TILECAST_MAX_TILES_PER_DASHBOARD", str(dashboard))
        if request is not None:
            monkeypatch.setenv("TILECAST_MAX_NEW_TILES_PER_REQUEST", str(request))
        get_settings.cache_clear()

    yield configure
    monkeypatch.undo()
    get_settings.cache_clear()


# --- helpers ------------------------------------------------------------------------------------------------


def texts(n: int, prefix: str = "t") -> list[dict[str, Any]]:
    return [{"text": {"body": f"{prefix} {i}"}} for i in range(n)]


async def patch(client: httpx.AsyncClient, actor: Actor, dashboard_id: int, **body: Any) -> httpx.Response:
    return await client.patch(actor.url(f"dashboards/{dashboard_id}/"), json=body, headers=actor.headers)


async def add_texts(
    client: httpx.AsyncClient, actor: Actor, dashboard_id: int, n: int
) -> list[dict[str, Any]]:
    response = await patch(client, actor, dashboard_id, tiles=texts(n, f"{dashboard_id}"))
    assert response.status_code == 200, response.text
    return list(response.json()["tiles"])


async def get_tiles(client: httpx.AsyncClient, actor: Actor, dashboard_id: int) -> list[dict[str, Any]]:
    response = await client.get(actor.url(f"dashboards/{dashboard_id}/"), headers=actor.headers)
    assert response.status_code == 200, response.text
    return list(response.json()["tiles"])


async def new_insight(client: httpx.AsyncClient, actor: Actor, *dashboards: int) -> httpx.Response:
    return await client.post(
        actor.url("insights/"),
        json={"name": "I", "query": trends(), "dashboards": list(dashboards)},
        headers=actor.headers,
    )


def assert_refused(response: httpx.Response, attr: str, *numbers: int) -> None:
    """A 400 in PostHog's shape naming `attr`, whose message gives the cap and the count refused."""
    assert response.status_code == 400, response.text
    body = response.json()
    assert set(body) == ERROR_KEYS, body
    assert body["type"] == "validation_error" and body["code"] == "max_length", body
    assert body["attr"] == attr, body
    for number in numbers:
        assert str(number) in body["detail"], body


def overlapping_pairs(tiles: list[dict[str, Any]]) -> list[tuple[int, int]]:
    boxes = [(t["id"], t["layouts"]["sm"]) for t in tiles]
    pairs = []
    for i, (a_id, a) in enumerate(boxes):
        for b_id, b in boxes[i + 1 :]:
            if (
                a["x"] < b["x"] + b["w"]
                and b["x"] < a["x"] + a["w"]
                and a["y"] < b["y"] + b["h"]
                and b["y"] < a["y"] + a["h"]
            ):
                pairs.append((a_id, b_id))
    return pairs


async def count_rows(db: AsyncSession, model: Any, **where: Any) -> int:
    stmt = select(func.count()).select_from(model).filter_by(**where)
    return int((await db.execute(stmt)).scalar_one())


# --- settings -----------------------------------------------------------------------------------------------


def test_the_caps_default_to_500_per_dashboard_and_200_per_request() -> None:
    settings = Settings()
    assert settings.max_tiles_per_dashboard == 500
    assert settings.max_new_tiles_per_request == 200


def test_the_caps_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TILECAST_MAX_TILES_PER_DASHBOARD", "40")
    monkeypatch.setenv("TILECAST_MAX_NEW_TILES_PER_REQUEST", "7")
    settings = Settings()
    assert (settings.max_tiles_per_dashboard, settings.max_new_tiles_per_request) == (40, 7)


# --- the defaults, through PATCH ----------------------------------------------------------------------------


async def test_a_thousand_new_tiles_in_one_patch_are_refused_at_once(
    client: httpx.AsyncClient, actor: Actor, db: AsyncSession
) -> None:
    board = await new_dashboard(client, actor)
    texts_before = await count_rows(db, Text, team_id=actor.team.id)

    started = time.perf_counter()
    response = await patch(client, actor, board, tiles=texts(1000))
    took = time.perf_counter() - started

    assert_refused(response, "tiles", 200, 1000)
    assert took < 3, took  # it took 24 s to place them all before there was a cap
    assert await get_tiles(client, actor, board) == []
    assert await count_rows(db, Text, team_id=actor.team.id) == texts_before


async def test_two_hundred_new_tiles_fit_in_one_patch_and_two_hundred_and_one_do_not(
    client: httpx.AsyncClient, actor: Actor
) -> None:
    board = await new_dashboard(client, actor)

    assert_refused(await patch(client, actor, board, tiles=texts(201)), "tiles", 200, 201)
    tiles = await add_texts(client, actor, board, 200)

    assert len(tiles) == 200
    assert overlapping_pairs(tiles) == []


async def test_a_dashboard_fills_up_to_500_tiles_and_no_further(
    client: httpx.AsyncClient, actor: Actor
) -> None:
    board = await new_dashboard(client, actor)
    for n in (200, 200, 100):
        tiles = await add_texts(client, actor, board, n)

    assert len(tiles) == 500
    assert overlapping_pairs(tiles) == []
    assert_refused(await patch(client, actor, board, tiles=texts(1, "more")), "tiles", 500)


# --- lowered caps: every way a tile is made ---------------------------------------------------------------


async def test_tiles_items_count_against_both_caps(
    client: httpx.AsyncClient, actor: Actor, caps: Callable[..., None]
) -> None:
    caps(dashboard=5, request=3)
    board = await new_dashboard(client, actor)

    assert_refused(await patch(client, actor, board, tiles=texts(4)), "tiles", 3, 4)
    await add_texts(client, actor, board, 3)
    await add_texts(client, actor, board, 2)
    tiles = await get_tiles(client, actor, board)
    assert len(tiles) == 5

    assert_refused(await patch(client, actor, board, tiles=texts(1, "sixth")), "tiles", 5)
    # Editing and removing tiles of a full dashboard is fine, and a removal in the same request makes room.
    edited = await patch(client, actor, board, tiles=[{"id": tiles[0]["id"], "color": "blue"}])
    assert edited.status_code == 200, edited.text
    swapped = await patch(
        client, actor, board, tiles=[{"id": tiles[0]["id"], "deleted": True}, *texts(1, "instead")]
    )
    assert swapped.status_code == 200, swapped.text
    assert len(swapped.json()["tiles"]) == 5
    # A removed tile brought back counts too.
    revived = await patch(client, actor, board, tiles=[{"id": tiles[0]["id"], "deleted": False}])
    assert_refused(revived, "tiles", 5)


async def test_a_refused_request_keeps_nothing(
    client: httpx.AsyncClient, actor: Actor, db: AsyncSession, caps: Callable[..., None]
) -> None:
    caps(dashboard=3, request=10)
    board = await new_dashboard(client, actor)
    (kept,) = await add_texts(client, actor, board, 1)
    texts_before = await count_rows(db, Text, team_id=actor.team.id)

    response = await patch(
        client, actor, board, name="renamed", tiles=[{"id": kept["id"], "color": "blue"}, *texts(3)]
    )

    assert_refused(response, "tiles", 3)
    dashboard = (await client.get(actor.url(f"dashboards/{board}/"), headers=actor.headers)).json()
    assert dashboard["name"] == "D"
    assert [(t["id"], t["color"]) for t in dashboard["tiles"]] == [(kept["id"], None)]
    assert await count_rows(db, Text, team_id=actor.team.id) == texts_before


async def test_duplicate_tiles_count_against_both_caps(
    client: httpx.AsyncClient, actor: Actor, caps: Callable[..., None]
) -> None:
    caps(dashboard=6, request=3)
    board = await new_dashboard(client, actor)
    first, second = await add_texts(client, actor, board, 2)
    copies = [{"id": first["id"]}, {"id": second["id"]}]

    assert_refused(await patch(client, actor, board, duplicate_tiles=copies * 2), "duplicate_tiles", 3, 4)
    # Created by `tiles` and `duplicate_tiles` together.
    both = await patch(client, actor, board, tiles=texts(2), duplicate_tiles=copies)
    assert_refused(both, "duplicate_tiles", 3, 4)
    ok = await patch(client, actor, board, duplicate_tiles=copies)
    assert ok.status_code == 200, ok.text
    assert len(ok.json()["tiles"]) == 4
    await add_texts(client, actor, board, 1)

    assert_refused(await patch(client, actor, board, duplicate_tiles=copies), "duplicate_tiles", 6)
    assert len(await get_tiles(client, actor, board)) == 5


async def test_duplicating_a_dashboard_counts_against_both_caps(
    client: httpx.AsyncClient, actor: Actor, caps: Callable[..., None]
) -> None:
    caps(dashboard=10, request=10)
    source = await new_dashboard(client, actor)
    await add_texts(client, actor, source, 4)
    listed = await client.get(actor.url("dashboards/"), headers=actor.headers)

    for dashboard_cap, request_cap in ((10, 3), (3, 10)):
        caps(dashboard=dashboard_cap, request=request_cap)
        for deep in (False, True):
            response = await client.post(
                actor.url("dashboards/"),
                json={"name": "Copy", "use_dashboard": source, "duplicate_tiles": deep},
                headers=actor.headers,
            )
            assert_refused(response, "use_dashboard", 3, 4)

    # No dashboard was made by the refused requests.
    after = await client.get(actor.url("dashboards/"), headers=actor.headers)
    assert after.json()["count"] == listed.json()["count"]
    caps(dashboard=4, request=4)
    copy = await client.post(
        actor.url("dashboards/"), json={"name": "Copy", "use_dashboard": source}, headers=actor.headers
    )
    assert copy.status_code == 201, copy.text
    assert len(copy.json()["tiles"]) == 4


async def test_an_insights_dashboards_count_against_both_caps(
    client: httpx.AsyncClient, actor: Actor, db: AsyncSession, caps: Callable[..., None]
) -> None:
    caps(dashboard=2, request=2)
    boards = [await new_dashboard(client, actor) for _ in range(3)]

    assert_refused(await new_insight(client, actor, *boards), "dashboards", 2, 3)
    full = boards[0]
    await add_texts(client, actor, full, 2)
    assert_refused(await new_insight(client, actor, full), "dashboards", 2, full)

    created = await new_insight(client, actor, boards[1])
    assert created.status_code == 201, created.text
    insight = created.json()["id"]
    url = actor.url(f"insights/{insight}/")
    response = await client.patch(url, json={"dashboards": [boards[1], full]}, headers=actor.headers)
    assert_refused(response, "dashboards", 2, full)
    assert (await client.get(url, headers=actor.headers)).json()["dashboards"] == [boards[1]]
    assert await count_rows(db, DashboardTile, insight_id=insight) == 1


async def test_moving_a_tile_into_a_full_dashboard_is_refused(
    client: httpx.AsyncClient, actor: Actor, caps: Callable[..., None]
) -> None:
    caps(dashboard=2)
    source, full = await new_dashboard(client, actor), await new_dashboard(client, actor)
    (tile,) = await add_texts(client, actor, source, 1)
    await add_texts(client, actor, full, 2)

    response = await client.patch(
        actor.url(f"dashboards/{source}/move_tile/"),
        json={"tile": {"id": tile["id"]}, "toDashboard": full},
        headers=actor.headers,
    )

    assert_refused(response, "toDashboard", 2, full)
    assert [t["id"] for t in await get_tiles(client, actor, source)] == [tile["id"]]
    assert len(await get_tiles(client, actor, full)) == 2


async def test_a_dashboard_over_a_lowered_cap_can_still_be_edited_and_emptied(
    client: httpx.AsyncClient, actor: Actor, caps: Callable[..., None]
) -> None:
    board = await new_dashboard(client, actor)
    tiles = await add_texts(client, actor, board, 4)
    caps(dashboard=2)

    response = await patch(
        client,
        actor,
        board,
        tiles=[{"id": tiles[0]["id"], "color": "blue"}, {"id": tiles[1]["id"], "deleted": True}],
    )

    assert response.status_code == 200, response.text
    assert len(response.json()["tiles"]) == 3
    assert_refused(await patch(client, actor, board, tiles=texts(1)), "tiles", 2)


# --- placement cost -----------------------------------------------------------------------------------------


async def test_placing_a_thousand_tiles_takes_linear_time(
    client: httpx.AsyncClient, actor: Actor, caps: Callable[..., None]
) -> None:
    # With the caps out of the way, one request places 1,000 tiles: 24 s when every placement rescanned the
    # grid (2,000 took 4 minutes).
    caps(dashboard=1000, request=1000)
    board = await new_dashboard(client, actor)

    started = time.perf_counter()
    response = await patch(client, actor, board, tiles=texts(1000))
    took = time.perf_counter() - started

    assert response.status_code == 200, response.text
    tiles = response.json()["tiles"]
    assert len(tiles) == 1000
    assert took < 10, took
    boxes = sorted((t["layouts"]["sm"]["y"], t["layouts"]["sm"]["x"]) for t in tiles)
    # Two 6x5 tiles a row, top to bottom, nothing skipped.
    assert boxes == [(5 * (i // 2), 6 * (i % 2)) for i in range(1000)]
