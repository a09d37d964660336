"""SQL insights latency: 10 representative HogQL queries through `POST /query/` next to the same hand-written
SQL, on synthetic events (loaded as `bench_trends.py` loads them: COPY into a fresh database).

The app runs in process (httpx.ASGITransport) with SQL insights set up as `tilecast migrate` sets them up,
so each HogQL query is parsed, compiled, run as the team's own role in the sandbox and shaped into PostHog's
response (`refresh: force_blocking`: computed every time, the result cache written). The hand-written SQL runs
on a plain asyncpg connection as the database owner, on the base table. Median of --runs after --warmup.

    python benchmarks/bench_hogql.py [--size 1000000] [--runs 5] [--warmup 2]
"""

import argparse
import asyncio
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_trends import _admin, load, plain_dsn, server_version
from sqlalchemy.engine import make_url

from app.accounts import create_key
from app.config import get_settings
from app.db import create_engine, create_sessionmaker
from app.main import create_app
from app.migrations import setup_sql_sandbox, upgrade_async
from app.sql_sandbox.roles import role_name

# name, HogQL, the hand-written SQL ($1: the team).
CASES: list[tuple[str, str, str]] = [
    (
        "pageviews, 30 days",
        "SELECT count() FROM events WHERE event = '$pageview' AND timestamp >= now() - INTERVAL 30 DAY",
        "SELECT count(*) FROM events WHERE team_id = $1 AND event = '$pageview' "
        "AND timestamp >= now() - interval '30 days'",
    ),
    (
        "events by name, 7 days",
        "SELECT event, count() AS c FROM events WHERE timestamp >= now() - INTERVAL 7 DAY GROUP BY event "
        "ORDER BY c DESC",
        "SELECT event, count(*) AS c FROM events WHERE team_id = $1 AND timestamp >= now() - "
        "interval '7 days' "
        "GROUP BY event ORDER BY c DESC LIMIT 101",
    ),
    (
        "daily pageviews, 30 days",
        "SELECT toStartOfDay(timestamp) AS day, count() FROM events WHERE event = '$pageview' "
        "AND timestamp >= now() - INTERVAL 30 DAY GROUP BY day ORDER BY day",
        "SELECT date_trunc('day', timestamp, 'UTC') AS day, count(*) FROM events WHERE team_id = $1 "
        "AND event = '$pageview' AND timestamp >= now() - interval '30 days' GROUP BY 1 ORDER BY 1 LIMIT 101",
    ),
    (
        "top browsers, 7 days",
        "SELECT properties.$browser AS browser, count() AS c FROM events WHERE event = '$pageview' "
        "AND timestamp >= now() - INTERVAL 7 DAY GROUP BY browser ORDER BY c DESC, browser LIMIT 10",
        "SELECT properties ->> '$browser' AS browser, count(*) AS c FROM events WHERE team_id = $1 "
        "AND event = '$pageview' AND timestamp >= now() - interval '7 days' GROUP BY 1 ORDER BY c "
        "DESC, 1 LIMIT 10",
    ),
    (
        "daily unique users, 14 days",
        "SELECT toDate(timestamp) AS day, uniq(distinct_id) FROM events WHERE event = '$pageview' "
        "AND timestamp >= now() - INTERVAL 14 DAY GROUP BY day ORDER BY day",
        "SELECT (timestamp AT TIME ZONE 'UTC')::date AS day, count(DISTINCT distinct_id) FROM events "
        "WHERE team_id = $1 AND event = '$pageview' AND timestamp >= now() - interval '14 days' "
        "GROUP BY 1 ORDER BY 1 LIMIT 101",
    ),
    (
        "daily revenue, 30 days",
        "SELECT toDate(timestamp) AS day, sum(toFloat(properties.revenue)) FROM events WHERE event "
        "= 'purchase' "
        "AND timestamp >= now() - INTERVAL 30 DAY GROUP BY day ORDER BY day",
        "SELECT (timestamp AT TIME ZONE 'UTC')::date AS day, sum((properties ->> "
        "'revenue')::float8) FROM events "
        "WHERE team_id = $1 AND event = 'purchase' AND timestamp >= now() - interval '30 days' "
        "GROUP BY 1 ORDER BY 1 LIMIT 101",
    ),
    (
        "top pages, 7 days",
        "SELECT properties.$current_url AS url, count() AS c FROM events WHERE event = '$pageview' "
        "AND timestamp >= now() - INTERVAL 7 DAY GROUP BY url ORDER BY c DESC, url LIMIT 10",
        "SELECT properties ->> '$current_url' AS url, count(*) AS c FROM events WHERE team_id = $1 "
        "AND event = '$pageview' AND timestamp >= now() - interval '7 days' GROUP BY 1 ORDER BY c "
        "DESC, 1 LIMIT 10",
    ),
    (
        "hourly events, 2 days",
        "SELECT toStartOfHour(timestamp) AS hour, count() FROM events WHERE timestamp >= now() - "
        "INTERVAL 2 DAY "
        "GROUP BY hour ORDER BY hour",
        "SELECT date_trunc('hour', timestamp, 'UTC') AS hour, count(*) FROM events WHERE team_id = $1 "
        "AND timestamp >= now() - interval '2 days' GROUP BY 1 ORDER BY 1 LIMIT 101",
    ),
    (
        "daily sessions, 7 days",
        "SELECT toDate(timestamp) AS day, uniq($session_id) FROM events WHERE timestamp >= now() - "
        "INTERVAL 7 DAY "
        "GROUP BY day ORDER BY day",
        "SELECT (timestamp AT TIME ZONE 'UTC')::date AS day, count(DISTINCT properties ->> '$session_id') "
        "FROM events WHERE team_id = $1 AND timestamp >= now() - interval '7 days' GROUP BY 1 ORDER "
        "BY 1 LIMIT 101",
    ),
    (
        "users with 5+ pageviews, 30 days",
        "SELECT count() FROM (SELECT distinct_id FROM events WHERE event = '$pageview' "
        "AND timestamp >= now() - INTERVAL 30 DAY GROUP BY distinct_id HAVING count() >= 5)",
        "SELECT count(*) FROM (SELECT distinct_id FROM events WHERE team_id = $1 AND event = '$pageview' "
        "AND timestamp >= now() - interval '30 days' GROUP BY distinct_id HAVING count(*) >= 5) x",
    ),
]


def _canonical(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    if isinstance(value, str) and len(value) >= 19 and value[4] == "-" and value[10] == "T":
        return value[:19]
    if isinstance(value, Decimal | float):
        return round(float(value), 6)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


async def timed(fn: Callable[[], Awaitable[Any]], runs: int, warmup: int) -> float:
    for _ in range(warmup):
        await fn()
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        await fn()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1000


async def run(url: str, size: int, runs: int, warmup: int) -> None:
    dsn = plain_dsn(url)
    await upgrade_async(url)
    assert await asyncio.to_thread(setup_sql_sandbox, url) is None, "SQL insights could not be set up"
    app = create_app()
    engine = create_engine(url, get_settings())
    app.state.engine = engine
    app.state.sessionmaker = create_sessionmaker(engine)
    async with app.state.sessionmaker() as session:
        created = await create_key(session, "bench@example.com", "bench", ["*"], "bench")
        await session.commit()
    team_id = created.team.id
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
        f"PostgreSQL {await server_version(dsn)}; Python {platform.python_version()}"
    )
    seconds = await load(dsn, team_id, size, datetime.now(UTC), seed=size)
    print(f"loaded {size:,} events in {seconds:.0f} s (COPY + VACUUM ANALYZE)\n")
    headers = {"Authorization": f"Bearer {created.key}"}
    raw = await asyncpg.connect(dsn)
    transport = httpx.ASGITransport(app=app)
    print(f"{'query':<34} {'/query/':>10} {'raw SQL':>10} {'ratio':>6}  same rows")
    ratios = []
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://bench", timeout=120) as client:
            for name, hogql, sql in CASES:
                body = {"query": {"kind": "HogQLQuery", "query": hogql}, "refresh": "force_blocking"}

                async def via_api(body: dict[str, Any] = body) -> Any:
                    response = await client.post(
                        f"/api/projects/{team_id}/query/", json=body, headers=headers
                    )
                    assert response.status_code == 200, response.text
                    return response.json()["results"]

                async def via_sql(sql: str = sql) -> Any:
                    return await raw.fetch(sql, team_id)

                api_rows = [[_canonical(v) for v in row] for row in await via_api()]
                sql_rows = [[_canonical(v) for v in row] for row in await via_sql()]
                api_ms = await timed(via_api, runs, warmup)
                sql_ms = await timed(via_sql, runs, warmup)
                ratios.append(api_ms / sql_ms)
                print(
                    f"{name:<34} {api_ms:7.1f} ms {sql_ms:7.1f} ms {api_ms / sql_ms:6.2f}  "
                    f"{api_rows == sql_rows}"
                )
    finally:
        await raw.close()
        await app.state.sandbox.close()
        await engine.dispose()
    print(f"\nmedian ratio {statistics.median(ratios):.2f}, worst {max(ratios):.2f}")


async def _drop_roles(url: str, database: str) -> None:
    """The SQL insights roles of the dropped database's teams (roles are the server's, not the database's)."""
    conn = await asyncpg.connect(plain_dsn(url))
    try:
        prefix = role_name(database, 0).removesuffix("0")
        for row in await conn.fetch("SELECT rolname FROM pg_roles WHERE starts_with(rolname, $1)", prefix):
            await conn.execute(f'DROP ROLE IF EXISTS "{row["rolname"]}"')
    finally:
        await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    args = parser.parse_args()
    configured = os.environ.get("DATABASE_URL")
    if configured:
        name = f"tilecast_bench_{uuid.uuid4().hex[:8]}"
        asyncio.run(_admin(configured, f'CREATE DATABASE "{name}"'))
        url = make_url(configured).set(database=name).render_as_string(hide_password=False)
        try:
            asyncio.run(run(url, args.size, args.runs, args.warmup))
        finally:
            asyncio.run(_admin(configured, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            asyncio.run(_drop_roles(configured, name))
        return

    from app.embedded import EmbeddedPostgres

    work = Path(tempfile.mkdtemp(prefix="tilecast-bench-hogql-"))
    server = EmbeddedPostgres(work)
    try:
        asyncio.run(run(server.start(), args.size, args.runs, args.warmup))
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
