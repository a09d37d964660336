"""The team's settings row."""

from typing import Any

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import Team


async def update_team(session: AsyncSession, team_id: int, values: dict[str, Any]) -> Team:
    """Write `values` and answer the team as stored."""
    stmt = update(Team).where(Team.id == team_id).values(**values).returning(Team)
    stmt = stmt.execution_options(populate_existing=True)
    return (await session.execute(stmt)).scalar_one()
