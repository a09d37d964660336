"""PostHog's own Python SDK (the `posthog` package, pinned in the dev extra) against a live `tilecast serve`.

The SDK posts `{"api_key", "batch", "sent_at", "historical_migration"}` to `/batch/` (version 6 sent
`sentAt`, which capture ignores: same events, no skew correction). Only localhost is contacted."""

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import posthog
import pytest
from posthog import Posthog

from app.db import async_url
from tests.conftest import FreshDatabases
from tests.live import env_without_database, run_cli, serve

PINNED_SDK = "7.91.1"


async def _fetch(database_url: str, query: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(async_url(database_url).set(drivername="postgresql").render_as_string(False))
    try:
        return list(await conn.fetch(query, *args))
    finally:
        await conn.close()


def fetch(database_url: str, query: str, *args: Any) -> list[asyncpg.Record]:
    return asyncio.run(_fetch(database_url, query, *args))


@pytest.fixture(scope="module")
def live(fresh_databases: FreshDatabases, tmp_path_factory: pytest.TempPathFactory) -> Any:
    database_url = fresh_databases.create(migrated=False)
    env = env_without_database(DATABASE_URL=database_url, TILECAST_LOG_LEVEL="INFO")
    created = run_cli(["create-key", "--email", "sdk@example.com", "--team", "SDK", "--json"], env)
    assert created.returncode == 0, created.stderr
    other = run_cli(["create-key", "--email", "sdk@example.com", "--team", "Other", "--json"], env)
    workdir = tmp_path_factory.mktemp("sdk")
    with serve(env, workdir) as (base, log):
        yield database_url, base, log, json.loads(created.stdout), json.loads(other.stdout)


def _client(key: str, host: str, errors: list[Exception], **options: Any) -> Posthog:
    return Posthog(
        key,
        host=host,
        on_error=lambda error, _batch: errors.append(error),
        flush_interval=0.1,
        max_retries=0,
        **options,
    )


def test_the_pinned_sdk_is_the_one_tested() -> None:
    assert posthog.VERSION == PINNED_SDK


@pytest.mark.parametrize("gzip", [False, True], ids=["plain", "gzip"])
def test_sdk_events_are_stored(live: Any, gzip: bool) -> None:
    database_url, base, log, created, other = live
    team_id = created["team_id"]
    errors: list[Exception] = []
    run = uuid.uuid4().hex[:8]  # tells this run's events from the other parametrisation's
    client = _client(created["project_api_key"], base, errors, gzip=gzip)
    past = datetime.now(UTC) - timedelta(days=2)
    retried = str(uuid.uuid4())
    for i in range(25):
        client.capture(f"page {run}", distinct_id=f"user-{i % 5}", properties={"i": i, "$browser": "Firefox"})
    client.capture(f"old {run}", distinct_id="user-0", timestamp=past)
    client.capture(f"retried {run}", distinct_id="user-0", uuid=retried)
    client.capture(f"retried {run}", distinct_id="user-0", uuid=retried)  # the same event again
    client.set(distinct_id=f"user-set-{run}", properties={"plan": "pro"})
    client.flush()
    client.shutdown()
    assert errors == []

    rows = fetch(
        database_url,
        "SELECT event, distinct_id, timestamp, properties::text AS p FROM events "
        "WHERE team_id = $1 AND (event LIKE '%' || $2 OR distinct_id = $3)",
        team_id,
        run,
        f"user-set-{run}",
    )
    by_event: dict[str, list[Any]] = {}
    for row in rows:
        by_event.setdefault(row["event"], []).append(row)
    assert len(by_event[f"page {run}"]) == 25
    assert {r["distinct_id"] for r in by_event[f"page {run}"]} == {f"user-{i}" for i in range(5)}
    assert len(by_event[f"retried {run}"]) == 1
    (old,) = by_event[f"old {run}"]
    # The SDK sends `sent_at` with the client clock (this machine's): the corrected time is the timestamp.
    assert abs(old["timestamp"] - past) < timedelta(seconds=30)
    (identify,) = by_event["$set"]
    assert json.loads(identify["p"])["$set"] == {"plan": "pro"}
    properties = json.loads(by_event[f"page {run}"][0]["p"])
    assert properties["$lib"] == "posthog-python"
    assert properties["$lib_version"] == PINNED_SDK
    assert "$sent_at" in properties
    assert not fetch(database_url, "SELECT 1 FROM events WHERE team_id = $1", other["team_id"])
    assert "POST /batch/ 200" in log.read_text()


def test_sdk_with_an_unknown_key_gets_401_and_nothing_is_stored(live: Any) -> None:
    database_url, base, _log, _created, _other = live
    before = fetch(database_url, "SELECT count(*) AS n FROM events")[0]["n"]
    errors: list[Exception] = []
    client = _client("phc_" + uuid.uuid4().hex, base, errors)
    client.capture("nobody's", distinct_id="x")
    client.flush()
    client.shutdown()
    assert [getattr(e, "status", None) for e in errors] == [401]
    assert fetch(database_url, "SELECT count(*) AS n FROM events")[0]["n"] == before
