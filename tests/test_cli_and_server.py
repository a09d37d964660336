"""The `tilecast` command and a real server process: create-key, serve on PostgreSQL and on the embedded
server, several workers, no redirects, no secrets in the logs, clean shutdown of the embedded server."""

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

import asyncpg
import httpx
import psutil
import pytest

from tests.conftest import FreshDatabases
from tests.live import env_without_database, run_cli, serve


def test_create_key_prints_the_key_and_reuses_user_and_team(
    fresh_databases: FreshDatabases, tmp_path: Path
) -> None:
    env = env_without_database(DATABASE_URL=fresh_databases.create(migrated=False))
    plain = run_cli(["create-key", "--email", "ana@example.com", "--team", "Growth"], env)
    assert plain.returncode == 0, plain.stderr
    lines = plain.stdout.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("phx_") and len(lines[0]) >= 4 + 43

    again = run_cli(
        [
            "create-key",
            "--email",
            "ana@example.com",
            "--team",
            "Growth",
            "--scopes",
            "dashboard:read",
            "--json",
        ],
        env,
    )
    assert again.returncode == 0, again.stderr
    created = json.loads(again.stdout)
    assert set(created) == {"key", "user_id", "user_uuid", "team_id", "project_api_key"}
    assert created["key"].startswith("phx_") and created["key"] != lines[0]
    assert created["project_api_key"].startswith("phc_")

    other_team = json.loads(
        run_cli(["create-key", "--email", "ana@example.com", "--team", "Ops", "--json"], env).stdout
    )
    assert other_team["user_id"] == created["user_id"]
    assert other_team["team_id"] != created["team_id"]

    bad = run_cli(["create-key", "--email", "ana@example.com", "--scopes", "dashboards:reed"], env)
    assert bad.returncode != 0 and "invalid scope" in bad.stderr


def test_team_set_changes_the_settings_queries_read(fresh_databases: FreshDatabases) -> None:
    env = env_without_database(DATABASE_URL=fresh_databases.create(migrated=False))
    team = json.loads(run_cli(["create-key", "--email", "ti@example.com", "--json"], env).stdout)["team_id"]
    filters = '[{"key": "email", "type": "person", "operator": "not_icontains", "value": "@tilecast.dev"}]'

    done = run_cli(
        [
            "team",
            "set",
            "--team",
            str(team),
            "--timezone",
            "Europe/Paris",
            "--week-start",
            "1",
            "--test-account-filters",
            filters,
        ],
        env,
    )

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {
        "id": team,
        "timezone": "Europe/Paris",
        "week_start_day": 1,
        "test_account_filters": json.loads(filters),
    }
    for bad, says in [
        (["--timezone", "Nowhere/Town"], "timezone"),
        (["--test-account-filters", "[{"], "not JSON"),
        (["--test-account-filters", '[{"key": "x", "type": "cohort", "value": 1}]'], "test_account_filters"),
        ([], "nothing to set"),
    ]:
        refused = run_cli(["team", "set", "--team", str(team), *bad], env)
        assert refused.returncode == 2 and says in refused.stderr, refused.stderr
    missing = run_cli(["team", "set", "--team", "999999", "--week-start", "0"], env)
    assert missing.returncode == 1 and "no team 999999" in missing.stderr


def test_serve_on_postgresql(fresh_databases: FreshDatabases, tmp_path: Path) -> None:
    env = env_without_database(DATABASE_URL=fresh_databases.create(migrated=False))
    created = json.loads(run_cli(["create-key", "--email", "bo@example.com", "--json"], env).stdout)
    key, team = created["key"], created["team_id"]
    with serve(env, tmp_path) as (base, log):
        with httpx.Client(base_url=base, follow_redirects=False) as http:
            assert http.get("/_health").json() == {"status": "ok"}
            made = http.post(
                f"/api/environments/{team}/dashboards",
                json={"name": "Live"},
                headers={"Authorization": f"Bearer {key}"},
            )
            assert made.status_code == 201, made.text
            for path in (
                f"/api/projects/{team}/dashboards/{made.json()['id']}",
                f"/api/projects/{team}/dashboards/{made.json()['id']}/",
            ):
                got = http.get(path, params={"personal_api_key": key})
                assert got.status_code == 200 and got.json()["name"] == "Live"
        time.sleep(0.3)
        logged = log.read_text()
    assert f"GET /api/projects/{team}/dashboards/" in logged
    assert key not in logged and key[4:] not in logged


@pytest.mark.parametrize("launcher", ["tilecast", "uvicorn"])
def test_no_log_line_carries_a_query_string_or_a_share_token(
    fresh_databases: FreshDatabases, tmp_path: Path, launcher: str
) -> None:
    env = env_without_database(DATABASE_URL=fresh_databases.create(migrated=False), TILECAST_LOG_LEVEL="INFO")
    created = json.loads(run_cli(["create-key", "--email", "di@example.com", "--json"], env).stdout)
    key, team = created["key"], created["team_id"]
    token = "s3cr3t-share-token-value"
    with serve(env, tmp_path, launcher=launcher) as (base, log):
        with httpx.Client(base_url=base) as http:
            listed = http.get(f"/api/projects/{team}/dashboards/", params={"personal_api_key": key, "x": "1"})
            assert listed.status_code == 200
            assert http.get(f"/shared/{token}", params={"personal_api_key": key}).status_code == 404
            assert http.get(f"/embedded/{token}/").status_code == 404
            sent = http.post(
                "/batch/",
                json={"api_key": created["project_api_key"], "batch": [{"event": "e", "distinct_id": "d"}]},
                params={"ver": "1.2.3"},
                headers={"X-Forwarded-For": "203.0.113.9"},
            )
            assert sent.status_code == 200
        time.sleep(0.3)
        logged = log.read_text()
    assert f"/api/projects/{team}/dashboards/" in logged  # requests are logged...
    assert "/shared/s3cr…" in logged
    assert key not in logged and key[4:] not in logged  # ...but never their keys,
    assert "?" not in logged and "ver=" not in logged  # query strings,
    assert token not in logged and token[4:] not in logged  # or share tokens
    if launcher == "tilecast":
        # No proxy is configured: a local peer's X-Forwarded-For is not believed.
        assert _stored_ips(env["DATABASE_URL"]) == ["127.0.0.1"]


def _stored_ips(url: str) -> list[str]:
    async def read() -> list[str]:
        conn = await asyncpg.connect(url)
        try:
            return [r[0] for r in await conn.fetch("SELECT properties->>'$ip' FROM events")]
        finally:
            await conn.close()

    return asyncio.run(read())


@pytest.mark.parametrize("workers", [1, 2])
def test_serve_on_the_embedded_server_stops_it_on_sigterm(tmp_path: Path, workers: int) -> None:
    data_dir = tmp_path / "data"
    env = env_without_database(TILECAST_DATA_DIR=str(data_dir))
    created = run_cli(["create-key", "--email", "cy@example.com", "--json"], env, cwd=tmp_path)
    assert created.returncode == 0, created.stderr
    key, team = json.loads(created.stdout)["key"], json.loads(created.stdout)["team_id"]
    pgdata = data_dir / "pgdata"
    # A handle left behind by a killed process must not keep the server alive after we stop.
    (pgdata / ".handle_pids.json").write_text(json.dumps([_dead_pid()]))

    with serve(env, tmp_path, workers=workers) as (base, _):
        headers = {"Authorization": f"Bearer {key}"}
        for i in range(6):
            r = httpx.post(
                f"{base}/api/environments/{team}/dashboards/", json={"name": f"d{i}"}, headers=headers
            )
            assert r.status_code == 201, r.text
        listed = httpx.get(f"{base}/api/environments/{team}/dashboards/", headers=headers).json()
        assert listed["count"] == 6
        postmaster = psutil.Process(int((pgdata / "postmaster.pid").read_text().split()[0]))
        assert postmaster.is_running()

    # `serve` (left by SIGTERM) was the last handle: the embedded server has stopped.
    postmaster.wait(timeout=30)
    assert not (pgdata / "postmaster.pid").exists()


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.mark.parametrize("args", [["create-key"], ["create-key", "--email", "not-an-email"], ["frobnicate"]])
def test_cli_rejects_bad_arguments(args: list[str]) -> None:
    result = run_cli(args, env_without_database(DATABASE_URL="postgresql://nobody@127.0.0.1:1/none"))
    assert result.returncode != 0


async def _current_team(database_url: str, user_id: int) -> int | None:
    conn = await asyncpg.connect(database_url)
    try:
        found: int | None = await conn.fetchval("SELECT current_team_id FROM app_user WHERE id = $1", user_id)
        return found
    finally:
        await conn.close()


def test_keys_list_roll_and_revoke(fresh_databases: FreshDatabases) -> None:
    database_url = fresh_databases.create(migrated=False)
    env = env_without_database(DATABASE_URL=database_url)
    first = json.loads(
        run_cli(["create-key", "--email", "kim@example.com", "--label", "ci", "--json"], env).stdout
    )
    assert asyncio.run(_current_team(database_url, first["user_id"])) == first["team_id"]
    second = json.loads(
        run_cli(
            [
                "create-key",
                "--email",
                "kim@example.com",
                "--team",
                "Ops",
                "--scopes",
                "dashboard:read",
                "--json",
            ],
            env,
        ).stdout
    )
    # `create-key` makes the team it names the user's current one (what `@current` means).
    assert asyncio.run(_current_team(database_url, first["user_id"])) == second["team_id"]
    run_cli(["create-key", "--email", "lee@example.com"], env)

    listed = run_cli(["keys", "list", "--email", "kim@example.com", "--json"], env)
    assert listed.returncode == 0, listed.stderr
    keys = json.loads(listed.stdout)
    assert [k["mask_value"] for k in keys] == [f"phx_...{second['key'][-4:]}", f"phx_...{first['key'][-4:]}"]
    assert [(k["label"], k["scopes"], k["email"]) for k in keys] == [
        ("", ["dashboard:read"], "kim@example.com"),
        ("ci", ["*"], "kim@example.com"),
    ]
    plain = run_cli(["keys", "list"], env).stdout.strip().splitlines()
    assert len(plain) == 3
    assert plain[0].split("\t") == [
        keys[0]["id"],
        keys[0]["mask_value"],
        "kim@example.com",
        "",
        "dashboard:read",
    ]

    rolled = run_cli(["keys", "roll", keys[1]["id"]], env)
    assert rolled.returncode == 0, rolled.stderr
    new_key = rolled.stdout.strip()
    assert new_key.startswith("phx_") and new_key != first["key"] and "\n" not in new_key
    after = json.loads(run_cli(["keys", "list", "--email", "kim@example.com", "--json"], env).stdout)
    assert after[1]["mask_value"] == f"phx_...{new_key[-4:]}" and after[1]["last_rolled_at"] is not None
    as_json = json.loads(run_cli(["keys", "roll", keys[1]["id"], "--json"], env).stdout)
    assert set(as_json) == {"key", "id", "user_id"} and as_json["user_id"] == first["user_id"]

    revoked = run_cli(["keys", "revoke", keys[0]["id"]], env)
    assert revoked.returncode == 0 and revoked.stdout == ""
    assert [
        k["id"]
        for k in json.loads(run_cli(["keys", "list", "--email", "kim@example.com", "--json"], env).stdout)
    ] == [keys[1]["id"]]
    for command in (["keys", "revoke", keys[0]["id"]], ["keys", "roll", "nope"]):
        unknown = run_cli(command, env)
        assert unknown.returncode == 1 and "error: no key" in unknown.stderr, command
    assert run_cli(["keys", "list", "--email", "nobody@example.com"], env).stdout == ""
