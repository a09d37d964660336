"""SQL insights: a corpus of HogQL queries (the shapes of PostHog's docs and templates), each with its
result on the fixed event set of `hogql_helpers`, worked out by hand. Another team's events are present
throughout: no count may include them."""

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.conftest import FreshDatabases
from tests.hogql_helpers import World, events_store, hogql, rows, sql_database, sql_world

pytestmark = pytest.mark.both_backends

DAY = "2026-01-0{}T00:00:00Z"
EPOCH = int(datetime(2026, 1, 1, 10, tzinfo=UTC).timestamp())

CORPUS: list[tuple[str, Any]] = [
    # Counting and grouping
    ("SELECT count() FROM events", [[8]]),
    ("SELECT event, count() AS c FROM events GROUP BY event ORDER BY c DESC, event",
     [["$pageview", 4], ["purchase", 2], ["$autocapture", 1], ["signup", 1]]),
    ("SELECT count(*) FROM events WHERE event = '$pageview'", [[4]]),
    ("SELECT uniq(distinct_id) FROM events", [[3]]),
    ("SELECT uniqExact(distinct_id) FROM events WHERE event = '$pageview'", [[3]]),
    ("SELECT distinct_id, count() FROM events GROUP BY distinct_id ORDER BY distinct_id",
     [["u1", 3], ["u2", 3], ["u3", 2]]),
    ("SELECT countIf(event = 'purchase') FROM events", [[2]]),
    ("SELECT countIf(event = 'signup') / count() FROM events", [[0.125]]),
    ("SELECT distinct_id FROM events GROUP BY distinct_id HAVING count() > 2 ORDER BY distinct_id",
     [["u1"], ["u2"]]),
    ("SELECT DISTINCT event FROM events ORDER BY event LIMIT 2 OFFSET 1", [["$pageview"], ["purchase"]]),
    ("SELECT event, count() FROM events GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 1", [["$pageview", 4]]),
    ("SELECT event FROM events ORDER BY timestamp DESC LIMIT 1", [["$autocapture"]]),
    ("SeLeCt CoUnT() FrOm events", [[8]]),
    ("SELECT count() FROM events -- a comment", [[8]]),
    # Properties
    ("SELECT properties.$browser AS browser, count() FROM events WHERE event = '$pageview' GROUP BY browser "
     "ORDER BY browser", [["Chrome", 2], ["Firefox", 1], ["Safari", 1]]),
    ("SELECT properties['$browser'] FROM events WHERE event = 'signup'", [[None]]),
    ("SELECT count() FROM events WHERE properties.$browser != 'Chrome'", [[6]]),
    ("SELECT count() FROM events WHERE properties.$browser = 'Chrome'", [[2]]),
    ("SELECT properties.$set.email FROM events WHERE event = '$pageview' AND distinct_id = "
     "'u2'", [["b@x.com"]]),
    ("SELECT properties.nested.k.z FROM events WHERE event = 'signup'", [["deep"]]),
    ("SELECT properties.flag FROM events WHERE event = 'purchase' AND distinct_id = 'u3'", [["true"]]),
    ("SELECT count() FROM events WHERE properties.$browser IN ('Chrome', 'Safari')", [[3]]),
    ("SELECT count() FROM events WHERE properties.$browser NOT IN ('Chrome')", [[6]]),
    ("SELECT count() FROM events WHERE properties.$browser IS NULL", [[4]]),
    ("SELECT count() FROM events WHERE notEmpty(properties.$browser)", [[4]]),
    ("SELECT count() FROM events WHERE $session_id = 's1'", [[2]]),
    ("SELECT coalesce(properties.$browser, 'Unknown') AS b, count() FROM events GROUP BY b ORDER BY b",
     [["Chrome", 2], ["Firefox", 1], ["Safari", 1], ["Unknown", 4]]),
    ("SELECT ifNull(properties.plan, 'free') AS plan, count() FROM events GROUP BY plan ORDER BY plan",
     [["free", 7], ["pro", 1]]),
    ("SELECT properties.$browser ?? 'n/a' FROM events WHERE event = 'purchase' LIMIT 1", [["n/a"]]),
    ("SELECT count() FROM events WHERE properties.price > 7", [[2]]),
    ("SELECT JSONExtractString(properties, '$browser') FROM events WHERE event = 'signup'", [[""]]),
    ("SELECT JSONExtractFloat(properties, 'amount') FROM events WHERE event = 'purchase' ORDER BY timestamp",
     [[30.0], [12.5]]),
    ("SELECT JSONHas(properties, 'flag') FROM events WHERE event = 'purchase' ORDER BY "
     "timestamp", [[0], [1]]),
    # Persons
    ("SELECT person.properties.email AS email, count() FROM events WHERE person.properties.email IS NOT NULL "
     "GROUP BY email ORDER BY email", [["a@x.com", 3], ["b@x.com", 3]]),
    ("SELECT e.distinct_id, p.properties.email FROM events e LEFT JOIN persons p ON e.distinct_id = "
     "p.distinct_id "
     "WHERE e.event = 'signup'", [["u2", "b@x.com"]]),
    ("SELECT properties.email FROM persons WHERE properties.email IS NOT NULL ORDER BY properties.email",
     [["a@x.com"], ["b@x.com"]]),
    # Conditionals and conversions
    ("SELECT multiIf(properties.$browser = 'Chrome', 'chrome', properties.$browser = 'Firefox', 'firefox', "
     "'other') AS kind, count() FROM events GROUP BY kind ORDER BY kind",
     [["chrome", 2], ["firefox", 1], ["other", 5]]),
    ("SELECT if(event = 'purchase', 'buy', 'other') AS k, count() FROM events GROUP BY k ORDER BY k",
     [["buy", 2], ["other", 6]]),
    ("SELECT CASE WHEN event = 'purchase' THEN 1 ELSE 0 END AS p, count() FROM events GROUP BY p ORDER BY p",
     [[0, 6], [1, 2]]),
    ("SELECT toInt(properties.price) + 1 FROM events WHERE event = '$pageview' ORDER BY timestamp",
     [[11], [None], [None], [21]]),
    ("SELECT toFloat(properties.price) * 2 FROM events WHERE properties.price IS NOT NULL ORDER BY timestamp",
     [[20.0], [11.0], [40.0]]),
    ("SELECT event = 'signup' AS is_signup FROM events WHERE event = 'signup'", [[1]]),
    ("SELECT intDiv(7, 2), 7 % 3, 1 / 0, 2 + 3 * 4", [[3, 1, None, 14]]),
    # Aggregates
    # What toFloat reads as a number (PostgreSQL 16+ checks with pg_input_is_valid, older ones with a
    # pattern): no NaN or infinity, and nothing with text around the number.
    ("SELECT toFloat('12.5'), toFloat(' 7 '), toFloat('abc'), toFloat('nan'), toFloat('inf'), "
     "toFloat('1e5'), toFloat(''), toFloat('1.5e'), toFloat('-.5'), toFloat('12px')",
     [[12.5, 7.0, None, None, None, 100000.0, None, None, -0.5, None]]),
    ("SELECT toFloat(x), toFloat(y) FROM (SELECT 'abc' AS x, '2.5' AS y)", [[None, 2.5]]),
    ("SELECT sum(toFloat(properties.price)) FROM events", [[35.5]]),
    ("SELECT avg(toFloat(properties.price)) FROM events", [[35.5 / 3]]),
    ("SELECT round(avg(toFloat(properties.price)), 2) FROM events", [[11.83]]),
    ("SELECT sumIf(toFloat(properties.amount), event = 'purchase') FROM events", [[42.5]]),
    ("SELECT quantile(0.5)(toFloat(properties.price)) FROM events", [[10.0]]),
    ("SELECT median(toFloat(properties.amount)) FROM events", [[21.25]]),
    ("SELECT argMax(event, timestamp) FROM events", [["$autocapture"]]),
    ("SELECT argMin(distinct_id, timestamp) FROM events", [["u1"]]),
    ("SELECT groupUniqArray(properties.$browser) FROM events", [[["Chrome", "Firefox", "Safari"]]]),
    ("SELECT min(timestamp), max(timestamp) FROM events", [["2026-01-01T10:00:00Z", "2026-01-04T08:00:00Z"]]),
    # Strings
    ("SELECT event FROM events WHERE event LIKE '$%' GROUP BY event ORDER BY "
     "event", [["$autocapture"], ["$pageview"]]),
    ("SELECT event FROM events WHERE event ILIKE 'PUR%' LIMIT 1", [["purchase"]]),
    ("SELECT count() FROM events WHERE match(properties.$current_url, '^https://a')", [[1]]),
    ("SELECT count() FROM events WHERE event =~ '^p'", [[2]]),
    ("SELECT count() FROM events WHERE event !~ '^[$]'", [[3]]),
    ("SELECT event FROM events WHERE event IN ('signup', 'purchase') ORDER BY timestamp",
     [["signup"], ["purchase"], ["purchase"]]),
    ("SELECT count() FROM events WHERE event NOT IN ('signup', 'purchase')", [[5]]),
    ("SELECT concat(event, '-', distinct_id) FROM events ORDER BY timestamp LIMIT 2",
     [["$pageview-u1"], ["$pageview-u1"]]),
    ("SELECT lower(properties.$browser), upper(event) FROM events WHERE event = '$pageview' ORDER "
     "BY timestamp "
     "LIMIT 1", [["chrome", "$PAGEVIEW"]]),
    ("SELECT length(event), substring(event, 2, 4) FROM events WHERE event = '$pageview' LIMIT "
     "1", [[9, "page"]]),
    ("SELECT replaceAll(event, '$', '') AS e FROM events GROUP BY e ORDER BY e",
     [["autocapture"], ["pageview"], ["purchase"], ["signup"]]),
    ("SELECT arrayJoin(splitByChar(',', properties.tags)) AS tag FROM events WHERE properties.tags "
     "IS NOT NULL "
     "ORDER BY tag", [["a"], ["b"]]),
    ("SELECT startsWith(event, '$'), endsWith(event, 'view') FROM events ORDER BY timestamp LIMIT "
     "1", [[1, 1]]),
    ("SELECT position(event, 'view') FROM events WHERE event = '$pageview' LIMIT 1", [[6]]),
    ("SELECT has(['a', 'b'], 'b'), indexOf(['a', 'b'], 'b')", [[1, 2]]),
    # Dates and times (team timezone UTC here)
    ("SELECT toStartOfDay(timestamp) AS day, count() FROM events GROUP BY day ORDER BY day",
     [[DAY.format(d), 2] for d in (1, 2, 3, 4)]),
    ("SELECT toDate(timestamp) AS d, count() FROM events GROUP BY d ORDER BY d",
     [[f"2026-01-0{d}", 2] for d in (1, 2, 3, 4)]),
    ("SELECT event FROM events WHERE timestamp >= '2026-01-03' ORDER BY timestamp",
     [["$pageview"], ["purchase"], ["purchase"], ["$autocapture"]]),
    ("SELECT count() FROM events WHERE timestamp < '2026-01-02 00:00:00'", [[2]]),
    ("SELECT count() FROM events WHERE timestamp BETWEEN '2026-01-02' AND '2026-01-03'", [[2]]),
    ("SELECT count() FROM events WHERE timestamp > toDateTime('2026-01-04 00:00:00') - INTERVAL 1 "
     "DAY", [[4]]),
    ("SELECT dateDiff('day', min(timestamp), max(timestamp)) FROM events", [[3]]),
    ("SELECT dateDiff('hour', toDateTime('2026-01-01 10:59:00'), toDateTime('2026-01-01 11:01:00'))", [[1]]),
    ("SELECT toHour(timestamp) AS h, count() FROM events GROUP BY h ORDER BY h",
     [[0, 1], [8, 1], [9, 2], [10, 1], [12, 1], [13, 1], [23, 1]]),
    ("SELECT toDayOfWeek(toDate('2026-01-05'))", [[1]]),
    ("SELECT toStartOfMonth(timestamp) AS m, count() FROM events GROUP BY m", [["2026-01-01", 8]]),
    ("SELECT toStartOfWeek(toDate('2026-01-03'))", [["2025-12-28"]]),
    ("SELECT toMonday(toDate('2026-01-03'))", [["2025-12-29"]]),
    ("SELECT dateAdd('day', 2, toDate('2026-01-30'))", [["2026-02-01"]]),
    ("SELECT formatDateTime(timestamp, '%Y-%m-%d %H:%i') FROM events ORDER BY timestamp LIMIT 1",
     [["2026-01-01 10:00"]]),
    ("SELECT toString(timestamp) FROM events ORDER BY timestamp LIMIT 1", [["2026-01-01 10:00:00"]]),
    ("SELECT toUnixTimestamp(timestamp) FROM events ORDER BY timestamp LIMIT 1", [[EPOCH]]),
    ("SELECT count() FROM events WHERE toYear(timestamp) = 2026 AND toMonth(timestamp) = 1 "
     "AND toDayOfMonth(timestamp) = 2", [[2]]),
    # Subqueries, CTEs, joins, unions
    ("SELECT e.event, count() FROM events AS e WHERE e.distinct_id = 'u3' GROUP BY e.event ORDER BY e.event",
     [["$pageview", 1], ["purchase", 1]]),
    ("WITH buyers AS (SELECT distinct_id FROM events WHERE event = 'purchase') "
     "SELECT count() FROM events WHERE distinct_id IN (SELECT distinct_id FROM buyers)", [[5]]),
    ("SELECT count() FROM (SELECT distinct_id, count() AS c FROM events GROUP BY distinct_id) WHERE "
     "c >= 3", [[2]]),
    ("SELECT a.distinct_id, count() FROM events a JOIN (SELECT distinct_id FROM events WHERE event "
     "= 'signup') b "
     "ON a.distinct_id = b.distinct_id GROUP BY a.distinct_id", [["u2", 3]]),
    ("WITH pv AS (SELECT distinct_id FROM events WHERE event = '$pageview') SELECT "
     "uniqExact(distinct_id) FROM pv",
     [[3]]),
    ("SELECT 'a' AS x UNION ALL SELECT 'b'", [["a"], ["b"]]),
    ("SELECT count() FROM events UNION ALL SELECT count() FROM events WHERE event = 'signup'", [[8], [1]]),
    ("SELECT count() FROM events a JOIN events b ON a.uuid = b.uuid", [[8]]),
    ("SELECT (SELECT count() FROM events WHERE event = 'purchase') AS purchases", [[2]]),
]  # fmt: skip


@pytest.fixture(scope="module")
def sql_url(fresh_databases: FreshDatabases) -> str:
    return sql_database(fresh_databases)


@pytest.fixture(scope="module")
def events_backend(request: pytest.FixtureRequest) -> str:
    """The module's backend (`both_backends`), for the module-wide world."""
    backend: str = request.param
    return backend


@pytest.fixture(scope="module")
async def world(sql_url: str, events_backend: str, request: pytest.FixtureRequest) -> AsyncIterator[World]:
    async with events_store(events_backend, request) as store, sql_world(sql_url, store) as made:
        yield made


async def test_the_corpus_gives_each_query_its_result(world: World) -> None:
    assert len(CORPUS) >= 60
    client, actor = world.client, world.ours
    wrong = []
    for text, expected in CORPUS:
        response = await hogql(client, actor, text)
        got = response.json().get("results") if response.status_code == 200 else response.text
        if got != expected:
            wrong.append(f"{text}\n    expected {expected!r}\n    got      {got!r}")
    assert not wrong, f"{len(wrong)} of {len(CORPUS)} queries differ:\n" + "\n".join(wrong)


async def test_the_response_has_posthogs_fields(world: World) -> None:
    client, actor = world.client, world.ours
    response = await hogql(client, actor, "SELECT event, count() FROM events GROUP BY event ORDER BY event")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["results"] == [["$autocapture", 1], ["$pageview", 4], ["purchase", 2], ["signup", 1]]
    assert body["columns"] == ["event", "count()"]
    assert body["types"] == [["event", "String"], ["count()", "UInt64"]]
    assert (body["limit"], body["offset"], body["hasMore"]) == (100, 0, False)
    assert "LIMIT 101" in body["hogql"] and "OFFSET 0" in body["hogql"]
    assert body["query"] == "SELECT event, count() FROM events GROUP BY event ORDER BY event"
    assert body["timezone"] == "UTC" and body["is_cached"] is False and body["query_status"] is None
    assert (body["error"], body["explain"], body["metadata"], body["timings"]) == (None, None, None, None)
    # Cached: the same body.
    cached = await client.post(
        actor.url("query/"),
        json={"query": {"kind": "HogQLQuery", "query": body["query"]}},
        headers=actor.headers,
    )
    again = cached.json()
    assert again["is_cached"] is True
    assert {k: v for k, v in again.items() if k != "is_cached"} == {
        k: v for k, v in body.items() if k != "is_cached"
    }


async def test_a_user_limit_has_no_pagination_fields_and_no_limit_pages(world: World) -> None:
    client, actor = world.client, world.ours
    values = ",".join(str(n) for n in range(150))
    body = (await hogql(client, actor, f"SELECT arrayJoin(splitByChar(',', '{values}')) AS n")).json()
    assert len(body["results"]) == 100 and body["hasMore"] is True and body["limit"] == 100
    body = (
        await hogql(client, actor, f"SELECT arrayJoin(splitByChar(',', '{values}')) AS n LIMIT 120")
    ).json()
    assert len(body["results"]) == 120
    assert (body["limit"], body["offset"], body["hasMore"]) == (None, None, None)
    body = (
        await hogql(client, actor, f"SELECT arrayJoin(splitByChar(',', '{values}')) AS n LIMIT 90000")
    ).json()
    assert len(body["results"]) == 150 and "LIMIT 50000" in body["hogql"]


async def test_times_are_in_the_teams_timezone(world: World) -> None:
    client, actor = world.client, world.berlin
    # 2026-01-01T23:30Z is 00:30 on the 2nd in Berlin.
    assert await rows(client, actor, "SELECT toDate(timestamp) AS d, count() FROM events GROUP BY d "
                                     "ORDER BY d") == [
        ["2026-01-01", 1], ["2026-01-02", 3], ["2026-01-03", 2], ["2026-01-04", 2]
    ]  # fmt: skip
    assert await rows(client, actor, "SELECT count() FROM events WHERE timestamp >= '2026-01-02'") == [[7]]
    body = (
        await hogql(
            client, actor, "SELECT timestamp, toStartOfDay(timestamp) FROM events ORDER BY timestamp LIMIT 1"
        )
    ).json()
    assert body["results"] == [["2026-01-01T11:00:00+01:00", "2026-01-01T00:00:00+01:00"]]
    assert body["types"][0] == ["timestamp", "DateTime64(6, 'Europe/Berlin')"]


async def test_filters_placeholder_and_values(world: World) -> None:
    client, actor = world.client, world.ours
    text = "SELECT count() FROM events WHERE {filters}"
    assert await rows(client, actor, text) == [[8]]
    filters = {
        "dateRange": {"date_from": "2026-01-02", "date_to": "2026-01-04"},
        "properties": [{"type": "event", "key": "$browser", "operator": "exact", "value": "Firefox"}],
    }
    assert await rows(client, actor, text, filters=filters) == [[1]]
    only_dates = {"dateRange": {"date_from": "2026-01-02", "date_to": "2026-01-04"}}
    # date_to is exclusive: 2026-01-02 00:00 <= timestamp < 2026-01-04 00:00.
    assert await rows(client, actor, text, filters=only_dates) == [[4]]
    # A query without the placeholder ignores the filters.
    assert await rows(client, actor, "SELECT count() FROM events", filters=filters) == [[8]]
    assert await rows(
        client, actor, "SELECT count() FROM events WHERE event = {e}", values={"e": "purchase"}
    ) == [[2]]
    # A value is a constant, never SQL.
    assert await rows(
        client, actor, "SELECT count() FROM events WHERE event = {e}", values={"e": "x' OR 1=1 --"}
    ) == [[0]]


async def test_visualization_and_table_nodes_answer_their_source(world: World) -> None:
    client, actor = world.client, world.ours
    source = {
        "kind": "HogQLQuery",
        "query": "SELECT event, count() AS n FROM events GROUP BY event ORDER BY n DESC, event LIMIT 2",
    }
    for wrapper in (
        {"kind": "DataVisualizationNode", "source": source, "display": "ActionsBar",
         "chartSettings": {"xAxis": {"column": "event"}, "yAxis": [{"column": "n"}]}},
        {"kind": "DataTableNode", "source": source, "full": True},
    ):  # fmt: skip
        response = await client.post(actor.url("query/"), json={"query": wrapper}, headers=actor.headers)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["results"] == [["$pageview", 4], ["purchase", 2]]
        assert body["columns"] == ["event", "n"]
