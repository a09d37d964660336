"""The team's settings row."""

from typing import Any

from sqlalchemy import exists, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import Event, Team


async def update_team(session: AsyncSession, team_id: int, values: dict[str, Any]) -> Team:
    """Write `values` and answer the team as stored."""
    stmt = update(Team).where(Team.id == team_id).values(**values).returning(Team)
    stmt = stmt.execution_options(populate_existing=True)
    return (await session.execute(stmt)).scalar_one()


async def has_events(session: AsyncSession, team_id: int) -> bool:
    return bool((await session.execute(select(exists().where(Event.team_id == team_id)))).scalar_one())
