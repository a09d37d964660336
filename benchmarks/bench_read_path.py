"""Tilecast's read path against the stack's own limit, in one run: retrieve (20 cached tiles), list (100
dashboards) and a cached `POST /query/`, each next to `bare_app.py` (Starlette + asyncpg + orjson serving the
very same body from the same rows). Load from `wrk` (`wrk.py`, `wrk_report.lua`).

Starts PostgreSQL (DATABASE_URL when set: use a throwaway database; else an embedded server in a temporary
directory, started here so the bare app reaches it too), `tilecast serve` once per `--workers` count (1 and 2
by default, all running for the whole run), and the bare app (one uvicorn worker). Sets up, through the API:
synthetic events (`/batch/`), a dashboard of 20 insights warmed with `?refresh=blocking`, a second team with
100 dashboards (so that retrieving the first writes nothing the list shows), and one trends query warmed with
`refresh: force_blocking`. Checks that the bare app's body equals Tilecast's (parsed JSON, for every Tilecast
server; only the retrieve's top-level `last_accessed_at` and `last_viewed_at` are left out: Tilecast stamps
them per request), warms every target for 2 s, then runs `--rounds` rounds: in each, every endpoint against
every target for `--seconds`, the targets' order reversed every other round. Prints each run, then a table of
the medians: requests/s, p50, p99, the ratio to the bare app, and whether the target (≥ 50% of the bare
app's requests/s, p99 ≤ 2x the bare app's) is met. Every non-2xx answer counts as an error.

    python benchmarks/bench_read_path.py [--rounds 3] [--seconds 10] [--workers 1,2] [--events 50000]
        [--connections 32] [--threads 2] [--only retrieve,list,query]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent.parent))
import profiler
import wrk
from bench_dashboard_tiles import build_dashboard, differences, ingest
from harness import (
    cpu_seconds,
    create_key,
    free_port,
    machine_line,
    server_processes,
    start_database,
    tilecast_process,
)

HERE = Path(__file__).parent
# Queried through `/query/` (not one of the dashboard's: its cache row is an ad-hoc one).
QUERY = {
    "kind": "TrendsQuery",
    "series": [{"kind": "EventsNode", "event": "$pageview", "math": "total"}],
    "interval": "day",
    "dateRange": {"date_from": "-30d"},
    "breakdownFilter": {"breakdown": "$browser", "breakdown_type": "event"},
}
TARGET_RATE, TARGET_P99 = 0.5, 2.0


@dataclass
class Endpoint:
    name: str
    path: str
    headers: dict[str, str]
    method: str = "GET"
    body: bytes | None = None
    volatile: tuple[str, ...] = ()  # top-level fields stamped per request, left out of the comparison


@dataclass
class Target:
    name: str
    base: str
    proc: subprocess.Popen[bytes]
    bare: bool = False
    runs: dict[str, list[wrk.WrkResult]] = field(default_factory=dict)
    cpu_ms: dict[str, list[float]] = field(default_factory=dict)


@contextmanager
def bare_app(database_url: str, cwd: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    port = free_port()
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "uvicorn", "--app-dir", str(HERE), "bare_app:app"),
            *("--port", str(port), "--workers", "1", "--no-access-log", "--log-level", "warning"),
        ],
        env=dict(os.environ, BARE_DATABASE_URL=database_url),
        cwd=cwd,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise SystemExit("bare app exited during start-up")
            try:
                httpx.get(f"{base}/api/environments/0/dashboards/", timeout=2)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise SystemExit("bare app did not become ready") from None
                time.sleep(0.2)
        yield base, proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def fetch(base: str, ep: Endpoint) -> httpx.Response:
    r = httpx.request(ep.method, f"{base}{ep.path}", headers=ep.headers, content=ep.body, timeout=60)
    r.raise_for_status()
    return r


def verify(ep: Endpoint, tilecast: Target, bare: Target) -> str:
    """The bodies must be equal as parsed JSON (apart from `ep.volatile`); exits otherwise."""
    t_raw, b_raw = fetch(tilecast.base, ep).content, fetch(bare.base, ep).content
    t, b = json.loads(t_raw), json.loads(b_raw)
    for body in (t, b):
        for name in ep.volatile:
            body.pop(name, None)
    diffs = differences(t, b)
    if diffs:
        print(f"{ep.name}: {tilecast.name} and the bare app differ in {len(diffs)} values:", file=sys.stderr)
        for line in diffs[:20]:
            print(f"  {line}", file=sys.stderr)
        raise SystemExit(1)
    ignoring = f", ignoring {', '.join(ep.volatile)}" if ep.volatile else ""
    return f"{ep.name}: {tilecast.name} {len(t_raw):,} bytes, bare {len(b_raw):,} bytes: same JSON{ignoring}"


def measure(target: Target, ep: Endpoint, args: argparse.Namespace, seconds: float) -> wrk.WrkResult:
    watched = server_processes(target.proc)
    before = cpu_seconds(watched)
    result = wrk.run(
        f"{ep.name}: {target.name}",
        f"{target.base}{ep.path}",
        seconds=seconds,
        headers=ep.headers,
        method=ep.method,
        bodies=[ep.body] if ep.body is not None else (),
        threads=args.threads,
        connections=args.connections,
    )
    used = cpu_seconds(watched) - before
    target.cpu_ms.setdefault(ep.name, []).append(used * 1000 / max(result.requests, 1))
    return result


def setup(base: str, env: dict[str, str], work: Path, events: int, dashboards: int) -> list[Endpoint]:
    info = create_key(env, work)
    headers = {"Authorization": f"Bearer {info['key']}"}
    team = info["team_id"]
    lister = create_key(env, work, email="list@example.com")
    if lister["team_id"] == team:
        raise SystemExit("expected a second team for the list")
    list_headers = {"Authorization": f"Bearer {lister['key']}"}

    t0 = time.perf_counter()
    ingest(base, info["project_api_key"], events)
    print(f"ingested {events:,} events in {time.perf_counter() - t0:.1f} s")
    dashboard_id = build_dashboard(base, team, headers)
    retrieve = f"/api/environments/{team}/dashboards/{dashboard_id}/"
    t0 = time.perf_counter()
    warmed = httpx.get(f"{base}{retrieve}", params={"refresh": "blocking"}, headers=headers, timeout=300)
    warmed.raise_for_status()
    failed = [t["insight"]["name"] for t in warmed.json()["tiles"] if t["insight"]["result"] is None]
    print(f"warmed 20 tiles in {time.perf_counter() - t0:.1f} s; failed: {failed or 'none'}")

    with httpx.Client(base_url=f"{base}/api/environments/{lister['team_id']}", headers=list_headers) as http:
        for i in range(dashboards):
            body = {"name": f"Dashboard {i:04d}", "pinned": i % 10 == 0, "tags": [f"t{i % 7}", "bench"]}
            http.post("/dashboards/", json={**body, "description": "seeded"}).raise_for_status()

    query_path = f"/api/environments/{team}/query/"
    forced = httpx.post(
        f"{base}{query_path}",
        json={"query": QUERY, "refresh": "force_blocking"},
        headers=headers,
        timeout=300,
    )
    forced.raise_for_status()
    query_body = json.dumps({"query": QUERY}, separators=(",", ":")).encode()
    json_headers = {**headers, "Content-Type": "application/json"}
    cached = httpx.post(f"{base}{query_path}", content=query_body, headers=json_headers, timeout=60)
    cached.raise_for_status()
    if not cached.json()["is_cached"]:
        raise SystemExit("the /query/ result was not served from the cache")
    return [
        Endpoint("retrieve", retrieve, headers, volatile=("last_accessed_at", "last_viewed_at")),
        Endpoint(
            "list", f"/api/environments/{lister['team_id']}/dashboards/?limit={dashboards}", list_headers
        ),
        Endpoint(
            "query",
            query_path,
            json_headers,
            method="POST",
            body=query_body,
        ),
    ]


def _ms(value: float) -> str:
    return f"{value:,.0f} ms" if value >= 100 else f"{value:.1f} ms"


def report(endpoints: list[Endpoint], targets: list[Target]) -> None:
    bare = next(t for t in targets if t.bare)
    print()
    print(
        "| endpoint | Tilecast | req/s | p50 | p99 | CPU/req (server) "
        "| bare req/s | p50 | p99 | CPU/req (server) | rate ratio | p99 ratio | target met | errors |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|")
    for ep in endpoints:
        b = wrk.median("bare", bare.runs[ep.name])
        b_cpu = sorted(bare.cpu_ms[ep.name])[len(bare.cpu_ms[ep.name]) // 2]
        for t in targets:
            if t.bare:
                continue
            r = wrk.median(t.name, t.runs[ep.name])
            cpu = sorted(t.cpu_ms[ep.name])[len(t.cpu_ms[ep.name]) // 2]
            rate, p99 = r.rps / b.rps if b.rps else 0.0, r.p99_ms / b.p99_ms if b.p99_ms else 0.0
            met = "yes" if rate >= TARGET_RATE and p99 <= TARGET_P99 else "no"
            print(
                f"| {ep.name} | {t.name} | {r.rps:,.0f} | {_ms(r.p50_ms)} | {_ms(r.p99_ms)} | {cpu:.1f} ms "
                f"| {b.rps:,.0f} | {_ms(b.p50_ms)} | {_ms(b.p99_ms)} | {b_cpu:.1f} ms "
                f"| {rate:.0%} | {p99:.1f}x | {met} | {r.errors} / {b.errors} |"
            )
    print(
        f"medians of each target's runs; target: ≥ {TARGET_RATE:.0%} of the bare app's requests/s and "
        f"p99 ≤ {TARGET_P99:g}x its p99. CPU/req: the server's processes (all workers), median of the runs. "
        "errors: non-2xx and socket errors, Tilecast / bare, all runs."
    )
    spent = sum(r.client_cpu_s for t in targets for runs in t.runs.values() for r in runs)
    wall = sum(r.seconds for t in targets for runs in t.runs.values() for r in runs)
    print(f"wrk itself used {spent / wall:.2f} CPU cores on average while measuring (of {os.cpu_count()})")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--workers", default="1,2", help="Tilecast worker counts, e.g. 1 or 1,2")
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--dashboards", type=int, default=100, help="in the list")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--only", default="retrieve,list,query", help="endpoints to measure")
    parser.add_argument(
        "--py-spy",
        type=Path,
        metavar="DIR",
        help="sample the 1-worker server with py-spy during each endpoint's first round; writes "
        "DIR/<endpoint>.txt (collapsed stacks) and prints the functions that take the most samples",
    )
    args = parser.parse_args()
    wrk.require_wrk()
    workers = [int(w) for w in args.workers.split(",")]
    only = set(args.only.split(","))

    work = Path(tempfile.mkdtemp(prefix="tilecast-bench-"))
    database_url, env, embedded = start_database(work)
    try:
        with ExitStack() as stack:
            targets: list[Target] = []
            for n in workers:
                base, proc = stack.enter_context(tilecast_process(env, work, n))
                targets.append(Target(f"{n} worker{'s' if n > 1 else ''}", base, proc))
            endpoints = setup(targets[0].base, env, work, args.events, args.dashboards)
            endpoints = [ep for ep in endpoints if ep.name in only]
            base, proc = stack.enter_context(bare_app(database_url, work))
            targets.append(Target("bare", base, proc, bare=True))

            for ep in endpoints:
                for t in targets[:-1]:
                    print(verify(ep, t, targets[-1]))
            print(
                f"{machine_line(embedded is not None)}; wrk -t{args.threads} -c{args.connections}, "
                f"{args.rounds} rounds of {args.seconds:.0f} s per endpoint and target"
            )
            for ep in endpoints:
                for t in targets:
                    measure(t, ep, args, 2)
                    t.cpu_ms.pop(ep.name)
            for r in range(args.rounds):
                for ep in endpoints:
                    for t in targets if r % 2 == 0 else reversed(targets):
                        sampled = args.py_spy and r == 0 and t.name == "1 worker"
                        with profiler.sampling(t.proc.pid, args.py_spy, ep.name, args.seconds, sampled):
                            result = measure(t, ep, args, args.seconds)
                        t.runs.setdefault(ep.name, []).append(result)
                        print(f"round {r + 1}  {result.line()}", flush=True)
            report(endpoints, targets)
    finally:
        if embedded is not None:
            embedded.stop()


if __name__ == "__main__":
    main()
