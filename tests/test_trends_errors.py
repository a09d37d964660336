"""What the engine refuses (by name), what it accepts, team isolation, and statements per series."""

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import httpx
import pytest
from sqlalchemy import event as sa_event
from sqlalchemy.ext.asyncio import AsyncEngine

from app.clickhouse.client import ClickHouse
from tests.events import event, ingest
from tests.factories import Actor
from tests.trends_helpers import absolute, error, node, post_query, results, trends_query, utc

# Every test here runs on PostgreSQL and on ClickHouse (tests/conftest.py).
pytestmark = pytest.mark.both_backends


def _with(series: dict[str, Any] | None = None, **source: Any) -> dict[str, Any]:
    return trends_query(series or node(), **source)


UNSUPPORTED = [
    (trends_query({"kind": "ActionsNode", "id": 3}), "ActionsNode is not supported"),
    (
        trends_query({"kind": "GroupNode", "operator": "AND", "nodes": [node(), node("$screen")]}),
        "GroupNode operator 'AND' is not supported",
    ),
    (
        trends_query({"kind": "GroupNode", "operator": "OR", "nodes": [{"kind": "ActionsNode", "id": 1}]}),
        "ActionsNode in a GroupNode is not supported",
    ),
    (
        trends_query({"kind": "GroupNode", "operator": "OR", "nodes": [node(None)]}),
        "a GroupNode node with `event: null` (all events) is not supported",
    ),
    (trends_query({"kind": "DataWarehouseNode", "id": "x"}), "DataWarehouseNode is not supported"),
    (_with(node(math="hogql", math_hogql="count()")), "math_hogql 'count()' is not supported"),
    (_with(node(math="unique_group", math_group_type_index=0)), "math 'unique_group' is not supported"),
    (_with(node(math="first_time_for_user")), "math 'first_time_for_user' is not supported"),
    (_with(node(math="avg_count_per_actor")), "math 'avg_count_per_actor' is not supported"),
    (
        _with(node(math="sum", math_property="x", math_property_type="person_properties")),
        "math_property_type 'person_properties' is not supported",
    ),
    (_with(node(math="avg", math_property="$session_duration")), "math_property '$session_duration'"),
    (_with(node(math_multiplier=100)), "math_multiplier is not supported"),
    (_with(breakdownFilter={"breakdown": "$browser", "breakdown_type": "group"}), "breakdown_type 'group'"),
    (_with(breakdownFilter={"breakdown": [1, 2], "breakdown_type": "cohort"}), "breakdown_type 'cohort'"),
    (_with(breakdownFilter={"breakdown": "x", "breakdown_type": "hogql"}), "breakdown_type 'hogql'"),
    (_with(breakdownFilter={"breakdown": ["$browser", "$os"]}), "a list of breakdown properties"),
    (_with(breakdownFilter={"breakdowns": [{"property": "$browser"}]}), "breakdowns (multiple breakdowns)"),
    (
        _with(breakdownFilter={"breakdown": "n", "breakdown_histogram_bin_count": 5}),
        "breakdown_histogram_bin_count",
    ),
    (_with(properties=[{"type": "cohort", "key": "id", "value": 3}]), "property filter type 'cohort'"),
    (_with(properties=[{"type": "cohort", "key": "id", "value": 3}]), "property filter type 'cohort'"),
    (_with(node(properties=[{"type": "hogql", "key": "1 = 1"}])), "property filter type 'hogql'"),
    (
        _with(properties={"type": "OR", "values": [{"type": "element", "key": "text", "value": "x"}]}),
        "property filter type 'element'",
    ),
    (_with(properties=[{"key": "a", "operator": "between", "value": [1, 2]}]), "operator 'between'"),
    (_with(properties=[{"key": "a", "operator": "is_date_after", "value": "x"}]), "operator 'is_date_after'"),
    (_with(trendsFilter={"display": "CalendarHeatmap"}), "display 'CalendarHeatmap'"),
    (
        _with(trendsFilter={"formulaNodes": [{"formula": "A", "weighting": 2}]}),
        "formula node field 'weighting' is not supported",
    ),
    (_with(interval="minute"), "interval 'minute' is not supported"),
    (_with(samplingFactor=0.1), "samplingFactor is not supported"),
    (_with(aggregation_group_type_index=0), "aggregation_group_type_index is not supported"),
    (_with(conversionGoal={"actionId": 1}), "conversionGoal is not supported"),
    (_with(node(someNumberChangingKey=1)), "EventsNode field 'someNumberChangingKey' is not supported"),
    (_with(unknownKnob=True), "TrendsQuery field 'unknownKnob' is not supported"),
    (_with(dateRange={"date_from": "-7d", "excludeIncompletePeriods": True}), "excludeIncompletePeriods"),
    (
        {"kind": "InsightVizNode", "source": {"kind": "PathsQuery", "series": []}},
        "PathsQuery is not supported",
    ),
    ({"kind": "EventsQuery", "select": ["*"]}, "EventsQuery is not supported"),
]


@pytest.mark.parametrize(("query", "named"), UNSUPPORTED, ids=[named for _, named in UNSUPPORTED])
async def test_unsupported_is_refused_by_name(
    client: httpx.AsyncClient, actor: Actor, query: dict[str, Any], named: str
) -> None:
    body = await error(client, actor, query)
    assert body["type"] == "validation_error"
    assert body["code"] == "unsupported_query"
    assert named in body["detail"]


INVALID = [
    ({"kind": "InsightVizNode"}, "source"),
    ({"kind": "TrendsQuery", "series": "x"}, "series"),
    (trends_query({"kind": "FooNode"}), "unknown kind 'FooNode'"),
    (trends_query({"event": "$pageview"}), "series.0"),
    (_with(interval="year"), "interval"),
    (_with(node(math="sum")), "math 'sum' needs a math_property"),
    (_with(node(math="hogql")), "math 'hogql' needs a math_hogql expression"),
    (trends_query({"kind": "GroupNode", "operator": "OR", "nodes": []}), "GroupNode needs at least one node"),
    (trends_query({"kind": "GroupNode", "nodes": [node()]}), "GroupNode operator must be 'OR' or 'AND'"),
    (_with(trendsFilter={"formula": "A+B"}), "Formula 'A+B' references series B, but only 1 series is"),
    (_with(dateRange={"date_from": "last tuesday"}), "last tuesday"),
    (_with(properties=[{"key": "a", "operator": "gt", "value": "many"}]), "'many' is not a number"),
    (_with(properties=[{"key": "a", "operator": "regex", "value": "(unclosed"}]), "invalid regex"),
    (_with(properties=[{"key": "", "value": "x"}]), "key"),
    (_with(properties=[{"key": "a", "operator": "exact", "value": {"x": 1}}]), "string or number"),
    (_with(breakdownFilter={"breakdown": "$browser", "breakdown_limit": -1}), "breakdown_limit"),
    (_with(trendsFilter={"smoothingIntervals": 0}), "smoothingIntervals"),
    (_with(dateRange={"date_from": "-1000000d"}), "out of range"),
    (
        _with(node(math="weekly_active"), dateRange={"date_from": "0001-01-03", "date_to": "0001-01-05"}),
        "out of range",
    ),
    (_with(interval="hour", dateRange={"date_from": "-3y"}), "more than 20000 hour intervals"),
]


async def test_nul_in_a_query_is_refused_before_the_engine(client: httpx.AsyncClient, actor: Actor) -> None:
    response = await client.post(
        actor.url("query/"), json={"query": _with(node("page\u0000view"))}, headers=actor.headers
    )
    assert response.status_code == 400
    assert response.json()["code"] == "null_characters_not_allowed"
    assert response.json()["attr"] == "query"


@pytest.mark.parametrize(("query", "named"), INVALID, ids=[named for _, named in INVALID])
async def test_invalid_shapes(
    client: httpx.AsyncClient, actor: Actor, query: dict[str, Any], named: str
) -> None:
    body = await error(client, actor, query)
    assert body["code"] == "invalid_query"
    assert named in body["detail"]


async def test_a_regex_postgres_rejects_is_an_invalid_query(client: httpx.AsyncClient, actor: Actor) -> None:
    # Valid for Python, not for PostgreSQL's regular expressions.
    body = await error(
        client, actor, _with(properties=[{"key": "a", "operator": "regex", "value": "(?P<n>x)"}])
    )
    assert body["code"] == "invalid_query" and "regular expression" in body["detail"]
    # The request's transaction is still usable.
    assert (await results(client, actor, node())) != []


async def test_display_only_keys_are_accepted(client: httpx.AsyncClient, actor: Actor) -> None:
    await ingest(client, actor, [event("$pageview", "a", utc(2025, 3, 1, 12), {})])
    query = {
        "kind": "InsightVizNode",
        "full": True,
        "showHeader": True,
        "somethingNewInTheUi": {"a": 1},
        "source": {
            "kind": "TrendsQuery",
            "series": [node(name="$pageview", custom_name="Views", limit=100, optionalInFunnel=False)],
            "filterTestAccounts": True,
            "dataColorTheme": 3,
            "modifiers": {"personsOnEventsMode": "disabled"},
            "tags": {"scene": "x"},
            "version": 2,
            "samplingFactor": 1,
            "trendsFilter": {
                "display": "ActionsAreaGraph",
                "showLegend": True,
                "aggregationAxisFormat": "percentage",
                "decimalPlaces": 2,
                "goalLines": [{"label": "g", "value": 1}],
                "aNewDisplayOption": "x",
            },
            "breakdownFilter": {"breakdown_type": "person"},  # no breakdown property: nothing to refuse
            "compareFilter": {"compare": False},
            **absolute("2025-03-01", "2025-03-01"),
        },
    }
    response = await post_query(client, actor, query)
    assert response.status_code == 200, response.text
    assert response.json()["results"][0]["data"] == [1]


async def test_extreme_but_valid_values(client: httpx.AsyncClient, actor: Actor) -> None:
    await ingest(client, actor, [event("$pageview", "a", utc(2025, 3, 1, 12), {"$browser": "Chrome"})])
    [last] = await results(client, actor, node(), interval="month", **absolute("9999-12-01", "9999-12-31"))
    assert last["days"] == ["9999-12-01"] and last["data"] == [0]
    [everything] = await results(
        client,
        actor,
        node(),
        # The most values one daily bucket may have (TILECAST_QUERY_MAX_BREAKDOWN_POINTS, 50,000).
        breakdownFilter={"breakdown": "$browser", "breakdown_limit": 50_000},
        **absolute("2025-03-01", "2025-03-01"),
    )
    assert everything["breakdown_value"] == "Chrome" and everything["data"] == [1]


async def test_a_bare_trends_query_works_too(client: httpx.AsyncClient, actor: Actor) -> None:
    await ingest(client, actor, [event("$pageview", "a", utc(2025, 3, 1, 12), {})])
    bare = {"kind": "TrendsQuery", "series": [node()], **absolute("2025-03-01", "2025-03-01")}
    response = await post_query(client, actor, bare)
    assert response.status_code == 200, response.text
    assert response.json()["results"][0]["data"] == [1]


async def test_teams_never_see_each_others_events(
    client: httpx.AsyncClient, actor: Actor, other_actor: Actor
) -> None:
    await ingest(client, actor, [event("$pageview", "a", utc(2025, 3, 1, 12), {"$browser": "Chrome"})])
    await ingest(
        client,
        other_actor,
        [event("$pageview", f"b{i}", utc(2025, 3, 1, 12), {"$browser": "Safari"}) for i in range(2)],
    )
    range_ = absolute("2025-03-01", "2025-03-01")
    for who, expected, browser in ((actor, 1, "Chrome"), (other_actor, 2, "Safari")):
        [series] = await results(client, who, node(None, math="dau"), **range_)
        assert series["data"] == [expected]
        out = await results(client, who, node(), breakdownFilter={"breakdown": "$browser"}, **range_)
        assert [s["breakdown_value"] for s in out] == [browser]
        [pie] = await results(
            client, who, node(), trendsFilter={"display": "BoldNumber"}, dateRange={"date_from": "all"}
        )
        assert pie["aggregated_value"] == expected
    # Another team's id in the URL is refused outright.
    response = await client.post(
        actor.url("query/", team_id=other_actor.team.id),
        json={"query": trends_query(node()), "refresh": "force_blocking"},
        headers=actor.headers,
    )
    assert response.status_code == 403


@contextmanager
def _statements_on(engine: AsyncEngine, store: ClickHouse | None) -> Iterator[list[str]]:
    """The statements that read events while the block runs: on PostgreSQL, or on the ClickHouse store."""
    seen: list[str] = []
    if store is not None:
        query = store.query

        async def recorded(sql: str, *args: Any, **kwargs: Any) -> Any:
            if f"FROM {store.database}.events" in sql:
                seen.append(sql)
            return await query(sql, *args, **kwargs)

        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(store, "query", recorded)
            yield seen
        return

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "FROM events" in statement:
            seen.append(statement)

    sa_event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        sa_event.remove(engine.sync_engine, "before_cursor_execute", record)


@pytest.fixture
def statements_on_events(
    engine: AsyncEngine, events_store: ClickHouse | None
) -> Callable[[], AbstractContextManager[list[str]]]:
    return lambda: _statements_on(engine, events_store)


async def test_one_statement_per_series(
    client: httpx.AsyncClient,
    actor: Actor,
    statements_on_events: Callable[[], AbstractContextManager[list[str]]],
) -> None:
    await ingest(
        client,
        actor,
        [event("$pageview", f"u{i}", utc(2025, 3, 1, 12), {"$browser": f"b{i % 4}"}) for i in range(8)],
    )
    three = (node(), node(math="dau"), node(math="weekly_active"))
    breakdown = {"breakdownFilter": {"breakdown": "$browser", "breakdown_limit": 2}}
    range_ = absolute("2025-03-01", "2025-03-02")
    with statements_on_events() as seen:
        out = await results(client, actor, *three, **breakdown, **range_)
    assert len(seen) == 3
    # Top two values and "other" for each series, all from those three statements.
    assert [s["breakdown_value"] for s in out] == ["b0", "b1", "$$_posthog_breakdown_other_$$"] * 3
    with statements_on_events() as seen:
        await results(client, actor, *three, **breakdown, compareFilter={"compare": True}, **range_)
    assert len(seen) == 6  # one more per series for the previous period
    with statements_on_events() as seen:
        await results(
            client,
            actor,
            node(math="sum", math_property="x"),
            trendsFilter={"display": "ActionsPie"},
            **breakdown,
        )
    assert len(seen) == 1
