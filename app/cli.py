"""The `tilecast` command: serve, migrate, create-key, keys, team, demo (a contract: tests and tools rely on
it)."""

import argparse
import asyncio
import json
import os
import re
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import TYPE_CHECKING

from app.config import get_settings

if TYPE_CHECKING:
    from datetime import datetime

    from app.demo import DemoResult
    from app.models import PersonalAPIKey

_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@contextmanager
def database_url() -> Iterator[str]:
    """DATABASE_URL, or the embedded server started for as long as the command runs.

    The URL is exported so that uvicorn workers reach the same server without starting their own.
    """
    settings = get_settings()
    if settings.database_url:
        yield settings.database_url
        return
    from app.embedded import EmbeddedPostgres

    embedded = EmbeddedPostgres(settings.data_dir)
    url = embedded.start()
    os.environ["DATABASE_URL"] = url
    get_settings.cache_clear()
    try:
        yield url
    finally:
        embedded.stop()


def cmd_migrate(_: argparse.Namespace) -> int:
    from app.migrations import upgrade

    with database_url() as url:
        upgrade(url)
    print("database is up to date", file=sys.stderr)
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from app.migrations import upgrade

    with database_url() as url:
        upgrade(url)
        uvicorn.run(
            "app.main:app",
            host=args.host,
            port=args.port,
            workers=args.workers,
            # The app logs each request itself, without the query string (it may carry an API key).
            access_log=False,
            # The app reads forwarded headers itself, from TILECAST_TRUSTED_PROXIES only.
            proxy_headers=False,
            log_level=get_settings().log_level.lower(),
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
    from app.migrations import upgrade

    with database_url() as url:
        upgrade(url)
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
    from app.migrations import upgrade

    with database_url() as url:
        upgrade(url)
        code, out = asyncio.run(_keys(url, args))
    if out is not None:
        print(out)
    return code


def _key_json(key: "PersonalAPIKey", email: str) -> dict[str, object]:
    def when(value: "datetime | None") -> str | None:
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
    from app.migrations import upgrade

    with database_url() as url:
        upgrade(url)
        result = asyncio.run(_demo(url, args.events))
    dashboard_url = f"{DEMO_BASE_URL}/api/environments/{result.team_id}/dashboards/{result.dashboard_id}/"
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
    print(f"Page: {DEMO_BASE_URL}/project/{result.team_id}/dashboard/{result.dashboard_id}")
    print("Try it, with `tilecast serve` running:")
    print(f"open {DEMO_BASE_URL}/ in a browser, sign in with the API key, then open the page above; or")
    print(f"curl -s {dashboard_url} -H 'Authorization: Bearer {result.key}'")
    return 1 if result.errors else 0


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
    from app.migrations import upgrade

    with database_url() as url:
        upgrade(url)
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tilecast", description="Self-hosted, PostHog-compatible dashboards."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="migrate the database, then serve the API")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1)
    serve.set_defaults(func=cmd_serve)

    migrate = sub.add_parser("migrate", help="bring the database schema up to date")
    migrate.set_defaults(func=cmd_migrate)

    key = sub.add_parser("create-key", help="create a personal API key (and its user, organization and team)")
    key.add_argument("--email", required=True)
    key.add_argument("--team", default=None, help="team name; created when missing")
    key.add_argument("--scopes", default="*", help='comma-separated scopes, e.g. "dashboard:read", or "*"')
    key.add_argument("--label", default="")
    key.add_argument("--json", action="store_true", help="print a JSON object instead of the bare key")
    key.set_defaults(func=cmd_create_key)

    keys = sub.add_parser("keys", help="list, revoke or roll personal API keys")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    keys_list = keys_sub.add_parser("list", help="list keys (their masks, never the keys)")
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

    team = sub.add_parser("team", help="a team's settings")
    team_sub = team.add_subparsers(dest="team_command", required=True)
    team_set = team_sub.add_parser("set", help="change a team's timezone, week start or test-account filters")
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

    demo = sub.add_parser(
        "demo", help="seed a demo team with synthetic events and a demo dashboard (safe to run again)"
    )
    demo.add_argument("--events", type=int, default=100_000, help="events to add (default 100,000)")
    demo.set_defaults(func=cmd_demo)
    return parser


def _exit_on_sigterm(signum: int, _frame: FrameType | None) -> None:
    # uvicorn shuts down gracefully on SIGTERM, then raises the signal again. With the default action that
    # kills the process before `database_url()` releases the embedded PostgreSQL, orphaning it; as an
    # exception, every `finally` runs and the last user stops the server.
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
