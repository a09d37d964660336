"""The seam between the engine and the database that holds the events.

The engine plans each trends series (`trends_sql.SeriesPlan`: events, filters as the query states them,
math, breakdown) and resolves its period; a backend turns that into rows. `PostgresBackend` compiles plans to
SQLAlchemy Core over the `events` table (`trends_sql`) on the caller's connection; `ClickHouseBackend`
(`app.clickhouse.backend`) compiles the same plans to ClickHouse SQL. Lifecycle and stickiness plans
(`lifecycle_sql.LifecyclePlan`, `stickiness_sql.StickinessPlan`, filters as the query states them) go the same
way. The other kinds (funnels, retention, HogQL) still hand PostgreSQL statements to `fetch`, so only
PostgreSQL runs them: `check_kind` refuses them by name on a backend that cannot.
"""

import asyncio
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import Executable
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from app.query.base import QueryTimeout
from app.query.dates import ResolvedRange
from app.query.funnels_sql import FunnelPlan
from app.query.lifecycle_sql import LifecyclePlan, lifecycle_statement
from app.query.retention_sql import RetentionPlan, retention_statement
from app.query.stickiness_sql import StickinessPlan, stickiness_statement
from app.query.trends_sql import SeriesPlan, earliest_statement, series_statement


class QueryBackend(Protocol):
    def check_kind(self, kind: str) -> None:
        """Raise `UnsupportedQuery` naming `kind` when this backend cannot compute that kind of query."""
        ...

    async def fetch(self, statement: Executable, *, reusable: bool = True) -> Sequence[Any]:
        """Run one PostgreSQL statement (bound parameters only) and return its rows. `reusable`: the
        statement's shape is a common one, worth keeping compiled for the next query of the same shape."""
        ...

    async def trends_series(
        self, plan: SeriesPlan, period: ResolvedRange, *, reusable: bool = True
    ) -> Sequence[Sequence[Any]]:
        """The rows of one trends series over one period, each `(bucket?, breakdown?, rank?, value)`: the
        bucket (a naive local datetime) unless the plan is a total value, the breakdown value and its rank
        with a breakdown (`trends_sql.series_statement` says what they mean)."""
        ...

    async def retention_rows(self, plan: RetentionPlan) -> Sequence[Any]:
        """RetentionQuery's cells: rows whose `_mapping` holds `retention_sql.retention_statement`'s columns
        (`breakdown` and `rank` with a breakdown, `cohort` a naive local datetime, `offset`, `value`)."""
        ...

    async def funnel_rows(
        self, plan: FunnelPlan, period: ResolvedRange, viz: str, steps: tuple[int, int], *, work_mem_kb: int
    ) -> Sequence[Any]:
        """FunnelsQuery's rows (with `_mapping`) for `viz`, as `funnels.funnel_statement` returns them;
        `steps`: the (from, to) steps of trends and time to convert."""
        ...

    async def earliest_event(self, team_id: int) -> datetime | None:
        """The team's first event's timestamp (aware), None without events."""
        ...

    async def lifecycle_rows(self, plan: LifecyclePlan) -> Sequence[Sequence[Any]]:
        """LifecycleQuery's counts: rows `(period, status, value)`, as `lifecycle_sql.lifecycle_statement`
        returns them (`period` a naive local datetime)."""
        ...

    async def stickiness_rows(self, plan: StickinessPlan) -> Sequence[Sequence[Any]]:
        """One StickinessQuery series over one period: rows `(intervals, value)`, as
        `stickiness_sql.stickiness_statement` returns them."""
        ...


# Compiled statements are kept per shape (SQLAlchemy's cache, 500 of them): one of a query with hundreds of
# filters holds megabytes, so those are compiled each time instead of being kept.
_NOT_KEPT = {"compiled_cache": None}


class PostgresBackend:
    """Runs statements on a connection whose transaction the caller owns (and times out)."""

    def __init__(self, connection: AsyncConnection) -> None:
        self.connection = connection

    def check_kind(self, kind: str) -> None:
        return None  # every kind

    async def fetch(self, statement: Executable, *, reusable: bool = True) -> Sequence[Any]:
        options = {} if reusable else _NOT_KEPT
        try:
            return (await self.connection.execute(statement, execution_options=options)).all()
        except DBAPIError as exc:
            if getattr(exc.orig, "sqlstate", None) == "57014":  # query_canceled: the statement timeout
                raise QueryTimeout("The query took too long and was cancelled.") from exc
            raise

    async def trends_series(
        self, plan: SeriesPlan, period: ResolvedRange, *, reusable: bool = True
    ) -> Sequence[Sequence[Any]]:
        # Building a statement with many filters costs milliseconds of CPU: off the event loop.
        statement = await asyncio.to_thread(series_statement, plan, period)
        return await self.fetch(statement, reusable=reusable)

    async def retention_rows(self, plan: RetentionPlan) -> Sequence[Any]:
        from app.query.kinds import fetch  # the kinds import this module

        return await fetch(self, retention_statement(plan))

    async def funnel_rows(
        self, plan: FunnelPlan, period: ResolvedRange, viz: str, steps: tuple[int, int], *, work_mem_kb: int
    ) -> Sequence[Any]:
        from app.query.funnels import postgres_funnel_rows  # the engine imports this module

        return await postgres_funnel_rows(self, plan, period, viz, steps, work_mem_kb)

    async def earliest_event(self, team_id: int) -> datetime | None:
        earliest: datetime | None = (await self.fetch(earliest_statement(team_id)))[0][0]
        return earliest

    async def lifecycle_rows(self, plan: LifecyclePlan) -> Sequence[Sequence[Any]]:
        from app.query.kinds import fetch  # the kinds import this module

        return await fetch(self, lifecycle_statement(plan))

    async def stickiness_rows(self, plan: StickinessPlan) -> Sequence[Sequence[Any]]:
        from app.query.kinds import fetch  # the kinds import this module

        return await fetch(self, stickiness_statement(plan))
