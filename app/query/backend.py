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
    async def fetch(self, statement: Executable) -> Sequence[Any]:
        """Run one statement (bound parameters only) and return its rows."""
        ...


class PostgresBackend:
    """Runs statements on a connection whose transaction the caller owns (and times out)."""

    def __init__(self, connection: AsyncConnection) -> None:
        self.connection = connection

    async def fetch(self, statement: Executable) -> Sequence[Any]:
        try:
            return (await self.connection.execute(statement)).all()
        except DBAPIError as exc:
            if getattr(exc.orig, "sqlstate", None) == "57014":  # query_canceled: the statement timeout
                raise QueryTimeout("The query took too long and was cancelled.") from exc
            raise
