"""A stand-in for the sandbox executor: runs compiled SQL on the caller's connection, in a savepoint made
read-only and time-bounded, always rolled back. Same signature as the sandbox's `run_sql`; replaced by it."""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection


@dataclass
class SandboxResult:
    columns: list[str]
    types: list[str]
    rows: list[Sequence[Any]]
    has_more: bool


async def run_sql(
    sandbox: AsyncConnection,
    team_id: int,
    sql: str,
    params: Sequence[Any],
    *,
    timeout_ms: int,
    max_rows: int,
) -> SandboxResult:
    raw = await sandbox.get_raw_connection()
    driver: Any = raw.driver_connection
    savepoint = sandbox.begin_nested()
    await savepoint.start()
    try:
        await driver.execute("SET LOCAL transaction_read_only = on")
        await driver.execute(f"SET LOCAL statement_timeout = {int(timeout_ms)}")
        statement = await driver.prepare(sql)
        rows = await statement.fetch(*params)
        columns = [attribute.name for attribute in statement.get_attributes()]
        types = [attribute.type.name for attribute in statement.get_attributes()]
    finally:
        await savepoint.rollback()
    return SandboxResult(columns, types, list(rows[:max_rows]), len(rows) > max_rows)
