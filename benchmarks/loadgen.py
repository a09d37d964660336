"""A small closed-loop HTTP/1.1 load generator: N keep-alive connections, each sending its next request as
soon as the previous answer arrived, for a fixed time. Raw asyncio streams keep the client's own cost low
(the server and the client share this machine's cores)."""

import asyncio
import statistics
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit


@dataclass
class Result:
    name: str
    requests: int = 0
    errors: int = 0
    seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)

    def quantile(self, q: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    def line(self) -> str:
        rps = self.requests / self.seconds if self.seconds else 0.0
        mean = statistics.fmean(self.latencies_ms) if self.latencies_ms else float("nan")
        return (
            f"{self.name:<28} {rps:8.0f} req/s   p50 {self.quantile(0.50):7.1f} ms   "
            f"p99 {self.quantile(0.99):7.1f} ms   mean {mean:7.1f} ms   "
            f"requests {self.requests}   errors {self.errors}"
        )


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    length = 0
    chunked = False
    for line in lines[1:]:
        key, _, value = line.partition(b":")
        k = key.strip().lower()
        if k == b"content-length":
            length = int(value.strip())
        elif k == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
    if chunked:
        while True:
            size = int((await reader.readuntil(b"\r\n")).strip(), 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    elif length:
        await reader.readexactly(length)
    return status


async def _worker(url: str, headers: dict[str, str], until: float, result: Result) -> None:
    parts = urlsplit(url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    request = (
        f"GET {path} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
        + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        + "\r\n"
    ).encode()
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    try:
        while time.perf_counter() < until:
            start = time.perf_counter()
            writer.write(request)
            status = await _read_response(reader)
            result.latencies_ms.append((time.perf_counter() - start) * 1000)
            result.requests += 1
            if status != 200:
                result.errors += 1
    finally:
        writer.close()


async def run(name: str, url: str, headers: dict[str, str], concurrency: int, seconds: float) -> Result:
    result = Result(name)
    start = time.perf_counter()
    until = start + seconds
    await asyncio.gather(*(_worker(url, headers, until, result) for _ in range(concurrency)))
    result.seconds = time.perf_counter() - start
    return result
