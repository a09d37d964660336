"""Every query of sharing: configurations, passwords and the unlock attempt counters."""

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from app.models import SharePassword, SharingConfiguration


async def current(
    session: AsyncSession, dashboard_id: int, *, lock: bool = False
) -> SharingConfiguration | None:
    """The dashboard's current configuration (not expiring), if one was ever written."""
    stmt = select(SharingConfiguration).where(
        SharingConfiguration.dashboard_id == dashboard_id, SharingConfiguration.expires_at.is_(None)
    )
    if lock:
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).scalar_one_or_none()


async def create_current(
    session: AsyncSession, team_id: int, dashboard_id: int, token: str
) -> SharingConfiguration:
    """The current configuration, written now with defaults when there is none (a concurrent first write wins
    and is returned), locked until the transaction ends."""
    stmt = (
        insert(SharingConfiguration)
        .values(team_id=team_id, dashboard_id=dashboard_id, access_token=token)
        .on_conflict_do_nothing(index_elements=["dashboard_id"], index_where=text("expires_at IS NULL"))
    )
    await session.execute(stmt)
    found = await current(session, dashboard_id, lock=True)
    assert found is not None
    return found


async def expire(session: AsyncSession, configuration_id: int, at: datetime) -> None:
    await session.execute(
        update(SharingConfiguration).where(SharingConfiguration.id == configuration_id).values(expires_at=at)
    )


async def move_active_passwords(session: AsyncSession, from_id: int, to_id: int) -> None:
    await session.execute(
        update(SharePassword)
        .where(SharePassword.sharing_configuration_id == from_id, SharePassword.is_active.is_(True))
        .values(sharing_configuration_id=to_id)
    )


async def active_passwords(session: AsyncSession, configuration_id: int) -> list[SharePassword]:
    """Newest first, with their creators."""
    stmt = (
        select(SharePassword)
        .where(SharePassword.sharing_configuration_id == configuration_id, SharePassword.is_active.is_(True))
        .options(selectinload(SharePassword.created_by))
        .order_by(SharePassword.created_at.desc(), SharePassword.id.desc())
    )
    return list((await session.execute(stmt)).scalars().all())


async def count_active_passwords(session: AsyncSession, configuration_id: int) -> int:
    stmt = select(func.count()).where(
        SharePassword.sharing_configuration_id == configuration_id, SharePassword.is_active.is_(True)
    )
    return int((await session.execute(stmt)).scalar_one())


async def password_hashes(session: AsyncSession, configuration_id: int) -> list[tuple[int, str]]:
    stmt = select(SharePassword.id, SharePassword.password_hash).where(
        SharePassword.sharing_configuration_id == configuration_id, SharePassword.is_active.is_(True)
    )
    return [(row[0], row[1]) for row in (await session.execute(stmt)).all()]


async def deactivate_password(session: AsyncSession, configuration_id: int, password_id: int) -> bool:
    """Whether an active password of this configuration was deactivated."""
    result = await session.execute(
        update(SharePassword)
        .where(
            SharePassword.id == password_id,
            SharePassword.sharing_configuration_id == configuration_id,
            SharePassword.is_active.is_(True),
        )
        .values(is_active=False)
        .returning(SharePassword.id)
    )
    return result.first() is not None


# One failed attempt more in this minute's window against each key, unless that key's window already holds
# its limit (then that key's upsert returns no row: refused). A new minute starts the count again. Both keys
# in one statement: the rows stay locked only until the commit that follows at once, so concurrent attempts
# on one share queue for one round trip each, not for the whole check.
_UPSERT = """
    INSERT INTO sharing_unlock_attempt AS a (key, window_start, failures) VALUES ({key}, :window, 1)
    ON CONFLICT (key) DO UPDATE SET
        failures = CASE WHEN a.window_start = excluded.window_start THEN a.failures + 1 ELSE 1 END,
        window_start = excluded.window_start
    WHERE a.window_start <> excluded.window_start OR a.failures < {limit}
    RETURNING failures
"""


def _count_attempts(keys: int) -> Any:
    ctes = ", ".join(f"k{i} AS ({_UPSERT.format(key=f':key{i}', limit=f':limit{i}')})" for i in range(keys))
    counted = ", ".join(f"(SELECT count(*) FROM k{i})" for i in range(keys))
    return text(f"WITH {ctes} SELECT {counted}")


_COUNT_ATTEMPTS = {n: _count_attempts(n) for n in (1, 2)}
_REFUND_ATTEMPT = text(
    """
    UPDATE sharing_unlock_attempt SET failures = greatest(failures - 1, 0)
    WHERE key = :key AND window_start = :window
    """
)


_FAILURES = text(
    "SELECT key, failures FROM sharing_unlock_attempt WHERE key = ANY(:keys) AND window_start = :window"
)


async def over_limit(session: AsyncSession, keys: Sequence[tuple[str, int]], window: datetime) -> bool:
    """Whether a key's limit is already reached in this window: read without a lock, so that a flood of
    refused attempts does not queue on the counters' rows (`count_attempts` decides for the others)."""
    params = {"keys": [key for key, _ in keys], "window": window}
    failures: dict[str, int] = {key: n for key, n in (await session.execute(_FAILURES, params)).all()}
    return any(failures.get(key, 0) >= limit for key, limit in keys)


async def count_attempts(session: AsyncSession, keys: Sequence[tuple[str, int]], window: datetime) -> bool:
    """Count one attempt against each `(key, limit)` (one or two) in this window, in one statement; False
    when any key's limit was already reached."""
    params: dict[str, Any] = {"window": window}
    for i, (key, limit) in enumerate(keys):
        params[f"key{i}"], params[f"limit{i}"] = key, limit
    counted = (await session.execute(_COUNT_ATTEMPTS[len(keys)], params)).one()
    return all(counted)


async def refund_attempts(session: AsyncSession, keys: Sequence[str], window: datetime) -> None:
    """An attempt that succeeded is not a failure: its counts are taken back."""
    for key in keys:
        await session.execute(_REFUND_ATTEMPT, {"key": key, "window": window})
