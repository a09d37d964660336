"""The per-worker cap on open streams (`TILECAST_STREAM_MAX_STREAMS`): past it, 503 with `Retry-After`."""

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request

from app.errors import ServiceUnavailable
from app.metrics import OPEN_STREAMS


class TooManyStreams(ServiceUnavailable):
    default_detail = "This server has too many open streams; try again later."
    headers = {"Retry-After": "5"}  # noqa: RUF012  (read, never mutated)


class StreamSlot:
    """One open stream's place. Released once, by whoever ends the stream (or the request)."""

    __slots__ = ("_slots", "handed_over", "released")

    def __init__(self, slots: "StreamSlots") -> None:
        self._slots = slots
        self.released = False
        # Set when a response owns the slot: it releases it when its stream ends.
        self.handed_over = False

    def release(self) -> None:
        if not self.released:
            self.released = True
            self._slots.open -= 1
            OPEN_STREAMS.dec()


class StreamSlots:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.open = 0

    def acquire(self) -> StreamSlot:
        if self.open >= self.limit:
            raise TooManyStreams()
        self.open += 1
        OPEN_STREAMS.inc()
        return StreamSlot(self)


async def stream_slot(request: Request) -> AsyncIterator[StreamSlot]:
    """A place for the request's stream, taken before anything else is done (503 when there is none); given
    back when the request ends without a stream (an error, a 204)."""
    slots: StreamSlots = request.app.state.streams
    slot = slots.acquire()
    try:
        yield slot
    finally:
        if not slot.handed_over:
            slot.release()


StreamSlotDep = Annotated[StreamSlot, Depends(stream_slot, scope="function")]
