"""Creating users, organizations, teams and personal API keys (used by `tilecast create-key` and tests)."""

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.keys import (
    generate_key_id,
    generate_personal_api_key,
    generate_project_api_key,
    hash_key_value,
    mask_key_value,
)
from app.models import ADMIN, OWNER, Organization, OrganizationMembership, PersonalAPIKey, Team, User
from app.sql_sandbox.roles import setup_new_team

DEFAULT_TEAM_NAME = "Default project"


@dataclass
class CreatedKey:
    key: str
    user: User
    team: Team


async def get_or_create_user(session: AsyncSession, email: str) -> User:
    user = (await session.execute(select(User).where(User.email == email))).scalar_one_or_none()
    if user is None:
        user = User(email=email, first_name=email.split("@")[0], distinct_id=generate_key_id())
        session.add(user)
        await session.flush()
    return user


async def get_or_create_team(session: AsyncSession, user: User, team_name: str | None) -> Team:
    """The user's team of that name; else a new team in an organization the user administers, or a new one."""
    memberships = (
        (
            await session.execute(
                select(OrganizationMembership).where(OrganizationMembership.user_id == user.id)
            )
        )
        .scalars()
        .all()
    )
    org_ids = [m.organization_id for m in memberships]
    if org_ids:
        stmt = select(Team).where(Team.organization_id.in_(org_ids)).order_by(Team.id)
        if team_name is not None:
            stmt = stmt.where(Team.name == team_name)
        team = (await session.execute(stmt.limit(1))).scalar_one_or_none()
        if team is not None:
            return team
    admin_of = [m.organization_id for m in memberships if m.level >= ADMIN]
    if admin_of:
        org_id = admin_of[0]
    else:
        org = Organization(name=(team_name or DEFAULT_TEAM_NAME)[:64])
        session.add(org)
        await session.flush()
        session.add(OrganizationMembership(organization_id=org.id, user_id=user.id, level=OWNER))
        org_id = org.id
    team = Team(
        organization_id=org_id,
        name=team_name or DEFAULT_TEAM_NAME,
        timezone="UTC",
        api_token=generate_project_api_key(),
    )
    session.add(team)
    await session.flush()
    await setup_new_team(session, team.id)
    return team


async def add_member(session: AsyncSession, user: User, team: Team, level: int) -> None:
    session.add(OrganizationMembership(organization_id=team.organization_id, user_id=user.id, level=level))
    await session.flush()


async def new_personal_api_key(
    session: AsyncSession,
    user: User,
    *,
    scopes: list[str] | None,
    label: str = "",
    scoped_teams: list[int] | None = None,
    scoped_organizations: list[str] | None = None,
) -> tuple[PersonalAPIKey, str]:
    """Store a new key for `user` (only its hash and mask): the row, and the plaintext, shown once."""
    value = generate_personal_api_key()
    key = PersonalAPIKey(
        id=generate_key_id(),
        user_id=user.id,
        label=label[:40],
        secure_value=hash_key_value(value),
        mask_value=mask_key_value(value),
        scopes=scopes,
        scoped_teams=scoped_teams,
        scoped_organizations=scoped_organizations,
        # The clock's time, not the transaction's: keys made in one transaction still list newest first.
        created_at=datetime.now(UTC),
    )
    session.add(key)
    await session.flush()
    return key, value


async def create_personal_api_key(
    session: AsyncSession,
    user: User,
    *,
    scopes: list[str] | None,
    label: str = "",
    scoped_teams: list[int] | None = None,
) -> str:
    """Store a new key for `user` and return the plaintext, shown once."""
    _, value = await new_personal_api_key(
        session, user, scopes=scopes, label=label, scoped_teams=scoped_teams
    )
    return value


async def create_key(
    session: AsyncSession, email: str, team_name: str | None, scopes: list[str], label: str
) -> CreatedKey:
    user = await get_or_create_user(session, email)
    team = await get_or_create_team(session, user, team_name)
    # The team named is the one `@current` in a URL means for the user from now on.
    user.current_team_id = team.id
    key = await create_personal_api_key(session, user, scopes=scopes, label=label)
    return CreatedKey(key=key, user=user, team=team)
