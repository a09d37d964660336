"""A dashboard of 20 insight tiles served from the result cache, against the stack's own limit.

Starts `tilecast serve` (one worker) on PostgreSQL: DATABASE_URL when set (use a throwaway database),
otherwise an embedded server in a temporary data directory, started here so that the bare app reaches the
same database. Creates a key, sends synthetic events through `/batch/` (the generator of `tilecast demo`),
creates a dashboard with 20 insights (20 different trends queries, POST /insights/ with `dashboards`), warms
the cache once (`?refresh=blocking`), then measures GET of that dashboard without `refresh` (every result
from the cache) with 32 concurrent keep-alive clients for 20 s.

In the same run it starts `bare_tiles_app.py` (Starlette + asyncpg, one uvicorn worker, no ORM, no
validation, no auth, no writes) on the same database, checks that its body matches Tilecast's, and measures
it the same way. Prints both side by side, with the CPU each server process and PostgreSQL spent per
request. `--profile N` then measures the CPU of each phase of N retrieves on an in-process client and
profiles N more (cProfile).

    python benchmarks/bench_dashboard_tiles.py [--events 50000] [--concurrency 32] [--seconds 20]
        [--profile 200]
"""

import argparse
import asyncio
import cProfile
import io
import json
import os
import pstats
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent.parent))
from harness import TILECAST, create_key, free_port, machine_line, start_database, wait_ready
from loadgen import Result, run

from app.demo import synthetic_events

HERE = Path(__file__).parent


def _trends(
    event: str,
    math: str = "total",
    *,
    date_from: str = "-30d",
    interval: str = "day",
    display: str | None = None,
    breakdown: str | None = None,
    prop: str | None = None,
    compare: bool = False,
) -> dict[str, Any]:
    series: dict[str, Any] = {"kind": "EventsNode", "event": event, "math": math}
    if prop:
        series["math_property"] = prop
    source: dict[str, Any] = {
        "kind": "TrendsQuery",
        "series": [series],
        "interval": interval,
        "dateRange": {"date_from": date_from},
    }
    if display:
        source["trendsFilter"] = {"display": display}
    if breakdown:
        source["breakdownFilter"] = {"breakdown": breakdown, "breakdown_type": "event"}
    if compare:
        source["compareFilter"] = {"compare": True}
    return {"kind": "InsightVizNode", "source": source}


# Twenty different queries: maths, intervals, ranges, displays, breakdowns, comparisons.
QUERIES: list[tuple[str, dict[str, Any]]] = [
    ("Pageviews per day", _trends("$pageview")),
    ("Pageviews per day, 90 days", _trends("$pageview", date_from="-90d")),
    ("Pageviews per week", _trends("$pageview", date_from="-90d", interval="week", display="ActionsBar")),
    ("Pageviews per hour", _trends("$pageview", date_from="-3d", interval="hour")),
    ("DAU", _trends("$pageview", "dau")),
    ("WAU", _trends("$pageview", "weekly_active", date_from="-60d")),
    ("MAU", _trends("$pageview", "monthly_active", date_from="-90d")),
    ("Sessions per week", _trends("$pageview", "unique_session", date_from="-90d", interval="week")),
    ("Pageviews by browser", _trends("$pageview", display="ActionsBarValue", breakdown="$browser")),
    ("Pageviews by path", _trends("$pageview", display="ActionsTable", breakdown="$pathname")),
    ("Pageviews by OS per day", _trends("$pageview", breakdown="$os")),
    (
        "Pageviews by country",
        _trends("$pageview", date_from="-90d", display="WorldMap", breakdown="$geoip_country_code"),
    ),
    ("Sign-ups per day", _trends("signed_up", compare=True)),
    (
        "Sign-ups by country",
        _trends("signed_up", date_from="-90d", display="ActionsPie", breakdown="$geoip_country_code"),
    ),
    ("Sign-ups, cumulative", _trends("signed_up", date_from="-90d", display="ActionsLineGraphCumulative")),
    ("Revenue", _trends("purchase", "sum", prop="revenue", display="BoldNumber", compare=True)),
    (
        "Average purchase per week",
        _trends("purchase", "avg", prop="revenue", date_from="-90d", interval="week"),
    ),
    (
        "Median purchase",
        _trends("purchase", "median", prop="revenue", date_from="-90d", display="BoldNumber"),
    ),
    (
        "Largest purchase per month",
        _trends("purchase", "max", prop="revenue", date_from="-90d", interval="month"),
    ),
    ("Purchases by plan", _trends("purchase", date_from="-90d", display="ActionsBarValue", breakdown="plan")),
]


def ingest(base: str, token: str, count: int) -> None:
    """Send `count` synthetic events through /batch/ in bodies of 1,000."""
    events = [
        {
            "event": e.event,
            "distinct_id": e.distinct_id,
            "uuid": str(e.uuid),
            "timestamp": e.timestamp.isoformat(),
            "properties": json.loads(e.properties_json),
        }
        for e in synthetic_events(count, datetime.now(UTC))
    ]
    with httpx.Client(base_url=base, timeout=120) as http:
        for start in range(0, len(events), 1000):
            r = http.post("/batch/", json={"api_key": token, "batch": events[start : start + 1000]})
            r.raise_for_status()


def build_dashboard(base: str, team: int, headers: dict[str, str]) -> int:
    with httpx.Client(base_url=f"{base}/api/environments/{team}", headers=headers, timeout=60) as http:
        made = http.post("/dashboards/", json={"name": "Twenty tiles", "tags": ["bench"]})
        made.raise_for_status()
        dashboard_id = int(made.json()["id"])
        for i, (name, query) in enumerate(QUERIES):
            body = {"name": name, "query": query, "dashboards": [dashboard_id], "description": f"query {i}"}
            http.post("/insights/", json=body).raise_for_status()
    return dashboard_id


def _shape(value: Any) -> Any:
    """Keys, nested, without values: to compare two bodies' structure."""
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shape(v) for v in value[:1]]
    return None


def differences(a: Any, b: Any, path: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = [f"{path}.{k}: only in Tilecast" for k in a.keys() - b.keys()]
        out += [f"{path}.{k}: only in bare" for k in b.keys() - a.keys()]
        for k in a.keys() & b.keys():
            out += differences(a[k], b[k], f"{path}.{k}")
        return out
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{path}: {len(a)} vs {len(b)} items"]
        return [
            d for i, (x, y) in enumerate(zip(a, b, strict=True)) for d in differences(x, y, f"{path}[{i}]")
        ]
    return [] if a == b else [f"{path}: {a!r:.60} vs {b!r:.60}"]


def compare_bodies(tilecast: bytes, bare: bytes) -> None:
    t, b = json.loads(tilecast), json.loads(bare)
    print(f"body: Tilecast {len(tilecast):,} bytes, bare app {len(bare):,} bytes")
    print(
        f"same keys: dashboard {_shape({**t, 'tiles': None}) == _shape({**b, 'tiles': None})}, "
        f"tiles {[_shape(x) for x in t['tiles']] == [_shape(x) for x in b['tiles']]}"
    )
    # The caller's access time is stamped per request by both.
    for body in (t, b):
        body.pop("last_accessed_at")
        body.pop("last_viewed_at")
    diffs = differences(t, b)
    print(f"values differing (besides the access times): {len(diffs)}")
    for line in diffs[:10]:
        print(f"  {line}")


def start_bare(port: int, database_url: str, work: Path) -> subprocess.Popen[bytes]:
    env = dict(os.environ, BARE_DATABASE_URL=database_url)
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "--app-dir",
            str(HERE),
            "bare_tiles_app:app",
            "--port",
            str(port),
            "--workers",
            "1",
            "--no-access-log",
            "--log-level",
            "warning",
        ],
        env=env,
        cwd=work,
    )


def wait_for(url: str, headers: dict[str, str], proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit("bare app exited during start-up")
        try:
            if httpx.get(url, headers=headers, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit("bare app did not become ready")


def _cpu(processes: list[psutil.Process]) -> dict[int, float]:
    seconds = {}
    for proc in processes:
        try:
            times = proc.cpu_times()
            seconds[proc.pid] = times.user + times.system
        except psutil.NoSuchProcess:
            pass
    return seconds


def _database_processes(pgdata: Path | None) -> list[psutil.Process]:
    """The embedded server's postmaster and its children (backends, writers), when it is ours to watch."""
    if pgdata is None or not (pgdata / "postmaster.pid").exists():
        return []
    postmaster = psutil.Process(int((pgdata / "postmaster.pid").read_text().split()[0]))
    return [postmaster, *postmaster.children(recursive=True)]


def measure(
    name: str,
    url: str,
    headers: dict[str, str],
    concurrency: int,
    seconds: float,
    server: subprocess.Popen[bytes],
    pgdata: Path | None,
) -> tuple[Result, str]:
    """The load run, and the CPU the server process and PostgreSQL spent per request during it."""
    asyncio.run(run("warm-up", url, headers, concurrency, 2))
    watched = [psutil.Process(server.pid)]
    before_app, before_db = _cpu(watched), _cpu(_database_processes(pgdata))
    result = asyncio.run(run(name, url, headers, concurrency, seconds))
    after_app, after_db = _cpu(watched), _cpu(_database_processes(pgdata))
    per_request = 1000 / max(result.requests, 1)
    app_ms = sum(after_app.values()) - sum(before_app.values())
    cost = f"CPU per request: server process {app_ms * per_request:.1f} ms"
    if after_db:
        db_ms = sum(t - before_db.get(pid, 0.0) for pid, t in after_db.items())
        cost += f", PostgreSQL {db_ms * per_request:.1f} ms"
    return result, cost


# Where a retrieve's CPU goes: (module, function, label). The CPU time of this thread inside each call, with
# requests sent one at a time, is that call's own cost: nothing else runs while it waits on PostgreSQL.
PHASES = [
    ("app.auth.repository", "get_key_with_user", "auth: key and user (1 SELECT)"),
    ("app.auth.repository", "get_team_with_membership", "auth: team and membership (1 SELECT)"),
    ("app.dashboards.repository", "get_dashboard", "dashboard row (1 SELECT)"),
    ("app.dashboards.repository", "record_view", "record the view (1 write)"),
    ("app.dashboards.repository", "load_tiles", "tiles: rows to ORM objects (2 SELECTs)"),
    ("app.query.cache", "read_many", "tiles: cached results (1 SELECT, JSON decode)"),
    ("app.dashboards.tiles", "insight_schema", "tiles: Insight models"),
    ("app.dashboards.service", "render_tiles", "tiles: all of render_tiles"),
    ("fastapi.routing", "serialize_response", "response: validation and JSON"),
]


def _instrument(totals: dict[str, float]) -> None:
    import functools
    import importlib
    import inspect

    for module_name, name, label in PHASES:
        module = importlib.import_module(module_name)
        original = getattr(module, name, None)
        if original is None:
            continue  # renamed since: that phase is not reported

        def timed(original: Any = original, label: str = label) -> Any:
            if inspect.iscoroutinefunction(original):

                @functools.wraps(original)
                async def wrapper(*args: Any, **kwargs: Any) -> Any:
                    started = time.thread_time()
                    try:
                        return await original(*args, **kwargs)
                    finally:
                        totals[label] = totals.get(label, 0.0) + time.thread_time() - started

                return wrapper

            @functools.wraps(original)
            def sync_wrapper(*args: Any, **kwargs: Any) -> Any:
                started = time.thread_time()
                try:
                    return original(*args, **kwargs)
                finally:
                    totals[label] = totals.get(label, 0.0) + time.thread_time() - started

            return sync_wrapper

        setattr(module, name, timed())


async def profile(database_url: str, path: str, headers: dict[str, str], requests: int) -> str:
    """On an in-process (ASGI) client, after a warm-up: CPU per phase of `requests` sequential retrieves, then
    cProfile over as many more."""
    os.environ["DATABASE_URL"] = database_url
    os.environ["TILECAST_LOG_LEVEL"] = "WARNING"
    from app.config import get_settings
    from app.main import create_app

    get_settings.cache_clear()
    phases: dict[str, float] = {}
    _instrument(phases)
    app = create_app()
    out = io.StringIO()
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench", headers=headers) as http:
            for _ in range(20):
                (await http.get(path)).raise_for_status()
            phases.clear()
            cpu = time.thread_time()
            for _ in range(requests):
                await http.get(path)
            cpu = (time.thread_time() - cpu) / requests * 1000
            out.write(
                f"CPU per retrieve, in-process, one at a time: {cpu:.2f} ms (the test client's included)\n"
            )
            for label, seconds in sorted(phases.items(), key=lambda item: -item[1]):
                out.write(f"  {label:<48} {seconds / requests * 1000:6.2f} ms\n")

            profiler = cProfile.Profile()
            started = time.perf_counter()
            profiler.enable()
            for _ in range(requests):
                await http.get(path)
            profiler.disable()
            elapsed = time.perf_counter() - started
    out.write(f"under cProfile: {elapsed / requests * 1000:.2f} ms per retrieve\n")
    stats = pstats.Stats(profiler, stream=out)
    out.write("own time by package, ms per request (client side: httpx; waits: select/epoll):\n")
    for package, seconds in sorted(_by_package(stats).items(), key=lambda item: -item[1])[:14]:
        out.write(f"  {package:<28} {seconds / requests * 1000:6.2f}\n")
    stats.strip_dirs().sort_stats("tottime").print_stats(30)
    return out.getvalue()


def _by_package(stats: pstats.Stats) -> dict[str, float]:
    totals: dict[str, float] = {}
    for (filename, _, function), (_, _, own, _, _) in stats.stats.items():  # type: ignore[attr-defined]
        if filename == "~":
            package = function.split("'")[1].split(".")[0] if "'" in function else function
            package = f"builtin {package}"
        elif "site-packages/" in filename:
            package = filename.split("site-packages/")[1].split("/")[0]
        elif "/app/" in filename:
            package = "app." + filename.split("/app/")[1].split("/")[0].removesuffix(".py")
        else:
            package = "stdlib " + Path(filename).parent.name + "/" + Path(filename).stem
        totals[package] = totals.get(package, 0.0) + own
    return totals


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--profile", type=int, default=0, help="profile this many in-process retrieves")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="tilecast-bench-"))
    database_url, env, embedded = start_database(work)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        info = create_key(env, work)
        headers = {"Authorization": f"Bearer {info['key']}"}
        team = info["team_id"]

        port = free_port()
        base = f"http://127.0.0.1:{port}"
        procs.append(
            subprocess.Popen(
                [TILECAST, "serve", "--port", str(port), "--workers", "1"],
                env=env,
                cwd=work,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        wait_ready(base, procs[0])
        t0 = time.perf_counter()
        ingest(base, info["project_api_key"], args.events)
        print(f"ingested {args.events:,} events in {time.perf_counter() - t0:.1f} s")
        dashboard_id = build_dashboard(base, team, headers)
        path = f"/api/environments/{team}/dashboards/{dashboard_id}/"

        t0 = time.perf_counter()
        warmed = httpx.get(f"{base}{path}", params={"refresh": "blocking"}, headers=headers, timeout=300)
        warmed.raise_for_status()
        tiles = warmed.json()["tiles"]
        failed = [t["insight"]["name"] for t in tiles if t.get("error") or t["insight"]["result"] is None]
        print(f"warmed {len(tiles)} tiles in {time.perf_counter() - t0:.1f} s; failed: {failed or 'none'}")
        tilecast_body = httpx.get(f"{base}{path}", headers=headers, timeout=30)
        tilecast_body.raise_for_status()
        assert all(t["is_cached"] for t in tilecast_body.json()["tiles"]), "a tile was not cached"

        bare_port = free_port()
        bare_base = f"http://127.0.0.1:{bare_port}"
        procs.append(start_bare(bare_port, database_url, work))
        wait_for(f"{bare_base}{path}", headers, procs[1])
        compare_bodies(tilecast_body.content, httpx.get(f"{bare_base}{path}", timeout=30).content)

        print(f"{machine_line(embedded is not None)}; {args.concurrency} clients, {args.seconds:.0f} s each")
        pgdata = embedded.pgdata if embedded is not None else None
        measured = [
            measure(name, url, headers, args.concurrency, args.seconds, proc, pgdata)
            for name, url, proc in (
                ("Tilecast retrieve (cached)", f"{base}{path}", procs[0]),
                ("bare Starlette + asyncpg", f"{bare_base}{path}", procs[1]),
            )
        ]
        for result, cost in measured:
            print(result.line())
            print(f"{'':<28} {cost}")
        results = [result for result, _ in measured]
        tilecast_rps, bare_rps = (r.requests / r.seconds for r in results)
        print(f"Tilecast serves {tilecast_rps / bare_rps:.0%} of the bare app's requests/s")

        for proc in procs:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
        procs = []
        if args.profile:
            print(asyncio.run(profile(database_url, path, headers, args.profile)))
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
        if embedded is not None:
            embedded.stop()


if __name__ == "__main__":
    main()
