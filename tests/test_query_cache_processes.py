"""Identical computations in two server processes run the query once: the advisory lock on the cache key
makes the second wait, and it then takes the first one's result."""

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from app.db import async_url
from app.query.cache import lock_id
from app.query.render import TeamInfo, cache_key_for
from tests.conftest import FreshDatabases
from tests.live import env_without_database, run_cli, serve

QUERY = {
    "kind": "TrendsQuery",
    "series": [{"kind": "EventsNode", "event": "$pageview", "math": "total"}],
    "interval": "day",
    "dateRange": {"date_from": "-7d"},
}


async def _waiting_advisory_locks(conn: asyncpg.Connection) -> int:
    return int(
        await conn.fetchval("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
    )


async def _race(
    database_url: str, bases: list[str], key: str, created: dict[str, Any]
) -> tuple[list[httpx.Response], int]:
    now = datetime.now(UTC)
    batch = [
        {"event": "$pageview", "distinct_id": f"u{i}", "timestamp": (now - timedelta(hours=i)).isoformat()}
        for i in range(5)
    ]
    async with httpx.AsyncClient(timeout=60) as http:
        stored = await http.post(
            f"{bases[0]}/batch/", json={"api_key": created["project_api_key"], "batch": batch}
        )
        assert stored.status_code == 200, stored.text

        conn = await asyncpg.connect(
            async_url(database_url).set(drivername="postgresql").render_as_string(False)
        )
        try:
            # Hold the computation's lock so that both requests are surely inside their computation at once.
            await conn.execute("SELECT pg_advisory_lock($1)", lock_id(key))
            url = "/api/environments/{}/query/".format(created["team_id"])
            body = {"query": QUERY, "refresh": "force_blocking"}
            headers = {"Authorization": "Bearer " + created["key"]}
            requests = [
                asyncio.ensure_future(http.post(base + url, json=body, headers=headers)) for base in bases
            ]
            for _ in range(200):
                if await _waiting_advisory_locks(conn) >= 2:
                    break
                await asyncio.sleep(0.05)
            finished = [r.result().text for r in requests if r.done()]
            assert await _waiting_advisory_locks(conn) == 2, (
                f"both should wait on the lock; finished: {finished}"
            )
            await conn.execute("SELECT pg_advisory_unlock($1)", lock_id(key))
            responses = await asyncio.gather(*requests)
            rows = await conn.fetchval("SELECT count(*) FROM query_cache WHERE cache_key = $1", key)
        finally:
            await conn.close()
    return list(responses), int(rows)


def test_two_processes_compute_an_identical_query_once(
    fresh_databases: FreshDatabases, tmp_path: Path
) -> None:
    database_url = fresh_databases.create(migrated=False)
    env = env_without_database(DATABASE_URL=database_url, TILECAST_LOG_LEVEL="WARNING")
    created = json.loads(run_cli(["create-key", "--email", "race@example.com", "--json"], env).stdout)
    key = cache_key_for(TeamInfo(id=created["team_id"], timezone="UTC"), QUERY)
    with serve(env, tmp_path) as (first, _), serve(env, tmp_path) as (second, _):
        responses, rows = asyncio.run(_race(database_url, [first, second], key, created))
    bodies = [r.json() for r in responses]
    assert [r.status_code for r in responses] == [200, 200], bodies
    # One process computed; the other waited and took that result instead of computing again.
    assert sorted(b["is_cached"] for b in bodies) == [False, True]
    assert bodies[0]["last_refresh"] == bodies[1]["last_refresh"]
    assert bodies[0]["results"] == bodies[1]["results"] and bodies[0]["results"][0]["count"] == 5.0
    assert rows == 1
