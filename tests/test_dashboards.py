"""The dashboards resource over HTTP: list, create, retrieve, update, soft delete, access and isolation.

Compatibility target: reference/posthog-behaviour.md §2.1, §2.2, §3.1-3.7; DESIGN.md where it differs.
"""

from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.dashboards.schemas import DashboardBasic
from app.models import ADMIN, MEMBER, Dashboard, Tag, TaggedItem
from app.schemas import Paginated
from tests.factories import Actor, make_member
from tests.resources import USER_BASIC_KEYS
from tests.statements import count_statements

BASIC_KEYS = {
    "id",
    "name",
    "description",
    "pinned",
    "created_at",
    "created_by",
    "last_accessed_at",
    "last_viewed_at",
    "is_shared",
    "deleted",
    "creation_mode",
    "tags",
    "restriction_level",
    "effective_restriction_level",
    "effective_privilege_level",
    "user_access_level",
    "access_control_version",
    "last_refresh",
    "team_id",
}
FULL_KEYS = BASIC_KEYS | {
    "filters",
    "variables",
    "breakdown_colors",
    "data_color_theme_id",
    "persisted_filters",
    "persisted_variables",
    "tiles",
}
CANNOT_EDIT = "You don't have edit permissions for this dashboard."
CANNOT_RESTRICT = (
    "Only the dashboard owner and project admins have the restriction rights required to change the "
    "dashboard's restriction level."
)
NO_PROJECT_ACCESS = "You don't have access to the project."


# --- helpers ------------------------------------------------------------------------------------------------


async def create(client: httpx.AsyncClient, actor: Actor, **body: Any) -> dict[str, Any]:
    response = await client.post(actor.url("dashboards/"), json=body, headers=actor.headers)
    assert response.status_code == 201, response.text
    return response.json()


async def retrieve(
    client: httpx.AsyncClient, actor: Actor, dashboard_id: int, **params: Any
) -> httpx.Response:
    return await client.get(actor.url(f"dashboards/{dashboard_id}/"), params=params, headers=actor.headers)


async def patch(client: httpx.AsyncClient, actor: Actor, dashboard_id: int, **body: Any) -> httpx.Response:
    return await client.patch(actor.url(f"dashboards/{dashboard_id}/"), json=body, headers=actor.headers)


async def list_page(client: httpx.AsyncClient, actor: Actor, **params: Any) -> dict[str, Any]:
    response = await client.get(actor.url("dashboards/"), params=params, headers=actor.headers)
    assert response.status_code == 200, response.text
    return response.json()


async def listed_names(client: httpx.AsyncClient, actor: Actor, **params: Any) -> list[str | None]:
    return [d["name"] for d in (await list_page(client, actor, **params))["results"]]


async def insert_dashboards(db: AsyncSession, actor: Actor, names: list[str], **fields: Any) -> list[int]:
    """Rows written straight to the database: fast, and able to set what the API cannot (creation_mode)."""
    rows = [Dashboard(team_id=actor.team.id, created_by_id=actor.user.id, name=n, **fields) for n in names]
    db.add_all(rows)
    await db.commit()
    return [row.id for row in rows]


def assert_error(
    response: httpx.Response, status: int, *, attr: str | None = None, detail: str | None = None
) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"type", "code", "detail", "attr"}, body
    assert body["attr"] == attr, body
    if detail is not None:
        assert body["detail"] == detail, body
    return body


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value)


def query_of(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query)


# --- list ---------------------------------------------------------------------------------------------------


async def test_list_results_use_the_basic_serializer(client: httpx.AsyncClient, actor: Actor) -> None:
    await create(client, actor, name="alpha", filters={"date_from": "-7d"}, tags=["x"])
    await create(client, actor, name="beta")

    page = await list_page(client, actor)

    assert set(page) == {"count", "next", "previous", "results"}
    assert page["count"] == 2
    for item in page["results"]:
        assert set(item) == BASIC_KEYS
        assert set(item["created_by"]) == USER_BASIC_KEYS
        assert item["created_by"]["id"] == actor.user.id
        assert item["team_id"] == actor.team.id
        assert item["deleted"] is False
        assert item["is_shared"] is False
        assert item["last_viewed_at"] is None


async def test_list_body_is_exactly_pydantics_encoding_of_its_page(
    client: httpx.AsyncClient, actor: Actor
) -> None:
    """The list is encoded by orjson from its models' fields: byte for byte what pydantic writes for them,
    with every kind of value present (a viewed dashboard, a restricted one, tags, non-ASCII text)."""
    viewed = await create(client, actor, name="Ünïcode \u2028 «viewed»", tags=["b", "a"], pinned=True)
    await create(client, actor, name=None, description="restricted", restriction_level=37)
    await retrieve(client, actor, viewed["id"])

    response = await client.get(f"/api/environments/{actor.team.id}/dashboards/", headers=actor.headers)

    assert response.status_code == 200
    page = Paginated[DashboardBasic].model_validate_json(response.content)
    assert response.content == page.model_dump_json().encode()
    assert [item.last_viewed_at is not None for item in page.results] == [True, False]


async def test_list_orders_pinned_first_then_by_name(client: httpx.AsyncClient, actor: Actor) -> None:
    for name, pinned in [("delta", False), ("bravo", True), ("alpha", False), ("charlie", True)]:
        await create(client, actor, name=name, pinned=pinned)
    await create(client, actor)  # no name: after the named ones

    page = await list_page(client, actor)

    assert [(d["name"], d["pinned"]) for d in page["results"]] == [
        ("bravo", True),
        ("charlie", True),
        ("alpha", False),
        ("delta", False),
        (None, False),
    ]


async def test_list_default_page_size_is_100(
    client: httpx.AsyncClient, actor: Actor, db: AsyncSession
) -> None:
    await insert_dashboards(db, actor, [f"d{i:03}" for i in range(101)])

    page = await list_page(client, actor)

    assert page["count"] == 101
    assert len(page["results"]) == 100
    assert page["results"][-1]["name"] == "d099"
    assert page["previous"] is None
    assert query_of(page["next"]) == {"limit": ["100"], "offset": ["100"]}

    last = await list_page(client, actor, offset=100)
    assert [d["name"] for d in last["results"]] == ["d100"]
    assert last["next"] is None


async def test_list_pages_with_absolute_next_and_previous_links(
    client: httpx.AsyncClient, actor: Actor, db: AsyncSession
) -> None:
    await insert_dashboards(db, actor, ["a", "b", "c", "d", "e"])
    base = f"http://testserver{actor.url('dashboards/')}"

    first = await list_page(client, actor, limit=2)
    assert [d["name"] for d in first["results"]] == ["a", "b"]
    assert first["count"] == 5
    assert first["previous"] is None
    assert first["next"].startswith(base + "?")
    assert query_of(first["next"]) == {"limit": ["2"], "offset": ["2"]}

    # Following the link gives the next page.
    second_response = await client.get(first["next"], headers=actor.headers)
    assert second_response.status_code == 200
    second = second_response.json()
    assert [d["name"] for d in second["results"]] == ["c", "d"]
    assert second["previous"].startswith(base + "?")
    # Back to the start: the offset is dropped, the limit kept.
    assert query_of(second["previous"]) == {"limit": ["2"]}
    assert query_of(second["next"]) == {"limit": ["2"], "offset": ["4"]}

    last = await list_page(client, actor, limit=2, offset=4)
    assert [d["name"] for d in last["results"]] == ["e"]
    assert last["next"] is None
    assert query_of(last["previous"]) == {"limit": ["2"], "offset": ["2"]}

    middle = await list_page(client, actor, limit=1, offset=3)
    assert [d["name"] for d in middle["results"]] == ["d"]
    assert query_of(middle["previous"]) == {"limit": ["1"], "offset": ["2"]}


async def test_list_links_keep_the_filters(client: httpx.AsyncClient, actor: Actor) -> None:
    for name in ["one", "two", "three"]:
        await create(client, actor, name=name, tags=["kpi"])
    await create(client, actor, name="untagged")

    page = await list_page(client, actor, tags="kpi", limit=2)

    assert page["count"] == 3
    assert query_of(page["next"]) == {"tags": ["kpi"], "limit": ["2"], "offset": ["2"]}


@pytest.mark.parametrize(
    ("params", "attr"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "-1"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"offset": "-1"}, "offset"),
        ({"offset": "x"}, "offset"),
    ],
)
async def test_list_rejects_bad_paging(
    client: httpx.AsyncClient, actor: Actor, params: dict[str, str], attr: str
) -> None:
    response = await client.get(actor.url("dashboards/"), params=params, headers=actor.headers)
    body = assert_error(response, 400, attr=attr)
    assert body["type"] == "validation_error"


async def test_list_filters_by_any_of_several_tags_without_duplicates(
    client: httpx.AsyncClient, actor: Actor
) -> None:
    await create(client, actor, name="both", tags=["growth", "kpi"])
    await create(client, actor, name="growth only", tags=["growth"])
    await create(client, actor, name="kpi only", tags=["kpi"])
    await create(client, actor, name="other", tags=["misc"])
    await create(client, actor, name="none")

    assert await listed_names(client, actor, tags="growth") == ["both", "growth only"]
    both = await list_page(client, actor, tags=["growth", "kpi"])
    assert [d["name"] for d in both["results"]] == ["both", "growth only", "kpi only"]
    assert both["count"] == 3
    assert await listed_names(client, actor, tags="nothing") == []


async def test_list_hides_unlisted_dashboards_unless_asked(
    client: httpx.AsyncClient, actor: Actor, db: AsyncSession
) -> None:
    await create(client, actor, name="regular")
    await insert_dashboards(db, actor, ["embedded"], creation_mode="unlisted")
    await insert_dashboards(db, actor, ["copied"], creation_mode="duplicate")

    everything = await list_page(client, actor)
    assert [d["name"] for d in everything["results"]] == ["copied", "regular"]
    assert everything["count"] == 2

    unlisted = await list_page(client, actor, creation_mode="unlisted")
    assert [(d["name"], d["creation_mode"]) for d in unlisted["results"]] == [("embedded", "unlisted")]
    assert unlisted["count"] == 1
    assert await listed_names(client, actor, creation_mode="default") == ["regular"]
    assert await listed_names(client, actor, creation_mode="duplicate") == ["copied"]


async def test_list_search_is_case_insensitive_over_name_and_description(
    client: httpx.AsyncClient, actor: Actor
) -> None:
    await create(client, actor, name="Revenue Overview")
    await create(client, actor, name="Signups", description="Weekly REVENUE impact")
    await create(client, actor, name="Retention", description="cohorts")

    assert await listed_names(client, actor, search="revenue") == ["Revenue Overview", "Signups"]
    assert await listed_names(client, actor, search="COHORT") == ["Retention"]
    assert (await list_page(client, actor, search="zzz"))["count"] == 0


async def test_list_search_matches_wildcard_characters_literally(
    client: httpx.AsyncClient, actor: Actor
) -> None:
    await create(client, actor, name="conversion_rate")
    await create(client, actor, name="conversionXrate")
    await create(client, actor, name="100% done")
    await create(client, actor, name="1000 done")

    assert await listed_names(client, actor, search="_rate") == ["conversion_rate"]
    assert await listed_names(client, actor, search="0%") == ["100% done"]


async def test_list_excludes_soft_deleted_dashboards(client: httpx.AsyncClient, actor: Actor) -> None:
    kept = await create(client, actor, name="kept")
    gone = await create(client, actor, name="gone")
    assert (await patch(client, actor, gone["id"], deleted=True)).status_code == 200

    page = await list_page(client, actor)

    assert [d["id"] for d in page["results"]] == [kept["id"]]
    assert page["count"] == 1


async def test_list_shows_only_the_teams_own_dashboards(
    client: httpx.AsyncClient, actor: Actor, other_actor: Actor
) -> None:
    await create(client, actor, name="mine")
    await create(client, other_actor, name="theirs")

    assert await listed_names(client, actor) == ["mine"]
    assert await listed_names(client, other_actor) == ["theirs"]


async def test_list_as_plain_text(client: httpx.AsyncClient, actor: Actor) -> None:
    await create(client, actor, name="Traffic", pinned=True)
    await create(client, actor, name="Sales funnel")
    deleted = await create(client, actor, name="Old stuff")
    await patch(client, actor, deleted["id"], deleted=True)

    response = await client.get(actor.url("dashboards/"), params={"format": "txt"}, headers=actor.headers)

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    lines = response.text.splitlines()
    for name in ["Traffic", "Sales funnel"]:
        assert sum(name in line for line in lines) == 1, response.text
    assert "Old stuff" not in response.text
    assert not response.text.lstrip().startswith("{")


@pytest.mark.parametrize("path", ["dashboards/", "dashboards/{id}/"])
async def test_unknown_format_is_a_validation_error(
    client: httpx.AsyncClient, actor: Actor, path: str
) -> None:
    dashboard = await create(client, actor, name="x")
    response = await client.get(
        actor.url(path.format(id=dashboard["id"])), params={"format": "xml"}, headers=actor.headers
    )
    body = assert_error(response, 400, attr="format")
    assert body["type"] == "validation_error"


# --- create -------------------------------------------------------------------------------------------------


async def test_create_returns_the_full_serializer_with_defaults(
    client: httpx.AsyncClient, actor: Actor
) -> None:
    response = await client.post(
        actor.url("dashboards/"), json={"name": "Key metrics"}, headers=actor.headers
    )

    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body) == FULL_KEYS
    assert isinstance(body["id"], int)
    assert body["name"] == "Key metrics"
    assert body["description"] == ""
    assert body["pinned"] is False
    assert body["deleted"] is False
    assert body["is_shared"] is False
    assert body["creation_mode"] == "default"
    assert body["restriction_level"] == 21
    assert body["effective_restriction_level"] == 21
    assert body["effective_privilege_level"] == 37
    assert body["user_access_level"] == "editor"
    assert body["access_control_version"] == "v2"
    assert body["filters"] == {}
    assert body["variables"] == {}
    assert body["breakdown_colors"] == []
    assert body["data_color_theme_id"] is None
    assert body["persisted_filters"] is None
    assert body["persisted_variables"] is None
    assert body["tiles"] == []
    assert body["tags"] == []
    assert body["last_accessed_at"] is None
    assert body["last_viewed_at"] is None
    assert body["last_refresh"] is None
    assert body["team_id"] == actor.team.id
    assert parse_time(body["created_at"]).tzinfo is not None


async def test_create_sets_created_by_to_the_caller(client: httpx.AsyncClient, actor: Actor) -> None:
    body = await create(client, actor, name="mine")

    assert set(body["created_by"]) == USER_BASIC_KEYS
    assert body["created_by"]["id"] == actor.user.id
    assert body["created_by"]["uuid"] == str(actor.user.uuid)
    assert body["created_by"]["email"] == actor.user.email


async def test_create_without_name_gives_a_null_name(client: httpx.AsyncClient, actor: Actor) -> None:
    body = await create(client, actor)

    assert body["name"] is None
    assert (await retrieve(client, actor, body["id"])).json()["name"] is None


async def test_create_stores_the_writable_fields(client: httpx.AsyncClient, actor: Actor) -> None:
    body = await create(
        client,
        actor,
        name="Full",
        description="All the things",
        pinned=True,
        filters={"date_from": "-7d"},
        variables={"v1": {"code_name": "country", "variableId": "v1", "value": "NL"}},
        breakdown_colors=[{"breakdownValue": "Chrome", "colorIndex": 2}],
        restriction_level=37,
        last_refresh="2025-01-02T03:04:05Z",
    )

    stored = (await retrieve(client, actor, body["id"])).json()
    for got in (body, stored):
        assert got["description"] == "All the things"
        assert got["pinned"] is True
        assert got["filters"] == {"date_from": "-7d"}
        assert got["persisted_filters"] == {"date_from": "-7d"}
        assert got["variables"] == {"v1": {"code_name": "country", "variableId": "v1", "value": "NL"}}
        assert got["persisted_variables"] == got["variables"]
        assert got["breakdown_colors"] == [{"breakdownValue": "Chrome", "colorIndex": 2}]
        assert got["restriction_level"] == 37
        assert got["access_control_version"] == "v1"
        assert parse_time(got["last_refresh"]) == parse_time("2025-01-02T03:04:05+00:00")


async def test_create_ignores_read_only_fields(
    client: httpx.AsyncClient, actor: Actor, other_actor: Actor
) -> None:
    body = await create(
        client,
        actor,
        name="sneaky",
        id=999999,
        team_id=other_actor.team.id,
        creation_mode="template",
        created_by={"id": other_actor.user.id},
        is_shared=True,
        effective_privilege_level=21,
        user_access_level="viewer",
        tiles=[{"text": {"body": "hi"}}],
    )

    assert body["id"] != 999999
    assert body["team_id"] == actor.team.id
    assert body["creation_mode"] == "default"
    assert body["created_by"]["id"] == actor.user.id
    assert body["is_shared"] is False
    assert body["effective_privilege_level"] == 37
    assert body["user_access_level"] == "editor"
    assert body["tiles"] == []
    assert await listed_names(client, other_actor) == []


async def test_create_normalises_tags(client: httpx.AsyncClient, actor: Actor) -> None:
    body = await create(client, actor, name="tagged", tags=[" Growth ", "growth", "KPI", "kpi ", "  "])

    assert sorted(body["tags"]) == ["growth", "kpi"]
    assert len(body["tags"]) == 2
    listed = (await list_page(client, actor))["results"][0]
    assert sorted(listed["tags"]) == ["growth", "kpi"]
    assert await listed_names(client, actor, tags="growth") == ["tagged"]


@pytest.mark.parametrize("field", ["filters", "variables"])
@pytest.mark.parametrize("value", [[1, 2], "date_from=-7d", 5, True])
async def test_create_requires_filters_and_variables_to_be_objects(
    client: httpx.AsyncClient, actor: Actor, field: str, value: Any
) -> None:
    response = await client.post(
        actor.url("dashboards/"), json={"name": "x", field: value}, headers=actor.headers
    )

    body = assert_error(response, 400, attr=field)
    assert body["type"] == "validation_error"
    if field == "filters":
        assert body["detail"] == "Filters must be a dictionary"
    assert (await list_page(client, actor))["count"] == 0


async def test_create_rejects_a_name_over_400_characters(client: httpx.AsyncClient, actor: Actor) -> None:
    ok = await client.post(actor.url("dashboards/"), json={"name": "n" * 400}, headers=actor.headers)
    assert ok.status_code == 201

    response = await client.post(actor.url("dashboards/"), json={"name": "n" * 401}, headers=actor.headers)

    body = assert_error(response, 400, attr="name")
    assert body["code"] == "max_length"


@pytest.mark.parametrize(
    ("body", "attr"),
    [
        ({"pinned": "maybe"}, "pinned"),
        ({"pinned": None}, "pinned"),
        ({"description": None}, "description"),
        ({"description": ["a"]}, "description"),
        ({"tags": "growth"}, "tags"),
        ({"restriction_level": 99}, "restriction_level"),
        ({"restriction_level": "high"}, "restriction_level"),
        ({"data_color_theme_id": "blue"}, "data_color_theme_id"),
        ({"use_dashboard": "first"}, "use_dashboard"),
        ({"last_refresh": "yesterday"}, "last_refresh"),
        ({"name": {"first": "x"}}, "name"),
    ],
)
async def test_create_rejects_wrong_types_naming_the_field(
    client: httpx.AsyncClient, actor: Actor, body: dict[str, Any], attr: str
) -> None:
    response = await client.post(actor.url("dashboards/"), json={"name": "x", **body}, headers=actor.headers)

    err = assert_error(response, 400, attr=attr)
    assert err["type"] == "validation_error"


async def test_create_rejects_malformed_json(client: httpx.AsyncClient, actor: Actor) -> None:
    response = await client.post(
        actor.url("dashboards/"),
        content=b'{"name": "broken",',
        headers={**actor.headers, "Content-Type": "application/json"},
    )

    body = assert_error(response, 400)
    assert body["code"] == "parse_error"
    assert (await list_page(client, actor))["count"] == 0


async def test_create_rejects_a_json_array_body(client: httpx.AsyncClient, actor: Actor) -> None:
    response = await client.post(actor.url("dashboards/"), json=[{"name": "x"}], headers=actor.headers)

    body = assert_error(response, 400)
    assert body["type"] == "validation_error"
    assert (await list_page(client, actor))["count"] == 0


async def test_create_without_a_body_makes_an_untitled_dashboard(
    client: httpx.AsyncClient, actor: Actor
) -> None:
    # PostHog requires no body on create: every field is optional.
    response = await client.post(actor.url("dashboards/"), headers=actor.headers)

    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["name"], body["description"], body["creation_mode"]) == (None, "", "default")
    assert (await list_page(client, actor))["count"] == 1


async def test_create_accepts_a_global_theme(client: httpx.AsyncClient, actor: Actor) -> None:
    themes = await client.get(actor.url("data_color_themes/"), headers=actor.headers)
    assert themes.status_code == 200, themes.text
    global_ids = [t["id"] for t in themes.json()["results"] if t["is_global"]]
    assert global_ids, "the migrations seed global themes"

    body = await create(client, actor, name="themed", data_color_theme_id=global_ids[0])

    assert body["data_color_theme_id"] == global_ids[0]
    assert (await retrieve(client, actor, body["id"])).json()["data_color_theme_id"] == global_ids[0]


async def test_create_accepts_the_teams_own_theme(client: httpx.AsyncClient, actor: Actor) -> None:
    theme = await client.post(
        actor.url("data_color_themes/"), json={"name": "Ours", "colors": ["#112233"]}, headers=actor.headers
    )
    assert theme.status_code == 201, theme.text

    body = await create(client, actor, name="themed", data_color_theme_id=theme.json()["id"])

    assert body["data_color_theme_id"] == theme.json()["id"]


async def test_create_rejects_an_unknown_theme(client: httpx.AsyncClient, actor: Actor) -> None:
    response = await client.post(
        actor.url("dashboards/"), json={"name": "x", "data_color_theme_id": 987654321}, headers=actor.headers
    )

    assert_error(response, 400, attr="data_color_theme_id")
    assert (await list_page(client, actor))["count"] == 0


async def test_create_rejects_another_teams_theme(
    client: httpx.AsyncClient, actor: Actor, other_actor: Actor
) -> None:
    theirs = await client.post(
        other_actor.url("data_color_themes/"),
        json={"name": "Theirs", "colors": ["#ff0000"]},
        headers=other_actor.headers,
    )
    assert theirs.status_code == 201, theirs.text

    response = await client.post(
        actor.url("dashboards/"),
        json={"name": "x", "data_color_theme_id": theirs.json()["id"]},
        headers=actor.headers,
    )

    assert_error(response, 400, attr="data_color_theme_id")


async def test_create_with_use_dashboard_duplicates_its_settings(
    client: httpx.AsyncClient, actor: Actor
) -> None:
    themes = (await client.get(actor.url("data_color_themes/"), headers=actor.headers)).json()["results"]
    source = await create(
        client,
        actor,
        name="Source",
        filters={"date_from": "-14d", "properties": [{"key": "$browser", "value": "Chrome"}]},
        variables={"v": {"code_name": "plan", "variableId": "v", "value": "pro"}},
        breakdown_colors=[{"breakdownValue": "Safari", "colorIndex": 4}],
        data_color_theme_id=themes[0]["id"],
    )

    copy = await create(client, actor, name="Copy", use_dashboard=source["id"])

    assert copy["id"] != source["id"]
    assert copy["name"] == "Copy"
    assert copy["creation_mode"] == "duplicate"
    for key in ("filters", "variables", "breakdown_colors", "data_color_theme_id"):
        assert copy[key] == source[key], key
    stored = (await retrieve(client, actor, copy["id"])).json()
    assert stored["persisted_filters"] == source["filters"]
    assert stored["creation_mode"] == "duplicate"
    # The source is untouched.
    assert (await retrieve(client, actor, source["id"])).json()["creation_mode"] == "default"


async def test_create_with_use_dashboard_keeps_filters_given_in_the_request(
    client: httpx.AsyncClient, actor: Actor
) -> None:
    source = await create(client, actor, name="Source", filters={"date_from": "-14d"})

    copy = await create(client, actor, name="Copy", use_dashboard=source["id"], filters={"date_from": "-1d"})

    assert copy["filters"] == {"date_from": "-1d"}


async def test_create_cannot_duplicate_another_teams_dashboard(
    client: httpx.AsyncClient, actor: Actor, other_actor: Actor
) -> None:
    theirs = await create(client, other_actor, name="Theirs", filters={"secret": True})

    response = await client.post(
        actor.url("dashboards/"), json={"name": "x", "use_dashboard": theirs["id"]}, headers=actor.headers
    )

    assert_error(response, 400, attr="use_dashboard", detail="Invalid value provided")
    assert (await list_page(client, actor))["count"] == 0


async def test_create_cannot_duplicate_a_deleted_or_missing_dashboard(
    client: httpx.AsyncClient, actor: Actor
) -> None:
    gone = await create(client, actor, name="gone")
    await patch(client, actor, gone["id"], deleted=True)

    for source_id in (gone["id"], 987654321):
        response = await client.post(
            actor.url("dashboards/"), json={"name": "x", "use_dashboard": source_id}, headers=actor.headers
        )
        assert_error(response, 400, attr="use_dashboard")


async def test_create_rejects_an_unknown_template(client: httpx.AsyncClient, actor: Actor) -> None:
    response = await client.post(
        actor.url("dashboards/"),
        json={"name": "x", "use_template": "NO_SUCH_TEMPLATE"},
        headers=actor.headers,
    )

    assert_error(response, 400, attr="use_template", detail="Invalid template provided: NO_SUCH_TEMPLATE")


async def test_create_rejects_use_template_with_use_dashboard(
    client: httpx.AsyncClient, actor: Actor
) -> None:
    source = await create(client, actor, name="Source")

    response = await client.post(
        actor.url("dashboards/"),
        json={"use_template": "DEFAULT_APP", "use_dashboard": source["id"]},
        headers=actor.headers,
    )

    assert_error(
        response, 400, attr=None, detail="`use_dashboard` and `use_template` cannot be used together"
    )
    assert (await list_page(client, actor))["count"] == 1


async def test_create_accepts_create_in_folder(client: httpx.AsyncClient, actor: Actor) -> None:
    body = await create(client, actor, name="Filed", _create_in_folder="Unfiled/Dashboards")

    assert body["name"] == "Filed"
    assert "_create_in_folder" not in body


async def test_create_requires_a_write_scope(
    client: httpx.AsyncClient, actor: Actor, db: AsyncSession
) -> None:
    reader = await make_member(db, actor.team, level=ADMIN, scopes=["dashboard:read"])

    response = await client.post(actor.url("dashboards/"), json={"name": "x"}, headers=reader.headers)

    assert_error(response, 403, detail="API key missing required scope 'dashboard:write'")
    assert (await list_page(client, actor))["count"] == 0


# --- retrieve -----------------------------------------------------------------------------------------------


async def test_retrieve_returns_the_full_serializer(client: httpx.AsyncClient, actor: Actor) -> None:
    created = await create(client, actor, name="One", description="desc", tags=["a"])

    response = await retrieve(client, actor, created["id"])

    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == FULL_KEYS
    assert body["id"] == created["id"]
    assert body["name"] == "One"
    assert body["description"] == "desc"
    assert body["tags"] == ["a"]
    assert body["tiles"] == []
    assert body["created_at"] == created["created_at"]


async def test_retrieve_records_last_accessed_at(client: httpx.AsyncClient, actor: Actor) -> None:
    created = await create(client, actor, name="One")
    assert created["last_accessed_at"] is None

    first = (await retrieve(client, actor, created["id"])).json()
    assert first["last_accessed_at"] is not None

    # Stored, not just reported: the list (which does not touch it) shows the same moment.
    listed = (await list_page(client, actor))["results"][0]
    assert parse_time(listed["last_accessed_at"]) == parse_time(first["last_accessed_at"])

    second = (await retrieve(client, actor, created["id"])).json()
    assert parse_time(second["last_accessed_at"]) > parse_time(first["last_accessed_at"])


async def test_last_viewed_at_is_the_callers_own(
    client: httpx.AsyncClient, actor: Actor, db: AsyncSession
) -> None:
    member = await make_member(db, actor.team)
    created = await create(client, actor, name="Shared view")

    mine = (await retrieve(client, actor, created["id"])).json()
    assert mine["last_viewed_at"] is not None
    assert (await list_page(client, member))["results"][0]["last_viewed_at"] is None

    theirs = (await retrieve(client, member, created["id"])).json()
    assert parse_time(theirs["last_viewed_at"]) > parse_time(mine["last_viewed_at"])

    my_list = (await list_page(client, actor))["results"][0]
    assert parse_time(my_list["last_viewed_at"]) == parse_time(mine["last_viewed_at"])
    # ... while last_accessed_at belongs to the dashboard: the member's visit moved it.
    assert parse_time(my_list["last_accessed_at"]) == parse_time(theirs["last_accessed_at"])
    their_list = (await list_page(client, member))["results"][0]
    assert parse_time(their_list["last_viewed_at"]) == parse_time(theirs["last_viewed_at"])


async def test_retrieve_merges_filters_override_over_the_stored_filters(
    client: httpx.AsyncClient, actor: Actor
) -> None:
    stored = {"date_from": "-30d", "properties": [{"key": "$browser", "value": "Chrome"}]}
    created = await create(client, actor, name="F", filters=stored)

    response = await retrieve(
        client, actor, created["id"], filters_override='{"date_from": "-7d", "date_to": "-1d"}'
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["filters"] == {
        "date_from": "-7d",
        "date_to": "-1d",
        "properties": [{"key": "$browser", "value": "Chrome"}],
    }
    assert body["persisted_filters"] == stored
    # The override is not saved.
    assert (await retrieve(client, actor, created["id"])).json()["filters"] == stored


async def test_retrieve_merges_variables_override_over_the_stored_variables(
    client: httpx.AsyncClient, actor: Actor
) -> None:
    stored = {
        "a": {"code_name": "plan", "variableId": "a", "value": "pro"},
        "b": {"code_name": "country", "variableId": "b", "value": "NL"},
    }
    created = await create(client, actor, name="V", variables=stored)
    override = '{"a": {"code_name": "plan", "variableId": "a", "value": "free"}}'

    body = (await retrieve(client, actor, created["id"], variables_override=override)).json()

    assert body["variables"] == {**stored, "a": {"code_name": "plan", "variableId": "a", "value": "free"}}
    assert body["persisted_variables"] == stored


@pytest.mark.parametrize("param", ["filters_override", "variables_override"])
@pytest.mark.parametrize("value", ["{not json", "[1, 2]", '"text"'])
async def test_retrieve_rejects_a_bad_override(
    client: httpx.AsyncClient, actor: Actor, param: str, value: str
) -> None:
    created = await create(client, actor, name="F")

    response = await retrieve(client, actor, created["id"], **{param: value})

    assert_error(response, 400, attr=param, detail=f"Invalid JSON passed in {param} parameter")


@pytest.mark.parametrize("dashboard_id", ["987654321", "abc", "1.5", "-1"])
async def test_retrieve_unknown_or_malformed_id_is_404(
    client: httpx.AsyncClient, actor: Actor, dashboard_id: str
) -> None:
    response = await client.get(actor.url(f"dashboards/{dashboard_id}/"), headers=actor.headers)

    body = assert_error(response, 404, detail="Not found.")
    assert body == {"type": "invalid_request", "code": "not_found", "detail": "Not found.", "attr": None}


async def test_retrieve_soft_deleted_dashboard_is_404(client: httpx.AsyncClient, actor: Actor) -> None:
    created = await create(client, actor, name="gone")
    assert (await patch(client, actor, created["id"], deleted=True)).status_code == 200

    assert_error(await retrieve(client, actor, created["id"]), 404)


async def test_retrieve_another_teams_dashboard_through_my_team_is_404(
    client: httpx.AsyncClient, actor: Actor, other_actor: Actor
) -> None:
    theirs = await create(client, other_actor, name="theirs")

    assert_error(await retrieve(client, actor, theirs["id"]), 404)


async def test_retrieve_as_plain_text(client: httpx.AsyncClient, actor: Actor) -> None:
    created = await create(client, actor, name="Weekly numbers", description="For the Monday meeting")

    response = await retrieve(client, actor, created["id"], format="txt")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert "Weekly numbers" in response.text
    assert "For the Monday meeting" in response.text
    assert not response.text.lstrip().startswith("{")


# --- update (PATCH and PUT) ---------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["PATCH", "PUT"])
async def test_update_changes_the_given_fields_only(
    client: httpx.AsyncClient, actor: Actor, method: str
) -> None:
    created = await create(client, actor, name="Before", description="keep me", tags=["t"], filters={"a": 1})

    response = await client.request(
        method,
        actor.url(f"dashboards/{created['id']}/"),
        json={"name": "After", "pinned": True},
        headers=actor.headers,
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == FULL_KEYS
    assert body["name"] == "After"
    assert body["pinned"] is True
    assert body["description"] == "keep me"
    assert body["tags"] == ["t"]
    assert body["filters"] == {"a": 1}
    stored = (await retrieve(client, actor, created["id"])).json()
    assert (stored["name"], stored["pinned"], stored["description"]) == ("After", True, "keep me")


async def test_update_without_a_body_changes_nothing(client: httpx.AsyncClient, actor: Actor) -> None:
    created = await create(client, actor, name="Same", description="d", tags=["t"], filters={"a": 1})

    for method in ("PATCH", "PUT"):
        response = await client.request(
            method, actor.url(f"dashboards/{created['id']}/"), headers=actor.headers
        )
        assert response.status_code == 200, response.text

    stored = (await retrieve(client, actor, created["id"])).json()
    assert (stored["name"], stored["description"], stored["tags"], stored["filters"]) == (
        "Same",
        "d",
        ["t"],
        {"a": 1},
    )


async def test_update_writes_description_and_refresh_times(client: httpx.AsyncClient, actor: Actor) -> None:
    created = await create(client, actor, name="x")

    response = await patch(
        client,
        actor,
        created["id"],
        description="new",
        last_refresh="2025-03-04T05:06:07Z",
        breakdown_colors=[{"c": 1}],
    )

    assert response.status_code == 200, response.text
    stored = (await retrieve(client, actor, created["id"])).json()
    assert stored["description"] == "new"
    assert parse_time(stored["last_refresh"]) == parse_time("2025-03-04T05:06:07+00:00")
    assert stored["breakdown_colors"] == [{"c": 1}]


async def test_update_replaces_filters_only_when_non_empty(client: httpx.AsyncClient, actor: Actor) -> None:
    created = await create(client, actor, name="F", filters={"date_from": "-30d", "x": 1})

    replaced = (await patch(client, actor, created["id"], filters={"date_from": "-7d"})).json()
    assert replaced["filters"] == {"date_from": "-7d"}
    assert replaced["persisted_filters"] == {"date_from": "-7d"}

    kept = (await patch(client, actor, created["id"], filters={})).json()
    assert kept["filters"] == {"date_from": "-7d"}
    assert (await retrieve(client, actor, created["id"])).json()["filters"] == {"date_from": "-7d"}


async def test_update_replaces_variables_only_when_non_empty(client: httpx.AsyncClient, actor: Actor) -> None:
    created = await create(client, actor, name="V", variables={"a": {"value": 1}})

    assert (await patch(client, actor, created["id"], variables={"b": {"value": 2}})).json()["variables"] == {
        "b": {"value": 2}
    }
    assert (await patch(client, actor, created["id"], variables={})).json()["variables"] == {
        "b": {"value": 2}
    }


@pytest.mark.parametrize("field", ["filters", "variables"])
async def test_update_requires_filters_and_variables_to_be_objects(
    client: httpx.AsyncClient, actor: Actor, field: str
) -> None:
    created = await create(client, actor, name="F", **{field: {"keep": True}})

    response = await patch(client, actor, created["id"], **{field: ["not", "an", "object"]})

    # PostHog's update path says "Filters" for both.
    assert_error(response, 400, attr=field, detail="Filters must be a dictionary")
    assert (await retrieve(client, actor, created["id"])).json()[field] == {"keep": True}


async def test_update_replaces_and_removes_tags(client: httpx.AsyncClient, actor: Actor) -> None:
    created = await create(client, actor, name="T", tags=["a", "b"])

    assert sorted((await patch(client, actor, created["id"], tags=["B", "c"])).json()["tags"]) == ["b", "c"]
    assert sorted((await retrieve(client, actor, created["id"])).json()["tags"]) == ["b", "c"]
    assert await listed_names(client, actor, tags="a") == []
    assert await listed_names(client, actor, tags="c") == ["T"]

    # Leaving tags out keeps them; an empty list removes them all.
    assert sorted((await patch(client, actor, created["id"], name="T2")).json()["tags"]) == ["b", "c"]
    assert (await patch(client, actor, created["id"], tags=[])).json()["tags"] == []
    assert (await retrieve(client, actor, created["id"])).json()["tags"] == []


async def test_update_tags_of_one_dashboard_leave_others_alone(
    client: httpx.AsyncClient, actor: Actor
) -> None:
    first = await create(client, actor, name="first", tags=["shared", "only-first"])
    second = await create(client, actor, name="second", tags=["shared"])

    await patch(client, actor, first["id"], tags=[])

    assert (await retrieve(client, actor, second["id"])).json()["tags"] == ["shared"]
    assert await listed_names(client, actor, tags="shared") == ["second"]


async def test_soft_delete_then_restore(client: httpx.AsyncClient, actor: Actor) -> None:
    created = await create(client, actor, name="Phoenix")

    deleted = await patch(client, actor, created["id"], deleted=True)
    assert deleted.status_code == 200, deleted.text
    assert deleted.json()["deleted"] is True
    assert_error(await retrieve(client, actor, created["id"]), 404)
    assert await listed_names(client, actor) == []

    restored = await patch(client, actor, created["id"], deleted=False)
    assert restored.status_code == 200, restored.text
    assert restored.json()["deleted"] is False
    assert (await retrieve(client, actor, created["id"])).status_code == 200
    assert await listed_names(client, actor) == ["Phoenix"]


async def test_restore_may_change_other_fields_at_the_same_time(
    client: httpx.AsyncClient, actor: Actor
) -> None:
    created = await create(client, actor, name="old")
    await patch(client, actor, created["id"], deleted=True)

    restored = await patch(client, actor, created["id"], deleted=False, name="new")

    assert restored.status_code == 200, restored.text
    assert await listed_names(client, actor) == ["new"]


async def test_deleted_dashboard_cannot_be_patched_otherwise(client: httpx.AsyncClient, actor: Actor) -> None:
    created = await create(client, actor, name="gone")
    await patch(client, actor, created["id"], deleted=True)

    assert_error(await patch(client, actor, created["id"], name="zombie"), 404)
    assert_error(await patch(client, actor, created["id"], deleted=True), 404)
    put = await client.put(
        actor.url(f"dashboards/{created['id']}/"), json={"name": "zombie"}, headers=actor.headers
    )
    assert_error(put, 404)

    restored = (await patch(client, actor, created["id"], deleted=False)).json()
    assert restored["name"] == "gone"


async def test_update_unknown_or_other_teams_dashboard_is_404(
    client: httpx.AsyncClient, actor: Actor, other_actor: Actor
) -> None:
    theirs = await create(client, other_actor, name="theirs")

    assert_error(await patch(client, actor, 987654321, name="x"), 404)
    assert_error(await patch(client, actor, theirs["id"], name="x"), 404)
    assert_error(await patch(client, actor, theirs["id"], deleted=False), 404)
    assert (await retrieve(client, other_actor, theirs["id"])).json()["name"] == "theirs"


async def test_update_rejects_an_unknown_theme(client: httpx.AsyncClient, actor: Actor) -> None:
    created = await create(client, actor, name="x")

    assert_error(
        await patch(client, actor, created["id"], data_color_theme_id=987654321),
        400,
        attr="data_color_theme_id",
    )


async def test_update_sets_and_clears_the_theme(client: httpx.AsyncClient, actor: Actor) -> None:
    theme_id = (await client.get(actor.url("data_color_themes/"), headers=actor.headers)).json()["results"][
        0
    ]["id"]
    created = await create(client, actor, name="x")

    assert (await patch(client, actor, created["id"], data_color_theme_id=theme_id)).json()[
        "data_color_theme_id"
    ] == (theme_id)
    assert (await patch(client, actor, created["id"], data_color_theme_id=None)).json()[
        "data_color_theme_id"
    ] is None
    assert (await retrieve(client, actor, created["id"])).json()["data_color_theme_id"] is None


async def test_update_rejects_a_name_over_400_characters(client: httpx.AsyncClient, actor: Actor) -> None:
    created = await create(client, actor, name="short")

    assert_error(await patch(client, actor, created["id"], name="n" * 401), 400, attr="name")
    assert (await retrieve(client, actor, created["id"])).json()["name"] == "short"


# --- restriction levels and edit rights ---------------------------------------------------------------------


async def test_creator_and_admin_may_change_the_restriction_level(
    client: httpx.AsyncClient, actor: Actor, db: AsyncSession
) -> None:
    admin = await make_member(db, actor.team, level=ADMIN)
    creator = await make_member(db, actor.team, level=MEMBER)
    by_member = await create(client, creator, name="member's")

    restricted = await patch(client, creator, by_member["id"], restriction_level=37)
    assert restricted.status_code == 200, restricted.text
    assert restricted.json()["restriction_level"] == 37
    assert restricted.json()["effective_restriction_level"] == 37
    assert restricted.json()["access_control_version"] == "v1"

    reopened = await patch(client, admin, by_member["id"], restriction_level=21)
    assert reopened.status_code == 200, reopened.text
    assert reopened.json()["restriction_level"] == 21
    assert reopened.json()["access_control_version"] == "v2"


async def test_plain_member_may_not_change_someone_elses_restriction_level(
    client: httpx.AsyncClient, actor: Actor, db: AsyncSession
) -> None:
    member = await make_member(db, actor.team, level=MEMBER)
    created = await create(client, actor, name="owner's")

    response = await patch(client, member, created["id"], restriction_level=37)

    body = assert_error(response, 403, detail=CANNOT_RESTRICT)
    assert body["code"] == "permission_denied"
    assert (await retrieve(client, actor, created["id"])).json()["restriction_level"] == 21
    # Other fields stay editable on a level-21 dashboard.
    assert (await patch(client, member, created["id"], name="renamed")).status_code == 200


async def test_restriction_level_must_be_21_or_37(client: httpx.AsyncClient, actor: Actor) -> None:
    created = await create(client, actor, name="x")

    for value in (99, 0, 22):
        assert_error(
            await patch(client, actor, created["id"], restriction_level=value), 400, attr="restriction_level"
        )
    assert (await retrieve(client, actor, created["id"])).json()["restriction_level"] == 21


async def test_restricted_dashboard_is_read_only_for_other_plain_members(
    client: httpx.AsyncClient, actor: Actor, db: AsyncSession
) -> None:
    member = await make_member(db, actor.team, level=MEMBER)
    created = await create(client, actor, name="Locked", restriction_level=37)

    seen = await retrieve(client, member, created["id"])
    assert seen.status_code == 200
    for view in (seen.json(), (await list_page(client, member))["results"][0]):
        assert view["restriction_level"] == 37
        assert view["effective_restriction_level"] == 37
        assert view["effective_privilege_level"] == 21
        assert view["user_access_level"] == "viewer"
        assert view["access_control_version"] == "v1"

    for body in ({"name": "Mine now"}, {"deleted": True}, {"tags": ["x"]}, {"restriction_level": 21}):
        assert_error(await patch(client, member, created["id"], **body), 403, detail=CANNOT_EDIT)
    put = await client.put(
        actor.url(f"dashboards/{created['id']}/"), json={"name": "x"}, headers=member.headers
    )
    assert_error(put, 403, detail=CANNOT_EDIT)
    stored = (await retrieve(client, actor, created["id"])).json()
    assert (stored["name"], stored["deleted"], stored["tags"]) == ("Locked", False, [])


async def test_restricted_dashboard_is_editable_by_its_creator_and_admins(
    client: httpx.AsyncClient, actor: Actor, db: AsyncSession
) -> None:
    admin = await make_member(db, actor.team, level=ADMIN)
    creator = await make_member(db, actor.team, level=MEMBER)
    created = await create(client, creator, name="Locked", restriction_level=37)

    for who in (creator, admin):
        view = (await retrieve(client, who, created["id"])).json()
        assert view["effective_privilege_level"] == 37
        assert view["user_access_level"] == "editor"
        response = await patch(client, who, created["id"], description=f"edited by {who.user.email}")
        assert response.status_code == 200, response.text


async def test_collaborator_can_edit_a_restricted_dashboard(
    client: httpx.AsyncClient, actor: Actor, db: AsyncSession
) -> None:
    member = await make_member(db, actor.team, level=MEMBER)
    created = await create(client, actor, name="Locked", restriction_level=37)
    added = await client.post(
        actor.url(f"dashboards/{created['id']}/collaborators/"),
        json={"user_uuid": str(member.user.uuid), "level": 37},
        headers=actor.headers,
    )
    assert added.status_code == 201, added.text

    view = (await retrieve(client, member, created["id"])).json()
    assert view["effective_privilege_level"] == 37
    assert view["user_access_level"] == "editor"
    response = await patch(client, member, created["id"], name="Edited by a collaborator")
    assert response.status_code == 200, response.text
    # Editing is not restricting: that stays with the creator and admins.
    assert_error(
        await patch(client, member, created["id"], restriction_level=21), 403, detail=CANNOT_RESTRICT
    )


async def test_unrestricted_dashboard_is_editable_by_every_member(
    client: httpx.AsyncClient, actor: Actor, db: AsyncSession
) -> None:
    member = await make_member(db, actor.team, level=MEMBER)
    created = await create(client, actor, name="Open")

    view = (await retrieve(client, member, created["id"])).json()
    assert (view["effective_privilege_level"], view["user_access_level"]) == (37, "editor")
    assert (await patch(client, member, created["id"], name="Edited")).status_code == 200


async def test_update_requires_a_write_scope(
    client: httpx.AsyncClient, actor: Actor, db: AsyncSession
) -> None:
    reader = await make_member(db, actor.team, level=ADMIN, scopes=["dashboard:read"])
    created = await create(client, actor, name="x")

    assert (await retrieve(client, reader, created["id"])).status_code == 200
    response = await patch(client, reader, created["id"], name="y")

    assert_error(response, 403, detail="API key missing required scope 'dashboard:write'")
    assert (await retrieve(client, actor, created["id"])).json()["name"] == "x"


# --- DELETE -------------------------------------------------------------------------------------------------


def assert_bare_405(response: httpx.Response) -> None:
    assert response.status_code == 405, response.text
    assert response.content == b""


async def test_delete_is_never_allowed(client: httpx.AsyncClient, actor: Actor) -> None:
    created = await create(client, actor, name="stays")

    assert_bare_405(await client.delete(actor.url(f"dashboards/{created['id']}/"), headers=actor.headers))
    assert_bare_405(await client.delete(actor.url(f"dashboards/{created['id']}"), headers=actor.headers))
    assert_bare_405(await client.delete(actor.url(f"dashboards/{created['id']}/")))
    assert_bare_405(
        await client.delete(actor.url("dashboards/987654321/"), headers={"Authorization": "Bearer nope"})
    )
    assert_bare_405(await client.delete(actor.url("dashboards/not-a-number/"), headers=actor.headers))

    assert (await retrieve(client, actor, created["id"])).status_code == 200
    assert await listed_names(client, actor) == ["stays"]


# --- routing ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("prefix", ["environments", "projects"])
@pytest.mark.parametrize("slash", ["/", ""])
async def test_both_prefixes_and_slash_forms_without_redirects(
    client: httpx.AsyncClient, actor: Actor, prefix: str, slash: str
) -> None:
    def url(path: str) -> str:
        return actor.url(path, prefix=prefix).rstrip("/") + slash

    created = await client.post(url("dashboards"), json={"name": "routed"}, headers=actor.headers)
    assert created.status_code == 201, created.text
    dashboard_id = created.json()["id"]

    listed = await client.get(url("dashboards"), headers=actor.headers)
    assert listed.status_code == 200
    assert [d["id"] for d in listed.json()["results"]] == [dashboard_id]

    got = await client.get(url(f"dashboards/{dashboard_id}"), headers=actor.headers)
    assert got.status_code == 200
    assert got.json()["name"] == "routed"

    patched = await client.patch(
        url(f"dashboards/{dashboard_id}"), json={"name": "moved"}, headers=actor.headers
    )
    assert patched.status_code == 200
    put = await client.put(url(f"dashboards/{dashboard_id}"), json={"pinned": True}, headers=actor.headers)
    assert put.status_code == 200
    assert (put.json()["name"], put.json()["pinned"]) == ("moved", True)

    collaborators = await client.get(url(f"dashboards/{dashboard_id}/collaborators"), headers=actor.headers)
    assert collaborators.status_code == 200
    assert_bare_405(await client.delete(url(f"dashboards/{dashboard_id}"), headers=actor.headers))
    missing = await client.get(url("dashboards/987654321"), headers=actor.headers)
    assert missing.status_code == 404


# --- authentication and isolation ---------------------------------------------------------------------------


async def test_requests_without_a_key_are_401(client: httpx.AsyncClient, actor: Actor) -> None:
    created = await create(client, actor, name="x")

    for response in (
        await client.get(actor.url("dashboards/")),
        await client.get(actor.url(f"dashboards/{created['id']}/")),
        await client.post(actor.url("dashboards/"), json={"name": "y"}),
        await client.patch(actor.url(f"dashboards/{created['id']}/"), json={"name": "y"}),
    ):
        assert_error(response, 401)
        assert response.headers["www-authenticate"] == "Bearer"
    assert await listed_names(client, actor) == ["x"]


async def test_non_member_gets_403_on_my_team_urls(
    client: httpx.AsyncClient, actor: Actor, other_actor: Actor
) -> None:
    mine = await create(client, actor, name="mine")
    url = actor.url(f"dashboards/{mine['id']}/")

    for response in (
        await client.get(actor.url("dashboards/"), headers=other_actor.headers),
        await client.get(url, headers=other_actor.headers),
        await client.patch(url, json={"name": "hijacked"}, headers=other_actor.headers),
        await client.put(url, json={"name": "hijacked"}, headers=other_actor.headers),
        await client.patch(url, json={"deleted": True}, headers=other_actor.headers),
        await client.post(actor.url("dashboards/"), json={"name": "planted"}, headers=other_actor.headers),
    ):
        assert_error(response, 403, detail=NO_PROJECT_ACCESS)

    assert await listed_names(client, actor) == ["mine"]


async def test_non_member_gets_404_through_their_own_team(
    client: httpx.AsyncClient, actor: Actor, other_actor: Actor
) -> None:
    mine = await create(client, actor, name="mine")
    url = other_actor.url(f"dashboards/{mine['id']}/")

    assert_error(await client.get(url, headers=other_actor.headers), 404)
    assert_error(await client.patch(url, json={"name": "hijacked"}, headers=other_actor.headers), 404)
    assert_error(await client.patch(url, json={"deleted": True}, headers=other_actor.headers), 404)
    assert_error(await client.patch(url, json={"deleted": False}, headers=other_actor.headers), 404)

    listed = (await list_page(client, actor))["results"]
    assert [(d["name"], d["last_accessed_at"]) for d in listed] == [("mine", None)]


async def test_unknown_team_is_403(client: httpx.AsyncClient, actor: Actor) -> None:
    response = await client.get(actor.url("dashboards/", team_id=987654321), headers=actor.headers)

    assert_error(response, 403, detail=NO_PROJECT_ACCESS)


# --- statement counts ---------------------------------------------------------------------------------------


async def tag_dashboards(db: AsyncSession, actor: Actor, dashboard_ids: list[int], names: list[str]) -> None:
    tags = [Tag(team_id=actor.team.id, name=n) for n in names]
    db.add_all(tags)
    await db.flush()
    db.add_all([TaggedItem(tag_id=t.id, dashboard_id=d) for d in dashboard_ids for t in tags])
    await db.commit()


async def test_list_statement_count_does_not_grow_with_the_page(
    client: httpx.AsyncClient, actor: Actor, db: AsyncSession, engine: AsyncEngine
) -> None:
    member = await make_member(db, actor.team)  # a second creator, to join more than one user
    first = await insert_dashboards(db, actor, [f"a{i:03}" for i in range(5)])
    await tag_dashboards(db, actor, first, ["t1", "t2"])
    await list_page(client, actor)  # warm-up: the key's last_used_at is written once

    with count_statements(engine) as small:
        page = await list_page(client, actor, limit=100)
    assert len(page["results"]) == 5

    more = await insert_dashboards(db, member, [f"b{i:03}" for i in range(95)], restriction_level=37)
    await tag_dashboards(db, actor, more, ["t3", "t4", "t5"])
    with count_statements(engine) as large:
        page = await list_page(client, actor, limit=100)
    assert len(page["results"]) == 100
    assert all(len(d["tags"]) in (2, 3) for d in page["results"])

    assert large() == small(), (small(), large())
    # key + team + membership (one statement), the page with its count; plus the SAVEPOINT/RELEASE of the
    # test's request session.
    assert large() == 2 + 2


async def test_list_counts_every_match_on_a_page_past_the_end(
    client: httpx.AsyncClient, actor: Actor, db: AsyncSession
) -> None:
    await insert_dashboards(db, actor, [f"d{i}" for i in range(3)])

    past = await list_page(client, actor, limit=2, offset=5)
    last = await list_page(client, actor, limit=2, offset=2)

    assert (past["count"], past["results"]) == (3, [])
    assert (last["count"], [d["name"] for d in last["results"]]) == (3, ["d2"])
    assert (await list_page(client, actor, search="nothing matches"))["count"] == 0


async def test_retrieve_statement_count_does_not_grow_with_tags(
    client: httpx.AsyncClient, actor: Actor, db: AsyncSession, engine: AsyncEngine
) -> None:
    one, ten = await insert_dashboards(db, actor, ["one tag", "ten tags"])
    await tag_dashboards(db, actor, [one], ["solo"])
    await tag_dashboards(db, actor, [ten], [f"tag{i}" for i in range(10)])
    assert (await retrieve(client, actor, one)).status_code == 200  # warm-up, and both have a view row now
    assert (await retrieve(client, actor, ten)).status_code == 200

    with count_statements(engine) as with_one:
        assert len((await retrieve(client, actor, one)).json()["tags"]) == 1
    with count_statements(engine) as with_ten:
        assert len((await retrieve(client, actor, ten)).json()["tags"]) == 10

    assert with_one() == with_ten(), (with_one(), with_ten())
    # key + team + membership (one statement), the dashboard (creator, tags, privilege, view), its insight
    # tiles and its text tiles; plus the SAVEPOINT/RELEASE of the test's request session. The view is not
    # written again within the minute (the warm-up wrote it after its response: test_dashboard_views.py).
    assert with_ten() == 4 + 2
