"""Retention, lifecycle and stickiness latency on demo-like events: `compute()` next to hand-written SQL that
computes the same numbers, in one run.

Loads synthetic events exactly as `bench_trends.py` does (COPY into a fresh database: an embedded PostgreSQL
in a temporary directory, or a new database on the DATABASE_URL server, dropped at the end), then times
(median of --runs after --warmup runs) each query through the engine and its hand-written SQL:

- weekly recurring retention of `$pageview`, 8 weeks x 8 intervals;
- weekly first-time retention, `signup` then `$pageview`, 8 weeks x 8 intervals;
- daily lifecycle of `$pageview` over 30 days;
- daily stickiness of `$pageview` over 30 days.

    python benchmarks/bench_kinds.py [--sizes 1000000] [--runs 3] [--warmup 2]
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
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_trends import _admin, create_team, load, plain_dsn, server_version
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from app.db import async_url
from app.migrations import upgrade_async
from app.query.backend import PostgresBackend
from app.query.base import QueryContext
from app.query.engine import compute

PAGEVIEWS = [{"kind": "EventsNode", "event": "$pageview", "name": "$pageview"}]
WEEK = "date_trunc('week', timestamp AT TIME ZONE 'UTC' + interval '1 day') - interval '1 day'"
DAY = "date_trunc('day', timestamp AT TIME ZONE 'UTC')"


def retention(retention_type: str, target: str) -> dict[str, Any]:
    return {
        "kind": "RetentionQuery",
        "dateRange": {"date_from": "-49d"},
        "retentionFilter": {
            "retentionType": retention_type,
            "period": "Week",
            "totalIntervals": 8,
            "targetEntity": {"id": target, "type": "events"},
            "returningEntity": {"id": "$pageview", "type": "events"},
        },
    }


# Each case: name, query, hand-written SQL ($1 team, $2 start, $3 end, both timestamptz), and how the SQL's
# rows compare with the engine's results (a canonical form of both).
RECURRING_SQL = f"""
WITH s AS (SELECT DISTINCT distinct_id AS a, {WEEK} AS w FROM events
           WHERE team_id = $1 AND event = '$pageview' AND timestamp >= $2 AND timestamp < $3)
SELECT s.w, (r.w::date - s.w::date) / 7 AS k, count(*) FROM s JOIN s r ON r.a = s.a AND r.w >= s.w
WHERE (r.w::date - s.w::date) / 7 < 8 GROUP BY 1, 2"""
FIRST_TIME_SQL = f"""
WITH f AS (SELECT distinct_id AS a, min(timestamp) AS t FROM events WHERE team_id = $1 AND event = 'signup'
           GROUP BY 1),
s AS (SELECT a, date_trunc('week', t AT TIME ZONE 'UTC' + interval '1 day') - interval '1 day' AS w FROM f
      WHERE t >= $2 AND t < $3),
r AS (SELECT DISTINCT distinct_id AS a, {WEEK} AS w FROM events
      WHERE team_id = $1 AND event = '$pageview' AND timestamp >= $2 AND timestamp < $3)
SELECT s.w, 0 AS k, count(*) FROM s GROUP BY 1
UNION ALL
SELECT s.w, (r.w::date - s.w::date) / 7, count(*) FROM s JOIN r ON r.a = s.a AND r.w > s.w
WHERE (r.w::date - s.w::date) / 7 < 8 GROUP BY 1, 2"""
LIFECYCLE_SQL = f"""
WITH act AS (SELECT DISTINCT distinct_id AS a, {DAY} AS d FROM events
             WHERE team_id = $1 AND event = '$pageview'
               AND timestamp >= $2::timestamptz - interval '1 day'
               AND timestamp < $3::timestamptz + interval '1 day'),
c AS (SELECT distinct_id AS a, date_trunc('day', min(timestamp) AT TIME ZONE 'UTC') AS c FROM events
      WHERE team_id = $1 AND distinct_id IN (SELECT a FROM act) GROUP BY 1),
m AS (SELECT act.d, c.c, lag(act.d) OVER w AS p, lead(act.d) OVER w AS n FROM act JOIN c USING (a)
      WINDOW w AS (PARTITION BY act.a ORDER BY act.d)),
x AS (SELECT d, CASE WHEN p IS NULL THEN CASE WHEN c = d THEN 'new' ELSE 'resurrecting' END
                     WHEN p = d - interval '1 day' THEN 'returning' ELSE 'resurrecting' END AS s FROM m
      UNION ALL
      SELECT d + interval '1 day', 'dormant' FROM m WHERE n IS NULL OR n <> d + interval '1 day')
SELECT d, s, count(*) FROM x
WHERE d >= $2::timestamptz AT TIME ZONE 'UTC' AND d < $3::timestamptz AT TIME ZONE 'UTC' GROUP BY 1, 2"""
STICKINESS_SQL = f"""
SELECT k, count(*) FROM (SELECT count(DISTINCT {DAY}) AS k FROM events
                         WHERE team_id = $1 AND event = '$pageview' AND timestamp >= $2 AND timestamp < $3
                         GROUP BY distinct_id) x GROUP BY 1"""


def _retention_cells(results: list[dict[str, Any]]) -> dict[tuple[str, int], int]:
    cells = {}
    for row in results:
        for k, value in enumerate(row["values"]):
            if value["count"]:
                cells[(row["date"][:10], k)] = value["count"]
    return cells


def _lifecycle_cells(results: list[dict[str, Any]]) -> dict[tuple[str, str], int]:
    return {
        (day, series["status"]): abs(int(value))
        for series in results
        for day, value in zip(series["days"], series["data"], strict=True)
        if value
    }


CASES: list[tuple[str, dict[str, Any], str, str, Callable[[Any], dict[Any, int]]]] = [
    (
        "weekly recurring retention, 8x8",
        retention("retention_recurring", "$pageview"),
        RECURRING_SQL,
        "week",
        _retention_cells,
    ),
    (
        "weekly first-time retention, 8x8",
        retention("retention_first_time", "signup"),
        FIRST_TIME_SQL,
        "week",
        _retention_cells,
    ),
    (
        "daily lifecycle, 30 days",
        {
            "kind": "LifecycleQuery",
            "series": PAGEVIEWS,
            "interval": "day",
            "dateRange": {"date_from": "-29d"},
        },
        LIFECYCLE_SQL,
        "day",
        _lifecycle_cells,
    ),
    (
        "daily stickiness, 30 days",
        {
            "kind": "StickinessQuery",
            "series": PAGEVIEWS,
            "interval": "day",
            "dateRange": {"date_from": "-29d"},
        },
        STICKINESS_SQL,
        "day",
        lambda results: {k + 1: n for k, n in enumerate(results[0]["data"]) if n},
    ),
]


def _raw_cells(name: str, rows: list[asyncpg.Record]) -> dict[Any, int]:
    if name.startswith("weekly"):
        return {(f"{row[0]:%Y-%m-%d}", row[1]): row[2] for row in rows}
    if name.startswith("daily lifecycle"):
        return {(f"{row[0]:%Y-%m-%d}", row[1]): row[2] for row in rows}
    return {row[0]: row[1] for row in rows}


async def timed(fn: Callable[[], Awaitable[Any]], runs: int, warmup: int) -> float:
    for _ in range(warmup):
        await fn()
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        await fn()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1000


def _bounds(now: datetime, unit: str) -> tuple[datetime, datetime]:
    """The engine's range for each case: 7 weeks back to this week's end (Sunday weeks), or 29 days back to
    today's end."""
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    if unit == "week":
        start = today - timedelta(days=49)
        start -= timedelta(days=(start.weekday() + 1) % 7)
        end = today - timedelta(days=(today.weekday() + 1) % 7) + timedelta(weeks=1)
        return start, end
    return today - timedelta(days=29), today + timedelta(days=1)


async def measure(
    url: str, dsn: str, team_id: int, runs: int, warmup: int
) -> list[tuple[str, float, float, bool]]:
    engine = create_async_engine(async_url(url))
    rows = []
    now = datetime.now(UTC)
    ctx = QueryContext(team_id=team_id, timezone="UTC", now=now)
    raw = await asyncpg.connect(dsn)
    try:
        async with engine.connect() as conn:
            backend = PostgresBackend(conn)
            for name, query, sql, unit, canonical in CASES:
                start, end = _bounds(now, unit)

                async def run_engine(query: dict[str, Any] = query) -> Any:
                    return await compute(query, ctx, backend)

                async def run_raw(sql: str = sql, start: datetime = start, end: datetime = end) -> Any:
                    return await raw.fetch(sql, team_id, start, end)

                same = canonical((await run_engine()).results) == _raw_cells(name, await run_raw())
                engine_ms = await timed(run_engine, runs, warmup)
                raw_ms = await timed(run_raw, runs, warmup)
                rows.append((name, engine_ms, raw_ms, same))
    finally:
        await raw.close()
        await engine.dispose()
    return rows


async def run_sizes(url: str, sizes: list[int], runs: int, warmup: int) -> None:
    dsn = plain_dsn(url)
    await upgrade_async(url)
    team_id = await create_team(dsn)
    now = datetime.now(UTC)
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
        f"PostgreSQL {await server_version(dsn)}; Python {platform.python_version()}"
    )
    for size in sizes:
        seconds = await load(dsn, team_id, size, now, seed=size)
        print(f"\nloaded {size:,} events in {seconds:.0f} s (COPY + VACUUM ANALYZE)")
        print(f"{'query':<36} {'compute()':>10} {'raw SQL':>10} {'ratio':>6}  same numbers")
        for name, engine_ms, raw_ms, same in await measure(url, dsn, team_id, runs, warmup):
            print(f"{name:<36} {engine_ms:7.0f} ms {raw_ms:7.0f} ms {engine_ms / raw_ms:6.2f}  {same}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="1000000", help="cumulative event counts, comma-separated")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=2)
    args = parser.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))

    configured = os.environ.get("DATABASE_URL")
    if configured:
        name = f"tilecast_bench_{uuid.uuid4().hex[:8]}"
        asyncio.run(_admin(configured, f'CREATE DATABASE "{name}"'))
        url = make_url(configured).set(database=name).render_as_string(hide_password=False)
        try:
            asyncio.run(run_sizes(url, sizes, args.runs, args.warmup))
        finally:
            asyncio.run(_admin(configured, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        return

    from app.embedded import EmbeddedPostgres

    work = Path(tempfile.mkdtemp(prefix="tilecast-bench-kinds-"))
    server = EmbeddedPostgres(work)
    try:
        asyncio.run(run_sizes(server.start(), sizes, args.runs, args.warmup))
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
