"""A PostHog API client's first calls, in the order PostHog's MCP server (agent toolkit) makes them, against a
live `tilecast serve` with only the base URL changed: who am I, the key's scopes, my organizations and
projects, then dashboards, an insight from a query put on a dashboard, and a query run.

PostHog's Python package (`posthog`) is a capture SDK with no client for these endpoints, so the calls are
made here as the MCP server's `ApiClient` makes them (Bearer key, JSON bodies, paths as it writes them, some
without the trailing slash)."""

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from posthog import Posthog

from tests.conftest import FreshDatabases
from tests.live import env_without_database, run_cli, serve


@pytest.fixture(scope="module")
def live(fresh_databases: FreshDatabases, tmp_path_factory: pytest.TempPathFactory) -> Any:
    database_url = fresh_databases.create(migrated=False)
    env = env_without_database(DATABASE_URL=database_url, TILECAST_LOG_LEVEL="WARNING")
    env.pop("TILECAST_AUTH_CACHE_TTL_S", None)  # the cache on, as deployed
    created = run_cli(["create-key", "--email", "agent@example.com", "--team", "Agent", "--json"], env)
    assert created.returncode == 0, created.stderr
    with serve(env, tmp_path_factory.mktemp("clients")) as (base, _):
        yield base, json.loads(created.stdout)


def _capture(base: str, project_api_key: str, event: str) -> None:
    errors: list[Exception] = []
    client = Posthog(project_api_key, host=base, on_error=lambda e, _b: errors.append(e), max_retries=0)
    for i in range(3):
        client.capture(event, distinct_id=f"user-{i}", timestamp=datetime.now(UTC))
    client.flush()
    client.shutdown()
    assert errors == []


def test_an_agent_discovers_its_project_and_builds_a_dashboard(live: Any) -> None:
    base, created = live
    event = f"signed up {uuid.uuid4().hex[:6]}"
    _capture(base, created["project_api_key"], event)
    headers = {"Authorization": f"Bearer {created['key']}", "Content-Type": "application/json"}
    with httpx.Client(base_url=base, headers=headers, timeout=30) as api:
        # Who am I.
        me = api.get("/api/users/@me/")
        assert me.status_code == 200, me.text
        assert me.json()["email"] == "agent@example.com" and me.json()["distinct_id"]
        assert me.json()["team"]["id"] == created["team_id"]
        # The key's scopes and limits.
        key = api.get("/api/personal_api_keys/@current")
        assert key.status_code == 200, key.text
        assert (key.json()["scopes"], key.json()["scoped_teams"], key.json()["scoped_organizations"]) == (
            ["*"],
            [],
            [],
        )
        # My organizations and projects.
        orgs = api.get("/api/organizations/").json()["results"]
        assert [o["id"] for o in orgs] == [me.json()["organization"]["id"]]
        org = api.get(f"/api/organizations/{orgs[0]['id']}/").json()
        assert org["membership_level"] == 15
        projects = api.get(f"/api/organizations/{orgs[0]['id']}/projects/").json()["results"]
        assert [(p["id"], p["name"]) for p in projects] == [(created["team_id"], "Agent")]
        project_id = projects[0]["id"]
        project = api.get(f"/api/projects/{project_id}/").json()
        assert (project["id"], project["api_token"], project["timezone"], project["ingested_event"]) == (
            project_id,
            created["project_api_key"],
            "UTC",
            True,
        )
        assert projects[0]["ingested_event"] is True
        # The project's events, and the properties seen on one of them.
        events = api.get(f"/api/projects/{project_id}/event_definitions/", params={"search": event[:9]})
        assert events.status_code == 200, events.text
        found = [d for d in events.json()["results"] if d["name"] == event]
        assert len(found) == 1 and found[0]["volume_30_day"] == 3 and found[0]["last_seen_at"]
        properties = api.get(
            f"/api/projects/{project_id}/property_definitions/",
            params={"type": "event", "event_names": json.dumps([event]), "filter_by_event_names": "true"},
        )
        assert properties.status_code == 200, properties.text
        by_name = {d["name"]: d for d in properties.json()["results"]}
        assert by_name["$lib"]["property_type"] == "String" and by_name["$lib"]["is_numerical"] is False

        # Dashboards: list, create.
        assert api.get(f"/api/projects/{project_id}/dashboards/").json()["results"] == []
        dashboard = api.post(
            f"/api/projects/{project_id}/dashboards/", json={"name": "Signups", "description": "by agent"}
        )
        assert dashboard.status_code == 201, dashboard.text
        dashboard_id = dashboard.json()["id"]
        # An insight from a query, then put on the dashboard as the MCP server does (PATCH `dashboards`).
        query = {
            "kind": "InsightVizNode",
            "source": {
                "kind": "TrendsQuery",
                "series": [{"kind": "EventsNode", "event": event, "math": "total"}],
                "dateRange": {"date_from": "-7d"},
                "interval": "day",
            },
        }
        insight = api.post(f"/api/projects/{project_id}/insights/", json={"name": "Signups", "query": query})
        assert insight.status_code == 201, insight.text
        assert insight.json()["short_id"]
        insight_id = insight.json()["id"]
        added = api.patch(
            f"/api/projects/{project_id}/insights/{insight_id}/", json={"dashboards": [dashboard_id]}
        )
        assert added.status_code == 200, added.text
        # Retrieve: the tile is there, computed from the events sent above.
        got = api.get(
            f"/api/projects/{project_id}/dashboards/{dashboard_id}/", params={"refresh": "blocking"}
        )
        assert got.status_code == 200, got.text
        tiles = got.json()["tiles"]
        assert [t["insight"]["id"] for t in tiles] == [insight_id]
        assert sum(tiles[0]["insight"]["result"][0]["data"]) == 3
        # Run a query (the MCP server posts it under /api/environments/).
        ran = api.post(f"/api/environments/{project_id}/query/", json={"query": query["source"]})
        assert ran.status_code == 200, ran.text
        assert sum(ran.json()["results"][0]["data"]) == 3
        # The same through `@current`.
        current = api.get("/api/projects/@current/dashboards/").json()["results"]
        assert [d["id"] for d in current] == [dashboard_id]


def test_a_rolled_key_is_refused_by_the_live_server_at_once(live: Any) -> None:
    base, created = live
    with httpx.Client(base_url=base, timeout=30) as api:
        made = api.post(
            "/api/personal_api_keys/",
            json={"label": "to roll", "scopes": ["dashboard:read"]},
            headers={"Authorization": f"Bearer {created['key']}"},
        )
        assert made.status_code == 201, made.text
        old = {"Authorization": f"Bearer {made.json()['value']}"}
        url = f"/api/projects/{created['team_id']}/dashboards/"
        assert api.get(url, headers=old).status_code == 200  # remembered by the server now
        rolled = api.post(f"/api/personal_api_keys/{made.json()['id']}/roll/", headers=old)
        assert rolled.status_code == 403  # `dashboard:read` only: it may not roll keys
        rolled = api.post(
            f"/api/personal_api_keys/{made.json()['id']}/roll/",
            headers={"Authorization": f"Bearer {created['key']}"},
        )
        assert rolled.status_code == 200, rolled.text
        assert api.get(url, headers=old).status_code == 401
        new = {"Authorization": f"Bearer {rolled.json()['value']}"}
        assert api.get(url, headers=new).status_code == 200
