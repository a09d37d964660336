"""Sampling a running server with py-spy (`pip install py-spy`; it needs ptrace, which root has): the share
of the server's samples each function takes, by its own time (self) and with what it calls (inclusive).
Used by `bench_read_path.py --py-spy DIR`: the profile that shows what remains of a request's CPU."""

import shutil
import subprocess
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil


def _worker_pid(pid: int) -> int:
    """`tilecast serve` with one worker runs the app in its own process; sample that one."""
    children = psutil.Process(pid).children(recursive=True)
    return children[-1].pid if children else pid


@contextmanager
def sampling(
    pid: int, out_dir: Path | None, name: str, seconds: float, enabled: bool = True
) -> Iterator[None]:
    if not enabled or out_dir is None:
        yield
        return
    if shutil.which("py-spy") is None:
        raise SystemExit("--py-spy needs py-spy on PATH (pip install py-spy)")
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / f"{name}.txt"
    proc = subprocess.Popen(
        [
            *("py-spy", "record", "--pid", str(_worker_pid(pid)), "--format", "raw", "--rate", "250"),
            *("--duration", str(max(1, int(seconds) - 1)), "--output", str(out), "--nonblocking"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield
    finally:
        proc.wait(timeout=seconds + 30)
    print(summary(out, name))


def _function(frame: str) -> str:
    """`name (path/to/file.py:12)` → `name (file.py)`: a function, whatever line was running."""
    name, _, where = frame.partition(" (")
    return f"{name} ({where.split(':')[0].rsplit('/', 1)[-1]})"


def summary(path: Path, name: str, top: int = 25) -> str:
    """The functions with the most samples, self and inclusive, as shares of all samples (idle included)."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        n = int(count)
        total += n
        frames = [_function(frame) for frame in stack.split(";")]
        own[frames[-1]] += n
        for frame in set(frames):
            inclusive[frame] += n
    lines = [f"py-spy {name}: {total} samples"]
    lines += [f"  self {n / total:6.1%}  {f}" for f, n in own.most_common(top)]
    lines += [f"  incl {n / total:6.1%}  {f}" for f, n in inclusive.most_common(top * 2)]
    return "\n".join(lines)
