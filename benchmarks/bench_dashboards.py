"""Dashboards API throughput: list (limit 100) and retrieve, 32 concurrent clients, 20 s each.

Starts `tilecast serve` (one worker) on PostgreSQL: DATABASE_URL when set (use a throwaway database),
otherwise the embedded server in a temporary data directory. Creates 1,000 dashboards through the API,
warms up, then measures. Prints requests/s, p50 and p99 latency per endpoint.

    python benchmarks/bench_dashboards.py [--dashboards 1000] [--concurrency 32] [--seconds 20]
"""

import argparse
import asyncio
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from loadgen import run

TILECAST = str(Path(sys.executable).parent / "tilecast")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(base: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit("server exited during start-up")
        try:
            if httpx.get(f"{base}/_readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit("server did not become ready")


async def seed(base: str, team: int, headers: dict[str, str], count: int) -> int:
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30) as http:
        sem = asyncio.Semaphore(16)

        async def one(i: int) -> int:
            async with sem:
                body = {
                    "name": f"Dashboard {i:04d}",
                    "description": "seeded",
                    "pinned": i % 10 == 0,
                    "tags": [f"t{i % 7}", "bench"],
                }
                r = await http.post(f"/api/environments/{team}/dashboards/", json=body)
                r.raise_for_status()
                return int(r.json()["id"])

        ids = await asyncio.gather(*(one(i) for i in range(count)))
    return ids[len(ids) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dashboards", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="tilecast-bench-"))
    env = dict(os.environ)
    if not env.get("DATABASE_URL"):
        env["TILECAST_DATA_DIR"] = str(work / "data")
    env["TILECAST_LOG_LEVEL"] = "WARNING"
    created = subprocess.run(
        [TILECAST, "create-key", "--email", "bench@example.com", "--json"],
        env=env,
        cwd=work,
        capture_output=True,
        text=True,
        check=True,
    )
    info = json.loads(created.stdout)
    headers = {"Authorization": f"Bearer {info['key']}"}
    team = info["team_id"]

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [TILECAST, "serve", "--port", str(port), "--workers", "1"],
        env=env,
        cwd=work,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_ready(base, proc)
        t0 = time.perf_counter()
        dashboard_id = asyncio.run(seed(base, team, headers, args.dashboards))
        print(f"seeded {args.dashboards} dashboards in {time.perf_counter() - t0:.1f} s")
        print(
            f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
            f"database: {'DATABASE_URL' if os.environ.get('DATABASE_URL') else 'embedded PostgreSQL'}"
        )
        targets = [
            ("list (limit 100)", f"{base}/api/environments/{team}/dashboards/?limit=100"),
            ("retrieve", f"{base}/api/environments/{team}/dashboards/{dashboard_id}/"),
        ]
        for name, url in targets:
            asyncio.run(run("warm-up", url, headers, args.concurrency, 2))
            result = asyncio.run(run(name, url, headers, args.concurrency, args.seconds))
            print(result.line())
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


if __name__ == "__main__":
    main()
