"""What a key can discover: its user's organizations and the teams (projects) the key reaches."""

from dataclasses import dataclass
from uuid import UUID

from sqlalchemy import exists, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.repository import reachable_teams
from app.models import Event, Organization, OrganizationMembership, PersonalAPIKey, Team, User


@dataclass
class Membership:
    organization: Organization
    level: int
    member_count: int


@dataclass
class ReachableTeam:
    team: Team
    ingested_event: bool


async def list_reachable_teams(
    session: AsyncSession, key: PersonalAPIKey, organization_id: UUID | None = None
) -> list[ReachableTeam]:
    """The teams the key reaches (`app.auth.repository.reachable_teams`), by id; only those of one
    organization when given."""
    ingested = exists().where(Event.team_id == Team.id)
    stmt = reachable_teams(key.user_id, key).add_columns(ingested).order_by(Team.id)
    if organization_id is not None:
        stmt = stmt.where(Team.organization_id == organization_id)
    return [ReachableTeam(team=row[0], ingested_event=row[1]) for row in await session.execute(stmt)]


async def list_memberships(session: AsyncSession, user_id: int) -> list[Membership]:
    """The user's organizations, oldest first, with the user's level and the number of members of each."""
    members = (
        select(func.count())
        .where(OrganizationMembership.organization_id == Organization.id)
        .correlate(Organization)
        .scalar_subquery()
    )
    stmt = (
        select(Organization, OrganizationMembership.level, members)
        .join(OrganizationMembership, OrganizationMembership.organization_id == Organization.id)
        .where(OrganizationMembership.user_id == user_id)
        .order_by(Organization.created_at, Organization.id)
    )
    return [Membership(row[0], row[1], row[2]) for row in await session.execute(stmt)]


async def set_current_team(session: AsyncSession, user_id: int, team_id: int) -> None:
    await session.execute(update(User).where(User.id == user_id).values(current_team_id=team_id))
