"""The app's clock: `app.state.clock` (tests replace it to move time), read through `ClockDep`."""

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, Request

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    return datetime.now(UTC)


def clock_of(request: Request) -> Clock:
    clock: Clock = getattr(request.app.state, "clock", system_clock)
    return clock


async def get_now(request: Request) -> datetime:
    """The request's `now`, from the app's clock."""
    return clock_of(request)()


NowDep = Annotated[datetime, Depends(get_now)]
