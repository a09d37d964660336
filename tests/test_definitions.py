"""Event and property definitions: recorded by capture (`/batch/`, `/capture/`), listed over HTTP."""

import json
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.config import get_settings
from app.ingestion.router import receive_time
from tests.events import event, ingest
from tests.factories import Actor, make_member
from tests.statements import recorded_statements_and_driver_queries

NOW = datetime.now(UTC)


def at(days_ago: float = 0) -> datetime:
    return NOW - timedelta(days=days_ago)


async def listed(client: httpx.AsyncClient, actor: Actor, path: str, **params: Any) -> dict[str, Any]:
    response = await client.get(actor.url(path), params=params, headers=actor.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def names(client: httpx.AsyncClient, actor: Actor, path: str, **params: Any) -> list[str]:
    return [r["name"] for r in (await listed(client, actor, path, **params))["results"]]


async def properties(client: httpx.AsyncClient, actor: Actor, **params: Any) -> dict[str, dict[str, Any]]:
    body = await listed(client, actor, "property_definitions/", limit=100, **params)
    return {r["name"]: r for r in body["results"]}


@pytest.fixture
def receive_at(app: FastAPI) -> Iterator[Callable[[datetime], None]]:
    def set_now(now: datetime) -> None:
        app.dependency_overrides[receive_time] = lambda: now

    yield set_now
    app.dependency_overrides.pop(receive_time, None)


# --- event definitions ------------------------------------------------------------------------------------


async def test_batch_and_capture_record_event_definitions_with_their_volume(
    client: httpx.AsyncClient, actor: Actor
) -> None:
    await ingest(
        client,
        actor,
        [
            event("$pageview", "u1", at(1)),
            event("$pageview", "u2", at(2)),
            event("$pageview", "u2", at(40)),  # older than 30 days: not in the volume
            event("signed up", "u1", at(3)),
        ],
    )
    one = {"api_key": actor.team.api_token, **event("purchase", "u1", at(0.5))}
    assert (await client.post("/capture/", json=one)).status_code == 200
    body = await listed(client, actor, "event_definitions/")
    assert body["count"] == 3 and body["next"] is None and body["previous"] is None
    # All seen today: then by name.
    results = body["results"]
    assert [(r["name"], r["volume_30_day"]) for r in results] == [
        ("$pageview", 2),
        ("purchase", 1),
        ("signed up", 1),
    ]
    first = results[0]
    assert set(first) == {
        "id",
        "name",
        "created_at",
        "last_seen_at",
        "last_updated_at",
        "tags",
        "volume_30_day",
        "query_usage_30_day",
        "is_action",
        "action_id",
        "created_by",
        "post_to_slack",
    }
    uuid.UUID(first["id"])
    assert first["tags"] == [] and first["query_usage_30_day"] is None and first["is_action"] is False
    assert first["created_at"] == first["last_seen_at"]
    seen = datetime.fromisoformat(first["last_seen_at"])
    assert abs((seen - datetime.now(UTC)).total_seconds()) < 60
    # Retrieve by id, under both prefixes.
    for prefix in ("environments", "projects"):
        got = await client.get(
            actor.url(f"event_definitions/{first['id']}/", prefix=prefix), headers=actor.headers
        )
        assert got.status_code == 200
        assert got.json() == first


async def test_event_definitions_search_exclude_type_and_ordering(
    client: httpx.AsyncClient, actor: Actor, db: AsyncSession
) -> None:
    await ingest(
        client,
        actor,
        [event(n, "u", at(1)) for n in ("$pageview", "$pageleave", "Page Opened", "signed_up", "50%_off")],
    )
    assert await names(client, actor, "event_definitions/", search="PAGE") == [
        "$pageleave",
        "$pageview",
        "Page Opened",
    ]
    # Every term must be in the name; `%` and `_` are plain characters.
    assert await names(client, actor, "event_definitions/", search="page open") == ["Page Opened"]
    assert await names(client, actor, "event_definitions/", search="%_") == ["50%_off"]
    assert await names(client, actor, "event_definitions/", search="d_u") == ["signed_up"]
    assert await names(client, actor, "event_definitions/", event_type="event_posthog") == [
        "$pageleave",
        "$pageview",
    ]
    assert await names(
        client, actor, "event_definitions/", event_type="event_custom", excluded_properties='["signed_up"]'
    ) == ["50%_off", "Page Opened"]
    # Default order: the day last seen, most recent first, then the name.
    await db.execute(
        text(
            "UPDATE event_definition SET last_seen_at = last_seen_at - interval '3 days' "
            "WHERE team_id = :t AND name IN ('$pageview', 'signed_up')"
        ),
        {"t": actor.team.id},
    )
    assert await names(client, actor, "event_definitions/") == [
        "$pageleave",
        "50%_off",
        "Page Opened",
        "$pageview",
        "signed_up",
    ]
    assert await names(client, actor, "event_definitions/", ordering="-name") == [
        "signed_up",
        "Page Opened",
        "50%_off",
        "$pageview",
        "$pageleave",
    ]


async def test_event_definitions_are_paginated(client: httpx.AsyncClient, actor: Actor) -> None:
    await ingest(client, actor, [event(f"e{i}", "u", at(1)) for i in range(5)])
    first = await listed(client, actor, "event_definitions/", limit=2)
    assert first["count"] == 5
    assert [r["name"] for r in first["results"]] == ["e0", "e1"]
    assert first["previous"] is None
    assert first["next"] == f"http://testserver{actor.url('event_definitions/')}?limit=2&offset=2"
    last = await listed(client, actor, "event_definitions/", limit=2, offset=4)
    assert [r["name"] for r in last["results"]] == ["e4"]
    assert last["next"] is None
    assert last["previous"] == f"http://testserver{actor.url('event_definitions/')}?limit=2&offset=2"


async def test_last_seen_at_moves_at_most_once_an_hour(
    client: httpx.AsyncClient, actor: Actor, receive_at: Callable[[datetime], None]
) -> None:
    start = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)

    async def last_seen() -> str:
        return str((await listed(client, actor, "event_definitions/"))["results"][0]["last_seen_at"])

    receive_at(start)
    await ingest(client, actor, [event("tick", "u", start)])
    assert await last_seen() == "2026-12-07T10:00:00Z"
    receive_at(start + timedelta(minutes=59))
    await ingest(client, actor, [event("tick", "u", start)])
    assert await last_seen() == "2026-12-07T10:00:00Z"
    receive_at(start + timedelta(minutes=61))
    await ingest(client, actor, [event("tick", "u", start)])
    assert await last_seen() == "2026-12-07T11:01:00Z"
    created = (await listed(client, actor, "event_definitions/"))["results"][0]["created_at"]
    assert created == "2026-12-07T10:00:00Z"


async def test_a_steady_stream_writes_no_definitions(
    client: httpx.AsyncClient, actor: Actor, db: AsyncSession, engine: AsyncEngine
) -> None:
    def batch() -> dict[str, Any]:
        return {"api_key": actor.team.api_token, "batch": [event("view", "u", at(), {"path": "/a", "n": 1})]}

    assert (await client.post("/batch/", json=batch())).status_code == 200
    async with recorded_statements_and_driver_queries(engine, db) as again:
        assert (await client.post("/batch/", json=batch())).status_code == 200
    inserts = [s for s in again if "INSERT INTO events" in s]
    assert len(inserts) == 1 and "definition" not in inserts[0] and "event_property" not in inserts[0]
    # A new key on a known event writes only what is new.
    more = batch()
    more["batch"][0]["properties"]["extra"] = True
    async with recorded_statements_and_driver_queries(engine, db) as new:
        assert (await client.post("/batch/", json=more)).status_code == 200
    (insert,) = [s for s in new if "INSERT INTO events" in s]
    assert "INSERT INTO property_definition" in insert
    assert set(await properties(client, actor)) >= {"path", "n", "extra"}


async def test_a_refused_request_records_no_definitions(
    app: FastAPI, client: httpx.AsyncClient, actor: Actor
) -> None:
    settings = get_settings().model_copy(update={"capture_rate_limit_per_minute": 1})
    app.dependency_overrides[get_settings] = lambda: settings
    try:
        refused = await client.post(
            "/batch/",
            json={"api_key": actor.team.api_token, "batch": [event("big", "u", at(), {"k": 1})] * 2},
        )
        assert refused.status_code == 429
        assert await names(client, actor, "event_definitions/") == []
        # The refusal taught the process nothing: the same definitions are written when accepted.
        ok = await client.post(
            "/batch/", json={"api_key": actor.team.api_token, "batch": [event("big", "u", at(), {"k": 1})]}
        )
        assert ok.status_code == 200
    finally:
        app.dependency_overrides.pop(get_settings, None)
    assert await names(client, actor, "event_definitions/") == ["big"]
    assert "k" in await properties(client, actor)


async def test_a_large_batch_decoded_in_a_thread_records_its_definitions(
    client: httpx.AsyncClient, actor: Actor
) -> None:
    padding = "x" * 400
    events = [event(f"bulk {i % 3}", f"u{i}", at(), {"pad": padding, f"k{i % 5}": i}) for i in range(300)]
    body = json.dumps({"api_key": actor.team.api_token, "batch": events})
    assert len(body) > 64 * 1024  # past the size decoded inline
    assert (await client.post("/batch/", content=body)).status_code == 200
    assert await names(client, actor, "event_definitions/") == ["bulk 0", "bulk 1", "bulk 2"]
    assert {"pad", "k0", "k1", "k2", "k3", "k4"} <= set(await properties(client, actor))
    # k0 was sent on events "bulk 0" (i = 0, 15, …), "bulk 1" (i = 10, …) and "bulk 2" (i = 5, …).
    seen = await properties(client, actor, event_names='["bulk 0"]', filter_by_event_names="true")
    assert set(seen) == {"pad", "k0", "k1", "k2", "k3", "k4", "$ip"}


# --- property definitions ---------------------------------------------------------------------------------


async def test_property_types_are_inferred_as_posthog_does(
    client: httpx.AsyncClient, actor: Actor, receive_at: Callable[[datetime], None]
) -> None:
    received = datetime.now(UTC)
    receive_at(received)
    now = received.timestamp()
    values = {
        "count": 3,
        "price": 9.5,
        "is_admin": True,
        "flag_text": " FALSE ",
        "plan": "pro",
        "signup_date": "2026-12-01",
        "paid": "2026-12-01T10:00:00.123Z",
        "local_time": "2026-12-01 10:00:00",
        "created_at": int(now) - 3600,
        "order_at_ms": now * 1000,
        "update_count": 5,  # names a time ("date") but far too small for a recent Unix time: a number
        "utm_campaign": 123,
        "$feature/new-ui": False,
        "$survey_response_1": 4,
        "tags": ["a"],
        "meta": {"a": 1},
        "missing": None,
        "short": "2026-12",
        "phone": "1234567890",
    }
    await ingest(client, actor, [event("e", "u", at(), values)])
    found = await properties(client, actor)
    types = {name: found[name]["property_type"] for name in values}
    assert types == {
        "count": "Numeric",
        "price": "Numeric",
        "is_admin": "Boolean",
        "flag_text": "Boolean",
        "plan": "String",
        "signup_date": "DateTime",
        "paid": "DateTime",
        "local_time": "DateTime",
        "created_at": "DateTime",
        "order_at_ms": "DateTime",
        "update_count": "Numeric",
        "utm_campaign": "String",
        "$feature/new-ui": "String",
        "$survey_response_1": "String",
        "tags": None,
        "meta": None,
        "missing": None,
        "short": "String",
        "phone": "String",
    }
    assert {n for n, r in found.items() if r["is_numerical"]} == {"count", "price", "update_count"}
    assert found["count"]["tags"] == [] and found["count"]["is_seen_on_filtered_events"] is None
    assert set(found["count"]) == {
        "id",
        "name",
        "is_numerical",
        "property_type",
        "tags",
        "is_seen_on_filtered_events",
    }
    # Capture's own properties are recorded too; `$set` is not (it updates persons).
    assert "$ip" in found and "$set" not in found
    # A property first seen untyped takes the first type that comes, looked for when its event's
    # `last_seen_at` is refreshed (hourly); a typed one keeps its type.
    await ingest(client, actor, [event("e", "u", at(), {"missing": 2, "count": "three"})])
    assert (await properties(client, actor))["missing"]["property_type"] is None
    receive_at(received + timedelta(minutes=61))
    await ingest(client, actor, [event("e", "u", at(), {"missing": 2, "count": "three"})])
    found = await properties(client, actor)
    assert (found["missing"]["property_type"], found["missing"]["is_numerical"]) == ("Numeric", True)
    assert found["count"]["property_type"] == "Numeric"
    got = await client.get(actor.url(f"property_definitions/{found['plan']['id']}/"), headers=actor.headers)
    assert got.status_code == 200 and got.json() == found["plan"]


async def test_person_properties_come_from_set_and_set_once(client: httpx.AsyncClient, actor: Actor) -> None:
    await ingest(
        client,
        actor,
        [
            event("signed up", "u1", at(), {"$set": {"email": "a@b.c", "age": 30}, "plan": "pro"}),
            event("x", "u2", at(), {"$set_once": {"first_plan": "free"}}, **{"$set": {"vip": "true"}}),
        ],
    )
    person = await properties(client, actor, type="person")
    assert {n: r["property_type"] for n, r in person.items()} == {
        "email": "String",
        "age": "Numeric",
        "first_plan": "String",
        "vip": "Boolean",
    }
    event_properties = await properties(client, actor)
    assert "plan" in event_properties
    assert not {"email", "age", "first_plan", "vip", "$set", "$set_once"} & set(event_properties)


async def test_property_search_numerical_names_and_hidden(client: httpx.AsyncClient, actor: Actor) -> None:
    await ingest(
        client,
        actor,
        [
            event(
                "e",
                "u",
                at(),
                {
                    "the Page Path": "/",
                    "page_count": 2,
                    "timestamp": 5,
                    "distinct_id": "u",
                    "$initial_referrer": "x",
                    "$feature/a": True,
                },
            )
        ],
    )
    assert list(await properties(client, actor, search="PAGE")) == ["page_count", "the Page Path"]
    assert list(await properties(client, actor, search="page path")) == ["the Page Path"]
    # `timestamp` and `distinct_id` are numbers or ids, never measures; `is_numerical=false` filters nothing.
    assert list(await properties(client, actor, is_numerical="true")) == ["page_count"]
    everything = set(await properties(client, actor))
    assert set(await properties(client, actor, is_numerical="false")) == everything
    assert "distinct_id" not in everything and "$initial_referrer" not in everything
    assert list(await properties(client, actor, properties="page_count,timestamp,nope")) == [
        "page_count",
        "timestamp",
    ]
    assert list(await properties(client, actor, is_feature_flag="true")) == ["$feature/a"]
    assert "$feature/a" not in await properties(client, actor, is_feature_flag="false")
    assert "timestamp" not in await properties(client, actor, excluded_properties='["timestamp"]')


async def test_event_names_mark_and_filter_properties_seen_on_them(
    client: httpx.AsyncClient, actor: Actor
) -> None:
    await ingest(
        client,
        actor,
        [
            event("A", "u", at(), {"a1": 1, "shared": "x"}),
            event("B", "u", at(), {"b1": 1, "shared": "y"}),
            event("C", "u", at(), {"z": 1}),
        ],
    )
    body = await listed(
        client, actor, "property_definitions/", event_names='["A"]', excluded_properties='["$ip"]'
    )
    assert [(r["name"], r["is_seen_on_filtered_events"]) for r in body["results"]] == [
        ("a1", True),
        ("shared", True),
        ("b1", False),
        ("z", False),
    ]
    only = await listed(
        client,
        actor,
        "property_definitions/",
        event_names='["A", "B"]',
        filter_by_event_names="true",
        excluded_properties='["$ip"]',
    )
    assert only["count"] == 3
    assert [r["name"] for r in only["results"]] == ["a1", "b1", "shared"]


async def test_property_definitions_are_paginated(client: httpx.AsyncClient, actor: Actor) -> None:
    await ingest(client, actor, [event("e", "u", at(), {f"p{i}": i for i in range(4)})])
    page = await listed(
        client, actor, "property_definitions/", limit=2, offset=2, excluded_properties='["$ip"]'
    )
    assert page["count"] == 4
    assert [r["name"] for r in page["results"]] == ["p2", "p3"]
    assert page["next"] is None and page["previous"] is not None


# --- access and bad input -----------------------------------------------------------------------------------


async def test_another_team_sees_none_of_them(
    client: httpx.AsyncClient, actor: Actor, other_actor: Actor
) -> None:
    await ingest(client, actor, [event("mine", "u", at(), {"secret": 1, "$set": {"email": "x"}})])
    assert (await listed(client, other_actor, "event_definitions/"))["count"] == 0
    assert (await listed(client, other_actor, "property_definitions/"))["count"] == 0
    assert (await listed(client, other_actor, "property_definitions/", type="person"))["count"] == 0
    mine = (await listed(client, actor, "event_definitions/"))["results"][0]["id"]
    prop = (await properties(client, actor))["secret"]["id"]
    # By id under the other team's own URL: not found; under this team's URL: no access.
    for path in (f"event_definitions/{mine}/", f"property_definitions/{prop}/"):
        assert (await client.get(other_actor.url(path), headers=other_actor.headers)).status_code == 404
        refused = await client.get(actor.url(path), headers=other_actor.headers)
        assert refused.status_code == 403
    for path in ("event_definitions/", "property_definitions/"):
        refused = await client.get(actor.url(path), headers=other_actor.headers)
        assert refused.status_code == 403
        assert refused.json()["detail"] == "You don't have access to the project."


async def test_each_list_needs_its_read_scope(
    client: httpx.AsyncClient, actor: Actor, db: AsyncSession
) -> None:
    events_only = await make_member(db, actor.team, scopes=["event_definition:read"])
    properties_only = await make_member(db, actor.team, scopes=["property_definition:write"])
    neither = await make_member(db, actor.team, scopes=["insight:read"])
    checks = [
        ("event_definitions/", events_only, 200),
        ("property_definitions/", events_only, 403),
        ("event_definitions/", properties_only, 403),
        ("property_definitions/", properties_only, 200),
        ("event_definitions/", neither, 403),
        ("property_definitions/", neither, 403),
    ]
    for path, who, status in checks:
        response = await client.get(actor.url(path), headers=who.headers)
        assert response.status_code == status, (path, response.text)
        if status == 403:
            scope = path.replace("s/", ":read")
            assert response.json() == {
                "type": "authentication_error",
                "code": "permission_denied",
                "detail": f"API key missing required scope '{scope}'",
                "attr": None,
            }
    assert (await client.get(actor.url("event_definitions/"))).status_code == 401


@pytest.mark.parametrize(
    ("path", "params", "attr"),
    [
        ("event_definitions/", {"ordering": "volume"}, "ordering"),
        ("event_definitions/", {"event_type": "bogus"}, "event_type"),
        ("event_definitions/", {"excluded_properties": "not json"}, "excluded_properties"),
        ("event_definitions/", {"limit": "0"}, "limit"),
        ("event_definitions/", {"search": "a\x00b"}, "search"),
        ("property_definitions/", {"type": "bogus"}, "type"),
        ("property_definitions/", {"is_numerical": "maybe"}, "is_numerical"),
        ("property_definitions/", {"event_names": "[1, 2]"}, "event_names"),
        ("property_definitions/", {"event_names": "{"}, "event_names"),
        ("property_definitions/", {"offset": "-1"}, "offset"),
        ("property_definitions/", {"properties": ",".join(f"p{i}" for i in range(1001))}, "properties"),
    ],
)
async def test_bad_parameters_are_400(
    client: httpx.AsyncClient, actor: Actor, path: str, params: dict[str, str], attr: str
) -> None:
    response = await client.get(actor.url(path), params=params, headers=actor.headers)
    assert response.status_code == 400, response.text
    assert response.json()["type"] == "validation_error"
    assert response.json()["attr"] == attr


async def test_posthog_checks_on_property_types(client: httpx.AsyncClient, actor: Actor) -> None:
    async def detail(**params: str) -> str:
        response = await client.get(actor.url("property_definitions/"), params=params, headers=actor.headers)
        assert response.status_code == 400
        return str(response.json()["detail"])

    assert (
        await detail(type="person", event_names='["a"]') == "`event_names` can only be set for `event` type"
    )
    assert await detail(type="group") == "`group_type_index` must be set for `group` type"
    assert (
        await detail(type="event", group_type_index="0") == "`group_type_index` can only set for `group` type"
    )
    assert await detail(type="group", group_type_index="9") == "Invalid value for `group_type_index`"
    # Groups and sessions are not recorded: an empty page.
    assert (await listed(client, actor, "property_definitions/", type="session"))["count"] == 0
    assert (await listed(client, actor, "property_definitions/", type="group", group_type_index=0))[
        "count"
    ] == 0


async def test_unknown_or_malformed_ids_are_404(client: httpx.AsyncClient, actor: Actor) -> None:
    for path in ("event_definitions", "property_definitions"):
        for id_ in (str(uuid.uuid4()), "12", "not-a-uuid"):
            response = await client.get(actor.url(f"{path}/{id_}/"), headers=actor.headers)
            assert response.status_code == 404, (path, id_)
        # Without the trailing slash too.
        listing = await client.get(actor.url(path), headers=actor.headers)
        assert listing.status_code == 200


def test_json_names_is_strict() -> None:
    from app.definitions.service import json_names

    assert json_names("x", None) is None
    assert json_names("x", '["a", "b"]') == ["a", "b"]
    for bad in ('"a"', "[null]", "{}", "[", json.dumps(["a"] * 1001)):
        with pytest.raises(Exception) as caught:
            json_names("x", bad)
        assert getattr(caught.value, "attr", None) == "x"
