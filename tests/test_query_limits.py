"""Bounded query work: every cap is a 400 naming the field on `/query/` and at insight save, and a tile
`error` on a dashboard; what stays allowed is computed without holding the event loop."""

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import event as sa_event
from sqlalchemy.ext.asyncio import AsyncEngine

from app.query import memory
from tests.events import event, ingest
from tests.factories import Actor
from tests.trends_helpers import absolute, node, post_query, trends_query, utc


def _with(series: dict[str, Any] | None = None, **source: Any) -> dict[str, Any]:
    return trends_query(series or node(), **source)


async def refused(client: httpx.AsyncClient, actor: Actor, query: dict[str, Any]) -> dict[str, Any]:
    response = await post_query(client, actor, query)
    assert response.status_code == 400, response.text[:500]
    body: dict[str, Any] = response.json()
    assert body["type"] == "validation_error"
    return body


async def raw_query(client: httpx.AsyncClient, actor: Actor, query_json: str) -> httpx.Response:
    """POST `/query/` with the query written as raw JSON text (for numbers Python cannot write, 1e400)."""
    body = '{"refresh": "force_blocking", "query": ' + query_json + "}"
    headers = {**actor.headers, "Content-Type": "application/json"}
    return await client.post(actor.url("query/"), content=body.encode(), headers=headers)


@asynccontextmanager
async def loop_watch() -> AsyncIterator[list[float]]:
    """The longest time (seconds) the event loop went without running a 5 ms heartbeat, in the block."""
    gaps: list[float] = [0.0]
    stop = asyncio.Event()

    async def beat() -> None:
        last = time.perf_counter()
        while not stop.is_set():
            await asyncio.sleep(0.005)
            now = time.perf_counter()
            gaps[0] = max(gaps[0], now - last)
            last = now

    task = asyncio.create_task(beat())
    await asyncio.sleep(0)
    try:
        yield gaps
    finally:
        stop.set()
        await task


# --- breakdown values x buckets --------------------------------------------------------------------------


BREAKDOWN_LIMIT_ATTR = "query__source__breakdownFilter__breakdown_limit"


@pytest.mark.parametrize(
    ("limit", "source"),
    [
        (5_000, {"interval": "hour", "dateRange": {"date_from": "-7d"}}),
        (20_000, {}),
        (10**12, absolute("2025-03-01", "2025-03-01")),
    ],
)
async def test_breakdown_values_times_buckets_is_capped_before_any_sql(
    client: httpx.AsyncClient, actor: Actor, engine: AsyncEngine, limit: int, source: dict[str, Any]
) -> None:
    query = _with(breakdownFilter={"breakdown": "$browser", "breakdown_limit": limit}, **source)
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if "FROM events" in statement:
            seen.append(statement)

    sa_event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        body = await refused(client, actor, query)
    finally:
        sa_event.remove(engine.sync_engine, "before_cursor_execute", record)
    assert body["code"] == "query_too_large"
    assert body["attr"] == BREAKDOWN_LIMIT_ATTR
    assert "breakdown_limit" in body["detail"] and "50000" in body["detail"].replace(",", "")
    assert seen == []  # refused from the date range and the limit alone


async def test_a_bare_trends_query_names_the_field_without_source(
    client: httpx.AsyncClient, actor: Actor
) -> None:
    bare = {
        "kind": "TrendsQuery",
        "series": [node()],
        "breakdownFilter": {"breakdown": "$browser", "breakdown_limit": 20_000},
    }
    body = await refused(client, actor, bare)
    assert body["attr"] == "query__breakdownFilter__breakdown_limit"


async def test_the_breakdown_cap_is_a_setting_and_its_edge_is_allowed(
    actor: Actor, configured: Callable[..., Any]
) -> None:
    async with configured(TILECAST_QUERY_MAX_BREAKDOWN_POINTS="80") as client:
        day_range = absolute("2025-03-01", "2025-03-08")  # 8 daily buckets
        at_cap = _with(breakdownFilter={"breakdown": "$browser", "breakdown_limit": 10}, **day_range)
        assert (await post_query(client, actor, at_cap)).status_code == 200
        over = _with(breakdownFilter={"breakdown": "$browser", "breakdown_limit": 11}, **day_range)
        body = await refused(client, actor, over)
        assert body["attr"] == BREAKDOWN_LIMIT_ATTR and "80" in body["detail"]
        # Without a breakdown the buckets alone count.
        nine_days = _with(**absolute("2025-03-01", "2025-03-09"))
        assert (await post_query(client, actor, nine_days)).status_code == 200
        long = _with(**absolute("2025-01-01", "2025-12-31"))
        body = await refused(client, actor, long)
        assert body["attr"] == "query__source__dateRange"


async def test_the_default_breakdown_limit_over_a_month_of_hours_still_works(
    client: httpx.AsyncClient, actor: Actor
) -> None:
    await ingest(client, actor, [event("$pageview", "a", datetime.now(UTC) - timedelta(hours=2), {"b": "x"})])
    query = _with(breakdownFilter={"breakdown": "b"}, interval="hour", dateRange={"date_from": "-30d"})
    response = await post_query(client, actor, query)
    assert response.status_code == 200, response.text[:300]
    assert sum(response.json()["results"][0]["data"]) == 1


# --- the result size -------------------------------------------------------------------------------------


async def _many_values(client: httpx.AsyncClient, actor: Actor, count: int) -> None:
    await ingest(
        client,
        actor,
        [event("$pageview", f"u{i}", utc(2025, 3, 1, 12), {"v": f"value-{i}"}) for i in range(count)],
    )


async def test_a_result_over_the_size_cap_is_refused_and_not_cached(
    actor: Actor, configured: Callable[..., Any]
) -> None:
    async with configured(TILECAST_QUERY_MAX_RESULT_BYTES="20000") as client:
        await _many_values(client, actor, 60)
        query = _with(
            breakdownFilter={"breakdown": "v", "breakdown_limit": 100}, **absolute("2025-03-01", "2025-03-07")
        )
        body = await refused(client, actor, query)
        assert body["code"] == "query_too_large" and body["attr"] == "query"
        assert "20000" in body["detail"].replace(",", "")
        # Nothing was stored: a cache-only read finds nothing.
        cached = await client.post(
            actor.url("query/"), json={"query": query, "refresh": "force_cache"}, headers=actor.headers
        )
        assert cached.status_code == 200 and cached.json()["results"] is None
        # A smaller breakdown of the same events fits.
        small = _with(
            breakdownFilter={"breakdown": "v", "breakdown_limit": 5}, **absolute("2025-03-01", "2025-03-07")
        )
        assert (await post_query(client, actor, small)).status_code == 200


async def test_a_tile_over_a_cap_carries_the_error_and_the_dashboard_still_renders(
    actor: Actor, configured: Callable[..., Any]
) -> None:
    async with configured(TILECAST_QUERY_MAX_RESULT_BYTES="20000") as client:
        await _many_values(client, actor, 60)
        board = (
            await client.post(actor.url("dashboards/"), json={"name": "b"}, headers=actor.headers)
        ).json()["id"]
        big = _with(
            breakdownFilter={"breakdown": "v", "breakdown_limit": 100}, **absolute("2025-03-01", "2025-03-07")
        )
        for name, query in (("big", big), ("small", _with(**absolute("2025-03-01", "2025-03-07")))):
            body = {"name": name, "query": query, "dashboards": [board]}
            made = await client.post(actor.url("insights/"), json=body, headers=actor.headers)
            assert made.status_code == 201, made.text
        response = await client.get(
            actor.url(f"dashboards/{board}/"), params={"refresh": "blocking"}, headers=actor.headers
        )
        assert response.status_code == 200, response.text[:300]
        tiles = {t["insight"]["name"]: t for t in response.json()["tiles"]}
        assert tiles["big"]["error"]["type"] == "QueryTooLarge"
        assert "20000" in tiles["big"]["error"]["message"].replace(",", "")
        assert tiles["big"]["insight"]["result"] is None
        assert "error" not in tiles["small"] and tiles["small"]["insight"]["result"][0]["data"][0] == 60


async def test_a_tile_whose_dashboard_filters_break_a_cap_is_a_tile_error(
    client: httpx.AsyncClient, actor: Actor
) -> None:
    board = (await client.post(actor.url("dashboards/"), json={"name": "b"}, headers=actor.headers)).json()[
        "id"
    ]
    body = {"name": "t", "query": _with(interval="hour"), "dashboards": [board]}
    assert (await client.post(actor.url("insights/"), json=body, headers=actor.headers)).status_code == 201
    override = '{"breakdown_filter": {"breakdown": "$browser", "breakdown_limit": 5000}}'
    response = await client.get(
        actor.url(f"dashboards/{board}/"),
        params={"refresh": "blocking", "filters_override": override},
        headers=actor.headers,
    )
    assert response.status_code == 200, response.text[:300]
    [tile] = response.json()["tiles"]
    assert tile["error"]["type"] == "QueryTooLarge" and "breakdown_limit" in tile["error"]["message"]


# --- CPU-heavy shaping -----------------------------------------------------------------------------------


async def test_smoothing_over_20000_buckets_is_quick_and_right(
    client: httpx.AsyncClient, actor: Actor
) -> None:
    start = datetime(2025, 1, 1, tzinfo=UTC)
    await ingest(
        client, actor, [event("$pageview", "a", start + timedelta(hours=h), {}) for h in (0, 1, 2, 5)]
    )
    end = start + timedelta(hours=19_999)
    query = _with(
        interval="hour",
        trendsFilter={"smoothingIntervals": 20_000},
        dateRange={"date_from": start.isoformat(), "date_to": end.isoformat(), "explicitDate": True},
    )
    async with loop_watch() as gaps:
        response = await post_query(client, actor, query)
    assert response.status_code == 200, response.text[:300]
    data = response.json()["results"][0]["data"]
    assert len(data) == 20_000
    # floor(mean of the buckets so far): 1/1, 2/2, 3/3, 3/4, 3/5, 4/6, 4/7 ... 4/20000
    assert data[:7] == [1, 1, 1, 0, 0, 0, 0]
    assert data[-1] == 0
    assert gaps[0] < 1.0, f"the event loop was held {gaps[0]:.2f} s"


async def test_smoothing_windows_match_the_definition(client: httpx.AsyncClient, actor: Actor) -> None:
    days = [utc(2025, 3, d, 12) for d in (1, 1, 1, 2, 4, 4, 4, 4, 4, 4)]
    await ingest(client, actor, [event("$pageview", f"u{i}", t, {}) for i, t in enumerate(days)])
    [series] = (
        await post_query(
            client,
            actor,
            _with(trendsFilter={"smoothingIntervals": 3}, **absolute("2025-03-01", "2025-03-05")),
        )
    ).json()["results"]
    # data 3, 1, 0, 6, 0 -> floor(3/1), floor(4/2), floor(4/3), floor(7/3), floor(6/3)
    assert series["data"] == [3, 2, 1, 2, 2]


# --- filter values and bind parameters ------------------------------------------------------------------


@pytest.mark.parametrize("count", [30_000, 40_000])
async def test_too_many_values_in_one_filter(client: httpx.AsyncClient, actor: Actor, count: int) -> None:
    values = [f"v{i}" for i in range(count)]
    body = await refused(client, actor, _with(properties=[{"key": "$browser", "value": values}]))
    assert body["code"] == "query_too_large"
    assert body["attr"] == "query__source__properties__0__value"
    assert "10000" in body["detail"].replace(",", "")


async def test_too_many_values_in_a_series_filter(client: httpx.AsyncClient, actor: Actor) -> None:
    values = list(range(10_001))
    series = node(properties=[{"key": "n", "operator": "is_not", "value": values}])
    body = await refused(client, actor, _with(series))
    assert body["attr"] == "query__source__series__0__properties__0__value"


async def test_ten_thousand_values_in_one_filter_work_without_holding_the_loop(
    client: httpx.AsyncClient, actor: Actor
) -> None:
    await ingest(
        client,
        actor,
        [event("$pageview", f"u{i}", utc(2025, 3, 1, 12), {"n": i, "s": f"v{i}"}) for i in range(5)],
    )
    range_ = absolute("2025-03-01", "2025-03-01")
    numbers = list(range(3, 10_003))  # matches n = 3 and 4
    texts = [f"V{i}" for i in range(9_999)] + ["v0"]
    async with loop_watch() as gaps:
        exact = await post_query(client, actor, _with(properties=[{"key": "n", "value": numbers}], **range_))
        negated = await post_query(
            client, actor, _with(properties=[{"key": "n", "operator": "is_not", "value": numbers}], **range_)
        )
        contains = await post_query(
            client,
            actor,
            _with(properties=[{"key": "s", "operator": "icontains", "value": texts[-3:]}], **range_),
        )
        many_contains = await post_query(
            client, actor, _with(properties=[{"key": "s", "operator": "icontains", "value": texts}], **range_)
        )
        regex = await post_query(
            client,
            actor,
            _with(
                properties=[
                    {
                        "key": "s",
                        "operator": "regex",
                        "value": [f"^x{i}$" for i in range(9_999)] + ["^v[12]$"],
                    }
                ],
                **range_,
            ),
        )
    for response in (exact, negated, contains, many_contains, regex):
        assert response.status_code == 200, response.text[:300]
    assert exact.json()["results"][0]["data"] == [2]
    assert negated.json()["results"][0]["data"] == [3]
    assert contains.json()["results"][0]["data"] == [1]  # V9997, V9998, v0: only "v0" is there
    # "V0" … "V4" match v0 … v4 whatever the case; "V10" and the rest match nothing
    assert many_contains.json()["results"][0]["data"] == [5]
    assert regex.json()["results"][0]["data"] == [2]
    assert gaps[0] < 1.0, f"the event loop was held {gaps[0]:.2f} s"


async def test_bind_parameters_are_capped_below_the_drivers_limit(
    client: httpx.AsyncClient, actor: Actor, engine: AsyncEngine
) -> None:
    # 9,000 one-value filters: each under the value cap, together more bind parameters than allowed.
    many = [{"key": f"k{i}", "value": f"v{i}"} for i in range(9_000)]
    body = await refused(client, actor, _with(properties=many))
    assert body["code"] == "query_too_large"
    assert body["attr"] == "query__source__properties"
    assert "parameters" in body["detail"]


async def test_every_statement_stays_within_the_parameter_cap(
    actor: Actor, configured: Callable[..., Any], engine: AsyncEngine
) -> None:
    """The count the cap is checked against, from the query alone, is never below a statement's real one."""
    sizes: list[int] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if "FROM events" in statement:
            sizes.append(len(parameters))

    filters = [
        {"key": "a", "value": ["x", 1, 2.5, True]},
        {"key": "b", "operator": "is_not", "value": [1, "y"]},
        {"key": "b2", "operator": "is_not", "value": 7},
        {"key": "c", "operator": "icontains", "value": ["p", "q"]},
        {"key": "c2", "operator": "not_icontains", "value": "p"},
        {"key": "d", "operator": "not_regex", "value": "^z"},
        {"key": "d2", "operator": "regex", "value": ["^z", "y"]},
        {"key": "e", "operator": "gt", "value": 3},
        {"key": "f", "operator": "is_set"},
        {"key": "f2", "operator": "exact", "value": []},
        {"type": "OR", "values": [{"key": "g", "value": 1}, {"key": "h", "operator": "lte", "value": "2"}]},
    ]
    series = [
        node(properties=filters),
        node(math="weekly_active", properties=filters, fixedProperties=filters[:2]),
        node(math="p90", math_property="n"),
        node(math="unique_session"),
        node(math="dau"),
    ]
    source = {
        "properties": {"type": "AND", "values": filters},
        "breakdownFilter": {"breakdown": "$browser", "breakdown_normalize_url": True},
        "compareFilter": {"compare": True},
        "trendsFilter": {"display": "ActionsLineGraphCumulative"},
        **absolute("2025-03-01", "2025-03-07"),
    }
    query = trends_query(*series, **source)

    async def status(cap: int) -> int:
        async with configured(TILECAST_QUERY_MAX_PARAMETERS=str(cap)) as client:
            return (await post_query(client, actor, query)).status_code

    # The smallest cap that lets the query through is the count the query was checked against.
    low, high = 100, 1000
    assert await status(high) == 200
    while low < high:
        middle = (low + high) // 2
        if await status(middle) == 200:
            high = middle
        else:
            low = middle + 1
    counted = low
    sa_event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        assert await status(counted) == 200
        assert len(sizes) == 10 and max(sizes) <= counted
        sizes.clear()
        assert await status(counted - 1) == 400
        assert sizes == []  # refused before any statement
    finally:
        sa_event.remove(engine.sync_engine, "before_cursor_execute", record)


async def test_the_most_filters_allowed_are_computed_without_holding_the_loop(
    client: httpx.AsyncClient, actor: Actor, engine: AsyncEngine
) -> None:
    await ingest(client, actor, [event("$pageview", "u", utc(2025, 3, 1, 12), {"k0": 1})])
    # (500 - 40) / 4 = 115 filters of the most expensive kind: a number and a text, OR-ed.
    filters = [{"key": f"k{i}", "operator": "is_not", "value": [2, f"v{i}"]} for i in range(115)]
    query = _with(
        node(math="weekly_active"),
        properties=filters,
        breakdownFilter={"breakdown": "$browser"},
        **absolute("2025-03-01", "2025-03-01"),
    )
    kept = engine.sync_engine._compiled_cache
    assert kept is not None
    before = len(kept)
    async with loop_watch() as gaps:
        response = await post_query(client, actor, query)
    assert response.status_code == 200, response.text[:300]
    assert response.json()["results"][0]["data"] == [1]
    assert gaps[0] < 1.0, f"the event loop was held {gaps[0]:.2f} s"
    # Statements this large are compiled each time, not kept (megabytes each).
    assert len(kept) == before
    one_more = [*filters, {"key": "z", "value": 1}]
    body = await refused(client, actor, _with(node(math="weekly_active"), properties=one_more))
    assert body["attr"] == "query__source__properties"


# --- values no float holds, and nesting -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("filter_json", "attr"),
    [
        ('{"key": "n", "value": 1e400}', "query__source__properties__0__value"),
        ('{"key": "n", "operator": "gt", "value": -1e400}', "query__source__properties__0__value"),
        ('{"key": "n", "value": [1, 2, 1e400]}', "query__source__properties__0__value__2"),
        (
            '{"key": "n", "operator": "lt", "value": 1' + "0" * 400 + "}",
            "query__source__properties__0__value",
        ),
        ('{"key": "n", "value": 1' + "0" * 400 + "}", "query__source__properties__0__value"),
    ],
)
async def test_numbers_beyond_float_range_are_a_400(
    client: httpx.AsyncClient, actor: Actor, filter_json: str, attr: str
) -> None:
    query = (
        '{"kind": "InsightVizNode", "source": {"kind": "TrendsQuery", '
        '"series": [{"kind": "EventsNode", "event": "$pageview"}], "properties": [' + filter_json + "]}}"
    )
    response = await raw_query(client, actor, query)
    assert response.status_code == 400, response.text[:300]
    assert response.json()["attr"] == attr
    assert "range" in response.json()["detail"]


async def test_an_infinite_display_option_is_a_400_too(client: httpx.AsyncClient, actor: Actor) -> None:
    query = (
        '{"kind": "InsightVizNode", "source": {"kind": "TrendsQuery", '
        '"series": [{"kind": "EventsNode"}], "trendsFilter": {"decimalPlaces": 1e400}}}'
    )
    response = await raw_query(client, actor, query)
    assert response.status_code == 400, response.text[:300]
    assert response.json()["attr"] == "query__source__trendsFilter__decimalPlaces"


def _nested_groups(depth: int) -> dict[str, Any]:
    group: dict[str, Any] = {"key": "a", "value": "x"}
    for _ in range(depth):
        group = {"type": "AND", "values": [group]}
    return group


async def test_property_groups_nested_200_deep_are_a_400(client: httpx.AsyncClient, actor: Actor) -> None:
    body = await refused(client, actor, _with(properties=_nested_groups(200)))
    assert body["attr"].startswith("query__source__properties")
    assert "deep" in body["detail"]


async def test_property_groups_nested_a_few_deep_still_work(client: httpx.AsyncClient, actor: Actor) -> None:
    await ingest(client, actor, [event("$pageview", "u", utc(2025, 3, 1, 12), {"a": "x"})])
    response = await post_query(
        client, actor, _with(properties=_nested_groups(12), **absolute("2025-03-01", "2025-03-01"))
    )
    assert response.status_code == 200, response.text[:300]
    assert response.json()["results"][0]["data"] == [1]


@pytest.mark.parametrize("depth", [256, 300, 900])
async def test_json_nested_deep_inside_a_query_is_a_400(
    client: httpx.AsyncClient, actor: Actor, depth: int
) -> None:
    deep = "[" * depth + "]" * depth
    query = (
        '{"kind": "InsightVizNode", "display": ' + deep + ', "source": {"kind": "TrendsQuery", '
        '"series": [{"kind": "EventsNode"}]}}'
    )
    response = await raw_query(client, actor, query)
    assert response.status_code == 400, response.text[:300]
    assert response.json()["attr"] == "query__display"
    assert "deep" in response.json()["detail"]


async def test_a_large_result_gives_its_memory_back_once_computed(
    client: httpx.AsyncClient, actor: Actor, monkeypatch: pytest.MonkeyPatch
) -> None:
    await asyncio.sleep(memory.DELAY_S + 0.1)  # a trim an earlier test's large result scheduled runs first
    calls: list[int] = []
    monkeypatch.setattr(memory, "_trim", lambda pad: calls.append(pad) or 1)
    monkeypatch.setattr(memory, "DELAY_S", 0.01)
    small = await post_query(client, actor, _with(**absolute("2025-03-01", "2025-03-07")))
    assert small.status_code == 200
    await asyncio.sleep(0.2)
    assert calls == []  # a small result: nothing to give back
    start = datetime(2025, 1, 1, tzinfo=UTC)
    end = start + timedelta(hours=19_999)  # 20,000 hourly buckets: about 1.3 MB of JSON
    date_range = {"date_from": start.isoformat(), "date_to": end.isoformat(), "explicitDate": True}
    large = await post_query(client, actor, _with(interval="hour", dateRange=date_range))
    assert large.status_code == 200 and len(large.content) > 1024 * 1024
    await asyncio.sleep(0.2)
    assert calls == [0]
