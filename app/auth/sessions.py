"""Signed-in viewers' sessions: a personal API key, given once on the sign-in page, read as a cookie.

The cookie holds an opaque random id; its row keeps only the id's hash and the key's id (never the key). A
session is a principal for GET and HEAD only, reading as its key with the key's scopes; explicit credentials
(a key in the header, body or query, a `sharing_access_token`) win over it. The routes that say so
(`scoped(..., session_posts=True)`: `snapshot` and `analyze_refresh_result`) also take a session's POST, when
its `Origin` is this service's own (`same_origin`): no other site's page can make a browser send one.
Deleting the key deletes its sessions (a foreign key); a key rolled after the session began ends it; each
use checks both.
"""

import hashlib
import secrets
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from fastapi import Request
from sqlalchemy import DateTime, String, bindparam, delete, insert, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import get_settings
from app.models import PersonalAPIKey, ViewerSession

COOKIE_NAME = "tilecast_session"
LIFETIME = timedelta(hours=12)
READ_METHODS = ("GET", "HEAD")
# The random id: 256 bits, URL-safe; anything longer or of other characters is no session.
_SECRET_BYTES = 32
MAX_SECRET_CHARS = 100

_KEY_OF_SESSION = (
    select(PersonalAPIKey.secure_value)
    .join(ViewerSession, ViewerSession.key_id == PersonalAPIKey.id)
    .where(
        ViewerSession.secret_hash == bindparam("secret_hash", type_=String),
        ViewerSession.expires_at > bindparam("now", type_=DateTime(timezone=True)),
        or_(
            PersonalAPIKey.last_rolled_at.is_(None),
            PersonalAPIKey.last_rolled_at <= ViewerSession.created_at,
        ),
    )
)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _usable(secret: str | None) -> bool:
    return bool(secret) and len(secret or "") <= MAX_SECRET_CHARS and (secret or "").isascii()


async def create_session(session: AsyncSession, key_id: str, now: datetime) -> str:
    """A new session of the key: its random id (for the cookie; only its hash is stored)."""
    secret = secrets.token_urlsafe(_SECRET_BYTES)
    await session.execute(
        insert(ViewerSession).values(
            secret_hash=hash_secret(secret), key_id=key_id, created_at=now, expires_at=now + LIFETIME
        )
    )
    # Sessions past their end go as new ones begin (they are refused anyway).
    await session.execute(delete(ViewerSession).where(ViewerSession.expires_at <= now))
    return secret


async def key_of_session(session: AsyncSession, secret: str | None, now: datetime) -> str | None:
    """The `secure_value` of the live session's key (None: no such session, ended, its key deleted or rolled
    since)."""
    if not _usable(secret):
        return None
    assert secret is not None
    params = {"secret_hash": hash_secret(secret), "now": now}
    found: str | None = (await session.execute(_KEY_OF_SESSION, params)).scalar_one_or_none()
    return found


async def end_session(session: AsyncSession, secret: str | None) -> None:
    if _usable(secret):
        assert secret is not None
        await session.execute(delete(ViewerSession).where(ViewerSession.secret_hash == hash_secret(secret)))


def session_cookie(secret: str, *, secure: bool) -> str:
    seconds = int(LIFETIME / timedelta(seconds=1))
    cookie = f"{COOKIE_NAME}={secret}; Max-Age={seconds}; Path=/; HttpOnly; SameSite=Lax"
    return cookie + "; Secure" if secure else cookie


def cleared_cookie(*, secure: bool) -> str:
    cookie = f"{COOKIE_NAME}=; Max-Age=0; Path=/; HttpOnly; SameSite=Lax"
    return cookie + "; Secure" if secure else cookie


def own_origins(request: Request) -> set[str]:
    """This service's origins: the request's own (scheme and host it was addressed to) and, when set, the
    public URL's (`TILECAST_PUBLIC_URL`, for a service behind a proxy)."""
    own = {f"{request.url.scheme}://{request.url.netloc}"}
    public = get_settings().public_url
    if public:
        parts = urlsplit(public)
        own.add(f"{parts.scheme}://{parts.netloc}")
    return own


def same_origin(request: Request) -> bool:
    """Whether the request's `Origin` header is this service's own (a missing or `null` one is not)."""
    origin = request.headers.get("origin")
    return origin is not None and origin in own_origins(request)
