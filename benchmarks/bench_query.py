"""An in-process profile of a cached `POST /query/` (the read path's third endpoint, see bench_read_path.py).

Starts `tilecast serve` (one worker) on PostgreSQL: DATABASE_URL when set (use a throwaway database),
otherwise an embedded server in a temporary data directory. Creates a key, sends synthetic events through
`/batch/`, warms bench_read_path.py's query once (`refresh: force_blocking`), stops the server, then measures,
on an in-process client (httpx.ASGITransport), the CPU of N cached queries sent one at a time (best of
`--runs` runs: the machine may be shared) and of each phase, and profiles N more (cProfile).

    python benchmarks/bench_query.py [--events 5000] [--profile 300] [--runs 5]
"""

import argparse
import asyncio
import cProfile
import importlib
import io
import os
import pstats
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import orjson

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent.parent))
from bench_dashboard_tiles import _by_package, _instrument, ingest
from bench_read_path import QUERY
from harness import create_key, database, machine_line, tilecast_server, timed

# Where a cached query's CPU goes: (module, function, label), as bench_dashboard_tiles.py measures them.
PHASES = [
    ("app.auth.repository", "get_principal_for_team", "auth: key, user, team, membership (1 SELECT)"),
    ("app.auth.principal_cache.PrincipalCache", "get", "auth: the principal remembered (no statement)"),
    ("app.query.cache", "read", "cache: the row (1 SELECT)"),
    ("app.query.cache", "cache_key", "cache: canonical JSON and hash"),
    ("app.query.service", "run_query", "service: all of run_query"),
    ("fastapi.routing", "run_endpoint_function", "handler: run_query, the response built"),
    ("fastapi.routing", "serialize_response", "response: validation and JSON"),
    ("fastapi.routing", "request_body_to_args", "request: body to arguments"),
    ("fastapi.routing", "solve_dependencies", "request: all dependencies and the body"),
    ("fastapi.routing", "request_body_to_args", "request: body validated (QueryRequest)"),
    ("sqlalchemy.ext.asyncio.session.AsyncSession", "commit", "session: COMMIT (1 round trip)"),
    (
        "sqlalchemy.dialects.postgresql.asyncpg.AsyncAdapt_asyncpg_connection",
        "_start_transaction",
        "session: BEGIN (1 round trip)",
    ),
    ("app.query.schemas.QueryResponse", "json_response", "response: body built (QueryResponse, orjson)"),
]


def _instrument_one(owner: Any, name: str, label: str, totals: dict[str, float]) -> None:
    setattr(owner, name, timed(getattr(owner, name), label, totals))


SERVER = "server: the whole ASGI app (client excluded)"


def _timed_app(app: Any, totals: dict[str, float]) -> Any:
    """The app, its CPU counted: with requests sent one at a time, the client is idle while the app runs."""

    async def served(scope: Any, receive: Any, send: Any) -> None:
        started = time.thread_time()
        try:
            await app(scope, receive, send)
        finally:
            totals[SERVER] = totals.get(SERVER, 0.0) + time.thread_time() - started

    return served


async def profile(database_url: str, path: str, headers: dict[str, str], requests: int, runs: int) -> str:
    os.environ["DATABASE_URL"] = database_url
    os.environ["TILECAST_LOG_LEVEL"] = "WARNING"
    import bench_dashboard_tiles

    from app.config import get_settings
    from app.main import create_app

    get_settings.cache_clear()
    print(f"app from {Path(importlib.import_module('app').__file__ or '').parent}", file=sys.stderr)
    phases: dict[str, float] = {}
    for module_name, name, label in PHASES:
        # `module.Class`: the class's method, timed the same way.
        owner_name, _, cls = module_name.rpartition(".")
        if cls[:1].isupper():
            try:
                owner = getattr(importlib.import_module(owner_name), cls)
            except (ImportError, AttributeError):
                continue  # not in this version: that phase is not reported
            _instrument_one(owner, name, label, phases)
        else:
            bench_dashboard_tiles.PHASES[:] = [(module_name, name, label)]
            _instrument(phases)
    app = create_app()
    served = _timed_app(app, phases)
    body = orjson.dumps({"query": QUERY})
    out = io.StringIO()
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=served)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench", headers=headers) as http:

            async def send() -> None:
                r = await http.post(path, content=body, headers={"content-type": "application/json"})
                assert r.status_code == 200 and r.json()["is_cached"], r.text

            for _ in range(30):
                await send()
            best: tuple[float, dict[str, float]] | None = None
            for _ in range(runs):
                phases.clear()
                cpu = time.thread_time()
                for _ in range(requests):
                    await send()
                cpu = (time.thread_time() - cpu) / requests * 1000
                if best is None or cpu < best[0]:
                    best = (cpu, dict(phases))
            assert best is not None
            # The client's own share: the same number of requests to a route that answers at once.
            cpu_client = time.thread_time()
            for _ in range(requests):
                await http.get("/_health_none_")
            client = (time.thread_time() - cpu_client) / requests * 1000
            out.write(
                f"CPU per cached /query/, in-process, one at a time, best of {runs}: {best[0]:.2f} ms "
                f"(the test client's included; a 404 round trip costs {client:.2f} ms)\n"
            )
            for label, seconds in sorted(best[1].items(), key=lambda item: -item[1]):
                out.write(f"  {label:<48} {seconds / requests * 1000:6.3f} ms\n")

            profiler = cProfile.Profile()
            profiler.enable()
            for _ in range(requests):
                await send()
            profiler.disable()
    stats = pstats.Stats(profiler, stream=out)
    out.write("own time by package, ms per request:\n")
    for package, seconds in sorted(_by_package(stats).items(), key=lambda item: -item[1])[:14]:
        out.write(f"  {package:<28} {seconds / requests * 1000:6.3f}\n")
    stats.sort_stats("cumulative").print_stats("/(app|fastapi|starlette|sqlalchemy|asyncpg)/", 70)
    stats.strip_dirs().sort_stats("tottime").print_stats(25)
    return out.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=5_000)
    parser.add_argument("--profile", type=int, default=300)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="tilecast-bench-"))
    with database(work) as (database_url, env, embedded):
        info = create_key(env, work)
        headers = {"Authorization": f"Bearer {info['key']}"}
        team = info["team_id"]
        path = f"/api/environments/{team}/query/"
        with tilecast_server(env, work) as base:
            ingest(base, info["project_api_key"], args.events)
            warmed = httpx.post(
                f"{base}{path}",
                json={"query": QUERY, "refresh": "force_blocking"},
                headers=headers,
                timeout=300,
            )
            warmed.raise_for_status()
        print(machine_line(embedded))
        print(asyncio.run(profile(database_url, path, headers, args.profile, args.runs)))


if __name__ == "__main__":
    main()
