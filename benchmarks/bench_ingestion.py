"""Capture through `POST /batch/` under wrk, next to a raw `COPY` of the same rows, in one run.

Starts PostgreSQL (DATABASE_URL when set: use a throwaway database; else an embedded server in a temporary
directory), and `tilecast serve` once per `--workers` count (1 and 2 by default). Builds `--bodies` distinct
request bodies of `--batch` events each (~430 bytes an event, shaped like posthog-python's, without `uuid`:
the server gives each event its own, so a body sent again stores new rows), which wrk's script sends in
turn. Then `--rounds` rounds, the order reversed every other round: each Tilecast server takes `--seconds`
of wrk load (events/s: the 2xx answers times `--batch`, checked against the rows stored), and asyncpg's
`copy_records_to_table` COPYs `--copy-rows` rows of the same events (fresh uuids) into `events` on the same
database. Prints each run and a table of the medians: events/s, request p50 and p99, the ratio to COPY's
rows/s, and whether capture reaches 50% of it. Every non-2xx answer counts as an error.

    python benchmarks/bench_ingestion.py [--rounds 3] [--seconds 10] [--workers 1,2] [--batch 100]
        [--person-every N] [--bodies 200] [--copy-rows 200000] [--connections 32] [--threads 2]
        [--baseline CHECKOUT]

With `--baseline`, another checkout of Tilecast (an earlier commit: `git worktree add --detach DIR REV`) is
served too, one server per `--workers` count, with `PYTHONPATH` pointing at it. Its CLI and servers start
first (its migrations, then this checkout's, which extend them: an earlier schema's code runs on the later
one). Its rows come in the same rounds, so the two codes are compared within one run, against the same
COPY.

Earlier figures (the Python load generator, `loadgen.py`, 4 senders; 2026-11-26, x86_64, 2 cores, embedded
PostgreSQL 18.6): 18,900 and 20,900 events/s through /batch/ against 58,100 and 62,300 rows/s for COPY.
"""

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent.parent))
import wrk
from harness import create_key, machine_line, start_database, tilecast_process

from app.db import async_url

BROWSERS = ["Chrome", "Firefox", "Safari", "Edge"]
EVENTS = ["$pageview", "$pageview", "$pageview", "signed up", "order placed", "$autocapture"]
TARGET_RATE = 0.5


def make_event(n: int, now: datetime, person_every: int = 0) -> dict[str, Any]:
    """An event shaped like posthog-python's: a dozen properties and a client timestamp (no uuid). With
    `person_every` N, every Nth event also sets person properties (`$set` and `$set_once`, as an identify
    and posthog-js's first pageview do)."""
    event: dict[str, Any] = {
        "event": EVENTS[n % len(EVENTS)],
        "distinct_id": f"user-{n % 5000}",
        "timestamp": (now - timedelta(seconds=n % 86_400)).isoformat(),
        "properties": {
            "$browser": BROWSERS[n % len(BROWSERS)],
            "$os": "Linux",
            "$current_url": f"https://shop.example.com/products/{n % 997}",
            "$pathname": f"/products/{n % 997}",
            "$lib": "posthog-python",
            "$lib_version": "7.91.1",
            "$geoip_disable": True,
            "plan": "pro" if n % 3 else "free",
            "amount": round((n % 1000) * 1.25, 2),
            "cart": {"items": n % 7, "currency": "EUR"},
        },
    }
    if person_every and n % person_every == 0:
        event["properties"]["$set"] = {"plan": "pro" if n % 3 else "free", "email": f"user-{n % 5000}@x.io"}
        event["properties"]["$set_once"] = {"$initial_referrer": "https://news.example.org/"}
    return event


def build_bodies(
    token: str, bodies: int, batch: int, person_every: int = 0
) -> tuple[list[bytes], list[dict[str, Any]]]:
    now = datetime.now(UTC)
    events = [make_event(n, now, person_every) for n in range(bodies * batch)]
    out = []
    for start in range(0, len(events), batch):
        payload = {
            "api_key": token,
            "batch": events[start : start + batch],
            "historical_migration": False,
            "sent_at": now.isoformat(),
        }
        out.append(json.dumps(payload, separators=(",", ":")).encode())
    return out, events


def _dsn(database_url: str) -> str:
    return async_url(database_url).set(drivername="postgresql").render_as_string(False)


async def copy_rows(database_url: str, team_id: int, events: list[dict[str, Any]], rows: int) -> float:
    """COPY `rows` rows of `events` (cycled, fresh uuids) in one statement; returns its seconds."""
    records = [
        (
            team_id,
            uuid.uuid4(),
            e["event"],
            e["distinct_id"],
            datetime.fromisoformat(e["timestamp"]),
            json.dumps(e["properties"]),
        )
        for e in (events[i % len(events)] for i in range(rows))
    ]
    conn = await asyncpg.connect(_dsn(database_url))
    try:
        start = time.perf_counter()
        await conn.copy_records_to_table(
            "events",
            records=records,
            columns=["team_id", "uuid", "event", "distinct_id", "timestamp", "properties"],
        )
        return time.perf_counter() - start
    finally:
        await conn.close()


async def count_events(database_url: str, team_id: int) -> int:
    conn = await asyncpg.connect(_dsn(database_url))
    try:
        return int(await conn.fetchval("SELECT count(*) FROM events WHERE team_id = $1", team_id))
    finally:
        await conn.close()


def _ms(value: float) -> str:
    return f"{value:,.0f} ms" if value >= 100 else f"{value:.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--workers", default="1,2", help="Tilecast worker counts, e.g. 1 or 1,2")
    parser.add_argument("--batch", type=int, default=100, help="events per request")
    parser.add_argument("--bodies", type=int, default=200, help="distinct request bodies, sent in turn")
    parser.add_argument("--copy-rows", type=int, default=200_000, help="rows per COPY")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--person-every",
        type=int,
        default=0,
        metavar="N",
        help="every Nth event sets person properties ($set and $set_once); 0: none",
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        metavar="CHECKOUT",
        help="also serve this checkout's code, in the same rounds",
    )
    args = parser.parse_args()
    wrk.require_wrk()
    workers = [int(w) for w in args.workers.split(",")]

    work = Path(tempfile.mkdtemp(prefix="tilecast-bench-"))
    database_url, env, embedded = start_database(work)
    try:
        baseline_env = dict(env, PYTHONPATH=str(args.baseline.resolve())) if args.baseline else None
        # The baseline's own CLI first: its schema, then this checkout's servers migrate it further.
        info = create_key(baseline_env or env, work)
        token, team_id = info["project_api_key"], info["team_id"]
        t0 = time.perf_counter()
        bodies, events = build_bodies(token, args.bodies, args.batch, args.person_every)
        print(
            f"built {len(bodies)} bodies of {args.batch} events "
            f"({sum(map(len, bodies)) / len(bodies) / 1024:.1f} KiB each) in {time.perf_counter() - t0:.1f} s"
        )
        with ExitStack() as stack:
            servers = []
            codes = [("", env)]
            if baseline_env is not None:
                codes.insert(0, (" (baseline)", baseline_env))
            for label, code_env in codes:
                for n in workers:
                    base, _ = stack.enter_context(tilecast_process(code_env, work, n))
                    # One request first: the workers' pools and prepared statements are then ready.
                    for body in bodies[:4]:
                        httpx.post(f"{base}/batch/", content=body, timeout=60).raise_for_status()
                    servers.append((f"POST /batch/, {n} worker{'s' if n > 1 else ''}{label}", base))
            print(
                f"{machine_line(embedded is not None)}; wrk -t{args.threads} -c{args.connections}, "
                f"{args.rounds} rounds of {args.seconds:.0f} s per server, COPY of {args.copy_rows:,} rows"
            )
            captured: dict[str, list[tuple[float, wrk.WrkResult]]] = {name: [] for name, _ in servers}
            copied: list[float] = []
            steps = [*servers, ("COPY", "")]
            for r in range(args.rounds):
                for name, base in steps if r % 2 == 0 else reversed(steps):
                    if name == "COPY":
                        seconds = asyncio.run(copy_rows(database_url, team_id, events, args.copy_rows))
                        copied.append(args.copy_rows / seconds)
                        print(f"round {r + 1}  raw COPY: {copied[-1]:,.0f} rows/s", flush=True)
                        continue
                    before = asyncio.run(count_events(database_url, team_id))
                    result = wrk.run(
                        name,
                        f"{base}/batch/",
                        seconds=args.seconds,
                        headers={"Content-Type": "application/json", "User-Agent": "bench/1"},
                        method="POST",
                        bodies=bodies,
                        threads=args.threads,
                        connections=args.connections,
                    )
                    # Requests still in flight when wrk stops are stored too: at least every answered one.
                    time.sleep(1)
                    stored = asyncio.run(count_events(database_url, team_id)) - before
                    if stored < result.ok * args.batch:
                        raise SystemExit(f"{stored:,} rows stored for {result.ok:,} answers of 2xx")
                    rate = result.ok * args.batch / result.seconds
                    captured[name].append((rate, result))
                    print(f"round {r + 1}  {result.line()}   {rate:,.0f} events/s", flush=True)

        copy_rate = statistics.median(copied)
        print()
        print("| path | events/s | p50 | p99 | ratio to COPY | target met | errors |")
        print("|---|---:|---:|---:|---:|---|---:|")
        for name, runs in captured.items():
            rate = statistics.median(e for e, _ in runs)
            m = wrk.median(name, (r for _, r in runs))
            met = "yes" if rate / copy_rate >= TARGET_RATE else "no"
            print(
                f"| {name} | {rate:,.0f} | {_ms(m.p50_ms)} | {_ms(m.p99_ms)} | {rate / copy_rate:.0%} "
                f"| {met} | {m.errors} |"
            )
        print(
            f"| raw COPY ({args.copy_rows:,} rows in one statement) | {copy_rate:,.0f} | — | — | — | — | — |"
        )
        print(
            f"medians of {args.rounds} rounds; p50/p99 per request of {args.batch} events; target: capture "
            f"≥ {TARGET_RATE:.0%} of COPY's rows/s. errors: non-2xx and socket errors, all runs."
        )
        spent = sum(r.client_cpu_s for runs in captured.values() for _, r in runs)
        wall = sum(r.seconds for runs in captured.values() for _, r in runs)
        print(f"wrk itself used {spent / wall:.2f} CPU cores on average while measuring (of 2)")
    finally:
        if embedded is not None:
            embedded.stop()


if __name__ == "__main__":
    main()
