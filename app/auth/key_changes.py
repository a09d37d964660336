"""Keys changed through Tilecast (rolled, deleted, rescoped, by the API or the command line) are forgotten by
every worker's principal cache at once, not only within its TTL.

The change announces the key's old `secure_value` with PostgreSQL's NOTIFY in its own transaction, so the
announcement goes out when (and only if) the change commits. Each worker keeps one connection listening
(`listen`, started by the app's lifespan) and drops what it remembers of that key. While the listening
connection is down, nothing is announced to the worker: it empties its cache on reconnecting, and the TTL
(at most 5 seconds) still bounds how long a key changed meanwhile is seen as it was. A key changed in the
database by other means (SQL) is covered by the TTL alone.
"""

import asyncio
import contextlib
import logging

import asyncpg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.principal_cache import PrincipalCache
from app.db import async_url

CHANNEL = "tilecast_key_changes"
RETRY_S = 1.0

logger = logging.getLogger("tilecast.auth")

_NOTIFY = text("SELECT pg_notify(:channel, :secure_value)")


async def announce(session: AsyncSession, secure_value: str) -> None:
    """Tell every worker, once this transaction commits, to forget the key whose hash was `secure_value`."""
    await session.execute(_NOTIFY, {"channel": CHANNEL, "secure_value": secure_value})


async def listen(url: str, principals: PrincipalCache) -> None:
    """Forget each announced key in `principals`, until cancelled; reconnects when the connection is lost."""
    dsn = async_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    while True:
        try:
            conn = await asyncpg.connect(dsn, server_settings={"application_name": "tilecast-key-changes"})
        except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
            logger.warning("cannot listen for key changes (%s); retrying", type(exc).__name__)
            await asyncio.sleep(RETRY_S)
            continue
        try:
            await _listen_on(conn, principals)
            logger.warning("lost the connection listening for key changes; reconnecting")
        finally:
            with contextlib.suppress(Exception):
                await conn.close(timeout=2)


async def _listen_on(conn: asyncpg.Connection, principals: PrincipalCache) -> None:
    """Listen on `conn` until it is lost."""
    lost = asyncio.Event()
    conn.add_termination_listener(lambda _conn: lost.set())
    await conn.add_listener(CHANNEL, lambda _conn, _pid, _channel, payload: principals.forget(payload))
    # Whatever changed while nobody listened is forgotten too.
    principals.clear()
    await lost.wait()
