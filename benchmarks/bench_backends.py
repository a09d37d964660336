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


def trends_section(args: argparse.Namespace, work: Path, database_url: str, env: dict[str, str]) -> None:
    """Trends on 10M events, PostgreSQL against ClickHouse: filled in by the trends work."""
    print("trends: not measured yet (the ClickHouse trends compiler adds this section)")


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
