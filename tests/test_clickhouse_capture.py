"""Capture with the ClickHouse events backend: events land in ClickHouse (chdb in process), once each, and a
request is acknowledged only once ClickHouse holds its events."""

import asyncio
import gzip
import json
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.clickhouse.client import ChdbClient
from app.config import get_settings
from tests.clickhouse_helpers import ClickHouseApp, stored_events, stored_persons
from tests.conftest import FreshDatabases
from tests.events import event, ingest
from tests.factories import Actor
from tests.streams import app_on, asgi_client, new_actor


async def pg_events(db: AsyncSession, team_id: int) -> int:
    return int(await db.scalar(text("SELECT count(*) FROM events WHERE team_id = :t"), {"t": team_id}) or 0)


async def test_the_app_says_its_events_backend_is_clickhouse(clickhouse_app: ClickHouseApp) -> None:
    assert get_settings().events_backend == "clickhouse"
    assert clickhouse_app.app.state.clickhouse is clickhouse_app.clickhouse


async def test_a_batch_lands_in_clickhouse_and_not_in_postgres(
    clickhouse_app: ClickHouseApp, actor: Actor, db: AsyncSession
) -> None:
    sent = [
        event("$pageview", "alice", "2026-03-01T10:00:00Z", {"$browser": "Firefox", "n": 1}),
        event("signup", "bob", "2026-03-02T11:30:00.123456Z", {"plan": "pro"}),
    ]
    await ingest(clickhouse_app.client, actor, sent)
    rows = await stored_events(clickhouse_app.clickhouse, actor.team.id)
    assert [(str(r["uuid"]), r["event"], r["distinct_id"]) for r in rows] == [
        (sent[0]["uuid"], "$pageview", "alice"),
        (sent[1]["uuid"], "signup", "bob"),
    ]
    assert rows[0]["timestamp"] == datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
    assert rows[1]["timestamp"] == datetime(2026, 3, 2, 11, 30, 0, 123456, tzinfo=UTC)
    first = json.loads(rows[0]["properties"])
    assert first["$browser"] == "Firefox" and first["n"] == 1
    assert json.loads(rows[1]["properties"])["plan"] == "pro"
    assert await pg_events(db, actor.team.id) == 0


@pytest.mark.parametrize("path", ["/capture/", "/e/", "/i/v0/e/", "/batch/"])
async def test_every_capture_path_stores_in_clickhouse(
    clickhouse_app: ClickHouseApp, actor: Actor, path: str
) -> None:
    one = event("clicked", "carol", "2026-03-03T00:00:00Z") | {"api_key": actor.team.api_token}
    response = await clickhouse_app.client.post(path, json=one)
    assert response.status_code == 200, response.text
    assert response.json() == {"status": 1}
    rows = await stored_events(clickhouse_app.clickhouse, actor.team.id)
    assert [(str(r["uuid"]), r["event"]) for r in rows] == [(one["uuid"], "clicked")]


async def test_a_gzip_batch_and_events_without_uuid(clickhouse_app: ClickHouseApp, actor: Actor) -> None:
    batch = [{"event": "e", "distinct_id": f"d{i}", "timestamp": "2026-03-04T00:00:00Z"} for i in range(50)]
    body = gzip.compress(json.dumps({"api_key": actor.team.api_token, "batch": batch}).encode())
    response = await clickhouse_app.client.post("/batch/", content=body, headers={"Content-Encoding": "gzip"})
    assert response.status_code == 200, response.text
    rows = await stored_events(clickhouse_app.clickhouse, actor.team.id)
    assert sorted(r["distinct_id"] for r in rows) == sorted(f"d{i}" for i in range(50))
    assert len({r["uuid"] for r in rows}) == 50


async def test_duplicate_uuids_are_stored_once_the_first_copy_winning(
    clickhouse_app: ClickHouseApp, actor: Actor
) -> None:
    first = event("a", "dana", "2026-03-05T00:00:00Z", {"copy": 1})
    # The same uuid again in the request, then in a retry whose computed time differs.
    again = first | {"properties": {"copy": 2}}
    await ingest(clickhouse_app.client, actor, [first, again])
    retry = first | {"timestamp": "2026-03-05T00:00:09Z", "properties": {"copy": 3}}
    other = event("b", "dana", "2026-03-05T00:01:00Z")
    await ingest(clickhouse_app.client, actor, [retry, other])
    rows = await stored_events(clickhouse_app.clickhouse, actor.team.id)
    assert [str(r["uuid"]) for r in rows] == [first["uuid"], other["uuid"]]
    assert json.loads(rows[0]["properties"])["copy"] == 1
    assert rows[0]["timestamp"] == datetime(2026, 3, 5, tzinfo=UTC)


async def test_a_uuid_is_per_team(clickhouse_app: ClickHouseApp, actor: Actor, other_actor: Actor) -> None:
    shared = event("a", "erin", "2026-03-06T00:00:00Z")
    await ingest(clickhouse_app.client, actor, [shared])
    await ingest(clickhouse_app.client, other_actor, [shared])
    assert len(await stored_events(clickhouse_app.clickhouse, actor.team.id)) == 1
    assert len(await stored_events(clickhouse_app.clickhouse, other_actor.team.id)) == 1


async def test_person_properties_go_to_postgres_and_to_clickhouse(
    clickhouse_app: ClickHouseApp, actor: Actor, db: AsyncSession
) -> None:
    await ingest(
        clickhouse_app.client,
        actor,
        [event("e", "fay", "2026-03-07T00:00:00Z", {"$set": {"plan": "free"}, "$set_once": {"first": "x"}})],
    )
    await ingest(
        clickhouse_app.client,
        actor,
        [event("e", "fay", "2026-03-07T00:01:00Z", {"$set": {"plan": "pro"}, "$set_once": {"first": "y"}})],
    )
    in_pg = await db.scalar(
        text("SELECT properties FROM person WHERE team_id = :t AND distinct_id = 'fay'"), {"t": actor.team.id}
    )
    assert in_pg == {"plan": "pro", "first": "x"}
    persons = await stored_persons(clickhouse_app.clickhouse, actor.team.id)
    assert {k: json.loads(v) for k, v in persons.items()} == {"fay": {"plan": "pro", "first": "x"}}


async def test_an_unknown_key_is_401_and_stores_nothing(clickhouse_app: ClickHouseApp) -> None:
    response = await clickhouse_app.client.post(
        "/batch/", json={"api_key": "phc_nobody", "batch": [event("e", "x", "2026-03-08T00:00:00Z")]}
    )
    assert response.status_code == 401
    ch = clickhouse_app.clickhouse
    assert await ch.query(f"SELECT count() FROM {ch.database}.events") == [(0,)]


async def test_bad_input_is_400_and_stores_nothing(clickhouse_app: ClickHouseApp, actor: Actor) -> None:
    response = await clickhouse_app.client.post(
        "/batch/", json={"api_key": actor.team.api_token, "batch": [{"event": "e"}]}
    )
    assert response.status_code == 400
    assert await stored_events(clickhouse_app.clickhouse, actor.team.id) == []


async def test_over_the_rate_limit_nothing_reaches_clickhouse(
    clickhouse_app: ClickHouseApp, actor: Actor
) -> None:
    settings = get_settings().model_copy(update={"capture_rate_limit_per_minute": 3})
    clickhouse_app.app.dependency_overrides[get_settings] = lambda: settings
    batch = [event("e", "g", "2026-03-09T00:00:00Z") for _ in range(2)]
    await ingest(clickhouse_app.client, actor, batch)
    more = [event("e", "g", "2026-03-09T00:00:00Z") for _ in range(2)]
    body = {"api_key": actor.team.api_token, "batch": more}
    refused = await clickhouse_app.client.post("/batch/", json=body)
    assert refused.status_code == 429
    rows = await stored_events(clickhouse_app.clickhouse, actor.team.id)
    assert sorted(str(r["uuid"]) for r in rows) == sorted(e["uuid"] for e in batch)


async def test_when_clickhouse_refuses_the_insert_the_request_is_503_and_nothing_is_kept(
    clickhouse_app: ClickHouseApp, actor: Actor, db: AsyncSession
) -> None:
    ch = clickhouse_app.clickhouse
    await ch.command(f"RENAME TABLE {ch.database}.events TO {ch.database}.events_away")
    sent = [event("e", "hal", "2026-03-10T00:00:00Z", {"$set": {"plan": "pro"}})]
    body = {"api_key": actor.team.api_token, "batch": sent}
    response = await clickhouse_app.client.post("/batch/", json=body)
    assert response.status_code == 503
    assert response.headers["Retry-After"]
    # PostgreSQL's part rolled back with it: the person's properties were not kept.
    assert await db.scalar(text("SELECT count(*) FROM person WHERE team_id = :t"), {"t": actor.team.id}) == 0
    # Back again, the SDK's retry is stored once.
    await ch.command(f"RENAME TABLE {ch.database}.events_away TO {ch.database}.events")
    await ingest(clickhouse_app.client, actor, sent)
    await ingest(clickhouse_app.client, actor, sent)
    rows = await stored_events(ch, actor.team.id)
    assert [str(r["uuid"]) for r in rows] == [sent[0]["uuid"]]


@pytest.fixture
def committed_url(fresh_databases: FreshDatabases) -> str:
    return fresh_databases.create()


async def test_concurrent_requests_carrying_the_same_uuids_store_each_once(
    committed_url: str, clickhouse: ChdbClient, chdb_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two workers (each its own pool and ClickHouse client) receive the same events at once, as SDK
    retries racing their first attempts: the team's lock lets one check-and-insert through at a time."""
    backend = {"TILECAST_EVENTS_BACKEND": "clickhouse"}
    async with (
        app_on(committed_url, monkeypatch, **backend) as (first, engine),
        app_on(committed_url, monkeypatch) as (second, _),
    ):
        first.state.clickhouse = clickhouse
        second.state.clickhouse = ChdbClient(chdb_path, clickhouse.database)
        actor = await new_actor(engine)
        sent: set[str] = set()

        async def post(http: httpx.AsyncClient, batch: list[dict[str, str]], day: int) -> int:
            # Each copy computes another time, as retries do.
            copies = [e | {"timestamp": f"2026-04-0{day}T00:00:00Z"} for e in batch]
            body = {"api_key": actor.team.api_token, "batch": copies}
            return (await http.post("/batch/", json=body)).status_code

        async with asgi_client(first) as one, asgi_client(second) as two:
            for round_ in range(6):
                batch = [event("e", f"u{i}", "2026-04-01T00:00:00Z") for i in range(20)]
                sent.update(e["uuid"] for e in batch)
                copies = (post(http, batch, day) for day in range(1, 5) for http in (one, two))
                assert await asyncio.gather(*copies) == [200] * 8, round_
        await second.state.clickhouse.close()
    rows = await stored_events(clickhouse, actor.team.id)
    assert len(rows) == len(sent) == 120
    assert {str(r["uuid"]) for r in rows} == sent


async def test_captured_events_reach_a_dashboard_tile_computed_in_clickhouse(
    clickhouse_app: ClickHouseApp, actor: Actor, db: AsyncSession
) -> None:
    """End to end: capture → ClickHouse → a trends tile on a dashboard (PostgreSQL holds no event)."""
    client = clickhouse_app.client
    await ingest(
        client,
        actor,
        [
            event("$pageview", "alice", "2026-03-01T10:00:00Z"),
            event("$pageview", "bob", "2026-03-01T11:00:00Z"),
            event("$pageview", "alice", "2026-03-02T09:00:00Z"),
            event("signup", "bob", "2026-03-02T10:00:00Z"),
        ],
    )
    assert await pg_events(db, actor.team.id) == 0
    dashboard = await client.post(actor.url("dashboards/"), json={"name": "Traffic"}, headers=actor.headers)
    assert dashboard.status_code == 201, dashboard.text
    query = {
        "kind": "InsightVizNode",
        "source": {
            "kind": "TrendsQuery",
            "series": [{"kind": "EventsNode", "event": "$pageview"}],
            "interval": "day",
            "dateRange": {"date_from": "2026-03-01", "date_to": "2026-03-03"},
        },
    }
    insight = await client.post(
        actor.url("insights/"),
        json={"name": "Pageviews", "query": query, "dashboards": [dashboard.json()["id"]]},
        headers=actor.headers,
    )
    assert insight.status_code == 201, insight.text
    shown = await client.get(
        actor.url(f"dashboards/{dashboard.json()['id']}/"),
        params={"refresh": "force_blocking"},
        headers=actor.headers,
    )
    assert shown.status_code == 200, shown.text
    [tile] = shown.json()["tiles"]
    [series] = tile["insight"]["result"]
    assert series["days"] == ["2026-03-01", "2026-03-02", "2026-03-03"]
    assert series["data"] == [2, 1, 0]
    assert series["count"] == 3
