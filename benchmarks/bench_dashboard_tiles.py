"""A dashboard of 20 insight tiles served from the cache: its setup (shared with bench_read_path.py, which
measures it under wrk next to the bare app) and an in-process profile of its retrieve, of the retrieve of a
dashboard of 100 tiles (`--big`: the cost of one more tile) and of a list of 100 dashboards.

Starts `tilecast serve` (one worker) on PostgreSQL: DATABASE_URL when set (use a throwaway database),
otherwise an embedded server in a temporary data directory. Creates a key, sends synthetic events through
`/batch/` (the generator of `tilecast demo`), creates a dashboard with 20 insights (20 different trends
queries, POST /insights/ with `dashboards`), warms the cache once (`?refresh=blocking`), stops the server,
then measures the CPU of each phase of N retrieves on an in-process client and profiles N more (cProfile).

    python benchmarks/bench_dashboard_tiles.py [--events 50000] [--profile 300] [--big 100]
"""

import argparse
import asyncio
import cProfile
import io
import json
import os
import pstats
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent.parent))
from harness import create_key, database, machine_line, tilecast_server, timed

from app.demo import synthetic_events


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


def build_dashboard(base: str, team: int, headers: dict[str, str], tiles: int = len(QUERIES)) -> int:
    """A dashboard of `tiles` insights: the 20 queries of `QUERIES` in turn (past 20, tiles share results)."""
    with httpx.Client(base_url=f"{base}/api/environments/{team}", headers=headers, timeout=60) as http:
        made = http.post("/dashboards/", json={"name": f"{tiles} tiles", "tags": ["bench"]})
        made.raise_for_status()
        dashboard_id = int(made.json()["id"])
        for i in range(tiles):
            name, query = QUERIES[i % len(QUERIES)]
            body = {"name": name, "query": query, "dashboards": [dashboard_id], "description": f"query {i}"}
            http.post("/insights/", json=body).raise_for_status()
    return dashboard_id


def build_dashboards(base: str, team: int, headers: dict[str, str], count: int) -> None:
    """`count` more dashboards (tagged, some pinned, a few restricted): the profiled list shows them all."""
    with httpx.Client(base_url=f"{base}/api/environments/{team}", headers=headers, timeout=60) as http:
        for i in range(count):
            body = {
                "name": f"Dashboard {i:03}",
                "description": f"number {i}",
                "pinned": i % 10 == 0,
                "tags": ["bench", f"group-{i % 5}"],
                "restriction_level": 37 if i % 7 == 0 else 21,
            }
            http.post("/dashboards/", json=body).raise_for_status()


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


# Where a retrieve's CPU goes: (module, function, label). The CPU time of this thread inside each call, with
# requests sent one at a time, is that call's own cost: nothing else runs while it waits on PostgreSQL.
PHASES = [
    ("app.auth.repository", "get_key_with_user", "auth: key and user (1 SELECT)"),
    ("app.auth.repository", "get_team_with_membership", "auth: team and membership (1 SELECT)"),
    ("app.dashboards.repository", "get_dashboard", "dashboard row (1 SELECT)"),
    ("app.dashboards.repository", "get_dashboard_record", "dashboard row, plain columns (1 SELECT)"),
    ("app.dashboards.repository", "load_tiles", "tiles: rows (2 SELECTs)"),
    ("app.query.cache", "read_many", "tiles: cached results (1 SELECT, JSON decode)"),
    ("app.dashboards.tiles", "insight_schema", "tiles: Insight models"),
    ("app.dashboards.service", "plan_tiles", "tiles: all of plan_tiles (rows, access, cached results)"),
    ("app.dashboards.service", "tile_of", "tiles: Tile models"),
    ("app.dashboards.router", "dashboard_response", "response: dashboard JSON"),
    ("app.dashboards.repository", "list_dashboards", "list: rows (2 SELECTs)"),
    ("app.dashboards.service", "list_dashboards", "list: all of the service"),
    ("app.dashboards.router", "list_response", "list: response JSON"),
    ("fastapi.routing", "serialize_response", "response: FastAPI validation and JSON"),
]


def _instrument(totals: dict[str, float]) -> None:
    import importlib

    for module_name, name, label in PHASES:
        module = importlib.import_module(module_name)
        original = getattr(module, name, None)
        if original is None:
            continue  # renamed since: that phase is not reported

        setattr(module, name, timed(original, label, totals))


async def profile(database_url: str, paths: dict[str, str], headers: dict[str, str], requests: int) -> str:
    """On an in-process (ASGI) client, after a warm-up, for each path: CPU per phase of `requests` sequential
    requests (best of 3 rounds, per phase), then cProfile over as many more."""
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
            for what, path in paths.items():
                for _ in range(20):
                    (await http.get(path)).raise_for_status()
                best: dict[str, float] = {}
                best_cpu = float("inf")
                for _ in range(3):
                    phases.clear()
                    cpu = time.thread_time()
                    for _ in range(requests):
                        await http.get(path)
                    best_cpu = min(best_cpu, (time.thread_time() - cpu) / requests * 1000)
                    for label, seconds in phases.items():
                        best[label] = min(best.get(label, float("inf")), seconds / requests * 1000)
                out.write(
                    f"CPU per {what}, in-process, one at a time, best of 3: {best_cpu:.2f} ms "
                    "(the test client's included)\n"
                )
                for label, ms in sorted(best.items(), key=lambda item: -item[1]):
                    out.write(f"  {label:<48} {ms:6.2f} ms\n")

                profiler = cProfile.Profile()
                started = time.perf_counter()
                profiler.enable()
                for _ in range(requests):
                    await http.get(path)
                profiler.disable()
                elapsed = time.perf_counter() - started
                out.write(f"under cProfile: {elapsed / requests * 1000:.2f} ms per {what}\n")
                stats = pstats.Stats(profiler, stream=out)
                out.write("own time by package, ms per request (client side: httpx; waits: select/epoll):\n")
                for package, seconds in sorted(_by_package(stats).items(), key=lambda item: -item[1])[:14]:
                    out.write(f"  {package:<28} {seconds / requests * 1000:6.2f}\n")
                stats.strip_dirs().sort_stats("tottime").print_stats(20)
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
    parser.add_argument("--profile", type=int, default=300, help="profile this many in-process retrieves")
    parser.add_argument("--dashboards", type=int, default=100, help="dashboards in the profiled list")
    parser.add_argument(
        "--big", type=int, default=100, help="tiles of a second dashboard, for the cost of one more tile"
    )
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="tilecast-bench-"))
    with database(work) as (database_url, env, embedded):
        info = create_key(env, work)
        headers = {"Authorization": f"Bearer {info['key']}"}
        team = info["team_id"]
        with tilecast_server(env, work) as base:
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
            print(
                f"warmed {len(tiles)} tiles in {time.perf_counter() - t0:.1f} s; failed: {failed or 'none'}"
            )
            big_id = build_dashboard(base, team, headers, args.big)
            big_path = f"/api/environments/{team}/dashboards/{big_id}/"
            params = {"refresh": "blocking"}
            httpx.get(f"{base}{big_path}", params=params, headers=headers, timeout=300).raise_for_status()
            build_dashboards(base, team, headers, args.dashboards - 2)
        print(machine_line(embedded))
        paths = {
            "retrieve": path,
            f"retrieve of {args.big} tiles": big_path,
            "list": f"/api/environments/{team}/dashboards/?limit={args.dashboards}",
        }
        print(asyncio.run(profile(database_url, paths, headers, args.profile)))


if __name__ == "__main__":
    main()
