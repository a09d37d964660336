"""What the benchmark scripts share: a database (DATABASE_URL or an embedded server), a key, a running
`tilecast serve`, and the line that says which machine the figures come from."""

import json
import os
import platform
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import psutil

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


def start_database(work: Path) -> tuple[str, dict[str, str], Any]:
    """The database URL, an environment for `tilecast` processes that points at it, and the embedded server
    when DATABASE_URL is unset (started here, not by the CLI, so the script itself can use the same database;
    the caller stops it)."""
    env = dict(os.environ, TILECAST_LOG_LEVEL="WARNING")
    url = env.get("DATABASE_URL")
    if url:
        return url, env, None
    from app.embedded import EmbeddedPostgres

    embedded = EmbeddedPostgres(work / "data")
    env["DATABASE_URL"] = embedded.start()
    return env["DATABASE_URL"], env, embedded


@contextmanager
def database(work: Path) -> Iterator[tuple[str, dict[str, str], bool]]:
    """`start_database` for a `with` block: yields the URL, the environment and whether it is embedded."""
    url, env, embedded = start_database(work)
    try:
        yield url, env, embedded is not None
    finally:
        if embedded is not None:
            embedded.stop()


def create_key(env: dict[str, str], cwd: Path, email: str = "bench@example.com") -> dict[str, Any]:
    """`tilecast create-key --json`: key, user_id, user_uuid, team_id, project_api_key."""
    created = subprocess.run(
        [TILECAST, "create-key", "--email", email, "--json"],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    )
    return dict(json.loads(created.stdout))


@contextmanager
def tilecast_process(
    env: dict[str, str], cwd: Path, workers: int = 1
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A running `tilecast serve`: its base URL and process (for measuring it); stopped on exit."""
    port = free_port()
    proc = subprocess.Popen(
        [TILECAST, "serve", "--port", str(port), "--workers", str(workers)],
        env=env,
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base, proc)
        yield base, proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@contextmanager
def tilecast_server(env: dict[str, str], cwd: Path, workers: int = 1) -> Iterator[str]:
    """A running `tilecast serve`; yields its base URL and stops it on exit."""
    with tilecast_process(env, cwd, workers) as (base, _):
        yield base


def timed(original: Any, label: str, totals: dict[str, float]) -> Any:
    """`original` (a function or coroutine function) that adds the thread CPU it spends to `totals[label]`:
    the profiles' per-phase figures."""
    import functools
    import inspect

    if inspect.iscoroutinefunction(original):

        @functools.wraps(original)
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            started = time.thread_time()
            try:
                return await original(*args, **kwargs)
            finally:
                totals[label] = totals.get(label, 0.0) + time.thread_time() - started

        return wrapper

    @functools.wraps(original)
    def sync_wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.thread_time()
        try:
            return original(*args, **kwargs)
        finally:
            totals[label] = totals.get(label, 0.0) + time.thread_time() - started

    return sync_wrapper


def machine_line(embedded: bool) -> str:
    return (
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}; database: "
        f"{'embedded PostgreSQL' if embedded else 'DATABASE_URL'}"
    )


def server_processes(proc: subprocess.Popen[bytes]) -> list[psutil.Process]:
    """A server process and its workers (uvicorn's, with `--workers`)."""
    root = psutil.Process(proc.pid)
    return [root, *root.children(recursive=True)]


def cpu_seconds(procs: list[psutil.Process]) -> float:
    """User and system CPU the processes have spent so far (those gone since count nothing)."""
    total = 0.0
    for p in procs:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.NoSuchProcess:
            pass
    return total
