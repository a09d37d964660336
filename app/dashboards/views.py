"""Coalesced writes of dashboard views: `last_accessed_at` and the caller's `last_viewed_at`.

A retrieve reports the moment it was made at once, but writes it later, in a short transaction of its own,
after its response is sent: it never holds the dashboard's row lock while its tiles render (concurrent
retrieves of one dashboard used to queue behind each other on that lock). In each process, a dashboard and
user pair is written at most once a minute: the first view is written right after its response, later ones
within the minute wait in memory (the latest wins) for the flush loop of the app's lifespan, and whatever
is still pending when the app shuts down is written then. Until a pending view is written, this process
reports it over the stored values (`overlay`); other processes see it within a minute.
"""

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.dashboards import repository

logger = logging.getLogger("tilecast.dashboards")

# At most one write per dashboard and user per this many seconds, in each process.
WRITE_INTERVAL_S = 60.0
# How often the lifespan's loop writes the views whose minute has passed.
FLUSH_EVERY_S = 5.0

Key = tuple[int, int]  # (dashboard id, user id)


class ViewRecorder:
    """Views noted by retrieves, written at most once a minute per dashboard and user (see module doc)."""

    def __init__(self, sessionmaker: Callable[[], async_sessionmaker[AsyncSession]]) -> None:
        # A getter: tests swap the app's sessionmaker per test.
        self._sessionmaker = sessionmaker
        self._pending: dict[Key, datetime] = {}
        self._written: dict[Key, float] = {}  # monotonic time of each pair's last write
        # The latest view of each pair and access of each dashboard this process knows of: what it reports
        # over the stored values. Harmless once written (the stored value is then as late or later).
        self._viewed: dict[Key, datetime] = {}
        self._accessed: dict[int, datetime] = {}

    def note(self, dashboard_id: int, user_id: int, now: datetime) -> None:
        key = (dashboard_id, user_id)
        if key not in self._pending or self._pending[key] < now:
            self._pending[key] = now
        if self._viewed.get(key) is None or self._viewed[key] < now:
            self._viewed[key] = now
        if self._accessed.get(dashboard_id) is None or self._accessed[dashboard_id] < now:
            self._accessed[dashboard_id] = now

    def overlay(
        self, dashboard_id: int, user_id: int, accessed: datetime | None, viewed: datetime | None
    ) -> tuple[datetime | None, datetime | None]:
        """`last_accessed_at` and `last_viewed_at` as stored, or later when this process knows of later."""
        return _later(accessed, self._accessed.get(dashboard_id)), _later(
            viewed, self._viewed.get((dashboard_id, user_id))
        )

    @property
    def pending(self) -> int:
        return len(self._pending)

    async def flush(self, *, everything: bool = False) -> None:
        """Write the pending views whose pair was not written within the minute (all of them with
        `everything`), in one statement and one short transaction. A failed write keeps them pending."""
        clock = time.monotonic()
        due = {
            key: at
            for key, at in self._pending.items()
            if everything or clock - self._written.get(key, -WRITE_INTERVAL_S) >= WRITE_INTERVAL_S
        }
        if not due:
            return
        # Taken before the first await: concurrent flushes never write a view twice.
        for key in due:
            del self._pending[key]
            self._written[key] = clock
        try:
            async with self._sessionmaker()() as session, session.begin():
                await repository.record_views(session, sorted((d, u, at) for (d, u), at in due.items()))
        except Exception:
            logger.exception("dashboard views not written yet (%d kept for the next flush)", len(due))
            for key, at in due.items():
                if key not in self._pending or self._pending[key] < at:
                    self._pending[key] = at
                self._written.pop(key, None)
            raise

    def _forget_old(self) -> None:
        """Bound the memory: pairs written over a minute ago and not pending are forgotten."""
        clock = time.monotonic()
        for key, at in list(self._written.items()):
            if clock - at >= WRITE_INTERVAL_S and key not in self._pending:
                del self._written[key]
                self._viewed.pop(key, None)
        live = {d for d, _ in self._viewed}
        for dashboard_id in list(self._accessed):
            if dashboard_id not in live:
                del self._accessed[dashboard_id]

    async def run(self) -> None:
        """The lifespan's loop: the views whose minute has passed, every few seconds."""
        while True:
            await asyncio.sleep(FLUSH_EVERY_S)
            try:
                await self.flush()
            except Exception:  # logged by flush; retried at the next round
                pass
            self._forget_old()


def _later(stored: datetime | None, known: datetime | None) -> datetime | None:
    if known is None:
        return stored
    return known if stored is None or stored < known else stored


async def get_views(request: Request) -> AsyncIterator[ViewRecorder]:
    """The app's recorder; the views that are due are written after the response is sent."""
    views: ViewRecorder = request.app.state.views
    yield views
    try:
        await views.flush()
    except Exception:  # logged by flush; kept for the lifespan's loop
        pass


ViewsDep = Annotated[ViewRecorder, Depends(get_views)]
