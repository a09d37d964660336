"""`create_unlisted_dashboard` makes exactly one dashboard per tag when two server processes take twenty
concurrent calls for it: the team's row lock orders them, and each call after the first sees its dashboard."""

import asyncio
import json
from pathlib import Path

import asyncpg
import httpx

from app.db import async_url
from tests.conftest import FreshDatabases
from tests.live import env_without_database, run_cli, serve

CALLS = 20


async def _race(bases: list[str], team_id: int, key: str) -> list[httpx.Response]:
    headers = {"Authorization": f"Bearer {key}"}
    path = f"/api/environments/{team_id}/dashboards/create_unlisted_dashboard/"
    async with httpx.AsyncClient(timeout=60) as http:
        calls = [
            http.post(bases[i % len(bases)] + path, json={"tag": "llm-analytics"}, headers=headers)
            for i in range(CALLS)
        ]
        return list(await asyncio.gather(*calls))


async def _unlisted_rows(database_url: str, team_id: int) -> int:
    conn = await asyncpg.connect(async_url(database_url).set(drivername="postgresql").render_as_string(False))
    try:
        return int(
            await conn.fetchval(
                "SELECT count(*) FROM dashboard WHERE team_id = $1 AND creation_mode = 'unlisted'", team_id
            )
        )
    finally:
        await conn.close()


def test_twenty_concurrent_calls_on_two_processes_make_one_dashboard(
    fresh_databases: FreshDatabases, tmp_path: Path
) -> None:
    database_url = fresh_databases.create(migrated=False)
    env = env_without_database(DATABASE_URL=database_url, TILECAST_LOG_LEVEL="WARNING")
    created = json.loads(run_cli(["create-key", "--email", "unlisted@example.com", "--json"], env).stdout)
    team_id = created["team_id"]
    with serve(env, tmp_path) as (first, _), serve(env, tmp_path) as (second, _):
        responses = asyncio.run(_race([first, second], team_id, created["key"]))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201] + [409] * (CALLS - 1), [r.text for r in responses]
    conflict = next(r for r in responses if r.status_code == 409)
    assert conflict.json() == {"error": "Unlisted dashboard with tag 'llm-analytics' already exists"}
    made = next(r for r in responses if r.status_code == 201).json()
    assert made["creation_mode"] == "unlisted" and len(made["tiles"]) == 9
    assert asyncio.run(_unlisted_rows(database_url, team_id)) == 1
