"""Deleting old events: `tilecast prune-events` and the daily `TILECAST_EVENTS_RETENTION_DAYS` run.

Events go in small batches, each its own short transaction that locks only the rows it deletes, so capture
(which only inserts) and queries go on meanwhile. Persons are kept. A batch is found through the events'
`(team_id, timestamp)` index, team by team.

With the ClickHouse events backend, ClickHouse's events go too (`app.clickhouse.retention`: old months'
partitions dropped, the rest deleted by a mutation), as well as any PostgreSQL still holds.
"""

import asyncio
import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import delete, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.clock import Clock
from app.models import Event, Team

if TYPE_CHECKING:
    from app.clickhouse.client import ClickHouse

logger = logging.getLogger("tilecast.retention")

PRUNE_BATCH_SIZE = 5_000
# Workers apply the retention setting one at a time: whoever takes this session-level advisory lock.
RETENTION_LOCK_ID = 0x74696C6570727565  # "tileprue"
RETENTION_INTERVAL_S = 24 * 3600


async def prune_events(
    sessionmaker: async_sessionmaker[AsyncSession],
    before: datetime,
    team_id: int | None = None,
    batch_size: int = PRUNE_BATCH_SIZE,
    clickhouse: "ClickHouse | None" = None,
    cluster: str | None = None,
) -> int:
    """Delete the events timed before `before` (of one team, or all), in ClickHouse too when it is given;
    returns how many went."""
    total = 0
    if clickhouse is not None:
        from app.clickhouse import retention

        total += await retention.prune_events(clickhouse, before, team_id, cluster)
    async with sessionmaker() as session:
        if team_id is None:
            teams = list((await session.scalars(select(Team.id).order_by(Team.id))).all())
        else:
            teams = [team_id]
    for team in teams:
        batch = (
            select(Event.uuid)
            .where(Event.team_id == team, Event.timestamp < before)
            .limit(batch_size)
            .scalar_subquery()
        )
        statement = delete(Event).where(Event.team_id == team, Event.uuid.in_(batch))
        while True:
            async with sessionmaker() as session, session.begin():
                deleted = (await session.execute(statement)).rowcount  # type: ignore[attr-defined]
            total += deleted
            if deleted < batch_size:
                break
    return total


async def apply_retention(
    engine: AsyncEngine,
    sessionmaker: async_sessionmaker[AsyncSession],
    days: int,
    clock: Clock,
    clickhouse: "ClickHouse | None" = None,
    cluster: str | None = None,
) -> int | None:
    """One retention run, unless another worker is running one (None)."""
    async with engine.connect() as lock:
        taken = await lock.scalar(text("SELECT pg_try_advisory_lock(:id)"), {"id": RETENTION_LOCK_ID})
        # The lock outlives the transaction: committing now keeps no snapshot open while events are deleted.
        await lock.commit()
        if not taken:
            return None
        try:
            cut = clock() - timedelta(days=days)
            deleted = await prune_events(sessionmaker, cut, clickhouse=clickhouse, cluster=cluster)
        finally:
            await lock.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": RETENTION_LOCK_ID})
            await lock.commit()
    logger.info("events retention: deleted %d events older than %d days", deleted, days)
    return deleted


async def run_retention(
    engine: AsyncEngine,
    sessionmaker: async_sessionmaker[AsyncSession],
    days: int,
    clock: Clock,
    interval_s: float = RETENTION_INTERVAL_S,
    clickhouse: "ClickHouse | None" = None,
    cluster: str | None = None,
) -> None:
    """At start, then once a day, for as long as the worker runs."""
    while True:
        try:
            await apply_retention(engine, sessionmaker, days, clock, clickhouse, cluster)
        except Exception:
            logger.exception("events retention failed; trying again in %d s", interval_s)
        await asyncio.sleep(interval_s)
