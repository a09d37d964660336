"""RetentionQuery on hand-built events, worked out by hand (insight-kinds §2), through `POST /query/`."""

from typing import Any

import httpx
import pytest

from tests.events import event
from tests.factories import Actor
from tests.kinds_helpers import days, pageview, put, query, refused, team_settings

pytestmark = pytest.mark.both_backends


def retention(**fields: Any) -> dict[str, Any]:
    return {"period": "Day", "totalIntervals": 4, **fields}


def matrix(body: dict[str, Any]) -> list[list[int]]:
    return [[value["count"] for value in row["values"]] for row in body["results"]]


async def _worked_example(client: httpx.AsyncClient, actor: Actor) -> None:
    """§2.4: a on Jan 1, 2 and 4; b on Jan 1 and 3; c on Jan 2 and 3."""
    visits = {"a": (1, 2, 4), "b": (1, 3), "c": (2, 3)}
    await put(
        client,
        actor,
        *(pageview(who, f"2024-01-0{day}T12:00:00Z") for who, on in visits.items() for day in on),
    )


async def test_worked_example_recurring_field_by_field(client: httpx.AsyncClient, actor: Actor) -> None:
    await _worked_example(client, actor)
    body = await query(
        client,
        actor,
        "RetentionQuery",
        dateRange=days("2024-01-01", "2024-01-04"),
        retentionFilter=retention(),
    )
    assert body["results"][0] == {
        "values": [
            {"count": 2, "label": "Day 0"},
            {"count": 1, "label": "Day 1"},
            {"count": 1, "label": "Day 2"},
            {"count": 1, "label": "Day 3"},
        ],
        "label": "Day 0",
        "date": "2024-01-01T00:00:00Z",
        "breakdown_value": None,
    }
    assert matrix(body) == [[2, 1, 1, 1], [2, 1, 1, 0], [2, 0, 0, 0], [1, 0, 0, 0]]
    assert [row["label"] for row in body["results"]] == ["Day 0", "Day 1", "Day 2", "Day 3"]
    assert [row["date"][:10] for row in body["results"]] == [f"2024-01-0{d}" for d in range(1, 5)]
    assert body["is_cached"] is False and "cache_key" in body


async def test_worked_example_first_time_and_cumulative(client: httpx.AsyncClient, actor: Actor) -> None:
    await _worked_example(client, actor)
    first_time = await query(
        client,
        actor,
        "RetentionQuery",
        dateRange=days("2024-01-01", "2024-01-04"),
        retentionFilter=retention(retentionType="retention_first_time"),
    )
    assert matrix(first_time) == [[2, 1, 1, 1], [1, 1, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]
    cumulative = await query(
        client,
        actor,
        "RetentionQuery",
        dateRange=days("2024-01-01", "2024-01-04"),
        retentionFilter=retention(cumulative=True),
    )
    assert matrix(cumulative) == [[2, 2, 2, 1], [2, 2, 1, 0], [2, 0, 0, 0], [1, 0, 0, 0]]


async def test_breakdown_same_value_on_start_and_return_limit_and_other(
    client: httpx.AsyncClient, actor: Actor
) -> None:
    """Starts: Chrome (a J1, a J2, b J1) = 3; Safari (b J2, c J1) = 2; "" (d J2, d J3) = 2. With a limit of 2,
    "" beats Safari on the tie (value order) and Safari becomes the other value, listed last. b's Safari
    return on J2 does not count for its Chrome cohort."""
    await put(
        client,
        actor,
        pageview("a", "2024-01-01T10:00:00Z", **{"$browser": "Chrome"}),
        pageview("a", "2024-01-02T10:00:00Z", **{"$browser": "Chrome"}),
        pageview("b", "2024-01-01T10:00:00Z", **{"$browser": "Chrome"}),
        pageview("b", "2024-01-02T10:00:00Z", **{"$browser": "Safari"}),
        pageview("c", "2024-01-01T10:00:00Z", **{"$browser": "Safari"}),
        pageview("d", "2024-01-02T10:00:00Z"),
        pageview("d", "2024-01-03T10:00:00Z"),
    )
    body = await query(
        client,
        actor,
        "RetentionQuery",
        dateRange=days("2024-01-01", "2024-01-03"),
        retentionFilter=retention(totalIntervals=3),
        breakdownFilter={"breakdown": "$browser", "breakdown_type": "event", "breakdown_limit": 2},
    )
    other = "$$_posthog_breakdown_other_$$"
    assert [row["breakdown_value"] for row in body["results"]] == ["Chrome"] * 3 + [""] * 3 + [other] * 3
    assert [row["label"] for row in body["results"]] == ["Day 0", "Day 1", "Day 2"] * 3
    assert matrix(body) == [
        [2, 1, 0], [1, 0, 0], [0, 0, 0],
        [0, 0, 0], [1, 1, 0], [1, 0, 0],
        [1, 0, 0], [1, 0, 0], [0, 0, 0],
    ]  # fmt: skip
    hidden = await query(
        client,
        actor,
        "RetentionQuery",
        dateRange=days("2024-01-01", "2024-01-03"),
        retentionFilter=retention(totalIntervals=3),
        breakdownFilter={
            "breakdown": "$browser",
            "breakdown_limit": 2,
            "breakdown_hide_other_aggregation": True,
        },
    )
    assert [row["breakdown_value"] for row in hidden["results"]] == ["Chrome"] * 3 + [""] * 3


async def _sign_ups(client: httpx.AsyncClient, actor: Actor) -> None:
    """x: a free sign-up J1, a pro one J2, a pageview J3. y: pro J1, pageview J2. z: pro on Dec 30 (before the
    range) and J2, pageview J3."""
    await put(
        client,
        actor,
        event("signed_up", "x", "2024-01-01T10:00:00Z", {"plan": "free"}),
        event("signed_up", "x", "2024-01-02T10:00:00Z", {"plan": "pro"}),
        pageview("x", "2024-01-03T10:00:00Z"),
        event("signed_up", "y", "2024-01-01T10:00:00Z", {"plan": "pro"}),
        pageview("y", "2024-01-02T10:00:00Z"),
        event("signed_up", "z", "2023-12-30T10:00:00Z", {"plan": "pro"}),
        event("signed_up", "z", "2024-01-02T10:00:00Z", {"plan": "pro"}),
        pageview("z", "2024-01-03T10:00:00Z"),
    )


async def test_first_time_first_ever_occurrence_and_recurring_cohorts(
    client: httpx.AsyncClient, actor: Actor
) -> None:
    await _sign_ups(client, actor)
    pro = [{"key": "plan", "value": ["pro"], "operator": "exact", "type": "event"}]
    target = {"id": "signed_up", "type": "events", "name": "signed_up", "properties": pro}

    async def cohorts(retention_type: str) -> list[list[int]]:
        body = await query(
            client,
            actor,
            "RetentionQuery",
            dateRange=days("2024-01-01", "2024-01-03"),
            retentionFilter=retention(totalIntervals=3, retentionType=retention_type, targetEntity=target),
        )
        return matrix(body)

    # First time (matching the filters, over all time): y J1, x J2 (its first pro sign-up); z's is before.
    assert await cohorts("retention_first_time") == [[1, 1, 0], [1, 1, 0], [0, 0, 0]]
    # First-ever occurrence: x's first sign-up is free, so x is out; z's is before the range.
    assert await cohorts("retention_first_ever_occurrence") == [[1, 1, 0], [0, 0, 0], [0, 0, 0]]
    # Recurring: every period with a pro sign-up: y J1; x and z J2 (both back J3).
    assert await cohorts("retention_recurring") == [[1, 1, 0], [2, 2, 0], [0, 0, 0]]


async def test_minimum_occurrences(client: httpx.AsyncClient, actor: Actor) -> None:
    """a: one pageview J1, two J2, one J3. A return period needs 2 pageviews: only J2 counts."""
    await put(
        client,
        actor,
        pageview("a", "2024-01-01T10:00:00Z"),
        pageview("a", "2024-01-02T10:00:00Z"),
        pageview("a", "2024-01-02T11:00:00Z"),
        pageview("a", "2024-01-03T10:00:00Z"),
    )
    body = await query(
        client,
        actor,
        "RetentionQuery",
        dateRange=days("2024-01-01", "2024-01-03"),
        retentionFilter=retention(totalIntervals=3, minimumOccurrences=2),
    )
    assert matrix(body) == [[1, 1, 0], [1, 0, 0], [1, 0, 0]]


async def test_weeks_follow_the_team_timezone_and_week_start(client: httpx.AsyncClient, actor: Actor) -> None:
    """In New York: p on Sunday Jan 7 22:00 and Monday Jan 8 10:00; q on Monday Jan 8 01:00 (all Jan 8 in
    UTC)."""
    await put(
        client,
        actor,
        pageview("p", "2024-01-08T03:00:00Z"),
        pageview("p", "2024-01-08T15:00:00Z"),
        pageview("q", "2024-01-08T06:00:00Z"),
    )
    weekly = {
        "dateRange": days("2024-01-01", "2024-01-14"),
        "retentionFilter": retention(period="Week", totalIntervals=2),
    }
    await team_settings(client, actor, timezone="America/New_York", week_start_day=1)
    monday = await query(client, actor, "RetentionQuery", **weekly)
    assert [row["date"] for row in monday["results"]] == [
        "2024-01-01T00:00:00-05:00",
        "2024-01-08T00:00:00-05:00",
    ]
    assert [row["values"][1]["label"] for row in monday["results"]] == ["Week 1", "Week 1"]
    assert matrix(monday) == [[1, 1], [2, 0]]

    await team_settings(client, actor, week_start_day=0)
    sunday = await query(client, actor, "RetentionQuery", **weekly)
    assert [row["date"][:10] for row in sunday["results"]] == ["2023-12-31", "2024-01-07", "2024-01-14"]
    assert matrix(sunday) == [[0, 0], [2, 0], [0, 0]]

    await team_settings(client, actor, timezone="UTC", week_start_day=1)
    utc = await query(client, actor, "RetentionQuery", **weekly)
    assert matrix(utc) == [[0, 0], [2, 0]]


async def test_no_data_is_the_full_matrix_of_zeros_and_defaults(
    client: httpx.AsyncClient, actor: Actor
) -> None:
    body = await query(
        client, actor, "RetentionQuery", dateRange=days("2024-01-01", "2024-01-03"), retentionFilter={}
    )
    # Defaults: recurring, Day, 7 intervals.
    assert matrix(body) == [[0] * 7] * 3
    assert [value["label"] for value in body["results"][0]["values"]] == [f"Day {k}" for k in range(7)]
    # Without date_from, the last totalIntervals periods up to today.
    legacy = await query(
        client, actor, "RetentionQuery", retentionFilter={"totalIntervals": 5, "period": "Month"}
    )
    assert len(legacy["results"]) == 5 and legacy["results"][-1]["label"] == "Month 4"


async def test_unsupported_fields_are_named(client: httpx.AsyncClient, actor: Actor) -> None:
    cases: list[tuple[dict[str, Any], str, str]] = [
        (
            {"retentionFilter": {"targetEntity": {"id": 3, "type": "actions"}}},
            "query__source__retentionFilter__targetEntity__type",
            "unsupported_query",
        ),
        (
            {"retentionFilter": {"timeWindowMode": "24_hour_windows"}},
            "query__source__retentionFilter__timeWindowMode",
            "unsupported_query",
        ),
        ({"retentionFilter": {"wobble": 1}}, "query__source__retentionFilter__wobble", "unsupported_query"),
        ({"retentionFilter": {}, "interval": "day"}, "query__source__interval", "unsupported_query"),
        (
            {"retentionFilter": {}, "aggregation_group_type_index": 0},
            "query__source__aggregation_group_type_index",
            "unsupported_query",
        ),
        (
            {"retentionFilter": {}, "breakdownFilter": {"breakdown": 3, "breakdown_type": "cohort"}},
            "query__source__breakdownFilter__breakdown_type",
            "unsupported_query",
        ),
        (
            {"retentionFilter": {"totalIntervals": 0}},
            "query__source__retentionFilter__totalIntervals",
            "invalid_query",
        ),
        (
            {"retentionFilter": {"minimumOccurrences": 0}},
            "query__source__retentionFilter__minimumOccurrences",
            "invalid_query",
        ),
        (
            {"retentionFilter": {}, "dateRange": days("2024-01-05", "2024-01-01")},
            "query__source__dateRange",
            "invalid_query",
        ),
    ]
    for source, attr, code in cases:
        body = await refused(client, actor, "RetentionQuery", **source)
        assert (body["attr"], body["code"]) == (attr, code), (source, body)
    missing = await refused(client, actor, "RetentionQuery")
    assert "retentionFilter" in missing["detail"]
