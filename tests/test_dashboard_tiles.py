"""Dashboard tiles rendered from data: their shape, dashboard filters and overrides, refresh modes."""

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.models import DashboardTile, Text
from app.query.render import RefreshMode, TeamInfo
from app.query.saved import cache_keys, render_saved
from tests.events import event, ingest
from tests.factories import Actor
from tests.resources import INSIGHT_KEYS, new_dashboard, trends
from tests.statements import count_statements

TILE_KEYS = {
    "id", "insight", "text", "layouts", "color", "filters_overrides", "show_description",
    "transparent_background", "order", "last_refresh", "is_cached",
}  # fmt: skip


async def dashboard(client: httpx.AsyncClient, actor: Actor, **body: Any) -> int:
    response = await client.post(
        actor.url("dashboards/"), json={"name": "Board", **body}, headers=actor.headers
    )
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


async def insight_on(client: httpx.AsyncClient, actor: Actor, board: int, query: Any, name: str = "i") -> int:
    body = {"name": name, "query": query, "dashboards": [board]}
    response = await client.post(actor.url("insights/"), json=body, headers=actor.headers)
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


async def tiles(client: httpx.AsyncClient, actor: Actor, board: int, **params: str) -> list[dict[str, Any]]:
    response = await client.get(actor.url(f"dashboards/{board}/"), params=params, headers=actor.headers)
    assert response.status_code == 200, response.text
    return list(response.json()["tiles"])


def by_name(tile_list: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {t["insight"]["name"]: t for t in tile_list if t["insight"] is not None}


async def _browsers(client: httpx.AsyncClient, actor: Actor) -> None:
    """Today: 2 Chrome and 1 Safari pageviews; four days ago: 4 Firefox pageviews."""
    now = datetime.now(UTC)
    today = now - timedelta(minutes=10) if now.hour or now.minute >= 10 else now
    earlier = now - timedelta(days=4)
    batch = [event("$pageview", f"c{i}", today, {"$browser": "Chrome"}) for i in range(2)]
    batch += [event("$pageview", "s", today, {"$browser": "Safari"})]
    batch += [event("$pageview", f"f{i}", earlier, {"$browser": "Firefox"}) for i in range(4)]
    await ingest(client, actor, batch)


# --- shape ----------------------------------------------------------------------------------------------


async def test_an_insight_tile_has_posthogs_shape(client: httpx.AsyncClient, actor: Actor) -> None:
    board = await dashboard(client, actor)
    insight_id = await insight_on(client, actor, board, trends(), name="Views")
    [tile] = await tiles(client, actor, board)
    assert set(tile) == TILE_KEYS  # no `error` key unless the insight cannot render
    assert tile["text"] is None and tile["order"] == 0
    assert set(tile["insight"]) == INSIGHT_KEYS
    assert tile["insight"]["id"] == insight_id and tile["insight"]["dashboards"] == [board]
    assert tile["filters_overrides"] == {} and tile["color"] is None
    # Without `refresh` a dashboard reads the cache only: nothing computed yet.
    assert tile["insight"]["result"] is None and tile["is_cached"] is False and tile["last_refresh"] is None


async def test_a_text_tile_has_posthogs_shape(
    client: httpx.AsyncClient, actor: Actor, db: AsyncSession
) -> None:
    board = await dashboard(client, actor)
    text = Text(team_id=actor.team.id, body="Read me", created_by_id=actor.user.id)
    db.add(text)
    await db.flush()
    db.add(DashboardTile(dashboard_id=board, text_id=text.id, layouts={}, color="blue"))
    await db.commit()
    [tile] = await tiles(client, actor, board)
    assert set(tile) == TILE_KEYS
    assert tile["insight"] is None and tile["color"] == "blue"
    assert tile["is_cached"] is False and tile["last_refresh"] is None
    assert set(tile["text"]) == {
        "id", "body", "created_by", "last_modified_at", "last_modified_by", "team", "dashboard_tiles"
    }  # fmt: skip
    assert tile["text"]["body"] == "Read me" and tile["text"]["team"] == actor.team.id
    assert tile["text"]["created_by"]["id"] == actor.user.id
    assert tile["text"]["dashboard_tiles"] == [{"id": tile["id"], "dashboard_id": board, "deleted": False}]


async def test_tiles_are_ordered_by_the_requested_layout(
    client: httpx.AsyncClient, actor: Actor, db: AsyncSession
) -> None:
    board = await dashboard(client, actor)
    first = await insight_on(client, actor, board, trends(), name="first")
    second = await insight_on(client, actor, board, trends("other"), name="second")
    positions = {
        first: {"sm": {"x": 0, "y": 5, "w": 6, "h": 5}, "xs": {"x": 0, "y": 0, "w": 1, "h": 5}},
        second: {"sm": {"x": 0, "y": 0, "w": 6, "h": 5}, "xs": {"x": 0, "y": 5, "w": 1, "h": 5}},
    }
    for insight_id, layouts in positions.items():
        await db.execute(
            update(DashboardTile).where(DashboardTile.insight_id == insight_id).values(layouts=layouts)
        )
    await db.commit()
    sm = await tiles(client, actor, board)
    assert [(t["insight"]["name"], t["order"]) for t in sm] == [("second", 0), ("first", 1)]
    xs = await tiles(client, actor, board, layout_size="xs")
    assert [(t["insight"]["name"], t["order"]) for t in xs] == [("first", 0), ("second", 1)]


async def test_tiles_of_deleted_insights_are_hidden(client: httpx.AsyncClient, actor: Actor) -> None:
    board = await dashboard(client, actor)
    gone = await insight_on(client, actor, board, trends(), name="gone")
    await insight_on(client, actor, board, trends(), name="kept")
    await client.patch(actor.url(f"insights/{gone}/"), json={"deleted": True}, headers=actor.headers)
    assert [t["insight"]["name"] for t in await tiles(client, actor, board)] == ["kept"]


async def test_a_tile_that_cannot_render_carries_an_error(client: httpx.AsyncClient, actor: Actor) -> None:
    board = await dashboard(client, actor)
    await insight_on(
        client, actor, board, {"kind": "InsightVizNode", "source": {"kind": "PathsQuery"}}, "funnel"
    )
    await insight_on(client, actor, board, trends(), name="fine")
    rendered = by_name(await tiles(client, actor, board, refresh="blocking"))
    assert rendered["funnel"]["error"]["type"] == "UnsupportedQuery"
    assert "PathsQuery" in rendered["funnel"]["error"]["message"]
    assert rendered["funnel"]["insight"]["result"] is None
    assert "error" not in rendered["fine"] and rendered["fine"]["insight"]["result"] is not None


# --- refresh modes and cache states ---------------------------------------------------------------------


async def test_refresh_modes_through_dashboard_retrieve(client: httpx.AsyncClient, actor: Actor) -> None:
    await _browsers(client, actor)
    board = await dashboard(client, actor)
    await insight_on(client, actor, board, trends(), name="Views")

    [cold] = await tiles(client, actor, board)
    assert cold["insight"]["result"] is None and cold["is_cached"] is False

    [computed] = await tiles(client, actor, board, refresh="blocking")
    assert computed["is_cached"] is False and computed["last_refresh"] is not None
    assert computed["insight"]["result"][0]["count"] == 7.0
    assert computed["last_refresh"] == computed["insight"]["last_refresh"]

    for params in ({}, {"refresh": "blocking"}, {"refresh": "force_cache"}, {"refresh": "async"}):
        [again] = await tiles(client, actor, board, **params)
        assert again["is_cached"] is True, params
        assert again["last_refresh"] == computed["last_refresh"], params

    [forced] = await tiles(client, actor, board, refresh="force_blocking")
    assert forced["is_cached"] is False and forced["last_refresh"] > computed["last_refresh"]


async def test_the_insight_and_its_tile_share_the_cache_without_dashboard_filters(
    client: httpx.AsyncClient, actor: Actor
) -> None:
    board = await dashboard(client, actor)
    insight_id = await insight_on(client, actor, board, trends(), name="Views")
    computed = await client.get(
        actor.url(f"insights/{insight_id}/"), params={"refresh": "blocking"}, headers=actor.headers
    )
    [tile] = await tiles(client, actor, board)
    assert tile["is_cached"] is True and tile["last_refresh"] == computed.json()["last_refresh"]


# --- filters --------------------------------------------------------------------------------------------


async def test_dashboard_date_filters_replace_the_tiles_date_range(
    client: httpx.AsyncClient, actor: Actor
) -> None:
    await _browsers(client, actor)
    board = await dashboard(client, actor, filters={"date_from": "-1d"})
    await insight_on(client, actor, board, trends(), name="Views")
    [tile] = await tiles(client, actor, board, refresh="blocking")
    assert tile["insight"]["query"]["source"]["dateRange"] == {"date_from": "-1d"}
    assert tile["insight"]["result"][0]["count"] == 3.0  # the four older Firefox views fall outside -1d


async def test_filters_override_wins_over_stored_filters(client: httpx.AsyncClient, actor: Actor) -> None:
    await _browsers(client, actor)
    board = await dashboard(client, actor, filters={"date_from": "-1d"})
    await insight_on(client, actor, board, trends(), name="Views")
    [tile] = await tiles(client, actor, board, refresh="blocking", filters_override='{"date_from": "-7d"}')
    assert tile["insight"]["result"][0]["count"] == 7.0
    # The stored filters are untouched: without the override the tile is back to -1d.
    [plain] = await tiles(client, actor, board, refresh="blocking")
    assert plain["insight"]["result"][0]["count"] == 3.0


async def test_dashboard_properties_are_anded_with_the_insights(
    client: httpx.AsyncClient, actor: Actor
) -> None:
    await _browsers(client, actor)
    chrome_or_firefox = [
        {"type": "event", "key": "$browser", "operator": "exact", "value": ["Chrome", "Firefox"]}
    ]
    board = await dashboard(
        client,
        actor,
        filters={
            "properties": [{"type": "event", "key": "$browser", "operator": "is_not", "value": "Firefox"}]
        },
    )
    await insight_on(client, actor, board, trends(properties=chrome_or_firefox), name="Views")
    [tile] = await tiles(client, actor, board, refresh="blocking")
    assert tile["insight"]["result"][0]["count"] == 2.0  # Chrome only: in the insight's set, not Firefox


async def test_breakdown_filter_replaces_the_insights(client: httpx.AsyncClient, actor: Actor) -> None:
    await _browsers(client, actor)
    board = await dashboard(client, actor, filters={"breakdown_filter": {"breakdown": "$browser"}})
    await insight_on(client, actor, board, trends(), name="Views")
    [tile] = await tiles(client, actor, board, refresh="blocking")
    counts = {s["breakdown_value"]: s["count"] for s in tile["insight"]["result"]}
    assert counts == {"Firefox": 4.0, "Chrome": 2.0, "Safari": 1.0}


async def test_tile_filters_overrides_apply_on_top(
    client: httpx.AsyncClient, actor: Actor, db: AsyncSession
) -> None:
    await _browsers(client, actor)
    board = await dashboard(client, actor, filters={"date_from": "-1d"})
    overridden = await insight_on(client, actor, board, trends(), name="Chrome, 7 days")
    await insight_on(client, actor, board, trends(), name="Dashboard range")
    overrides = {
        "date_from": "-7d",
        "properties": [{"type": "event", "key": "$browser", "operator": "exact", "value": "Chrome"}],
    }
    await db.execute(
        update(DashboardTile)
        .where(DashboardTile.insight_id == overridden)
        .values(filters_overrides=overrides)
    )
    await db.commit()
    rendered = by_name(await tiles(client, actor, board, refresh="blocking"))
    assert rendered["Chrome, 7 days"]["insight"]["result"][0]["count"] == 2.0
    assert rendered["Chrome, 7 days"]["filters_overrides"] == overrides
    assert rendered["Dashboard range"]["insight"]["result"][0]["count"] == 3.0


@pytest.mark.parametrize("bad", ["{", "[1]", '"text"'])
async def test_bad_filters_override_is_400(client: httpx.AsyncClient, actor: Actor, bad: str) -> None:
    board = await dashboard(client, actor)
    response = await client.get(
        actor.url(f"dashboards/{board}/"), params={"filters_override": bad}, headers=actor.headers
    )
    assert response.status_code == 400 and response.json()["attr"] == "filters_override"


# --- cost and text rendering ----------------------------------------------------------------------------


async def _statements_of_retrieve(
    client: httpx.AsyncClient, actor: Actor, engine: AsyncEngine, board: int
) -> tuple[int, list[dict[str, Any]]]:
    with count_statements(engine) as count:
        result = await tiles(client, actor, board)
    return count(), result


async def test_cached_retrieve_costs_the_same_for_1_and_12_tiles(
    client: httpx.AsyncClient, actor: Actor, engine: AsyncEngine
) -> None:
    small, large = await dashboard(client, actor), await dashboard(client, actor)
    await insight_on(client, actor, small, trends(), name="only")
    for i in range(12):
        await insight_on(client, actor, large, trends(f"event {i}"), name=f"tile {i}")
    await tiles(client, actor, small, refresh="blocking")
    await tiles(client, actor, large, refresh="blocking")
    one, _ = await _statements_of_retrieve(client, actor, engine, small)
    twelve, rendered = await _statements_of_retrieve(client, actor, engine, large)
    assert len(rendered) == 12 and all(t["is_cached"] for t in rendered)
    assert twelve == one


async def test_txt_format_lists_tiles_with_their_numbers(client: httpx.AsyncClient, actor: Actor) -> None:
    await _browsers(client, actor)
    board = await dashboard(client, actor, description="Traffic")
    await insight_on(client, actor, board, trends(), name="Views")
    await tiles(client, actor, board, refresh="blocking")
    response = await client.get(
        actor.url(f"dashboards/{board}/"), params={"format": "txt"}, headers=actor.headers
    )
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    lines = response.text.splitlines()
    assert lines[:2] == ["Board", "Traffic"]
    assert any(line.startswith("Views: ") and line.rstrip().endswith("3") for line in lines), response.text


async def test_a_stored_query_that_cannot_compute_is_only_its_tiles_error(
    client: httpx.AsyncClient, actor: Actor, db: AsyncSession
) -> None:
    """A query stored before today's checks (or by another tool) with a number no float holds: its tile shows
    an error, the dashboard and the insight still answer, and the other tile renders."""
    dashboard = await new_dashboard(client, actor)
    good = await client.post(
        actor.url("insights/"),
        json={"name": "good", "query": trends(), "dashboards": [dashboard]},
        headers=actor.headers,
    )
    bad = await client.post(
        actor.url("insights/"),
        json={"name": "bad", "query": trends(), "dashboards": [dashboard]},
        headers=actor.headers,
    )
    huge = '[{"key": "x", "value": 1e400, "operator": "gt", "type": "event"}]'  # jsonb keeps it: 400 digits
    stored = (
        "UPDATE insight SET query = jsonb_set(query, '{source,properties}', CAST(:p AS jsonb)) WHERE id = :i"
    )
    await db.execute(text(stored), {"p": huge, "i": bad.json()["id"]})
    response = await client.get(
        actor.url(f"dashboards/{dashboard}/"), params={"refresh": "blocking"}, headers=actor.headers
    )
    assert response.status_code == 200, response.text
    errors = {t["insight"]["name"]: t.get("error") for t in response.json()["tiles"]}
    assert errors["good"] is None
    assert errors["bad"]["type"] == "ValidationError"
    assert "out of range" in errors["bad"]["message"]
    single = await client.get(
        actor.url(f"insights/{bad.json()['id']}/"), params={"refresh": "blocking"}, headers=actor.headers
    )
    assert single.status_code == 200
    assert single.json()["error"]["type"] == "ValidationError"
    assert good.status_code == 201


async def test_an_unforeseen_failure_is_the_saved_querys_error(db: AsyncSession, actor: Actor) -> None:
    """Whatever goes wrong rendering a saved query (here: a query no JSON encoder takes, which no request can
    build) becomes its error, never an exception out of the dashboard."""
    team = TeamInfo(id=actor.team.id, timezone="UTC")
    rendered = await render_saved(db, team, {"kind": object()}, RefreshMode.BLOCKING, saved=True)
    assert rendered.error == {"type": "QueryError", "message": "This insight's query could not be computed."}
    assert cache_keys(team, {1: {"kind": object()}, 2: trends()}).keys() == {2}
