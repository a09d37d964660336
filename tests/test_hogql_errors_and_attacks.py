"""SQL insights: PostHog's error bodies, what the compiler refuses by name, what it confines to the team
(through the production path: `/query/` → compiler → the team's sandbox role), and SQL tiles on dashboards
(dashboard filters, `format=txt`, tile errors)."""

import re
import time
from collections.abc import AsyncIterator

import pytest

from tests.conftest import FreshDatabases
from tests.hogql_helpers import World, events_store, hogql, rows, sql_database, sql_world
from tests.sharing_helpers import patch_sharing
from tests.streams import parse, stream, tiles_of

pytestmark = pytest.mark.both_backends


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


ERRORS = [
    ("SELECT hamburger(event) FROM "
     "events", "hogql_query_error", "Unsupported function call 'hamburger(...)'"),
    ("SELECT TOSTRING(event) FROM events", "hogql_query_error",
     "Unsupported function call 'TOSTRING(...)'. Perhaps you meant 'toString(...)'?"),
    ("SELECT chipotle FROM events", "hogql_query_error", "Unable to resolve field: chipotle"),
    ("SELECT person.chipotle FROM events", "hogql_query_error", "Field not found: chipotle"),
    ("SELECT 1 FROM other", "hogql_query_error", 'Unknown table "other".'),
    ("SELECT toStartOfDay() FROM events", "hogql_query_error",
     "Function 'toStartOfDay' expects at least 1 argument, found 0"),
    ("SELECT toDate(timestamp, 1) FROM "
     "events", "hogql_query_error", "Function 'toDate' expects 1 argument, found 2"),
    ("SELECT count(event, 1, 2, 3) FROM events", "hogql_query_error",
     "Aggregation 'count' expects at most 1 argument, found 4"),
    ("SELECT event AS team_id FROM events", "hogql_query_error", "Alias 'team_id' is a reserved keyword"),
    ("SELECT 1; SELECT 2", "hogql_syntax_error", "mismatched input ';' expecting <EOF>"),
    ("", "hogql_syntax_error", "Empty query"),
    ("SELECT event FROM events WHERE {nothing}", "hogql_query_error",
     "Placeholder {nothing} is not available in this context. You can use the following: filters"),
    ("SELECT event FROM events ORDER BY 1.5", "hogql_query_error",
     "Unsupported number in the query: invalid literal for int() with base 10: '1.5'"),
    ("SELECT 1 LIMIT 1e400", "hogql_query_error", "LIMIT and OFFSET take whole numbers"),
    ("SELECT " + "(" * 3000 + "1" + ")" * 3000, "hogql_syntax_error", "The query is nested too deeply"),
    ("SELECT 1 WHERE {filters}", "hogql_query_error",
     "Cannot use 'filters' placeholder in a SELECT clause that does not select from the events, sessions, "
     "logs, traces or groups table."),
]  # fmt: skip


@pytest.mark.parametrize(("sql", "code", "detail"), ERRORS)
async def test_errors_have_posthogs_body(world: World, sql: str, code: str, detail: str) -> None:
    response = await hogql(world.client, world.ours, sql)
    assert response.status_code == 400, response.text
    assert response.json() == {"type": "validation_error", "code": code, "detail": detail, "attr": None}


async def test_a_syntax_error_names_where(world: World) -> None:
    response = await hogql(world.client, world.ours, "SELECT event FROM events WHERE (")
    assert response.status_code == 400
    assert response.json()["code"] == "hogql_syntax_error"
    assert response.json()["detail"].startswith("Syntax error at line 1")


async def test_variables_are_refused_as_posthog_refuses_an_unknown_one(world: World) -> None:
    variables = {"0191": {"variableId": "0191", "code_name": "min_count", "value": 10}}
    response = await hogql(
        world.client,
        world.ours,
        "SELECT count() FROM events WHERE {variables.min_count}",
        variables=variables,
    )
    assert response.status_code == 400
    assert response.json()["detail"] == "Variable min_count does not exist"
    response = await hogql(world.client, world.ours, "SELECT {variables.x}")
    assert response.json()["detail"] == "Unresolved placeholder: {variables.x}"


async def test_a_database_error_is_a_400_naming_it(world: World) -> None:
    response = await hogql(world.client, world.ours, "SELECT count() FROM events WHERE match(event, '(')")
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["code"] == "hogql_query_error" and "regular expression" in body["detail"]


# Each is refused by name: the allow-list knows no such table or function, and one statement only.
REFUSED = [
    ("SELECT * FROM pg_catalog.pg_tables", 'Unknown table "pg_catalog.pg_tables".'),
    ("SELECT * FROM pg_user", 'Unknown table "pg_user".'),
    ("SELECT * FROM public.events", 'Unknown table "public.events".'),
    ("SELECT count() FROM EVENTS", 'Unknown table "EVENTS".'),
    ("SELECT * FROM information_schema.tables", 'Unknown table "information_schema.tables".'),
    ("SELECT * FROM app_user", 'Unknown table "app_user".'),
    ("SELECT * FROM personal_api_key", 'Unknown table "personal_api_key".'),
    ("SELECT * FROM generate_series(1, 10)", 'Unknown table "generate_series(1, 10)".'),
    ("SELECT generate_series(1, 1000000000)", "Unsupported function call 'generate_series(...)'"),
    ("SELECT pg_sleep(10)", "Unsupported function call 'pg_sleep(...)'"),
    ("SELECT Pg_Sleep(10)", "Unsupported function call 'Pg_Sleep(...)'"),
    ("SELECT set_config('role', 'postgres', false)", "Unsupported function call 'set_config(...)'"),
    ("SELECT current_setting('search_path')", "Unsupported function call 'current_setting(...)'"),
    ("SELECT pg_read_file('/etc/passwd')", "Unsupported function call 'pg_read_file(...)'"),
    ("SELECT dblink('host=x', 'select "
     "1')", "Unsupported function call 'dblink(...)'. Perhaps you meant 'like(...)'?"),
    ("SELECT lo_import('/etc/passwd')", "Unsupported function call 'lo_import(...)'"),
    ("SELECT version()", "Unsupported function call 'version(...)'"),
    ("SELECT set_role('postgres')", "Unsupported function call 'set_role(...)'"),
    ("SELECT reset_role()", "Unsupported function call 'reset_role(...)'"),
    ("SELECT pg_terminate_backend(1)", "Unsupported function call 'pg_terminate_backend(...)'"),
    ("SELECT CAST(event AS regclass) FROM "
     "events", "Syntax error at line 1, column 29: Expected TYPE after CAST"),
    ("SELECT event::regclass FROM events", None),
    ("SELECT 1; DROP TABLE events", "mismatched input ';' expecting <EOF>"),
    ("SELECT 1; SET ROLE postgres", "mismatched input ';' expecting <EOF>"),
    ("SET ROLE postgres", None),
    ("COPY events TO '/tmp/x'", None),
    ("DELETE FROM events", "Only SELECT queries are supported, not DELETE"),
    ("WITH RECURSIVE r AS (SELECT 1 AS n UNION ALL SELECT n + 1 FROM r) SELECT count() FROM r",
     "Recursive CTEs are not supported"),
    ("WITH r AS (SELECT n + 1 FROM r) SELECT count() FROM r", 'Unknown table "r".'),
]  # fmt: skip


@pytest.mark.parametrize(("sql", "detail"), REFUSED)
async def test_the_compiler_refuses_by_name(world: World, sql: str, detail: str | None) -> None:
    started = time.monotonic()
    response = await hogql(world.client, world.ours, sql)
    assert response.status_code == 400, response.text
    if detail is not None:
        assert response.json()["detail"] == detail
    assert time.monotonic() - started < 5


# Each is confined: it runs, and sees the team's rows only (the other team has 2 events, one of them a
# $pageview by "intruder" with $browser "Secret").
CONFINED = [
    ("SELECT count() FROM events", [[8]]),
    ("SELECT count() FROM events WHERE team_id != 0", [[8]]),
    ("SELECT count() FROM events WHERE distinct_id = 'intruder'", [[0]]),
    ("SELECT count() FROM (SELECT * FROM events) AS x", [[8]]),
    ("WITH x AS (SELECT * FROM events) SELECT count() FROM x", [[8]]),
    ("SELECT count() FROM events a JOIN events b ON a.distinct_id = b.distinct_id AND a.uuid = "
     "b.uuid", [[8]]),
    ("SELECT count() FROM events a LEFT JOIN events b ON a.team_id != b.team_id", [[8]]),
    ("SELECT count() FROM events a RIGHT JOIN events b ON a.uuid = b.uuid", [[8]]),
    ("SELECT count() FROM events a FULL JOIN events b ON a.uuid = b.uuid", [[8]]),
    ("SELECT count() FROM events, events AS b WHERE b.event = 'signup'", [[8]]),
    ("SELECT count() FROM events UNION ALL SELECT count() FROM events WHERE properties.$browser = 'Secret'",
     [[8], [0]]),
    # u1 and u2 have person rows ($set), u3 has none.
    ("SELECT count() FROM events WHERE distinct_id IN (SELECT distinct_id FROM person)", [[6]]),
    ("SELECT count() FROM person", [[2]]),
    ("SELECT count() FROM persons WHERE properties.email = 'x@secret'", [[0]]),
    ("SELECT count() FROM events WHERE person.properties.email = 'x@secret'", [[0]]),
    ("SELECT count() FROM \"events\"", [[8]]),
    ("SELECT count() FROM `events`", [[8]]),
    ("SELECT count() /* a comment */ FROM events -- WHERE 1 = 0", [[8]]),
    ("SELECT count() FROM events WHERE event = 'x'' OR 1=1 --'", [[0]]),
    ("SELECT count() FROM events WHERE event = 'x\\' OR 1=1 --'", [[0]]),
    ("SELECT sum(toFloat(properties.amount)) FROM events WHERE event = 'purchase'", [[42.5]]),
    ("SELECT (SELECT count() FROM events WHERE properties.$browser = 'Secret')", [[0]]),
    ("SELECT count() FROM events WHERE EXISTS (SELECT 1 FROM events WHERE distinct_id = 'intruder')", [[0]]),
    ("SELECT count() FROM (SELECT arrayJoin(splitByChar(',', 'a,b,c')) AS x)", [[3]]),
]  # fmt: skip


@pytest.mark.parametrize(("sql", "expected"), CONFINED)
async def test_every_construct_is_confined_to_the_team(world: World, sql: str, expected: object) -> None:
    assert await rows(world.client, world.ours, sql) == expected


async def test_every_table_reference_is_guarded_in_the_sql(world: World, events_backend: str) -> None:
    sql = (
        "WITH c AS (SELECT distinct_id FROM events) SELECT count() FROM events e JOIN c ON e.distinct_id = "
        "c.distinct_id LEFT JOIN persons p ON p.distinct_id = e.distinct_id WHERE e.distinct_id IN "
        "(SELECT distinct_id FROM events) AND e.person.properties.email IS NOT NULL "
        "UNION ALL SELECT count() FROM person"
    )
    response = await hogql(world.client, world.ours, sql)
    assert response.status_code == 200, response.text
    generated = response.json()["clickhouse"]
    assert "intruder" not in generated
    if events_backend != "postgres":
        # ClickHouse: every read of the app's tables is filtered by the bound team id. The person join of
        # `e.person.properties` is in each events table of the query: five references and three joins.
        references = re.findall(r"FROM \w+\.(events|person) AS (\w+)", generated)
        assert len(references) == 8
        guards = re.findall(r"WHERE (\w+)\.team_id = \{team_id: ?Int64\}", generated)
        assert sorted(guards) == sorted(alias for _, alias in references)
        # No user text: every string is a bound parameter; the compiler's own constants only.
        assert set(re.findall(r"'([^']*)'", generated)) <= {"$elements_chain", "$session_id", "$window_id",
                                                          "", "null", '"', r"^\\s+|\\s+$"}  # fmt: skip
        return
    references = re.findall(r"FROM (events|person)\b", generated)
    assert len(references) == 6
    assert len(re.findall(r"(events|person)\.team_id = \$1::bigint", generated)) == 6
    assert "'" not in re.sub(r"'[^']*'", "", generated)  # no user text: only the compiler's own constants


async def test_another_team_sees_only_its_own(world: World) -> None:
    got = await rows(
        world.client, world.theirs, "SELECT distinct_id, properties.$browser FROM events ORDER BY timestamp"
    )
    assert got == [["intruder", "Secret"], ["intruder", None]]


async def test_sql_tiles_dashboard_filters_and_txt(world: World) -> None:
    client, actor = world.client, world.ours
    made = await client.post(actor.url("dashboards/"), json={"name": "SQL"}, headers=actor.headers)
    board = made.json()["id"]
    tiles = {
        "by event": {"kind": "DataVisualizationNode", "display": "ActionsBar", "source": {
            "kind": "HogQLQuery",
            "query": "SELECT event, count() AS n FROM events WHERE {filters} GROUP BY event "
                     "ORDER BY n DESC, event"}},
        "all": {"kind": "DataTableNode", "source": {
            "kind": "HogQLQuery", "query": "SELECT count() AS total FROM events"}},
        "broken": {"kind": "DataVisualizationNode", "source": {
            "kind": "HogQLQuery", "query": "SELECT hamburger() FROM events"}},
    }  # fmt: skip
    for name, query in tiles.items():
        response = await client.post(
            actor.url("insights/"),
            json={"name": name, "query": query, "dashboards": [board]},
            headers=actor.headers,
        )
        assert response.status_code == 201, response.text
    response = await client.get(
        actor.url(f"dashboards/{board}/"), params={"refresh": "force_blocking"}, headers=actor.headers
    )
    assert response.status_code == 200, response.text
    by_name = {tile["insight"]["name"]: tile for tile in response.json()["tiles"]}
    first = by_name["by event"]["insight"]
    assert first["result"] == [["$pageview", 4], ["purchase", 2], ["$autocapture", 1], ["signup", 1]]
    assert first["columns"] == ["event", "n"]
    assert first["types"] == [["event", "String"], ["n", "UInt64"]]
    assert by_name["all"]["insight"]["result"] == [[8]]
    assert by_name["broken"]["error"] == {
        "type": "HogQLQueryError",
        "message": "Unsupported function call 'hamburger(...)'",
    }
    text = (
        await client.get(actor.url(f"dashboards/{board}/"), params={"format": "txt"}, headers=actor.headers)
    ).text
    lines = text.splitlines()
    at = lines.index("by event:")
    assert lines[at + 1 : at + 4] == ["  event | n", "  $pageview | 4", "  purchase | 2"]

    # Dashboard filters: the date range and properties reach only the tile with `{filters}`.
    filters = {"date_from": "2026-01-03", "date_to": "2026-01-05",
               "properties": [{"type": "event", "key": "amount", "operator": "is_set"}]}  # fmt: skip
    response = await client.patch(
        actor.url(f"dashboards/{board}/"), json={"filters": filters}, headers=actor.headers
    )
    assert response.status_code == 200, response.text
    response = await client.get(
        actor.url(f"dashboards/{board}/"), params={"refresh": "force_blocking"}, headers=actor.headers
    )
    by_name = {tile["insight"]["name"]: tile for tile in response.json()["tiles"]}
    assert by_name["by event"]["insight"]["result"] == [["purchase", 2]]
    assert by_name["all"]["insight"]["result"] == [[8]]

    # The same rendering path for a stream and a share.
    streamed = await stream(client, actor, board, refresh="force_blocking")
    assert streamed.status_code == 200, streamed.text
    by_name = {
        tile["insight"]["name"]: tile for tile in tiles_of(parse(streamed.text)) if tile.get("insight")
    }
    assert by_name["by event"]["insight"]["result"] == [["purchase", 2]]
    assert by_name["by event"]["insight"]["columns"] == ["event", "n"]
    assert by_name["broken"]["error"]["message"] == "Unsupported function call 'hamburger(...)'"
    shared = await patch_sharing(client, actor, board, enabled=True)
    body = (await client.get(f"/shared/{shared['access_token']}.json")).json()
    by_name = {tile["insight"]["name"]: tile for tile in body["dashboard"]["tiles"]}
    assert by_name["all"]["insight"]["result"] == [[8]]
    assert by_name["by event"]["insight"]["types"] == [["event", "String"], ["n", "UInt64"]]
