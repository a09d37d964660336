"""The per-process principal cache (TILECAST_AUTH_CACHE_TTL_S): a remembered key costs no statement, and a
key deleted or rescoped in the database is refused by every process within 5 seconds."""

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db import async_url
from tests.conftest import FreshDatabases
from tests.factories import Actor
from tests.live import env_without_database, run_cli, serve
from tests.statements import recorded_statements

QUERY = {"kind": "TrendsQuery", "series": [{"kind": "EventsNode", "event": "$pageview"}]}


async def test_a_remembered_key_costs_no_statement(
    configured: Any, actor: Actor, engine: AsyncEngine
) -> None:
    async with configured(TILECAST_AUTH_CACHE_TTL_S="2") as client:
        url, body = actor.url("query/"), {"query": QUERY, "refresh": "force_cache"}
        with recorded_statements(engine) as first:
            looked_up = await client.post(url, json=body, headers=actor.headers)
        with recorded_statements(engine) as second:
            remembered = await client.post(url, json=body, headers=actor.headers)
        dashboards = await client.get(actor.url("dashboards/"), headers=actor.headers)
    assert looked_up.status_code == remembered.status_code == dashboards.status_code == 200
    assert remembered.json() == looked_up.json()
    assert sum("personal_api_key" in s for s in first) >= 1
    # Nothing about the key, its user, the team or the membership is read again, nor written at commit.
    assert not any(
        table in s or s.lstrip().upper().startswith("UPDATE")
        for s in second
        for table in ("personal_api_key", "app_user", "organization_membership", "FROM team")
    ), second


async def test_a_remembered_key_is_still_checked_for_scopes_and_team(
    configured: Any, actor: Actor, other_actor: Actor
) -> None:
    async with configured(TILECAST_AUTH_CACHE_TTL_S="2") as client:
        body = {"query": QUERY, "refresh": "force_cache"}
        for _ in range(2):
            assert (
                await client.post(actor.url("query/"), json=body, headers=actor.headers)
            ).status_code == 200
            other_team = actor.url("query/", team_id=other_actor.team.id)
            refused = await client.post(other_team, json=body, headers=actor.headers)
            assert refused.status_code == 403, refused.text


async def _refused_everywhere(
    database_url: str, bases: list[str], created: dict[str, Any], change: str
) -> float:
    """Seconds from the row's change until every process refuses the key (which they all remembered)."""
    url = "/api/environments/{}/query/".format(created["team_id"])
    body = {"query": QUERY, "refresh": "force_cache"}
    headers = {"Authorization": "Bearer " + created["key"]}
    async with httpx.AsyncClient(timeout=30) as http:
        for _ in range(3):
            for base in bases:
                answered = await http.post(base + url, json=body, headers=headers)
                assert answered.status_code == 200, answered.text
        conn = await asyncpg.connect(
            async_url(database_url).set(drivername="postgresql").render_as_string(False)
        )
        try:
            user_id = created["user_id"]
            if change == "deleted":
                await conn.execute("DELETE FROM personal_api_key WHERE user_id = $1", user_id)
            else:
                await conn.execute(
                    "UPDATE personal_api_key SET scopes = ARRAY['dashboard:read'] WHERE user_id = $1", user_id
                )
        finally:
            await conn.close()
        changed = time.monotonic()
        expected = 401 if change == "deleted" else 403
        pending = set(bases)
        while pending and time.monotonic() - changed < 10:
            for base in list(pending):
                if (await http.post(base + url, json=body, headers=headers)).status_code == expected:
                    pending.discard(base)
            await asyncio.sleep(0.05)
        elapsed = time.monotonic() - changed
        assert not pending, f"still accepted after {elapsed:.1f} s by {pending}"
        # And it stays refused.
        for base in bases:
            assert (await http.post(base + url, json=body, headers=headers)).status_code == expected
    return elapsed


@pytest.mark.parametrize("change", ["deleted", "rescoped"])
def test_a_key_changed_in_the_database_is_refused_by_every_process_within_5_s(
    fresh_databases: FreshDatabases, tmp_path: Path, change: str
) -> None:
    database_url = fresh_databases.create(migrated=False)
    # The default TTL, as deployed (the test suite itself turns the cache off).
    env = env_without_database(DATABASE_URL=database_url, TILECAST_LOG_LEVEL="WARNING")
    env.pop("TILECAST_AUTH_CACHE_TTL_S", None)
    created = json.loads(run_cli(["create-key", "--email", "revoked@example.com", "--json"], env).stdout)
    with serve(env, tmp_path) as (first, _), serve(env, tmp_path) as (second, _):
        elapsed = asyncio.run(_refused_everywhere(database_url, [first, second], created, change))
    assert elapsed < 5


def _refused_within(http: httpx.Client, bases: list[str], path: str, key: str, limit_s: float) -> float:
    """Seconds until every process answers 401 to `key` (which they all remembered)."""
    started = time.monotonic()
    pending = set(bases)
    while pending and time.monotonic() - started < limit_s:
        for base in list(pending):
            if http.get(base + path, headers={"Authorization": f"Bearer {key}"}).status_code == 401:
                pending.discard(base)
    assert not pending, f"still accepted after {limit_s} s by {pending}"
    return time.monotonic() - started


def test_a_key_rolled_or_revoked_through_tilecast_is_refused_by_every_process_at_once(
    fresh_databases: FreshDatabases, tmp_path: Path
) -> None:
    """Rolled or deleted through the API or the command line, a key is forgotten by every worker as the change
    commits (PostgreSQL's NOTIFY), not only after the cache's TTL (5 s here)."""
    database_url = fresh_databases.create(migrated=False)
    env = env_without_database(
        DATABASE_URL=database_url, TILECAST_LOG_LEVEL="WARNING", TILECAST_AUTH_CACHE_TTL_S="5"
    )
    owner = json.loads(run_cli(["create-key", "--email", "owner@example.com", "--json"], env).stdout)
    path = "/api/environments/{}/dashboards/".format(owner["team_id"])
    admin = {"Authorization": "Bearer " + owner["key"]}
    with (
        serve(env, tmp_path) as (first, _),
        serve(env, tmp_path) as (second, _),
        httpx.Client(timeout=30) as http,
    ):
        bases = [first, second]

        def remembered_key() -> dict[str, Any]:
            made = http.post(
                first + "/api/personal_api_keys/", json={"label": "k", "scopes": ["*"]}, headers=admin
            ).json()
            for _ in range(3):
                for base in bases:
                    answered = http.get(base + path, headers={"Authorization": "Bearer " + made["value"]})
                    assert answered.status_code == 200, answered.text
            return made

        rolled = remembered_key()
        answer = http.post(first + f"/api/personal_api_keys/{rolled['id']}/roll/", headers=admin)
        assert answer.status_code == 200
        assert _refused_within(http, bases, path, rolled["value"], 2.5) < 2.5
        deleted = remembered_key()
        assert (
            http.delete(second + f"/api/personal_api_keys/{deleted['id']}/", headers=admin).status_code == 204
        )
        assert _refused_within(http, bases, path, deleted["value"], 2.5) < 2.5
        # The command line announces too (its run takes about as long as the TTL, so here this shows only that
        # the key ends up refused everywhere).
        revoked = remembered_key()
        assert run_cli(["keys", "revoke", revoked["id"]], env).returncode == 0
        assert _refused_within(http, bases, path, revoked["value"], 2.5) < 2.5
