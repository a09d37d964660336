"""Recording the SQL statements a request runs (the tests that pin a fixed cost use this)."""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine


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
