"""Tilecast's app with latency injected into the tiles' query path, for bench_stream.py's open streams.

Every computation first runs `SELECT pg_sleep(<latency>)` on its own connection, as a slow query would: the
render holds its connection and its place in the worker's render pool for that long. One uvicorn worker, on
DATABASE_URL (already migrated: start it after a `tilecast serve` or `tilecast migrate`).

    DATABASE_URL=… python benchmarks/slow_server.py --port 8001 --latency-ms 5000
"""

import argparse
import sys
from pathlib import Path
from typing import Any

import uvicorn
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).parent.parent))
from app.query import engine


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--latency-ms", type=float, default=5000)
    args = parser.parse_args()
    seconds = args.latency_ms / 1000
    compute = engine.compute

    async def slow_compute(query: Any, ctx: Any, backend: Any) -> Any:
        await backend.connection.execute(text("SELECT pg_sleep(:s)"), {"s": seconds})
        return await compute(query, ctx, backend)

    engine.compute = slow_compute  # type: ignore[assignment]
    uvicorn.run(
        "app.main:app",
        host="127.0.0.1",
        port=args.port,
        access_log=False,
        proxy_headers=False,
        log_level="warning",
    )


if __name__ == "__main__":
    main()
