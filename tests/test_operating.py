"""Operating Tilecast as its docs say: many hosts starting at once on one database, `--no-migrate`, one log
format (plain or JSON), `/metrics` summed over every worker, `prune-events` while capture goes on, and the
daily retention run taken by one worker at a time."""

import asyncio
import json
import re
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from app.db import async_url
from app.ingestion.retention import RETENTION_LOCK_ID, apply_retention
from tests.conftest import FreshDatabases
from tests.live import (
    TILECAST,
    env_without_database,
    free_port,
    run_cli,
    serve,
    start_server,
    stop_server,
    wait_ready,
)


def _dsn(url: str) -> str:
    return async_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _fetch(url: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    async def go() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(_dsn(url))
        try:
            return list(await conn.fetch(sql, *args))
        finally:
            await conn.close()

    return asyncio.run(go())


@contextmanager
def _servers(env: dict[str, str], cwd: Path, count: int) -> Iterator[list[tuple[str, Path]]]:
    """`count` `tilecast serve` processes started at the same moment; yields once every one is ready."""
    started = []
    try:
        for _ in range(count):
            started.append(start_server(env, cwd))
        for proc, base, log in started:
            wait_ready(proc, base, log, seconds=90)
        yield [(base, log) for _, base, log in started]
    finally:
        for proc, _, _ in started:
            stop_server(proc)


def test_hosts_starting_at_once_on_an_empty_database_migrate_once_and_all_come_up(
    fresh_databases: FreshDatabases, tmp_path: Path
) -> None:
    url = fresh_databases.create(migrated=False)
    env = env_without_database(DATABASE_URL=url)
    with _servers(env, tmp_path, 3) as servers:
        for base, _ in servers:
            assert httpx.get(f"{base}/_readyz").json() == {"status": "ok"}
        logs = [log.read_text() for _, log in servers]
    # Exactly one host ran the migrations; the others waited for its lock and found the schema current.
    ran = [log for log in logs if "Running upgrade  -> 0001" in log]
    assert len(ran) == 1, logs
    for log in logs:
        assert re.search(r"database schema: at migration \d{4} \(the latest\)", log), log
    head = _fetch(url, "SELECT version_num FROM alembic_version")
    assert len(head) == 1


def test_no_migrate_refuses_an_older_schema_and_serves_a_current_one(
    fresh_databases: FreshDatabases, tmp_path: Path
) -> None:
    url = fresh_databases.create(migrated=False)
    env = env_without_database(DATABASE_URL=url)
    refused = subprocess.run(
        [TILECAST, "serve", "--no-migrate", "--port", str(free_port())],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 1
    assert "older than this release needs: run `tilecast migrate` first" in refused.stderr
    # Nothing was migrated.
    assert _fetch(url, "SELECT to_regclass('alembic_version') IS NULL AS missing")[0]["missing"]

    migrated = run_cli(["migrate"], env)
    assert migrated.returncode == 0, migrated.stderr
    assert "database schema: at migration" in migrated.stderr
    with serve(env, tmp_path, args=["--no-migrate"]) as (base, log):
        assert httpx.get(f"{base}/_readyz").status_code == 200
        text = log.read_text()
    assert "not migrated: --no-migrate" in text and "Running upgrade" not in text


def test_start_up_says_what_it_uses_and_json_logs_are_one_object_per_line(
    fresh_databases: FreshDatabases, tmp_path: Path
) -> None:
    url = fresh_databases.create(migrated=False)
    env = env_without_database(DATABASE_URL=url, TILECAST_LOG_FORMAT="json")
    with serve(env, tmp_path) as (base, log):
        httpx.get(f"{base}/api/projects/1/dashboards/", params={"personal_api_key": "phx_secret"})
        time.sleep(0.3)
        lines = log.read_text().splitlines()
    records = [json.loads(line) for line in lines]  # every line, uvicorn's too, is one JSON object
    messages = [r["message"] for r in records]
    database = next(m for m in messages if m.startswith("database: "))
    # The URL without its password or query string (a socket directory named), and the server's version.
    assert re.match(r"database: postgresql(\+asyncpg)?://\S+( \(socket \S+\))? \(PostgreSQL \d+", database), (
        database
    )
    assert any(re.match(r"database schema: at migration \d{4} \(the latest\)", m) for m in messages)
    assert any(re.match(r"listening on http://127\.0\.0\.1:\d+ with 1 worker$", m) for m in messages)
    assert any(r["logger"].startswith("uvicorn") for r in records)
    access = next(r for r in records if r["logger"] == "tilecast.access" and r["path"] != "/_readyz")
    assert access["method"] == "GET" and access["path"] == "/api/projects/1/dashboards/"
    assert access["status"] == 401 and isinstance(access["duration_ms"], float)
    assert {"time", "level"} <= access.keys()
    assert "phx_secret" not in "\n".join(lines)


def test_every_option_shows_its_default_in_help() -> None:
    def help_of(command: str) -> str:
        return " ".join(run_cli([command, "--help"], env_without_database()).stdout.split())

    serve_help = help_of("serve")
    assert "(default: 127.0.0.1)" in serve_help and "(default: 8000)" in serve_help
    assert "(default: 1)" in serve_help
    demo_help = help_of("demo")
    assert "(default: 100000)" in demo_help and "(default: http://127.0.0.1:8000)" in demo_help
    prune_help = help_of("prune-events")
    assert "(default: 5000)" in prune_help


def _metrics(base: str, token: str) -> dict[str, float]:
    """Every sample of the scrape: `name{labels}` → value."""
    got = httpx.get(f"{base}/metrics", headers={"Authorization": f"Bearer {token}"})
    assert got.status_code == 200, got.text
    assert got.headers["content-type"].startswith("text/plain")
    samples = {}
    for line in got.text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    return samples


def _batch(base: str, token: str, events: list[dict[str, Any]]) -> None:
    sent = httpx.post(f"{base}/batch/", json={"api_key": token, "batch": events}, timeout=30)
    assert sent.status_code == 200, sent.text


def test_metrics_sum_every_worker_and_need_the_token(fresh_databases: FreshDatabases, tmp_path: Path) -> None:
    env = env_without_database(
        DATABASE_URL=fresh_databases.create(migrated=False), TILECAST_METRICS_TOKEN="m-t0k"
    )
    created = json.loads(run_cli(["create-key", "--email", "ops@example.com", "--json"], env).stdout)
    key, team, project_token = created["key"], created["team_id"], created["project_api_key"]
    with serve(env, tmp_path, workers=2) as (base, _):
        assert httpx.get(f"{base}/metrics").status_code == 404
        assert httpx.get(f"{base}/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 404
        with httpx.Client(base_url=base, timeout=30) as http:
            for _ in range(40):
                assert http.get("/_health").status_code == 200
            assert httpx.get(f"{base}/_health").status_code == 200  # a new connection, maybe the other worker
            for n in range(3):
                _batch(
                    base, project_token, [{"event": "signup", "distinct_id": f"u{n}-{i}"} for i in range(5)]
                )
            query = {"kind": "TrendsQuery", "series": [{"kind": "EventsNode", "event": "signup"}]}
            auth = {"Authorization": f"Bearer {key}"}
            for _ in range(2):
                ran = http.post(f"/api/projects/{team}/query/", json={"query": query}, headers=auth)
                assert ran.status_code == 200, ran.text
        samples = _metrics(base, "m-t0k")
    health = 'tilecast_http_requests_total{method="GET",route="/_health",status="200"}'
    assert samples[health] == 41
    assert samples["tilecast_capture_events_total"] == 15
    assert samples["tilecast_capture_batches_total"] == 3
    computed = samples['tilecast_query_computations_total{kind="TrendsQuery",outcome="ok"}']
    hits = samples.get('tilecast_query_cache_hits_total{kind="TrendsQuery"}', 0)
    assert computed + hits == 2 and computed >= 1
    route = "/api/projects/{project_id}/query/"
    assert samples[f'tilecast_http_requests_total{{method="POST",route="{route}",status="200"}}'] == 2
    assert samples[f'tilecast_http_request_duration_seconds_count{{method="POST",route="{route}"}}'] == 2
    # Both workers' pools are reported; nothing is checked out between requests.
    assert len([name for name in samples if name.startswith("tilecast_db_pool_size{")]) == 2
    assert samples["tilecast_db_pool_connections_in_use"] == 0
    assert samples["tilecast_open_streams"] == 0


def test_metrics_on_a_port_of_their_own(fresh_databases: FreshDatabases, tmp_path: Path) -> None:
    port = free_port()
    env = env_without_database(
        DATABASE_URL=fresh_databases.create(migrated=False), TILECAST_METRICS_PORT=str(port)
    )
    with serve(env, tmp_path, workers=2) as (base, log):
        for _ in range(5):
            httpx.get(f"{base}/_health")
        # Not on the public port at all without a token.
        assert httpx.get(f"{base}/metrics").status_code == 404
        scraped = httpx.get(f"http://127.0.0.1:{port}/metrics")
        assert scraped.status_code == 200
        assert 'tilecast_http_requests_total{method="GET",route="/_health",status="200"} 5.0' in scraped.text
        assert f"metrics: http://127.0.0.1:{port}/metrics" in log.read_text()


def test_prune_events_while_capture_goes_on(fresh_databases: FreshDatabases, tmp_path: Path) -> None:
    url = fresh_databases.create(migrated=False)
    env = env_without_database(DATABASE_URL=url)
    created = json.loads(run_cli(["create-key", "--email", "prune@example.com", "--json"], env).stdout)
    other = json.loads(
        run_cli(["create-key", "--email", "keep@example.com", "--team", "Keep", "--json"], env).stdout
    )
    team, token = created["team_id"], created["project_api_key"]
    old = "2020-06-01T12:00:00Z"
    with serve(env, tmp_path) as (base, _):
        for chunk in range(6):
            _batch(
                base,
                token,
                [{"event": "old", "distinct_id": f"o{chunk}-{i}", "timestamp": old} for i in range(500)],
            )
        _batch(base, other["project_api_key"], [{"event": "old", "distinct_id": "k", "timestamp": old}])

        acknowledged: list[str] = []
        failures: list[str] = []
        stop = threading.Event()

        def capture_load() -> None:
            with httpx.Client(base_url=base, timeout=30) as http:
                while not stop.is_set():
                    ids = [str(uuid.uuid4()) for _ in range(50)]
                    events = [{"event": "new", "distinct_id": "n", "uuid": u} for u in ids]
                    sent = http.post("/batch/", json={"api_key": token, "batch": events})
                    if sent.status_code == 200:
                        acknowledged.extend(ids)
                    else:
                        failures.append(f"{sent.status_code} {sent.text}")

        loader = threading.Thread(target=capture_load)
        loader.start()
        try:
            time.sleep(0.5)
            pruned = run_cli(
                ["prune-events", "--before", "2021-01-01", "--team", str(team), "--batch-size", "400"], env
            )
            time.sleep(0.5)
        finally:
            stop.set()
            loader.join()
    assert pruned.returncode == 0, pruned.stderr
    assert json.loads(pruned.stdout) == {"deleted": 3000}
    assert f"deleted 3000 events of team {team} timed before 2021-01-01T00:00:00+00:00" in pruned.stderr
    assert failures == [] and len(acknowledged) >= 50
    rows = _fetch(url, "SELECT team_id, event, uuid::text AS uuid FROM events")
    assert [r for r in rows if r["team_id"] == team and r["event"] == "old"] == []
    assert {r["uuid"] for r in rows if r["event"] == "new"} == set(acknowledged)
    # Another team's events are not touched by a pruning of one team.
    assert [r["event"] for r in rows if r["team_id"] == other["team_id"]] == ["old"]

    everything = run_cli(["prune-events", "--before", "2021-01-01"], env)
    assert json.loads(everything.stdout) == {"deleted": 1}


@pytest.mark.parametrize(
    "args", [["--before", "yesterday"], ["--before", "2021-01-01", "--batch-size", "0"], []]
)
def test_prune_events_refuses_bad_arguments(args: list[str]) -> None:
    refused = run_cli(["prune-events", *args], env_without_database(DATABASE_URL="postgresql://nowhere/none"))
    assert refused.returncode == 2, refused.stderr


async def test_retention_runs_on_one_worker_at_a_time(fresh_databases: FreshDatabases) -> None:
    from app.config import get_settings
    from app.db import create_engine, create_sessionmaker
    from tests.factories import make_actor

    url = await asyncio.to_thread(fresh_databases.create)
    engine = create_engine(url, get_settings())
    try:
        sessionmaker = create_sessionmaker(engine)
        async with sessionmaker() as session:
            actor = await make_actor(session)
        now = datetime(2026, 6, 1, tzinfo=UTC)
        conn = await asyncpg.connect(_dsn(url))
        try:
            for days_ago in (10, 29, 31, 400):
                await conn.execute(
                    "INSERT INTO events (team_id, uuid, event, distinct_id, timestamp, properties) "
                    "VALUES ($1, $2, 'e', 'd', $3, '{}')",
                    actor.team.id,
                    uuid.uuid4(),
                    now - timedelta(days=days_ago),
                )
            # Another worker holds the lock: this one does nothing.
            await conn.execute("SELECT pg_advisory_lock($1)", RETENTION_LOCK_ID)
            assert await apply_retention(engine, sessionmaker, 30, lambda: now) is None
            assert await conn.fetchval("SELECT count(*) FROM events") == 4
            await conn.execute("SELECT pg_advisory_unlock($1)", RETENTION_LOCK_ID)

            assert await apply_retention(engine, sessionmaker, 30, lambda: now) == 2
            left = await conn.fetch("SELECT timestamp FROM events ORDER BY timestamp")
            assert [now - r["timestamp"] for r in left] == [timedelta(days=29), timedelta(days=10)]
            # The lock was given back.
            assert await conn.fetchval("SELECT pg_try_advisory_lock($1)", RETENTION_LOCK_ID)
        finally:
            await conn.close()
    finally:
        await engine.dispose()


def test_the_retention_setting_prunes_at_start(fresh_databases: FreshDatabases, tmp_path: Path) -> None:
    url = fresh_databases.create(migrated=False)
    env = env_without_database(DATABASE_URL=url)
    created = json.loads(run_cli(["create-key", "--email", "ret@example.com", "--json"], env).stdout)
    with serve(env, tmp_path) as (base, _):
        _batch(
            base,
            created["project_api_key"],
            [
                {"event": "ancient", "distinct_id": "a", "timestamp": "2020-01-01T00:00:00Z"},
                {"event": "recent", "distinct_id": "a"},
            ],
        )
    with serve(env | {"TILECAST_EVENTS_RETENTION_DAYS": "90"}, tmp_path) as (_, log):
        deadline = time.monotonic() + 30
        while _fetch(url, "SELECT 1 FROM events WHERE event = 'ancient'") and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(0.3)
        text = log.read_text()
    assert [r["event"] for r in _fetch(url, "SELECT event FROM events")] == ["recent"]
    assert "events retention: deleted 1 events older than 90 days" in text
