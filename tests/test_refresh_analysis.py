"""`snapshot` and `analyze_refresh_result` through HTTP: known events, a refresh, more events, a forced
refresh, and the exact changes and summary; the binding of a snapshot to its dashboard and user, its 30
minutes, `client_results`, scopes and 404s. The comparison's own rules are unit-tested at the end."""

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.clock import system_clock
from app.dashboards import refresh_analysis
from app.dashboards.refresh_analysis import NO_CHANGES, headlines
from tests.events import event, ingest
from tests.factories import Actor, make_member
from tests.funnels_helpers import funnel_query, step
from tests.kinds_helpers import insight
from tests.resources import new_dashboard, trends
from tests.sharing_helpers import FakeClock

EXPIRED = {"error": "Analysis context expired or not found. Please refresh the dashboard again."}
RANGE = {"date_from": "2026-01-01", "date_to": "2026-01-04"}


@pytest.fixture
def clock(app: FastAPI) -> Iterator[FakeClock]:
    fake = FakeClock()
    app.state.clock = fake
    yield fake
    app.state.clock = system_clock


def day(n: int) -> str:
    return f"2026-01-0{n}T12:00:00Z"


async def add_insight(client: httpx.AsyncClient, actor: Actor, board: int, name: str, query: Any) -> int:
    body = {"name": name, "query": query, "dashboards": [board]}
    response = await client.post(actor.url("insights/"), json=body, headers=actor.headers)
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


async def retrieve(client: httpx.AsyncClient, actor: Actor, board: int, refresh: str) -> dict[str, Any]:
    response = await client.get(
        actor.url(f"dashboards/{board}/"), params={"refresh": refresh}, headers=actor.headers
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def snapshot(
    client: httpx.AsyncClient, actor: Actor, board: int, body: Any = None, **kw: Any
) -> httpx.Response:
    return await client.post(
        actor.url(f"dashboards/{board}/snapshot/"), json=body, headers=kw.pop("headers", actor.headers), **kw
    )


async def snapshot_key(client: httpx.AsyncClient, actor: Actor, board: int, body: Any = None) -> str:
    response = await snapshot(client, actor, board, body)
    assert response.status_code == 200, response.text
    assert set(response.json()) == {"cache_key"}
    key: str = response.json()["cache_key"]
    return key


async def analyze(
    client: httpx.AsyncClient, actor: Actor, board: int, body: Any, headers: dict[str, str] | None = None
) -> httpx.Response:
    return await client.post(
        actor.url(f"dashboards/{board}/analyze_refresh_result/"),
        json=body,
        headers=actor.headers if headers is None else headers,
    )


async def analysis(client: httpx.AsyncClient, actor: Actor, board: int, key: str) -> dict[str, Any]:
    response = await analyze(client, actor, board, {"cache_key": key})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def browsers_query() -> dict[str, Any]:
    return trends(dateRange=RANGE, breakdownFilter={"breakdown": "$browser", "breakdown_type": "event"})


def retention_query() -> dict[str, Any]:
    return insight("RetentionQuery", dateRange=RANGE, retentionFilter={"period": "Day", "totalIntervals": 4})


def pageview(who: str, n: int, browser: str) -> dict[str, Any]:
    return event("$pageview", who, day(n), {"$browser": browser})


# Pageviews: Chrome 3 (a J1, a J2, b J1), Safari 1 (c J2). Day cohorts: J1 {a, b}, a back J2: 50%; J2 {a, c},
# nobody back J3: 0%; J3 nobody; J4 the last (its day 1 is outside the range). Mean 25%.
# Funnel signup → purchase: u1..u4 sign up, u1 buys: 25%. Signups: 4.
FIRST = [
    pageview("a", 1, "Chrome"),
    pageview("a", 2, "Chrome"),
    pageview("b", 1, "Chrome"),
    pageview("c", 2, "Safari"),
    *(event("signup", f"u{i}", day(1 + i // 3)) for i in range(1, 5)),
    event("purchase", "u1", day(2)),
]
# Then: Chrome 4 (d J3), Safari 2 (c J3), Firefox 1 (e J3). Cohorts: J1 50%; J2 {a, c}, c back J3: 50%;
# J3 {c, d, e}, nobody back J4: 0%. Mean 33.33%. u2 buys: 50%. Purchases: 2.
SECOND = [
    pageview("d", 3, "Chrome"),
    pageview("c", 3, "Safari"),
    pageview("e", 3, "Firefox"),
    event("purchase", "u2", day(3)),
]


async def test_what_changed_after_a_forced_refresh(client: httpx.AsyncClient, actor: Actor) -> None:
    board = await new_dashboard(client, actor, name="Shop")
    await add_insight(client, actor, board, "Pageviews by browser", browsers_query())
    await add_insight(
        client, actor, board, "Signup funnel", funnel_query(step("signup"), step("purchase"), dateRange=RANGE)
    )
    await add_insight(client, actor, board, "Daily retention", retention_query())
    signups = await add_insight(client, actor, board, "Signups", trends("signup", dateRange=RANGE))
    await ingest(client, actor, FIRST)
    refreshed = await retrieve(client, actor, board, "blocking")
    assert all(t["insight"]["result"] for t in refreshed["tiles"])
    tile_ids = {t["insight"]["name"]: t["id"] for t in refreshed["tiles"]}

    key = await snapshot_key(client, actor, board)
    assert key.startswith(f"dashboard_refresh_before_{board}_{actor.user.id}_")
    # Nothing computed since: nothing changed.
    unchanged = await analysis(client, actor, board, key)
    assert unchanged == {"result": NO_CHANGES, "changes": []}

    await ingest(client, actor, SECOND)
    # A tile removed, another added after the snapshot.
    gone = await client.patch(
        actor.url(f"insights/{signups}/"), json={"deleted": True}, headers=actor.headers
    )
    assert gone.status_code == 200
    await add_insight(client, actor, board, "Purchases", trends("purchase", dateRange=RANGE))
    # Cache only: before the forced refresh the "after" is still the cached state (the new tile has none).
    stale = await analysis(client, actor, board, key)
    assert [(c["insight_name"], c["kind"]) for c in stale["changes"]] == [("Signups", "removed")]
    after = await retrieve(client, actor, board, "force_blocking")
    tile_ids.update({t["insight"]["name"]: t["id"] for t in after["tiles"]})

    body = await analysis(client, actor, board, key)
    assert body["changes"] == [
        {
            "tile_id": tile_ids["Pageviews by browser"],
            "insight_name": "Pageviews by browser",
            "kind": "changed",
            "series": [
                {"label": "Chrome", "before": 3, "after": 4, "delta": 1, "pct_change": 33.33},
                {"label": "Safari", "before": 1, "after": 2, "delta": 1, "pct_change": 100},
                {"label": "Firefox", "before": None, "after": 1, "delta": None, "pct_change": None},
            ],
        },
        {
            "tile_id": tile_ids["Signup funnel"],
            "insight_name": "Signup funnel",
            "kind": "changed",
            "series": [
                {"label": "Overall conversion", "before": 25, "after": 50, "delta": 25, "pct_change": 100}
            ],
        },
        {
            "tile_id": tile_ids["Daily retention"],
            "insight_name": "Daily retention",
            "kind": "changed",
            "series": [
                {"label": "Day 1 retention", "before": 25, "after": 33.33, "delta": 8.33, "pct_change": 33.32}
            ],
        },
        {
            "tile_id": tile_ids["Purchases"],
            "insight_name": "Purchases",
            "kind": "new",
            "series": [{"label": "purchase", "before": None, "after": 2, "delta": None, "pct_change": None}],
        },
        {
            "tile_id": tile_ids["Signups"],
            "insight_name": "Signups",
            "kind": "removed",
            "series": [{"label": "signup", "before": 4, "after": None, "delta": None, "pct_change": None}],
        },
    ]
    assert body["result"] == (
        "- Pageviews by browser · Firefox: new, 1\n"
        "- Purchases · purchase: new, 2\n"
        "- Signups · signup: removed, was 4\n"
        "- Signup funnel · Overall conversion: 25% → 50% (+25 pp, +100.0%)\n"
        "- Pageviews by browser · Safari: 1 → 2 (+1, +100.0%)"
    )
    # The snapshot stays for its 30 minutes: asking again answers the same.
    assert await analysis(client, actor, board, key) == body


async def test_client_results_are_the_before_state(client: httpx.AsyncClient, actor: Actor) -> None:
    board = await new_dashboard(client, actor)
    await add_insight(client, actor, board, "Pageviews by browser", browsers_query())
    await ingest(client, actor, FIRST)
    (tile,) = (await retrieve(client, actor, board, "blocking"))["tiles"]
    shown = [{"label": "Chrome", "count": 2.0, "data": [1, 1]}, {"label": "Opera", "count": 5.0, "data": [5]}]
    client_results = {str(tile["id"]): {"insight_name": "As shown", "data": shown}}
    key = await snapshot_key(client, actor, board, {"client_results": client_results})
    body = await analysis(client, actor, board, key)
    assert body["changes"] == [
        {
            "tile_id": tile["id"],
            "insight_name": "Pageviews by browser",
            "kind": "changed",
            "series": [
                {"label": "Chrome", "before": 2, "after": 3, "delta": 1, "pct_change": 50},
                {"label": "Safari", "before": None, "after": 1, "delta": None, "pct_change": None},
                {"label": "Opera", "before": 5, "after": None, "delta": None, "pct_change": None},
            ],
        }
    ]
    assert body["result"] == (
        "- Pageviews by browser · Safari: new, 1\n"
        "- Pageviews by browser · Opera: removed, was 5\n"
        "- Pageviews by browser · Chrome: 2 → 3 (+1, +50.0%)"
    )
    # Tiles the client had and the dashboard has not (any more): removed, under the client's name.
    gone = {"99999": {"insight_name": "Old one", "data": [{"label": "x", "data": [1], "count": 1}]}}
    key = await snapshot_key(client, actor, board, {"client_results": {**client_results, **gone}})
    assert (await analysis(client, actor, board, key))["changes"][-1] == {
        "tile_id": 99999,
        "insight_name": "Old one",
        "kind": "removed",
        "series": [{"label": "x", "before": 1, "after": None, "delta": None, "pct_change": None}],
    }


async def test_snapshot_bodies_are_validated(client: httpx.AsyncClient, actor: Actor) -> None:
    board = await new_dashboard(client, actor)
    for data in ({}, [], "", None):
        refused = await snapshot(
            client, actor, board, {"client_results": {"1": {"insight_name": "i", "data": data}}}
        )
        assert refused.status_code == 400, data
        assert refused.json() == {
            "type": "validation_error",
            "code": "invalid_input",
            "detail": "Data cannot be empty.",
            "attr": "client_results__1__data",
        }
    for body, attr in (
        ({"client_results": {"1": {"data": [1]}}}, "client_results__1__insight_name"),
        ({"client_results": {"1": {"insight_name": 5, "data": [1]}}}, "client_results__1__insight_name"),
        ({"client_results": {"abc": {"insight_name": "i", "data": [1]}}}, "client_results__abc__[key]"),
        ({"client_results": [1]}, "client_results"),
        (
            {"client_results": {"1": {"insight_name": "i\x00", "data": [1]}}},
            "client_results__1__insight_name",
        ),
    ):
        refused = await snapshot(client, actor, board, body)
        assert refused.status_code == 400, (body, refused.text)
        assert refused.json()["attr"] == attr, refused.text
    # No body at all, or an empty one: the cached state (here no tile).
    assert (
        await client.post(actor.url(f"dashboards/{board}/snapshot"), headers=actor.headers)
    ).status_code == 200
    assert (await snapshot(client, actor, board, {})).status_code == 200


async def test_a_key_answers_only_for_its_dashboard_and_user(
    client: httpx.AsyncClient, actor: Actor, db: AsyncSession
) -> None:
    board = await new_dashboard(client, actor)
    other_board = await new_dashboard(client, actor)
    key = await snapshot_key(client, actor, board)
    colleague = await make_member(db, actor.team)
    for who, where, body in (
        (actor, other_board, {"cache_key": key}),
        (colleague, board, {"cache_key": key}),
        (actor, board, {"cache_key": key + "x"}),
        (actor, board, {"cache_key": key[: key.rindex("_")]}),  # without its random part
        (actor, board, {"cache_key": 12}),
        (actor, board, {"cache_key": "a\x00b"}),
    ):
        refused = await analyze(client, who, where, body)
        assert refused.status_code == 400 and refused.json() == EXPIRED, body
    for body in ({}, {"cache_key": ""}, {"cache_key": None}, None):
        refused = await analyze(client, actor, board, body)
        assert refused.status_code == 400 and refused.json() == {"error": "cache_key is required"}
    assert (await analyze(client, actor, board, [key])).status_code == 400
    assert (await analyze(client, actor, board, {"cache_key": key})).status_code == 200


async def test_a_snapshot_expires_after_30_minutes_and_goes(
    client: httpx.AsyncClient, actor: Actor, db: AsyncSession, clock: FakeClock
) -> None:
    board = await new_dashboard(client, actor)
    key = await snapshot_key(client, actor, board)
    rows = text("SELECT count(*) FROM dashboard_snapshot WHERE cache_key = :k")
    assert (await db.execute(rows, {"k": key})).scalar_one() == 1
    clock.advance(minutes=29)
    assert (await analyze(client, actor, board, {"cache_key": key})).status_code == 200
    clock.advance(minutes=2)
    refused = await analyze(client, actor, board, {"cache_key": key})
    assert refused.status_code == 400 and refused.json() == EXPIRED
    assert (await db.execute(rows, {"k": key})).scalar_one() == 0  # cleaned up
    # A snapshot call cleans up too.
    old = await snapshot_key(client, actor, board)
    clock.advance(minutes=31)
    await snapshot_key(client, actor, board)
    assert (await db.execute(rows, {"k": old})).scalar_one() == 0


async def test_scopes_and_missing_dashboards(
    client: httpx.AsyncClient, actor: Actor, other_actor: Actor, db: AsyncSession
) -> None:
    board = await new_dashboard(client, actor)
    key = await snapshot_key(client, actor, board)
    reader = await make_member(db, actor.team, scopes=["dashboard:read", "insight:read"])
    for response in (
        await snapshot(client, reader, board, headers=reader.headers),
        await analyze(client, reader, board, {"cache_key": key}, headers=reader.headers),
    ):
        assert response.status_code == 403
        assert response.json()["detail"] == "API key missing required scope 'dashboard:write'"
    theirs = await new_dashboard(client, other_actor)
    deleted = await new_dashboard(client, actor)
    gone = await client.patch(
        actor.url(f"dashboards/{deleted}/"), json={"deleted": True}, headers=actor.headers
    )
    assert gone.status_code == 200
    for missing in (theirs, deleted, 2_000_000_000):
        assert (await snapshot(client, actor, missing)).status_code == 404
        assert (await analyze(client, actor, missing, {"cache_key": key})).status_code == 404
    # Another team's URL: no access to the project.
    foreign = await client.post(other_actor.url(f"dashboards/{theirs}/snapshot/"), headers=actor.headers)
    assert foreign.status_code == 403
    # Both paths, with and without the trailing slash.
    for prefix in ("projects", "environments"):
        url = actor.url(f"dashboards/{board}/analyze_refresh_result", prefix=prefix)
        assert (await client.post(url, json={"cache_key": key}, headers=actor.headers)).status_code == 200


# --- the comparison, as pure functions ---------------------------------------------------------------------


def test_headline_numbers_of_each_kind() -> None:
    assert headlines(
        [
            {"label": "$pageview", "data": [], "count": 0, "aggregated_value": 12.5},
            {"label": "$pageview", "data": [1, 2], "count": 3.0, "compare_label": "previous"},
            {"label": "$pageview", "data": [1, 2, 3.333]},
        ]
    ) == [
        refresh_analysis.Headline("$pageview", 12.5),
        refresh_analysis.Headline("$pageview (previous)", 3),
        refresh_analysis.Headline("$pageview (2)", 6.33),
    ]
    lifecycle = [{"label": "x - dormant", "status": "dormant", "data": [-1.0, -2.0], "count": -3.0}]
    assert headlines(lifecycle) == [refresh_analysis.Headline("x - dormant", -3)]
    steps = [
        {"breakdown_value": ["Chrome"], "count": 3, "order": 0},
        {"breakdown_value": ["Chrome"], "count": 2, "order": 1},
    ]
    assert headlines(
        [steps, [{**s, "breakdown_value": ["$$_posthog_breakdown_other_$$"]} for s in steps]]
    ) == [
        refresh_analysis.Headline("Chrome", 66.67, "%"),
        refresh_analysis.Headline("Other", 66.67, "%"),
    ]
    assert headlines([{"count": 0, "order": 0}, {"count": 0, "order": 1}]) == []  # no conversion from nobody
    assert headlines({"bins": [[0, 1]], "average_conversion_time": 29540.0}) == [
        refresh_analysis.Headline("Average conversion time", 29540, "s")
    ]
    assert headlines([{"data": [10.0, 20.0], "days": ["a", "b"], "count": 2}]) == [
        refresh_analysis.Headline("Conversion rate", 15, "%")
    ]
    rows = [
        {"values": [{"count": 4, "label": "Week 0"}, {"count": 1, "label": "Week 1"}], "date": "2026-01-05",
         "breakdown_value": "a"},
        {"values": [{"count": 0}, {"count": 0}], "date": "2026-01-12", "breakdown_value": "a"},
        {"values": [{"count": 3}, {"count": 0}], "date": "2026-01-19", "breakdown_value": "a"},
    ]  # fmt: skip
    assert headlines(rows) == [refresh_analysis.Headline("Week 1 retention (a)", 25, "%")]
    for other in (None, [], "x", [1, 2], [{"columns": []}], {"x": 1}):
        assert headlines(other) == []


def test_the_summary_ranks_and_formats() -> None:
    before = {
        "1": {
            "insight_name": "Revenue",
            "data": [{"label": "EUR", "data": [], "count": 1200.5}, {"label": "USD", "data": [], "count": 0}],
        },
        "2": {"insight_name": "", "data": [{"label": "x", "data": [100]}]},
    }
    after = [
        (
            "1",
            {
                "insight_name": "Revenue",
                "data": [
                    {"label": "EUR", "data": [], "count": 1000},
                    {"label": "USD", "data": [], "count": 7},
                ],
            },
        ),
        ("2", {"insight_name": "", "data": [{"label": "x", "data": [100]}]}),
        ("3", {"insight_name": "Table", "data": [{"columns": ["a"]}]}),
    ]
    changes = refresh_analysis.compare(before, after)
    assert [(c.tile_id, c.kind, len(c.series)) for c in changes] == [(1, "changed", 2), (3, "new", 0)]
    assert refresh_analysis.summary(changes) == (
        "- Revenue · USD: 0 → 7 (+7)\n- Table: new tile\n- Revenue · EUR: 1,200.5 → 1,000 (-200.5, -16.7%)"
    )
    assert refresh_analysis.summary([]) == NO_CHANGES
    many = [("1", {"insight_name": "N", "data": [{"label": str(i), "data": [i + 1]} for i in range(7)]})]
    base = {"1": {"insight_name": "N", "data": [{"label": str(i), "data": [1]} for i in range(7)]}}
    lines = refresh_analysis.summary(refresh_analysis.compare(base, many)).splitlines()
    assert lines == [f"- N · {i}: 1 → {i + 1} (+{i}, +{i * 100}.0%)" for i in (6, 5, 4, 3, 2)]
