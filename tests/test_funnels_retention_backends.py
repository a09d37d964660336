"""Where ClickHouse and PostgreSQL differ, funnels and retention on the ClickHouse backend answer what
PostgreSQL does: each test names the difference (ClickHouse's `windowFunnel` rules, ties at one instant,
microseconds at the window's edge, medians, missing properties, week starts, timezones, test-account and
person filters) and runs on both backends, with numbers worked out by hand."""

from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import get_settings
from tests.events import event, ingest
from tests.factories import Actor
from tests.funnels_helpers import counts, funnel, funnel_query, step
from tests.kinds_helpers import days, insight, pageview, put, query, team_settings
from tests.trends_helpers import absolute, post_query, set_timezone

pytestmark = pytest.mark.both_backends

JAN = absolute("2024-01-01", "2024-01-07")


def _times(results: list[dict[str, Any]]) -> list[tuple[Any, Any]]:
    return [(s["average_conversion_time"], s["median_conversion_time"]) for s in results[1:]]


async def test_a_conversion_is_credited_to_the_latest_start_unlike_window_funnel(
    client: httpx.AsyncClient, actor: Actor
) -> None:
    # windowFunnel would time a → b from the first a (2 hours); PostHog's rule takes the latest a (1 hour).
    await ingest(
        client,
        actor,
        [
            event("a", "p", "2024-01-02T10:00:00Z", {}),
            event("a", "p", "2024-01-02T11:00:00Z", {}),
            event("b", "p", "2024-01-02T12:00:00Z", {}),
        ],
    )
    results = await funnel(client, actor, step("a"), step("b"), **JAN)
    assert counts(results) == [1, 1]
    assert _times(results) == [(3600.0, 3600.0)]


async def test_events_at_one_instant_are_taken_in_step_order_whatever_their_uuids(
    client: httpx.AsyncClient, actor: Actor
) -> None:
    # b and a at the same microsecond, b captured first: a → b still converts (step order breaks the tie),
    # on ClickHouse as on PostgreSQL whatever order the two UUIDs sort in on each.
    same = "2024-01-02T10:00:00.123456Z"
    for who in ("p", "q", "r", "s"):
        await ingest(client, actor, [event("b", who, same, {}), event("a", who, same, {})])
    results = await funnel(client, actor, step("a"), step("b"), **JAN)
    assert counts(results) == [4, 4]
    assert _times(results) == [(None, None)]  # zero conversion times are left out of the means


async def test_the_window_edge_is_inclusive_to_the_microsecond(
    client: httpx.AsyncClient, actor: Actor
) -> None:
    await ingest(
        client,
        actor,
        [
            event("a", "in", "2024-01-02T10:00:00Z", {}),
            event("b", "in", "2024-01-02T10:01:00Z", {}),  # exactly one minute: converts
            event("a", "out", "2024-01-02T10:00:00Z", {}),
            event("b", "out", "2024-01-02T10:01:00.000001Z", {}),  # one microsecond late
        ],
    )
    window = {"funnelWindowInterval": 1, "funnelWindowIntervalUnit": "minute"}
    results = await funnel(client, actor, step("a"), step("b"), funnelsFilter=window, **JAN)
    assert counts(results) == [2, 1]
    assert _times(results) == [(60.0, 60.0)]


async def test_medians_interpolate_as_percentile_cont(client: httpx.AsyncClient, actor: Actor) -> None:
    # Conversion times 60, 120, 300 and 600 seconds: mean 270, median (120 + 300) / 2 = 210.
    events = []
    for who, seconds in (("p", 60), ("q", 120), ("r", 300), ("s", 600)):
        events += [
            event("a", who, "2024-01-02T10:00:00Z", {}),
            event("b", who, f"2024-01-02T10:{seconds // 60:02d}:00Z", {}),
        ]
    await ingest(client, actor, events)
    results = await funnel(client, actor, step("a"), step("b"), **JAN)
    assert _times(results) == [(270.0, 210.0)]
    ttc = await funnel(
        client, actor, step("a"), step("b"), funnelsFilter={"funnelVizType": "time_to_convert"}, **JAN
    )
    assert ttc["average_conversion_time"] == 270.0 and ttc["median_conversion_time"] == 210.0


async def test_missing_properties_match_no_step_and_negations_match_them(
    client: httpx.AsyncClient, actor: Actor
) -> None:
    # p's b has plan "pro", q's b has none: "plan = pro" matches p alone; "plan is not pro" matches q
    # (PostgreSQL's NULL reading of a missing property, the same three-valued logic on ClickHouse).
    await ingest(
        client,
        actor,
        [
            event("a", "p", "2024-01-02T10:00:00Z", {}),
            event("b", "p", "2024-01-02T11:00:00Z", {"plan": "pro"}),
            event("a", "q", "2024-01-02T10:00:00Z", {}),
            event("x", "q", "2024-01-02T10:30:00Z", {}),
            event("b", "q", "2024-01-02T11:00:00Z", {}),
        ],
    )
    pro = [{"key": "plan", "value": "pro", "operator": "exact", "type": "event"}]
    not_pro = [{"key": "plan", "value": "pro", "operator": "is_not", "type": "event"}]
    assert counts(await funnel(client, actor, step("a"), step("b", properties=pro), **JAN)) == [2, 1]
    assert counts(await funnel(client, actor, step("a"), step("b", properties=not_pro), **JAN)) == [2, 1]
    # An exclusion whose property is missing on q's x excludes nobody; its negation excludes q.
    for operator, expected in (("exact", [2, 2]), ("is_not", [1, 1])):
        gone = [{"key": "gone", "value": "y", "operator": operator, "type": "event"}]
        exclusion = {
            "kind": "EventsNode",
            "event": "x",
            "properties": gone,
            "funnelFromStep": 0,
            "funnelToStep": 1,
        }
        filters = {"exclusions": [exclusion]}
        assert (
            counts(await funnel(client, actor, step("a"), step("b"), funnelsFilter=filters, **JAN))
            == expected
        )


def _matrix(body: dict[str, Any]) -> list[list[int]]:
    return [[value["count"] for value in row["values"]] for row in body["results"]]


async def test_retention_weeks_start_on_the_teams_day(client: httpx.AsyncClient, actor: Actor) -> None:
    # Saturday 6 and Sunday 7 January 2024: one week when weeks start on Monday, two when on Sunday.
    await put(client, actor, pageview("p", "2024-01-06T12:00:00Z"), pageview("p", "2024-01-07T12:00:00Z"))
    weekly = {"period": "Week", "totalIntervals": 2}
    range_ = days("2024-01-01", "2024-01-13")
    sunday = await query(client, actor, "RetentionQuery", dateRange=range_, retentionFilter=weekly)
    assert [row["date"][:10] for row in sunday["results"]] == ["2023-12-31", "2024-01-07"]
    assert _matrix(sunday) == [[1, 1], [1, 0]]
    await team_settings(client, actor, week_start_day=1)
    monday = await query(client, actor, "RetentionQuery", dateRange=range_, retentionFilter=weekly)
    assert [row["date"][:10] for row in monday["results"]] == ["2024-01-01", "2024-01-08"]
    assert _matrix(monday) == [[1, 0], [0, 0]]


async def test_retention_periods_are_the_teams_local_days_and_months(
    client: httpx.AsyncClient, actor: Actor, db: AsyncSession
) -> None:
    # In Tokyo (+9), 31 January 20:00 UTC is 1 February: p starts in January and returns in February.
    await set_timezone(db, actor, "Asia/Tokyo")
    await put(client, actor, pageview("p", "2024-01-15T12:00:00Z"), pageview("p", "2024-01-31T20:00:00Z"))
    monthly = {"period": "Month", "totalIntervals": 2}
    body = await query(
        client, actor, "RetentionQuery", dateRange=days("2024-01-01", "2024-02-29"), retentionFilter=monthly
    )
    assert _matrix(body) == [[1, 1], [1, 0]]


async def test_retention_reads_test_account_and_person_filters(
    client: httpx.AsyncClient, actor: Actor
) -> None:
    await put(
        client,
        actor,
        event("signed_up", "staff", "2024-01-01T09:00:00Z", {"$set": {"email": "me@tilecast.dev"}}),
        event("signed_up", "user", "2024-01-01T09:00:00Z", {"$set": {"email": "u@example.com"}}),
        *(pageview(who, f"2024-01-0{day}T10:00:00Z") for who in ("staff", "user") for day in (1, 2)),
    )
    staff = [{"key": "email", "type": "person", "value": "tilecast.dev", "operator": "not_icontains"}]
    await team_settings(client, actor, test_account_filters=staff)
    source = {"dateRange": days("2024-01-01", "2024-01-02"), "retentionFilter": {"totalIntervals": 2}}
    assert _matrix(await query(client, actor, "RetentionQuery", **source)) == [[2, 2], [2, 0]]
    only_users = await query(client, actor, "RetentionQuery", filterTestAccounts=True, **source)
    assert _matrix(only_users) == [[1, 1], [1, 0]]
    person = [{"key": "email", "type": "person", "value": "example.com", "operator": "icontains"}]
    assert _matrix(await query(client, actor, "RetentionQuery", properties=person, **source)) == [
        [1, 1],
        [1, 0],
    ]
    breakdown = {"breakdown": "email", "breakdown_type": "person"}
    by_email = await query(client, actor, "RetentionQuery", breakdownFilter=breakdown, **source)
    assert sorted(
        (row["breakdown_value"], [v["count"] for v in row["values"]]) for row in by_email["results"]
    ) == [
        ("me@tilecast.dev", [1, 0]),
        ("me@tilecast.dev", [1, 1]),
        ("u@example.com", [1, 0]),
        ("u@example.com", [1, 1]),
    ]


@pytest.mark.parametrize(
    "setting", ["TILECAST_CLICKHOUSE_MAX_RESULT_ROWS", "TILECAST_CLICKHOUSE_MAX_MEMORY_BYTES"]
)
async def test_clickhouse_limits_apply_to_funnels_and_retention(
    client: httpx.AsyncClient,
    actor: Actor,
    events_backend: str,
    monkeypatch: pytest.MonkeyPatch,
    setting: str,
    request: pytest.FixtureRequest,
) -> None:
    # Time to convert returns one row per converted actor, retention one per cell: past one row (or byte),
    # each is refused naming ClickHouse's setting, as trends are. (The second query follows a failed one:
    # chdb hands the query after a failure a corrupt result unless the client takes it first.)
    for who in ("p", "q", "r"):
        await ingest(
            client,
            actor,
            [event("a", who, "2024-01-02T10:00:00Z", {}), event("b", who, "2024-01-03T10:00:00Z", {})],
        )
    monkeypatch.setenv(setting, "1")
    get_settings.cache_clear()
    request.addfinalizer(get_settings.cache_clear)  # before monkeypatch restores the environment
    ttc = funnel_query(step("a"), step("b"), funnels_filter={"funnelVizType": "time_to_convert"}, **JAN)
    retention = insight(
        "RetentionQuery",
        dateRange=days("2024-01-01", "2024-01-04"),
        retentionFilter={
            "targetEntity": {"id": "a", "type": "events"},
            "returningEntity": {"id": "b", "type": "events"},
            "totalIntervals": 3,
        },
    )
    for body in (ttc, retention):
        response = await post_query(client, actor, body)
        if events_backend == "postgres":  # ClickHouse's settings only
            assert response.status_code == 200, response.text
            continue
        assert response.status_code == 400, response.text
        assert response.json()["code"] == "query_too_large" and setting in response.json()["detail"]


async def test_retention_hours_are_the_teams_local_hours(
    client: httpx.AsyncClient, actor: Actor, db: AsyncSession
) -> None:
    # In Kolkata (+5:30) 04:45 and 05:20 UTC are 10:15 and 10:50, one local hour; 05:35 UTC is 11:05, the
    # next. In UTC the first two would be two hours apart.
    await set_timezone(db, actor, "Asia/Kolkata")
    stamps = ("2024-01-02T04:45:00Z", "2024-01-02T05:20:00Z", "2024-01-02T05:35:00Z")
    await put(client, actor, *(pageview("p", at) for at in stamps))
    hourly = {"period": "Hour", "totalIntervals": 3}
    range_ = {"date_from": "2024-01-02T10:00:00", "date_to": "2024-01-02T12:00:00", "explicitDate": True}
    body = await query(client, actor, "RetentionQuery", dateRange=range_, retentionFilter=hourly)
    rows = {row["date"][:16]: [value["count"] for value in row["values"]] for row in body["results"]}
    assert rows["2024-01-02T10:00"] == [1, 1, 0]
    assert rows["2024-01-02T11:00"] == [1, 0, 0]
