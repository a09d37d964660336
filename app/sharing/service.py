"""Sharing use cases: the sharing API of a dashboard, and what its public links serve.

Services never commit, with one exception: an unlock commits its attempt counts before the password check, so
that every worker sees them at once and no counter row stays locked while a password is checked.
"""

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.auth.dependencies import TeamAccess
from app.auth.grants import JwtSecret, OpenedShare, issue_jwt, new_access_token, open_share
from app.config import Settings
from app.dashboards import service as dashboards
from app.dashboards.access import ensure_can_edit
from app.dashboards.schemas import Dashboard
from app.dashboards.views import ViewRecorder
from app.errors import ErrorBody, NotFound, Throttled
from app.models import SharePassword, User
from app.models import SharingConfiguration as ConfigurationModel
from app.query.pool import RenderPool
from app.query.render import RefreshMode
from app.sharing import passwords, repository
from app.sharing.passwords import PasswordChecks
from app.sharing.schemas import (
    FLAGS,
    SharePasswordCreate,
    SharePasswordCreated,
    SharePasswordOut,
    SharingConfiguration,
    SharingUpdate,
    clean_settings,
)
from app.themes.schemas import DataColorTheme
from app.themes.service import visible_themes

logger = logging.getLogger("tilecast.sharing")

GRACE_PERIOD = timedelta(seconds=300)
MAX_ACTIVE_PASSWORDS = 20
MIN_PASSWORD_LENGTH = 8
DASHBOARD_NOT_FOUND = "Dashboard not found."
PASSWORDS_NEED_PROTECTION = "Password protection must be enabled before creating passwords"
PASSWORD_TOO_SHORT = "Password must be at least 8 characters long."
TOO_MANY_PASSWORDS = f"A share can have at most {MAX_ACTIVE_PASSWORDS} active passwords."
PASSWORD_NOT_FOUND = "Password not found"
NOT_PROTECTED = "This share is not password protected."
DELETED_USER = "deleted user"


def _email(user: User | None) -> str:
    return user.email if user is not None else DELETED_USER


def _password_out(password: SharePassword) -> SharePasswordOut:
    return SharePasswordOut(
        id=password.id,
        created_at=password.created_at,
        note=password.note,
        created_by_email=_email(password.created_by),
        is_active=password.is_active,
    )


async def _out(session: AsyncSession, configuration: ConfigurationModel) -> SharingConfiguration:
    active = await repository.active_passwords(session, configuration.id)
    return SharingConfiguration(
        created_at=configuration.created_at,
        enabled=configuration.enabled,
        access_token=configuration.access_token,
        settings=configuration.settings,
        password_required=configuration.password_required,
        share_passwords=[_password_out(p) for p in active],
    )


async def _dashboard(session: AsyncSession, access: TeamAccess, dashboard_id: int, *, editing: bool) -> int:
    """The live dashboard's id (404 "Dashboard not found." otherwise); with `editing`, 403 unless the caller
    may edit it (its restriction level decides, as for the dashboard itself)."""
    try:
        row = await dashboards.get_dashboard_row(session, access, dashboard_id)
    except NotFound:
        raise NotFound(DASHBOARD_NOT_FOUND) from None
    if editing:
        ensure_can_edit(row, access)
    return row.dashboard.id


async def _current_or_new(session: AsyncSession, access: TeamAccess, dashboard_id: int) -> ConfigurationModel:
    found = await repository.current(session, dashboard_id, lock=True)
    if found is None:
        found = await repository.create_current(session, access.team.id, dashboard_id, new_access_token())
    return found


async def get_sharing(session: AsyncSession, access: TeamAccess, dashboard_id: int) -> SharingConfiguration:
    """The current configuration, or the default one (not stored: a new token every time) before the first
    write, as PostHog."""
    await _dashboard(session, access, dashboard_id, editing=False)
    found = await repository.current(session, dashboard_id)
    if found is None:
        return SharingConfiguration(
            created_at=None,
            enabled=False,
            access_token=new_access_token(),
            settings=None,
            password_required=False,
            share_passwords=[],
        )
    return await _out(session, found)


async def update_sharing(
    session: AsyncSession, access: TeamAccess, dashboard_id: int, data: SharingUpdate
) -> SharingConfiguration:
    await _dashboard(session, access, dashboard_id, editing=True)
    given = data.model_fields_set
    settings = clean_settings(data.settings) if "settings" in given else None
    configuration = await _current_or_new(session, access, dashboard_id)
    if "enabled" in given and data.enabled is not None:
        configuration.enabled = data.enabled
    if "password_required" in given and data.password_required is not None:
        configuration.password_required = data.password_required
    if "settings" in given:
        configuration.settings = settings
    await session.flush()
    return await _out(session, configuration)


async def refresh_sharing(
    session: AsyncSession, access: TeamAccess, dashboard_id: int, now: datetime
) -> SharingConfiguration:
    """A new token: the old one keeps working for the grace period (and so do JWTs issued under it), then
    stops. Unlike PostHog, `password_required` and the active passwords carry over to the new token."""
    await _dashboard(session, access, dashboard_id, editing=True)
    old = await _current_or_new(session, access, dashboard_id)
    await repository.expire(session, old.id, now + GRACE_PERIOD)
    new = ConfigurationModel(
        team_id=old.team_id,
        dashboard_id=old.dashboard_id,
        enabled=old.enabled,
        settings=old.settings,
        password_required=old.password_required,
        access_token=new_access_token(),
    )
    session.add(new)
    await session.flush()
    await repository.move_active_passwords(session, old.id, new.id)
    await session.refresh(new, ["created_at"])
    return await _out(session, new)


async def create_password(
    session: AsyncSession,
    access: TeamAccess,
    dashboard_id: int,
    data: SharePasswordCreate,
    checks: PasswordChecks,
) -> SharePasswordCreated:
    await _dashboard(session, access, dashboard_id, editing=True)
    raw = data.raw_password or ""
    if raw.strip() and len(raw) < MIN_PASSWORD_LENGTH:
        raise ErrorBody(400, PASSWORD_TOO_SHORT)
    configuration = await repository.current(session, dashboard_id, lock=True)
    if configuration is None or not configuration.password_required:
        raise ErrorBody(400, PASSWORDS_NEED_PROTECTION)
    if await repository.count_active_passwords(session, configuration.id) >= MAX_ACTIVE_PASSWORDS:
        raise ErrorBody(400, TOO_MANY_PASSWORDS)
    password = raw if raw.strip() else passwords.generate()
    hashed = await checks.run(passwords.hash_password, password)
    row = SharePassword(
        sharing_configuration_id=configuration.id,
        password_hash=hashed,
        created_by_id=access.user.id,
        note=data.note or "",
    )
    session.add(row)
    await session.flush()
    await session.refresh(row, ["created_at"])
    return SharePasswordCreated(
        id=row.id,
        password=password,
        note=row.note,
        created_at=row.created_at,
        created_by_email=access.user.email,
    )


async def delete_password(
    session: AsyncSession, access: TeamAccess, dashboard_id: int, password_id: int
) -> None:
    """Deactivates the password: JWTs issued for it stop working at once (every use checks it)."""
    await _dashboard(session, access, dashboard_id, editing=True)
    configuration = await repository.current(session, dashboard_id)
    if configuration is None or not await repository.deactivate_password(
        session, configuration.id, password_id
    ):
        raise ErrorBody(404, PASSWORD_NOT_FOUND)


# --- public links ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Links:
    """What the public routes need from the app."""

    secret: JwtSecret
    sessionmaker: async_sessionmaker[AsyncSession]


async def open_link(
    session: AsyncSession, links: Links, token: str, jwts: list[str], now: datetime
) -> OpenedShare:
    """The live share of a public link (404 when there is none), unlocked or not."""
    opened = await open_share(session, links.secret, links.sessionmaker, token, jwts, now)
    if opened is None:
        raise NotFound()
    return opened


def flags_of(settings: dict[str, Any] | None) -> dict[str, bool]:
    """A share's display settings (`noHeader`, `legend`, ...), each a boolean."""
    return {flag: bool((settings or {}).get(flag)) for flag in FLAGS}


@dataclass
class Exported:
    """A shared dashboard's exported data (PostHog's `exported_data`), its dashboard rendered in shared
    context."""

    kind: str
    access_token: str
    dashboard: Dashboard
    themes: list[DataColorTheme]
    flags: dict[str, bool]


async def exported(
    session: AsyncSession,
    opened: OpenedShare,
    kind: str,
    views: ViewRecorder,
    pool: RenderPool,
    mode: RefreshMode,
    layout_size: str,
) -> Exported:
    """The dashboard in shared context (levels 37/21, refresh modes remapped, no overrides); records the
    access (`last_accessed_at`)."""
    grant = opened.grant
    assert grant is not None
    access = TeamAccess(principal=grant, team=opened.team, membership_level=0)
    dashboard = await dashboards.retrieve_dashboard(
        session, access, grant.dashboard_id, dashboards.NO_OVERRIDES, views, pool, mode, layout_size
    )
    return Exported(
        kind=kind,
        access_token=grant.access_token,
        dashboard=dashboard,
        themes=await visible_themes(session, opened.team.id),
        flags=flags_of(grant.settings),
    )


def _window(now: datetime) -> datetime:
    return now.replace(second=0, microsecond=0)


@dataclass(frozen=True)
class Unlocked:
    jwt: str | None  # None: incorrect password


def _masked(token: str) -> str:
    return token[:4] + "…"


async def unlock(
    session: AsyncSession,
    links: Links,
    checks: PasswordChecks,
    settings: Settings,
    token: str,
    password: str,
    client: str,
    now: datetime,
) -> Unlocked:
    """Check a password for a password-protected share: a JWT when it is one of its active passwords.

    Failed attempts are limited per share and per share and client address, counted in PostgreSQL (429 with
    `Retry-After` until the minute ends). Each attempt is counted before the check and committed at once;
    a successful one is taken back."""
    opened = await open_link(session, links, token, [], now)
    configuration = opened.configuration
    if not configuration.password_required:
        raise ErrorBody(400, NOT_PROTECTED)
    hashes = await repository.password_hashes(session, configuration.id)
    window = _window(now)
    limits = [
        (key, limit)
        for key, limit in (
            (f"t:{configuration.id}", settings.sharing_unlock_limit_per_token),
            (f"a:{configuration.id}:{client}"[:200], settings.sharing_unlock_limit_per_address),
        )
        if limit
    ]
    if limits and (
        await repository.over_limit(session, limits, window)
        or not await repository.count_attempts(session, limits, window)
    ):
        logger.warning("share %s: unlock refused (rate limited) from %s", _masked(token), client)
        raise Throttled(max(1, 60 - (now - window).seconds))
    counted = [key for key, _ in limits]
    # Counts visible to every worker now, their rows unlocked, the connection back in the pool while the
    # password is checked.
    await session.commit()
    matched = await checks.run(passwords.matching, hashes, password) if hashes and password else None
    if matched is None:
        logger.warning("share %s: incorrect password from %s", _masked(token), client)
        return Unlocked(jwt=None)
    await repository.refund_attempts(session, counted, window)
    logger.info("share %s: unlocked from %s", _masked(token), client)
    return Unlocked(jwt=issue_jwt(await links.secret.get(links.sessionmaker), configuration, matched, now))
