"""The engine's `QueryBackend` on ClickHouse: trends series, lifecycle and stickiness compiled to ClickHouse
SQL (`app.clickhouse.trends`, `.lifecycle`, `.stickiness`) and run on the app's ClickHouse client, with
per-query limits.

Every statement carries ClickHouse's own limits: `max_execution_time` (TILECAST_QUERY_TIMEOUT_MS),
`max_memory_usage` (TILECAST_CLICKHOUSE_MAX_MEMORY_BYTES) and `max_result_rows`
(TILECAST_CLICKHOUSE_MAX_RESULT_ROWS); passing one is a query error naming it, as a PostgreSQL statement
timeout is. SQL insights (`HogQLQuery`) run through `run_hogql` (`app.clickhouse.hogql`: the checked HogQL
AST written back as ClickHouse SQL). A kind not compiled for ClickHouse is refused by name, never computed
from PostgreSQL's events table (empty when events live in ClickHouse).
"""

import asyncio
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Executable

from app.clickhouse.client import ClickHouse, ClickHouseError
from app.clickhouse.funnels import funnel_sql
from app.clickhouse.lifecycle import lifecycle_sql
from app.clickhouse.retention_query import retention_sql
from app.clickhouse.stickiness import stickiness_sql
from app.clickhouse.trends import series_sql
from app.query.base import (
    ComputedResult,
    InvalidQuery,
    QueryContext,
    QueryTimeout,
    QueryTooLarge,
    UnsupportedQuery,
)
from app.query.dates import ResolvedRange
from app.query.funnels_sql import FunnelPlan
from app.query.lifecycle_sql import LifecyclePlan
from app.query.retention_sql import RetentionPlan
from app.query.stickiness_sql import StickinessPlan
from app.query.trends_sql import SeriesPlan

SUPPORTED_KINDS = frozenset(
    {"TrendsQuery", "FunnelsQuery", "RetentionQuery", "LifecycleQuery", "StickinessQuery", "HogQLQuery"}
)
# ClickHouse's error codes for what the limits stop, and for a pattern RE2 cannot compile.
TIMEOUT_EXCEEDED = 159
TOO_MANY_ROWS = 158
MEMORY_LIMIT_EXCEEDED = 241
TOO_MANY_ROWS_OR_BYTES = 396
CANNOT_COMPILE_REGEXP = 427


def _unsupported(kind: str) -> UnsupportedQuery:
    return UnsupportedQuery(f"{kind} is not supported on the ClickHouse events backend yet")


class ClickHouseBackend:
    def __init__(
        self, client: ClickHouse, *, timeout_ms: int, max_memory_bytes: int, max_result_rows: int
    ) -> None:
        self.client = client
        self.settings = {
            "max_execution_time": timeout_ms / 1000,
            "max_memory_usage": max_memory_bytes,
            "max_result_rows": max_result_rows,
        }

    def check_kind(self, kind: str) -> None:
        if kind not in SUPPORTED_KINDS:
            raise _unsupported(kind)

    async def fetch(self, statement: Executable, *, reusable: bool = True) -> Sequence[Any]:
        # PostgreSQL statements: only the kinds `check_kind` refuses build them.
        raise _unsupported("This query")

    async def _query(self, sql: str, parameters: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        try:
            return await self.client.query(sql, parameters, settings=self.settings)
        except ClickHouseError as exc:
            raise _query_error(exc) from None

    async def trends_series(
        self, plan: SeriesPlan, period: ResolvedRange, *, reusable: bool = True
    ) -> Sequence[Sequence[Any]]:
        statement = await asyncio.to_thread(series_sql, plan, period, self.client.database)
        rows = await self._query(statement.sql, statement.parameters)
        if plan.total_value:
            return rows
        # Buckets come back as dates (days, weeks, months) or UTC-labelled datetimes (hours) holding the local
        # wall-clock time: the engine's buckets are naive local datetimes.
        return [(_naive(row[0]), *row[1:]) for row in rows]

    async def retention_rows(self, plan: RetentionPlan) -> Sequence[Any]:
        statement = await asyncio.to_thread(retention_sql, plan, self.client.database)
        rows = await self._query(statement.sql, statement.parameters)
        names = (["breakdown", "rank"] if plan.breakdown is not None else []) + ["cohort", "offset", "value"]
        cohort = names.index("cohort")
        return [
            Row(dict(zip(names, (*row[:cohort], _naive(row[cohort]), *row[cohort + 1 :]), strict=True)))
            for row in rows
        ]

    async def funnel_rows(
        self, plan: FunnelPlan, period: ResolvedRange, viz: str, steps: tuple[int, int], *, work_mem_kb: int
    ) -> Sequence[Any]:
        statement = await asyncio.to_thread(funnel_sql, plan, period, self.client.database, viz, *steps)
        rows = await self._query(statement.sql, statement.parameters)
        if viz == "time_to_convert":
            return rows
        if viz == "trends":
            return [Row({"bucket": _naive(b), "reached_from": f, "reached_to": t}) for b, f, t in rows]
        names = ["bd", "other", "rank"] if plan.breakdown is not None else []
        names += [f"c{j}" for j in range(plan.n)]
        names += [f"{name}{j}" for j in range(1, plan.n) for name in ("avg", "med")]
        return [Row(dict(zip(names, row, strict=True))) for row in rows]

    async def run_hogql(self, query: Any, ctx: QueryContext) -> ComputedResult:
        """A SQL insight (`HogQLQuery`): checked and compiled by `app.clickhouse.hogql`, run here."""
        from app.clickhouse.hogql import run_hogql

        return await run_hogql(self, query, ctx)

    async def earliest_event(self, team_id: int) -> datetime | None:
        table = f"{self.client.database}.events"
        sql = f"SELECT minOrNull(timestamp) FROM {table} WHERE team_id = {{team_id:Int64}}"
        [(earliest,)] = await self._query(sql, {"team_id": team_id})
        if isinstance(earliest, datetime) and earliest.tzinfo is None:
            return earliest.replace(tzinfo=UTC)
        return earliest if isinstance(earliest, datetime) else None

    async def lifecycle_rows(self, plan: LifecyclePlan) -> Sequence[Sequence[Any]]:
        statement = await asyncio.to_thread(lifecycle_sql, plan, self.client.database)
        rows = await self._query(statement.sql, statement.parameters)
        return [(_naive(period), status, value) for period, status, value in rows]

    async def stickiness_rows(self, plan: StickinessPlan) -> Sequence[Sequence[Any]]:
        statement = await asyncio.to_thread(stickiness_sql, plan, self.client.database)
        return await self._query(statement.sql, statement.parameters)


class Row:
    """A result row as the engine reads PostgreSQL's (`row._mapping[name]`)."""

    __slots__ = ("_mapping",)

    def __init__(self, mapping: dict[str, Any]) -> None:
        self._mapping = mapping


def _naive(bucket: Any) -> datetime:
    if isinstance(bucket, int):  # a DateTime through chdb's Arrow output: seconds since the epoch
        return datetime.fromtimestamp(bucket, UTC).replace(tzinfo=None)
    if isinstance(bucket, datetime):
        return bucket.replace(tzinfo=None)
    if isinstance(bucket, date):
        return datetime(bucket.year, bucket.month, bucket.day)
    return datetime.fromisoformat(str(bucket))


def _query_error(exc: ClickHouseError) -> Exception:
    if exc.code == TIMEOUT_EXCEEDED:
        return QueryTimeout("The query took too long and was cancelled.")
    if exc.code == MEMORY_LIMIT_EXCEEDED:
        return QueryTooLarge(
            "The query needed more memory than ClickHouse allows one query "
            "(TILECAST_CLICKHOUSE_MAX_MEMORY_BYTES); use a shorter date range, fewer breakdown values or a "
            "longer interval"
        )
    if exc.code in (TOO_MANY_ROWS, TOO_MANY_ROWS_OR_BYTES):
        return QueryTooLarge(
            "The query's result has more rows than ClickHouse allows one query "
            "(TILECAST_CLICKHOUSE_MAX_RESULT_ROWS); use a shorter date range or fewer breakdown values"
        )
    if exc.code == CANNOT_COMPILE_REGEXP:
        return InvalidQuery(f"Invalid regular expression in a property filter: {_first_line(str(exc))}")
    return exc


def _first_line(message: str) -> str:
    return message.strip().splitlines()[0] if message.strip() else message
