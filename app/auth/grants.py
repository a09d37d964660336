"""Sharing grants: the second kind of principal. A grant opens one shared dashboard (and its team's themes)
for GET/HEAD requests, to whoever holds the share's token or, for a password-protected share, only a JWT
issued when one of its passwords was given.

The JWT (HS256, PyJWT) names the share's token, its team and the password it was issued for; it is refused
once that token's grace period ends or that password is deleted, because both are checked on every request.
Its key is `TILECAST_SHARING_JWT_SECRET`, or one generated on first use and stored in PostgreSQL
(`app_secret`), so that every worker and host agrees. Neither is ever logged.
"""

import asyncio
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import jwt
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.auth import repository
from app.config import Settings
from app.models import SharingConfiguration, Team

JWT_AUDIENCE = "tilecast:sharing-password-protected"
JWT_LIFETIME = timedelta(hours=24)
COOKIE_NAME = "posthog_sharing_token"
QUERY_PARAMETER = "sharing_access_token"
_SECRET_NAME = "sharing_jwt"
# A JWT is three base64url parts; a share token is one (PostHog's `secrets.token_urlsafe`).
_JWT_SHAPE = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$")


def new_access_token() -> str:
    """A share token: 22 random bytes (176 bits), URL-safe, as PostHog's."""
    return secrets.token_urlsafe(22)


def looks_like_jwt(value: str) -> bool:
    return len(value) < 4096 and _JWT_SHAPE.match(value) is not None


@dataclass(frozen=True)
class SharingGrant:
    """What a share lets its holder read: one dashboard of one team. `password_id` when opened by a JWT."""

    configuration_id: int
    dashboard_id: int
    team_id: int
    access_token: str
    password_id: int | None
    settings: dict[str, Any] | None


@dataclass(frozen=True)
class OpenedShare:
    """A live share found by its token, and whether the request may see its dashboard (`grant`) or only the
    unlock page (`grant is None`: password-protected, and no valid JWT came with the request)."""

    configuration: SharingConfiguration
    team: Team
    grant: SharingGrant | None


class JwtSecret:
    """The process's copy of the JWT key: the configured one, or the one stored in PostgreSQL, read (or
    generated and stored, in a short transaction of its own) on first use."""

    def __init__(self, settings: Settings) -> None:
        configured = settings.sharing_jwt_secret
        self._value: str | None = configured.get_secret_value() if configured is not None else None
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        return "JwtSecret(<hidden>)"

    async def get(self, sessionmaker: async_sessionmaker[AsyncSession]) -> str:
        if self._value is None:
            async with self._lock:
                if self._value is None:
                    async with sessionmaker() as session, session.begin():
                        self._value = await repository.get_or_create_secret(
                            session, _SECRET_NAME, secrets.token_urlsafe(48)
                        )
        return self._value


def issue_jwt(secret: str, configuration: SharingConfiguration, password_id: int, now: datetime) -> str:
    claims = {
        "share_password_id": password_id,
        "team_id": configuration.team_id,
        "access_token": configuration.access_token,
        "aud": JWT_AUDIENCE,
        "iat": int(now.timestamp()),
        "exp": int((now + JWT_LIFETIME).timestamp()),
    }
    return jwt.encode(claims, secret, algorithm="HS256")


def read_jwt(secret: str, value: str, now: datetime) -> tuple[str, int] | None:
    """The share token and password id a valid, unexpired JWT names; None for anything else. Expiry is checked
    against the app's clock (injectable), not PyJWT's."""
    try:
        claims = jwt.decode(
            value,
            secret,
            algorithms=["HS256"],
            audience=JWT_AUDIENCE,
            options={"verify_exp": False, "require": ["exp", "aud", "access_token", "share_password_id"]},
        )
    except jwt.InvalidTokenError:
        return None
    exp, token, password_id = claims.get("exp"), claims.get("access_token"), claims.get("share_password_id")
    if not isinstance(exp, int) or not isinstance(token, str) or not isinstance(password_id, int):
        return None
    if exp <= now.timestamp():
        return None
    return token, password_id


def _grant(configuration: SharingConfiguration, password_id: int | None) -> SharingGrant:
    return SharingGrant(
        configuration_id=configuration.id,
        dashboard_id=configuration.dashboard_id,
        team_id=configuration.team_id,
        access_token=configuration.access_token,
        password_id=password_id,
        settings=configuration.settings,
    )


async def open_share(
    session: AsyncSession,
    secret: JwtSecret,
    sessionmaker: async_sessionmaker[AsyncSession],
    token: str,
    jwts: list[str],
    now: datetime,
) -> OpenedShare | None:
    """The live share of `token` (None: unknown, disabled, expired or its dashboard deleted). Open without a
    password; password-protected, open only with one of `jwts` issued for this token and a password still
    active. One statement."""
    candidates = [value for value in jwts if looks_like_jwt(value)]
    password_ids = []
    if candidates:
        key = await secret.get(sessionmaker)
        for value in candidates:
            claims = read_jwt(key, value, now)
            if claims is not None and claims[0] == token:
                password_ids.append(claims[1])
    found = await repository.get_live_share(session, token, now, password_ids)
    if found is None:
        return None
    configuration, team, password_id = found
    if not configuration.password_required:
        return OpenedShare(configuration, team, _grant(configuration, None))
    if password_id is not None:
        return OpenedShare(configuration, team, _grant(configuration, password_id))
    return OpenedShare(configuration, team, None)


async def grant_for_api(
    session: AsyncSession,
    secret: JwtSecret,
    sessionmaker: async_sessionmaker[AsyncSession],
    value: str,
    now: datetime,
) -> tuple[SharingGrant, Team] | None:
    """The grant a `sharing_access_token` (a share's token, or a JWT of a password-protected share) carries on
    API requests; None when it carries none (unknown, expired, disabled, revoked, or a protected share's bare
    token)."""
    if looks_like_jwt(value):
        claims = read_jwt(await secret.get(sessionmaker), value, now)
        if claims is None:
            return None
        opened = await open_share(session, secret, sessionmaker, claims[0], [value], now)
    else:
        opened = await open_share(session, secret, sessionmaker, value, [], now)
    if opened is None or opened.grant is None:
        return None
    return opened.grant, opened.team
