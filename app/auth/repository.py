"""Queries for authentication: keys with their users, teams with the caller's membership."""

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import contains_eager

from app.models import OrganizationMembership, PersonalAPIKey, Team, User


async def get_key_with_user(session: AsyncSession, secure_value: str) -> PersonalAPIKey | None:
    stmt = (
        select(PersonalAPIKey)
        .join(PersonalAPIKey.user)
        .options(contains_eager(PersonalAPIKey.user))
        .where(PersonalAPIKey.secure_value == secure_value, User.is_active.is_(True))
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def touch_key(session: AsyncSession, key_id: str, now: datetime) -> None:
    """Record the key's use. The row stays locked until the request's transaction ends, so a concurrent
    request with the same key skips the update (SKIP LOCKED) instead of waiting for that whole request."""
    unlocked = (
        select(PersonalAPIKey.id)
        .where(PersonalAPIKey.id == key_id)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    await session.execute(
        update(PersonalAPIKey).where(PersonalAPIKey.id == unlocked).values(last_used_at=now)
    )


async def get_team_with_membership(
    session: AsyncSession, team_id: int, user_id: int
) -> tuple[Team, int | None] | None:
    """The team and the user's membership level in its organization (None when not a member)."""
    stmt = (
        select(Team, OrganizationMembership.level)
        .outerjoin(
            OrganizationMembership,
            (OrganizationMembership.organization_id == Team.organization_id)
            & (OrganizationMembership.user_id == user_id),
        )
        .where(Team.id == team_id)
    )
    row = (await session.execute(stmt)).one_or_none()
    return None if row is None else (row[0], row[1])
