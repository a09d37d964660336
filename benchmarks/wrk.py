"""Load from `wrk` (Debian's `wrk` package): `wrk -t2 -c32 -d<seconds>s --latency -s wrk_report.lua <url>`.

The Lua script (`wrk_report.lua`) takes the method, the headers and the bodies from the environment, so the
key never appears in a command line, and prints one JSON line in `done()`: requests, duration, latency
percentiles and each status's count. Every response that is not 2xx, and every socket error, is an error
here. wrk is a C program with its own threads: it costs the machine far less per request than the Python
load generator the earlier figures used (`loadgen.py`), which matters when client and server share 2 cores.
"""

import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

LUA = Path(__file__).with_name("wrk_report.lua")
MARKER = "WRK_JSON "


def require_wrk() -> str:
    """The path of `wrk`, or a clear message and exit status 2 when it is not installed."""
    path = shutil.which("wrk")
    if path is None:
        print(
            "wrk is not installed: these benchmarks drive their load with it "
            "(Debian/Ubuntu: apt-get install wrk; elsewhere https://github.com/wg/wrk).",
            file=sys.stderr,
        )
        raise SystemExit(2)
    return path


@dataclass
class WrkResult:
    name: str
    requests: int = 0
    seconds: float = 0.0
    p50_ms: float = float("nan")
    p99_ms: float = float("nan")
    mean_ms: float = float("nan")
    statuses: dict[int, int] = field(default_factory=dict)
    socket_errors: int = 0
    # CPU seconds wrk itself used (user + system): the load generator shares the machine's cores.
    client_cpu_s: float = 0.0

    @property
    def ok(self) -> int:
        return sum(n for status, n in self.statuses.items() if 200 <= status < 300)

    @property
    def errors(self) -> int:
        """Non-2xx responses and socket errors (connect, read, write, timeout)."""
        return self.requests - self.ok + self.socket_errors

    @property
    def rps(self) -> float:
        """Requests per second, every answer counted (an error is counted too, and shows in `errors`)."""
        return self.requests / self.seconds if self.seconds else 0.0

    def line(self) -> str:
        bad = {s: n for s, n in self.statuses.items() if not 200 <= s < 300}
        detail = f" {bad}" if bad else ""
        return (
            f"{self.name:<34} {self.rps:8.0f} req/s   p50 {self.p50_ms:7.1f} ms   p99 {self.p99_ms:7.1f} ms"
            f"   requests {self.requests}   errors {self.errors}{detail}"
        )


def run(
    name: str,
    url: str,
    *,
    seconds: float,
    headers: dict[str, str] | None = None,
    method: str = "GET",
    bodies: Sequence[bytes] = (),
    threads: int = 2,
    connections: int = 32,
) -> WrkResult:
    """One wrk run against `url`. `bodies`: sent in turn (each must be one line: compact JSON)."""
    wrk = require_wrk()
    env = dict(os.environ, WRK_METHOD=method)
    env["WRK_HEADERS"] = "\n".join(f"{k}: {v}" for k, v in (headers or {}).items())
    with tempfile.TemporaryDirectory(prefix="tilecast-wrk-") as tmp:
        if bodies:
            if any(b"\n" in body or b"\r" in body for body in bodies):
                raise ValueError("wrk bodies are read one per line: compact JSON without raw newlines")
            path = Path(tmp) / "bodies"
            path.write_bytes(b"\n".join(bodies) + b"\n")
            env["WRK_BODIES"] = str(path)
        command = [
            wrk,
            f"-t{threads}",
            f"-c{connections}",
            f"-d{max(1, round(seconds))}s",
            "--timeout",
            "30s",
            "--latency",
            "-s",
            str(LUA),
            url,
        ]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    lines = [line for line in done.stdout.splitlines() if line.startswith(MARKER)]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr.strip() or done.stdout.strip()}")
    report = json.loads(lines[-1].removeprefix(MARKER))
    latency = report["latency_us"]
    return WrkResult(
        name=name,
        requests=int(report["requests"]),
        seconds=report["duration_us"] / 1e6,
        p50_ms=latency["p50"] / 1000,
        p99_ms=latency["p99"] / 1000,
        mean_ms=latency["mean"] / 1000,
        statuses={int(k): int(v) for k, v in report["statuses"].items()},
        socket_errors=sum(int(v) for v in report["socket_errors"].values()),
        client_cpu_s=cpu,
    )


def median(name: str, results: Iterable[WrkResult]) -> WrkResult:
    """The median of each figure over several runs of one target (requests and errors summed)."""
    runs = list(results)
    statuses: dict[int, int] = {}
    for r in runs:
        for status, n in r.statuses.items():
            statuses[status] = statuses.get(status, 0) + n
    rps = statistics.median(r.rps for r in runs)
    total = sum(r.requests for r in runs)
    return WrkResult(
        name=name,
        requests=total,
        seconds=total / rps if rps else 0.0,
        p50_ms=statistics.median(r.p50_ms for r in runs),
        p99_ms=statistics.median(r.p99_ms for r in runs),
        mean_ms=statistics.median(r.mean_ms for r in runs),
        statuses=statuses,
        socket_errors=sum(r.socket_errors for r in runs),
        client_cpu_s=sum(r.client_cpu_s for r in runs),
    )
