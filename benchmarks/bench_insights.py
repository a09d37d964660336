"""Insight kinds beyond trends on millions of events: `compute()` next to hand-written SQL computing the same
numbers, in one run.

Funnels: `$pageview` → `signup` → `purchase`, ordered, a 14-day window, the last 30 days, on the synthetic
events of `bench_trends.py` (90 days, 50,000 heavy-tailed persons, ~20 event names), loaded with COPY into a
fresh database (a new one on the DATABASE_URL server when set, dropped at the end; otherwise an embedded
PostgreSQL in a temporary directory). For each size the engine's result is checked against the hand-written
query's (counts, mean and median conversion times per step), then each is timed (median of --runs after a
warm-up). Targets: at most 1.5x the hand-written SQL, and at most 300 ms on 1M events.

    python benchmarks/bench_insights.py [--sizes 1000000,10000000] [--runs 5]
"""

import argparse
import asyncio
import math
import os
import platform
import shutil
import sys
import tempfile
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from app.db import async_url
from app.migrations import upgrade_async
from app.query.backend import PostgresBackend
from app.query.base import QueryContext
from app.query.engine import compute
from benchmarks.bench_trends import _admin, create_team, load, plain_dsn, server_version, timed

STEPS = ("$pageview", "signup", "purchase")

FUNNEL: dict[str, Any] = {
    "kind": "InsightVizNode",
    "source": {
        "kind": "FunnelsQuery",
        "series": [{"kind": "EventsNode", "event": event} for event in STEPS],
        "dateRange": {"date_from": "-30d"},
        "funnelsFilter": {"funnelWindowInterval": 14, "funnelWindowIntervalUnit": "day"},
    },
}

# The same funnel by hand: each actor's latest start reaching each step (a running max over earlier events),
# the credited path of their furthest step, then counts and conversion times.
FUNNEL_SQL = """
WITH e AS (
    SELECT distinct_id AS actor, timestamp AS ts, uuid,
           event = '$pageview' AS s0, event = 'signup' AS s1, event = 'purchase' AS s2,
           CASE event WHEN '$pageview' THEN 0 WHEN 'signup' THEN 1 ELSE 2 END AS ord
    FROM events
    WHERE team_id = $1 AND event IN ('$pageview', 'signup', 'purchase')
      AND timestamp >= $2 AND timestamp <= $3
), l1 AS (
    SELECT *, CASE WHEN s1 AND ts <= max(CASE WHEN s0 THEN ts END) OVER w + interval '14 days'
                   THEN max(CASE WHEN s0 THEN ts END) OVER w END AS r1
    FROM e
    WINDOW w AS (PARTITION BY actor ORDER BY ts, ord, uuid ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
), l2 AS (
    SELECT *, CASE WHEN s2 AND ts <= max(r1) OVER w + interval '14 days' THEN max(r1) OVER w END AS r2
    FROM l1
    WINDOW w AS (PARTITION BY actor ORDER BY ts, ord, uuid ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
), paths AS (
    SELECT *, coalesce(min(r2) OVER (PARTITION BY actor), min(r1) OVER (PARTITION BY actor)) AS sstar FROM l2
), actors AS (
    SELECT CASE WHEN bool_or(r2 IS NOT NULL) THEN 2 WHEN bool_or(r1 IS NOT NULL) THEN 1
                WHEN bool_or(s0) THEN 0 END AS level,
           extract(epoch FROM min(ts) FILTER (WHERE r1 = sstar) - max(sstar)) AS d1,
           extract(epoch FROM min(ts) FILTER (WHERE r2 = sstar) - min(ts) FILTER (WHERE r1 = sstar)) AS d2
    FROM paths GROUP BY actor
)
SELECT count(*) FILTER (WHERE level >= 0) AS c0,
       count(*) FILTER (WHERE level >= 1) AS c1,
       count(*) FILTER (WHERE level >= 2) AS c2,
       avg(d1) FILTER (WHERE level >= 1 AND d1 > 0) AS avg1,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY d1) FILTER (WHERE level >= 1 AND d1 > 0) AS med1,
       avg(d2) FILTER (WHERE level >= 2 AND d2 > 0) AS avg2,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY d2) FILTER (WHERE level >= 2 AND d2 > 0) AS med2
FROM actors WHERE level IS NOT NULL
"""


def _same(engine_steps: list[dict[str, Any]], row: asyncpg.Record) -> bool:
    expected = [
        (row["c0"], None, None),
        (row["c1"], row["avg1"], row["med1"]),
        (row["c2"], row["avg2"], row["med2"]),
    ]
    got = [(s["count"], s["average_conversion_time"], s["median_conversion_time"]) for s in engine_steps]

    def close(a: Any, b: Any) -> bool:
        if a is None or b is None:
            return a is b
        return math.isclose(float(a), float(b), rel_tol=1e-9)

    return all(
        g[0] == e[0] and close(g[1], e[1]) and close(g[2], e[2]) for g, e in zip(got, expected, strict=True)
    )


async def measure(url: str, dsn: str, team_id: int, now: datetime, runs: int) -> tuple[float, float, str]:
    engine = create_async_engine(async_url(url))
    ctx = QueryContext(team_id=team_id, timezone="UTC", now=now)
    start = (now - timedelta(days=30)).replace(hour=0, minute=0, second=0, microsecond=0)
    end = now.replace(hour=23, minute=59, second=59, microsecond=999999)
    raw = await asyncpg.connect(dsn)
    try:
        async with engine.connect() as conn:
            backend = PostgresBackend(conn)
            computed = await compute(FUNNEL, ctx, backend)
            row = (await raw.fetch(FUNNEL_SQL, team_id, start, end))[0]
            if not _same(computed.results, row):
                raise SystemExit(
                    f"the engine and the hand-written SQL disagree:\n{computed.results}\n{dict(row)}"
                )
            summary = " → ".join(f"{s['count']:,}" for s in computed.results)

            async def run_engine() -> None:
                await compute(FUNNEL, ctx, backend)

            async def run_raw() -> None:
                await raw.fetch(FUNNEL_SQL, team_id, start, end)

            engine_ms = await timed(run_engine, runs)
            raw_ms = await timed(run_raw, runs)
    finally:
        await raw.close()
        await engine.dispose()
    return engine_ms, raw_ms, summary


async def run_sizes(url: str, sizes: list[int], runs: int) -> None:
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
        engine_ms, raw_ms, summary = await measure(url, dsn, team_id, now, runs)
        print(f"{'query':<56} {'compute()':>12} {'raw SQL':>10} {'ratio':>7}")
        name = f"funnel 3 steps, 30 days ({summary})"
        print(f"{name:<56} {engine_ms:9.0f} ms {raw_ms:7.0f} ms {engine_ms / raw_ms:6.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="1000000,10000000", help="event counts, comma-separated")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))

    configured = os.environ.get("DATABASE_URL")
    if configured:
        name = f"tilecast_bench_{uuid.uuid4().hex[:8]}"
        asyncio.run(_admin(configured, f'CREATE DATABASE "{name}"'))
        url = make_url(configured).set(database=name).render_as_string(hide_password=False)
        try:
            asyncio.run(run_sizes(url, sizes, args.runs))
        finally:
            asyncio.run(_admin(configured, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        return

    from app.embedded import EmbeddedPostgres

    work = Path(tempfile.mkdtemp(prefix="tilecast-bench-insights-"))
    server = EmbeddedPostgres(work)
    try:
        asyncio.run(run_sizes(server.start(), sizes, args.runs))
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
