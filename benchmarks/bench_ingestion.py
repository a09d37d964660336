"""Capture throughput: batches of 100 events through `POST /batch/`, compared with a raw COPY of those rows.

Starts `tilecast serve` (one worker) on PostgreSQL: DATABASE_URL when set (use a throwaway database),
otherwise an embedded server in a temporary data directory. Builds every request body first (distinct
uuids, so that no event is skipped as a retry), then 4 senders on keep-alive connections post them until all
are sent or the time is up. Then COPYs the same rows (fresh uuids) into `events` with asyncpg's
`copy_records_to_table` on the same database. Prints events/s, per-request latency and rows/s.

    python benchmarks/bench_ingestion.py [--events 200000] [--batch 100] [--senders 4] [--seconds 120]

Recorded 2026-11-26 (x86_64, 2 cores shared by sender, server and PostgreSQL; Python 3.11.7; embedded
PostgreSQL 18.6 over its Unix socket; 200,000 events of ~430 bytes, 43 KiB per request), two runs:

    capture via /batch/    18,900 and 20,900 events/s   (189-209 req/s, p50 17-19 ms, p99 76-80 ms, 0 errors)
    raw COPY               58,100 and 62,300 rows/s

Capture's own Python work (decode, parse, per-event rules, JSON out) is about 1.1 ms per 100-event request;
the rest is HTTP, the one INSERT … SELECT FROM unnest(…) statement and its commit. Stdlib `json` only:
a faster JSON library would save a fraction of that millisecond, not worth a dependency at this rate.
"""

import argparse
import asyncio
import json
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent.parent))
from harness import TILECAST, create_key, free_port, machine_line, start_database, wait_ready
from loadgen import Result, _read_response

from app.db import async_url

BROWSERS = ["Chrome", "Firefox", "Safari", "Edge"]
EVENTS = ["$pageview", "$pageview", "$pageview", "signed up", "order placed", "$autocapture"]


def make_event(n: int, now: datetime) -> dict[str, Any]:
    """An event shaped like posthog-python's: a dozen properties, a client timestamp, a uuid."""
    return {
        "event": EVENTS[n % len(EVENTS)],
        "distinct_id": f"user-{n % 5000}",
        "uuid": str(uuid.uuid4()),
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


def build_bodies(token: str, events: int, batch: int) -> tuple[list[bytes], list[dict[str, Any]]]:
    now = datetime.now(UTC)
    all_events = [make_event(n, now) for n in range(events)]
    bodies = []
    for start in range(0, events, batch):
        payload = {
            "api_key": token,
            "batch": all_events[start : start + batch],
            "historical_migration": False,
            "sent_at": now.isoformat(),
        }
        bodies.append(json.dumps(payload).encode())
    return bodies, all_events


async def _sender(host: str, port: int, queue: list[bytes], until: float, result: Result) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while queue and time.perf_counter() < until:
            body = queue.pop()
            head = (
                f"POST /batch/ HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
                f"User-Agent: bench/1\r\nContent-Length: {len(body)}\r\n\r\n"
            ).encode()
            start = time.perf_counter()
            writer.write(head + body)
            status = await _read_response(reader)
            result.latencies_ms.append((time.perf_counter() - start) * 1000)
            result.requests += 1
            if status != 200:
                result.errors += 1
    finally:
        writer.close()


async def send_all(base: str, bodies: list[bytes], senders: int, seconds: float) -> Result:
    host, port = base.removeprefix("http://").split(":")
    queue = list(reversed(bodies))
    result = Result("POST /batch/")
    start = time.perf_counter()
    await asyncio.gather(*(_sender(host, int(port), queue, start + seconds, result) for _ in range(senders)))
    result.seconds = time.perf_counter() - start
    return result


async def copy_rows(database_url: str, team_id: int, events: list[dict[str, Any]]) -> tuple[int, float]:
    """COPY the same rows (new uuids, so none collides) in one statement; returns (rows, seconds)."""
    records = [
        (
            team_id,
            uuid.uuid4(),
            e["event"],
            e["distinct_id"],
            datetime.fromisoformat(e["timestamp"]),
            json.dumps(e["properties"]),
        )
        for e in events
    ]
    conn = await asyncpg.connect(async_url(database_url).set(drivername="postgresql").render_as_string(False))
    try:
        start = time.perf_counter()
        await conn.copy_records_to_table(
            "events",
            records=records,
            columns=["team_id", "uuid", "event", "distinct_id", "timestamp", "properties"],
        )
        return len(records), time.perf_counter() - start
    finally:
        await conn.close()


async def count_events(database_url: str, team_id: int) -> int:
    conn = await asyncpg.connect(async_url(database_url).set(drivername="postgresql").render_as_string(False))
    try:
        return int(await conn.fetchval("SELECT count(*) FROM events WHERE team_id = $1", team_id))
    finally:
        await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--senders", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=120.0, help="stop sending after this long")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="tilecast-bench-"))
    database_url, env, embedded = start_database(work)
    proc = None
    try:
        info = create_key(env, work)
        token, team_id = info["project_api_key"], info["team_id"]

        t0 = time.perf_counter()
        bodies, events = build_bodies(token, args.events, args.batch)
        print(
            f"built {len(bodies)} bodies of {args.batch} events "
            f"({sum(map(len, bodies)) / len(bodies) / 1024:.1f} KiB each) in {time.perf_counter() - t0:.1f} s"
        )
        print(machine_line(embedded is not None))

        port = free_port()
        base = f"http://127.0.0.1:{port}"
        proc = subprocess.Popen(
            [TILECAST, "serve", "--port", str(port), "--workers", "1"],
            env=env,
            cwd=work,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_ready(base, proc)
        # One request first: the worker's pool and prepared statement are then ready.
        httpx.post(f"{base}/batch/", content=bodies.pop()).raise_for_status()
        before = asyncio.run(count_events(database_url, team_id))

        result = asyncio.run(send_all(base, bodies, args.senders, args.seconds))
        stored = asyncio.run(count_events(database_url, team_id)) - before
        sent = (result.requests - result.errors) * args.batch
        print(result.line())
        print(
            f"capture via /batch/: {sent / result.seconds:,.0f} events/s "
            f"({sent:,} events in {result.seconds:.1f} s, {args.senders} senders, {args.batch} per request; "
            f"{stored:,} rows stored)"
        )

        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        proc = None
        rows, seconds = asyncio.run(copy_rows(database_url, team_id, events[: max(sent, args.batch)]))
        print(
            f"raw COPY (asyncpg copy_records_to_table): {rows / seconds:,.0f} rows/s "
            f"({rows:,} rows in {seconds:.1f} s)"
        )
    finally:
        if proc is not None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
        if embedded is not None:
            embedded.stop()


if __name__ == "__main__":
    main()
