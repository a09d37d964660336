"""Trends engine latency on millions of events: `compute()` next to hand-written SQL of the same aggregate.

Creates a fresh database (a new one on the DATABASE_URL server when set, dropped at the end; otherwise an
embedded PostgreSQL in a temporary directory), migrates it, bulk-loads synthetic events over 90 days with
asyncpg's COPY (`copy_records_to_table`), VACUUM ANALYZE, then for each size times (median of --runs after a
warm-up) a 30-day daily `total` and `dau` on `$pageview`, each with and without a `$browser` breakdown, plus
weekly and monthly active users. Each size is loaded into an emptied table.

    python benchmarks/bench_trends.py [--sizes 1000000,10000000] [--runs 7] [--keep]
"""

import argparse
import asyncio
import json
import os
import platform
import random
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
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

DAYS = 90
PERSONS = 50_000
CHUNK = 200_000
# ~20 event names, $pageview dominant (weights roughly Zipf-like after it).
EVENTS = [
    ("$pageview", 50),
    ("$autocapture", 12),
    ("$pageleave", 8),
    ("$identify", 4),
    ("$screen", 3),
    ("signup", 2),
    ("login", 3),
    ("purchase", 2),
    ("add_to_cart", 3),
    ("search", 3),
    ("view_item", 2),
    ("share", 1),
    ("comment", 1),
    ("like", 1),
    ("upload", 1),
    ("download", 1),
    ("invite", 1),
    ("logout", 1),
    ("error", 1),
    ("feature_flag_called", 2),
]
BROWSERS = [
    ("Chrome", 60),
    ("Safari", 20),
    ("Firefox", 8),
    ("Edge", 6),
    ("Opera", 2),
    ("Samsung Internet", 2),
]
PATHS = [f"/{section}/{i}" for section in ("blog", "docs", "product", "pricing", "app") for i in range(100)]


def _weighted(pairs: list[tuple[str, int]], count: int, rng: random.Random) -> list[str]:
    names = [name for name, _ in pairs]
    weights = [weight for _, weight in pairs]
    return rng.choices(names, weights, k=count)


def synthetic_events(team_id: int, count: int, end: datetime, seed: int) -> Iterator[list[tuple[Any, ...]]]:
    """Chunks of COPY records (team_id, uuid, event, distinct_id, timestamp, properties) in time order, as
    ingestion writes them: each chunk covers the next slice of the 90 days."""
    rng = random.Random(seed)
    start = end - timedelta(days=DAYS)
    span = (end - start).total_seconds()
    chunks = max(1, -(-count // CHUNK))
    # Heavy-tailed activity: a few persons produce many events.
    person_weights = [1 / (i + 1) ** 0.6 for i in range(PERSONS)]
    for chunk in range(chunks):
        n = min(CHUNK, count - chunk * CHUNK)
        names = _weighted(EVENTS, n, rng)
        browsers = _weighted(BROWSERS, n, rng)
        persons = rng.choices(range(PERSONS), person_weights, k=n)
        offsets = sorted(rng.random() for _ in range(n))
        records = []
        for i in range(n):
            person = persons[i]
            at = start + timedelta(seconds=span * (chunk + offsets[i]) / chunks)
            properties: dict[str, Any] = {
                "$browser": browsers[i] if rng.random() > 0.02 else None,
                "$current_url": "https://example.com" + rng.choice(PATHS),
                "$session_id": f"s{person}-{int(at.timestamp()) // 1800}",
            }
            if names[i] == "purchase":
                properties["revenue"] = round(rng.uniform(1, 200), 2)
            records.append((team_id, uuid.uuid4(), names[i], f"person-{person}", at, json.dumps(properties)))
        yield records


async def load(dsn: str, team_id: int, count: int, end: datetime, seed: int) -> float:
    """A fresh events table of `count` events."""
    started = time.perf_counter()
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("TRUNCATE events")
        for records in synthetic_events(team_id, count, end, seed):
            await conn.copy_records_to_table(
                "events",
                records=records,
                columns=["team_id", "uuid", "event", "distinct_id", "timestamp", "properties"],
            )
        await conn.execute("VACUUM (ANALYZE) events")
    finally:
        await conn.close()
    return time.perf_counter() - started


async def create_team(dsn: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        org = uuid.uuid4()
        await conn.execute("INSERT INTO organization (id, name) VALUES ($1, 'bench')", org)
        team_id: int = await conn.fetchval(
            "INSERT INTO team (uuid, organization_id, name, api_token)"
            " VALUES ($1, $2, 'bench', $3) RETURNING id",
            uuid.uuid4(),
            org,
            f"phc_bench_{uuid.uuid4().hex}",
        )
        return team_id
    finally:
        await conn.close()


def trends(math: str, breakdown: bool) -> dict[str, Any]:
    source: dict[str, Any] = {
        "kind": "TrendsQuery",
        "series": [{"kind": "EventsNode", "event": "$pageview", "math": math}],
        "interval": "day",
        "dateRange": {"date_from": "-30d"},
    }
    if breakdown:
        source["breakdownFilter"] = {"breakdown": "$browser", "breakdown_type": "event"}
    return {"kind": "InsightVizNode", "source": source}


def raw_sql(math: str, breakdown: bool) -> str:
    """The same aggregate written by hand (no ranking, no zero-filling, no shaping)."""
    value = "count(*)" if math == "total" else "count(DISTINCT distinct_id)"
    by = ", properties ->> '$browser'" if breakdown else ""
    return (
        f"SELECT date_trunc('day', timestamp AT TIME ZONE 'UTC') AS day{by}, {value} FROM events "
        "WHERE team_id = $1 AND event = '$pageview' AND timestamp >= $2 AND timestamp <= $3 "
        f"GROUP BY 1{', 2' if breakdown else ''}"
    )


async def timed(fn: Callable[[], Awaitable[Any]], runs: int) -> float:
    # Warm-up past PostgreSQL's first five custom plans of a prepared statement: long-lived pooled
    # connections run what the plan cache settles on.
    for _ in range(6):
        await fn()
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        await fn()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1000


async def measure(
    url: str, dsn: str, team_id: int, now: datetime, runs: int
) -> list[tuple[str, float, float | None]]:
    engine = create_async_engine(async_url(url))
    rows: list[tuple[str, float, float | None]] = []
    ctx = QueryContext(team_id=team_id, timezone="UTC", now=now)
    start = (now - timedelta(days=30)).replace(hour=0, minute=0, second=0, microsecond=0)
    end = now.replace(hour=23, minute=59, second=59, microsecond=999999)
    raw = await asyncpg.connect(dsn)
    try:
        async with engine.connect() as conn:
            backend = PostgresBackend(conn)
            cases = [(m, b) for m in ("total", "dau") for b in (False, True)]
            cases += [("weekly_active", False), ("monthly_active", False)]
            for math, breakdown in cases:
                query = trends(math, breakdown)

                async def run_engine(query: dict[str, Any] = query) -> None:
                    await compute(query, ctx, backend)

                engine_ms = await timed(run_engine, runs)
                raw_ms = None
                if math in ("total", "dau"):
                    sql = raw_sql(math, breakdown)

                    async def run_raw(sql: str = sql) -> None:
                        await raw.fetch(sql, team_id, start, end)

                    raw_ms = await timed(run_raw, runs)
                name = f"30-day daily {math} on $pageview" + (", by $browser" if breakdown else "")
                rows.append((name, engine_ms, raw_ms))
    finally:
        await raw.close()
        await engine.dispose()
    return rows


async def server_version(dsn: str) -> str:
    conn = await asyncpg.connect(dsn)
    try:
        version: str = await conn.fetchval("SHOW server_version")
        return version
    finally:
        await conn.close()


def plain_dsn(url: str) -> str:
    return async_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


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
        print(f"{'query':<48} {'compute()':>12} {'raw SQL':>10}")
        for name, engine_ms, raw_ms in await measure(url, dsn, team_id, now, runs):
            raw_text = f"{raw_ms:8.0f} ms" if raw_ms is not None else f"{'-':>11}"
            print(f"{name:<48} {engine_ms:9.0f} ms {raw_text}")


async def _admin(url: str, sql: str) -> None:
    conn = await asyncpg.connect(plain_dsn(url))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--sizes", default="1000000,10000000", help="cumulative event counts, comma-separated"
    )
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--keep", action="store_true", help="keep the database (DATABASE_URL only)")
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
            if not args.keep:
                asyncio.run(_admin(configured, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        return

    from app.embedded import EmbeddedPostgres

    work = Path(tempfile.mkdtemp(prefix="tilecast-bench-trends-"))
    server = EmbeddedPostgres(work)
    try:
        asyncio.run(run_sizes(server.start(), sizes, args.runs))
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)  # 10M events take several GB


if __name__ == "__main__":
    main()
