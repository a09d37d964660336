"""Giving memory back after a large computation.

A result of several megabytes is built as many small Python objects and strings, in the worker threads'
malloc arenas as much as in the main one. Once it is freed, glibc keeps most of those pages for reuse, so
the process would stay tens of megabytes above its idle size after every large query. `release_soon()` asks
glibc to return its free pages (`malloc_trim`), shortly after the computation, when the response holding
the result has normally been sent; several large computations in a row share one trim. A no-op where the C
library has no `malloc_trim` (macOS, musl).
"""

import asyncio
import ctypes
import ctypes.util
from collections.abc import Callable

# Computations whose result's JSON is larger than this are followed by a trim.
RELEASE_ABOVE_BYTES = 1024 * 1024
# Long enough for the response to be written, short enough to be done before the next large request.
DELAY_S = 0.25


def _find_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        trim: Callable[[int], int] = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):
        return None
    return trim


_trim = _find_trim()
_pending: set[asyncio.AbstractEventLoop] = set()


def _release(loop: asyncio.AbstractEventLoop) -> None:
    _pending.discard(loop)
    if _trim is not None:
        # In a thread: trimming a large heap takes milliseconds (ctypes lets go of the GIL meanwhile).
        loop.run_in_executor(None, _trim, 0)


def release_soon() -> None:
    """Return the allocator's free memory to the system in DELAY_S (once, however often it is asked)."""
    if _trim is None:
        return
    loop = asyncio.get_running_loop()
    if loop not in _pending:
        _pending.add(loop)
        loop.call_later(DELAY_S, _release, loop)
