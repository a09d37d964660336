"""Where ClickHouse and PostgreSQL differ, the ClickHouse backend answers what PostgreSQL does: each test
names the difference (week starts, timezones, percentiles, ties and null values in breakdowns, JSON values,
person properties) and runs on both backends. Then what only the ClickHouse backend does: the kinds it
refuses by name, the regular expressions it refuses, its per-query limits."""

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from app.clickhouse.backend import ClickHouseBackend
from app.clickhouse.client import ChdbClient
from app.config import get_settings
from app.query.base import QueryTimeout
from tests.events import event, ingest
from tests.factories import Actor
from tests.trends_helpers import absolute, error, node, post_query, results, set_timezone, trends_query, utc

pytestmark = pytest.mark.both_backends

OTHER = "$$_posthog_breakdown_other_$$"
NULL = "$$_posthog_breakdown_null_$$"


async def test_week_starts_agree_on_both_backends(
    client: httpx.AsyncClient, actor: Actor, db: AsyncSession
) -> None:
    # Sunday 9 March and Monday 10 March 2025: the same week when weeks start on Sunday, not on Monday.
    days = [utc(2025, 3, 8, 12), utc(2025, 3, 9, 12), utc(2025, 3, 10, 12), utc(2025, 3, 16, 12)]
    await ingest(client, actor, [event("$pageview", "a", day, {}) for day in days])
    range_ = absolute("2025-03-03", "2025-03-18")
    [sunday] = await results(client, actor, node(), interval="week", **range_)
    assert sunday["days"] == ["2025-03-02", "2025-03-09", "2025-03-16"]
    assert sunday["data"] == [1, 2, 1]
    actor.team.week_start_day = 1
    await db.commit()
    [monday] = await results(client, actor, node(), interval="week", **range_)
    assert monday["days"] == ["2025-03-03", "2025-03-10", "2025-03-17"]
    assert monday["data"] == [2, 2, 0]
    # Weekly active users at weekly buckets are uniques per week, on the team's weeks too.
    await ingest(client, actor, [event("$pageview", "b", utc(2025, 3, 9, 13), {})])
    [active] = await results(client, actor, node(math="monthly_active"), interval="week", **range_)
    # (D - 30 days, D] for each Monday D: nothing before the 3rd.
    assert active["days"] == monday["days"] and active["data"] == [0, 2, 2]


async def test_timezones_agree_on_both_backends(
    client: httpx.AsyncClient, actor: Actor, db: AsyncSession
) -> None:
    # Lord Howe: +10:30 in winter, +11 in summer (a half-hour DST change, on 6 April 2025 at 02:00 local).
    await set_timezone(db, actor, "Australia/Lord_Howe")
    stamps = [
        utc(2025, 4, 5, 14, 50),
        utc(2025, 4, 5, 15, 10),
        utc(2025, 4, 5, 15, 40),
        utc(2025, 4, 5, 16, 5),
    ]
    await ingest(client, actor, [event("$pageview", f"u{i}", at, {}) for i, at in enumerate(stamps)])
    range_ = absolute("2025-04-06T00:00:00", "2025-04-06T03:59:59", explicitDate=True)
    [hourly] = await results(client, actor, node(), interval="hour", **range_)
    # 14:50Z = 01:50 (+11), 15:10Z = 01:40 (+10:30, after the change), 15:40Z = 02:10, 16:05Z = 02:35.
    assert hourly["days"] == [
        "2025-04-06 00:00:00",
        "2025-04-06 01:00:00",
        "2025-04-06 02:00:00",
        "2025-04-06 03:00:00",
    ]
    assert hourly["data"] == [0, 2, 2, 0]
    [daily] = await results(client, actor, node(math="dau"), **absolute("2025-04-05", "2025-04-07"))
    assert daily["data"] == [0, 4, 0]


async def test_percentiles_agree_exactly_on_both_backends(client: httpx.AsyncClient, actor: Actor) -> None:
    values = [1, 2, 3, 4, 10, 0.1, 0.7]
    await ingest(
        client,
        actor,
        [event("$pageview", f"u{i}", utc(2025, 3, 1, 12, i), {"v": v}) for i, v in enumerate(values)],
    )
    ordered = sorted(float(v) for v in values)
    for math, q in (("median", 0.5), ("p75", 0.75), ("p90", 0.9), ("p95", 0.95), ("p99", 0.99)):
        [series] = await results(
            client, actor, node(math=math, math_property="v"), **absolute("2025-03-01", "2025-03-01")
        )
        # PostgreSQL's percentile_cont, to the last bit: lo + (hi - lo) * fraction.
        position = q * (len(ordered) - 1)
        low, high = ordered[int(position)], ordered[min(int(position) + 1, len(ordered) - 1)]
        assert series["data"] == [low + (high - low) * (position - int(position))], math


async def test_breakdown_ties_and_null_values_agree_on_both_backends(
    client: httpx.AsyncClient, actor: Actor
) -> None:
    values: list[Any] = ["b", "a", "B", "", None, "é", "b", "a", "B", "é"]
    events = [
        event("$pageview", f"u{i}", utc(2025, 3, 1, 12, i), {} if v is None else {"k": v})
        for i, v in enumerate(values)
    ]
    events.append(event("$pageview", "x", utc(2025, 3, 1, 13), {"k": None}))  # JSON null: the null value too
    await ingest(client, actor, events)
    breakdown = {"breakdownFilter": {"breakdown": "k", "breakdown_limit": 3}}
    out = await results(client, actor, node(), **breakdown, **absolute("2025-03-01", "2025-03-01"))
    # The null value (missing, "" and null: 3) ranks first; equal totals in byte order ("B" < "a" < "b" <
    # "é"); the values are shown by rank, then the null value, then the values past the limit.
    assert [(s["breakdown_value"], s["count"]) for s in out] == [
        ("B", 2.0),
        ("a", 2.0),
        (NULL, 3.0),
        (OTHER, 4.0),
    ]


async def test_json_values_read_alike_on_both_backends(client: httpx.AsyncClient, actor: Actor) -> None:
    properties: list[dict[str, Any]] = [
        {"v": 10},
        {"v": "10"},
        {"v": " 12 "},
        {"v": True},
        {"v": "true"},
        {"v": [1, 2]},
        {"v": {"a": 1}},
        {"v": "caf\u00e9\ttab"},
        {"v": None},
        {},
    ]
    await ingest(
        client,
        actor,
        [event("$pageview", f"u{i}", utc(2025, 3, 1, 12, i), p) for i, p in enumerate(properties)],
    )
    range_ = absolute("2025-03-01", "2025-03-01")

    async def count(*filters: dict[str, Any]) -> int:
        [series] = await results(client, actor, node(properties=list(filters)), **range_)
        total: int = series["data"][0]
        return total

    assert await count({"key": "v", "operator": "exact", "value": 10}) == 2  # 10 and "10"
    assert await count({"key": "v", "operator": "exact", "value": "true"}) == 2  # true and "true"
    assert await count({"key": "v", "operator": "exact", "value": ["10", "café\ttab"]}) == 3
    assert await count({"key": "v", "operator": "gt", "value": 11}) == 1  # " 12 " is a number
    assert await count({"key": "v", "operator": "is_set"}) == 8
    assert await count({"key": "v", "operator": "is_not", "value": 10}) == 8  # unset and null included
    assert await count({"key": "v", "operator": "icontains", "value": "CAFÉ"}) == 1
    assert await count({"key": "v", "operator": "not_icontains", "value": ["caf", "1"]}) == 4
    assert await count({"key": "v", "operator": "regex", "value": "^[0-9]+$"}) == 2
    assert await count({"key": "v", "operator": "not_regex", "value": ["^t", "^[0-9]"]}) == 6
    [summed] = await results(client, actor, node(math="sum", math_property="v"), **range_)
    assert summed["data"] == [32.0]


async def test_person_properties_agree_on_both_backends(client: httpx.AsyncClient, actor: Actor) -> None:
    await ingest(
        client,
        actor,
        [
            event("$identify", "p1", utc(2025, 3, 1, 9), {"$set": {"plan": "free"}}),
            event("$pageview", "p1", utc(2025, 3, 1, 10), {}),
            event("$pageview", "p2", utc(2025, 3, 1, 10), {"$set": {"plan": "pro"}}),
            event("$pageview", "p3", utc(2025, 3, 1, 11), {}),
        ],
    )
    # A later capture changes p1's plan: every event reads the person's current properties.
    await ingest(client, actor, [event("$identify", "p1", utc(2025, 3, 2, 9), {"$set": {"plan": "pro"}})])
    range_ = absolute("2025-03-01", "2025-03-01")
    out = await results(
        client, actor, node(), breakdownFilter={"breakdown": "plan", "breakdown_type": "person"}, **range_
    )
    assert [(s["breakdown_value"], s["data"]) for s in out] == [("pro", [2]), (NULL, [1])]
    filtered = {"key": "plan", "operator": "exact", "value": "pro", "type": "person"}
    [series] = await results(client, actor, node(math="dau", properties=[filtered]), **range_)
    assert series["data"] == [2]


@pytest.mark.parametrize("events_backend", ["clickhouse"], indirect=True)
async def test_hogql_runs_on_clickhouse(client: httpx.AsyncClient, actor: Actor) -> None:
    # SQL insights compute where the events are, on ClickHouse without PostgreSQL's SQL sandbox (the corpus
    # runs on both backends: tests/test_hogql_corpus.py).
    await ingest(client, actor, [event("$pageview", "u", datetime.now(UTC), {"a": "word"})])
    query = {"kind": "HogQLQuery", "query": "SELECT event, properties.a FROM events"}
    response = await post_query(client, actor, query)
    assert response.status_code == 200, response.text
    assert response.json()["results"] == [["$pageview", "word"]]


async def test_word_boundaries_are_refused_on_clickhouse(
    client: httpx.AsyncClient, actor: Actor, events_backend: str
) -> None:
    # `\b` is a backspace to PostgreSQL and a word boundary to RE2: ClickHouse refuses it rather than differ.
    # ClickHouse compiles a pattern when it first has a value to match: the team needs an event.
    await ingest(client, actor, [event("$pageview", "u", datetime.now(UTC), {"a": "word"})])
    query = trends_query(node(properties=[{"key": "a", "operator": "regex", "value": r"\bword"}]))
    if events_backend == "postgres":
        assert (await post_query(client, actor, query)).status_code == 200
        return
    body = await error(client, actor, query)
    assert body["code"] == "invalid_query" and "\\b is not supported" in body["detail"]
    # What RE2 cannot compile (look-ahead) is an invalid query, as PostgreSQL's refusals are.
    ahead = trends_query(node(properties=[{"key": "a", "operator": "regex", "value": "a(?=b)"}]))
    assert "regular expression" in (await error(client, actor, ahead))["detail"]


@pytest.mark.parametrize(
    "setting", ["TILECAST_CLICKHOUSE_MAX_RESULT_ROWS", "TILECAST_CLICKHOUSE_MAX_MEMORY_BYTES"]
)
async def test_clickhouse_limits_are_query_errors_naming_the_setting(
    client: httpx.AsyncClient,
    actor: Actor,
    events_backend: str,
    monkeypatch: pytest.MonkeyPatch,
    setting: str,
    request: pytest.FixtureRequest,
) -> None:
    await ingest(client, actor, [event("$pageview", f"u{i}", utc(2025, 3, i + 1, 12), {}) for i in range(5)])
    monkeypatch.setenv(setting, "1")
    get_settings.cache_clear()
    request.addfinalizer(get_settings.cache_clear)  # before monkeypatch restores the environment
    response = await post_query(
        client, actor, trends_query(node(math="dau"), **absolute("2025-03-01", "2025-03-05"))
    )
    if events_backend == "postgres":  # ClickHouse's settings only
        assert response.status_code == 200, response.text
        return
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["code"] == "query_too_large" and setting in body["detail"]


@pytest.mark.parametrize("events_backend", ["clickhouse"], indirect=True)
async def test_a_clickhouse_timeout_is_a_query_timeout(chdb_path: Path, events_store: ChdbClient) -> None:
    backend = ClickHouseBackend(events_store, timeout_ms=100, max_memory_bytes=10**9, max_result_rows=10)
    started = datetime.now()
    with pytest.raises(QueryTimeout):
        await backend._query("SELECT count() FROM numbers(100000000000) WHERE sipHash64(number) = 0", {})
    assert (datetime.now() - started).total_seconds() < 30
