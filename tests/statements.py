"""Recording the SQL statements a request runs (the tests that pin a fixed cost use this)."""

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession


@contextmanager
def recorded_statements(engine: AsyncEngine) -> Iterator[list[str]]:
    """`with recorded_statements(engine) as sql: ...`: the statements sent while inside the block."""
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)


@contextmanager
def count_statements(engine: AsyncEngine) -> Iterator[Callable[[], int]]:
    """`with count_statements(engine) as count: ...; count()`."""
    with recorded_statements(engine) as statements:
        yield lambda: len(statements)


@asynccontextmanager
async def recorded_statements_and_driver_queries(
    engine: AsyncEngine, session: AsyncSession
) -> AsyncIterator[list[str]]:
    """`recorded_statements`, plus the queries sent on `session`'s connection through asyncpg's own API,
    which SQLAlchemy's event does not see (capture's insert runs there). asyncpg logs those, not the
    statements SQLAlchemy sends (prepared statements), so nothing is counted twice."""
    pooled = await (await session.connection()).get_raw_connection()
    driver: Any = pooled.driver_connection

    with recorded_statements(engine) as statements:

        def log(record: Any) -> None:
            statements.append(record.query)

        driver.add_query_logger(log)
        try:
            yield statements
            await asyncio.sleep(0)  # asyncpg calls its loggers soon after each query, not at once
        finally:
            driver.remove_query_logger(log)
