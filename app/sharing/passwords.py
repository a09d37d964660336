"""Share passwords: argon2id hashes, made and checked in threads, at most a few at once per process.

A check costs ~19 MB and tens of milliseconds of one core (OWASP's argon2id parameters). Guessing cannot
exhaust the server: checks run at most `TILECAST_SHARING_PASSWORD_CHECKS` at a time, later ones wait (holding
no database connection), and past 32 times that many waiting the request is answered 503 at once. The rate
limits of `app.sharing.service.unlock` bound how many guesses reach here in the first place.
"""

import asyncio
import secrets
from collections.abc import Callable, Sequence
from typing import TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from app.errors import ServiceUnavailable

_HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
WAITING_PER_SLOT = 32

T = TypeVar("T")


def generate() -> str:
    """A generated password: 16 random bytes, URL-safe (as PostHog's)."""
    return secrets.token_urlsafe(16)


def hash_password(raw: str) -> str:
    return _HASHER.hash(raw)


def matching(hashes: Sequence[tuple[int, str]], raw: str) -> int | None:
    """The id of the first password `raw` is (every one is tried: the time does not tell which matched)."""
    found = None
    for password_id, encoded in hashes:
        try:
            if _HASHER.verify(encoded, raw) and found is None:
                found = password_id
        except (VerificationError, InvalidHashError):
            pass
    return found


class PasswordChecks:
    """The process-wide limit on concurrent hashing and checking."""

    def __init__(self, slots: int) -> None:
        self.slots = slots
        self.max_waiting = slots * WAITING_PER_SLOT
        self._waiting = 0
        self._semaphore: asyncio.Semaphore | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _slots(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        if self._semaphore is None or self._loop is not loop:  # tests run several loops over one app
            self._semaphore, self._loop = asyncio.Semaphore(self.slots), loop
        return self._semaphore

    async def run(self, fn: Callable[..., T], *args: object) -> T:
        if self._waiting >= self.max_waiting:
            raise ServiceUnavailable()
        self._waiting += 1
        try:
            async with self._slots():
                return await asyncio.to_thread(fn, *args)
        finally:
            self._waiting -= 1
