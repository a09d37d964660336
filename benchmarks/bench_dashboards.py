"""Dashboards API throughput: list (limit 100) and retrieve, 32 concurrent clients, 20 s each.

Starts `tilecast serve` (one worker) on PostgreSQL: DATABASE_URL when set (use a throwaway database),
otherwise the embedded server in a temporary data directory. Creates 1,000 dashboards through the API,
warms up, then measures. Prints requests/s, p50 and p99 latency per endpoint.

    python benchmarks/bench_dashboards.py [--dashboards 1000] [--concurrency 32] [--seconds 20]
"""

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from harness import create_key, database, machine_line, tilecast_server
from loadgen import run


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
    with database(work) as (_, env, embedded):
        info = create_key(env, work)
        headers = {"Authorization": f"Bearer {info['key']}"}
        team = info["team_id"]
        with tilecast_server(env, work) as base:
            t0 = time.perf_counter()
            dashboard_id = asyncio.run(seed(base, team, headers, args.dashboards))
            print(f"seeded {args.dashboards} dashboards in {time.perf_counter() - t0:.1f} s")
            print(machine_line(embedded))
            targets = [
                ("list (limit 100)", f"{base}/api/environments/{team}/dashboards/?limit=100"),
                ("retrieve", f"{base}/api/environments/{team}/dashboards/{dashboard_id}/"),
            ]
            for name, url in targets:
                asyncio.run(run("warm-up", url, headers, args.concurrency, 2))
                result = asyncio.run(run(name, url, headers, args.concurrency, args.seconds))
                print(result.line())


if __name__ == "__main__":
    main()
