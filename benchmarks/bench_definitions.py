"""`volume_30_day` of the event definitions list, computed when a page is read, on 1M events.

Loads `--events` events (default 1M) for one team, all in the last 30 days (the worst case: every event
counts), over the event names of `bench_trends.py` with its weights (`$pageview` about a third), then
records their definitions. Times, `--runs` times each (median), the two statements a page of
`GET …/event_definitions/` runs (the page of definitions, and the counts for its names over the events
index on (team_id, event, timestamp)), and the count for the busiest name alone, then prints the plan of
the counts. First, without a database: the CPU capture spends per request of `bench_ingestion.py`'s bodies
on finding the definitions it has not stored yet, once every one of them is known (a steady stream),
next to the whole decoding of the request (`thread_time`, best of `--cpu-runs` passes over 200 bodies).
PostgreSQL: DATABASE_URL when set (a throwaway database is created in it and dropped), else an embedded
server in a temporary directory. `--events 0` measures the CPU alone.

    python benchmarks/bench_definitions.py [--events 1000000] [--runs 7] [--cpu-runs 20] [--person-every N]
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
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent.parent))
from bench_ingestion import build_bodies
from bench_trends import EVENTS, _admin, _weighted, create_team, plain_dsn, server_version

from app.config import get_settings
from app.db import async_url
from app.definitions import repository
from app.ingestion.decoding import RawRequest
from app.ingestion.definitions import KNOWN
from app.ingestion.service import decode_events
from app.migrations import upgrade_async

CHUNK = 100_000


async def load(dsn: str, team_id: int, count: int, now: datetime) -> float:
    """`count` events in the 30 days before `now`, then their definitions; VACUUM ANALYZE after."""
    rng = random.Random(count)
    started = time.perf_counter()
    conn = await asyncpg.connect(dsn)
    try:
        for first in range(0, count, CHUNK):
            n = min(CHUNK, count - first)
            names = _weighted(EVENTS, n, rng)
            records = [
                (
                    team_id,
                    uuid.uuid4(),
                    names[i],
                    f"person-{rng.randrange(20_000)}",
                    now - timedelta(seconds=rng.uniform(60, 29.9 * 86_400)),
                    json.dumps({"$browser": "Chrome"}),
                )
                for i in range(n)
            ]
            await conn.copy_records_to_table(
                "events",
                records=records,
                columns=["team_id", "uuid", "event", "distinct_id", "timestamp", "properties"],
            )
        await conn.execute(
            "INSERT INTO event_definition (team_id, name, last_seen_at)"
            " SELECT $1, event, max(timestamp) FROM events WHERE team_id = $1 GROUP BY event",
            team_id,
        )
        await conn.execute("VACUUM (ANALYZE) events")
        await conn.execute("VACUUM (ANALYZE) event_definition")
    finally:
        await conn.close()
    return time.perf_counter() - started


def ingest_cpu(runs: int, person_every: int) -> None:
    """Per request: the whole decoding (which includes finding new definitions) and the finding alone."""
    token = "phc_bench_cpu"
    bodies, _ = build_bodies(token, 200, 100, person_every)
    settings = get_settings()
    now = datetime.now(UTC)
    requests = [RawRequest("/batch/", {}, "application/json", None, body) for body in bodies]
    for request in requests:  # the stream's first requests: every definition is learnt
        decoded = decode_events(request, settings, now, "127.0.0.1")
        if decoded.definitions is not None:
            KNOWN.learn(token, decoded.definitions)
    decoded_all = [decode_events(r, settings, now, "127.0.0.1") for r in requests]
    assert all(d.definitions is None for d in decoded_all), "a steady stream found new definitions"

    def best(fn: Callable[[], None]) -> float:
        samples = []
        for _ in range(runs):
            start = time.thread_time()
            fn()
            samples.append((time.thread_time() - start) / len(requests) * 1e6)
        return min(samples)

    def decode() -> None:
        for request in requests:
            decode_events(request, settings, now, "127.0.0.1")

    seen = [[(e.event, json.loads(e.properties_json)) for e in d.events] for d in decoded_all]

    def find() -> None:
        for events in seen:
            KNOWN.new_for(token, events, (), now.timestamp())

    whole, finding = best(decode), best(find)
    print(
        f"capture CPU per request of 100 events (person_every {person_every}): decoding {whole:,.0f} µs, "
        f"of which finding new definitions {finding:,.0f} µs ({finding / whole:.1%})"
    )


async def timed(fn: Callable[[], Awaitable[Any]], runs: int) -> float:
    await fn()  # warm: plans and caches
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        await fn()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


async def run(url: str, count: int, runs: int) -> None:
    dsn = plain_dsn(url)
    await upgrade_async(url)
    team_id = await create_team(dsn)
    now = datetime.now(UTC)
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
        f"PostgreSQL {await server_version(dsn)}; Python {platform.python_version()}"
    )
    seconds = await load(dsn, team_id, count, now)
    print(f"loaded {count:,} events in the last 30 days, and their definitions, in {seconds:.0f} s")
    engine = create_async_engine(async_url(url))
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    page_filter = repository.EventFilter(
        search="", excluded=[], posthog_events=None, ordering=[("last_seen_at::date", True), ("name", False)]
    )
    try:
        async with sessions() as session:
            rows, total = await repository.list_event_definitions(session, team_id, page_filter, 100, 0)
            names = [r.name for r in rows]
            volumes = await repository.volumes_30_day(session, team_id, names, now)
            busiest = max(volumes, key=lambda name: volumes[name])
            print(f"{total} definitions; {sum(volumes.values()):,} events counted; busiest: {busiest}")

            async def page() -> None:
                await repository.list_event_definitions(session, team_id, page_filter, 100, 0)

            async def counts() -> None:
                await repository.volumes_30_day(session, team_id, names, now)

            async def one() -> None:
                await repository.volumes_30_day(session, team_id, [busiest], now)

            print(f"{'statement':<52} {'median':>10}")
            for label, fn in (
                ("page of definitions (limit 100)", page),
                (f"volume_30_day of the page ({len(names)} names)", counts),
                (f"volume_30_day of {busiest} alone ({volumes[busiest]:,} events)", one),
            ):
                print(f"{label:<52} {await timed(fn, runs):7.0f} ms")
        conn = await asyncpg.connect(dsn)
        try:
            plan = await conn.fetch(
                "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) SELECT name, (SELECT count(*) FROM events"
                " WHERE team_id = $1 AND event = name AND timestamp >= $3 AND timestamp <= $4)"
                " FROM unnest($2::text[]) AS name",
                team_id,
                names,
                now - timedelta(days=30),
                now,
            )
            print("\n".join(row[0] for row in plan))
        finally:
            await conn.close()
    finally:
        await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--cpu-runs", type=int, default=20)
    parser.add_argument("--person-every", type=int, default=0, metavar="N")
    args = parser.parse_args()
    ingest_cpu(args.cpu_runs, args.person_every)
    if args.events == 0:
        return
    configured = os.environ.get("DATABASE_URL")
    if configured:
        name = f"tilecast_bench_{uuid.uuid4().hex[:8]}"
        asyncio.run(_admin(configured, f'CREATE DATABASE "{name}"'))
        url = make_url(configured).set(database=name).render_as_string(hide_password=False)
        try:
            asyncio.run(run(url, args.events, args.runs))
        finally:
            asyncio.run(_admin(configured, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        return

    from app.embedded import EmbeddedPostgres

    work = Path(tempfile.mkdtemp(prefix="tilecast-bench-definitions-"))
    server = EmbeddedPostgres(work)
    try:
        asyncio.run(run(server.start(), args.events, args.runs))
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
