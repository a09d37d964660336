"""The stream itself: the metadata at once, the tiles whose results are ready right after it, then each
other tile the moment its render finishes, then `complete`.

Renders run on the worker's render pool (`app.query.pool`), each distinct query once, in short sessions of
their own; the stream holds no connection. It is bounded: a heartbeat comment every
`TILECAST_STREAM_HEARTBEAT_S`, at most `TILECAST_STREAM_MAX_LIFETIME_S` open (then a fatal `error`: the client
reconnects and receives what is missing), at most `TILECAST_STREAM_SEND_TIMEOUT_S` for one message to a
client that stopped reading (then the connection is dropped). A client that leaves, or a server shutting down
(a fatal `error` first), cancels its renders at once: waiting ones are dropped, running ones stop and give
their connections back.
"""

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import anyio
from sse_starlette import EventSourceResponse, ServerSentEvent
from sse_starlette.sse import SendTimeoutError
from starlette.background import BackgroundTask
from starlette.types import Receive, Scope, Send

from app.config import Settings, get_settings
from app.dashboards.schemas import Tile
from app.dashboards.service import to_full
from app.dashboards.tiles import PlannedTile, tile_of
from app.errors import is_transient
from app.query.pool import RenderPool, cancel_all
from app.query.render import Rendered
from app.streaming import messages, resume
from app.streaming.service import OpenedStream
from app.streaming.slots import StreamSlot

logger = logging.getLogger("tilecast.streaming")

# How long a stream may take to say goodbye when the server shuts down, before it is cut.
SHUTDOWN_GRACE_S = 2.0

TILE_FAILED = "This tile could not be rendered."
DATABASE_UNAVAILABLE = "The database was unavailable; this tile could not be rendered."
LIFETIME_REACHED = "The stream reached its time limit; reconnect to receive the remaining tiles."
SHUTTING_DOWN = "The server is shutting down; reconnect to receive the remaining tiles."
STREAM_FAILED = "The stream failed unexpectedly."


class TileStream(EventSourceResponse):
    """sse-starlette's response; a client that stopped reading past the send timeout is dropped with a
    warning (not a traceback)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        except SendTimeoutError:
            timeout = self.send_timeout
            logger.warning("a stream's client read nothing for %s s: its stream was closed", timeout)


def tile_stream(opened: OpenedStream, pool: RenderPool, slot: StreamSlot) -> TileStream:
    """The response that sends `opened`; it owns `slot` from now on and gives it back when it ends."""
    settings = get_settings()
    shutdown = anyio.Event()
    slot.handed_over = True
    return TileStream(
        _messages(opened, pool, slot, shutdown, settings),
        ping=settings.stream_heartbeat_s,
        sep=messages.SEP,
        send_timeout=settings.stream_send_timeout_s,
        shutdown_event=shutdown,
        shutdown_grace_period=SHUTDOWN_GRACE_S,
        # Also when the stream never started (the client left first): the generator's `finally` never ran.
        background=BackgroundTask(slot.release),
    )


class _Sender:
    """The set of delivered tiles, and each message's id for it."""

    def __init__(self, opened: OpenedStream) -> None:
        self.opened = opened
        self.delivered = set(opened.delivered)

    def id_with(self, *tile_ids: int) -> str:
        self.delivered.update(tile_ids)
        return resume.encode(self.opened.version, self.delivered)

    def tile(self, t: PlannedTile) -> ServerSentEvent:
        """The tile's message, or the tile's `error` message when it cannot be serialized."""
        try:
            content = messages.tile_json(tile_of(t, self.opened.access))
        except Exception:
            logger.exception("a tile could not be serialized (tile %d)", t.id)
            return messages.tile_error(t.id, TILE_FAILED, id=self.id_with(t.id))
        finally:
            t.rendered = None  # sent: its result is not kept for the rest of the stream
        return messages.tile(content, id=self.id_with(t.id))


def _failure_message(exc: BaseException) -> str:
    if is_transient(exc):
        logger.warning("a tile's render met an unavailable database: %s", type(exc).__name__)
        return DATABASE_UNAVAILABLE
    logger.error("a tile's render failed", exc_info=exc)
    return TILE_FAILED


async def _messages(
    opened: OpenedStream, pool: RenderPool, slot: StreamSlot, shutdown: anyio.Event, settings: Settings
) -> AsyncIterator[ServerSentEvent]:
    deadline = time.monotonic() + settings.stream_max_lifetime_s
    sender = _Sender(opened)
    renders: dict[asyncio.Future[Rendered], list[PlannedTile]] = {}
    stopping: asyncio.Future[None] | None = None
    try:
        # 1. The metadata, with the first tiles when their results are ready.
        first: list[Tile] = []
        failed: list[PlannedTile] = []
        for t in opened.with_metadata:
            try:
                first.append(tile_of(t, opened.access))
            except Exception:
                logger.exception("a tile could not be serialized (tile %d)", t.id)
                failed.append(t)
        dashboard = to_full(opened.row, opened.access, opened.overrides, first)
        yield messages.metadata(
            dashboard, id=sender.id_with(*(t.id for t in first)), retry=settings.stream_retry_ms
        )
        for t in failed:
            yield messages.tile_error(t.id, TILE_FAILED, id=sender.id_with(t.id))
        sent = {t.id for t in opened.with_metadata}

        # 2. The renders, all submitted now (the pool runs them in turn), then every ready tile in order.
        rest = [t for t in opened.missing if t.id not in sent]
        for key, waiting in opened.plan.renders(rest).items():
            renders[opened.plan.submit(pool, key, waiting)] = waiting
        for t in rest:
            if t.ready:
                if time.monotonic() >= deadline:
                    yield messages.fatal(LIFETIME_REACHED)
                    return
                yield sender.tile(t)

        # 3. Each render's tiles the moment it finishes.
        stopping = asyncio.ensure_future(shutdown.wait())
        while renders:
            left = deadline - time.monotonic()
            if left <= 0:
                yield messages.fatal(LIFETIME_REACHED)
                return
            waits: list[asyncio.Future[Any]] = [*renders, stopping]
            done, _ = await asyncio.wait(waits, timeout=left, return_when=asyncio.FIRST_COMPLETED)
            if stopping in done:
                yield messages.fatal(SHUTTING_DOWN)
                return
            for future in sorted((f for f in renders if f in done), key=lambda f: renders[f][0].order):
                waiting = renders.pop(future)
                exc = asyncio.CancelledError() if future.cancelled() else future.exception()
                if exc is not None:
                    message = _failure_message(exc)
                    for t in waiting:
                        yield messages.tile_error(t.id, message, id=sender.id_with(t.id))
                    continue
                for t in waiting:
                    t.rendered, t.ready = future.result(), True
                    yield sender.tile(t)
        yield messages.complete(id=sender.id_with())
    except Exception:
        logger.exception("a stream failed")
        yield messages.fatal(STREAM_FAILED)
    finally:
        # The client left, the stream ended or failed: what is still waiting or running is dropped now.
        cancel_all(list(renders))
        if stopping is not None:
            stopping.cancel()
        slot.release()
