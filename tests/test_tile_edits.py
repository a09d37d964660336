"""Editing a dashboard's tiles through `tiles` on PATCH/PUT, and where new tiles are placed.

Compatibility target: reference/posthog-behaviour.md §1.2, §1.3, §2.2 (update step 6), §2.3; DESIGN.md
("New tiles get a place", "Error bodies").
"""

from datetime import datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.models import DashboardTile, Text
from tests.factories import Actor, make_member
from tests.resources import new_dashboard, trends
from tests.statements import count_statements

TEXT_KEYS = {"id", "body", "created_by", "last_modified_at", "last_modified_by", "team", "dashboard_tiles"}
TILE_KEYS = {
    "id",
    "insight",
    "text",
    "layouts",
    "color",
    "filters_overrides",
    "show_description",
    "transparent_background",
    "order",
    "last_refresh",
    "is_cached",
}
ERROR_KEYS = {"type", "code", "detail", "attr"}


# --- helpers ------------------------------------------------------------------------------------------------


async def new_insight(client: httpx.AsyncClient, actor: Actor, *dashboards: int, name: str = "I") -> int:
    response = await client.post(
        actor.url("insights/"),
        json={"name": name, "query": trends(), "dashboards": list(dashboards)},
        headers=actor.headers,
    )
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


async def patch_tiles(
    client: httpx.AsyncClient, actor: Actor, dashboard_id: int, tiles: Any, **body: Any
) -> httpx.Response:
    return await client.patch(
        actor.url(f"dashboards/{dashboard_id}/"), json={"tiles": tiles, **body}, headers=actor.headers
    )


async def ok_tiles(
    client: httpx.AsyncClient, actor: Actor, dashboard_id: int, tiles: Any
) -> list[dict[str, Any]]:
    response = await patch_tiles(client, actor, dashboard_id, tiles)
    assert response.status_code == 200, response.text
    return list(response.json()["tiles"])


async def get_tiles(client: httpx.AsyncClient, actor: Actor, dashboard_id: int) -> list[dict[str, Any]]:
    response = await client.get(actor.url(f"dashboards/{dashboard_id}/"), headers=actor.headers)
    assert response.status_code == 200, response.text
    return list(response.json()["tiles"])


def tile_of_insight(tiles: list[dict[str, Any]], insight_id: int) -> dict[str, Any]:
    (found,) = [t for t in tiles if t["insight"] and t["insight"]["id"] == insight_id]
    return found


def text_tiles(tiles: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [t for t in tiles if t["text"] is not None]


def assert_error(response: httpx.Response, status: int, attr: str | None, detail: str | None = None) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == ERROR_KEYS, body
    assert body["attr"] == attr, body
    if detail is not None:
        assert body["detail"] == detail, body


def sm(x: int, y: int, w: int = 6, h: int = 5) -> dict[str, int]:
    return {"x": x, "y": y, "w": w, "h": h}


def xs(y: int) -> dict[str, int]:
    return {"x": 0, "y": y, "w": 1, "h": 5}


# --- text tiles -------------------------------------------------------------------------------------------


async def test_a_text_item_without_id_adds_a_text_tile_of_the_exact_shape(
    client: httpx.AsyncClient, actor: Actor
) -> None:
    board = await new_dashboard(client, actor)

    response = await patch_tiles(client, actor, board, [{"text": {"body": "Hello *team*"}}])

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["id"] == board and body["name"] == "D"  # the full dashboard comes back
    (tile,) = body["tiles"]
    assert set(tile) == TILE_KEYS
    assert tile["insight"] is None and tile["is_cached"] is False and tile["last_refresh"] is None
    assert tile["order"] == 0
    text = tile["text"]
    assert set(text) == TEXT_KEYS
    assert text["body"] == "Hello *team*"
    assert text["team"] == actor.team.id
    assert text["created_by"]["id"] == actor.user.id
    assert text["last_modified_by"]["id"] == actor.user.id
    assert datetime.fromisoformat(text["last_modified_at"])
    assert text["dashboard_tiles"] == [{"id": tile["id"], "dashboard_id": board, "deleted": False}]
    # Placed: the first slot of an empty grid, and the top of the one-column layout.
    assert tile["layouts"] == {"sm": sm(0, 0), "xs": xs(0)}
    assert (await get_tiles(client, actor, board)) == body["tiles"]


async def test_a_text_item_may_bring_its_display_fields(client: httpx.AsyncClient, actor: Actor) -> None:
    board = await new_dashboard(client, actor)
    layouts = {"sm": sm(3, 2, 4, 2), "xs": xs(7)}

    (tile,) = await ok_tiles(
        client,
        actor,
        board,
        [{"text": {"body": "x"}, "color": "blue", "layouts": layouts, "transparent_background": True}],
    )

    assert tile["color"] == "blue" and tile["layouts"] == layouts and tile["transparent_background"] is True


async def test_editing_a_text_by_id_changes_its_body_and_who_last_modified_it(
    client: httpx.AsyncClient, actor: Actor, db: AsyncSession
) -> None:
    board = await new_dashboard(client, actor)
    (made,) = await ok_tiles(client, actor, board, [{"text": {"body": "draft"}}])
    editor = await make_member(db, actor.team)

    response = await patch_tiles(
        client, editor, board, [{"id": made["id"], "text": {"id": made["text"]["id"], "body": "final"}}]
    )

    assert response.status_code == 200, response.text
    (tile,) = response.json()["tiles"]
    assert tile["id"] == made["id"] and tile["text"]["id"] == made["text"]["id"]
    assert tile["text"]["body"] == "final"
    assert tile["text"]["created_by"]["id"] == actor.user.id
    assert tile["text"]["last_modified_by"]["id"] == editor.user.id
    assert tile["text"]["last_modified_at"] > made["text"]["last_modified_at"]
    assert tile["layouts"] == made["layouts"]  # a text edit alone leaves the tile where it was


async def test_a_text_id_alone_finds_its_tile_on_this_dashboard(
    client: httpx.AsyncClient, actor: Actor
) -> None:
    board = await new_dashboard(client, actor)
    (made,) = await ok_tiles(client, actor, board, [{"text": {"body": "a"}}])

    tiles = await ok_tiles(client, actor, board, [{"text": {"id": made["text"]["id"]}, "color": "green"}])

    assert [(t["id"], t["color"], t["text"]["body"]) for t in tiles] == [(made["id"], "green", "a")]


async def test_a_tile_id_alone_edits_that_tiles_text(client: httpx.AsyncClient, actor: Actor) -> None:
    board = await new_dashboard(client, actor)
    (made,) = await ok_tiles(client, actor, board, [{"text": {"body": "a"}}])

    (tile,) = await ok_tiles(client, actor, board, [{"id": made["id"], "text": {"body": "b"}}])

    assert tile["id"] == made["id"] and tile["text"]["id"] == made["text"]["id"]
    assert tile["text"]["body"] == "b"


async def test_a_text_of_another_dashboard_is_not_found(client: httpx.AsyncClient, actor: Actor) -> None:
    board, other = await new_dashboard(client, actor), await new_dashboard(client, actor)
    (theirs,) = await ok_tiles(client, actor, other, [{"text": {"body": "keep"}}])

    response = await patch_tiles(client, actor, board, [{"text": {"id": theirs["text"]["id"], "body": "x"}}])

    assert_error(response, 400, "tiles__0__text__id", "Text tile not found.")
    assert (await get_tiles(client, actor, other))[0]["text"]["body"] == "keep"
    assert await get_tiles(client, actor, board) == []


async def test_a_text_of_another_team_is_not_found(
    client: httpx.AsyncClient, actor: Actor, other_actor: Actor
) -> None:
    board = await new_dashboard(client, actor)
    theirs = await new_dashboard(client, other_actor)
    (their_tile,) = await ok_tiles(client, other_actor, theirs, [{"text": {"body": "secret"}}])

    response = await patch_tiles(client, actor, board, [{"text": {"id": their_tile["text"]["id"]}}])

    assert_error(response, 400, "tiles__0__text__id", "Text tile not found.")
    assert (await get_tiles(client, other_actor, theirs))[0]["text"]["body"] == "secret"


async def test_a_tile_cannot_change_its_content(client: httpx.AsyncClient, actor: Actor) -> None:
    board = await new_dashboard(client, actor)
    insight = await new_insight(client, actor, board)
    tiles = await ok_tiles(client, actor, board, [{"text": {"body": "a"}}, {"text": {"body": "b"}}])
    a, b = sorted(text_tiles(tiles), key=lambda t: t["text"]["body"])
    insight_tile = tile_of_insight(tiles, insight)

    onto_insight = await patch_tiles(
        client, actor, board, [{"id": insight_tile["id"], "text": {"body": "x"}}]
    )
    assert_error(onto_insight, 400, "tiles__0__id")
    crossed = await patch_tiles(client, actor, board, [{"id": a["id"], "text": {"id": b["text"]["id"]}}])
    assert_error(crossed, 400, "tiles__0__id")

    after = await get_tiles(client, actor, board)
    assert tile_of_insight(after, insight)["text"] is None
    assert sorted(t["text"]["body"] for t in text_tiles(after)) == ["a", "b"]


@pytest.mark.parametrize("length", [4000, 4001])
async def test_a_text_body_is_at_most_4000_characters(
    client: httpx.AsyncClient, actor: Actor, length: int
) -> None:
    board = await new_dashboard(client, actor)

    response = await patch_tiles(client, actor, board, [{"text": {"body": "é" * length}}])

    if length <= 4000:
        assert response.status_code == 200, response.text
        assert len(response.json()["tiles"][0]["text"]["body"]) == length
    else:
        assert_error(response, 400, "tiles__0__text__body", "Text body cannot exceed 4000 characters")
        assert await get_tiles(client, actor, board) == []


async def test_an_edited_body_is_held_to_the_same_limit(client: httpx.AsyncClient, actor: Actor) -> None:
    board = await new_dashboard(client, actor)
    (made,) = await ok_tiles(client, actor, board, [{"text": {"body": "short"}}])

    response = await patch_tiles(
        client, actor, board, [{"text": {"id": made["text"]["id"], "body": "x" * 4001}}]
    )
    assert_error(response, 400, "tiles__0__text__body", "Text body cannot exceed 4000 characters")
    assert (await get_tiles(client, actor, board))[0]["text"]["body"] == "short"


# --- display fields -----------------------------------------------------------------------------------------


async def test_a_tile_item_changes_only_the_display_fields_it_gives(
    client: httpx.AsyncClient, actor: Actor
) -> None:
    board = await new_dashboard(client, actor)
    insight = await new_insight(client, actor, board)
    before = tile_of_insight(await get_tiles(client, actor, board), insight)
    layouts = {"sm": sm(0, 0, 12, 4), "xs": xs(0)}

    first = await ok_tiles(
        client,
        actor,
        board,
        [
            {
                "id": before["id"],
                "color": "purple",
                "layouts": layouts,
                "filters_overrides": {"date_from": "-3d"},
                "show_description": True,
                "transparent_background": False,
            }
        ],
    )
    tile = tile_of_insight(first, insight)
    assert tile["id"] == before["id"]
    assert tile["color"] == "purple" and tile["layouts"] == layouts
    assert tile["filters_overrides"] == {"date_from": "-3d"}
    assert tile["show_description"] is True and tile["transparent_background"] is False

    second = tile_of_insight(
        await ok_tiles(client, actor, board, [{"id": before["id"], "color": None}]), insight
    )
    assert second["color"] is None
    assert second["layouts"] == layouts and second["filters_overrides"] == {"date_from": "-3d"}
    assert second["show_description"] is True and second["transparent_background"] is False


async def test_filters_overrides_apply_to_the_rendered_insight(
    client: httpx.AsyncClient, actor: Actor
) -> None:
    board = await new_dashboard(client, actor)
    insight = await new_insight(client, actor, board)
    tile = tile_of_insight(await get_tiles(client, actor, board), insight)

    tiles = await ok_tiles(
        client, actor, board, [{"id": tile["id"], "filters_overrides": {"date_from": "-1d"}}]
    )

    rendered = tile_of_insight(tiles, insight)["insight"]["query"]["source"]
    assert rendered["dateRange"]["date_from"] == "-1d"


async def test_removing_and_restoring_a_tile(client: httpx.AsyncClient, actor: Actor) -> None:
    board = await new_dashboard(client, actor)
    insight = await new_insight(client, actor, board)
    tile = tile_of_insight(await get_tiles(client, actor, board), insight)

    assert await ok_tiles(client, actor, board, [{"id": tile["id"], "deleted": True}]) == []
    got = (await client.get(actor.url(f"insights/{insight}/"), headers=actor.headers)).json()
    assert got["dashboards"] == [] and got["deleted"] is False  # the insight itself stays

    # A removed tile is still this dashboard's: it can be put back (PostHog cannot; Tilecast can).
    back = await ok_tiles(client, actor, board, [{"id": tile["id"], "deleted": False}])
    assert [t["id"] for t in back] == [tile["id"]]


async def test_insight_order_and_is_cached_in_an_item_are_ignored(
    client: httpx.AsyncClient, actor: Actor
) -> None:
    board = await new_dashboard(client, actor)
    mine, other = await new_insight(client, actor, board, name="mine"), await new_insight(client, actor)
    tile = tile_of_insight(await get_tiles(client, actor, board), mine)

    tiles = await ok_tiles(
        client,
        actor,
        board,
        [
            {"id": tile["id"], "insight": {"id": other}, "order": 7, "is_cached": True, "color": "white"},
            {"insight": {"id": other}},
            {"insight": other, "order": 3},
        ],
    )

    (only,) = tiles
    assert only["id"] == tile["id"] and only["insight"]["id"] == mine
    assert only["color"] == "white" and only["order"] == 0 and only["is_cached"] is False


async def test_a_display_item_without_an_id_cannot_make_a_tile(
    client: httpx.AsyncClient, actor: Actor
) -> None:
    board = await new_dashboard(client, actor)
    insight = await new_insight(client, actor)

    response = await patch_tiles(
        client, actor, board, [{"insight": {"id": insight}, "layouts": {"sm": sm(0, 0)}}]
    )

    assert_error(response, 400, "tiles__0__id", "This field is required.")
    assert await get_tiles(client, actor, board) == []


async def test_unknown_or_foreign_tile_ids_are_400_naming_them(
    client: httpx.AsyncClient, actor: Actor, other_actor: Actor
) -> None:
    board, neighbour = await new_dashboard(client, actor), await new_dashboard(client, actor)
    theirs = await new_dashboard(client, other_actor)
    insight = await new_insight(client, actor, board)
    mine = tile_of_insight(await get_tiles(client, actor, board), insight)
    next_door = (await ok_tiles(client, actor, neighbour, [{"text": {"body": "n"}}]))[0]
    foreign = (await ok_tiles(client, other_actor, theirs, [{"text": {"body": "f"}}]))[0]

    for bad in (987654321, next_door["id"], foreign["id"]):
        response = await patch_tiles(
            client, actor, board, [{"id": mine["id"], "color": "blue"}, {"id": bad, "deleted": True}]
        )
        assert_error(response, 400, "tiles__1__id", f'Invalid pk "{bad}" - object does not exist.')

    # All or nothing: the valid first item was not applied either, and the other tiles are untouched.
    assert (await get_tiles(client, actor, board))[0]["color"] is None
    assert [t["id"] for t in await get_tiles(client, actor, neighbour)] == [next_door["id"]]
    assert [t["id"] for t in await get_tiles(client, other_actor, theirs)] == [foreign["id"]]


async def test_a_failing_item_undoes_the_whole_request(
    client: httpx.AsyncClient, actor: Actor, db: AsyncSession
) -> None:
    board = await new_dashboard(client, actor)

    response = await patch_tiles(
        client, actor, board, [{"text": {"body": "ok"}}, {"text": {"id": 987654321}}], name="renamed"
    )

    assert_error(response, 400, "tiles__1__text__id", "Text tile not found.")
    got = (await client.get(actor.url(f"dashboards/{board}/"), headers=actor.headers)).json()
    assert got["name"] == "D" and got["tiles"] == []
    count = await db.scalar(select(func.count()).select_from(Text).where(Text.team_id == actor.team.id))
    assert count == 0


@pytest.mark.parametrize(
    ("tiles", "attr"),
    [
        ("x", "tiles"),
        ({"id": 1}, "tiles"),
        ([1], "tiles__0"),
        ([[[]]], "tiles__0"),
        ([{"id": "abc", "color": "x"}], "tiles__0__id"),
        ([{"id": 2**31, "color": "x"}], "tiles__0__id"),
        ([{"id": 1, "layouts": "x"}], "tiles__0__layouts"),
        ([{"id": 1, "layouts": [1]}], "tiles__0__layouts"),
        ([{"id": 1, "layouts": None}], "tiles__0__layouts"),
        ([{"id": 1, "layouts": {"sm": "\x00"}}], "tiles__0__layouts"),
        ([{"id": 1, "filters_overrides": []}], "tiles__0__filters_overrides"),
        ([{"id": 1, "filters_overrides": "{}"}], "tiles__0__filters_overrides"),
        ([{"id": 1, "color": 5}], "tiles__0__color"),
        ([{"id": 1, "color": "x" * 401}], "tiles__0__color"),
        ([{"id": 1, "color": "a\x00"}], "tiles__0__color"),
        ([{"id": 1, "show_description": "maybe"}], "tiles__0__show_description"),
        ([{"id": 1, "transparent_background": []}], "tiles__0__transparent_background"),
        ([{"id": 1, "deleted": 10**30}], "tiles__0__deleted"),
        ([{"text": "hello"}], "tiles__0__text"),
        ([{"text": {"id": "abc"}}], "tiles__0__text__id"),
        ([{"text": {"body": 5}}], "tiles__0__text__body"),
        ([{"text": {"body": "\x00"}}], "tiles__0__text__body"),
        ([{"text": {"body": "ok"}}, {"text": {"body": ["no"]}}], "tiles__1__text__body"),
    ],
)
async def test_wrong_types_are_400_naming_the_field(
    client: httpx.AsyncClient, actor: Actor, tiles: Any, attr: str
) -> None:
    board = await new_dashboard(client, actor)

    response = await patch_tiles(client, actor, board, tiles)

    assert_error(response, 400, attr)
    assert response.json()["type"] == "validation_error"
    assert await get_tiles(client, actor, board) == []


async def test_null_tiles_change_nothing(client: httpx.AsyncClient, actor: Actor) -> None:
    board = await new_dashboard(client, actor)
    await ok_tiles(client, actor, board, [{"text": {"body": "kept"}}])

    assert len(await ok_tiles(client, actor, board, None)) == 1
    assert len(await ok_tiles(client, actor, board, [])) == 1


async def test_put_takes_tiles_too(client: httpx.AsyncClient, actor: Actor) -> None:
    board = await new_dashboard(client, actor)

    response = await client.put(
        actor.url(f"dashboards/{board}/"),
        json={"tiles": [{"text": {"body": "via put"}}]},
        headers=actor.headers,
    )

    assert response.status_code == 200, response.text
    assert [t["text"]["body"] for t in response.json()["tiles"]] == ["via put"]


async def test_editing_tiles_needs_edit_rights(
    client: httpx.AsyncClient, actor: Actor, db: AsyncSession
) -> None:
    board = await new_dashboard(client, actor, restriction_level=37)
    member = await make_member(db, actor.team)

    response = await patch_tiles(client, member, board, [{"text": {"body": "sneaky"}}])

    assert_error(response, 403, None, "You don't have edit permissions for this dashboard.")
    assert await get_tiles(client, actor, board) == []


async def test_a_read_only_key_cannot_edit_tiles(
    client: httpx.AsyncClient, actor: Actor, db: AsyncSession
) -> None:
    board = await new_dashboard(client, actor)
    reader = await make_member(db, actor.team, scopes=["dashboard:read"])

    response = await patch_tiles(client, reader, board, [{"text": {"body": "x"}}])

    assert_error(response, 403, None, "API key missing required scope 'dashboard:write'")


async def test_create_ignores_tiles(client: httpx.AsyncClient, actor: Actor) -> None:
    response = await client.post(
        actor.url("dashboards/"),
        json={"name": "x", "tiles": [{"text": {"body": "hi"}}]},
        headers=actor.headers,
    )

    assert response.status_code == 201 and response.json()["tiles"] == []


# --- placement ----------------------------------------------------------------------------------------------


async def test_insight_tiles_from_the_insight_side_fill_the_grid(
    client: httpx.AsyncClient, actor: Actor
) -> None:
    board = await new_dashboard(client, actor)

    made = [await new_insight(client, actor, board, name=f"i{n}") for n in range(3)]

    tiles = await get_tiles(client, actor, board)
    layouts = [tile_of_insight(tiles, i)["layouts"] for i in made]
    assert layouts == [
        {"sm": sm(0, 0), "xs": xs(0)},
        {"sm": sm(6, 0), "xs": xs(5)},
        {"sm": sm(0, 5), "xs": xs(10)},
    ]
    assert [t["insight"]["id"] for t in tiles] == made  # ordered by position: y, then x


async def test_an_insight_put_on_several_dashboards_gets_a_place_on_each(
    client: httpx.AsyncClient, actor: Actor
) -> None:
    first, second = await new_dashboard(client, actor), await new_dashboard(client, actor)
    await ok_tiles(client, actor, first, [{"text": {"body": "top left"}}])

    insight = await new_insight(client, actor, first, second)

    assert tile_of_insight(await get_tiles(client, actor, first), insight)["layouts"] == {
        "sm": sm(6, 0),
        "xs": xs(5),
    }
    assert tile_of_insight(await get_tiles(client, actor, second), insight)["layouts"] == {
        "sm": sm(0, 0),
        "xs": xs(0),
    }


async def test_a_new_tile_takes_the_first_free_slot_among_several_boxes(
    client: httpx.AsyncClient, actor: Actor
) -> None:
    board = await new_dashboard(client, actor)
    a, b, c = [await new_insight(client, actor, board, name=n) for n in "abc"]
    placed = {t["insight"]["id"]: t["id"] for t in await get_tiles(client, actor, board)}
    # A fills the left of rows 0-4, B the right of rows 0-2, C a narrow box at the left of rows 5-9. The first
    # 6x5 slot scanning rows from the top is at row 3, right half: below B, beside A.
    await ok_tiles(
        client,
        actor,
        board,
        [
            {"id": placed[a], "layouts": {"sm": sm(0, 0, 6, 5), "xs": xs(0)}},
            {"id": placed[b], "layouts": {"sm": sm(6, 0, 6, 3), "xs": xs(5)}},
            {"id": placed[c], "layouts": {"sm": sm(0, 5, 4, 5)}},
        ],
    )

    tiles = await ok_tiles(client, actor, board, [{"text": {"body": "first"}}, {"text": {"body": "second"}}])

    by_body = {t["text"]["body"]: t["layouts"] for t in text_tiles(tiles)}
    assert by_body["first"] == {"sm": sm(6, 3), "xs": xs(10)}
    # The second goes around the first too: rows 3-7 are full on the right, C holds the left until row 10,
    # so the first free 6x5 box is at x 4 (C's right edge), row 8 (the first text's bottom).
    assert by_body["second"] == {"sm": sm(4, 8), "xs": xs(15)}


async def test_a_slot_freed_by_the_same_request_is_reused(client: httpx.AsyncClient, actor: Actor) -> None:
    board = await new_dashboard(client, actor)
    first = await new_insight(client, actor, board, name="first")
    await new_insight(client, actor, board, name="second")
    gone = tile_of_insight(await get_tiles(client, actor, board), first)

    tiles = await ok_tiles(
        client, actor, board, [{"id": gone["id"], "deleted": True}, {"text": {"body": "new"}}]
    )

    assert text_tiles(tiles)[0]["layouts"] == {"sm": sm(0, 0), "xs": xs(10)}


async def test_only_missing_breakpoints_are_filled(client: httpx.AsyncClient, actor: Actor) -> None:
    board = await new_dashboard(client, actor)
    await new_insight(client, actor, board)

    (text,) = text_tiles(
        await ok_tiles(client, actor, board, [{"text": {"body": "t"}, "layouts": {"sm": sm(0, 20, 3, 3)}}])
    )

    assert text["layouts"] == {"sm": sm(0, 20, 3, 3), "xs": xs(5)}


async def test_odd_layouts_of_existing_tiles_never_break_placement(
    client: httpx.AsyncClient, actor: Actor
) -> None:
    board = await new_dashboard(client, actor)
    (made,) = await ok_tiles(client, actor, board, [{"text": {"body": "odd"}}])
    odd = {"sm": {"x": "left", "y": None, "w": True}, "xs": [1, 2], "lg": {"x": 0}}
    await ok_tiles(client, actor, board, [{"id": made["id"], "layouts": odd}])

    tiles = await ok_tiles(client, actor, board, [{"text": {"body": "next"}}])

    assert next(t for t in tiles if t["text"]["body"] == "next")["layouts"] == {"sm": sm(0, 0), "xs": xs(0)}
    assert next(t for t in tiles if t["id"] == made["id"])["layouts"] == odd


# --- statements ---------------------------------------------------------------------------------------------


async def test_twenty_items_cost_the_statements_of_two(
    client: httpx.AsyncClient, actor: Actor, engine: AsyncEngine
) -> None:
    small, large = await new_dashboard(client, actor), await new_dashboard(client, actor)
    made_small = await ok_tiles(client, actor, small, [{"text": {"body": f"s{i}"}} for i in range(2)])
    made_large = await ok_tiles(client, actor, large, [{"text": {"body": f"l{i}"}} for i in range(20)])

    def edits(tiles: list[dict[str, Any]]) -> list[dict[str, Any]]:
        changed = [
            {"id": t["id"], "text": {"id": t["text"]["id"], "body": "edited"}, "color": "blue"} for t in tiles
        ]
        return [*changed, *({"text": {"body": "added"}} for _ in tiles)]

    with count_statements(engine) as two:
        assert len(await ok_tiles(client, actor, small, edits(made_small))) == 4
    with count_statements(engine) as twenty:
        tiles = await ok_tiles(client, actor, large, edits(made_large))
    assert len(tiles) == 40 and sum(t["text"]["body"] == "edited" for t in tiles) == 20

    assert twenty() == two(), (two(), twenty())


async def test_stored_rows_match_the_response(
    client: httpx.AsyncClient, actor: Actor, db: AsyncSession
) -> None:
    board = await new_dashboard(client, actor)
    (tile,) = await ok_tiles(client, actor, board, [{"text": {"body": "stored"}, "color": "black"}])

    row = (await db.execute(select(DashboardTile).where(DashboardTile.id == tile["id"]))).scalar_one()
    text = (await db.execute(select(Text).where(Text.id == tile["text"]["id"]))).scalar_one()
    assert row.dashboard_id == board and row.text_id == text.id and row.insight_id is None
    assert row.color == "black" and row.deleted is False and row.layouts == tile["layouts"]
    assert text.body == "stored" and text.team_id == actor.team.id and text.created_by_id == actor.user.id
