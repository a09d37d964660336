"""`GET …/dashboards/{id}/stream_tiles/` on finite streams: PostHog's wire format, the tiles as retrieve
shows them, errors before the stream opens, ordering, filters, resuming with `Last-Event-ID`, CORS and the
query string kept out of logs.

These run inside the test's rolled-back transaction: the stream's renders share its one connection and so
run one at a time. Concurrency (parallel renders, disconnects, the cap, shutdown) is tested on a committed
database in `test_stream_concurrency.py`.
"""

import logging
from typing import Any

import httpx
import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import DashboardTile
from app.streaming import resume
from tests.events import event, ingest
from tests.factories import Actor, make_actor
from tests.resources import trends
from tests.sharing_helpers import jwt_for, protected_dashboard, shared_dashboard
from tests.streams import (
    Message,
    SlowQueries,
    board_of,
    insight_on,
    parse,
    payloads,
    stream,
    stream_url,
    tiles_of,
)

NOT_FOUND = {"type": "invalid_request", "code": "not_found", "detail": "Not found.", "attr": None}


async def retrieve(client: httpx.AsyncClient, actor: Actor, board: int, **params: str) -> dict[str, Any]:
    response = await client.get(actor.url(f"dashboards/{board}/"), params=params, headers=actor.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def messages_of(client: httpx.AsyncClient, actor: Actor, board: int, **params: str) -> list[Message]:
    response = await stream(client, actor, board, **params)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    return parse(response.text)


async def warm(client: httpx.AsyncClient, actor: Actor, insight_id: int) -> None:
    """Cache one insight's result (its dashboard tile, without dashboard filters, shares it)."""
    response = await client.get(
        actor.url(f"insights/{insight_id}/"), params={"refresh": "blocking"}, headers=actor.headers
    )
    assert response.status_code == 200, response.text


# --- the wire format ------------------------------------------------------------------------------------


async def test_metadata_then_each_tile_then_complete_in_posthogs_format(
    client: httpx.AsyncClient, actor: Actor
) -> None:
    board = await board_of(client, actor, ["a", "b", "c", "d"])
    response = await client.patch(
        actor.url(f"dashboards/{board}/"),
        json={"tiles": [{"text": {"body": "notes"}}]},
        headers=actor.headers,
    )
    assert response.status_code == 200

    messages = await messages_of(client, actor, board)
    data = payloads(messages)
    assert [d["type"] for d in data] == ["metadata", "tile", "tile", "tile", "tile", "tile", "complete"]
    # PostHog's messages: one data line each, no `event:` field (EventSource.onmessage sees them all).
    assert all(m.event is None and m.data is not None for m in messages)
    metadata = data[0]["dashboard"]
    retrieved = await retrieve(client, actor, board, refresh="blocking")
    assert set(metadata) == set(retrieved)
    stamps = ("tiles", "last_accessed_at", "last_viewed_at")
    assert {k: v for k, v in metadata.items() if k not in stamps} == {
        k: v for k, v in retrieved.items() if k not in stamps
    }
    # Nothing was cached and the first two tiles need computing: the metadata carries none. The text tile
    # (placed last) needs nothing: it goes first; the others follow as they are rendered.
    assert metadata["tiles"] == []
    assert data[1]["tile"]["text"]["body"] == "notes" and data[1]["order"] == 4
    for d in data[1:-1]:
        assert set(d) == {"type", "order", "tile"} and d["order"] == d["tile"]["order"]
    streamed = tiles_of(messages)
    assert sorted(t["id"] for t in streamed) == sorted(t["id"] for t in retrieved["tiles"])
    # Each tile is the tile retrieve shows (the stream computed the results; retrieve then read them).
    by_id = {t["id"]: t for t in retrieved["tiles"]}
    for tile in streamed:
        expected = dict(by_id[tile["id"]])
        if tile["insight"] is not None:
            assert tile["is_cached"] is False and expected["is_cached"] is True
            expected = {
                **expected,
                "is_cached": False,
                "insight": {**expected["insight"], "is_cached": False},
            }
        assert tile == expected
    # `retry:` once, on the first message; an `id:` on every message.
    assert [m.retry for m in messages] == [3000] + [None] * (len(messages) - 1)
    assert all(m.id is not None and m.id.startswith("1.") for m in messages)


async def test_cached_tiles_go_first_and_the_first_two_travel_with_the_metadata_when_ready(
    client: httpx.AsyncClient, actor: Actor, db: AsyncSession
) -> None:
    board = await board_of(client, actor, [])
    ids = [await insight_on(client, actor, board, trends(name), name=name) for name in "abcd"]
    # Tiles a, b, c, d at y = 0, 5, 10, 15; only b and d cached.
    for y, insight_id in enumerate(ids):
        layouts = {"sm": {"x": 0, "y": 5 * y, "w": 6, "h": 5}, "xs": {"x": 0, "y": 5 * y, "w": 1, "h": 5}}
        await db.execute(
            update(DashboardTile).where(DashboardTile.insight_id == insight_id).values(layouts=layouts)
        )
    await db.commit()
    await warm(client, actor, ids[1])
    await warm(client, actor, ids[3])

    data = payloads(await messages_of(client, actor, board))
    # The first two tiles are a (not ready) and b (cached): the metadata carries b alone.
    assert [t["insight"]["name"] for t in data[0]["dashboard"]["tiles"]] == ["b"]
    assert data[0]["dashboard"]["tiles"][0]["is_cached"] is True
    # Then the other cached tile (d), then those computed (a, c), then complete.
    sent = [(d["tile"]["insight"]["name"], d["order"], d["tile"]["is_cached"]) for d in data[1:-1]]
    assert sent == [("d", 3, True), ("a", 0, False), ("c", 2, False)]
    assert data[-1] == {"type": "complete"}


async def test_a_failing_tile_is_an_ordinary_tile_with_its_error_and_the_stream_goes_on(
    client: httpx.AsyncClient, actor: Actor
) -> None:
    board = await board_of(client, actor, ["fine"])
    await insight_on(client, actor, board, {"kind": "InsightVizNode", "source": {"kind": "PathsQuery"}}, "f")
    data = payloads(await messages_of(client, actor, board))
    assert [d["type"] for d in data] == ["metadata", "tile", "tile", "complete"]
    by_name = {d["tile"]["insight"]["name"]: d["tile"] for d in data[1:-1]}
    assert by_name["f"]["error"]["type"] == "UnsupportedQuery"
    assert "PathsQuery" in by_name["f"]["error"]["message"]
    assert "error" not in by_name["fine"] and by_name["fine"]["insight"]["result"] is not None
    retrieved = {
        t["insight"]["name"]: t for t in (await retrieve(client, actor, board, refresh="blocking"))["tiles"]
    }
    assert by_name["f"]["error"] == retrieved["f"]["error"]


async def test_an_empty_dashboard_streams_its_metadata_then_complete(
    client: httpx.AsyncClient, actor: Actor
) -> None:
    board = await board_of(client, actor, [])
    data = payloads(await messages_of(client, actor, board))
    assert [d["type"] for d in data] == ["metadata", "complete"]
    assert data[0]["dashboard"]["tiles"] == []


async def test_identical_queries_are_computed_once(
    client: httpx.AsyncClient, actor: Actor, slow: SlowQueries
) -> None:
    board = await board_of(client, actor, ["same", "same", "other"])
    data = payloads(await messages_of(client, actor, board, refresh="force_blocking"))
    tiles = [d["tile"] for d in data if d["type"] == "tile"]
    assert len(tiles) == 3
    assert sorted(e for e in slow.computed if e is not None) == ["other", "same"]
    same = [t for t in tiles if t["insight"]["name"] == "same"]
    assert same[0]["last_refresh"] == same[1]["last_refresh"]
    assert same[0]["insight"]["result"] == same[1]["insight"]["result"]


# --- parameters ------------------------------------------------------------------------------------------


async def test_refresh_is_blocking_by_default_and_honoured_when_given(
    client: httpx.AsyncClient, actor: Actor
) -> None:
    board = await board_of(client, actor, ["a"])
    cache_only = tiles_of(await messages_of(client, actor, board, refresh="force_cache"))
    assert cache_only[0]["insight"]["result"] is None and cache_only[0]["is_cached"] is False
    computed = tiles_of(await messages_of(client, actor, board))
    assert computed[0]["insight"]["result"] is not None and computed[0]["is_cached"] is False
    cached = tiles_of(await messages_of(client, actor, board))
    assert cached[0]["is_cached"] is True and cached[0]["last_refresh"] == computed[0]["last_refresh"]
    forced = tiles_of(await messages_of(client, actor, board, refresh="true"))
    assert forced[0]["is_cached"] is False and forced[0]["last_refresh"] > computed[0]["last_refresh"]
    bad = await stream(client, actor, board, refresh="sometimes")
    assert bad.status_code == 400 and bad.json()["attr"] == "refresh"


async def test_tiles_are_ordered_by_sm_or_xs_as_asked(
    client: httpx.AsyncClient, actor: Actor, db: AsyncSession
) -> None:
    board = await board_of(client, actor, [])
    first = await insight_on(client, actor, board, trends("x"), name="first")
    second = await insight_on(client, actor, board, trends("y"), name="second")
    positions = {
        first: {"sm": {"x": 0, "y": 5, "w": 6, "h": 5}, "xs": {"x": 0, "y": 0, "w": 1, "h": 5}},
        second: {"sm": {"x": 0, "y": 0, "w": 6, "h": 5}, "xs": {"x": 0, "y": 5, "w": 1, "h": 5}},
    }
    for insight_id, layouts in positions.items():
        await db.execute(
            update(DashboardTile).where(DashboardTile.insight_id == insight_id).values(layouts=layouts)
        )
    await db.commit()

    def orders(messages: list[Message]) -> list[tuple[str, int]]:
        return sorted((t["order"], t["insight"]["name"]) for t in tiles_of(messages))  # type: ignore[misc]

    assert orders(await messages_of(client, actor, board)) == [(0, "second"), (1, "first")]
    assert orders(await messages_of(client, actor, board, layout_size="sm")) == [(0, "second"), (1, "first")]
    assert orders(await messages_of(client, actor, board, layout_size="xs")) == [(0, "first"), (1, "second")]
    assert orders(await messages_of(client, actor, board, layoutSize="xs")) == [(0, "first"), (1, "second")]
    # Anything else falls back to `sm`, as in PostHog.
    assert orders(await messages_of(client, actor, board, layout_size="lg")) == [(0, "second"), (1, "first")]


async def test_filters_and_overrides_apply_as_on_retrieve(client: httpx.AsyncClient, actor: Actor) -> None:
    await ingest(client, actor, [event("a", "u1", "2026-01-10T12:00:00Z", {"$browser": "Chrome"})])
    board = await board_of(client, actor, ["a"])
    await client.patch(
        actor.url(f"dashboards/{board}/"),
        json={"filters": {"date_from": "2026-01-01", "date_to": "2026-01-31"}, "variables": {"v": 1}},
        headers=actor.headers,
    )
    params = {
        "filters_override": '{"properties": [{"key": "$browser", "value": "Chrome", "type": "event"}]}',
        "variables_override": '{"w": 2}',
    }
    await retrieve(client, actor, board, refresh="blocking", **params)  # computes
    retrieved = await retrieve(client, actor, board, refresh="blocking", **params)  # reads the cache
    messages = await messages_of(client, actor, board, **params)
    metadata = payloads(messages)[0]["dashboard"]
    assert metadata["filters"] == retrieved["filters"]
    assert metadata["filters"]["properties"][0]["key"] == "$browser"
    assert metadata["variables"] == {"v": 1, "w": 2} == retrieved["variables"]
    assert metadata["persisted_filters"] == {"date_from": "2026-01-01", "date_to": "2026-01-31"}
    [streamed] = tiles_of(messages)
    [expected] = retrieved["tiles"]
    assert streamed == expected  # both read the result the retrieve computed
    source = streamed["insight"]["query"]["source"]
    assert source["dateRange"] == {"date_from": "2026-01-01", "date_to": "2026-01-31"}
    assert source["properties"] == [{"key": "$browser", "value": "Chrome", "type": "event"}]
    assert sum(streamed["insight"]["result"][0]["data"]) == 1

    bad = await stream(client, actor, board, filters_override="{nope")
    assert bad.status_code == 400
    assert bad.json()["detail"] == "Invalid JSON passed in filters_override parameter"


async def test_format_changes_nothing(client: httpx.AsyncClient, actor: Actor) -> None:
    board = await board_of(client, actor, ["a"])
    data = payloads(await messages_of(client, actor, board, format="txt"))
    assert [d["type"] for d in data] == ["metadata", "tile", "complete"]
    assert (await stream(client, actor, board, format="xml")).status_code == 400


async def test_a_stream_sets_last_accessed_at(client: httpx.AsyncClient, actor: Actor) -> None:
    board = await board_of(client, actor, [])
    before = (await client.get(actor.url("dashboards/"), headers=actor.headers)).json()["results"][0]
    assert before["last_accessed_at"] is None
    metadata = payloads(await messages_of(client, actor, board))[0]["dashboard"]
    assert metadata["last_accessed_at"] is not None
    after = (await client.get(actor.url("dashboards/"), headers=actor.headers)).json()["results"][0]
    assert after["last_accessed_at"] == metadata["last_accessed_at"]


# --- before the stream opens: JSON errors -----------------------------------------------------------------


async def test_401_403_404_are_json_before_any_stream(
    client: httpx.AsyncClient, actor: Actor, other_actor: Actor, db: AsyncSession
) -> None:
    board = await board_of(client, actor, ["a"])
    url = actor.url(f"dashboards/{board}/stream_tiles/")

    missing = await client.get(url)
    assert missing.status_code == 401 and missing.headers["content-type"] == "application/json"
    assert missing.json()["code"] == "not_authenticated"
    bad_key = await client.get(url, headers={"Authorization": "Bearer phx_nope"})
    assert bad_key.status_code == 401 and bad_key.json()["code"] == "authentication_failed"

    insights_only = await make_actor(db, team=actor.team, scopes=["insight:read"])
    scoped = await client.get(url, headers=insights_only.headers)
    assert scoped.status_code == 403
    assert scoped.json()["detail"] == "API key missing required scope 'dashboard:read'"
    reader = await make_actor(db, team=actor.team, scopes=["dashboard:read"])
    assert (await client.get(url, headers=reader.headers)).status_code == 200

    stranger = await client.get(url, headers=other_actor.headers)
    assert stranger.status_code == 403
    assert stranger.json()["detail"] == "You don't have access to the project."

    elsewhere = await client.get(
        other_actor.url(f"dashboards/{board}/stream_tiles/"), headers=other_actor.headers
    )
    assert elsewhere.status_code == 404 and elsewhere.json() == NOT_FOUND
    nothing = await stream(client, actor, 2_000_000_000)
    assert nothing.status_code == 404 and nothing.json() == NOT_FOUND
    await client.patch(actor.url(f"dashboards/{board}/"), json={"deleted": True}, headers=actor.headers)
    deleted = await stream(client, actor, board)
    assert deleted.status_code == 404 and deleted.json() == NOT_FOUND


async def test_both_prefixes_and_no_trailing_slash(client: httpx.AsyncClient, actor: Actor) -> None:
    board = await board_of(client, actor, [])
    for url in (
        actor.url(f"dashboards/{board}/stream_tiles", prefix="projects"),
        actor.url(f"dashboards/{board}/stream_tiles/", prefix="projects"),
        actor.url(f"dashboards/{board}/stream_tiles"),
    ):
        response = await client.get(url, headers=actor.headers)
        assert response.status_code == 200
        assert [d["type"] for d in payloads(parse(response.text))] == ["metadata", "complete"]


# --- browsers: the key in the query string, never in a log; CORS -------------------------------------------


async def test_the_key_may_be_a_query_parameter_and_is_never_logged(
    client: httpx.AsyncClient, actor: Actor, caplog: pytest.LogCaptureFixture
) -> None:
    board = await board_of(client, actor, ["a"])
    with caplog.at_level(logging.DEBUG):
        response = await client.get(
            actor.url(f"dashboards/{board}/stream_tiles/"),
            params={"personal_api_key": actor.key, "layout_size": "xs"},
        )
        assert response.status_code == 200
        assert [d["type"] for d in payloads(parse(response.text))] == ["metadata", "tile", "complete"]
    # The server's records (the test's own HTTP client logs its requests, query string included).
    server = [r for r in caplog.records if r.name.split(".")[0] not in ("httpx", "httpcore")]
    logged = "\n".join(record.getMessage() for record in server)
    assert f"GET /api/environments/{actor.team.id}/dashboards/{board}/stream_tiles/ 200" in logged
    assert actor.key not in logged and "personal_api_key" not in logged and "layout_size" not in logged


async def test_cors_allows_only_the_configured_origins(configured: Any, actor: Actor) -> None:
    origin = "https://app.example.com"
    async with configured() as default_client:
        board = await board_of(default_client, actor, [])
        plain = await stream(default_client, actor, board, headers={"Origin": origin})
        assert plain.status_code == 200 and "access-control-allow-origin" not in plain.headers
    async with configured(TILECAST_CORS_ALLOWED_ORIGINS=f"{origin}, http://localhost:3000") as client:
        allowed = await stream(client, actor, board, headers={"Origin": origin})
        assert allowed.status_code == 200 and allowed.headers["access-control-allow-origin"] == origin
        other = await stream(client, actor, board, headers={"Origin": "https://evil.example.com"})
        assert "access-control-allow-origin" not in other.headers
        # A reconnecting EventSource sends Last-Event-ID: its preflight is answered.
        preflight = await client.options(
            actor.url(f"dashboards/{board}/stream_tiles/"),
            headers={
                "Origin": origin,
                "Access-Control-Request-Method": "GET",
                "Access-Control-Request-Headers": "last-event-id",
            },
        )
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == origin
        assert "last-event-id" in preflight.headers["access-control-allow-headers"].lower()
        # Errors carry the header too, so the page can read them.
        denied = await client.get(actor.url(f"dashboards/{board}/stream_tiles/"), headers={"Origin": origin})
        assert denied.status_code == 401 and denied.headers["access-control-allow-origin"] == origin
        # Capture keeps its own rules (any origin), untouched.
        capture = await client.options("/batch/", headers={"Origin": "https://site.example"})
        assert capture.headers["access-control-allow-origin"] == "https://site.example"


# --- heartbeat --------------------------------------------------------------------------------------------


async def test_a_heartbeat_comment_while_tiles_render(
    configured: Any, actor: Actor, slow: SlowQueries
) -> None:
    slow.delays["slow"] = 1.0
    async with configured(TILECAST_STREAM_HEARTBEAT_S="0.2") as client:
        board = await board_of(client, actor, ["slow"])
        response = await stream(client, actor, board)
    messages = parse(response.text)
    beats = [m for m in messages if m.data is None]
    assert len(beats) >= 3
    assert all(m.comments and m.comments[0].startswith("ping") for m in beats)
    assert [d["type"] for d in payloads(messages)] == ["metadata", "tile", "complete"]


# --- resume -----------------------------------------------------------------------------------------------


async def test_a_reconnection_gets_the_metadata_and_only_the_missing_tiles(
    client: httpx.AsyncClient, actor: Actor, slow: SlowQueries
) -> None:
    board = await board_of(client, actor, ["a", "b", "c", "d", "e"])
    first = await messages_of(client, actor, board)
    assert [d["type"] for d in payloads(first)] == [
        "metadata",
        "tile",
        "tile",
        "tile",
        "tile",
        "tile",
        "complete",
    ]
    # The client got the metadata and two tiles, then lost the connection.
    got = [d["tile"]["id"] for d in payloads(first)[1:3]]
    last_id = first[2].id
    assert last_id is not None

    again = await stream(client, actor, board, headers={"Last-Event-ID": last_id})
    assert again.status_code == 200
    resumed = parse(again.text)
    data = payloads(resumed)
    # The three missing tiles are cached now: the first two travel with the metadata.
    assert [d["type"] for d in data] == ["metadata", "tile", "complete"]
    assert len(data[0]["dashboard"]["tiles"]) == 2
    assert resumed[0].retry == 3000
    everything = {t["id"] for t in tiles_of(first)}
    assert {t["id"] for t in tiles_of(resumed)} == everything - set(got)
    # Only the missing tiles are rendered at all.
    slow.computed.clear()
    forced = await stream(client, actor, board, headers={"Last-Event-ID": last_id}, refresh="force_blocking")
    missing = {t["insight"]["name"] for t in tiles_of(first) if t["id"] not in got}
    assert sorted(slow.computed) == sorted(missing) and len(missing) == 3
    assert {t["id"] for t in tiles_of(parse(forced.text))} == everything - set(got)
    # The complete message's id says every tile is delivered: reconnecting with it gets 204.
    done = await stream(client, actor, board, headers={"Last-Event-ID": resumed[-1].id or ""})
    assert done.status_code == 204 and done.content == b""
    also_done = await stream(client, actor, board, headers={"Last-Event-ID": first[-1].id or ""})
    assert also_done.status_code == 204


async def test_a_reconnection_gets_added_tiles_and_not_removed_ones(
    client: httpx.AsyncClient, actor: Actor
) -> None:
    board = await board_of(client, actor, ["a", "b", "c"])
    first = await messages_of(client, actor, board)
    data = payloads(first)
    delivered, missing = data[1]["tile"], data[2]["tile"]
    last_id = first[1].id or ""
    # Meanwhile: a tile the client lacks is removed, one it has is removed, and a new one is added.
    removed = [{"id": missing["id"], "deleted": True}, {"id": delivered["id"], "deleted": True}]
    response = await client.patch(
        actor.url(f"dashboards/{board}/"),
        json={"tiles": [*removed, {"text": {"body": "new"}}]},
        headers=actor.headers,
    )
    assert response.status_code == 200
    added = next(t["id"] for t in response.json()["tiles"] if t["text"] is not None)

    resumed = parse((await stream(client, actor, board, headers={"Last-Event-ID": last_id})).text)
    # Both missing tiles are ready (one cached, one a text): they travel with the metadata.
    assert [d["type"] for d in payloads(resumed)] == ["metadata", "complete"]
    third = {t["id"] for t in tiles_of(first)} - {delivered["id"], missing["id"]}
    assert {t["id"] for t in tiles_of(resumed)} == third | {added}


async def test_changed_filters_make_a_reconnection_start_over(
    client: httpx.AsyncClient, actor: Actor
) -> None:
    board = await board_of(client, actor, ["a", "b"])
    first = await messages_of(client, actor, board)
    last_id = first[-1].id or ""
    await client.patch(
        actor.url(f"dashboards/{board}/"), json={"filters": {"date_from": "-30d"}}, headers=actor.headers
    )
    resumed = parse((await stream(client, actor, board, headers={"Last-Event-ID": last_id})).text)
    assert len(tiles_of(resumed)) == 2
    assert resumed[0].id is not None and resumed[0].id.split(".")[1] != last_id.split(".")[1]
    # An override the first stream did not have is another version too.
    overridden = await stream(
        client, actor, board, headers={"Last-Event-ID": resumed[-1].id or ""}, filters_override='{"x": 1}'
    )
    assert overridden.status_code == 200 and len(tiles_of(parse(overridden.text))) == 2


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "nonsense",
        "1.zzzzzzzz.AAA",
        "2.{v}.AAA",
        "1.{v}.***",
        "1.{v}.//8",
        "1.{v}.gICAgIAB",
        "é" * 10,
        "1." * 9000,
    ],
)
async def test_a_malformed_last_event_id_is_a_fresh_stream(
    client: httpx.AsyncClient, actor: Actor, bad: str
) -> None:
    board = await board_of(client, actor, ["a"])
    bad = bad.replace("{v}", resume.dashboard_version(board, {}, {}, "sm"))
    response = await client.get(
        actor.url(f"dashboards/{board}/stream_tiles/"),
        headers={**actor.headers, "Last-Event-ID": bad.encode("utf-8")},  # type: ignore[dict-item]
    )
    assert response.status_code == 200
    assert [d["type"] for d in payloads(parse(response.text))] == ["metadata", "tile", "complete"]


def test_the_id_format_round_trips_and_is_compact() -> None:
    version = resume.dashboard_version(1, {}, {}, "sm")
    assert len(version) == 8
    for ids in ([], [1], [7, 8, 9, 12], [5, 2**31 - 1], list(range(1000, 1500)), list(range(3, 3000, 6))):
        found = resume.decode(resume.encode(version, ids))
        assert found is not None and found.version == version
        assert all(i in found for i in ids)
        assert not any(i in found for i in set(range(0, 3100)) - set(ids))
    # 500 tiles made together: a few bytes; 500 scattered over a million ids: still a short header.
    assert len(resume.encode(version, range(1000, 1500))) < 20
    scattered = range(17, 1_000_000, 1999)
    assert len(scattered) >= 500 and len(resume.encode(version, scattered)) < 2100
    assert resume.encode(version, [7, 8, 9, 12]) == f"1.{version}.BgICAA"
    # A run of two billion ids decodes as one run: never expanded.
    huge = resume.decode(f"1.{version}.AP7___8H")
    assert huge is not None and 5 in huge and 2**31 - 1 in huge and 2**31 not in huge
    assert resume.decode(f"1.{version}.AP____8H") is None  # past the largest tile id
    assert resume.decode(f"1.{version}.gICAgIAB") is None  # a varint too long


# --- sharing grants -------------------------------------------------------------------------------------


async def test_a_share_streams_its_dashboard_in_shared_context(
    client: httpx.AsyncClient, actor: Actor
) -> None:
    board, token = await shared_dashboard(client, actor, name="Shared board")
    url = stream_url(actor, board)

    # The share's token alone, as a browser's EventSource sends it (no key, no headers).
    response = await client.get(url, params={"sharing_access_token": token, "filters_override": '{"x": 1}'})

    assert response.status_code == 200, response.text
    data = payloads(parse(response.text))
    assert [d["type"] for d in data] == ["metadata", "tile", "complete"]
    metadata = data[0]["dashboard"]
    assert metadata["name"] == "Shared board"
    # Shared context, as the shared retrieve: levels 37/21, no viewer, overrides ignored.
    assert (metadata["effective_restriction_level"], metadata["effective_privilege_level"]) == (37, 21)
    assert metadata["user_access_level"] is None and metadata["last_viewed_at"] is None
    assert metadata["filters"] == {}
    # Another dashboard of the team: refused.
    other = await board_of(client, actor, ["a"])
    refused = await client.get(stream_url(actor, other), params={"sharing_access_token": token})
    assert refused.status_code == 403


async def test_a_password_protected_share_streams_only_with_its_jwt(
    client: httpx.AsyncClient, actor: Actor
) -> None:
    share = await protected_dashboard(client, actor, name="Locked board")
    url = stream_url(actor, share.dashboard)

    locked = await client.get(url, params={"sharing_access_token": share.token})
    assert locked.status_code == 401
    assert locked.headers["content-type"].startswith("application/json")

    jwt = await jwt_for(client, share)
    opened = await client.get(url, params={"sharing_access_token": jwt})
    assert opened.status_code == 200, opened.text
    assert [d["type"] for d in payloads(parse(opened.text))] == ["metadata", "tile", "complete"]
