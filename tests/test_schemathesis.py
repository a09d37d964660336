"""Every operation of `/openapi.json`, fuzzed by schemathesis against a live server: valid and invalid
inputs, with the caller's team (and real object ids) pinned in the paths, must never answer a server error.

Bounded: a fixed number of examples per operation, no shrinking, no example database."""

import json
from pathlib import Path
from typing import Any

import httpx
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.conftest import FreshDatabases
from tests.live import env_without_database, run_cli, serve
from tests.resources import trends

EXAMPLES_PER_OPERATION = 30


def test_no_operation_answers_a_server_error(fresh_databases: FreshDatabases, tmp_path: Path) -> None:
    env = env_without_database(
        DATABASE_URL=fresh_databases.create(migrated=False), TILECAST_LOG_LEVEL="WARNING"
    )
    created = json.loads(run_cli(["create-key", "--email", "fuzz@example.com", "--json"], env).stdout)
    team = str(created["team_id"])
    headers = {"Authorization": f"Bearer {created['key']}"}
    with serve(env, tmp_path) as (base, _log):
        api = f"{base}/api/environments/{team}"
        dashboard = httpx.post(
            f"{api}/dashboards/", json={"name": "d", "restriction_level": 37}, headers=headers
        ).json()["id"]
        insight = httpx.post(
            f"{api}/insights/",
            json={"name": "i", "query": trends(), "dashboards": [dashboard]},
            headers=headers,
        ).json()["id"]
        theme = httpx.post(
            f"{api}/data_color_themes/", json={"name": "t", "colors": ["#ff0000"]}, headers=headers
        ).json()["id"]
        ids = {"dashboards": dashboard, "insights": insight, "data_color_themes": theme}

        schema = schemathesis.openapi.from_url(f"{base}/openapi.json")
        failures: list[str] = []
        operations = 0
        for result in schema.get_all_operations():
            operation = result.ok()
            operations += 1
            cases = st.one_of(
                operation.as_strategy(schemathesis.GenerationMode.POSITIVE),
                operation.as_strategy(schemathesis.GenerationMode.NEGATIVE),
            )

            @given(case=cases)
            @settings(
                max_examples=EXAMPLES_PER_OPERATION,
                deadline=None,
                database=None,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            def call(case: Any) -> None:
                path = case.path_parameters
                if path is not None:
                    if "project_id" in path:
                        path["project_id"] = team
                    for resource, ident in ids.items():
                        if f"/{resource}/{{id}}" in case.operation.path and "id" in path:
                            path["id"] = ident
                    if "dashboard_id" in path:
                        path["dashboard_id"] = dashboard
                response = case.call(base_url=base, headers=headers, timeout=30)
                if response.status_code >= 500:
                    failures.append(
                        f"{case.operation.label} → {response.status_code}: {case.as_curl_command()[:500]}"
                    )

            call()
    assert operations > 40  # the whole API was fuzzed, not an empty schema
    assert failures == [], "\n".join(failures[:10])
