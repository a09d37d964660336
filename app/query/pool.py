"""Renders that must compute, several at a time, each in a short session of its own.

A dashboard whose tiles must be computed (a retrieve with `refresh`, `stream_tiles`) ends its own read
transaction, then submits them here: at most `TILECAST_RENDER_CONCURRENCY` computations run at once in each
worker, for every request together, in the order they were submitted. Each runs in a transaction of its own
on a connection of its own, which goes back to the pool as soon as the computation ends, or is cancelled
because the client that wanted it left. A submitted render waiting for its turn is a future and nothing
more: a thousand streams waiting for their tiles cost no tasks and no connections.
"""

import asyncio
import functools
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker

from app.query import cache
from app.query.render import RefreshMode, Rendered, TeamInfo
from app.query.saved import render_saved


@dataclass(frozen=True, slots=True)
class _Job:
    future: "asyncio.Future[Rendered]"
    team: TeamInfo
    query: Any
    mode: RefreshMode
    saved: bool
    key: str | None
    prefetched: dict[str, cache.CachedResult] | None


class RenderPool:
    """Runs submitted renders, at most `limit` at once (see the module's docstring)."""

    def __init__(self, sessionmaker: Callable[[], async_sessionmaker[AsyncSession]], limit: int) -> None:
        # A getter: tests swap the app's sessionmaker per test.
        self._sessionmaker = sessionmaker
        self.limit = limit
        self._queue: deque[_Job] = deque()
        self._running: set[asyncio.Task[None]] = set()

    @property
    def running(self) -> int:
        return len(self._running)

    @property
    def waiting(self) -> int:
        return sum(1 for job in self._queue if not job.future.done())

    def submit(
        self,
        team: TeamInfo,
        query: Any,
        mode: RefreshMode,
        *,
        saved: bool,
        key: str | None,
        prefetched: dict[str, cache.CachedResult] | None = None,
    ) -> "asyncio.Future[Rendered]":
        """The query's `Rendered`, once its turn has come and it has run (`render_saved`: a query that fails
        is its `error`; a fault of the database is the future's exception). Cancel the future to drop the
        render, whether it is waiting or running."""
        future: asyncio.Future[Rendered] = asyncio.get_running_loop().create_future()
        self._queue.append(_Job(future, team, query, mode, saved, key, prefetched))
        self._start_next()
        return future

    def _capacity(self) -> int:
        # Sessions bound to one connection (the test suite's rolled-back transaction) cannot overlap: a
        # connection runs one statement at a time, and their savepoints must nest.
        bind = self._sessionmaker().kw.get("bind")
        return 1 if isinstance(bind, AsyncConnection) else self.limit

    def _start_next(self) -> None:
        capacity = self._capacity()
        while self._queue and len(self._running) < capacity:
            job = self._queue.popleft()
            if job.future.done():  # cancelled while it waited
                continue
            task = asyncio.create_task(self._run(job))
            self._running.add(task)
            task.add_done_callback(self._finished)
            job.future.add_done_callback(functools.partial(_cancel_if_cancelled, task=task))

    def _finished(self, task: "asyncio.Task[None]") -> None:
        self._running.discard(task)
        self._start_next()

    async def _run(self, job: _Job) -> None:
        try:
            async with self._sessionmaker().begin() as session:
                rendered = await render_saved(
                    session,
                    job.team,
                    job.query,
                    job.mode,
                    saved=job.saved,
                    prefetched=job.prefetched,
                    key=job.key,
                    cache_only=True,  # a session of its own, for this render alone
                )
        except asyncio.CancelledError:
            job.future.cancel()
            raise
        except Exception as exc:
            if not job.future.done():
                job.future.set_exception(exc)
        else:
            if not job.future.done():
                job.future.set_result(rendered)


def _cancel_if_cancelled(future: "asyncio.Future[Rendered]", task: "asyncio.Task[None]") -> None:
    if future.cancelled() and not task.done():
        task.cancel()


def cancel_all(futures: "list[asyncio.Future[Rendered]]") -> None:
    """Drop these renders; a failure some already met counts as seen (no "never retrieved" warning)."""
    for future in futures:
        if future.done():
            if not future.cancelled():
                future.exception()
        else:
            future.cancel()


async def get_render_pool(request: Request) -> RenderPool:
    """The worker's render pool (made by `create_app`)."""
    pool: RenderPool = request.app.state.renders
    return pool


RenderPoolDep = Annotated[RenderPool, Depends(get_render_pool)]
