"""The view a retrieve records (`last_accessed_at`, the caller's `last_viewed_at`): written after the response
in a transaction of its own, at most once a minute per dashboard and user in each process, and never lost at
shutdown."""

import asyncio
import json
from datetime import datetime
from pathlib import Path

import asyncpg
import httpx
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.dashboards.views import ViewRecorder
from app.models import Dashboard, DashboardView
from tests.conftest import FreshDatabases
from tests.factories import Actor
from tests.live import env_without_database, run_cli, serve


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value)


async def stored(
    db: AsyncSession, dashboard_id: int, user_id: int
) -> tuple[datetime | None, datetime | None]:
    accessed = (
        await db.execute(select(Dashboard.last_accessed_at).where(Dashboard.id == dashboard_id))
    ).scalar_one()
    viewed = (
        await db.execute(
            select(DashboardView.viewed_at).where(
                DashboardView.dashboard_id == dashboard_id, DashboardView.user_id == user_id
            )
        )
    ).scalar_one_or_none()
    return accessed, viewed


async def test_a_retrieve_writes_its_view_once_a_minute_and_reports_the_latest(
    client: httpx.AsyncClient, actor: Actor, db: AsyncSession, app: FastAPI
) -> None:
    url = actor.url("dashboards/")
    made = (await client.post(url, json={"name": "Viewed"}, headers=actor.headers)).json()
    path = actor.url(f"dashboards/{made['id']}/")
    views: ViewRecorder = app.state.views

    first = (await client.get(path, headers=actor.headers)).json()
    # Written by the time the response is complete, with the moment the retrieve reported.
    assert await stored(db, made["id"], actor.user.id) == (
        parse_time(first["last_accessed_at"]),
        parse_time(first["last_viewed_at"]),
    )

    second = (await client.get(path, headers=actor.headers)).json()
    assert parse_time(second["last_accessed_at"]) > parse_time(first["last_accessed_at"])
    # Within the minute: not written yet, only noted ...
    assert await stored(db, made["id"], actor.user.id) == (
        parse_time(first["last_accessed_at"]),
        parse_time(first["last_viewed_at"]),
    )
    assert views.pending == 1
    # ... and this process reports it over the stored values.
    listed = (await client.get(url, headers=actor.headers)).json()["results"][0]
    assert parse_time(listed["last_accessed_at"]) == parse_time(second["last_accessed_at"])
    assert parse_time(listed["last_viewed_at"]) == parse_time(second["last_viewed_at"])

    await views.flush(everything=True)
    assert views.pending == 0
    assert await stored(db, made["id"], actor.user.id) == (
        parse_time(second["last_accessed_at"]),
        parse_time(second["last_viewed_at"]),
    )


async def test_a_failed_retrieve_records_nothing(
    client: httpx.AsyncClient, actor: Actor, other_actor: Actor, db: AsyncSession, app: FastAPI
) -> None:
    made = (await client.post(actor.url("dashboards/"), json={"name": "x"}, headers=actor.headers)).json()
    got = await client.get(other_actor.url(f"dashboards/{made['id']}/"), headers=other_actor.headers)
    assert got.status_code == 404
    assert app.state.views.pending == 0
    assert await stored(db, made["id"], other_actor.user.id) == (None, None)


def test_views_noted_within_the_minute_are_written_at_shutdown(
    fresh_databases: FreshDatabases, tmp_path: Path
) -> None:
    database_url = fresh_databases.create(migrated=False)
    env = env_without_database(DATABASE_URL=database_url)
    created = json.loads(run_cli(["create-key", "--email", "views@example.com", "--json"], env).stdout)
    headers = {"Authorization": f"Bearer {created['key']}"}
    base_path = f"/api/environments/{created['team_id']}/dashboards/"
    with serve(env, tmp_path) as (base, _), httpx.Client(base_url=base, headers=headers) as http:
        made = http.post(base_path, json={"name": "Live"})
        assert made.status_code == 201, made.text
        dashboard_id = made.json()["id"]
        http.get(f"{base_path}{dashboard_id}/").raise_for_status()
        # The second view of the minute stays in the process until its shutdown (SIGTERM, when `serve` ends).
        last = http.get(f"{base_path}{dashboard_id}/").json()

    async def read() -> tuple[datetime, datetime]:
        conn = await asyncpg.connect(database_url)
        try:
            accessed = await conn.fetchval(
                "SELECT last_accessed_at FROM dashboard WHERE id = $1", dashboard_id
            )
            viewed = await conn.fetchval(
                "SELECT viewed_at FROM dashboard_view WHERE dashboard_id = $1 AND user_id = $2",
                dashboard_id,
                created["user_id"],
            )
        finally:
            await conn.close()
        return accessed, viewed

    assert asyncio.run(read()) == (parse_time(last["last_accessed_at"]), parse_time(last["last_viewed_at"]))
