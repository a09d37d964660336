"""The caller's own personal API keys, and what a key may be limited to (the user's teams and
organizations)."""

from datetime import datetime
from uuid import UUID

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import key_changes
from app.models import OrganizationMembership, PersonalAPIKey, Team, User, ViewerSession


async def list_keys(session: AsyncSession, user_id: int) -> list[PersonalAPIKey]:
    stmt = select(PersonalAPIKey).where(PersonalAPIKey.user_id == user_id)
    return list(
        (await session.scalars(stmt.order_by(PersonalAPIKey.created_at.desc(), PersonalAPIKey.id))).all()
    )


async def get_key(session: AsyncSession, user_id: int | None, key_id: str) -> PersonalAPIKey | None:
    """The key `key_id` of the user (of any user when None, for the command line), locked until the
    transaction ends."""
    stmt = select(PersonalAPIKey).where(PersonalAPIKey.id == key_id)
    if user_id is not None:
        stmt = stmt.where(PersonalAPIKey.user_id == user_id)
    return (await session.execute(stmt.with_for_update())).scalar_one_or_none()


async def list_keys_with_emails(session: AsyncSession, email: str | None) -> list[tuple[PersonalAPIKey, str]]:
    """Every key with its user's email (only the user's of `email` when given), oldest user first, newest key
    first (for the command line)."""
    stmt = select(PersonalAPIKey, User.email).join(User, User.id == PersonalAPIKey.user_id)
    if email is not None:
        stmt = stmt.where(User.email == email)
    stmt = stmt.order_by(User.id, PersonalAPIKey.created_at.desc(), PersonalAPIKey.id)
    return [(row[0], row[1]) for row in await session.execute(stmt)]


async def count_keys_locked(session: AsyncSession, user_id: int) -> int:
    """The user's number of keys, with the user's row locked until the transaction ends, so that concurrent
    creations count one after the other (the limit holds)."""
    await session.execute(select(User.id).where(User.id == user_id).with_for_update())
    stmt = select(func.count()).select_from(PersonalAPIKey).where(PersonalAPIKey.user_id == user_id)
    return int((await session.execute(stmt)).scalar_one())


async def member_teams(session: AsyncSession, user_id: int, team_ids: list[int]) -> dict[int, UUID]:
    """Those of `team_ids` in the user's organizations, with their organization."""
    stmt = (
        select(Team.id, Team.organization_id)
        .join(OrganizationMembership, OrganizationMembership.organization_id == Team.organization_id)
        .where(OrganizationMembership.user_id == user_id, Team.id.in_(team_ids))
    )
    return {row[0]: row[1] for row in await session.execute(stmt)}


async def member_organizations(session: AsyncSession, user_id: int) -> set[UUID]:
    stmt = select(OrganizationMembership.organization_id).where(OrganizationMembership.user_id == user_id)
    return set((await session.scalars(stmt)).all())


async def end_sessions(session: AsyncSession, key_id: str) -> None:
    """End every browser session signed in with the key."""
    await session.execute(delete(ViewerSession).where(ViewerSession.key_id == key_id))


async def delete_key(session: AsyncSession, key: PersonalAPIKey) -> None:
    """Delete the key (its browser sessions go with it: a cascading foreign key)."""
    await session.delete(key)
    await session.flush()
    await key_changes.announce(session, key.secure_value)


async def roll(
    session: AsyncSession, key: PersonalAPIKey, secure_value: str, mask_value: str, now: datetime
) -> None:
    await key_changes.announce(session, key.secure_value)
    key.secure_value = secure_value
    key.mask_value = mask_value
    key.last_rolled_at = now
    await end_sessions(session, key.id)
    await session.flush()
