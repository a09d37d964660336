"""The two events backends side by side, in one run: PostgreSQL and ClickHouse.

Sections (`--sections capture,trends`, both by default):

- capture: `POST /batch/` under wrk, as `bench_ingestion.py` sends it (`--batch` events per request, ~430
  bytes an event, no uuid), to `tilecast serve` on the PostgreSQL backend and on the ClickHouse backend
  (chdb in the server's process, and the server at TILECAST_CLICKHOUSE_URL too when it is set), one worker
  each (chdb serves one process), the same PostgreSQL database for keys and persons. `--rounds` rounds of
  `--seconds` per server, the order reversed every other round. Prints events/s (2xx answers times
  `--batch`), request p50/p99 and the ratio of each ClickHouse server to PostgreSQL. Events stored are
  checked against the 2xx answers: in PostgreSQL after each run, in chdb once its server has stopped.
- trends: trends on 10M events on both backends (`trends_section`, filled in by the trends work).

    python benchmarks/bench_backends.py [--sections capture,trends] [--rounds 3] [--seconds 10]
        [--batch 100] [--bodies 200] [--person-every N] [--connections 32] [--threads 2]

PostgreSQL: DATABASE_URL when set (use a throwaway database), else an embedded server in a temporary folder.
"""

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent.parent))
import wrk
from bench_ingestion import build_bodies, count_events
from harness import create_key, machine_line, start_database, tilecast_process


@dataclass
class Backend:
    name: str
    env: dict[str, str]
    base: str = ""
    runs: list[tuple[float, wrk.WrkResult]] = field(default_factory=list)
    answered: int = 0  # events in 2xx answers, all runs


def _ms(value: float) -> str:
    return f"{value:,.0f} ms" if value >= 100 else f"{value:.1f} ms"


def _backends(env: dict[str, str], work: Path) -> list[Backend]:
    postgres = dict(env, TILECAST_EVENTS_BACKEND="postgres")
    postgres.pop("TILECAST_CLICKHOUSE_URL", None)
    chdb = dict(postgres, TILECAST_EVENTS_BACKEND="clickhouse", TILECAST_DATA_DIR=str(work / "chdb"))
    backends = [Backend("PostgreSQL", postgres), Backend("ClickHouse (chdb)", chdb)]
    server = os.environ.get("TILECAST_CLICKHOUSE_URL")
    if server:
        backends.append(Backend("ClickHouse (server)", dict(chdb, TILECAST_CLICKHOUSE_URL=server)))
    return backends


async def _chdb_events(data_dir: Path, team_id: int) -> int:
    from app.clickhouse.client import ChdbClient

    client = ChdbClient(data_dir / "clickhouse")
    try:
        rows = await client.query(
            f"SELECT count() FROM {client.database}.events WHERE team_id = {{team:Int64}}", {"team": team_id}
        )
        return int(rows[0][0])
    finally:
        await client.close()


def capture_section(args: argparse.Namespace, work: Path, database_url: str, env: dict[str, str]) -> None:
    """Capture through `/batch/` on each backend, in alternating rounds; prints a table of the medians."""
    info = create_key(env, work)
    token, team_id = info["project_api_key"], info["team_id"]
    bodies, _ = build_bodies(token, args.bodies, args.batch, args.person_every)
    backends = _backends(env, work)
    print(
        f"capture: {len(bodies)} bodies of {args.batch} events; wrk -t{args.threads} -c{args.connections}, "
        f"{args.rounds} rounds of {args.seconds:.0f} s per backend, 1 worker each"
    )
    with ExitStack() as stack:
        for backend in backends:
            backend.base, _ = stack.enter_context(tilecast_process(backend.env, work, 1))
            for body in bodies[:4]:  # pools, prepared statements and tables warmed
                httpx.post(f"{backend.base}/batch/", content=body, timeout=60).raise_for_status()
            backend.answered += 4 * args.batch
        for r in range(args.rounds):
            for backend in backends if r % 2 == 0 else list(reversed(backends)):
                postgres = backend.name == "PostgreSQL"
                before = asyncio.run(count_events(database_url, team_id)) if postgres else 0
                result = wrk.run(
                    backend.name,
                    f"{backend.base}/batch/",
                    seconds=args.seconds,
                    headers={"Content-Type": "application/json", "User-Agent": "bench/1"},
                    method="POST",
                    bodies=bodies,
                    threads=args.threads,
                    connections=args.connections,
                )
                time.sleep(1)  # requests in flight when wrk stopped are stored too
                if postgres:
                    stored = asyncio.run(count_events(database_url, team_id)) - before
                    if stored < result.ok * args.batch:
                        raise SystemExit(f"{stored:,} rows stored for {result.ok:,} answers of 2xx")
                rate = result.ok * args.batch / result.seconds
                backend.runs.append((rate, result))
                backend.answered += result.ok * args.batch
                print(f"round {r + 1}  {result.line()}   {rate:,.0f} events/s", flush=True)
    # The servers are stopped: chdb's folder may be opened here.
    chdb = next(b for b in backends if b.name == "ClickHouse (chdb)")
    stored = asyncio.run(_chdb_events(work / "chdb", team_id))
    if stored < chdb.answered:
        raise SystemExit(f"chdb holds {stored:,} events for {chdb.answered:,} acknowledged")
    print(f"chdb holds {stored:,} events; {chdb.answered:,} were acknowledged")

    base_rate = statistics.median(rate for rate, _ in backends[0].runs)
    print()
    print("| capture, POST /batch/, 1 worker | events/s | p50 | p99 | ratio to PostgreSQL | errors |")
    print("|---|---:|---:|---:|---:|---:|")
    for backend in backends:
        rate = statistics.median(rate for rate, _ in backend.runs)
        m = wrk.median(backend.name, (result for _, result in backend.runs))
        print(
            f"| {backend.name} | {rate:,.0f} | {_ms(m.p50_ms)} | {_ms(m.p99_ms)} "
            f"| {rate / base_rate:.2f} | {m.errors} |"
        )
    print(f"medians of {args.rounds} rounds; p50/p99 per request of {args.batch} events")


# Trends on both backends: the same events (generated in PostgreSQL, copied into chdb with ClickHouse's
# `postgresql()` table function), the same queries through the engine's `compute()`.
TREND_DAYS = 90
TREND_PERSONS = 50_000
_GENERATE = """
    INSERT INTO events (team_id, uuid, event, distinct_id, timestamp, properties)
    SELECT $1, gen_random_uuid(), name, 'person-' || floor(50000 * power(r2, 2))::int, ts,
        jsonb_build_object(
            '$browser', CASE WHEN r3 < 0.02 THEN NULL WHEN r3 < 0.6 THEN 'Chrome' WHEN r3 < 0.8 THEN 'Safari'
                WHEN r3 < 0.88 THEN 'Firefox' WHEN r3 < 0.94 THEN 'Edge' WHEN r3 < 0.97 THEN 'Opera'
                ELSE 'Samsung Internet' END,
            '$current_url', 'https://example.com/' || (ARRAY['blog', 'docs', 'product', 'pricing', 'app'])
                [1 + floor(r4 * 5)::int] || '/' || floor(r4 * 500)::int,
            '$session_id',
                's' || floor(50000 * power(r2, 2))::int || '-' || floor(extract(epoch FROM ts) / 1800),
            'revenue', CASE WHEN name = 'purchase' THEN round((1 + r4 * 199)::numeric, 2) END
        )
    FROM (
        SELECT CASE WHEN r1 < 0.5 THEN '$pageview' WHEN r1 < 0.62 THEN '$autocapture'
                WHEN r1 < 0.7 THEN '$pageleave' WHEN r1 < 0.74 THEN '$identify' WHEN r1 < 0.78 THEN 'purchase'
                WHEN r1 < 0.84 THEN 'login' WHEN r1 < 0.9 THEN 'search' ELSE 'view_item' END AS name,
            r2, r3, r4, $2::timestamptz - (i::float8 / $3) * interval '90 days' AS ts
        FROM (SELECT i, random() AS r1, random() AS r2, random() AS r3, random() AS r4
              FROM generate_series(1, $3) AS i) AS numbers
    ) AS rows
"""


def _trend_queries() -> list[tuple[str, dict[str, Any]]]:
    def query(series: dict[str, Any], days: int = 30, **source: Any) -> dict[str, Any]:
        body = {"kind": "TrendsQuery", "series": [series], "interval": "day", **source}
        return {"kind": "InsightVizNode", "source": {**body, "dateRange": {"date_from": f"-{days}d"}}}

    pageview = {"kind": "EventsNode", "event": "$pageview"}
    chrome = [{"key": "$browser", "operator": "exact", "value": "Chrome", "type": "event"}]
    docs = [{"key": "$current_url", "operator": "icontains", "value": "/DOCS/", "type": "event"}]
    return [
        ("total, 30 days by day", query(pageview)),
        ("total, 90 days by day", query(pageview, 90)),
        ("dau, 30 days", query({**pageview, "math": "dau"})),
        ("total by $browser, 30 days", query(pageview, breakdownFilter={"breakdown": "$browser"})),
        ("dau where $browser = Chrome", query({**pageview, "math": "dau", "properties": chrome})),
        ("total where $current_url icontains", query({**pageview, "properties": docs})),
        (
            "sum of revenue (purchase)",
            query({"kind": "EventsNode", "event": "purchase", "math": "sum", "math_property": "revenue"}),
        ),
        (
            "p90 of revenue (purchase)",
            query({"kind": "EventsNode", "event": "purchase", "math": "p90", "math_property": "revenue"}),
        ),
        ("weekly_active, 30 days", query({**pageview, "math": "weekly_active"})),
        ("monthly_active, 30 days", query({**pageview, "math": "monthly_active"})),
    ]


def _difference(postgres: list[dict[str, Any]], clickhouse: list[dict[str, Any]]) -> str:
    """ "" when both backends answered the same; else how far apart their numbers are."""
    if postgres == clickhouse:
        return ""
    pairs = [
        (a, b)
        for p, c in zip(postgres, clickhouse, strict=False)
        for a, b in zip(p.get("data", []), c.get("data", []), strict=False)
    ]
    if len(postgres) != len(clickhouse) or any(abs(a - b) > 1e-9 * max(abs(a), abs(b), 1) for a, b in pairs):
        return " (results differ!)"
    worst = max(abs(a - b) / max(abs(a), abs(b), 1e-300) for a, b in pairs)
    return f" (float sums differ by {worst:.0e} at most)"


async def _median_ms(run: Any, runs: int, warmups: int = 2) -> tuple[float, Any]:
    result = None
    for _ in range(warmups):
        result = await run()
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        result = await run()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1000, result


async def _trends(args: argparse.Namespace, work: Path, database_url: str) -> None:
    from datetime import UTC, datetime
    from urllib.parse import unquote

    import asyncpg
    from sqlalchemy.engine import make_url

    from app.clickhouse.backend import ClickHouseBackend
    from app.clickhouse.client import ChdbClient
    from app.clickhouse.schema import migrate
    from app.config import get_settings
    from app.db import async_url, create_engine
    from app.migrations import upgrade_async
    from app.query.backend import PostgresBackend
    from app.query.base import QueryContext
    from app.query.engine import compute

    await upgrade_async(database_url)
    url = make_url(database_url)
    dsn = async_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)
    conn = await asyncpg.connect(dsn)
    now = datetime.now(UTC)
    try:
        org = await conn.fetchval(
            "INSERT INTO organization (id, name) VALUES (gen_random_uuid(), 'bench') RETURNING id"
        )
        team_id = await conn.fetchval(
            "INSERT INTO team (uuid, organization_id, name, api_token) VALUES (gen_random_uuid(), $1, "
            "'bench', 'phc_bench_trends_' || md5(random()::text)) RETURNING id",
            org,
        )
        started = time.perf_counter()
        await conn.execute(_GENERATE, team_id, now, args.trend_events)
        await conn.execute("VACUUM (ANALYZE) events")
        print(
            f"\ntrends: {args.trend_events:,} events over {TREND_DAYS} days generated in PostgreSQL in "
            f"{time.perf_counter() - started:.0f} s"
        )
    finally:
        await conn.close()

    chdb = ChdbClient(work / "chdb" / "clickhouse", database="bench_trends")
    try:
        await migrate(chdb)
        started = time.perf_counter()
        await chdb.command(
            f"INSERT INTO {chdb.database}.events (team_id, uuid, event, distinct_id, timestamp, properties) "
            "SELECT team_id, uuid, event, distinct_id, timestamp, properties FROM postgresql("
            "{address:String}, {database:String}, 'events', {user:String}, {password:String}) "
            "WHERE team_id = {team:Int64}",
            {
                "address": f"{url.host or '127.0.0.1'}:{url.port or 5432}",
                "database": url.database or "postgres",
                "user": url.username or "postgres",
                "password": unquote(url.password or ""),
                "team": team_id,
            },
        )
        await chdb.command(f"OPTIMIZE TABLE {chdb.database}.events FINAL")
        [(copied,)] = await chdb.query(f"SELECT count() FROM {chdb.database}.events")
        print(f"the same events copied into chdb in {time.perf_counter() - started:.0f} s ({copied:,} rows)")

        settings = get_settings()
        ctx = QueryContext(team_id=team_id, timezone="UTC", now=now)
        clickhouse = ClickHouseBackend(
            chdb,
            timeout_ms=600_000,
            max_memory_bytes=settings.clickhouse_max_memory_bytes,
            max_result_rows=settings.clickhouse_max_result_rows,
        )
        engine = create_engine(database_url, settings)
        print()
        print(
            f"| trends on {args.trend_events:,} events, compute() | PostgreSQL | chdb | PostgreSQL / chdb |"
        )
        print("|---|---:|---:|---:|")
        try:
            async with engine.connect() as pg_conn:
                postgres = PostgresBackend(pg_conn)
                for name, query in _trend_queries():
                    pg_ms, pg_result = await _median_ms(
                        lambda q=query: compute(q, ctx, postgres), args.trend_runs
                    )
                    ch_ms, ch_result = await _median_ms(
                        lambda q=query: compute(q, ctx, clickhouse), args.trend_runs
                    )
                    same = _difference(pg_result.results, ch_result.results)
                    print(f"| {name}{same} | {_ms(pg_ms)} | {_ms(ch_ms)} | {pg_ms / ch_ms:.1f} |", flush=True)
        finally:
            await engine.dispose()
        print(
            f"medians of {args.trend_runs} runs after 2 warm-ups, one query at a time; chdb in this process"
        )
    finally:
        await chdb.close()


def trends_section(args: argparse.Namespace, work: Path, database_url: str, env: dict[str, str]) -> None:
    """Trends on `--trend-events` events (10M by default) on PostgreSQL and on chdb: the same rows in both,
    the same queries through `compute()`; prints a table of medians and the ratio, and whether the results
    of the two backends are the same."""
    asyncio.run(_trends(args, work, database_url))


SECTIONS: dict[str, Any] = {"capture": capture_section, "trends": trends_section}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sections", default="capture,trends", help="comma-separated: capture, trends")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--batch", type=int, default=100, help="events per request")
    parser.add_argument("--bodies", type=int, default=200, help="distinct request bodies, sent in turn")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--trend-events", type=int, default=10_000_000, help="events of the trends section")
    parser.add_argument("--trend-runs", type=int, default=5, help="timed runs of each trends query")
    parser.add_argument(
        "--person-every", type=int, default=0, metavar="N", help="every Nth event sets person properties"
    )
    args = parser.parse_args()
    sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        raise SystemExit(f"unknown sections: {', '.join(sorted(unknown))}")
    wrk.require_wrk()
    work = Path(tempfile.mkdtemp(prefix="tilecast-bench-backends-"))
    database_url, env, embedded = start_database(work)
    try:
        print(machine_line(embedded is not None))
        for name in sections:
            SECTIONS[name](args, work, database_url, env)
    finally:
        if embedded is not None:
            embedded.stop()


if __name__ == "__main__":
    main()
