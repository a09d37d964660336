"""Dashboard templates: the templates API, the built-in templates, and dashboards made from templates
(`use_template`, `create_from_template_json`, `create_unlisted_dashboard`), with their scopes."""

import copy
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from app.templates.builtin import LLM_ANALYTICS, PRODUCT_ANALYTICS, WEBSITE_TRAFFIC
from app.templates.json_schema import DASHBOARD_TEMPLATE_SCHEMA
from tests.factories import Actor, make_member
from tests.resources import trends

TEMPLATE_KEYS = {
    "id", "template_name", "dashboard_description", "dashboard_filters", "tags", "tiles", "variables",
    "deleted", "created_at", "created_by", "image_url", "team_id", "scope", "availability_contexts",
}  # fmt: skip
GLOBAL_READ_ONLY = "You don't have edit permissions for this dashboard template."


def missing(scope: str) -> dict[str, Any]:
    return {
        "type": "authentication_error",
        "code": "permission_denied",
        "detail": f"API key missing required scope '{scope}'",
        "attr": None,
    }


def error(detail: str, attr: str | None = None, code: str = "invalid_input") -> dict[str, Any]:
    return {"type": "validation_error", "code": code, "detail": detail, "attr": attr}


def insight_tile(name: str, query: Any = None, **extra: Any) -> dict[str, Any]:
    return {
        "type": "INSIGHT",
        "name": name,
        "description": f"{name} described",
        "query": query or trends(),
        "layouts": {"sm": {"x": 0, "y": 0, "w": 6, "h": 5}},
        "color": "blue",
        **extra,
    }


def template_body(name: str = "Signups", **extra: Any) -> dict[str, Any]:
    return {
        "template_name": name,
        "dashboard_description": "Who signs up",
        "dashboard_filters": {"date_from": "-14d"},
        "tags": ["growth"],
        "tiles": [
            insight_tile("Signups per day", trends("{SIGNUP}")),
            {"type": "text", "body": "Notes", "layouts": {"sm": {"x": 6, "y": 0, "w": 6, "h": 2}}},
        ],
        "variables": [
            {
                "id": "SIGNUP",
                "name": "Signup event",
                "type": "event",
                "default": {},
                "description": "The event that marks a signup",
                "required": True,
            }
        ],
        **extra,
    }


async def create_template(client: httpx.AsyncClient, actor: Actor, **body: Any) -> dict[str, Any]:
    response = await client.post(
        actor.url("dashboard_templates/", prefix="projects"),
        json=template_body(**body),
        headers=actor.headers,
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


# --- the templates API --------------------------------------------------------------------------------------


async def test_list_has_the_listed_built_ins_then_the_teams_own(
    client: httpx.AsyncClient, actor: Actor, other_actor: Actor
) -> None:
    mine = await create_template(client, actor)
    await create_template(client, other_actor, name="Theirs")

    listed = await client.get(actor.url("dashboard_templates/", prefix="projects"), headers=actor.headers)

    assert listed.status_code == 200
    body = listed.json()
    assert body["count"] == 3 and body["next"] is None and body["previous"] is None
    names = [t["template_name"] for t in body["results"]]
    assert names == ["Product analytics", "Website traffic", "Signups"]
    product, website, own = body["results"]
    assert set(product) == TEMPLATE_KEYS
    assert product["id"] == str(PRODUCT_ANALYTICS.id) and product["scope"] == "global"
    assert product["team_id"] is None and product["created_by"] is None
    assert website["tags"] == ["marketing"] and website["dashboard_filters"] == {"date_from": "-30d"}
    assert own == mine
    assert own["team_id"] == actor.team.id and own["scope"] == "team" and own["deleted"] is False
    assert own["created_by"] == actor.user.id and own["created_at"] is not None
    # The LLM analytics template is offered only by create_unlisted_dashboard, as in PostHog.
    assert str(LLM_ANALYTICS.id) not in {t["id"] for t in body["results"]}
    text = await client.get(
        actor.url("dashboard_templates/", prefix="projects"), params={"format": "txt"}, headers=actor.headers
    )
    assert text.headers["content-type"].startswith("text/plain")
    assert text.text == (
        f"3 total\n{PRODUCT_ANALYTICS.id}  Product analytics  [global]\n"
        f"{WEBSITE_TRAFFIC.id}  Website traffic  [global]\n{mine['id']}  Signups  [team {actor.team.id}]\n"
    )


async def test_list_pages_across_built_ins_and_rows(client: httpx.AsyncClient, actor: Actor) -> None:
    for name in ("A", "B"):
        await create_template(client, actor, name=name)
    url = actor.url("dashboard_templates/", prefix="projects")

    first = (await client.get(url, params={"limit": 3}, headers=actor.headers)).json()
    second = (await client.get(url, params={"limit": 3, "offset": 3}, headers=actor.headers)).json()

    assert first["count"] == second["count"] == 4
    assert [t["template_name"] for t in first["results"]] == ["Product analytics", "Website traffic", "A"]
    assert [t["template_name"] for t in second["results"]] == ["B"]
    assert first["next"].endswith("limit=3&offset=3") and second["next"] is None


async def test_list_filters_by_search_and_scope(client: httpx.AsyncClient, actor: Actor) -> None:
    await create_template(client, actor, name="Checkout funnel", tags=["sales"])
    await create_template(client, actor, name="Flags", scope="feature_flag")
    url = actor.url("dashboard_templates/", prefix="projects")

    async def names(**params: str) -> list[str]:
        response = await client.get(url, params=params, headers=actor.headers)
        assert response.status_code == 200, response.text
        return [t["template_name"] for t in response.json()["results"]]

    assert await names(search="CHECKOUT") == ["Checkout funnel"]
    assert await names(search="website") == ["Website traffic"]
    assert await names(search="traffic") == ["Product analytics", "Website traffic"]  # a description
    assert await names(search="sales") == ["Checkout funnel"]  # a tag, exactly
    assert await names(search="100%") == []  # LIKE's wildcards are plain text
    assert await names(scope="feature_flag") == ["Flags"]
    assert await names(scope="global") == ["Product analytics", "Website traffic"]


async def test_retrieve_update_and_soft_delete(client: httpx.AsyncClient, actor: Actor) -> None:
    made = await create_template(client, actor)
    url = actor.url(f"dashboard_templates/{made['id']}/", prefix="projects")

    assert (await client.get(url, headers=actor.headers)).json() == made
    patched = await client.patch(
        url, json={"template_name": "Renamed", "id": "ignored", "team_id": 9}, headers=actor.headers
    )
    assert patched.status_code == 200, patched.text
    assert patched.json() == {**made, "template_name": "Renamed"}
    put = await client.put(url, json={"dashboard_description": "New"}, headers=actor.headers)
    assert put.json()["dashboard_description"] == "New" and put.json()["template_name"] == "Renamed"
    # Through the environments prefix too.
    assert (
        await client.get(actor.url(f"dashboard_templates/{made['id']}/"), headers=actor.headers)
    ).status_code == 200

    gone = await client.patch(url, json={"deleted": True}, headers=actor.headers)
    assert gone.status_code == 200 and gone.json()["deleted"] is True
    assert (await client.get(url, headers=actor.headers)).status_code == 404
    assert (await client.patch(url, json={"deleted": False}, headers=actor.headers)).status_code == 404
    listed = await client.get(actor.url("dashboard_templates/", prefix="projects"), headers=actor.headers)
    assert made["id"] not in {t["id"] for t in listed.json()["results"]}


async def test_delete_is_405_with_an_empty_body(client: httpx.AsyncClient, actor: Actor) -> None:
    made = await create_template(client, actor)
    for template_id in (made["id"], str(PRODUCT_ANALYTICS.id), "not-a-uuid"):
        response = await client.delete(
            actor.url(f"dashboard_templates/{template_id}/", prefix="projects"), headers=actor.headers
        )
        assert response.status_code == 405 and response.content == b""
    assert (
        await client.get(
            actor.url(f"dashboard_templates/{made['id']}/", prefix="projects"), headers=actor.headers
        )
    ).status_code == 200


async def test_built_ins_are_read_only(client: httpx.AsyncClient, actor: Actor) -> None:
    url = actor.url(f"dashboard_templates/{WEBSITE_TRAFFIC.id}/", prefix="projects")
    retrieved = await client.get(url, headers=actor.headers)
    assert retrieved.status_code == 200
    assert retrieved.json()["tiles"] == WEBSITE_TRAFFIC.tiles
    for method in ("PATCH", "PUT"):
        response = await client.request(method, url, json={"template_name": "Mine"}, headers=actor.headers)
        assert response.status_code == 403
        assert response.json() == {
            "type": "authentication_error",
            "code": "permission_denied",
            "detail": GLOBAL_READ_ONLY,
            "attr": None,
        }
    # The unlisted LLM template is not reachable here.
    hidden = actor.url(f"dashboard_templates/{LLM_ANALYTICS.id}/", prefix="projects")
    assert (await client.get(hidden, headers=actor.headers)).status_code == 404


async def test_another_teams_template_is_404(
    client: httpx.AsyncClient, actor: Actor, other_actor: Actor
) -> None:
    theirs = await create_template(client, other_actor)
    url = actor.url(f"dashboard_templates/{theirs['id']}/", prefix="projects")
    assert (await client.get(url, headers=actor.headers)).status_code == 404
    assert (await client.patch(url, json={"deleted": True}, headers=actor.headers)).status_code == 404
    missing_id = actor.url("dashboard_templates/8e0f6b64-5a1b-4d9e-9d65-3b3c5f1b0c11/", prefix="projects")
    assert (await client.get(missing_id, headers=actor.headers)).status_code == 404
    bad = actor.url("dashboard_templates/xyz/", prefix="projects")
    assert (await client.get(bad, headers=actor.headers)).status_code == 404
    # Nor can it be used by id or name.
    for key in (theirs["id"], theirs["template_name"]):
        response = await client.post(
            actor.url("dashboards/"), json={"use_template": key}, headers=actor.headers
        )
        assert response.json() == error(f"Invalid template provided: {key}", "use_template")


async def test_create_refusals(client: httpx.AsyncClient, actor: Actor) -> None:
    url = actor.url("dashboard_templates/", prefix="projects")
    await create_template(client, actor, name="Taken")

    async def post(body: dict[str, Any]) -> dict[str, Any]:
        response = await client.post(url, json=body, headers=actor.headers)
        assert response.status_code == 400, response.text
        return dict(response.json())

    no_tiles = error("You need to provide tiles for the template.")
    assert await post({"template_name": "X"}) == no_tiles
    assert await post({"template_name": "X", "tiles": []}) == no_tiles
    assert await post(template_body("Taken")) == error(
        "The fields template_name, team must make a unique set.", code="unique"
    )
    assert (await post(template_body("X", scope="everyone")))["attr"] == "scope"
    assert (await post(template_body("X", tiles={"a": 1})))["attr"] == "tiles"
    assert (await post(template_body("x" * 401)))["attr"] == "template_name"
    assert (await post(template_body("X", dashboard_filters={"a": "\x00"})))["attr"] == "dashboard_filters"
    # A rename onto a taken name is refused the same way.
    other = await create_template(client, actor, name="Other")
    renamed = await client.patch(
        actor.url(f"dashboard_templates/{other['id']}/", prefix="projects"),
        json={"template_name": "Taken"},
        headers=actor.headers,
    )
    assert renamed.status_code == 400 and renamed.json()["code"] == "unique"


async def test_json_schema(client: httpx.AsyncClient, actor: Actor) -> None:
    response = await client.get(
        actor.url("dashboard_templates/json_schema/", prefix="projects"), headers=actor.headers
    )
    assert response.status_code == 200
    assert response.json() == DASHBOARD_TEMPLATE_SCHEMA
    assert response.json()["required"] == [
        "template_name",
        "dashboard_description",
        "dashboard_filters",
        "tiles",
    ]


async def test_template_scopes(client: httpx.AsyncClient, actor: Actor, db: AsyncSession) -> None:
    made = await create_template(client, actor)
    reader = await make_member(db, actor.team, scopes=["dashboard_template:read"])
    nobody = await make_member(db, actor.team, scopes=["dashboard:write", "insight:write"])
    base = actor.url("dashboard_templates/", prefix="projects")
    one = f"{base}{made['id']}/"
    for path in (base, one, f"{base}json_schema/"):
        assert (await client.get(path, headers=reader.headers)).status_code == 200
        refused = await client.get(path, headers=nobody.headers)
        assert refused.status_code == 403 and refused.json() == missing("dashboard_template:read")
    create = await client.post(base, json=template_body("New"), headers=reader.headers)
    assert create.status_code == 403 and create.json() == missing("dashboard_template:write")
    patch = await client.patch(one, json={"deleted": True}, headers=reader.headers)
    assert patch.status_code == 403 and patch.json() == missing("dashboard_template:write")
    assert (await client.get(one, headers=actor.headers)).json()["deleted"] is False


# --- use_template -------------------------------------------------------------------------------------------


async def create_dashboard(client: httpx.AsyncClient, actor: Actor, **body: Any) -> httpx.Response:
    return await client.post(actor.url("dashboards/"), json=body, headers=actor.headers)


async def stored_query(client: httpx.AsyncClient, actor: Actor, insight: dict[str, Any]) -> Any:
    """The insight's own query (a dashboard's tiles show it with the dashboard's filters applied)."""
    response = await client.get(actor.url(f"insights/{insight['id']}/"), headers=actor.headers)
    return response.json()["query"]


def tile_summary(dashboard: dict[str, Any]) -> list[tuple[Any, ...]]:
    return [
        (
            t["insight"]["name"] if t["insight"] else None,
            t["text"]["body"] if t["text"] else None,
            t["color"],
            t["layouts"],
        )
        for t in dashboard["tiles"]
    ]


@pytest.mark.parametrize("key", ["DEFAULT_APP", "Product analytics", str(PRODUCT_ANALYTICS.id)])
async def test_use_template_product_analytics(client: httpx.AsyncClient, actor: Actor, key: str) -> None:
    response = await create_dashboard(client, actor, use_template=key)

    assert response.status_code == 201, response.text
    d = response.json()
    assert d["name"] == "Product analytics" and d["creation_mode"] == "template"
    assert d["description"] == PRODUCT_ANALYTICS.dashboard_description
    assert d["filters"] == {} and d["tags"] == []
    assert sorted(tile_summary(d), key=str) == sorted(
        [(t["name"], None, t["color"], t["layouts"]) for t in PRODUCT_ANALYTICS.tiles], key=str
    )
    by_name = {t["insight"]["name"]: t["insight"] for t in d["tiles"]}
    for tile in PRODUCT_ANALYTICS.tiles:
        insight = by_name[tile["name"]]
        assert insight["query"] == tile["query"] and insight["description"] == tile["description"]
        assert insight["is_sample"] is True and insight["created_by"]["id"] == actor.user.id
        assert insight["last_modified_by"]["id"] == actor.user.id


async def test_use_template_website_traffic_keeps_what_the_request_gave(
    client: httpx.AsyncClient, actor: Actor
) -> None:
    response = await create_dashboard(
        client,
        actor,
        name="Our site",
        description="Mine",
        filters={"date_to": "-1d"},
        use_template="WEBSITE_TRAFFIC",
    )

    assert response.status_code == 201, response.text
    d = response.json()
    assert (d["name"], d["description"]) == ("Our site", "Mine")
    assert d["filters"] == {"date_from": "-30d", "date_to": "-1d"}
    assert d["tags"] == ["marketing"] and d["creation_mode"] == "template"
    assert [t["insight"]["name"] for t in d["tiles"]] == [t["name"] for t in WEBSITE_TRAFFIC.tiles]
    tags = await create_dashboard(client, actor, use_template="WEBSITE_TRAFFIC", tags=["Mine"])
    assert tags.json()["tags"] == ["mine"]


async def test_use_template_with_the_teams_own_template_and_variables(
    client: httpx.AsyncClient, actor: Actor
) -> None:
    made = await create_template(client, actor)

    response = await create_dashboard(
        client, actor, use_template="Signups", template_variables={"SIGNUP": "signed_up"}
    )

    assert response.status_code == 201, response.text
    d = response.json()
    assert (d["name"], d["description"], d["filters"]) == ("Signups", "Who signs up", {"date_from": "-14d"})
    assert d["tags"] == ["growth"]
    insight = next(t["insight"] for t in d["tiles"] if t["insight"])
    text = next(t["text"] for t in d["tiles"] if t["text"])
    assert await stored_query(client, actor, insight) == trends("signed_up")
    assert insight["is_sample"] is True
    assert text["body"] == "Notes"
    # By id too; the template itself is unchanged.
    by_id = await create_dashboard(
        client, actor, use_template=made["id"], template_variables={"SIGNUP": "other"}
    )
    by_id_insight = next(t["insight"] for t in by_id.json()["tiles"] if t["insight"])
    assert await stored_query(client, actor, by_id_insight) == trends("other")
    stored = await client.get(
        actor.url(f"dashboard_templates/{made['id']}/", prefix="projects"), headers=actor.headers
    )
    assert stored.json()["tiles"] == made["tiles"]


async def test_template_variables_rules(client: httpx.AsyncClient, actor: Actor) -> None:
    variables = [
        {"id": "EVENT", "name": "e", "type": "event", "default": {}, "description": "", "required": True},
        {
            "id": "LABEL",
            "name": "l",
            "type": "event",
            "default": "pageviews",
            "description": "",
            "required": False,
        },
        {"id": "OPTIONAL", "name": "o", "type": "event", "default": {}, "description": "", "required": False},
    ]
    query = trends("{EVENT}")
    query["source"]["series"][0]["custom_name"] = "All {LABEL} ({EVENT}) {filters} {OPTIONAL}"
    await create_template(
        client, actor, name="V", tiles=[insight_tile("t {LABEL}", query)], variables=variables
    )

    missing_value = await create_dashboard(client, actor, use_template="V")
    assert missing_value.json() == error(
        "Missing value for required template variable: EVENT", "template_variables"
    )
    unknown = await create_dashboard(
        client, actor, use_template="V", template_variables={"EVENT": "a", "NOPE": 1}
    )
    assert unknown.json() == error("Unknown template variable: NOPE", "template_variables")
    inside = await create_dashboard(
        client, actor, use_template="V", template_variables={"EVENT": {"id": "a"}}
    )
    assert inside.status_code == 400 and inside.json()["attr"] == "template_variables"
    without = await create_dashboard(client, actor, name="x", template_variables={"EVENT": "a"})
    assert without.json() == error("`template_variables` needs `use_template`.", "template_variables")

    made = await create_dashboard(client, actor, use_template="V", template_variables={"EVENT": "signup"})
    assert made.status_code == 201, made.text
    insight = made.json()["tiles"][0]["insight"]
    series = insight["query"]["source"]["series"][0]
    assert series["event"] == "signup"
    # Defaults fill in; undeclared braces (HogQL's `{filters}`) and variables without a value stay.
    assert series["custom_name"] == "All pageviews (signup) {filters} {OPTIONAL}"
    assert insight["name"] == "t pageviews"


async def test_a_whole_string_placeholder_takes_any_json_value(
    client: httpx.AsyncClient, actor: Actor
) -> None:
    query = trends()
    query["source"]["series"] = ["{STEP}"]
    default = {"kind": "EventsNode", "event": "$pageview", "math": "dau"}
    variable = {
        "id": "STEP",
        "name": "s",
        "type": "event",
        "default": default,
        "description": "",
        "required": True,
    }
    await create_template(client, actor, name="W", tiles=[insight_tile("w", query)], variables=[variable])
    given = {"kind": "EventsNode", "event": "signup", "math": "total"}

    for values, expected in ((None, default), ({"STEP": given}, given)):
        body: dict[str, Any] = {"use_template": "W"}
        if values is not None:
            body["template_variables"] = values
        response = await create_dashboard(client, actor, **body)
        assert response.status_code == 201, response.text
        made = await stored_query(client, actor, response.json()["tiles"][0]["insight"])
        assert made["source"]["series"] == [expected]


async def test_use_template_refusals(client: httpx.AsyncClient, actor: Actor) -> None:
    unknown = await create_dashboard(client, actor, use_template="NOPE")
    assert unknown.json() == error("Invalid template provided: NOPE", "use_template")
    # The unlisted LLM template is reached by its tag alone.
    for key in (LLM_ANALYTICS.template_name, str(LLM_ANALYTICS.id)):
        response = await create_dashboard(client, actor, use_template=key)
        assert response.json() == error(f"Invalid template provided: {key}", "use_template")
    # A deleted template is not used.
    made = await create_template(client, actor, name="Gone")
    await client.patch(
        actor.url(f"dashboard_templates/{made['id']}/", prefix="projects"),
        json={"deleted": True},
        headers=actor.headers,
    )
    assert (await create_dashboard(client, actor, use_template="Gone")).status_code == 400
    # A bad query in a team template is a 400 naming the tile, and no dashboard is left.
    bad = trends()
    bad["source"]["series"] = "not a list"
    await create_template(
        client, actor, name="Bad", tiles=[insight_tile("fine"), insight_tile("bad", bad)], variables=None
    )
    refused = await create_dashboard(client, actor, use_template="Bad")
    assert refused.status_code == 400 and refused.json()["attr"].startswith("use_template__1__query")
    listed = await client.get(actor.url("dashboards/"), headers=actor.headers)
    assert listed.json()["count"] == 0
    insights = await client.get(actor.url("insights/"), headers=actor.headers)
    assert insights.json()["count"] == 0


async def test_use_template_needs_insight_write(
    client: httpx.AsyncClient, actor: Actor, db: AsyncSession
) -> None:
    writer = await make_member(db, actor.team, scopes=["dashboard:write", "insight:read"])
    refused = await create_dashboard(client, writer, use_template="DEFAULT_APP")
    assert refused.status_code == 403 and refused.json() == missing("insight:write")
    assert (await client.get(actor.url("dashboards/"), headers=actor.headers)).json()["count"] == 0
    both = await make_member(db, actor.team, scopes=["dashboard:write", "insight:write"])
    assert (await create_dashboard(client, both, use_template="DEFAULT_APP")).status_code == 201


# --- create_from_template_json ------------------------------------------------------------------------------


async def from_json(client: httpx.AsyncClient, actor: Actor, body: Any) -> httpx.Response:
    return await client.post(
        actor.url("dashboards/create_from_template_json/"), json=body, headers=actor.headers
    )


async def test_template_json_round_trip(client: httpx.AsyncClient, actor: Actor) -> None:
    tiles = [
        insight_tile("Pageviews"),
        {
            "type": "Text",
            "body": "Read me",
            "layouts": {"sm": {"x": 6, "y": 0, "w": 6, "h": 2}},
            "color": "green",
        },
        {"type": "BUTTON", "url": "/web", "text": "Go"},
        insight_tile("Signups", trends("signed_up"), type="insight", color=None),
    ]
    made = await create_template(client, actor, name="Round trip", tiles=tiles, variables=None)
    template = (
        await client.get(
            actor.url(f"dashboard_templates/{made['id']}/", prefix="projects"), headers=actor.headers
        )
    ).json()

    response = await from_json(client, actor, {"template": template})

    assert response.status_code == 200, response.text
    d = response.json()
    assert d["creation_mode"] == "default"
    assert (d["name"], d["description"], d["filters"], d["tags"]) == (
        "Round trip",
        "Who signs up",
        {"date_from": "-14d"},
        ["growth"],
    )
    assert sorted(tile_summary(d), key=str) == sorted(
        [
            ("Pageviews", None, "blue", tiles[0]["layouts"]),
            (None, "Read me", "green", tiles[1]["layouts"]),
            ("Signups", None, None, tiles[3]["layouts"]),
        ],
        key=str,
    )
    queries = {
        t["insight"]["name"]: await stored_query(client, actor, t["insight"])
        for t in d["tiles"]
        if t["insight"]
    }
    assert queries == {"Pageviews": trends(), "Signups": trends("signed_up")}
    assert all(t["insight"]["is_sample"] for t in d["tiles"] if t["insight"])
    # The same as retrieve.
    retrieved = await client.get(actor.url(f"dashboards/{d['id']}/"), headers=actor.headers)
    assert retrieved.json()["tiles"] == d["tiles"]


@pytest.mark.parametrize(
    ("change", "attr", "detail"),
    [
        (lambda t: t.pop("template_name"), "template", "'template_name' is a required property"),
        (lambda t: t.update(tiles=[]), "template__tiles", "[] should be non-empty"),
        (lambda t: t.update(tiles=[1]), "template__tiles__0", "1 is not of type 'object'"),
        (
            lambda t: t.update(dashboard_filters=[]),
            "template__dashboard_filters",
            "[] is not of type 'object'",
        ),
        (lambda t: t.update(tags=[1]), "template__tags__0", "1 is not of type 'string'"),
    ],
)
async def test_template_json_schema_failures(
    client: httpx.AsyncClient, actor: Actor, change: Any, attr: str, detail: str
) -> None:
    template = template_body("J", variables=None)
    change(template)
    response = await from_json(client, actor, {"template": template})
    assert response.status_code == 400
    assert response.json() == error(detail, attr)
    assert (await client.get(actor.url("dashboards/"), headers=actor.headers)).json()["count"] == 0


async def test_template_json_refusals_leave_nothing(client: httpx.AsyncClient, actor: Actor) -> None:
    assert (await from_json(client, actor, {})).json() == error(
        "This field is required.", "template", "required"
    )
    assert (await from_json(client, actor, {"template": "x"})).json()["attr"] == "template"
    bad_variables = template_body("J")
    bad_variables["variables"][0]["type"] = "action"
    refused = await from_json(client, actor, {"template": bad_variables})
    assert refused.json() == error("'action' is not one of ['event']", "template__variables__0__type")
    # The second tile fails: no dashboard, no insight of the first tile.
    bad = trends()
    bad["source"]["interval"] = "fortnight"
    template = template_body("J", tiles=[insight_tile("ok"), insight_tile("bad", bad)], variables=None)
    refused = await from_json(client, actor, {"template": template})
    assert refused.status_code == 400 and refused.json()["attr"].startswith("template__tiles__1__query")
    long_text = template_body("J", tiles=[{"type": "TEXT", "body": "x" * 4001}], variables=None)
    refused = await from_json(client, actor, {"template": long_text})
    assert refused.json() == error("Text body cannot exceed 4000 characters", "template__tiles__0__body")
    assert (await client.get(actor.url("dashboards/"), headers=actor.headers)).json()["count"] == 0
    assert (await client.get(actor.url("insights/"), headers=actor.headers)).json()["count"] == 0


async def test_template_json_needs_both_write_scopes(
    client: httpx.AsyncClient, actor: Actor, db: AsyncSession
) -> None:
    body = {"template": template_body("J", variables=None)}
    dashboards_only = await make_member(db, actor.team, scopes=["dashboard:write"])
    refused = await from_json(client, dashboards_only, body)
    assert refused.status_code == 403 and refused.json() == missing("insight:write")
    insights_only = await make_member(db, actor.team, scopes=["insight:write"])
    refused = await from_json(client, insights_only, body)
    assert refused.status_code == 403 and refused.json() == missing("dashboard:write")
    assert (await client.get(actor.url("dashboards/"), headers=actor.headers)).json()["count"] == 0


# --- create_unlisted_dashboard ------------------------------------------------------------------------------


async def unlisted(client: httpx.AsyncClient, actor: Actor, body: Any) -> httpx.Response:
    return await client.post(
        actor.url("dashboards/create_unlisted_dashboard/"), json=body, headers=actor.headers
    )


async def test_unlisted_dashboard(client: httpx.AsyncClient, actor: Actor, other_actor: Actor) -> None:
    response = await unlisted(client, actor, {"tag": "llm-analytics"})

    assert response.status_code == 201, response.text
    d = response.json()
    assert d["name"] == "LLM Analytics Default" and d["creation_mode"] == "unlisted"
    assert d["description"] == "Overview of your LLM usage, costs, and performance"
    assert d["filters"] == {"date_from": "-7d", "__template_version": 1}
    assert d["tags"] == ["llm-analytics"]
    assert [t["insight"]["name"] for t in d["tiles"]] == [t["name"] for t in LLM_ANALYTICS.tiles]
    cost_per_user = next(t["insight"] for t in d["tiles"] if t["insight"]["name"] == "Cost per user (USD)")
    assert cost_per_user["query"]["source"]["properties"] == []  # PostHog's HogQL filter is left out
    assert cost_per_user["query"]["source"]["trendsFilter"]["formula"] == "A / B"

    again = await unlisted(client, actor, {"tag": "llm-analytics"})
    assert again.status_code == 409
    assert again.json() == {"error": "Unlisted dashboard with tag 'llm-analytics' already exists"}
    # Hidden from the list unless asked for; another team has its own.
    assert (await client.get(actor.url("dashboards/"), headers=actor.headers)).json()["count"] == 0
    asked = await client.get(
        actor.url("dashboards/"), params={"creation_mode": "unlisted"}, headers=actor.headers
    )
    assert [x["id"] for x in asked.json()["results"]] == [d["id"]]
    assert (await unlisted(client, other_actor, {"tag": "llm-analytics"})).status_code == 201
    # Once deleted, a new one can be made.
    await client.patch(actor.url(f"dashboards/{d['id']}/"), json={"deleted": True}, headers=actor.headers)
    assert (await unlisted(client, actor, {"tag": "llm-analytics"})).status_code == 201


async def test_unlisted_dashboard_refusals(client: httpx.AsyncClient, actor: Actor, db: AsyncSession) -> None:
    for body in ({}, {"tag": ""}, {"tag": None}):
        response = await unlisted(client, actor, body)
        assert response.status_code == 400 and response.json() == {"error": "tag is required"}
    for tag in ("marketing", 5):
        response = await unlisted(client, actor, {"tag": tag})
        assert response.status_code == 400 and response.json() == {"error": f"Unknown template tag: {tag}"}
    writer = await make_member(db, actor.team, scopes=["dashboard:write"])
    refused = await unlisted(client, writer, {"tag": "llm-analytics"})
    assert refused.status_code == 403 and refused.json() == missing("insight:write")
    reader = await make_member(db, actor.team, scopes=["dashboard:read", "insight:write"])
    refused = await unlisted(client, reader, {"tag": "llm-analytics"})
    assert refused.status_code == 403 and refused.json() == missing("dashboard:write")
    asked = await client.get(
        actor.url("dashboards/"), params={"creation_mode": "unlisted"}, headers=actor.headers
    )
    assert asked.json()["count"] == 0


def test_built_in_queries_are_posthogs_with_one_filter_left_out() -> None:
    """Spot checks of the data against PostHog's templates."""
    dau = PRODUCT_ANALYTICS.tiles[0]["query"]["source"]
    assert dau["series"][0]["kind"] == "GroupNode" and dau["series"][0]["operator"] == "OR"
    assert [n["event"] for n in dau["series"][0]["nodes"]] == ["$pageview", "$screen"]
    sessions = WEBSITE_TRAFFIC.tiles[4]["query"]["source"]
    assert sessions["trendsFilter"]["formula"] == "B/A"
    assert [s["math"] for s in sessions["series"]] == ["dau", "unique_session"]
    location = WEBSITE_TRAFFIC.tiles[8]
    assert location["query"]["source"]["breakdownFilter"] == {
        "breakdown": "$geoip_country_code",
        "breakdown_type": "person",
    }
    assert location["layouts"]["sm"] == {"i": "29", "x": 0, "y": 23, "w": 12, "h": 8, "minW": 3, "minH": 5}
    traces = LLM_ANALYTICS.tiles[0]["query"]["source"]["series"][0]
    assert traces["math_hogql"] == "COUNT(DISTINCT properties.$ai_trace_id)"
    assert copy.deepcopy(LLM_ANALYTICS.tiles[1]["query"]["source"]["properties"]) == []
