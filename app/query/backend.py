"""The seam between the engine and the database that holds the events.

Today one backend: PostgreSQL over the `events` table, on the caller's connection. A ClickHouse backend for
large teams can take its place without touching routers, tiles or streams: it gets the same compiled
statements (SQLAlchemy Core) or, later, the engine's own intermediate form.
"""

from collections.abc import Sequence
from typing import Any, Protocol

from sqlalchemy import Executable
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from app.query.base import QueryTimeout


class QueryBackend(Protocol):
    async def fetch(self, statement: Executable, *, reusable: bool = True) -> Sequence[Any]:
        """Run one statement (bound parameters only) and return its rows. `reusable`: the statement's
        shape is a common one, worth keeping compiled for the next query of the same shape."""
        ...


# Compiled statements are kept per shape (SQLAlchemy's cache, 500 of them): one of a query with hundreds of
# filters holds megabytes, so those are compiled each time instead of being kept.
_NOT_KEPT = {"compiled_cache": None}


class PostgresBackend:
    """Runs statements on a connection whose transaction the caller owns (and times out)."""

    def __init__(self, connection: AsyncConnection) -> None:
        self.connection = connection

    async def fetch(self, statement: Executable, *, reusable: bool = True) -> Sequence[Any]:
        options = {} if reusable else _NOT_KEPT
        try:
            return (await self.connection.execute(statement, execution_options=options)).all()
        except DBAPIError as exc:
            if getattr(exc.orig, "sqlstate", None) == "57014":  # query_canceled: the statement timeout
                raise QueryTimeout("The query took too long and was cancelled.") from exc
            raise
