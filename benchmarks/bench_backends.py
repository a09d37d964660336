"""The two events backends side by side, in one run: PostgreSQL and ClickHouse.

Sections (`--sections capture,trends`, both by default):

- capture: `POST /batch/` under wrk, as `bench_ingestion.py` sends it (`--batch` events per request, ~430
  bytes an event, no uuid), to `tilecast serve` on the PostgreSQL backend and on the ClickHouse backend
  (chdb in the server's process, and the server at TILECAST_CLICKHOUSE_URL too when it is set), one worker
  each (chdb serves one process), the same PostgreSQL database for keys and persons. `--rounds` rounds of
  `--seconds` per server, the order reversed every other round. Prints events/s (2xx answers times
  `--batch`), request p50/p99 and the ratio of each ClickHouse server to PostgreSQL. Events stored are
  checked against the 2xx answers: in PostgreSQL after each run, in chdb once its server has stopped.
- trends: trends on `--size` events (10M by default) on both backends, through the engine's `compute()`.
- kinds: funnels, retention, lifecycle and stickiness on the same events, through `compute()` on both.
- sql: the 10 HogQL queries of `bench_hogql.py` (CASES) through `POST /query/` on both: on PostgreSQL in the
  SQL insights sandbox (the team's own role), on chdb through HogQL on ClickHouse; skipped with a message when
  this build cannot run HogQL on ClickHouse.

The trends, kinds and sql sections share one load: the events are generated once in PostgreSQL and copied
into chdb. A kind (or SQL) the ClickHouse backend refuses prints "not supported" in its row.

    python benchmarks/bench_backends.py [--sections capture,trends,kinds,sql] [--size 10000000] [--runs 5]
        [--rounds 3] [--seconds 10] [--batch 100] [--bodies 200] [--person-every N] [--connections 32]
        [--threads 2]

PostgreSQL: DATABASE_URL when set (use a throwaway database), else an embedded server in a temporary folder.
The trends, kinds and sql sections need DATABASE_URL on host:port: chdb copies the events over TCP.
"""

import argparse
import asyncio
import math
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


def _gap(a: Any, b: Any) -> float:
    """How far apart two results are: 0 when equal, the largest relative difference of their numbers when
    only numbers differ, infinity when anything else does."""
    if isinstance(a, bool) or isinstance(b, bool):
        return 0.0 if a == b else math.inf
    if isinstance(a, int | float) and isinstance(b, int | float):
        return 0.0 if a == b else abs(a - b) / max(abs(a), abs(b), 1e-300)
    if isinstance(a, dict) and isinstance(b, dict):
        if a.keys() != b.keys():
            return math.inf
        return max((_gap(a[k], b[k]) for k in a), default=0.0)
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return math.inf
        return max((_gap(x, y) for x, y in zip(a, b, strict=True)), default=0.0)
    return 0.0 if a == b else math.inf


def _difference(postgres: Any, clickhouse: Any) -> str:
    """ "" when both backends answered the same; else how far apart their numbers are."""
    worst = _gap(postgres, clickhouse)
    if worst == 0:
        return ""
    if worst > 1e-9:
        return " (results differ!)"
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


@dataclass
class Loaded:
    """The events of the trends, kinds and sql sections: one team's, in PostgreSQL and in chdb."""

    team_id: int
    key: str  # a personal API key of the team's user (the sql section's requests)
    now: Any  # datetime: the generated events end here
    chdb: Any  # ChdbClient on database bench_trends
    sandbox: str | None  # why SQL insights could not be set up on PostgreSQL, None when they are


_LOADED: list[Loaded] = []


async def _load(args: argparse.Namespace, work: Path, database_url: str) -> Loaded:
    """Generate `--size` events in PostgreSQL for a new team and copy them into chdb, once per run."""
    if _LOADED:
        return _LOADED[0]
    from datetime import UTC, datetime
    from urllib.parse import unquote

    import asyncpg
    from sqlalchemy.engine import make_url

    from app.accounts import create_key
    from app.clickhouse.client import ChdbClient
    from app.clickhouse.schema import migrate
    from app.config import get_settings
    from app.db import async_url, create_engine, create_sessionmaker
    from app.migrations import setup_sql_sandbox, upgrade_async

    url = make_url(database_url)
    if not url.host or "host" in url.query:
        raise SystemExit(
            "chdb copies the events from PostgreSQL over TCP (its postgresql() table function): set "
            "DATABASE_URL "
            "to a throwaway database on host:port"
        )
    await upgrade_async(database_url)
    engine = create_engine(database_url, get_settings())
    try:
        async with create_sessionmaker(engine)() as session:
            created = await create_key(session, "bench@example.com", "bench", ["*"], "bench")
            await session.commit()
    finally:
        await engine.dispose()
    team_id = created.team.id
    sandbox = await asyncio.to_thread(setup_sql_sandbox, database_url)
    dsn = async_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)
    conn = await asyncpg.connect(dsn)
    now = datetime.now(UTC)
    try:
        started = time.perf_counter()
        await conn.execute(_GENERATE, team_id, now, args.size)
        await conn.execute("VACUUM (ANALYZE) events")
        print(
            f"\n{args.size:,} events over {TREND_DAYS} days generated in PostgreSQL in "
            f"{time.perf_counter() - started:.0f} s"
        )
    finally:
        await conn.close()

    chdb = ChdbClient(work / "chdb" / "clickhouse", database="bench_trends")
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
    _LOADED.append(Loaded(team_id, created.key, now, chdb, sandbox))
    return _LOADED[0]


async def _both(args: argparse.Namespace, work: Path, database_url: str, title: str, queries: Any) -> None:
    """Each query through `compute()` on PostgreSQL and on chdb: a table of medians, the ratio, and whether
    the two backends gave the same results; "not supported" where the ClickHouse backend refuses the kind."""
    from app.clickhouse.backend import ClickHouseBackend
    from app.config import get_settings
    from app.db import create_engine
    from app.query.backend import PostgresBackend
    from app.query.base import QueryContext, UnsupportedQuery
    from app.query.engine import compute

    loaded = await _load(args, work, database_url)
    settings = get_settings()
    team_id, now, chdb = loaded.team_id, loaded.now, loaded.chdb
    ctx = QueryContext(team_id=team_id, timezone="UTC", now=now)
    clickhouse = ClickHouseBackend(
        chdb,
        timeout_ms=600_000,
        max_memory_bytes=settings.clickhouse_max_memory_bytes,
        max_result_rows=settings.clickhouse_max_result_rows,
    )
    engine = create_engine(database_url, settings)
    print()
    print(f"| {title} on {args.size:,} events, compute() | PostgreSQL | chdb | PostgreSQL / chdb |")
    print("|---|---:|---:|---:|")
    try:
        async with engine.connect() as pg_conn:
            postgres = PostgresBackend(pg_conn)
            for name, query in queries:
                pg_ms, pg_result = await _median_ms(lambda q=query: compute(q, ctx, postgres), args.runs)
                try:
                    ch_ms, ch_result = await _median_ms(
                        lambda q=query: compute(q, ctx, clickhouse), args.runs
                    )
                except UnsupportedQuery:
                    print(f"| {name} | {_ms(pg_ms)} | not supported | |", flush=True)
                    continue
                same = _difference(pg_result.results, ch_result.results)
                print(f"| {name}{same} | {_ms(pg_ms)} | {_ms(ch_ms)} | {pg_ms / ch_ms:.1f} |", flush=True)
    finally:
        await engine.dispose()
    print(f"medians of {args.runs} runs after 2 warm-ups, one query at a time; chdb in this process")


def _kind_queries() -> list[tuple[str, dict[str, Any]]]:
    def query(kind: str, days: int = 30, **source: Any) -> dict[str, Any]:
        body = {"kind": kind, "dateRange": {"date_from": f"-{days}d"}, **source}
        return {"kind": "InsightVizNode", "source": body}

    pageview = {"kind": "EventsNode", "event": "$pageview"}
    purchase = {"kind": "EventsNode", "event": "purchase"}
    search = {"kind": "EventsNode", "event": "search"}
    returning = {"targetEntity": {"id": "$pageview", "type": "events"}, "totalIntervals": 8}
    return [
        (
            "funnel $pageview → search → purchase, 30 days",
            query("FunnelsQuery", series=[pageview, search, purchase]),
        ),
        (
            "funnel by $browser, 30 days",
            query("FunnelsQuery", series=[pageview, purchase], breakdownFilter={"breakdown": "$browser"}),
        ),
        ("retention, 8 days", query("RetentionQuery", 8, retentionFilter=returning)),
        (
            "retention, 8 weeks",
            query("RetentionQuery", 56, retentionFilter={**returning, "period": "Week"}),
        ),
        ("lifecycle, 30 days by day", query("LifecycleQuery", series=[pageview], interval="day")),
        ("lifecycle, 90 days by week", query("LifecycleQuery", 90, series=[pageview], interval="week")),
        ("stickiness, 30 days by day", query("StickinessQuery", series=[pageview], interval="day")),
        ("stickiness, 90 days by week", query("StickinessQuery", 90, series=[pageview], interval="week")),
    ]


def trends_section(args: argparse.Namespace, work: Path, database_url: str, env: dict[str, str]) -> None:
    """Trends on `--size` events (10M by default) on PostgreSQL and on chdb: the same rows in both, the same
    queries through `compute()`; prints a table of medians and the ratio, and whether the results of the two
    backends are the same."""
    asyncio.run(_both(args, work, database_url, "trends", _trend_queries()))


def kinds_section(args: argparse.Namespace, work: Path, database_url: str, env: dict[str, str]) -> None:
    """Funnels, retention, lifecycle and stickiness on the same events, as `trends_section` runs trends."""
    asyncio.run(_both(args, work, database_url, "kinds", _kind_queries()))


async def _sql(args: argparse.Namespace, work: Path, database_url: str) -> None:
    from bench_hogql import CASES, _canonical

    from app.config import get_settings
    from app.db import create_engine, create_sessionmaker
    from app.main import create_app

    loaded = await _load(args, work, database_url)
    if loaded.sandbox is not None:
        print(f"\nsql: skipped, SQL insights could not be set up on PostgreSQL: {loaded.sandbox}")
        return
    engine = create_engine(database_url, get_settings())

    def app_on(backend: str) -> Any:
        os.environ["TILECAST_EVENTS_BACKEND"] = backend
        get_settings.cache_clear()
        app = create_app()
        app.state.engine = engine
        app.state.sessionmaker = create_sessionmaker(engine, loaded.chdb if backend == "clickhouse" else None)
        app.state.clickhouse = loaded.chdb if backend == "clickhouse" else None
        return app

    headers = {"Authorization": f"Bearer {loaded.key}"}
    apps = {"postgres": app_on("postgres"), "clickhouse": app_on("clickhouse")}
    clients = {
        name: httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench", timeout=600)
        for name, app in apps.items()
    }

    async def run(backend: str, hogql: str) -> Any:
        os.environ["TILECAST_EVENTS_BACKEND"] = backend  # the setting the engine reads per request
        get_settings.cache_clear()
        body = {"query": {"kind": "HogQLQuery", "query": hogql}, "refresh": "force_blocking"}
        response = await clients[backend].post(
            f"/api/projects/{loaded.team_id}/query/", json=body, headers=headers
        )
        if response.status_code == 400 and "not supported on the ClickHouse" in response.text:
            raise LookupError(response.json().get("detail", response.text))
        assert response.status_code == 200, response.text
        return [[_canonical(value) for value in row] for row in response.json()["results"]]

    try:
        unavailable = None
        try:
            await run("clickhouse", CASES[0][1])
        except LookupError as exc:
            unavailable = str(exc)
            print(f"\nsql: chdb skipped, HogQL on ClickHouse is unavailable in this build ({exc})")
        print()
        print(
            f"| SQL (HogQL) on {args.size:,} events, POST /query/ | PostgreSQL | chdb | PostgreSQL / chdb |"
        )
        print("|---|---:|---:|---:|")
        for name, hogql, _ in CASES:
            pg_ms, pg_rows = await _median_ms(lambda q=hogql: run("postgres", q), args.runs)
            if unavailable is not None:
                print(f"| {name} | {_ms(pg_ms)} | not supported | |", flush=True)
                continue
            ch_ms, ch_rows = await _median_ms(lambda q=hogql: run("clickhouse", q), args.runs)
            same = "" if pg_rows == ch_rows else " (rows differ)"
            print(f"| {name}{same} | {_ms(pg_ms)} | {_ms(ch_ms)} | {pg_ms / ch_ms:.1f} |", flush=True)
        print(
            f"medians of {args.runs} runs after 2 warm-ups; PostgreSQL as the team's role in the SQL "
            "insights sandbox; windows relative to now() move between runs, so a row may differ at its edge"
        )
    finally:
        for http in clients.values():
            await http.aclose()
        for app in apps.values():
            await app.state.sandbox.close()
        await engine.dispose()


def sql_section(args: argparse.Namespace, work: Path, database_url: str, env: dict[str, str]) -> None:
    """The 10 HogQL queries of `bench_hogql.py` through `POST /query/` on PostgreSQL and on chdb."""
    previous = os.environ.get("TILECAST_EVENTS_BACKEND")
    try:
        asyncio.run(_sql(args, work, database_url))
    finally:
        if previous is None:
            os.environ.pop("TILECAST_EVENTS_BACKEND", None)
        else:
            os.environ["TILECAST_EVENTS_BACKEND"] = previous


SECTIONS: dict[str, Any] = {
    "capture": capture_section,
    "trends": trends_section,
    "kinds": kinds_section,
    "sql": sql_section,
}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--sections", default="capture,trends,kinds,sql", help="comma-separated: capture, trends, kinds, sql"
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--batch", type=int, default=100, help="events per request")
    parser.add_argument("--bodies", type=int, default=200, help="distinct request bodies, sent in turn")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--size",
        "--trend-events",
        type=int,
        default=10_000_000,
        help="events of the trends, kinds, sql sections",
    )
    parser.add_argument("--runs", "--trend-runs", type=int, default=5, help="timed runs of each query")
    parser.add_argument(
        "--person-every", type=int, default=0, metavar="N", help="every Nth event sets person properties"
    )
    args = parser.parse_args()
    sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        raise SystemExit(f"unknown sections: {', '.join(sorted(unknown))}")
    if "capture" in sections:
        wrk.require_wrk()
    work = Path(tempfile.mkdtemp(prefix="tilecast-bench-backends-"))
    database_url, env, embedded = start_database(work)
    try:
        print(machine_line(embedded is not None))
        for name in sections:
            SECTIONS[name](args, work, database_url, env)
    finally:
        if _LOADED:
            asyncio.run(_LOADED[0].chdb.close())
        if embedded is not None:
            embedded.stop()


if __name__ == "__main__":
    main()
