"""Real `tilecast` processes for tests: the CLI and live servers (for SDKs, several processes, streams)."""

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx

TILECAST = str(Path(sys.executable).parent / "tilecast")


def env_without_database(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "TILECAST_DATA_DIR")}
    env.update(extra)
    return env


def run_cli(
    args: list[str], env: dict[str, str], cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run([TILECAST, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=120)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


UVICORN = str(Path(sys.executable).parent / "uvicorn")


@contextmanager
def serve(
    env: dict[str, str],
    cwd: Path,
    workers: int = 1,
    *,
    launcher: str = "tilecast",
    args: Sequence[str] = (),
) -> Iterator[tuple[str, Path]]:
    """A live server on a free port: `tilecast serve`, or with `launcher="uvicorn"` uvicorn running the app
    itself (as `uvicorn app.main:app`, with uvicorn's own defaults; the database must be migrated). `args`
    go on the command line."""
    with serve_process(env, cwd, workers, launcher=launcher, args=args) as (base, log, _):
        yield base, log


def start_server(
    env: dict[str, str], cwd: Path, workers: int = 1, *, launcher: str = "tilecast", args: Sequence[str] = ()
) -> tuple[subprocess.Popen[bytes], str, Path]:
    """A server process on a free port, its output in a log file; not waited for (`wait_ready`)."""
    port = free_port()
    log = cwd / f"serve-{port}.log"
    if launcher == "uvicorn":
        command = [UVICORN, "app.main:app", "--port", str(port), "--workers", str(workers), *args]
    else:
        command = [TILECAST, "serve", "--port", str(port), "--workers", str(workers), *args]
    with log.open("w") as out:
        proc = subprocess.Popen(command, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
    return proc, f"http://127.0.0.1:{port}", log


def wait_ready(proc: subprocess.Popen[bytes], base: str, log: Path, seconds: float = 60) -> None:
    """Until the server answers `/_readyz` (AssertionError with its log if it exits or takes too long)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            if httpx.get(f"{base}/_readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"server did not start:\n{log.read_text()}")
        time.sleep(0.2)


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextmanager
def serve_process(
    env: dict[str, str],
    cwd: Path,
    workers: int = 1,
    *,
    launcher: str = "tilecast",
    args: Sequence[str] = (),
) -> Iterator[tuple[str, Path, subprocess.Popen[bytes]]]:
    """`serve`, with the server's process (to signal it)."""
    proc, base, log = start_server(env, cwd, workers, launcher=launcher, args=args)
    try:
        wait_ready(proc, base, log)
        yield base, log, proc
    finally:
        stop_server(proc)
