"""Every query of the data color themes resource."""

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload, selectinload

from app.models import DataColorTheme


def _visible(team_id: int):  # type: ignore[no-untyped-def]
    return or_(DataColorTheme.team_id == team_id, DataColorTheme.team_id.is_(None))


async def list_themes(
    session: AsyncSession, team_id: int, limit: int, offset: int
) -> tuple[list[DataColorTheme], int]:
    count = (
        await session.execute(select(func.count()).select_from(DataColorTheme).where(_visible(team_id)))
    ).scalar_one()
    stmt = (
        select(DataColorTheme)
        .where(_visible(team_id))
        .options(selectinload(DataColorTheme.created_by))
        .order_by(DataColorTheme.id)
        .limit(limit)
        .offset(offset)
    )
    return list((await session.execute(stmt)).scalars().all()), count


async def get_theme(session: AsyncSession, team_id: int, theme_id: int) -> DataColorTheme | None:
    stmt = (
        select(DataColorTheme)
        .where(DataColorTheme.id == theme_id, _visible(team_id))
        .options(selectinload(DataColorTheme.created_by))
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def all_visible(session: AsyncSession, team_id: int, limit: int) -> list[DataColorTheme]:
    """The team's and the global themes with their creators, in one statement (no count)."""
    stmt = (
        select(DataColorTheme)
        .where(_visible(team_id))
        .options(joinedload(DataColorTheme.created_by))
        .order_by(DataColorTheme.id)
        .limit(limit)
    )
    return list((await session.execute(stmt)).scalars().all())
