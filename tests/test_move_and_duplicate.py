"""Moving tiles between dashboards, duplicating dashboards, and what deleting and restoring a dashboard does
to its tiles and insights.

Compatibility target: reference/posthog-behaviour.md §1.2, §2.2 (create step 6, update steps 3-4 and 7),
§3.8; DESIGN.md ("Every action takes an API key", "Who gets which code", "Error bodies").
"""

from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import DashboardTile
from tests.factories import Actor, make_member
from tests.resources import new_dashboard, trends

ERROR_KEYS = {"type", "code", "detail", "attr"}
CANNOT_EDIT = "You don't have edit permissions for this dashboard."
CANNOT_EDIT_DESTINATION = "You don't have edit permissions for the destination dashboard."
CANNOT_MOVE = "Invalid request data for moving tile."


# --- helpers ------------------------------------------------------------------------------------------------


async def new_insight(client: httpx.AsyncClient, actor: Actor, *dashboards: int, **body: Any) -> int:
    payload = {"name": "I", "query": trends(), **body, "dashboards": list(dashboards)}
    response = await client.post(actor.url("insights/"), json=payload, headers=actor.headers)
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


async def get_dashboard(client: httpx.AsyncClient, actor: Actor, dashboard_id: int) -> dict[str, Any]:
    response = await client.get(actor.url(f"dashboards/{dashboard_id}/"), headers=actor.headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def get_tiles(client: httpx.AsyncClient, actor: Actor, dashboard_id: int) -> list[dict[str, Any]]:
    return list((await get_dashboard(client, actor, dashboard_id))["tiles"])


async def get_insight(client: httpx.AsyncClient, actor: Actor, insight_id: int) -> httpx.Response:
    return await client.get(actor.url(f"insights/{insight_id}/"), headers=actor.headers)


async def patch(client: httpx.AsyncClient, actor: Actor, dashboard_id: int, **body: Any) -> dict[str, Any]:
    response = await client.patch(actor.url(f"dashboards/{dashboard_id}/"), json=body, headers=actor.headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def add_text(client: httpx.AsyncClient, actor: Actor, dashboard_id: int, body: str) -> dict[str, Any]:
    tiles = (await patch(client, actor, dashboard_id, tiles=[{"text": {"body": body}}]))["tiles"]
    (tile,) = [t for t in tiles if t["text"] and t["text"]["body"] == body]
    return dict(tile)


def tile_of_insight(tiles: list[dict[str, Any]], insight_id: int) -> dict[str, Any]:
    (found,) = [t for t in tiles if t["insight"] and t["insight"]["id"] == insight_id]
    return found


async def move(
    client: httpx.AsyncClient, actor: Actor, source: int, body: Any, *, prefix: str = "environments"
) -> httpx.Response:
    return await client.patch(
        actor.url(f"dashboards/{source}/move_tile/", prefix=prefix), json=body, headers=actor.headers
    )


def assert_error(response: httpx.Response, status: int, attr: str | None, detail: str | None = None) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == ERROR_KEYS, body
    assert body["attr"] == attr, body
    if detail is not None:
        assert body["detail"] == detail, body


async def tile_rows(db: AsyncSession, dashboard_id: int) -> list[DashboardTile]:
    stmt = select(DashboardTile).where(DashboardTile.dashboard_id == dashboard_id).order_by(DashboardTile.id)
    return list((await db.execute(stmt.execution_options(populate_existing=True))).scalars().all())


# --- move_tile ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("prefix", ["environments", "projects"])
async def test_move_an_insight_tile_answers_with_the_source(
    client: httpx.AsyncClient, actor: Actor, prefix: str
) -> None:
    source, destination = await new_dashboard(client, actor, name="from"), await new_dashboard(client, actor)
    staying = await new_insight(client, actor, source, name="staying")
    moving = await new_insight(client, actor, source, name="moving")
    tile = tile_of_insight(await get_tiles(client, actor, source), moving)
    await patch(client, actor, source, tiles=[{"id": tile["id"], "color": "blue"}])

    response = await move(client, actor, source, {"tile": tile, "toDashboard": destination}, prefix=prefix)

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["id"] == source and body["name"] == "from" and "persisted_filters" in body
    assert [t["insight"]["id"] for t in body["tiles"]] == [staying]
    (arrived,) = await get_tiles(client, actor, destination)
    assert arrived["id"] == tile["id"] and arrived["insight"]["id"] == moving
    assert arrived["layouts"] == tile["layouts"] and arrived["color"] == "blue"
    assert (await get_insight(client, actor, moving)).json()["dashboards"] == [destination]


async def test_move_a_text_tile(client: httpx.AsyncClient, actor: Actor) -> None:
    source, destination = await new_dashboard(client, actor), await new_dashboard(client, actor)
    tile = await add_text(client, actor, source, "note")

    response = await move(client, actor, source, {"tile": {"id": tile["id"]}, "toDashboard": destination})

    assert response.status_code == 200, response.text
    assert response.json()["tiles"] == []
    (arrived,) = await get_tiles(client, actor, destination)
    assert arrived["id"] == tile["id"] and arrived["text"]["body"] == "note"
    assert arrived["text"]["dashboard_tiles"] == [
        {"id": tile["id"], "dashboard_id": destination, "deleted": False}
    ]


async def test_the_tile_must_be_a_live_tile_of_the_source(
    client: httpx.AsyncClient, actor: Actor, other_actor: Actor
) -> None:
    source, elsewhere = await new_dashboard(client, actor), await new_dashboard(client, actor)
    destination = await new_dashboard(client, actor)
    on_elsewhere = await add_text(client, actor, elsewhere, "elsewhere")
    removed = await add_text(client, actor, source, "removed")
    await patch(client, actor, source, tiles=[{"id": removed["id"], "deleted": True}])
    theirs = await add_text(client, other_actor, await new_dashboard(client, other_actor), "theirs")

    for tile_id in (987654321, on_elsewhere["id"], removed["id"], theirs["id"]):
        response = await move(client, actor, source, {"tile": {"id": tile_id}, "toDashboard": destination})
        assert_error(response, 404, None, "Not found.")
    assert await get_tiles(client, actor, destination) == []
    assert [t["id"] for t in await get_tiles(client, actor, elsewhere)] == [on_elsewhere["id"]]


async def test_the_source_must_be_a_live_dashboard_of_the_team(
    client: httpx.AsyncClient, actor: Actor, other_actor: Actor
) -> None:
    destination = await new_dashboard(client, actor)
    theirs = await new_dashboard(client, other_actor)
    their_tile = await add_text(client, other_actor, theirs, "theirs")
    gone = await new_dashboard(client, actor)
    gone_tile = await add_text(client, actor, gone, "gone")
    await patch(client, actor, gone, deleted=True)

    for source, tile in ((theirs, their_tile), (gone, gone_tile), (987654321, gone_tile)):
        response = await move(client, actor, source, {"tile": {"id": tile["id"]}, "toDashboard": destination})
        assert_error(response, 404, None)
    assert [t["id"] for t in await get_tiles(client, other_actor, theirs)] == [their_tile["id"]]


async def test_the_destination_must_be_a_live_dashboard_of_the_team(
    client: httpx.AsyncClient, actor: Actor, other_actor: Actor
) -> None:
    source = await new_dashboard(client, actor)
    tile = await add_text(client, actor, source, "stays")
    theirs = await new_dashboard(client, other_actor)
    gone = await new_dashboard(client, actor)
    await patch(client, actor, gone, deleted=True)

    for destination in (theirs, gone, 987654321):
        response = await move(client, actor, source, {"tile": {"id": tile["id"]}, "toDashboard": destination})
        assert_error(response, 404, None, "Not found.")
    assert [t["id"] for t in await get_tiles(client, actor, source)] == [tile["id"]]
    assert await get_tiles(client, other_actor, theirs) == []


async def test_content_already_on_the_destination_is_400(client: httpx.AsyncClient, actor: Actor) -> None:
    source, destination = await new_dashboard(client, actor), await new_dashboard(client, actor)
    insight = await new_insight(client, actor, source, destination)
    tile = tile_of_insight(await get_tiles(client, actor, source), insight)

    response = await move(client, actor, source, {"tile": {"id": tile["id"]}, "toDashboard": destination})
    assert_error(response, 400, None, CANNOT_MOVE)
    onto_itself = await move(client, actor, source, {"tile": {"id": tile["id"]}, "toDashboard": source})
    assert_error(onto_itself, 400, None, CANNOT_MOVE)

    assert [t["id"] for t in await get_tiles(client, actor, source)] == [tile["id"]]
    assert len(await get_tiles(client, actor, destination)) == 1


async def test_a_removed_tile_of_the_same_content_on_the_destination_is_replaced(
    client: httpx.AsyncClient, actor: Actor, db: AsyncSession
) -> None:
    source, destination = await new_dashboard(client, actor), await new_dashboard(client, actor)
    insight = await new_insight(client, actor, source, destination)
    stale = tile_of_insight(await get_tiles(client, actor, destination), insight)
    await patch(client, actor, destination, tiles=[{"id": stale["id"], "deleted": True}])
    tile = tile_of_insight(await get_tiles(client, actor, source), insight)

    response = await move(client, actor, source, {"tile": {"id": tile["id"]}, "toDashboard": destination})

    assert response.status_code == 200, response.text
    assert [t.id for t in await tile_rows(db, destination)] == [tile["id"]]  # the stale row is gone for good
    assert [t["id"] for t in await get_tiles(client, actor, destination)] == [tile["id"]]


async def test_move_needs_edit_rights_on_both_dashboards(
    client: httpx.AsyncClient, actor: Actor, db: AsyncSession
) -> None:
    member = await make_member(db, actor.team)
    open_board = await new_dashboard(client, actor)
    locked = await new_dashboard(client, actor, restriction_level=37)
    open_tile = await add_text(client, actor, open_board, "open")
    locked_tile = await add_text(client, actor, locked, "locked")

    into_locked = await move(
        client, member, open_board, {"tile": {"id": open_tile["id"]}, "toDashboard": locked}
    )
    assert_error(into_locked, 403, None, CANNOT_EDIT_DESTINATION)
    out_of_locked = await move(
        client, member, locked, {"tile": {"id": locked_tile["id"]}, "toDashboard": open_board}
    )
    assert_error(out_of_locked, 403, None, CANNOT_EDIT)
    assert [t["id"] for t in await get_tiles(client, actor, open_board)] == [open_tile["id"]]
    assert [t["id"] for t in await get_tiles(client, actor, locked)] == [locked_tile["id"]]

    # The creator may move into their own restricted dashboard.
    ok = await move(client, actor, open_board, {"tile": {"id": open_tile["id"]}, "toDashboard": locked})
    assert ok.status_code == 200, ok.text


@pytest.mark.parametrize(
    ("body", "attr"),
    [
        ({}, "tile"),
        ({"toDashboard": 1}, "tile"),
        ({"tile": {}, "toDashboard": 1}, "tile__id"),
        ({"tile": {"id": 1}}, "toDashboard"),
        ({"tile": {"id": 1}, "to_dashboard": 1}, "toDashboard"),
        ({"tile": 5, "toDashboard": 1}, "tile"),
        ({"tile": [1], "toDashboard": 1}, "tile"),
        ({"tile": {"id": "abc"}, "toDashboard": 1}, "tile__id"),
        ({"tile": {"id": None}, "toDashboard": 1}, "tile__id"),
        ({"tile": {"id": 1}, "toDashboard": None}, "toDashboard"),
        ({"tile": {"id": 1}, "toDashboard": [1]}, "toDashboard"),
        ({"tile": {"id": 1}, "toDashboard": "x"}, "toDashboard"),
        ({"tile": {"id": 1}, "toDashboard": 10**30}, "toDashboard"),
        ({"tile": {"id": 2**31}, "toDashboard": 1}, "tile__id"),
    ],
)
async def test_missing_keys_or_wrong_types_are_400(
    client: httpx.AsyncClient, actor: Actor, body: dict[str, Any], attr: str
) -> None:
    source = await new_dashboard(client, actor)

    assert_error(await move(client, actor, source, body), 400, attr)


@pytest.mark.parametrize("body", [None, [], "x", 5])
async def test_a_body_that_is_not_an_object_is_400(
    client: httpx.AsyncClient, actor: Actor, body: Any
) -> None:
    source = await new_dashboard(client, actor)

    response = await move(client, actor, source, body)

    assert response.status_code == 400, response.text
    assert set(response.json()) == ERROR_KEYS


async def test_move_needs_the_dashboard_write_scope(
    client: httpx.AsyncClient, actor: Actor, db: AsyncSession
) -> None:
    source, destination = await new_dashboard(client, actor), await new_dashboard(client, actor)
    tile = await add_text(client, actor, source, "t")
    reader = await make_member(db, actor.team, scopes=["dashboard:read"])
    writer = await make_member(db, actor.team, scopes=["dashboard:write"])
    body = {"tile": {"id": tile["id"]}, "toDashboard": destination}

    assert_error(
        await move(client, reader, source, body),
        403,
        None,
        "API key missing required scope 'dashboard:write'",
    )
    assert [t["id"] for t in await get_tiles(client, actor, source)] == [tile["id"]]
    assert (await move(client, writer, source, body)).status_code == 200


async def test_move_requires_a_key(client: httpx.AsyncClient, actor: Actor) -> None:
    source = await new_dashboard(client, actor)

    response = await client.patch(actor.url(f"dashboards/{source}/move_tile/"), json={})

    assert response.status_code == 401


async def test_move_tile_is_documented_with_posthogs_operation_ids_and_its_scope(
    client: httpx.AsyncClient,
) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    for prefix, op_id in (
        ("environments", "environments_dashboards_move_tile_partial_update"),
        ("projects", "dashboards_move_tile_partial_update"),
    ):
        op = paths[f"/api/{prefix}/{{project_id}}/dashboards/{{id}}/move_tile/"]["patch"]
        assert op["operationId"] == op_id
        assert op["security"] == [{"PersonalAPIKeyAuth": ["dashboard:write"]}]


# --- duplicating (use_dashboard) ----------------------------------------------------------------------------


async def _source_with_tiles(client: httpx.AsyncClient, actor: Actor) -> tuple[int, int, dict[str, Any]]:
    """A dashboard with an insight tile (tagged, described, with display fields), a text tile and a removed
    text tile; returns (dashboard, insight, its tile)."""
    source = await new_dashboard(client, actor, name="Source")
    insight = await new_insight(client, actor, source, name="Signups", description="weekly", tags=["growth"])
    tile = tile_of_insight(await get_tiles(client, actor, source), insight)
    await add_text(client, actor, source, "read me")
    removed = await add_text(client, actor, source, "removed")
    await patch(
        client,
        actor,
        source,
        tiles=[
            {
                "id": tile["id"],
                "color": "green",
                "filters_overrides": {"date_from": "-3d"},
                "show_description": True,
                "transparent_background": True,
                "layouts": {"sm": {"x": 0, "y": 7, "w": 12, "h": 4}, "xs": {"x": 0, "y": 9, "w": 1, "h": 4}},
            },
            {"id": removed["id"], "deleted": True},
        ],
    )
    return source, insight, tile_of_insight(await get_tiles(client, actor, source), insight)


DISPLAY = ("layouts", "color", "filters_overrides", "show_description", "transparent_background")


async def test_duplicate_copies_every_live_tile_pointing_at_the_same_content(
    client: httpx.AsyncClient, actor: Actor
) -> None:
    source, insight, tile = await _source_with_tiles(client, actor)
    source_tiles = await get_tiles(client, actor, source)

    response = await client.post(
        actor.url("dashboards/"), json={"name": "Copy", "use_dashboard": source}, headers=actor.headers
    )

    assert response.status_code == 201, response.text
    copy = response.json()
    assert copy["creation_mode"] == "duplicate"
    assert len(copy["tiles"]) == 2  # the removed text is not copied
    copied = tile_of_insight(copy["tiles"], insight)
    assert copied["id"] != tile["id"]
    assert {k: copied[k] for k in DISPLAY} == {k: tile[k] for k in DISPLAY}
    (text,) = [t for t in copy["tiles"] if t["text"]]
    (original_text,) = [t for t in source_tiles if t["text"]]
    assert text["text"]["id"] == original_text["text"]["id"] and text["id"] != original_text["id"]
    assert text["layouts"] == original_text["layouts"]
    assert sorted((await get_insight(client, actor, insight)).json()["dashboards"]) == sorted(
        [source, copy["id"]]
    )
    # The source keeps its tiles as they were (only their content now shows a second dashboard).
    after = await get_tiles(client, actor, source)
    assert [(t["id"], *(t[k] for k in DISPLAY)) for t in after] == [
        (t["id"], *(t[k] for k in DISPLAY)) for t in source_tiles
    ]
    assert text["text"]["dashboard_tiles"] == [
        {"id": original_text["id"], "dashboard_id": source, "deleted": False},
        {"id": text["id"], "dashboard_id": copy["id"], "deleted": False},
    ]


async def test_deep_duplicate_copies_insights_and_texts(client: httpx.AsyncClient, actor: Actor) -> None:
    source, insight, tile = await _source_with_tiles(client, actor)
    original = (await get_insight(client, actor, insight)).json()
    source_tiles = await get_tiles(client, actor, source)

    response = await client.post(
        actor.url("dashboards/"),
        json={"name": "Deep", "use_dashboard": source, "duplicate_tiles": True},
        headers=actor.headers,
    )

    assert response.status_code == 201, response.text
    copy = response.json()
    assert len(copy["tiles"]) == 2
    (copied,) = [t for t in copy["tiles"] if t["insight"]]
    new_insight_body = copied["insight"]
    assert new_insight_body["id"] != insight
    assert new_insight_body["name"] == "Signups (Copy)"
    assert new_insight_body["description"] == "weekly" and new_insight_body["tags"] == ["growth"]
    assert (await get_insight(client, actor, new_insight_body["id"])).json()["query"] == original["query"]
    assert new_insight_body["dashboards"] == [copy["id"]]
    assert new_insight_body["created_by"]["id"] == actor.user.id
    assert {k: copied[k] for k in DISPLAY} == {k: tile[k] for k in DISPLAY}
    (text,) = [t for t in copy["tiles"] if t["text"]]
    (original_text,) = [t for t in source_tiles if t["text"]]
    assert text["text"]["id"] != original_text["text"]["id"] and text["text"]["body"] == "read me"
    # The originals stay where they were, alone.
    assert (await get_insight(client, actor, insight)).json()["dashboards"] == [source]
    (still,) = [t for t in await get_tiles(client, actor, source) if t["text"]]
    assert still["text"]["dashboard_tiles"] == [
        {"id": original_text["id"], "dashboard_id": source, "deleted": False}
    ]


async def test_deep_duplicate_keeps_an_unnamed_insight_unnamed(
    client: httpx.AsyncClient, actor: Actor
) -> None:
    source = await new_dashboard(client, actor)
    await new_insight(client, actor, source, name=None, derived_name="Pageview count")

    copy = (
        await client.post(
            actor.url("dashboards/"),
            json={"use_dashboard": source, "duplicate_tiles": True},
            headers=actor.headers,
        )
    ).json()

    (tile,) = copy["tiles"]
    assert tile["insight"]["name"] is None and tile["insight"]["derived_name"] == "Pageview count"


async def test_duplicate_places_a_copied_tile_that_had_no_layout(
    client: httpx.AsyncClient, actor: Actor
) -> None:
    source = await new_dashboard(client, actor)
    first, second = await new_insight(client, actor, source), await new_insight(client, actor, source)
    unplaced = tile_of_insight(await get_tiles(client, actor, source), second)
    await patch(client, actor, source, tiles=[{"id": unplaced["id"], "layouts": {}}])

    copy = (
        await client.post(actor.url("dashboards/"), json={"use_dashboard": source}, headers=actor.headers)
    ).json()

    assert tile_of_insight(copy["tiles"], first)["layouts"]["sm"] == {"x": 0, "y": 0, "w": 6, "h": 5}
    assert tile_of_insight(copy["tiles"], second)["layouts"] == {
        "sm": {"x": 6, "y": 0, "w": 6, "h": 5},
        "xs": {"x": 0, "y": 5, "w": 1, "h": 5},
    }


async def test_duplicate_tiles_on_update_copies_tiles_within_the_dashboard(
    client: httpx.AsyncClient, actor: Actor
) -> None:
    board = await new_dashboard(client, actor)
    insight = await new_insight(client, actor, board, name="Original")
    tile = tile_of_insight(await get_tiles(client, actor, board), insight)
    text = await add_text(client, actor, board, "words")
    layouts = {"sm": {"x": 0, "y": 30, "w": 3, "h": 3}, "xs": {"x": 0, "y": 30, "w": 1, "h": 3}}

    tiles = (
        await patch(
            client, actor, board, duplicate_tiles=[{"id": tile["id"], "layouts": layouts}, {"id": text["id"]}]
        )
    )["tiles"]

    assert len(tiles) == 4
    (copy,) = [t for t in tiles if t["insight"] and t["insight"]["id"] != insight]
    assert copy["insight"]["name"] == "Original (Copy)" and copy["layouts"] == layouts
    (text_copy,) = [t for t in tiles if t["text"] and t["id"] != text["id"]]
    assert text_copy["text"]["body"] == "words" and text_copy["text"]["id"] != text["text"]["id"]
    # Placed after the insight (0,0), the text (6,0) and the copy at row 30.
    assert text_copy["layouts"]["sm"] == {"x": 0, "y": 5, "w": 6, "h": 5}

    response = await client.patch(
        actor.url(f"dashboards/{board}/"),
        json={"duplicate_tiles": [{"id": 987654321}]},
        headers=actor.headers,
    )
    assert_error(response, 400, "duplicate_tiles__0__id")
    assert len(await get_tiles(client, actor, board)) == 4


# --- deleting and restoring ---------------------------------------------------------------------------------


async def test_soft_delete_removes_every_tile_and_keeps_the_insights(
    client: httpx.AsyncClient, actor: Actor, db: AsyncSession
) -> None:
    board = await new_dashboard(client, actor)
    insight = await new_insight(client, actor, board)
    await add_text(client, actor, board, "t")

    await patch(client, actor, board, deleted=True)

    assert [row.deleted for row in await tile_rows(db, board)] == [True, True]
    got = await get_insight(client, actor, insight)
    assert got.status_code == 200 and got.json()["dashboards"] == []


async def test_delete_insights_deletes_the_insights_only_on_this_dashboard(
    client: httpx.AsyncClient, actor: Actor
) -> None:
    board, other, gone = [await new_dashboard(client, actor) for _ in range(3)]
    only_here = await new_insight(client, actor, board, name="only here")
    shared = await new_insight(client, actor, board, other, name="shared")
    # Its other tile is on a deleted dashboard, which does not count.
    with_dead_twin = await new_insight(client, actor, board, gone, name="dead twin")
    await patch(client, actor, gone, deleted=True)
    elsewhere = await new_insight(client, actor, other, name="elsewhere")

    await patch(client, actor, board, deleted=True, delete_insights=True)

    assert (await get_insight(client, actor, only_here)).status_code == 404
    assert (await get_insight(client, actor, with_dead_twin)).status_code == 404
    assert (await get_insight(client, actor, shared)).json()["dashboards"] == [other]
    assert (await get_insight(client, actor, elsewhere)).status_code == 200
    assert {t["insight"]["id"] for t in await get_tiles(client, actor, other)} == {shared, elsewhere}


async def test_delete_insights_without_deleting_does_nothing(client: httpx.AsyncClient, actor: Actor) -> None:
    board = await new_dashboard(client, actor)
    insight = await new_insight(client, actor, board)

    await patch(client, actor, board, name="renamed", delete_insights=True)

    assert (await get_insight(client, actor, insight)).status_code == 200
    assert len(await get_tiles(client, actor, board)) == 1


async def test_restore_brings_back_every_tile_and_insight(
    client: httpx.AsyncClient, actor: Actor, db: AsyncSession
) -> None:
    board = await new_dashboard(client, actor)
    kept = await new_insight(client, actor, board, name="kept")
    removed_earlier = await new_insight(client, actor, board, name="removed earlier")
    text = await add_text(client, actor, board, "t")
    earlier_tile = tile_of_insight(await get_tiles(client, actor, board), removed_earlier)
    await patch(client, actor, board, tiles=[{"id": earlier_tile["id"], "deleted": True}])
    await patch(client, actor, board, deleted=True, delete_insights=True)
    assert (await get_insight(client, actor, kept)).status_code == 404

    restored = await patch(client, actor, board, deleted=False)

    # PostHog's quirk, kept: the tile removed one by one before the delete comes back too.
    ids = {t["id"] for t in restored["tiles"]}
    assert ids == {tile_of_insight(restored["tiles"], kept)["id"], earlier_tile["id"], text["id"]}
    assert [row.deleted for row in await tile_rows(db, board)] == [False, False, False]
    assert (await get_insight(client, actor, kept)).json()["dashboards"] == [board]
    assert (await get_insight(client, actor, removed_earlier)).json()["dashboards"] == [board]


async def test_restore_undeletes_an_insight_deleted_on_its_own(
    client: httpx.AsyncClient, actor: Actor
) -> None:
    board = await new_dashboard(client, actor)
    insight = await new_insight(client, actor, board)
    deleted = await client.patch(
        actor.url(f"insights/{insight}/"), json={"deleted": True}, headers=actor.headers
    )
    assert deleted.status_code == 200
    await patch(client, actor, board, deleted=True)

    await patch(client, actor, board, deleted=False)

    assert (await get_insight(client, actor, insight)).status_code == 200


async def test_a_live_dashboard_patched_with_deleted_false_keeps_removed_tiles_removed(
    client: httpx.AsyncClient, actor: Actor
) -> None:
    board = await new_dashboard(client, actor)
    text = await add_text(client, actor, board, "t")
    await patch(client, actor, board, tiles=[{"id": text["id"], "deleted": True}])

    assert (await patch(client, actor, board, deleted=False))["tiles"] == []
