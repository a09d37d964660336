"""Person properties from `$set`/`$set_once`, the team settings endpoints, and what queries take from them:
person-property filters and breakdowns, `filterTestAccounts`, the week's first day, and cache keys that change
with the settings. Every answer below is worked out by hand from the events the test sends."""

from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import Person
from tests.events import event, ingest
from tests.factories import Actor, make_actor
from tests.trends_helpers import absolute, node, results, utc

DAY = absolute("2024-01-01", "2024-01-01")


async def person_properties(db: AsyncSession, actor: Actor, distinct_id: str) -> dict[str, Any] | None:
    stmt = select(Person.properties).where(Person.team_id == actor.team.id, Person.distinct_id == distinct_id)
    row: dict[str, Any] | None = await db.scalar(stmt)
    return row


# --- persons at capture ----------------------------------------------------------------------------------


async def test_set_overwrites_and_set_once_fills_only_missing_keys(
    client: httpx.AsyncClient, actor: Actor, db: AsyncSession
) -> None:
    at = utc(2024, 1, 1, 10)
    await ingest(client, actor, [event("$identify", "u1", at, {"$set": {"plan": "free", "email": "a@x.io"}})])
    await ingest(
        client,
        actor,
        [
            event("e", "u1", at, {"$set_once": {"plan": "pro", "first_seen": "jan"}}),
            event("e", "u1", at, {"$set": {"plan": "team"}}),
            # After a $set of `plan` in the same request, a $set_once of it changes nothing.
            event("e", "u1", at, {"$set_once": {"plan": "ignored", "first_seen": "ignored"}}),
        ],
    )

    assert await person_properties(db, actor, "u1") == {
        "plan": "team",
        "email": "a@x.io",
        "first_seen": "jan",
    }


async def test_top_level_set_and_set_once_count_like_those_in_properties(
    client: httpx.AsyncClient, actor: Actor, db: AsyncSession
) -> None:
    at = utc(2024, 1, 1, 10)
    await ingest(
        client,
        actor,
        [event("e", "u2", at, {"$set": {"a": 1}}, **{"$set": {"b": 2}, "$set_once": {"c": 3}})],
    )
    # The top-level keys join the properties' own (theirs winning), as PostHog's ingestion does.
    assert await person_properties(db, actor, "u2") == {"a": 1, "b": 2, "c": 3}


async def test_events_without_person_properties_create_no_person(
    client: httpx.AsyncClient, actor: Actor, db: AsyncSession
) -> None:
    await ingest(client, actor, [event("e", "nobody", utc(2024, 1, 1, 10), {"x": 1})])
    assert await person_properties(db, actor, "nobody") is None


async def test_persons_belong_to_their_team(
    client: httpx.AsyncClient, actor: Actor, other_actor: Actor, db: AsyncSession
) -> None:
    at = utc(2024, 1, 1, 10)
    await ingest(client, actor, [event("e", "same-id", at, {"$set": {"team": "mine"}})])
    await ingest(client, other_actor, [event("e", "same-id", at, {"$set": {"team": "theirs"}})])
    assert await person_properties(db, actor, "same-id") == {"team": "mine"}
    assert await person_properties(db, other_actor, "same-id") == {"team": "theirs"}


async def test_a_bad_person_value_refuses_the_request_and_stores_nothing(
    client: httpx.AsyncClient, actor: Actor, db: AsyncSession
) -> None:
    response = await client.post(
        "/batch/",
        content=b'{"api_key": "%s", "batch": [{"event": "e", "distinct_id": "u9", "properties": '
        b'{"$set": {"n": 1e999}}}]}' % actor.team.api_token.encode(),
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert await person_properties(db, actor, "u9") is None


# --- person properties in trends -------------------------------------------------------------------------


async def _plans(client: httpx.AsyncClient, actor: Actor) -> None:
    at = utc(2024, 1, 1, 12)
    await ingest(
        client,
        actor,
        [
            event("$identify", "pro-1", at, {"$set": {"plan": "pro"}}),
            event("$identify", "pro-2", at, {"$set_once": {"plan": "pro"}}),
            event("$identify", "free-1", at, {"$set": {"plan": "free"}}),
            # Events without person properties of their own still carry their person's.
            *[event("$pageview", "pro-1", at) for _ in range(3)],
            event("$pageview", "pro-2", at),
            *[event("$pageview", "free-1", at) for _ in range(2)],
            event("$pageview", "anonymous", at),
        ],
    )


async def test_person_property_filter_uses_each_distinct_ids_current_properties(
    client: httpx.AsyncClient, actor: Actor
) -> None:
    await _plans(client, actor)
    pro = [{"type": "person", "key": "plan", "operator": "exact", "value": "pro"}]
    not_pro = [{"type": "person", "key": "plan", "operator": "is_not", "value": "pro"}]

    assert [r["data"] for r in await results(client, actor, node(), properties=pro, **DAY)] == [[4]]
    # A negative operator matches events whose person has no such property (anonymous): 2 + 1.
    assert [r["data"] for r in await results(client, actor, node(), properties=not_pro, **DAY)] == [[3]]

    # The person's properties change: the same query counts by the current ones.
    await ingest(client, actor, [event("e", "free-1", utc(2024, 1, 2), {"$set": {"plan": "pro"}})])
    assert [r["data"] for r in await results(client, actor, node(), properties=pro, **DAY)] == [[6]]


async def test_breakdown_by_person_property(client: httpx.AsyncClient, actor: Actor) -> None:
    await _plans(client, actor)
    rows = await results(
        client,
        actor,
        node(),
        breakdownFilter={"breakdown": "plan", "breakdown_type": "person"},
        **DAY,
    )
    assert {r["breakdown_value"]: r["data"] for r in rows} == {
        "pro": [4],
        "free": [2],
        "$$_posthog_breakdown_null_$$": [1],
    }


# --- team settings ----------------------------------------------------------------------------------------


async def test_team_settings_read_and_change_on_both_prefixes(
    client: httpx.AsyncClient, actor: Actor
) -> None:
    for prefix in ("projects", "environments"):
        response = await client.get(f"/api/{prefix}/{actor.team.id}/", headers=actor.headers)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["id"] == body["project_id"] == actor.team.id
        assert body["api_token"] == actor.team.api_token
        assert (body["timezone"], body["test_account_filters"], body["week_start_day"]) == ("UTC", [], None)

    filters = [{"key": "email", "type": "person", "value": "@example.com", "operator": "not_icontains"}]
    response = await client.patch(
        f"/api/projects/{actor.team.id}",
        json={"test_account_filters": filters, "week_start_day": 1, "timezone": "Europe/Paris", "x": 1},
        headers=actor.headers,
    )
    assert response.status_code == 200, response.text
    again = (await client.get(f"/api/environments/{actor.team.id}", headers=actor.headers)).json()
    assert (again["test_account_filters"], again["week_start_day"], again["timezone"]) == (
        filters,
        1,
        "Europe/Paris",
    )


@pytest.mark.parametrize(
    ("body", "attr"),
    [
        ({"week_start_day": 3}, "week_start_day"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"timezone": None}, "timezone"),
        ({"test_account_filters": {"key": "x"}}, "test_account_filters"),
        ({"test_account_filters": [{"key": "x", "type": "cohort", "value": 1}]}, "test_account_filters"),
        (
            {"test_account_filters": [{"key": "x", "operator": "sounds_like", "value": "a"}]},
            "test_account_filters",
        ),
        ({"test_account_filters": [{"key": "x", "value": "a\u0000"}]}, "test_account_filters"),
        ({"name": "x" * 201}, "name"),
    ],
)
async def test_team_settings_refuse_bad_values_naming_the_field(
    client: httpx.AsyncClient, actor: Actor, body: dict[str, Any], attr: str
) -> None:
    response = await client.patch(f"/api/projects/{actor.team.id}/", json=body, headers=actor.headers)
    assert response.status_code == 400, response.text
    assert response.json()["attr"] == attr
    after = (await client.get(f"/api/projects/{actor.team.id}/", headers=actor.headers)).json()
    assert (after["week_start_day"], after["timezone"], after["test_account_filters"]) == (None, "UTC", [])


async def test_team_settings_scopes_and_other_teams(
    client: httpx.AsyncClient, actor: Actor, other_actor: Actor, db: AsyncSession
) -> None:
    reader = await make_actor(db, team=actor.team, scopes=["project:read"])
    url = f"/api/projects/{actor.team.id}/"
    assert (await client.get(url, headers=reader.headers)).status_code == 200
    refused = await client.patch(url, json={"week_start_day": 1}, headers=reader.headers)
    assert refused.status_code == 403
    assert refused.json()["detail"] == "API key missing required scope 'project:write'"
    assert (await client.get(url, headers=other_actor.headers)).status_code == 403
    dashboards_only = await make_actor(db, team=actor.team, scopes=["dashboard:read"])
    assert (await client.get(url, headers=dashboards_only.headers)).status_code == 403


# --- filterTestAccounts, week start and the cache ---------------------------------------------------------


async def test_filter_test_accounts_applies_the_teams_filters_and_a_change_is_never_served_stale(
    client: httpx.AsyncClient, actor: Actor
) -> None:
    at = utc(2024, 1, 1, 12)
    await ingest(
        client,
        actor,
        [
            event("$identify", "staff", at, {"$set": {"email": "me@tilecast.dev"}}),
            event("$identify", "customer", at, {"$set": {"email": "c@shop.io"}}),
            *[event("$pageview", "staff", at, {"$host": "localhost"}) for _ in range(2)],
            *[event("$pageview", "customer", at, {"$host": "shop.io"}) for _ in range(3)],
        ],
    )
    url = f"/api/projects/{actor.team.id}/"
    internal = [{"key": "email", "type": "person", "operator": "not_icontains", "value": "tilecast.dev"}]
    await client.patch(url, json={"test_account_filters": internal}, headers=actor.headers)

    async def count(**extra: Any) -> list[Any]:
        body = await client.post(
            actor.url("query/"),
            json={
                "query": {"kind": "TrendsQuery", "series": [node()], **DAY, **extra},
                "refresh": "blocking",
            },
            headers=actor.headers,
        )
        assert body.status_code == 200, body.text
        return [r["data"] for r in body.json()["results"]]

    assert await count() == [[5]]
    assert await count(filterTestAccounts=True) == [[3]]
    # New filters: the cached result of the same query is not served (the key holds the filters).
    by_host = [{"key": "$host", "type": "event", "operator": "is_not", "value": ["shop.io"]}]
    await client.patch(url, json={"test_account_filters": by_host}, headers=actor.headers)
    assert await count(filterTestAccounts=True) == [[2]]
    # A query that does not filter test accounts keeps its cached result (its key does not hold them).
    assert await count() == [[5]]


async def test_week_start_day_moves_weekly_buckets(client: httpx.AsyncClient, actor: Actor) -> None:
    # 2024-01-07 is a Sunday, 2024-01-08 a Monday.
    await ingest(
        client,
        actor,
        [event("$pageview", "u", utc(2024, 1, 7, 12)), event("$pageview", "u", utc(2024, 1, 8, 12))],
    )
    weekly = {"interval": "week", **absolute("2024-01-07", "2024-01-13")}

    sunday = await results(client, actor, node(), **weekly)
    assert (sunday[0]["days"], sunday[0]["data"]) == (["2024-01-07"], [2])

    await client.patch(f"/api/projects/{actor.team.id}/", json={"week_start_day": 1}, headers=actor.headers)
    monday = await results(client, actor, node(), **weekly)
    assert (monday[0]["days"], monday[0]["data"]) == (["2024-01-01", "2024-01-08"], [1, 1])
