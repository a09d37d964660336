"""Insights over HTTP: the resource, its tiles, and its results through the cache."""

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.models import DashboardTile, QueryCache
from tests.events import event, ingest
from tests.factories import Actor, make_member
from tests.resources import INSIGHT_KEYS, new_dashboard, trends
from tests.statements import count_statements


async def create(client: httpx.AsyncClient, actor: Actor, **body: Any) -> dict[str, Any]:
    response = await client.post(actor.url("insights/"), json=body, headers=actor.headers)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def get(client: httpx.AsyncClient, actor: Actor, insight_id: int, **params: str) -> dict[str, Any]:
    response = await client.get(actor.url(f"insights/{insight_id}/"), params=params, headers=actor.headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


# --- the resource -------------------------------------------------------------------------------------------


async def test_create_returns_the_full_insight(client: httpx.AsyncClient, actor: Actor) -> None:
    body = await create(
        client, actor, name="Pageviews", query=trends(), description="views", tags=[" A", "a"]
    )
    assert set(body) == INSIGHT_KEYS
    assert len(body["short_id"]) == 8
    assert body["name"] == "Pageviews" and body["description"] == "views"
    assert body["query"] == trends()
    assert body["filters"] == {}
    assert body["tags"] == ["a"]
    assert body["created_by"]["id"] == actor.user.id and body["last_modified_by"]["id"] == actor.user.id
    assert body["deleted"] is False and body["dashboards"] == [] and body["dashboard_tiles"] == []
    # A new insight has nothing cached: no result, and nothing computed on create.
    assert body["result"] is None and body["is_cached"] is False and body["last_refresh"] is None
    assert body["timezone"] == "UTC"


async def test_list_paginates_and_filters(client: httpx.AsyncClient, actor: Actor) -> None:
    made = [await create(client, actor, name=f"Insight {i}", query=trends()) for i in range(3)]
    page = (await client.get(actor.url("insights"), params={"limit": 2}, headers=actor.headers)).json()
    assert page["count"] == 3 and len(page["results"]) == 2
    assert page["next"].startswith("http://testserver/api/environments/") and "offset=2" in page["next"]
    by_short = (
        await client.get(
            actor.url("insights/"), params={"short_id": made[1]["short_id"]}, headers=actor.headers
        )
    ).json()
    assert [r["id"] for r in by_short["results"]] == [made[1]["id"]]
    searched = await client.get(actor.url("insights/"), params={"search": "insight 2"}, headers=actor.headers)
    assert [r["id"] for r in searched.json()["results"]] == [made[2]["id"]]


@pytest.mark.parametrize("prefix", ["environments", "projects"])
@pytest.mark.parametrize("slash", ["", "/"])
async def test_both_prefixes_and_slash_forms(
    client: httpx.AsyncClient, actor: Actor, prefix: str, slash: str
) -> None:
    made = await create(client, actor, name="x")
    response = await client.get(
        actor.url(f"insights/{made['id']}{slash}", prefix=prefix), headers=actor.headers
    )
    assert response.status_code == 200 and response.json()["id"] == made["id"]


async def test_soft_delete_and_restore(client: httpx.AsyncClient, actor: Actor) -> None:
    made = await create(client, actor, name="x")
    url = actor.url(f"insights/{made['id']}/")
    assert (await client.patch(url, json={"deleted": True}, headers=actor.headers)).json()["deleted"] is True
    assert (await client.get(url, headers=actor.headers)).status_code == 404
    assert (await client.get(actor.url("insights/"), headers=actor.headers)).json()["count"] == 0
    assert (await client.patch(url, json={"name": "y"}, headers=actor.headers)).status_code == 404
    restored = await client.patch(url, json={"deleted": False}, headers=actor.headers)
    assert restored.status_code == 200 and restored.json()["deleted"] is False
    assert (await client.get(url, headers=actor.headers)).status_code == 200


async def test_delete_is_always_405_with_an_empty_body(client: httpx.AsyncClient, actor: Actor) -> None:
    made = await create(client, actor, name="x")
    response = await client.delete(actor.url(f"insights/{made['id']}/"), headers=actor.headers)
    assert response.status_code == 405 and response.content == b""
    assert (await client.get(actor.url(f"insights/{made['id']}/"), headers=actor.headers)).status_code == 200


async def test_update_changes_fields_and_last_modified(
    client: httpx.AsyncClient, actor: Actor, db: AsyncSession
) -> None:
    made = await create(client, actor, name="x", query=trends())
    editor = await make_member(db, actor.team)
    response = await client.patch(
        editor.url(f"insights/{made['id']}/"),
        json={"name": "renamed", "query": trends("signup"), "favorited": True, "tags": ["t"]},
        headers=editor.headers,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["name"] == "renamed" and body["favorited"] is True and body["tags"] == ["t"]
    assert body["query"]["source"]["series"][0]["event"] == "signup"
    assert body["last_modified_by"]["id"] == editor.user.id and body["created_by"]["id"] == actor.user.id


@pytest.mark.parametrize(
    ("body", "attr"),
    [
        ({"query": "trends"}, "query"),
        ({"query": {"source": {}}}, "query"),
        ({"name": "x" * 401}, "name"),
        ({"dashboards": "1"}, "dashboards"),
        ({"filters": []}, "filters"),
        ({"favorited": None}, "favorited"),
    ],
)
async def test_bad_input_is_400_naming_the_field(
    client: httpx.AsyncClient, actor: Actor, body: dict[str, Any], attr: str
) -> None:
    response = await client.post(actor.url("insights/"), json=body, headers=actor.headers)
    assert response.status_code == 400, response.text
    assert response.json()["type"] == "validation_error" and response.json()["attr"] == attr


async def test_scopes(client: httpx.AsyncClient, actor: Actor, db: AsyncSession) -> None:
    reader = await make_member(db, actor.team, scopes=["insight:read"])
    made = await create(client, actor, name="x")
    assert (
        await client.get(reader.url(f"insights/{made['id']}/"), headers=reader.headers)
    ).status_code == 200
    denied = await client.post(reader.url("insights/"), json={"name": "y"}, headers=reader.headers)
    assert denied.status_code == 403
    assert denied.json()["detail"] == "API key missing required scope 'insight:write'"
    other = await make_member(db, actor.team, scopes=["dashboard:read"])
    assert (await client.get(other.url("insights/"), headers=other.headers)).status_code == 403


async def test_other_teams_insights_are_invisible(
    client: httpx.AsyncClient, actor: Actor, other_actor: Actor
) -> None:
    made = await create(client, actor, name="mine")
    own_url = other_actor.url(f"insights/{made['id']}/")
    assert (await client.get(own_url, headers=other_actor.headers)).status_code == 404
    assert (await client.patch(own_url, json={"name": "x"}, headers=other_actor.headers)).status_code == 404
    assert (await client.get(actor.url("insights/"), headers=other_actor.headers)).status_code == 403


# --- dashboards: [ids] ---------------------------------------------------------------------------------


async def test_dashboards_field_adds_and_removes_tiles(
    client: httpx.AsyncClient, actor: Actor, db: AsyncSession
) -> None:
    first, second = await new_dashboard(client, actor), await new_dashboard(client, actor)
    made = await create(client, actor, name="x", dashboards=[first, second])
    assert made["dashboards"] == sorted([first, second])
    assert {t["dashboard_id"] for t in made["dashboard_tiles"]} == {first, second}
    tile_on_first = next(t["id"] for t in made["dashboard_tiles"] if t["dashboard_id"] == first)

    url = actor.url(f"insights/{made['id']}/")
    moved = (await client.patch(url, json={"dashboards": [second]}, headers=actor.headers)).json()
    assert moved["dashboards"] == [second]
    removed = (
        await db.execute(select(DashboardTile.deleted).where(DashboardTile.id == tile_on_first))
    ).scalar()
    assert removed is True  # soft-deleted, as PostHog does

    back = (await client.patch(url, json={"dashboards": [first, second]}, headers=actor.headers)).json()
    assert {t["id"] for t in back["dashboard_tiles"] if t["dashboard_id"] == first} == {tile_on_first}


async def test_dashboards_must_be_the_teams_own(
    client: httpx.AsyncClient, actor: Actor, other_actor: Actor
) -> None:
    theirs = await new_dashboard(client, other_actor)
    response = await client.post(actor.url("insights/"), json={"dashboards": [theirs]}, headers=actor.headers)
    assert response.status_code == 400 and response.json()["attr"] == "dashboards"
    assert (await client.get(actor.url("insights/"), headers=actor.headers)).json()["count"] == 0


async def test_a_restricted_dashboard_needs_edit_rights(
    client: httpx.AsyncClient, actor: Actor, db: AsyncSession
) -> None:
    locked = await new_dashboard(client, actor, restriction_level=37)
    member = await make_member(db, actor.team)
    response = await client.post(
        member.url("insights/"), json={"dashboards": [locked]}, headers=member.headers
    )
    assert response.status_code == 403


async def test_a_deleted_dashboard_is_not_listed(client: httpx.AsyncClient, actor: Actor) -> None:
    board = await new_dashboard(client, actor)
    made = await create(client, actor, name="x", dashboards=[board])
    await client.patch(actor.url(f"dashboards/{board}/"), json={"deleted": True}, headers=actor.headers)
    assert (await get(client, actor, made["id"]))["dashboards"] == []


# --- results and the cache ----------------------------------------------------------------------------


async def _with_pageviews(client: httpx.AsyncClient, actor: Actor, count: int = 3) -> None:
    now = datetime.now(UTC)
    await ingest(
        client, actor, [event("$pageview", f"u{i}", now - timedelta(minutes=5)) for i in range(count)]
    )


async def test_refresh_modes_and_cache_states(client: httpx.AsyncClient, actor: Actor) -> None:
    await _with_pageviews(client, actor)
    made = await create(client, actor, name="x", query=trends())
    cold = await get(client, actor, made["id"])
    assert cold["result"] is None and cold["is_cached"] is False and cold["last_refresh"] is None

    computed = await get(client, actor, made["id"], refresh="blocking")
    assert computed["error"] is None, computed["error"]
    assert computed["is_cached"] is False and computed["last_refresh"] is not None
    assert computed["result"][0]["count"] == 3.0
    refreshed_at = datetime.fromisoformat(computed["last_refresh"])
    assert datetime.fromisoformat(computed["next_allowed_client_refresh"]) == refreshed_at + timedelta(
        minutes=1
    )
    assert datetime.fromisoformat(computed["cache_target_age"]) == refreshed_at + timedelta(hours=6)

    for mode in (None, "blocking", "async", "lazy_async", "force_cache"):
        params = {} if mode is None else {"refresh": mode}
        again = await get(client, actor, made["id"], **params)
        assert again["is_cached"] is True, mode
        assert again["last_refresh"] == computed["last_refresh"], mode
        assert again["result"] == computed["result"], mode

    await _with_pageviews(client, actor, 2)
    forced = await get(client, actor, made["id"], refresh="force_blocking")
    assert forced["is_cached"] is False and forced["last_refresh"] > computed["last_refresh"]
    assert forced["result"][0]["count"] == 5.0
    assert (await get(client, actor, made["id"], refresh="true"))["is_cached"] is False


async def test_a_stale_result_is_recomputed_by_blocking_only(
    client: httpx.AsyncClient, actor: Actor, db: AsyncSession
) -> None:
    await _with_pageviews(client, actor)
    made = await create(client, actor, name="x", query=trends())
    first = await get(client, actor, made["id"], refresh="blocking")
    seven_hours_ago = datetime.now(UTC) - timedelta(hours=7)
    await db.execute(update(QueryCache).values(last_refresh=seven_hours_ago))
    await db.commit()
    stale = await get(client, actor, made["id"])  # cache only: served even if stale
    assert stale["is_cached"] is True and datetime.fromisoformat(stale["last_refresh"]) == seven_hours_ago
    fresh = await get(client, actor, made["id"], refresh="blocking")
    assert fresh["is_cached"] is False and fresh["last_refresh"] > first["last_refresh"]


async def test_hourly_results_go_stale_after_an_hour(client: httpx.AsyncClient, actor: Actor) -> None:
    made = await create(
        client, actor, name="x", query=trends(interval="hour", dateRange={"date_from": "-24h"})
    )
    computed = await get(client, actor, made["id"], refresh="blocking")
    assert computed["error"] is None, computed["error"]
    refreshed_at = datetime.fromisoformat(computed["last_refresh"])
    assert datetime.fromisoformat(computed["cache_target_age"]) == refreshed_at + timedelta(hours=1)


async def test_identical_queries_share_one_cached_result(client: httpx.AsyncClient, actor: Actor) -> None:
    one = await create(client, actor, name="one", query=trends())
    two = await create(client, actor, name="two", query=trends())
    computed = await get(client, actor, one["id"], refresh="blocking")
    shared = await get(client, actor, two["id"])
    assert shared["is_cached"] is True and shared["last_refresh"] == computed["last_refresh"]


async def test_the_team_timezone_is_part_of_the_cache_key(
    client: httpx.AsyncClient, actor: Actor, db: AsyncSession
) -> None:
    made = await create(client, actor, name="x", query=trends())
    await get(client, actor, made["id"], refresh="blocking")
    actor.team.timezone = "Europe/Paris"
    db.add(actor.team)
    await db.commit()
    moved = await get(client, actor, made["id"])
    assert moved["result"] is None and moved["is_cached"] is False and moved["timezone"] == "Europe/Paris"


async def test_unsupported_queries_report_an_error_naming_them(
    client: httpx.AsyncClient, actor: Actor
) -> None:
    funnel = {"kind": "InsightVizNode", "source": {"kind": "PathsQuery", "series": []}}
    made = await create(client, actor, name="x", query=funnel)
    body = await get(client, actor, made["id"], refresh="blocking")
    assert body["result"] is None and body["last_refresh"] is None
    assert body["error"]["type"] == "UnsupportedQuery" and "PathsQuery" in body["error"]["message"]


async def test_bad_refresh_value_is_400(client: httpx.AsyncClient, actor: Actor) -> None:
    made = await create(client, actor, name="x")
    response = await client.get(
        actor.url(f"insights/{made['id']}/"), params={"refresh": "soon"}, headers=actor.headers
    )
    assert response.status_code == 400 and response.json()["attr"] == "refresh"


async def test_list_reads_every_cached_result_in_a_fixed_number_of_statements(
    client: httpx.AsyncClient, actor: Actor, engine: AsyncEngine
) -> None:
    async def count_list() -> tuple[int, dict[str, Any]]:
        with count_statements(engine) as count:
            page = (await client.get(actor.url("insights/"), headers=actor.headers)).json()
        return count(), page

    board = await new_dashboard(client, actor)
    first = await create(client, actor, name="a", query=trends(), dashboards=[board], tags=["x"])
    await get(client, actor, first["id"], refresh="blocking")
    small, _ = await count_list()
    for i in range(9):
        made = await create(
            client, actor, name=f"b{i}", query=trends(f"e{i}"), dashboards=[board], tags=["y"]
        )
        await get(client, actor, made["id"], refresh="blocking")
    large, page = await count_list()
    assert page["count"] == 10 and all(r["is_cached"] for r in page["results"])
    assert large == small
