"""The rows of `dashboard_snapshot`: the "before" states of refreshes (`app.dashboards.snapshots`)."""

from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import DashboardSnapshot

# Expired rows deleted per call: bounded, so no request pays for a backlog.
CLEANUP_BATCH = 100


async def add(
    session: AsyncSession,
    *,
    cache_key: str,
    team_id: int,
    dashboard_id: int,
    user_id: int,
    tiles: dict[str, Any],
    now: datetime,
    expires_at: datetime,
) -> None:
    await session.execute(
        insert(DashboardSnapshot).values(
            cache_key=cache_key,
            team_id=team_id,
            dashboard_id=dashboard_id,
            user_id=user_id,
            tiles=tiles,
            created_at=now,
            expires_at=expires_at,
        )
    )


async def get_live(
    session: AsyncSession, cache_key: str, team_id: int, dashboard_id: int, user_id: int, now: datetime
) -> dict[str, Any] | None:
    """The tiles of the snapshot `cache_key` of this dashboard and user, unless it has expired."""
    stmt = select(DashboardSnapshot.tiles).where(
        DashboardSnapshot.cache_key == cache_key,
        DashboardSnapshot.team_id == team_id,
        DashboardSnapshot.dashboard_id == dashboard_id,
        DashboardSnapshot.user_id == user_id,
        DashboardSnapshot.expires_at > now,
    )
    tiles: dict[str, Any] | None = (await session.execute(stmt)).scalar_one_or_none()
    return tiles


async def delete_expired(session: AsyncSession, now: datetime) -> None:
    """Up to CLEANUP_BATCH expired rows, skipping those another request is deleting."""
    expired = (
        select(DashboardSnapshot.cache_key)
        .where(DashboardSnapshot.expires_at <= now)
        .limit(CLEANUP_BATCH)
        .with_for_update(skip_locked=True)
    )
    await session.execute(
        delete(DashboardSnapshot).where(DashboardSnapshot.cache_key.in_(expired.scalar_subquery()))
    )
