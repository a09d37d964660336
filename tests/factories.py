"""Builders for users, teams and keys, written through the test's own session (then visible to requests)."""

import uuid
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts import add_member, create_personal_api_key, get_or_create_team, get_or_create_user
from app.models import MEMBER, OWNER, Team, User


@dataclass
class Actor:
    user: User
    team: Team
    key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    def url(self, path: str, *, prefix: str = "environments", team_id: int | None = None) -> str:
        """`/api/environments/<team>/<path>`: the team defaults to the actor's own."""
        return f"/api/{prefix}/{team_id if team_id is not None else self.team.id}/{path.lstrip('/')}"


def unique_email() -> str:
    return f"user-{uuid.uuid4().hex[:10]}@example.com"


async def make_actor(
    session: AsyncSession,
    *,
    team: Team | None = None,
    level: int = OWNER,
    scopes: list[str] | None = None,
    scoped_teams: list[int] | None = None,
) -> Actor:
    """A user with a key. Without `team`, a new organization and team owned by the user; with it, a member
    of that team's organization at `level`."""
    user = await get_or_create_user(session, unique_email())
    if team is None:
        team = await get_or_create_team(session, user, f"team-{uuid.uuid4().hex[:8]}")
    else:
        await add_member(session, user, team, level)
    key = await create_personal_api_key(
        session, user, scopes=["*"] if scopes is None else scopes, scoped_teams=scoped_teams
    )
    await session.commit()
    return Actor(user=user, team=team, key=key)


async def make_member(
    session: AsyncSession, team: Team, *, level: int = MEMBER, scopes: list[str] | None = None
) -> Actor:
    return await make_actor(session, team=team, level=level, scopes=scopes)
