"""Abusive requests against a live `tilecast serve`: what each costs the server in memory and in liveness.

Starts PostgreSQL (DATABASE_URL when set — use a throwaway database — otherwise an embedded server in a
temporary directory), creates a `*` personal API key and a project with `tilecast create-key --json`, then
runs each scenario below against a fresh `tilecast serve` (one worker, 127.0.0.1), so that one scenario's
leftovers do not count in the next. While a scenario runs, a separate process

  - samples the resident memory of the server process and its children (PostgreSQL's processes excluded)
    every 20 ms with psutil, and
  - polls `GET /_health` every 50 ms on a new connection with a 1 s timeout (a poll that times out or fails
    counts as 1,000 ms).

One table row per scenario: the status(es) the abusive request(s) got, how long the scenario took, the
server's resident memory before it, at its peak and at the end (half a second after the last answer: what
the server still holds), the worst `/_health` latency, next to the targets (peak
RSS under 400 MB, `/_health` under 200 ms throughout), and the longest time `/_health` went unanswered (from
the start of a failed poll to the end of the next answered one). MB here is 2**20 bytes. It measures; it
asserts nothing and exits 0. About three minutes on 2 cores.

    python benchmarks/abuse.py [--only NAME[,NAME...]] [--pool-seconds 10] [--pool-concurrency 200] [--list]

Add a scenario by writing a function `(base_url, keys, client) -> Outcome` decorated with `@scenario(name)`.
The client, the server and PostgreSQL share the machine's cores, so latencies include the attacker's own CPU.
"""

import argparse
import asyncio
import gzip
import json
import multiprocessing
import shutil
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).parent))
from harness import create_key, database, machine_line, tilecast_process
from loadgen import _read_response

MB = 1024 * 1024
RSS_TARGET_MB = 400
HEALTH_TARGET_MS = 200
RSS_INTERVAL_S = 0.020
HEALTH_INTERVAL_S = 0.050
HEALTH_TIMEOUT_S = 1.0
# After the scenario's last answer, keep measuring this long: the server may still be working.
SETTLE_S = 0.5
# The abusive request's own timeouts: long enough for the slowest answer seen, short enough to finish.
CLIENT_TIMEOUT = httpx.Timeout(60.0, connect=5.0)
POSTGRES_NAMES = frozenset({"postgres", "postmaster", "pg_ctl"})


@dataclass(frozen=True)
class Keys:
    personal: str  # `phx_…` with scope `*`: `Authorization: Bearer …`
    project: str  # the team's `project_api_key` (`phc_…`), for capture
    team_id: int
    database_url: str  # for scenarios that act on the database itself (locks, dropped connections)


@dataclass
class Outcome:
    statuses: str  # what the abusive request(s) got: "401", "200: 1523, 500: 2", "WriteError"
    note: str = ""


Scenario = Callable[[str, Keys, httpx.Client], Outcome]
SCENARIOS: list[tuple[str, Scenario]] = []
# Settings a scenario's server runs with, on top of the environment (e.g. a shorter statement timeout).
SCENARIO_ENV: dict[str, dict[str, str]] = {}
# Scenario options set from the command line.
OPTIONS: dict[str, Any] = {"pool_seconds": 10.0, "pool_concurrency": 200}


def scenario(name: str, env: dict[str, str] | None = None) -> Callable[[Scenario], Scenario]:
    def register(fn: Scenario) -> Scenario:
        SCENARIOS.append((name, fn))
        SCENARIO_ENV[name] = env or {}
        return fn

    return register


# --- request bodies -----------------------------------------------------------------------------------


def padded_json(size: int, head: bytes, tail: bytes, chunk: int = MB) -> Iterator[bytes]:
    """`head`, then `a` bytes, then `tail`: exactly `size` bytes, yielded 1 MB at a time (one chunk object
    reused, so the client never holds the body)."""
    filler = size - len(head) - len(tail)
    if filler < 0:
        raise ValueError("size smaller than head and tail")
    block = b"a" * chunk
    yield head
    while filler > 0:
        n = min(chunk, filler)
        yield block if n == chunk else block[:n]
        filler -= n
    yield tail


def api_body(size: int) -> Iterator[bytes]:
    """A new dashboard whose description is one huge JSON string: valid JSON, so nothing refuses it early."""
    return padded_json(size, b'{"name": "abuse", "description": "', b'"}')


def capture_body(size: int, project_key: str) -> Iterator[bytes]:
    """A `/batch/` envelope with the right project key and one event carrying a huge property."""
    head = (
        '{"api_key": "' + project_key + '", "batch": [{"event": "e", "distinct_id": "d", '
        '"properties": {"pad": "'
    ).encode()
    return padded_json(size, head, b'"}}]}')


def status_of(send: Callable[..., httpx.Response], *args: Any, **kwargs: Any) -> str:
    """The response's status code, or the name of the error the client got instead."""
    try:
        return str(send(*args, **kwargs).status_code)
    except httpx.HTTPError as exc:
        return type(exc).__name__


def counts(statuses: list[str]) -> str:
    """Each status with its count, most common first ("200: 198, 500: 2"); a lone status as itself."""
    counted = Counter(statuses)
    if len(statuses) == 1:
        return statuses[0]
    return ", ".join(f"{status}: {n}" for status, n in counted.most_common())


# --- scenarios ----------------------------------------------------------------------------------------


def post_no_key(client: httpx.Client, base: str, size: int, *, declare_length: bool) -> Outcome:
    headers = {"Content-Type": "application/json"}
    if declare_length:
        headers["Content-Length"] = str(size)
    url = f"{base}/api/environments/1/dashboards/"
    status = status_of(client.post, url, content=api_body(size), headers=headers)
    return Outcome(status)


@scenario("api-body-300mb-no-key")
def api_body_300mb_no_key(base: str, keys: Keys, client: httpx.Client) -> Outcome:
    """300 MB of JSON to the dashboards API, no credentials, with its Content-Length."""
    return post_no_key(client, base, 300 * MB, declare_length=True)


@scenario("api-body-300mb-chunked")
def api_body_300mb_chunked(base: str, keys: Keys, client: httpx.Client) -> Outcome:
    """The same without a Content-Length: chunked transfer encoding, the size known only by reading."""
    return post_no_key(client, base, 300 * MB, declare_length=False)


@scenario("api-body-50mb-no-key")
def api_body_50mb_no_key(base: str, keys: Keys, client: httpx.Client) -> Outcome:
    """50 MB, no credentials: should be a 413 without reading it all."""
    outcome = post_no_key(client, base, 50 * MB, declare_length=True)
    outcome.note = "expect 413"
    return outcome


@scenario("capture-gzip-400k-events")
def capture_gzip_400k_events(base: str, keys: Keys, client: httpx.Client) -> Outcome:
    """400,000 tiny events in one gzip body: small on the wire, ~14 MB of JSON once inflated."""
    events = [{"event": "e", "distinct_id": "d"}] * 400_000
    raw = json.dumps({"api_key": keys.project, "batch": events}).encode()
    body = gzip.compress(raw)
    headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
    status = status_of(client.post, f"{base}/batch/", content=body, headers=headers)
    return Outcome(status, f"{len(body) / 1024:.0f} KB gzip, {len(raw) / MB:.1f} MB inflated")


@scenario("capture-bad-timestamps")
def capture_bad_timestamps(base: str, keys: Keys, client: httpx.Client) -> Outcome:
    """Timestamps at the edges of what datetime can hold, once their offsets are applied."""
    payload = {
        "api_key": keys.project,
        "batch": [
            {"event": "e", "distinct_id": "d", "timestamp": "0001-01-01T00:00:00+14:00"},
            {"event": "e", "distinct_id": "d", "timestamp": "9999-12-31T23:59:59-14:00"},
            {"event": "e", "distinct_id": "d", "timestamp": "Fri, 31 Dec 9999 23:59:59 -1400"},
        ],
    }
    body = json.dumps(payload).encode()
    # A new connection each: after a 500 the server closes its side, which a reused one would report instead.
    headers = {"Content-Type": "application/json", "Connection": "close"}
    statuses = [
        f"{path} " + status_of(client.post, f"{base}{path}", content=body, headers=headers)
        for path in ("/batch/", "/capture/", "/e/", "/i/v0/e/")
    ]
    return Outcome(", ".join(statuses), "should be 200s")


@scenario("capture-body-300mb")
def capture_body_300mb(base: str, keys: Keys, client: httpx.Client) -> Outcome:
    """300 MB to `/batch/` with its Content-Length (capture has its own 20 MB limit)."""
    size = 300 * MB
    headers = {"Content-Type": "application/json", "Content-Length": str(size)}
    content = capture_body(size, keys.project)
    status = status_of(client.post, f"{base}/batch/", content=content, headers=headers)
    return Outcome(status)


async def _closed_loop(
    base: str, path: str, headers: dict[str, str], until: float, out: list[str], latencies: list[float]
) -> None:
    """One keep-alive connection sending its next GET as soon as the previous answer arrived."""
    host, port = base.removeprefix("http://").split(":")
    request = (
        f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
        + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        + "\r\n"
    ).encode()
    writer = None
    while time.perf_counter() < until:
        try:
            if writer is None:
                reader, writer = await asyncio.open_connection(host, int(port))
            start = time.perf_counter()
            writer.write(request)
            out.append(str(await asyncio.wait_for(_read_response(reader), CLIENT_TIMEOUT.read)))
            latencies.append(time.perf_counter() - start)
        except (OSError, asyncio.IncompleteReadError, ValueError) as exc:  # TimeoutError included
            out.append(type(exc).__name__)
            if writer is not None:
                writer.close()
            writer = None
    if writer is not None:
        writer.close()


@scenario("pool-exhaustion")
def pool_exhaustion(base: str, keys: Keys, client: httpx.Client) -> Outcome:
    """Many concurrent authenticated lists (more than the database pool's 10 + 10) for a few seconds."""
    concurrency, seconds = OPTIONS["pool_concurrency"], OPTIONS["pool_seconds"]
    path = f"/api/environments/{keys.team_id}/dashboards/"
    headers = {"Authorization": f"Bearer {keys.personal}"}
    out: list[str] = []
    latencies: list[float] = []

    async def run() -> None:
        until = time.perf_counter() + seconds
        await asyncio.gather(
            *(_closed_loop(base, path, headers, until, out, latencies) for _ in range(concurrency))
        )

    asyncio.run(run())
    latencies.sort()
    p50 = latencies[len(latencies) // 2] if latencies else float("nan")
    worst = latencies[-1] if latencies else float("nan")
    return Outcome(
        counts(out),
        f"{concurrency} concurrent GETs for {seconds:.0f} s; answered in p50 {p50:.2f} s, max {worst:.2f} s",
    )


def _traffic(base: str, keys: Keys, seconds: float, during: Callable[[], Any]) -> tuple[list[str], Any]:
    """Closed-loop API reads and captures (20 connections each) for `seconds`, while `during()` runs in a
    thread: the statuses they got, and what `during` returned."""
    import threading

    out: list[str] = []
    result: list[Any] = []
    api_headers = {"Authorization": f"Bearer {keys.personal}"}
    capture_body = json.dumps({"api_key": keys.project, "batch": [{"event": "e", "distinct_id": "d"}]})

    def capture_loop(until: float) -> None:
        with httpx.Client(timeout=CLIENT_TIMEOUT) as http:
            while time.perf_counter() < until:
                out.append("capture " + status_of(http.post, f"{base}/batch/", content=capture_body))

    async def api(until: float) -> None:
        path = f"/api/environments/{keys.team_id}/dashboards/"
        statuses: list[str] = []
        await asyncio.gather(*(_closed_loop(base, path, api_headers, until, statuses, []) for _ in range(20)))
        out.extend("api " + s for s in statuses)

    until = time.perf_counter() + seconds
    side = threading.Thread(target=lambda: result.append(during()))
    captures = [threading.Thread(target=capture_loop, args=(until,)) for _ in range(4)]
    for thread in (side, *captures):
        thread.start()
    asyncio.run(api(until))
    for thread in (side, *captures):
        thread.join()
    return out, result[0] if result else None


def _on_database(url: str, work: Callable[[Any], Any]) -> Any:
    import asyncpg

    async def run() -> Any:
        conn = await asyncpg.connect(url)
        try:
            return await work(conn)
        finally:
            await conn.close()

    return asyncio.run(run())


@scenario("held-locks", env={"TILECAST_DB_STATEMENT_TIMEOUT_MS": "2000"})
def held_locks(base: str, keys: Keys, client: httpx.Client) -> Outcome:
    """Another session holds exclusive locks on `dashboard` and `events` for 4 s (a migration, maintenance)
    under API and capture traffic: waiting requests fill the pool; all must be 503s, none a 500."""

    async def hold(conn: Any) -> None:
        async with conn.transaction():
            await conn.execute("LOCK TABLE dashboard, events IN ACCESS EXCLUSIVE MODE")
            await asyncio.sleep(4)

    out, _ = _traffic(base, keys, 6, lambda: _on_database(keys.database_url, hold))
    return Outcome(counts(out), "statement timeout 2 s for this server; pool timeout 5 s")


_DROP_CONNECTIONS = (
    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'tilecast'"
)


@scenario("connections-dropped")
def connections_dropped(base: str, keys: Keys, client: httpx.Client) -> Outcome:
    """PostgreSQL drops every connection of the server five times in 5 s (a restart or failover, as the
    clients see it) under API and capture traffic: 503s, then recovery, never a 500."""

    async def drop(conn: Any) -> int:
        killed = 0
        for _ in range(5):
            await asyncio.sleep(1)
            killed += len(await conn.fetch(_DROP_CONNECTIONS))
        return killed

    out, killed = _traffic(base, keys, 6, lambda: _on_database(keys.database_url, drop))
    return Outcome(counts(out), f"{killed} connections dropped")


@scenario("capture-one-huge-event")
def capture_one_huge_event(base: str, keys: Keys, client: httpx.Client) -> Outcome:
    """One event whose properties hold 400,000 tiny keys (~9 MB, under the 20 MB payload limit): one JSON
    object the decoder parses in one piece."""
    properties = {f"k{i}": i for i in range(400_000)}
    raw = json.dumps(
        {"api_key": keys.project, "batch": [{"event": "e", "distinct_id": "d", "properties": properties}]}
    )
    body = gzip.compress(raw.encode())
    headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
    status = status_of(client.post, f"{base}/batch/", content=body, headers=headers)
    return Outcome(status, f"{len(body) / 1024:.0f} KB gzip, {len(raw) / MB:.1f} MB inflated")


def _api(base: str, keys: Keys, path: str) -> tuple[str, dict[str, str]]:
    return f"{base}/api/environments/{keys.team_id}/{path}", {"Authorization": f"Bearer {keys.personal}"}


def _new_board(client: httpx.Client, base: str, keys: Keys, name: str) -> int:
    url, headers = _api(base, keys, "dashboards/")
    response = client.post(url, json={"name": name}, headers=headers)
    response.raise_for_status()
    return int(response.json()["id"])


def _texts(n: int, prefix: str) -> dict[str, Any]:
    """An update adding `n` text tiles without layouts: the server places every one."""
    return {"tiles": [{"text": {"body": f"{prefix} {i}"}} for i in range(n)]}


@scenario("tiles-1000-in-one-patch")
def tiles_1000_in_one_patch(base: str, keys: Keys, client: httpx.Client) -> Outcome:
    """One PATCH adding 1,000 text tiles to an empty dashboard (past the per-request cap of 200)."""
    board = _new_board(client, base, keys, "tiles-1000")
    url, headers = _api(base, keys, f"dashboards/{board}/")
    start = time.perf_counter()
    status = status_of(client.patch, url, json=_texts(1000, "t"), headers=headers)
    return Outcome(status, f"expect 400; answered in {time.perf_counter() - start:.2f} s")


@scenario("tiles-200-in-one-patch")
def tiles_200_in_one_patch(base: str, keys: Keys, client: httpx.Client) -> Outcome:
    """PATCHes of 200, 200 and 100 new text tiles fill one dashboard to 500 (the per-dashboard cap); then
    one more tile, past the cap."""
    board = _new_board(client, base, keys, "tiles-500")
    url, headers = _api(base, keys, f"dashboards/{board}/")
    statuses, took = [], []
    for i, n in enumerate((200, 200, 100, 1)):
        start = time.perf_counter()
        statuses.append(status_of(client.patch, url, json=_texts(n, f"batch {i}"), headers=headers))
        took.append(f"{n}: {time.perf_counter() - start:.2f} s")
    return Outcome(", ".join(statuses), "per request " + ", ".join(took) + "; expect 200 x 3, then 400")


def _overlap(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return bool(
        a["x"] < b["x"] + b["w"]
        and b["x"] < a["x"] + a["w"]
        and a["y"] < b["y"] + b["h"]
        and b["y"] < a["y"] + a["h"]
    )


@scenario("tiles-20-concurrent")
def tiles_20_concurrent(base: str, keys: Keys, client: httpx.Client) -> Outcome:
    """20 concurrent PATCHes each adding one text tile to one dashboard; then the dashboard is read to count
    tiles whose `sm` boxes collide."""
    board = _new_board(client, base, keys, "tiles-concurrent")
    url, headers = _api(base, keys, f"dashboards/{board}/")

    async def run() -> list[str]:
        async with httpx.AsyncClient(timeout=CLIENT_TIMEOUT) as http:

            async def one(i: int) -> str:
                try:
                    return str((await http.patch(url, json=_texts(1, f"c{i}"), headers=headers)).status_code)
                except httpx.HTTPError as exc:
                    return type(exc).__name__

            return list(await asyncio.gather(*(one(i) for i in range(20))))

    statuses = asyncio.run(run())
    tiles = client.get(url, headers=headers).json()["tiles"]
    boxes = [t["layouts"]["sm"] for t in tiles]
    colliding = sum(1 for i, a in enumerate(boxes) for b in boxes[i + 1 :] if _overlap(a, b))
    slots = len({(b["x"], b["y"]) for b in boxes})
    return Outcome(
        counts(statuses),
        f"{len(tiles)} tiles on {slots} distinct slots, {colliding} overlapping pairs; expect 0",
    )


CACHE_FLOOD_BUDGET = 2 * MB
CACHE_FLOOD_READS = 2_000
CACHE_FLOOD_CONCURRENCY = 4


def _read_only_key(keys: Keys) -> str:
    """A `dashboard:read` key on the scenario's team (`create-key` reuses the user's team)."""
    import os
    import subprocess

    from harness import TILECAST

    env = dict(os.environ, DATABASE_URL=keys.database_url, TILECAST_LOG_LEVEL="WARNING")
    args = [TILECAST, "create-key", "--email", "abuse@example.com", "--scopes", "dashboard:read", "--json"]
    created = subprocess.run(args, env=env, capture_output=True, text=True, check=True)
    return str(json.loads(created.stdout)["key"])


@scenario("cache-flood", env={"TILECAST_CACHE_BUDGET_BYTES_PER_TEAM": str(CACHE_FLOOD_BUDGET)})
def cache_flood(base: str, keys: Keys, client: httpx.Client) -> Outcome:
    """2,000 reads of a one-tile dashboard, each with its own `filters_override` date range and
    `refresh=blocking`, from a `dashboard:read` key, 4 at a time, under a 2 MB cache budget per team."""
    api = f"{base}/api/environments/{keys.team_id}"
    owner = {"Authorization": f"Bearer {keys.personal}"}
    now = datetime.now(UTC)
    # Pageviews over the ~6 years the flood's date ranges cover.
    events = [
        {
            "event": "$pageview",
            "distinct_id": f"u{i % 50}",
            "timestamp": (now - timedelta(days=i % 2_100)).isoformat(),
        }
        for i in range(5_000)
    ]
    client.post(f"{base}/batch/", json={"api_key": keys.project, "batch": events}).raise_for_status()
    board = client.post(f"{api}/dashboards/", json={"name": "cache flood"}, headers=owner).json()["id"]
    query = {
        "kind": "InsightVizNode",
        "source": {
            "kind": "TrendsQuery",
            "series": [{"kind": "EventsNode", "event": "$pageview", "math": "total"}],
            "interval": "day",
            "dateRange": {"date_from": "-30d"},
        },
    }
    insight = {"name": "Pageviews", "query": query, "dashboards": [board]}
    client.post(f"{api}/insights/", json=insight, headers=owner).raise_for_status()
    client.get(f"{api}/dashboards/{board}/", params={"refresh": "blocking"}, headers=owner).raise_for_status()
    reader = {"Authorization": f"Bearer {_read_only_key(keys)}"}

    statuses: list[str] = []

    async def flood() -> None:
        pending = iter(range(CACHE_FLOOD_READS))
        async with httpx.AsyncClient(timeout=CLIENT_TIMEOUT) as http:

            async def worker() -> None:
                for i in pending:
                    # A distinct 61-day range per read: a new result each time.
                    override = json.dumps({"date_from": f"-{i + 60}d", "date_to": f"-{i}d"})
                    params = {"filters_override": override, "refresh": "blocking"}
                    try:
                        response = await http.get(f"{api}/dashboards/{board}/", params=params, headers=reader)
                        statuses.append(str(response.status_code))
                    except httpx.HTTPError as exc:
                        statuses.append(type(exc).__name__)

            await asyncio.gather(*(worker() for _ in range(CACHE_FLOOD_CONCURRENCY)))

    asyncio.run(flood())

    async def sizes(conn: Any) -> Any:
        return await conn.fetchrow(
            "SELECT count(*) AS rows, coalesce(sum(octet_length(result::text)), 0) AS bytes, "
            "count(*) FILTER (WHERE saved) AS saved FROM query_cache WHERE team_id = $1",
            keys.team_id,
        )

    cached = _on_database(keys.database_url, sizes)
    tiles = client.get(f"{api}/dashboards/{board}/", headers=owner).json()["tiles"]
    kept = all(t["is_cached"] and t["insight"]["result"] for t in tiles)
    written = CACHE_FLOOD_READS * cached["bytes"] / max(cached["rows"], 1)
    return Outcome(
        counts(statuses),
        f"team cache after: {cached['bytes'] / MB:.2f} MB in {cached['rows']} rows ({cached['saved']} saved; "
        f"budget {CACHE_FLOOD_BUDGET / MB:.0f} MB; ~{written / MB:.1f} MB unbounded); "
        f"saved tile still cached: {'yes' if kept else 'NO'}",
    )


# --- queries ------------------------------------------------------------------------------------------

SEED_EVENTS = 3_000
SEED_NAMESPACE = uuid.UUID("5b0a0c4e-3c55-4d0e-9a8e-6d1f3c2b7a10")


def seed_events(base: str, keys: Keys, client: httpx.Client) -> str:
    """3,000 `$pageview`s over the last 7 days, each with its own `$browser` (3,000 breakdown values), sent
    through `/batch/`. Their uuids are fixed: seeding again (each query scenario does) stores nothing new."""
    now = datetime.now(UTC)
    batch = [
        {
            "event": "$pageview",
            "distinct_id": f"user-{i % 500}",
            "timestamp": (now - timedelta(hours=i % 168, minutes=1)).isoformat(),
            "uuid": str(uuid.uuid5(SEED_NAMESPACE, str(i))),
            "properties": {"$browser": f"browser-{i}", "n": i},
        }
        for i in range(SEED_EVENTS)
    ]
    return status_of(client.post, f"{base}/batch/", json={"api_key": keys.project, "batch": batch})


def trends(**source: Any) -> dict[str, Any]:
    series = source.pop("series", [{"kind": "EventsNode", "event": "$pageview"}])
    return {"kind": "InsightVizNode", "source": {"kind": "TrendsQuery", "series": series, **source}}


def post_query(base: str, keys: Keys, client: httpx.Client, query: Any) -> tuple[str, str]:
    """POST the query (a dict, or the JSON text of one) to `/query/` with `force_blocking`: the status, and
    the error's `attr` and start of its `detail`, or the size of the answer."""
    text = query if isinstance(query, str) else json.dumps(query)
    body = '{"refresh": "force_blocking", "query": ' + text + "}"
    headers = {"Authorization": f"Bearer {keys.personal}", "Content-Type": "application/json"}
    try:
        url = f"{base}/api/environments/{keys.team_id}/query/"
        response = client.post(url, content=body, headers=headers)
    except httpx.HTTPError as exc:
        return type(exc).__name__, ""
    if response.status_code == 200:
        return "200", f"{len(response.content) / MB:.1f} MB answer"
    try:
        error = response.json()
        return str(response.status_code), f"{error.get('attr')}: {str(error.get('detail'))[:60]}"
    except ValueError:
        return str(response.status_code), response.text[:60]


def query_outcome(base: str, keys: Keys, client: httpx.Client, query: Any, seed: bool = False) -> Outcome:
    note = ""
    if seed:
        note = f"seeded {SEED_EVENTS:,} events: {seed_events(base, keys, client)}; "
    status, detail = post_query(base, keys, client, query)
    return Outcome(status, note + detail)


def last_days(days: int) -> dict[str, Any]:
    """An explicit range of whole hours ending at the current hour: `days` x 24 + 1 hourly buckets."""
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    start = end - timedelta(days=days)
    return {"date_from": start.isoformat(), "date_to": end.isoformat(), "explicitDate": True}


@scenario("query-bd-5000-hourly")
def query_breakdown_5000_hourly(base: str, keys: Keys, client: httpx.Client) -> Outcome:
    """`breakdown_limit` 5,000 over 7 days of hourly buckets, on 3,000 breakdown values (was 3 GB, then a
    500: the result passed PostgreSQL's jsonb limit)."""
    breakdown = {"breakdown": "$browser", "breakdown_limit": 5_000}
    query = trends(interval="hour", dateRange={"date_from": "-7d"}, breakdownFilter=breakdown)
    return query_outcome(base, keys, client, query, seed=True)


@scenario("query-bd-20000")
def query_breakdown_20000(base: str, keys: Keys, client: httpx.Client) -> Outcome:
    """`breakdown_limit` 20,000 over the default 7 days by day (was a 4.7 GB peak)."""
    query = trends(breakdownFilter={"breakdown": "$browser", "breakdown_limit": 20_000})
    return query_outcome(base, keys, client, query, seed=True)


@scenario("query-bd-at-caps")
def query_breakdown_at_caps(base: str, keys: Keys, client: httpx.Client) -> Outcome:
    """What stays allowed, at its largest: 5 series, each 250 breakdown values x 193 hourly buckets (48,250
    points, under the 50,000 cap), an ~17 MB result (under the 20 MB cap), computed, stored and served."""
    breakdown = {"breakdown": "$browser", "breakdown_limit": 250}
    series = [{"kind": "EventsNode", "event": "$pageview", "custom_name": f"s{i}"} for i in range(5)]
    query = trends(series=series, interval="hour", dateRange=last_days(8), breakdownFilter=breakdown)
    return query_outcome(base, keys, client, query, seed=True)


@scenario("query-result-over-cap")
def query_result_over_cap(base: str, keys: Keys, client: httpx.Client) -> Outcome:
    """The same with 12 series (~40 MB of JSON): the result-size backstop stops it at 20 MB, unstored."""
    breakdown = {"breakdown": "$browser", "breakdown_limit": 250}
    series = [{"kind": "EventsNode", "event": "$pageview", "custom_name": f"s{i}"} for i in range(12)]
    query = trends(series=series, interval="hour", dateRange=last_days(8), breakdownFilter=breakdown)
    return query_outcome(base, keys, client, query, seed=True)


@scenario("query-smooth-20000")
def query_smoothing_20000(base: str, keys: Keys, client: httpx.Client) -> Outcome:
    """`smoothingIntervals` 20,000 over 20,000 hourly buckets (was 6 s of a blocked event loop)."""
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    start = end - timedelta(hours=19_999)
    date_range = {"date_from": start.isoformat(), "date_to": end.isoformat(), "explicitDate": True}
    query = trends(interval="hour", dateRange=date_range, trendsFilter={"smoothingIntervals": 20_000})
    return query_outcome(base, keys, client, query, seed=True)


def _values_filter(count: int) -> dict[str, Any]:
    properties = [{"key": "$browser", "operator": "exact", "value": [f"browser-{i}" for i in range(count)]}]
    return trends(properties=properties)


@scenario("query-30000-values")
def query_30000_values(base: str, keys: Keys, client: httpx.Client) -> Outcome:
    """One filter with 30,000 values (was 3 s of a blocked event loop)."""
    return query_outcome(base, keys, client, _values_filter(30_000), seed=True)


@scenario("query-40000-values")
def query_40000_values(base: str, keys: Keys, client: httpx.Client) -> Outcome:
    """One filter with 40,000 values: more bind parameters than asyncpg allows (was a 500)."""
    return query_outcome(base, keys, client, _values_filter(40_000), seed=True)


@scenario("query-10000-values")
def query_10000_values(base: str, keys: Keys, client: httpx.Client) -> Outcome:
    """One filter with 10,000 values, the most allowed: computed."""
    return query_outcome(base, keys, client, _values_filter(10_000), seed=True)


@scenario("query-115-filters")
def query_115_filters(base: str, keys: Keys, client: httpx.Client) -> Outcome:
    """The most property filters the parameter limit allows (115), of the costliest kind (a number and a
    text each), on weekly active users by breakdown: computed, its statement compiled on the event loop."""
    properties = [{"key": f"k{i}", "operator": "is_not", "value": [2, f"v{i}"]} for i in range(115)]
    series = [{"kind": "EventsNode", "event": "$pageview", "math": "weekly_active"}]
    query = trends(series=series, properties=properties, breakdownFilter={"breakdown": "$browser"})
    return query_outcome(base, keys, client, query, seed=True)


@scenario("query-5mb-of-filters")
def query_5mb_of_filters(base: str, keys: Keys, client: httpx.Client) -> Outcome:
    """170,000 tiny filters, as many as a 5 MB body holds: parsed, then refused by the parameter limit."""
    filter_json = '{"key": "k", "value": "v"}'
    count = (5 * MB - 200) // (len(filter_json) + 2)
    query = (
        '{"kind": "InsightVizNode", "source": {"kind": "TrendsQuery", "series": [{"kind": "EventsNode"}], '
        '"properties": [' + ", ".join([filter_json] * count) + "]}}"
    )
    outcome = query_outcome(base, keys, client, query)
    outcome.note = f"{count:,} filters; " + outcome.note
    return outcome


@scenario("query-1e400")
def query_1e400(base: str, keys: Keys, client: httpx.Client) -> Outcome:
    """`1e400` as a property filter value (Python's JSON reads it as infinity)."""
    query = (
        '{"kind": "InsightVizNode", "source": {"kind": "TrendsQuery", "series": [{"kind": "EventsNode"}], '
        '"properties": [{"key": "n", "operator": "exact", "value": 1e400}]}}'
    )
    return query_outcome(base, keys, client, query)


@scenario("query-groups-200-deep")
def query_groups_200_deep(base: str, keys: Keys, client: httpx.Client) -> Outcome:
    """Property groups nested 200 deep."""
    group: dict[str, Any] = {"key": "$browser", "value": "x"}
    for _ in range(200):
        group = {"type": "AND", "values": [group]}
    return query_outcome(base, keys, client, trends(properties=group))


@scenario("query-json-300-deep")
def query_json_300_deep(base: str, keys: Keys, client: httpx.Client) -> Outcome:
    """A display option nested 300 lists deep inside the query (pydantic's serializer stops at 255)."""
    deep = "[" * 300 + "]" * 300
    query = (
        '{"kind": "InsightVizNode", "source": {"kind": "TrendsQuery", "series": [{"kind": "EventsNode"}], '
        '"trendsFilter": {"goalLines": ' + deep + "}}}"
    )
    return query_outcome(base, keys, client, query)


# --- share unlock guessing ---------------------------------------------------------------------------

GUESS_SECONDS = 10.0
GUESS_CONCURRENCY = 64


def _protected_share(client: httpx.Client, base: str, keys: Keys) -> str:
    """A new dashboard shared with a password: its token."""
    board = _new_board(client, base, keys, "guessed")
    url, headers = _api(base, keys, f"dashboards/{board}/sharing/")
    shared = client.patch(url, json={"enabled": True, "password_required": True}, headers=headers)
    shared.raise_for_status()
    client.post(
        f"{url}passwords/", json={"raw_password": "the right one"}, headers=headers
    ).raise_for_status()
    return str(shared.json()["access_token"])


def _guess(base: str, token: str) -> list[str]:
    """Wrong passwords from GUESS_CONCURRENCY clients at once, each sending the next as soon as it is
    answered, for GUESS_SECONDS."""
    statuses: list[str] = []

    async def run() -> None:
        limits = httpx.Limits(max_connections=GUESS_CONCURRENCY)
        async with httpx.AsyncClient(base_url=base, timeout=CLIENT_TIMEOUT, limits=limits) as http:
            until = time.perf_counter() + GUESS_SECONDS

            async def guesser(i: int) -> None:
                n = 0
                while time.perf_counter() < until:
                    n += 1
                    try:
                        answer = await http.post(f"/shared/{token}", json={"password": f"guess {i}-{n}"})
                        statuses.append(str(answer.status_code))
                    except httpx.HTTPError as exc:
                        statuses.append(type(exc).__name__)

            await asyncio.gather(*(guesser(i) for i in range(GUESS_CONCURRENCY)))

    asyncio.run(run())
    return statuses


@scenario("unlock-guessing")
def unlock_guessing(base: str, keys: Keys, client: httpx.Client) -> Outcome:
    """64 clients guessing a share's password for 10 s from one address (default limits: 10 failures a minute
    per address, 30 per share)."""
    token = _protected_share(client, base, keys)
    statuses = _guess(base, token)
    right = client.post(f"{base}/shared/{token}", json={"password": "the right one"}).status_code
    return Outcome(counts(statuses), f"{len(statuses)} guesses; the right password then: {right}")


@scenario(
    "unlock-guessing-no-limits",
    env={"TILECAST_SHARING_UNLOCK_LIMIT_PER_TOKEN": "0", "TILECAST_SHARING_UNLOCK_LIMIT_PER_ADDRESS": "0"},
)
def unlock_guessing_no_limits(base: str, keys: Keys, client: httpx.Client) -> Outcome:
    """The same with the rate limits off: every guess is an argon2 check; only the process-wide limit on
    concurrent checks (1, the rest waiting, 503 past 32 waiting) bounds CPU and memory."""
    token = _protected_share(client, base, keys)
    statuses = _guess(base, token)
    return Outcome(counts(statuses), f"{len(statuses)} guesses checked or refused")


# --- measuring ----------------------------------------------------------------------------------------


def tree_rss(proc: psutil.Process) -> int:
    """Resident bytes of the process and its children, PostgreSQL's processes left out."""
    total = proc.memory_info().rss
    for child in proc.children(recursive=True):
        try:
            if child.name() not in POSTGRES_NAMES:
                total += child.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total


def monitor(pid: int, base: str, conn: Connection) -> None:
    """In its own process (the attacker's CPU work does not delay it): RSS and /_health until told to stop.

    Sends "ready" once both have a first sample, then, on any message, the figures."""
    import threading

    stop = threading.Event()
    rss: list[int] = []
    health: list[float] = []
    failures: Counter[str] = Counter()
    # The longest time /_health went unanswered: from the start of a failed poll to the end of the next
    # answered one (or the end of the measurement); a poll answered in time counts as its own latency.
    unanswered = {"longest": 0.0}
    rss_started, health_started = threading.Event(), threading.Event()

    def sample_rss() -> None:
        try:
            proc = psutil.Process(pid)
            while not stop.is_set():
                rss.append(tree_rss(proc))
                rss_started.set()
                stop.wait(RSS_INTERVAL_S)
        except psutil.NoSuchProcess:
            failures["server gone"] += 1
        finally:
            rss_started.set()

    def poll_health() -> None:
        limits = httpx.Limits(max_keepalive_connections=0)
        since: float | None = None  # start of the first failed poll of the current run of failures
        with httpx.Client(timeout=HEALTH_TIMEOUT_S, limits=limits) as http:
            while not stop.is_set():
                start = time.perf_counter()
                try:
                    status = http.get(f"{base}/_health").status_code
                    elapsed = time.perf_counter() - start
                    if status != 200:
                        failures[f"{status}"] += 1
                except httpx.TimeoutException:
                    elapsed, status = HEALTH_TIMEOUT_S, 0
                    failures["timeout"] += 1
                except httpx.HTTPError as exc:
                    elapsed, status = HEALTH_TIMEOUT_S, 0
                    failures[type(exc).__name__] += 1
                health.append(elapsed * 1000)
                if status == 200:
                    waited = time.perf_counter() - (start if since is None else since)
                    unanswered["longest"] = max(unanswered["longest"], waited)
                    since = None
                elif since is None:
                    since = start
                health_started.set()
                stop.wait(max(0.0, start + HEALTH_INTERVAL_S - time.perf_counter()))
        if since is not None:
            unanswered["longest"] = max(unanswered["longest"], time.perf_counter() - since)

    threads = [threading.Thread(target=sample_rss), threading.Thread(target=poll_health)]
    for thread in threads:
        thread.start()
    rss_started.wait(10)
    health_started.wait(10)
    conn.send("ready")
    conn.recv()
    stop.set()
    for thread in threads:
        thread.join()
    conn.send({"rss": rss, "health": health, "failures": dict(failures), "unanswered": unanswered["longest"]})


@dataclass
class Figures:
    rss_before_mb: float
    rss_peak_mb: float
    rss_after_mb: float  # the last sample, SETTLE_S after the scenario's last answer: memory still held
    health_worst_ms: float
    health_polls: int
    failures: dict[str, int]  # failed /_health polls: "timeout", a status code or an error's name
    health_unanswered_s: float


@contextmanager
def measuring(pid: int, base: str) -> Iterator[list[Figures]]:
    """Measure for the duration of the block; the list yielded holds the figures afterwards."""
    ctx = multiprocessing.get_context("spawn")
    ours, theirs = ctx.Pipe()
    process = ctx.Process(target=monitor, args=(pid, base, theirs), daemon=True)
    process.start()
    if not ours.poll(30) or ours.recv() != "ready":
        raise SystemExit("the monitor did not start")
    result: list[Figures] = []
    try:
        yield result
        time.sleep(SETTLE_S)
    finally:
        ours.send("stop")
        data = ours.recv()
        process.join(timeout=10)
        rss, health = data["rss"], data["health"]
        result.append(
            Figures(
                rss_before_mb=rss[0] / MB if rss else float("nan"),
                rss_peak_mb=max(rss) / MB if rss else float("nan"),
                rss_after_mb=rss[-1] / MB if rss else float("nan"),
                health_worst_ms=max(health, default=float("nan")),
                health_polls=len(health),
                failures=data["failures"],
                health_unanswered_s=data["unanswered"],
            )
        )


# --- the table ----------------------------------------------------------------------------------------

COLUMNS = [
    ("scenario", 24),
    ("status(es)", 60),
    ("took", 6),
    ("RSS before", 10),
    (f"peak RSS (< {RSS_TARGET_MB} MB)", 21),
    ("RSS after", 9),
    (f"worst /_health (< {HEALTH_TARGET_MS} ms)", 26),
    ("/_health unanswered", 19),
    ("/_health polls (failed)", 23),
    ("note", 0),
]


def row(cells: list[str]) -> str:
    return "| " + " | ".join(c.ljust(w) for c, (_, w) in zip(cells, COLUMNS, strict=True)) + " |"


def header() -> str:
    return row([name for name, _ in COLUMNS]) + "\n" + row(["-" * max(w, 3) for _, w in COLUMNS])


def figures_row(name: str, outcome: Outcome, seconds: float, figures: Figures, server_note: str) -> str:
    rss_ok = figures.rss_peak_mb < RSS_TARGET_MB
    health_ok = figures.health_worst_ms < HEALTH_TARGET_MS
    worst = f"{figures.health_worst_ms:,.0f} ms"
    if figures.health_worst_ms >= HEALTH_TIMEOUT_S * 1000:
        worst = f"≥{worst} (timeout)"
    polls = f"{figures.health_polls}"
    if figures.failures:
        polls += " (" + ", ".join(f"{n} {what}" for what, n in sorted(figures.failures.items())) + ")"
    note = "; ".join(n for n in (outcome.note, server_note) if n)
    return row(
        [
            name,
            outcome.statuses,
            f"{seconds:.1f} s",
            f"{figures.rss_before_mb:,.0f} MB",
            f"{figures.rss_peak_mb:,.0f} MB {'ok' if rss_ok else 'OVER'}",
            f"{figures.rss_after_mb:,.0f} MB",
            f"{worst} {'ok' if health_ok else 'OVER'}",
            f"{figures.health_unanswered_s:.2f} s",
            polls,
            note,
        ]
    )


def run_one(name: str, fn: Scenario, env: dict[str, str], work: Path, keys: Keys) -> str:
    with tilecast_process({**env, **SCENARIO_ENV[name]}, work) as (base, proc):
        # Warm up the worker: its pool, the key check, the routes.
        httpx.get(f"{base}/_health", timeout=10).raise_for_status()
        httpx.get(
            f"{base}/api/environments/{keys.team_id}/dashboards/",
            headers={"Authorization": f"Bearer {keys.personal}"},
            timeout=10,
        ).raise_for_status()
        with httpx.Client(timeout=CLIENT_TIMEOUT) as client, measuring(proc.pid, base) as result:
            start = time.perf_counter()
            try:
                outcome = fn(base, keys, client)
            except Exception as exc:  # a measuring script: report what broke and go on
                outcome = Outcome(type(exc).__name__, str(exc)[:80])
            seconds = time.perf_counter() - start
        server_note = "" if proc.poll() is None else f"server exited with {proc.returncode}"
    return figures_row(name, outcome, seconds, result[0], server_note)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", help="comma-separated scenario names (default: all)")
    parser.add_argument("--pool-seconds", type=float, default=OPTIONS["pool_seconds"])
    parser.add_argument("--pool-concurrency", type=int, default=OPTIONS["pool_concurrency"])
    parser.add_argument("--list", action="store_true", help="list the scenarios and exit")
    args = parser.parse_args()
    OPTIONS.update(pool_seconds=args.pool_seconds, pool_concurrency=args.pool_concurrency)

    if args.list:
        for name, fn in SCENARIOS:
            print(f"{name:<28} {(fn.__doc__ or '').strip()}")
        return
    chosen = SCENARIOS
    if args.only:
        wanted = set(args.only.split(","))
        unknown = wanted - {name for name, _ in SCENARIOS}
        if unknown:
            raise SystemExit(f"unknown scenario(s): {', '.join(sorted(unknown))}")
        chosen = [(name, fn) for name, fn in SCENARIOS if name in wanted]

    t0 = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="tilecast-abuse-"))
    with database(work) as (url, env, embedded):
        info = create_key(env, work, email="abuse@example.com")
        keys = Keys(
            personal=info["key"],
            project=info["project_api_key"],
            team_id=int(info["team_id"]),
            database_url=url.replace("postgresql+asyncpg://", "postgresql://", 1),
        )
        print(machine_line(embedded))
        print(
            f"one worker, a fresh server per scenario; RSS of the server process tree sampled every "
            f"{RSS_INTERVAL_S * 1000:.0f} ms; /_health polled every {HEALTH_INTERVAL_S * 1000:.0f} ms, "
            f"timeout {HEALTH_TIMEOUT_S * 1000:.0f} ms; MB = 2**20 bytes"
        )
        print(header(), flush=True)
        for name, fn in chosen:
            print(run_one(name, fn, env, work, keys), flush=True)
    shutil.rmtree(work, ignore_errors=True)  # the embedded database with what the scenarios stored
    print(f"total {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
