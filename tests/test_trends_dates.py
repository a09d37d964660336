"""Intervals, date ranges and timezones (capture-and-trends.md B.2/B.3), with PostHog's labels."""

import calendar
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from tests.events import event, ingest
from tests.factories import Actor
from tests.trends_helpers import absolute, node, results, run, set_timezone, steady_now, utc

# Every test here runs on PostgreSQL and on ClickHouse (tests/conftest.py).
pytestmark = pytest.mark.both_backends


def _days(first: date, count: int) -> list[str]:
    return [(first + timedelta(days=i)).isoformat() for i in range(count)]


def _months_back(day: date, months: int) -> date:
    """Same day `months` calendar months earlier, clamped to the month's end (an independent check)."""
    index = day.year * 12 + day.month - 1 - months
    year, month = divmod(index, 12)
    return date(year, month + 1, min(day.day, calendar.monthrange(year, month + 1)[1]))


# --- intervals on absolute ranges -------------------------------------------------------------------------


async def test_hour_interval_uses_the_exact_bounds(client: httpx.AsyncClient, actor: Actor) -> None:
    await ingest(
        client,
        actor,
        [
            event("$pageview", "a", utc(2025, 3, 1, 9, 59, 59), {}),
            event("$pageview", "a", utc(2025, 3, 1, 10, 15), {}),
            event("$pageview", "a", utc(2025, 3, 1, 10, 45), {}),
            event("$pageview", "a", utc(2025, 3, 1, 12, 59, 59), {}),
            event("$pageview", "a", utc(2025, 3, 1, 13, 0, 0), {}),
            event("$pageview", "a", utc(2025, 3, 1, 13, 0, 1), {}),
        ],
    )
    body = await run(
        client, actor, node(), interval="hour", **absolute("2025-03-01T10:00:00", "2025-03-01T13:00:00")
    )
    [series] = body["results"]
    assert series["data"] == [2, 0, 1, 1]
    assert series["labels"] == ["1-Mar 10:00", "1-Mar 11:00", "1-Mar 12:00", "1-Mar 13:00"]
    assert series["days"] == [
        "2025-03-01 10:00:00",
        "2025-03-01 11:00:00",
        "2025-03-01 12:00:00",
        "2025-03-01 13:00:00",
    ]
    assert series["action"]["days"][0] == "2025-03-01T10:00:00Z"
    assert body["resolved_date_range"] == {
        "date_from": "2025-03-01T10:00:00Z",
        "date_to": "2025-03-01T13:00:00Z",
    }


async def test_day_interval_extends_date_to_to_the_end_of_its_day(
    client: httpx.AsyncClient, actor: Actor
) -> None:
    await ingest(
        client,
        actor,
        [
            event("$pageview", "a", utc(2025, 3, 1, 0, 0, 0), {}),
            event("$pageview", "a", utc(2025, 3, 3, 23, 59, 59), {}),
            event("$pageview", "a", utc(2025, 3, 4, 0, 0, 0), {}),
        ],
    )
    body = await run(client, actor, node(), **absolute("2025-03-01", "2025-03-03"))
    assert body["results"][0]["data"] == [1, 0, 1]
    assert body["resolved_date_range"] == {
        "date_from": "2025-03-01T00:00:00Z",
        "date_to": "2025-03-03T23:59:59.999Z",
    }
    assert body["results"][0]["filter"]["date_to"] == "2025-03-03T23:59:59.999Z"


async def test_explicit_date_uses_the_bounds_verbatim(client: httpx.AsyncClient, actor: Actor) -> None:
    await ingest(
        client,
        actor,
        [
            event("$pageview", "a", utc(2025, 3, 1, 11), {}),
            event("$pageview", "a", utc(2025, 3, 1, 13), {}),
            event("$pageview", "a", utc(2025, 3, 3, 9), {}),
            event("$pageview", "a", utc(2025, 3, 3, 11), {}),
        ],
    )
    body = await run(
        client, actor, node(), **absolute("2025-03-01T12:00:00", "2025-03-03T10:00:00", explicitDate=True)
    )
    assert body["results"][0]["data"] == [1, 0, 1]
    assert body["results"][0]["days"] == ["2025-03-01", "2025-03-02", "2025-03-03"]
    assert body["resolved_date_range"] == {
        "date_from": "2025-03-01T12:00:00Z",
        "date_to": "2025-03-03T10:00:00Z",
    }
    # Without explicitDate the same range covers whole days.
    [whole] = await results(client, actor, node(), **absolute("2025-03-01T12:00:00", "2025-03-03T10:00:00"))
    assert whole["data"] == [2, 0, 2]


async def test_week_interval_starts_on_sunday_and_reads_from_date_from(
    client: httpx.AsyncClient, actor: Actor
) -> None:
    await ingest(
        client,
        actor,
        [
            event("$pageview", "a", utc(2025, 3, 4, 12), {}),  # Tuesday, before date_from
            event("$pageview", "a", utc(2025, 3, 6, 12), {}),
            event("$pageview", "a", utc(2025, 3, 9, 0, 0, 1), {}),  # Sunday: next week
            event("$pageview", "a", utc(2025, 3, 31, 12), {}),
            event("$pageview", "a", utc(2025, 4, 5, 12), {}),
            event("$pageview", "a", utc(2025, 4, 6, 12), {}),
        ],
    )
    [series] = await results(client, actor, node(), interval="week", **absolute("2025-03-05", "2025-04-06"))
    assert series["days"] == [
        "2025-03-02",
        "2025-03-09",
        "2025-03-16",
        "2025-03-23",
        "2025-03-30",
        "2025-04-06",
    ]
    assert series["labels"] == [
        "5\u20138 Mar",
        "9\u201315 Mar",
        "16\u201322 Mar",
        "23\u201329 Mar",
        "30-Mar \u2013 5-Apr",
        "6-Apr-2025",
    ]
    assert series["data"] == [1, 1, 0, 0, 2, 1]


async def test_week_label_across_years(client: httpx.AsyncClient, actor: Actor) -> None:
    [series] = await results(client, actor, node(), interval="week", **absolute("2025-12-22", "2026-01-08"))
    assert series["labels"] == ["22\u201327 Dec", "28-Dec-2025 \u2013 3-Jan-2026", "4\u20138 Jan"]


async def test_month_interval_reads_the_whole_first_month(client: httpx.AsyncClient, actor: Actor) -> None:
    await ingest(
        client,
        actor,
        [
            event("$pageview", "a", utc(2024, 12, 31, 23, 59), {}),
            event("$pageview", "a", utc(2025, 1, 3, 12), {}),  # before date_from, same month: counted
            event("$pageview", "a", utc(2025, 2, 10, 12), {}),
            event("$pageview", "a", utc(2025, 3, 10, 23, 0), {}),
            event("$pageview", "a", utc(2025, 3, 11, 0, 0), {}),
        ],
    )
    body = await run(client, actor, node(), interval="month", **absolute("2025-01-15", "2025-03-10"))
    [series] = body["results"]
    assert series["data"] == [1, 1, 1]
    assert series["days"] == ["2025-01-01", "2025-02-01", "2025-03-01"]
    assert series["labels"] == ["Jan 2025", "Feb 2025", "Mar 2025"]
    assert body["resolved_date_range"]["date_from"] == "2025-01-15T00:00:00Z"


# --- relative ranges ----------------------------------------------------------------------------------------


async def test_minus_7d_by_day_is_eight_buckets(client: httpx.AsyncClient, actor: Actor) -> None:
    now = await steady_now()
    today = now.date()
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    await ingest(
        client,
        actor,
        [
            event("$pageview", "a", midnight - timedelta(days=7, seconds=1), {}),
            event("$pageview", "a", midnight - timedelta(days=7) + timedelta(seconds=30), {}),
            event("$pageview", "a", midnight - timedelta(days=3) + timedelta(hours=5), {}),
            event("$pageview", "a", midnight + timedelta(seconds=1), {}),
        ],
    )
    body = await run(client, actor, node(), dateRange={"date_from": "-7d"})
    [series] = body["results"]
    assert series["days"] == _days(today - timedelta(days=7), 8)
    assert series["data"] == [1, 0, 0, 0, 1, 0, 0, 1]
    assert body["resolved_date_range"]["date_from"] == f"{today - timedelta(days=7)}T00:00:00Z"
    assert body["resolved_date_range"]["date_to"] == f"{today}T23:59:59.999Z"
    # No dateRange at all is the same as -7d.
    [default] = await results(client, actor, node())
    assert default["days"] == series["days"] and default["data"] == series["data"]


async def test_minus_24h_by_hour(client: httpx.AsyncClient, actor: Actor) -> None:
    now = await steady_now()
    first = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=24)
    await ingest(
        client,
        actor,
        [
            event("$pageview", "a", first - timedelta(seconds=1), {}),
            event("$pageview", "a", first + timedelta(minutes=1), {}),
            event("$pageview", "a", first + timedelta(hours=24, seconds=1), {}),
        ],
    )
    body = await run(client, actor, node(), interval="hour", dateRange={"date_from": "-24h"})
    [series] = body["results"]
    assert len(series["data"]) == 25
    assert series["days"][0] == first.strftime("%Y-%m-%d %H:%M:%S")
    assert series["data"][0] == 1 and series["data"][-1] == 1 and sum(series["data"]) == 2
    assert body["resolved_date_range"]["date_to"] == f"{now:%Y-%m-%dT%H}:59:59.999Z"


async def test_relative_day_and_month_forms(client: httpx.AsyncClient, actor: Actor) -> None:
    now = await steady_now()
    today = now.date()
    cases = {
        "-30d": (today - timedelta(days=30), 31),
        "dStart": (today, 1),
        "-1dStart": (today - timedelta(days=1), 2),
        "mStart": (today.replace(day=1), today.day),
        "-1m": (_months_back(today, 1), (today - _months_back(today, 1)).days + 1),
    }
    for date_from, (first, count) in cases.items():
        [series] = await results(client, actor, node(), dateRange={"date_from": date_from})
        assert series["days"] == _days(first, count), date_from
    [yesterday] = await results(
        client, actor, node(), dateRange={"date_from": "-1dStart", "date_to": "-1dEnd"}
    )
    assert yesterday["days"] == [(today - timedelta(days=1)).isoformat()]


async def test_relative_month_ranges_by_month(client: httpx.AsyncClient, actor: Actor) -> None:
    now = await steady_now()
    today = now.date()
    [series] = await results(client, actor, node(), interval="month", dateRange={"date_from": "-12m"})
    first = _months_back(today, 12).replace(day=1)
    assert len(series["days"]) == 13 and series["days"][0] == first.isoformat()
    assert series["days"][-1] == today.replace(day=1).isoformat()
    [year] = await results(client, actor, node(), interval="month", dateRange={"date_from": "yStart"})
    assert year["days"][0] == f"{today.year}-01-01" and len(year["days"]) == today.month


async def test_all_starts_at_the_first_event(client: httpx.AsyncClient, actor: Actor) -> None:
    now = await steady_now()
    first = (now - timedelta(days=3)).replace(hour=10, minute=30, second=0, microsecond=0)
    await ingest(client, actor, [event("$pageview", "a", first, {}), event("$pageview", "b", now, {})])
    body = await run(client, actor, node(), dateRange={"date_from": "all"})
    [series] = body["results"]
    assert series["days"] == _days(first.date(), 4)
    assert series["data"] == [1, 0, 0, 1]
    assert body["resolved_date_range"]["date_from"] == first.isoformat().replace("+00:00", "Z")


# --- timezones -------------------------------------------------------------------------------------------


async def test_new_york_buckets_by_local_day(
    client: httpx.AsyncClient, actor: Actor, db: AsyncSession
) -> None:
    await ingest(
        client,
        actor,
        [
            event("$pageview", "a", utc(2025, 3, 2, 4, 30), {}),  # 1 Mar 23:30 EST
            event("$pageview", "b", utc(2025, 3, 2, 5, 30), {}),  # 2 Mar 00:30 EST
            event("$pageview", "c", utc(2025, 3, 3, 4, 59, 59), {}),  # 2 Mar 23:59:59 EST
            event("$pageview", "d", utc(2025, 3, 3, 5, 0, 0), {}),  # 3 Mar 00:00 EST: outside
        ],
    )
    range_ = absolute("2025-03-01", "2025-03-02")
    [in_utc] = await results(client, actor, node(), **range_)
    assert in_utc["data"] == [0, 2]
    await set_timezone(db, actor, "America/New_York")
    body = await run(client, actor, node(), **range_)
    [series] = body["results"]
    assert series["data"] == [1, 2]
    assert series["action"]["days"] == ["2025-03-01T00:00:00-05:00", "2025-03-02T00:00:00-05:00"]
    assert body["timezone"] == "America/New_York"
    assert body["resolved_date_range"] == {
        "date_from": "2025-03-01T00:00:00-05:00",
        "date_to": "2025-03-02T23:59:59.999-05:00",
    }


async def test_new_york_across_the_dst_change(
    client: httpx.AsyncClient, actor: Actor, db: AsyncSession
) -> None:
    await set_timezone(db, actor, "America/New_York")
    await ingest(
        client,
        actor,
        [
            event("$pageview", "a", utc(2025, 3, 9, 5, 30), {}),  # 9 Mar 00:30 EST
            event("$pageview", "b", utc(2025, 3, 10, 3, 30), {}),  # 9 Mar 23:30 EDT
            event("$pageview", "c", utc(2025, 3, 10, 4, 30), {}),  # 10 Mar 00:30 EDT
        ],
    )
    [series] = await results(client, actor, node(), **absolute("2025-03-08", "2025-03-10"))
    assert series["data"] == [0, 2, 1]
    assert series["action"]["days"][-1] == "2025-03-10T00:00:00-04:00"


async def test_an_offset_in_an_absolute_date_is_converted(
    client: httpx.AsyncClient, actor: Actor, db: AsyncSession
) -> None:
    await set_timezone(db, actor, "America/New_York")
    [series] = await results(client, actor, node(), **absolute("2025-03-01T00:00:00+00:00", "2025-03-01"))
    assert series["days"] == ["2025-02-28", "2025-03-01"]  # 1 Mar 00:00 UTC is 28 Feb 19:00 in New York


async def test_kolkata_hours_around_midnight(
    client: httpx.AsyncClient, actor: Actor, db: AsyncSession
) -> None:
    await set_timezone(db, actor, "Asia/Kolkata")
    await ingest(
        client,
        actor,
        [
            event("$pageview", "a", utc(2025, 3, 1, 17, 29), {}),  # 1 Mar 22:59 IST: outside
            event("$pageview", "a", utc(2025, 3, 1, 18, 29), {}),  # 1 Mar 23:59 IST
            event("$pageview", "b", utc(2025, 3, 1, 18, 31), {}),  # 2 Mar 00:01 IST
            event("$pageview", "c", utc(2025, 3, 1, 19, 29), {}),  # 2 Mar 00:59 IST
        ],
    )
    body = await run(
        client, actor, node(), interval="hour", **absolute("2025-03-01T23:00:00", "2025-03-02T00:59:00")
    )
    [series] = body["results"]
    assert series["data"] == [1, 2]
    assert series["labels"] == ["1-Mar 23:00", "2-Mar 00:00"]
    assert series["days"] == ["2025-03-01 23:00:00", "2025-03-02 00:00:00"]
    assert series["action"]["days"] == ["2025-03-01T23:00:00+05:30", "2025-03-02T00:00:00+05:30"]
    [by_day] = await results(client, actor, node(), **absolute("2025-03-01", "2025-03-02"))
    assert by_day["data"] == [2, 2]


async def test_relative_range_in_kolkata(client: httpx.AsyncClient, actor: Actor, db: AsyncSession) -> None:
    await set_timezone(db, actor, "Asia/Kolkata")
    now = await steady_now("Asia/Kolkata")
    local_midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    await ingest(
        client,
        actor,
        [
            event("$pageview", "a", local_midnight + timedelta(seconds=5), {}),
            event("$pageview", "a", local_midnight - timedelta(seconds=5), {}),
            event("$pageview", "a", local_midnight - timedelta(days=2, seconds=5), {}),
        ],
    )
    body = await run(client, actor, node(), dateRange={"date_from": "-2d"})
    [series] = body["results"]
    assert series["days"] == _days(now.date() - timedelta(days=2), 3)
    assert series["data"] == [0, 1, 1]
    tz = ZoneInfo("Asia/Kolkata")
    start = datetime.combine(now.date() - timedelta(days=2), datetime.min.time(), tz)
    assert body["resolved_date_range"]["date_from"] == start.isoformat()
