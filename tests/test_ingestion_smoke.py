from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import Event
from tests.events import event, ingest
from tests.factories import Actor


async def test_batch_is_stored_once(client: httpx.AsyncClient, actor: Actor, db: AsyncSession) -> None:
    now = datetime.now(UTC)
    batch = [
        event("$pageview", f"u{i}", now - timedelta(minutes=i), {"$browser": "Chrome"}) for i in range(3)
    ]
    await ingest(client, actor, batch)
    await ingest(client, actor, batch)  # a retry: same uuids
    count = await db.execute(select(func.count()).select_from(Event).where(Event.team_id == actor.team.id))
    assert count.scalar_one() == 3
