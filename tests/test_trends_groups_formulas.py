"""GroupNode series, formulas and `math: "hogql"` in TrendsQuery, on fixed dates in a UTC team, with every
expected number worked out by hand from the events below."""

from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from tests.events import event, ingest
from tests.factories import Actor
from tests.trends_helpers import absolute, data, error, node, results, trends_query, utc

# Every test here runs on PostgreSQL and on ClickHouse (tests/conftest.py).
pytestmark = pytest.mark.both_backends

RANGE = absolute("2025-03-01", "2025-03-03")
# BoldNumber reads an exact time range: a date alone ends at its midnight.
BOLD_RANGE = absolute("2025-03-01", "2025-03-03T23:59:59")
DAYS = ["2025-03-01", "2025-03-02", "2025-03-03"]
NULL = "$$_posthog_breakdown_null_$$"
ARITHMETIC = "formulas only support arithmetic ( + - * / % ** ) between series"
HOGQL_SUBSET = (
    "SQL expressions are not supported yet, except count(distinct properties.<name>), "
    "count(distinct person_id) and count(distinct distinct_id)"
)


def group(*nodes: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"kind": "GroupNode", "operator": "OR", "nodes": list(nodes), **fields}


PAGEVIEW_OR_SCREEN = group(
    node("$pageview", name="$pageview"),
    node("$screen", name="$screen"),
    math="dau",
    name="Pageview or screen",
)


async def _three_days(client: httpx.AsyncClient, actor: Actor) -> None:
    await ingest(
        client,
        actor,
        [
            # 1 Mar: two pageviews of u1 (one trace), a screen of u2.
            event("$pageview", "u1", utc(2025, 3, 1, 10), {"$browser": "Chrome", "$ai_trace_id": "t1"}),
            event("$pageview", "u1", utc(2025, 3, 1, 11), {"$browser": "Chrome", "$ai_trace_id": "t1"}),
            event("$screen", "u2", utc(2025, 3, 1, 12), {"$browser": "Safari"}),
            # 2 Mar: a screen of u1, two pageviews of u3 (two traces), a signup of u4.
            event("$screen", "u1", utc(2025, 3, 2, 9), {"$browser": "Chrome"}),
            event("$pageview", "u3", utc(2025, 3, 2, 10), {"$browser": "Safari", "$ai_trace_id": "t2"}),
            event("$pageview", "u3", utc(2025, 3, 2, 11), {"$browser": "Safari", "$ai_trace_id": "t3"}),
            event("signup", "u4", utc(2025, 3, 2, 12), {"$browser": "Chrome"}),
            # 3 Mar: a screen of u4 without a browser.
            event("$screen", "u4", utc(2025, 3, 3, 10), {}),
            # Outside the range.
            event("$pageview", "u9", utc(2025, 3, 4, 0), {"$browser": "Chrome", "$ai_trace_id": "t9"}),
        ],
    )


# --- GroupNode ---


async def test_or_group_counts_users_and_events_of_either_event(
    client: httpx.AsyncClient, actor: Actor
) -> None:
    await _three_days(client, actor)
    [dau] = await results(client, actor, PAGEVIEW_OR_SCREEN, **RANGE)
    # 1 Mar u1 and u2; 2 Mar u1 (screen) and u3 (u4 only signed up); 3 Mar u4.
    assert dau["data"] == [2, 2, 1] and dau["count"] == 5.0
    assert dau["days"] == DAYS
    assert dau["label"] == "Pageview or screen"
    assert dau["action"]["id"] == "Pageview or screen" and dau["action"]["name"] == "Pageview or screen"
    assert dau["action"]["math"] == "dau" and dau["action"]["order"] == 0
    [total] = await results(client, actor, {**PAGEVIEW_OR_SCREEN, "math": "total"}, **RANGE)
    assert total["data"] == [3, 3, 1]
    # Over the whole range: u1, u2, u3 and u4, each once.
    [bold] = await results(
        client, actor, PAGEVIEW_OR_SCREEN, trendsFilter={"display": "BoldNumber"}, **BOLD_RANGE
    )
    assert bold["aggregated_value"] == 4 and bold["label"] == "Pageview or screen"


async def test_group_nodes_keep_their_own_filters(client: httpx.AsyncClient, actor: Actor) -> None:
    await _three_days(client, actor)
    safari_pageviews_or_screens = group(
        node("$pageview", properties=[{"key": "$browser", "value": "Safari", "type": "event"}]),
        node("$screen"),
        math="total",
    )
    [series] = await results(client, actor, safari_pageviews_or_screens, **RANGE)
    # 1 Mar: u2's screen (u1's pageviews are Chrome); 2 Mar: u1's screen and u3's two pageviews; 3 Mar: u4.
    assert series["data"] == [1, 3, 1]
    # Without a name, the label is the group's events.
    assert series["label"] == "$pageview, $screen"
    # The group's own filters apply to every node; the query's too.
    chrome = {**safari_pageviews_or_screens, "properties": [{"key": "$browser", "value": "Chrome"}]}
    [only_chrome] = await results(client, actor, chrome, **RANGE)
    assert only_chrome["data"] == [0, 1, 0]
    [query_level] = await results(
        client,
        actor,
        safari_pageviews_or_screens,
        properties=[{"key": "$browser", "value": "Safari"}],
        **RANGE,
    )
    assert query_level["data"] == [1, 2, 0]


async def test_group_with_test_account_filters(
    client: httpx.AsyncClient, actor: Actor, db: AsyncSession
) -> None:
    actor.team.test_account_filters = [{"key": "$browser", "value": "Safari", "operator": "is_not"}]
    await db.commit()
    await _three_days(client, actor)
    [series] = await results(client, actor, PAGEVIEW_OR_SCREEN, filterTestAccounts=True, **RANGE)
    # Safari events are left out: u2 on 1 Mar and u3 on 2 Mar; u4's event has no browser and stays.
    assert series["data"] == [1, 1, 1]
    [unfiltered] = await results(client, actor, PAGEVIEW_OR_SCREEN, **RANGE)
    assert unfiltered["data"] == [2, 2, 1]


async def test_group_with_breakdown(client: httpx.AsyncClient, actor: Actor) -> None:
    await _three_days(client, actor)
    out = await results(client, actor, PAGEVIEW_OR_SCREEN, breakdownFilter={"breakdown": "$browser"}, **RANGE)
    # Chrome: u1 on 1 and 2 Mar; Safari: u2 on 1 Mar, u3 on 2 Mar (a tie: by value); none: u4 on 3 Mar.
    assert [(s["breakdown_value"], s["label"], s["data"]) for s in out] == [
        ("Chrome", "Chrome", [1, 1, 0]),
        ("Safari", "Safari", [1, 1, 0]),
        (NULL, NULL, [0, 0, 1]),
    ]
    # Two series: labels name the group.
    two = await results(
        client, actor, PAGEVIEW_OR_SCREEN, node("signup"), breakdownFilter={"breakdown": "$browser"}, **RANGE
    )
    assert [s["label"] for s in two] == [
        "Pageview or screen - Chrome",
        "Pageview or screen - Safari",
        f"Pageview or screen - {NULL}",
        "signup - Chrome",
    ]


async def test_group_with_compare(client: httpx.AsyncClient, actor: Actor) -> None:
    await _three_days(client, actor)
    current, previous = await results(
        client,
        actor,
        PAGEVIEW_OR_SCREEN,
        compareFilter={"compare": True},
        **absolute("2025-03-02", "2025-03-03"),
    )
    assert (current["compare_label"], current["data"]) == ("current", [2, 1])
    assert (previous["compare_label"], previous["days"], previous["data"]) == (
        "previous",
        ["2025-02-28", "2025-03-01"],
        [0, 2],
    )


# --- formulas ---

# A: pageviews [2, 2, 0]; B: pageview users [1, 1, 0]; C: screens [1, 1, 1].
A, B, C = node("$pageview"), node("$pageview", math="dau"), node("$screen")


async def test_formulas_apply_bucket_by_bucket(client: httpx.AsyncClient, actor: Actor) -> None:
    await _three_days(client, actor)
    [share] = await results(client, actor, A, B, trendsFilter={"formula": "B/A*100"}, **RANGE)
    # 3 Mar: 0/0 is 0, as in PostHog.
    assert share["data"] == [50.0, 50.0, 0.0] and all(isinstance(v, float) for v in share["data"])
    assert share["count"] == 100.0
    assert share["label"] == "Formula (B/A*100)" and share["action"] is None
    assert share["days"] == DAYS and share["labels"] == ["1-Mar-2025", "2-Mar-2025", "3-Mar-2025"]
    assert share["order"] == 0 and share["filter"]["formula"] == "B/A*100"
    [per_user] = await results(client, actor, A, B, trendsFilter={"formula": "A/B"}, **RANGE)
    assert per_user["data"] == [2.0, 2.0, 0.0]
    # Lower case letters, three series, subtraction below zero.
    [mixed] = await results(client, actor, A, B, C, trendsFilter={"formula": "a + b - C"}, **RANGE)
    assert mixed["data"] == [2.0, 2.0, -1.0] and mixed["count"] == 3.0
    [zero] = await results(client, actor, A, C, trendsFilter={"formula": "A / (B - 1)"}, **RANGE)
    assert zero["data"] == [0.0, 0.0, 0.0] and zero["count"] == 0.0
    [powers] = await results(client, actor, A, C, trendsFilter={"formula": "-(A ** 2) % 3 + 0.5"}, **RANGE)
    # -(4) % 3 is 2 (Python's modulo, as PostHog's); -(0) % 3 is 0.
    assert powers["data"] == [2.5, 2.5, 0.5]


async def test_formula_nodes_and_formulas_lists(client: httpx.AsyncClient, actor: Actor) -> None:
    await _three_days(client, actor)
    nodes = [{"formula": "A/B", "custom_name": "Pages per user"}, {"formula": "A-B"}]
    out = await results(
        client, actor, A, B, trendsFilter={"formulaNodes": nodes, "formula": "A*1000"}, **RANGE
    )
    # formulaNodes win over the legacy `formula`; one result per formula, the series themselves are gone.
    assert [(s["label"], s["data"]) for s in out] == [
        ("Pages per user", [2.0, 2.0, 0.0]),
        ("Formula (A-B)", [1.0, 1.0, 0.0]),
    ]
    listed = await results(client, actor, A, B, trendsFilter={"formulas": ["A+B", "A-B"]}, **RANGE)
    assert [(s["label"], s["data"]) for s in listed] == [
        ("Formula (A+B)", [3.0, 3.0, 0.0]),
        ("Formula (A-B)", [1.0, 1.0, 0.0]),
    ]


async def test_formula_with_breakdown_zero_fills_missing_values(
    client: httpx.AsyncClient, actor: Actor
) -> None:
    await _three_days(client, actor)
    out = await results(
        client,
        actor,
        A,
        C,
        trendsFilter={"formula": "A+B"},
        breakdownFilter={"breakdown": "$browser"},
        **RANGE,
    )
    # A (pageviews): Chrome [2, 0, 0], Safari [0, 2, 0]; B (screens): Chrome [0, 1, 0], Safari [1, 0, 0],
    # none [0, 0, 1] (not in A).
    # Chrome and Safari tie at 3: the larger first bucket first (PostHog's order), the null value last.
    assert [(s["breakdown_value"], s["label"], s["data"], s["count"]) for s in out] == [
        ("Chrome", "Formula (A+B)", [2.0, 1.0, 0.0], 3.0),
        ("Safari", "Formula (A+B)", [1.0, 2.0, 0.0], 3.0),
        (NULL, "Formula (A+B)", [0.0, 0.0, 1.0], 1.0),
    ]
    assert out[2]["days"] == DAYS and out[2]["action"] is None


async def test_formula_with_compare(client: httpx.AsyncClient, actor: Actor) -> None:
    await _three_days(client, actor)
    out = await results(
        client,
        actor,
        A,
        B,
        trendsFilter={"formulas": ["A/B", "A+B"]},
        compareFilter={"compare": True},
        **absolute("2025-03-02", "2025-03-03"),
    )
    # Current (2-3 Mar): A [2, 0], B [1, 0]; previous (28 Feb - 1 Mar): A [0, 2], B [0, 1].
    assert [(s["label"], s["compare_label"], s["days"], s["data"]) for s in out] == [
        ("Formula (A/B)", "current", ["2025-03-02", "2025-03-03"], [2.0, 0.0]),
        ("Formula (A/B)", "previous", ["2025-02-28", "2025-03-01"], [0.0, 2.0]),
        ("Formula (A+B)", "current", ["2025-03-02", "2025-03-03"], [3.0, 0.0]),
        ("Formula (A+B)", "previous", ["2025-02-28", "2025-03-01"], [0.0, 3.0]),
    ]
    assert all(s["compare"] is True for s in out)


async def test_formula_on_total_value_displays(client: httpx.AsyncClient, actor: Actor) -> None:
    await _three_days(client, actor)
    [bold] = await results(
        client, actor, A, B, trendsFilter={"display": "BoldNumber", "formula": "A/B"}, **BOLD_RANGE
    )
    # 4 pageviews by 2 users over the range.
    assert bold["aggregated_value"] == 2.0 and bold["label"] == "Formula (A/B)"
    assert bold["data"] is None and bold["count"] == 0 and bold["days"] == [] and "labels" not in bold
    pie = await results(
        client,
        actor,
        A,
        C,
        trendsFilter={"display": "ActionsPie", "formula": "A*10+B"},
        breakdownFilter={"breakdown": "$browser"},
        **RANGE,
    )
    # Chrome 2*10+1, Safari 2*10+1 (a tie: by value, descending), none 0*10+1.
    assert [(s["breakdown_value"], s["aggregated_value"]) for s in pie] == [
        ("Safari", 21.0),
        ("Chrome", 21.0),
        (NULL, 1.0),
    ]


async def test_formula_over_a_group_and_hogql_math(client: httpx.AsyncClient, actor: Actor) -> None:
    await _three_days(client, actor)
    traces = node("$pageview", math="hogql", math_hogql="COUNT(DISTINCT properties.$ai_trace_id)")
    [per_trace] = await results(
        client, actor, PAGEVIEW_OR_SCREEN, traces, trendsFilter={"formula": "B / A"}, **RANGE
    )
    # Traces [1, 2, 0] over users of either event [2, 2, 1].
    assert per_trace["data"] == [0.5, 1.0, 0.0]


# --- math: "hogql" ---


async def test_hogql_count_distinct_property(client: httpx.AsyncClient, actor: Actor) -> None:
    await _three_days(client, actor)
    for expression in (
        "COUNT(DISTINCT properties.$ai_trace_id)",
        "count(distinct properties['$ai_trace_id'])",
        "  Count ( Distinct   properties.$ai_trace_id ) ",
    ):
        [series] = await results(
            client, actor, node("$pageview", math="hogql", math_hogql=expression), **RANGE
        )
        # 1 Mar: t1 twice; 2 Mar: t2 and t3; events without a trace id are not a value.
        assert series["data"] == [1, 2, 0], expression
        assert series["action"]["math"] == "hogql" and series["action"]["math_hogql"] == expression
    [screens] = await results(
        client,
        actor,
        node("$screen", math="hogql", math_hogql="count(distinct properties.$ai_trace_id)"),
        **RANGE,
    )
    assert screens["data"] == [0, 0, 0]
    [bold] = await results(
        client,
        actor,
        node(None, math="hogql", math_hogql="count(distinct properties.$ai_trace_id)"),
        trendsFilter={"display": "BoldNumber"},
        **BOLD_RANGE,
    )
    assert bold["aggregated_value"] == 3


async def test_hogql_count_distinct_person_id_is_users(client: httpx.AsyncClient, actor: Actor) -> None:
    await _three_days(client, actor)
    for expression in ("count(distinct person_id)", "COUNT(DISTINCT distinct_id)"):
        out = await results(
            client,
            actor,
            node(None, math="hogql", math_hogql=expression),
            breakdownFilter={"breakdown": "$browser"},
            **RANGE,
        )
        # Chrome: u1 on 1 Mar, u1 and u4 on 2 Mar; Safari: u2, then u3; none: u4 on 3 Mar.
        assert [(s["breakdown_value"], s["data"]) for s in out] == [
            ("Chrome", [1, 2, 0]),
            ("Safari", [1, 1, 0]),
            (NULL, [0, 0, 1]),
        ]


# --- refusals ---


async def test_bad_formulas_are_refused_by_name(client: httpx.AsyncClient, actor: Actor) -> None:
    body = await error(client, actor, trends_query(A, B, trendsFilter={"formula": "A +"}))
    assert body == {
        "type": "validation_error",
        "code": "invalid_query",
        "detail": "Formula 'A +' is not valid: invalid syntax",
        "attr": "query__source__trendsFilter__formula",
    }
    body = await error(client, actor, trends_query(A, B, trendsFilter={"formulaNodes": [{"formula": "A/C"}]}))
    assert body == {
        "type": "validation_error",
        "code": "invalid_query",
        "detail": "Formula 'A/C' references series C, but only 2 series are defined (A, B)",
        "attr": "query__source__trendsFilter__formulaNodes__0__formula",
    }
    body = await error(client, actor, trends_query(A, trendsFilter={"formulas": ["A", "sqrt(A)"]}))
    assert body["attr"] == "query__source__trendsFilter__formulas__1"
    assert body["detail"] == (
        f"Formula 'sqrt(A)' is not supported: {ARITHMETIC} (like (A + B) / 2), not SQRT()"
    )
    for formula, detail in (
        (
            "A.real",
            f"is not supported: {ARITHMETIC}, not Attribute",
        ),
        (
            "A < 2",
            f"is not supported: {ARITHMETIC}, not Compare",
        ),
        ("__import__('os')", f"is not supported: {ARITHMETIC} (like (A + B) / 2), not __IMPORT__()"),
        ("A + 10 ** 400", "gives a number out of range"),
        ("  ", "is empty"),
    ):
        body = await error(client, actor, trends_query(A, trendsFilter={"formula": formula}))
        assert body["code"] == "invalid_query" and body["detail"].startswith(f"Formula '{formula}' {detail}")


async def test_unsupported_hogql_is_refused_by_name(client: httpx.AsyncClient, actor: Actor) -> None:
    body = await error(client, actor, trends_query(node(math="hogql", math_hogql="sum(properties.price)")))
    assert body == {
        "type": "validation_error",
        "code": "unsupported_query",
        "detail": f"math_hogql 'sum(properties.price)' is not supported: {HOGQL_SUBSET}",
        "attr": "query",
    }


async def test_a_bad_formula_is_a_tile_error_and_cannot_be_saved(
    client: httpx.AsyncClient, actor: Actor
) -> None:
    board = (await client.post(actor.url("dashboards/"), json={"name": "b"}, headers=actor.headers)).json()[
        "id"
    ]
    bad = trends_query(A, trendsFilter={"formula": "A/B"})
    refused = await client.post(
        actor.url("insights/"), json={"name": "x", "query": bad, "dashboards": [board]}, headers=actor.headers
    )
    assert refused.status_code == 400
    assert refused.json()["attr"] == "query__source__trendsFilter__formula"
    # An unsupported hogql expression is stored, and its tile says why it has no result.
    hogql = trends_query(node(math="hogql", math_hogql="avg(properties.x)"))
    made = await client.post(
        actor.url("insights/"),
        json={"name": "x", "query": hogql, "dashboards": [board]},
        headers=actor.headers,
    )
    assert made.status_code == 201, made.text
    dashboard = await client.get(
        actor.url(f"dashboards/{board}/"), params={"refresh": "blocking"}, headers=actor.headers
    )
    [tile] = dashboard.json()["tiles"]
    assert tile["error"] == {
        "type": "UnsupportedQuery",
        "message": f"math_hogql 'avg(properties.x)' is not supported: {HOGQL_SUBSET}",
    }


async def test_template_forms(client: httpx.AsyncClient, actor: Actor) -> None:
    """The exact series of the built-in templates: DAUs of pageviews or screens, weekly; sessions and pages
    per user; traces and cost per user of LLM generations."""
    await _three_days(client, actor)
    [wau] = await results(client, actor, PAGEVIEW_OR_SCREEN, interval="week", **RANGE)
    # The week of 23 Feb reads 1 Mar (u1, u2); the week of 2 Mar: u1, u3, u4.
    assert wau["days"] == ["2025-02-23", "2025-03-02"] and wau["data"] == [2, 3]
    sessions = node("$pageview", math="unique_session")
    [per_user] = await results(
        client, actor, B, sessions, trendsFilter={"formula": "B/A"}, interval="week", **RANGE
    )
    # No session ids: one empty session per bucket with pageviews, over one user each week.
    assert per_user["data"] == [1.0, 1.0]
    [cost] = await results(
        client,
        actor,
        node("$pageview", math="sum", math_property="cost"),
        B,
        trendsFilter={"formula": "A / B"},
        **RANGE,
    )
    assert cost["data"] == [0.0, 0.0, 0.0]
    assert data(await results(client, actor, node("$screen"), **RANGE)) == [[1, 1, 1]]
