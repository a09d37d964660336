"""The `tilecast` command: serve, migrate, create-key, keys, team, demo, prune-events, migrate-events (a
contract: tests and tools rely on it). Messages go to stderr through logging, in the format of
`TILECAST_LOG_FORMAT`; results go to stdout."""

import argparse
import asyncio
import json
import logging
import os
import re
import shutil
import signal
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from types import FrameType
from typing import TYPE_CHECKING

from app.config import get_settings
from app.logs import configure_logging, logging_config

if TYPE_CHECKING:
    from app.clickhouse.client import ClickHouse
    from app.demo import DemoResult
    from app.models import PersonalAPIKey

_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

log = logging.getLogger("tilecast.cli")


@contextmanager
def database_url() -> Iterator[str]:
    """DATABASE_URL, or the embedded server started for as long as the command runs.

    The URL is exported so that uvicorn workers reach the same server without starting their own.
    """
    from app.migrations import describe_database

    settings = get_settings()
    if settings.database_url:
        url = settings.database_url
        facts = describe_database(url)
        log.info("database: %s (PostgreSQL %s)", facts.safe_url, facts.server_version)
        yield url
        return
    from app.embedded import EmbeddedPostgres

    embedded = EmbeddedPostgres(settings.data_dir)
    url = embedded.start()
    os.environ["DATABASE_URL"] = url
    get_settings.cache_clear()
    try:
        facts = describe_database(url)
        log.info("database: the embedded PostgreSQL %s, data in %s", facts.server_version, embedded.pgdata)
        yield url
    finally:
        embedded.stop()


def _migrate(url: str, clickhouse: bool = False) -> None:
    """PostgreSQL's schema (and SQL insights' roles); with `clickhouse`, ClickHouse's tables too when it is
    the events store (`migrate` and `serve` only: the other commands leave chdb, one process only, alone)."""
    from app.migrations import describe_database, setup_sql_sandbox, upgrade

    upgrade(url)
    log.info("database schema: at migration %s (the latest)", describe_database(url).revision)
    missing = setup_sql_sandbox(url)
    if missing is not None:
        log.warning("SQL insights are unavailable until set up: %s (see docs/sql-insights.md)", missing)
    if clickhouse and get_settings().events_backend == "clickhouse":
        _migrate_clickhouse(url)


def _migrate_clickhouse(url: str | None = None) -> None:
    from app.clickhouse.client import describe, open_clickhouse
    from app.clickhouse.schema import latest_version, migrate

    settings = get_settings()

    async def run() -> list[int]:
        client = open_clickhouse(settings.clickhouse_url, settings.data_dir)
        try:
            applied = await migrate(client, settings.clickhouse_cluster)
            if settings.clickhouse_url and url is not None:
                await _clickhouse_team_users(url, client)
            return applied
        finally:
            await client.close()

    applied = asyncio.run(run())
    log.info(
        "events: in ClickHouse (%s), schema at migration %d%s",
        describe(settings.clickhouse_url, settings.data_dir, settings.clickhouse_cluster),
        latest_version(),
        f" (applied {', '.join(map(str, applied))})" if applied else "",
    )


async def _clickhouse_team_users(url: str, client: "ClickHouse") -> None:
    """SQL insights' per-team ClickHouse users on a server (`app.clickhouse.users`), for every team."""
    from urllib.parse import urlsplit

    from sqlalchemy.ext.asyncio import create_async_engine

    from app.clickhouse.users import setup_team_users, teams_and_secret
    from app.db import async_url

    settings = get_settings()
    engine = create_async_engine(async_url(url))
    try:
        async with engine.begin() as conn:
            teams, secret = await conn.run_sync(teams_and_secret, settings)
    finally:
        await engine.dispose()
    owner = urlsplit(settings.clickhouse_url or "").username or "default"
    count = await setup_team_users(client, teams, secret, settings, owner)
    log.info("SQL insights on ClickHouse: %d teams' users set up", count)


def cmd_migrate(_: argparse.Namespace) -> int:
    from app.clickhouse.client import ClickHouseError

    with database_url() as url:
        try:
            _migrate(url, clickhouse=True)
        except ClickHouseError as exc:
            log.error("ClickHouse: %s", exc)
            return 1
    return 0


def _check_schema(url: str) -> bool:
    """With `--no-migrate`: the schema must be the code's (or newer: hosts still on the previous release
    keep serving while a newer one rolls out, migrated first)."""
    from app.migrations import describe_database, schema_status

    revision = describe_database(url).revision
    status = schema_status(revision)
    if status == "current":
        log.info("database schema: at migration %s (the latest; not migrated: --no-migrate)", revision)
        return True
    if status == "newer":
        log.warning(
            "database schema: at migration %s, newer than this release knows; serving anyway", revision
        )
        return True
    log.error(
        "database schema: at migration %s, older than this release needs: run `tilecast migrate` first",
        revision or "none",
    )
    return False


def _check_clickhouse_schema() -> bool:
    """With `--no-migrate`: ClickHouse's tables must be at this release's latest migration (or newer)."""
    from app.clickhouse.client import ClickHouseError, describe, open_clickhouse
    from app.clickhouse.schema import applied_versions, latest_version

    settings = get_settings()

    async def read() -> set[int]:
        client = open_clickhouse(settings.clickhouse_url, settings.data_dir)
        try:
            return await applied_versions(client)
        finally:
            await client.close()

    try:
        applied = asyncio.run(read())
    except ClickHouseError as exc:
        log.error("ClickHouse: %s (run `tilecast migrate` first)", str(exc)[:500])
        return False
    where = describe(settings.clickhouse_url, settings.data_dir, settings.clickhouse_cluster)
    if latest_version() in applied:
        log.info("events: in ClickHouse (%s), schema at migration %d", where, max(applied))
        return True
    log.error("ClickHouse schema (%s): older than this release needs: run `tilecast migrate` first", where)
    return False


@contextmanager
def _metrics_directory() -> Iterator[None]:
    """Every worker's metrics in one fresh directory (prometheus-client's multiprocess mode), removed at
    exit; an operator's own PROMETHEUS_MULTIPROC_DIR is used as is."""
    from app.metrics import MULTIPROC_ENV

    if os.environ.get(MULTIPROC_ENV):
        yield
        return
    directory = tempfile.mkdtemp(prefix="tilecast-metrics-")
    os.environ[MULTIPROC_ENV] = directory
    try:
        yield
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    settings = get_settings()
    clickhouse = settings.events_backend == "clickhouse"
    if clickhouse and not settings.clickhouse_url and args.workers > 1:
        log.error(
            "--workers %d: the embedded ClickHouse (chdb, used when TILECAST_CLICKHOUSE_URL is unset) serves "
            "one process only; run one worker, or set TILECAST_CLICKHOUSE_URL to a ClickHouse server",
            args.workers,
        )
        return 2
    if clickhouse:
        try:
            import chdb  # noqa: F401
            import clickhouse_connect  # noqa: F401
        except ImportError:
            log.error(
                "TILECAST_EVENTS_BACKEND=clickhouse needs the ClickHouse extra: "
                'pip install -e ".[clickhouse]" (in the checkout)'
            )
            return 2
    with database_url() as url, _metrics_directory():
        if args.no_migrate:
            if not _check_schema(url) or (clickhouse and not _check_clickhouse_schema()):
                return 1
        else:
            from app.clickhouse.client import ClickHouseError

            try:
                _migrate(url, clickhouse=True)
            except ClickHouseError as exc:
                log.error("ClickHouse: %s", exc)
                return 1
        if not clickhouse:
            log.info("events: in PostgreSQL")
        if settings.metrics_port is not None:
            from app.metrics import serve_metrics_port

            serve_metrics_port(settings.metrics_host, settings.metrics_port)
            log.info("metrics: http://%s:%d/metrics", settings.metrics_host, settings.metrics_port)
        elif settings.metrics_token is not None:
            log.info("metrics: /metrics, with the bearer token of TILECAST_METRICS_TOKEN")
        log.info(
            "listening on http://%s:%d with %d worker%s",
            args.host,
            args.port,
            args.workers,
            "" if args.workers == 1 else "s",
        )
        uvicorn.run(
            "app.main:app",
            host=args.host,
            port=args.port,
            workers=args.workers,
            # The app logs each request itself, without the query string (it may carry an API key).
            access_log=False,
            # The app reads forwarded headers itself, from TILECAST_TRUSTED_PROXIES only.
            proxy_headers=False,
            log_level=settings.log_level.lower(),
            log_config=logging_config(settings.log_level, settings.log_format),
        )
    return 0


def cmd_create_key(args: argparse.Namespace) -> int:
    from app.auth.keys import parse_scopes

    if not _EMAIL_RE.match(args.email):
        print(f"error: not an email address: {args.email!r}", file=sys.stderr)
        return 2
    try:
        scopes = parse_scopes(args.scopes)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    with database_url() as url:
        _migrate(url)
        created = asyncio.run(_create_key(url, args.email, args.team, scopes, args.label))
    if args.json:
        print(json.dumps(created))
    else:
        print(created["key"])
    return 0


async def _create_key(
    url: str, email: str, team: str | None, scopes: list[str], label: str
) -> dict[str, object]:
    from app.accounts import create_key
    from app.db import create_engine, create_sessionmaker

    engine = create_engine(url, get_settings())
    try:
        async with create_sessionmaker(engine)() as session, session.begin():
            created = await create_key(session, email, team, scopes, label)
            return {
                "key": created.key,
                "user_id": created.user.id,
                "user_uuid": str(created.user.uuid),
                "team_id": created.team.id,
                "project_api_key": created.team.api_token,
            }
    finally:
        await engine.dispose()


def cmd_keys(args: argparse.Namespace) -> int:
    with database_url() as url:
        _migrate(url)
        code, out = asyncio.run(_keys(url, args))
    if out is not None:
        print(out)
    return code


def _key_json(key: "PersonalAPIKey", email: str) -> dict[str, object]:
    def when(value: datetime | None) -> str | None:
        return None if value is None else value.isoformat()

    return {
        "id": key.id,
        "label": key.label,
        "mask_value": key.mask_value,
        "user_id": key.user_id,
        "email": email,
        "scopes": key.scopes or ["*"],
        "scoped_teams": key.scoped_teams or [],
        "scoped_organizations": key.scoped_organizations or [],
        "created_at": when(key.created_at),
        "last_used_at": when(key.last_used_at),
        "last_rolled_at": when(key.last_rolled_at),
    }


async def _keys(url: str, args: argparse.Namespace) -> tuple[int, str | None]:
    """`keys list` prints one line per key (id, mask, email, label, scopes, tab-separated) or, with
    `--json`, one JSON array; `keys roll` prints the new key alone (or a JSON object); `keys revoke` prints
    nothing. An unknown key id exits with 1."""
    from app.db import create_engine, create_sessionmaker
    from app.keys import repository, service

    engine = create_engine(url, get_settings())
    try:
        async with create_sessionmaker(engine)() as session, session.begin():
            if args.keys_command == "list":
                found = await repository.list_keys_with_emails(session, args.email)
                if args.json:
                    return 0, json.dumps([_key_json(key, email) for key, email in found])
                lines = [
                    "\t".join((k.id, k.mask_value, email, k.label, ",".join(k.scopes or ["*"])))
                    for k, email in found
                ]
                return 0, "\n".join(lines) if lines else None
            key = await repository.get_key(session, None, args.id)
            if key is None:
                print(f"error: no key {args.id}", file=sys.stderr)
                return 1, None
            if args.keys_command == "revoke":
                await repository.delete_key(session, key)
                print(f"revoked key {args.id}", file=sys.stderr)
                return 0, None
            value = await service.roll(session, key)
            if args.json:
                return 0, json.dumps({"key": value, "id": key.id, "user_id": key.user_id})
            return 0, value
    finally:
        await engine.dispose()


DEMO_BASE_URL = "http://127.0.0.1:8000"


def cmd_demo(args: argparse.Namespace) -> int:
    if args.events < 0:
        print("error: --events must be 0 or more", file=sys.stderr)
        return 2
    base = args.url.rstrip("/")
    if not re.match(r"^https?://[^/\s]+(/\S*)?$", base):
        print(f"error: --url is not an http(s) URL: {args.url!r}", file=sys.stderr)
        return 2
    if get_settings().events_backend == "clickhouse":
        print(
            "error: `tilecast demo` stores its events in PostgreSQL only. With the ClickHouse backend, run "
            "it with TILECAST_EVENTS_BACKEND=postgres, then copy its events: tilecast migrate-events --to "
            "clickhouse",
            file=sys.stderr,
        )
        return 2
    with database_url() as url:
        _migrate(url)
        result = asyncio.run(_demo(url, args.events))
    dashboard_url = f"{base}/api/environments/{result.team_id}/dashboards/{result.dashboard_id}/"
    print(
        f"{'created' if result.dashboard_created else 'reused'} the demo dashboard: "
        f"{result.tiles} tiles; team {result.team_id} holds {result.events_total:,} events",
        file=sys.stderr,
    )
    for error in result.errors:
        print(f"warning: tile {error}", file=sys.stderr)
    print(f"API key: {result.key}")
    print(f"Project API key (for capture): {result.project_api_key}")
    print(f"Dashboard: {dashboard_url}")
    print(f"Page: {base}/project/{result.team_id}/dashboard/{result.dashboard_id}")
    if _answers(base):
        print(f"Tilecast answers at {base}: try it now.")
    else:
        print(f"Nothing answers at {base} yet: start it with `tilecast serve` (or pass --url).")
    print(f"Try it, with `tilecast serve` running at {base}:")
    print(f"open {base}/ in a browser, sign in with the API key, then open the page above; or")
    print(f"curl -s {dashboard_url} -H 'Authorization: Bearer {result.key}'")
    return 1 if result.errors else 0


def _answers(base: str) -> bool:
    """Whether a Tilecast answers its health check at `base`."""
    import httpx

    try:
        return bool(httpx.get(f"{base}/_health", timeout=3).json() == {"status": "ok"})
    except (httpx.HTTPError, ValueError):
        return False


async def _demo(url: str, events: int) -> "DemoResult":
    from app.db import create_engine, create_sessionmaker
    from app.demo import run_demo

    engine = create_engine(url, get_settings())
    try:
        return await run_demo(create_sessionmaker(engine), events)
    finally:
        await engine.dispose()


def cmd_team_set(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from app.errors import ValidationFailed
    from app.teams.schemas import TeamUpdate
    from app.teams.service import check_test_account_filters

    values: dict[str, object] = {}
    if args.timezone is not None:
        values["timezone"] = args.timezone
    if args.week_start is not None:
        values["week_start_day"] = args.week_start
    if args.test_account_filters is not None:
        try:
            values["test_account_filters"] = json.loads(args.test_account_filters)
        except ValueError as exc:
            print(f"error: --test-account-filters is not JSON: {exc}", file=sys.stderr)
            return 2
    if not values:
        print("error: nothing to set (--timezone, --week-start or --test-account-filters)", file=sys.stderr)
        return 2
    try:
        update = TeamUpdate.model_validate(values)
        if update.test_account_filters is not None:
            check_test_account_filters(update.test_account_filters)
    except ValidationError as exc:
        first = exc.errors()[0]
        print(f"error: {'.'.join(map(str, first['loc']))}: {first['msg']}", file=sys.stderr)
        return 2
    except ValidationFailed as exc:
        print(f"error: {exc.attr}: {exc.detail}", file=sys.stderr)
        return 2
    with database_url() as url:
        _migrate(url)
        team = asyncio.run(_team_set(url, args.team, update.model_dump(exclude_unset=True)))
    if team is None:
        print(f"error: no team {args.team}", file=sys.stderr)
        return 1
    print(json.dumps(team))
    return 0


async def _team_set(url: str, team_id: int, values: dict[str, object]) -> dict[str, object] | None:
    from sqlalchemy.exc import NoResultFound

    from app.db import create_engine, create_sessionmaker
    from app.teams import repository

    engine = create_engine(url, get_settings())
    try:
        async with create_sessionmaker(engine)() as session, session.begin():
            try:
                team = await repository.update_team(session, team_id, values)
            except NoResultFound:
                return None
            return {
                "id": team.id,
                "timezone": team.timezone,
                "week_start_day": team.week_start_day,
                "test_account_filters": team.test_account_filters,
            }
    finally:
        await engine.dispose()


def _parse_before(value: str) -> datetime:
    """An ISO date (midnight UTC) or date and time (UTC unless it says otherwise)."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO date or date and time: {value!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def cmd_prune_events(args: argparse.Namespace) -> int:
    if args.batch_size < 1:
        print("error: --batch-size must be 1 or more", file=sys.stderr)
        return 2
    from app.clickhouse.client import ClickHouseError

    with database_url() as url:
        _migrate(url)
        try:
            deleted = asyncio.run(_prune_events(url, args.before, args.team, args.batch_size))
        except ClickHouseError as exc:
            log.error("ClickHouse: %s", str(exc)[:500])
            return 1
    where = f"team {args.team}" if args.team is not None else "every team"
    log.info("deleted %d events of %s timed before %s", deleted, where, args.before.isoformat())
    print(json.dumps({"deleted": deleted}))
    return 0


async def _prune_events(url: str, before: datetime, team: int | None, batch_size: int) -> int:
    from app.db import create_engine, create_sessionmaker
    from app.ingestion.retention import prune_events

    settings = get_settings()
    engine = create_engine(url, settings)
    clickhouse = None
    if settings.events_backend == "clickhouse":
        from app.clickhouse.client import open_clickhouse

        clickhouse = open_clickhouse(settings.clickhouse_url, settings.data_dir)
    try:
        return await prune_events(
            create_sessionmaker(engine), before, team, batch_size, clickhouse, settings.clickhouse_cluster
        )
    finally:
        await engine.dispose()
        if clickhouse is not None:
            await clickhouse.close()


def cmd_migrate_events(args: argparse.Namespace) -> int:
    from app.clickhouse.client import ClickHouseError

    if args.chunk_size < 1:
        print("error: --chunk-size must be 1 or more", file=sys.stderr)
        return 2
    with database_url() as url:
        _migrate(url)
        try:
            summary = asyncio.run(_migrate_events(url, args.since, args.chunk_size))
        except ClickHouseError as exc:
            log.error("ClickHouse: %s", str(exc)[:500])
            log.error("stopped; run the same command again to resume after the last copied chunk")
            return 1
    print(json.dumps(summary))
    return 0


async def _migrate_events(url: str, since: datetime | None, chunk_size: int) -> dict[str, object]:
    import time

    import asyncpg

    from app.clickhouse.client import describe, open_clickhouse
    from app.clickhouse.migrate_events import (
        Progress,
        copy_events,
        counts,
        describe_progress,
        resume_point,
    )
    from app.clickhouse.schema import migrate
    from app.db import async_url

    settings = get_settings()
    client = open_clickhouse(settings.clickhouse_url, settings.data_dir)
    dsn = async_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    postgres = await asyncpg.connect(dsn)
    started = time.monotonic()

    def report(progress: Progress) -> None:
        log.info("%s", describe_progress(progress, started))

    try:
        await migrate(client, settings.clickhouse_cluster)
        log.info(
            "copying events%s into ClickHouse (%s)",
            f" timed from {since.isoformat()}" if since else "",
            describe(settings.clickhouse_url, settings.data_dir, settings.clickhouse_cluster),
        )
        resumed = await resume_point(client, since)
        if resumed is not None:
            log.info("resuming the previous run, after team %d's event %s", *resumed)
        progress = await copy_events(postgres, client, since, chunk_size, report)
        summary: dict[str, object] = {
            "copied": progress.inserted,
            "already_in_clickhouse": progress.skipped,
            "persons": progress.persons,
            **await counts(postgres, client, since),
        }
    finally:
        await postgres.close()
        await client.close()
    log.info("done: %d events copied, %d were there already", progress.inserted, progress.skipped)
    return summary


class _Help(argparse.ArgumentDefaultsHelpFormatter):
    """Every option's default in `--help`; not for flags, required options, or options without one (their
    help says what leaving them out means)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.required or action.default in (None, False) or action.default is argparse.SUPPRESS:
            return action.help
        return super()._get_help_string(action)


def build_parser() -> argparse.ArgumentParser:
    from app.clickhouse.migrate_events import CHUNK_SIZE
    from app.ingestion.retention import PRUNE_BATCH_SIZE

    settings = get_settings()
    parser = argparse.ArgumentParser(
        prog="tilecast", description="Self-hosted, PostHog-compatible dashboards.", formatter_class=_Help
    )
    sub = parser.add_subparsers(dest="command", required=True)

    def command(name: str, **kwargs: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, formatter_class=_Help, **kwargs)  # type: ignore[arg-type]

    serve = command("serve", help="migrate the database, then serve the API")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve.add_argument("--port", type=int, default=8000, help="port to listen on")
    serve.add_argument("--workers", type=int, default=1, help="worker processes")
    serve.add_argument(
        "--no-migrate",
        action="store_true",
        help="do not migrate at start (run `tilecast migrate` once, before starting the hosts)",
    )
    serve.set_defaults(func=cmd_serve)

    migrate = command("migrate", help="bring the database schema up to date (safe on many hosts at once)")
    migrate.set_defaults(func=cmd_migrate)

    key = command("create-key", help="create a personal API key (and its user, organization and team)")
    key.add_argument("--email", required=True, help="the key's user, created when missing")
    key.add_argument("--team", default=None, help="team name; created when missing")
    key.add_argument("--scopes", default="*", help='comma-separated scopes, e.g. "dashboard:read", or "*"')
    key.add_argument("--label", default="", help="a label for the key")
    key.add_argument("--json", action="store_true", help="print a JSON object instead of the bare key")
    key.set_defaults(func=cmd_create_key)

    keys = command("keys", help="list, revoke or roll personal API keys")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    keys_list = keys_sub.add_parser(
        "list", help="list keys (their masks, never the keys)", formatter_class=_Help
    )
    keys_list.add_argument("--email", default=None, help="only this user's keys")
    keys_list.add_argument("--json", action="store_true", help="print a JSON array")
    keys_revoke = keys_sub.add_parser("revoke", help="delete a key: it stops working, its sessions end")
    keys_revoke.add_argument("id", help="the key's id (see `keys list`)")
    keys_roll = keys_sub.add_parser(
        "roll", help="give a key a new value and print it; the old one stops working"
    )
    keys_roll.add_argument("id", help="the key's id (see `keys list`)")
    keys_roll.add_argument("--json", action="store_true", help="print a JSON object instead of the bare key")
    keys.set_defaults(func=cmd_keys)

    team = command("team", help="a team's settings")
    team_sub = team.add_subparsers(dest="team_command", required=True)
    team_set = team_sub.add_parser(
        "set", help="change a team's timezone, week start or test-account filters", formatter_class=_Help
    )
    team_set.add_argument("--team", type=int, required=True, help="the team's id")
    team_set.add_argument("--timezone", default=None, help='an IANA time zone, e.g. "Europe/Paris"')
    team_set.add_argument("--week-start", type=int, choices=(0, 1), default=None, help="0 Sunday, 1 Monday")
    team_set.add_argument(
        "--test-account-filters",
        default=None,
        metavar="JSON",
        help='a JSON list of property filters, e.g. \'[{"key": "email", "type": "person", '
        '"operator": "not_icontains", "value": "@example.com"}]\'',
    )
    team_set.set_defaults(func=cmd_team_set)

    demo = command(
        "demo", help="seed a demo team with synthetic events and a demo dashboard (safe to run again)"
    )
    demo.add_argument("--events", type=int, default=100_000, help="events to add")
    demo.add_argument(
        "--url",
        default=settings.public_url or DEMO_BASE_URL,
        help="the server's address, for the links printed (TILECAST_PUBLIC_URL when set)",
    )
    demo.set_defaults(func=cmd_demo)

    prune = command(
        "prune-events",
        help="delete old events in small batches (capture and queries go on meanwhile); persons are kept",
    )
    prune.add_argument(
        "--before",
        type=_parse_before,
        required=True,
        metavar="DATE",
        help="delete events timed before this ISO date or date and time (UTC unless it says otherwise)",
    )
    prune.add_argument(
        "--team", type=int, default=None, help="only this team's events (default: every team's)"
    )
    prune.add_argument(
        "--batch-size", type=int, default=PRUNE_BATCH_SIZE, help="events deleted per transaction"
    )
    prune.set_defaults(func=cmd_prune_events)

    copy = command(
        "migrate-events",
        help="copy PostgreSQL's events and persons into ClickHouse (resumable; never copies an event twice)",
    )
    copy.add_argument("--to", choices=("clickhouse",), required=True, help="where to copy the events")
    copy.add_argument(
        "--since",
        type=_parse_before,
        default=None,
        metavar="DATE",
        help="only events timed from this ISO date or date and time (default: all)",
    )
    copy.add_argument("--chunk-size", type=int, default=CHUNK_SIZE, help="events read and inserted at a time")
    copy.set_defaults(func=cmd_migrate_events)
    return parser


def _exit_on_sigterm(signum: int, _frame: FrameType | None) -> None:
    # uvicorn shuts down gracefully on SIGTERM, then raises the signal again. With the default action that
    # kills the process before `database_url()` releases the embedded PostgreSQL, orphaning it; as an
    # exception, every `finally` runs and the last user stops the server.
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_format)
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
