"""Dispatch by query kind: check, parse, then compute on a backend. TrendsQuery, FunnelsQuery, RetentionQuery,
LifecycleQuery and StickinessQuery are computed.

`prepare` is everything decided from the query alone (its JSON, kind, schema, what the engine supports, the
limits on its filters); `validate` adds what the clock and the team's timezone decide (its date range and
buckets), which is all an insight's query is checked against when it is saved; `compute` runs it.
"""

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from app.query import funnels
from app.query.backend import QueryBackend
from app.query.base import (
    ComputedResult,
    InvalidQuery,
    QueryContext,
    QueryError,
    QueryLimits,
    UnsupportedQuery,
)
from app.query.formulas import check_formulas
from app.query.funnels import FunnelsQuery, check_funnels, compute_funnels
from app.query.hogql.query import WRAPPERS, HogQLQuery
from app.query.kinds import KindQuery, prepare_kind
from app.query.lifecycle import LifecycleQuery
from app.query.limits import check_filters
from app.query.retention import RetentionQuery
from app.query.schema import TrendsQuery, check_json, check_supported, parse_trends
from app.query.stickiness import StickinessQuery
from app.query.trends import check_trends, compute_trends

# Kinds computed by their own model (`KindQuery`): parsed, checked and computed through its methods.
OTHER_KINDS: dict[str, type[KindQuery]] = {
    "RetentionQuery": RetentionQuery,
    "LifecycleQuery": LifecycleQuery,
    "StickinessQuery": StickinessQuery,
    "HogQLQuery": HogQLQuery,
}
# The kinds parsed and computed by their own modules here.
KINDS = frozenset({"TrendsQuery", "FunnelsQuery"})


def _source(query: Any) -> Any:
    if isinstance(query, dict) and query.get("kind") in ("InsightVizNode", *WRAPPERS):
        return query.get("source")
    return query


@contextmanager
def _from_root(query: Any) -> Iterator[None]:
    """Errors found inside the source query name their field from the query's root (`source.…` if wrapped)."""
    try:
        yield
    except QueryError as exc:
        if exc.path is not None and _source(query) is not query:
            exc.path = ("source", *exc.path)
        raise


def prepare(query: Any, limits: QueryLimits) -> TrendsQuery | FunnelsQuery | KindQuery:
    """The parsed query, or the first reason it cannot be computed. CPU only, no database: run it in a
    thread for a large query."""
    if not isinstance(query, dict) or not isinstance(query.get("kind"), str):
        raise InvalidQuery("The query must be an object with a `kind`.")
    check_json(query)
    source = _source(query)
    if not isinstance(source, dict) or not isinstance(source.get("kind"), str):
        raise InvalidQuery(f"A {query['kind']} needs a `source` query with a `kind`.")
    if source["kind"] in OTHER_KINDS:
        with _from_root(query):
            return prepare_kind(OTHER_KINDS[source["kind"]], query, limits)
    if source["kind"] not in KINDS:
        raise UnsupportedQuery(f"{source['kind']} is not supported")
    with _from_root(query):
        if source["kind"] == "FunnelsQuery":
            funnel = funnels.parse_funnels(query)
            funnels.check_funnel_filters(funnel, limits)
            funnels.check_supported(funnel)
            return funnel
        parsed = parse_trends(query)
        # Limits first: a query over them is refused even when it also asks for something not supported yet.
        check_filters(parsed, limits)
        check_supported(parsed)
        check_formulas(parsed)
    return parsed


def validate(query: Any, ctx: QueryContext) -> None:
    """Raise what `compute` would refuse before running any SQL (`date_from: "all"` counted from now)."""
    parsed = prepare(query, ctx.limits)
    with _from_root(query):
        if isinstance(parsed, KindQuery):
            return parsed.check(ctx)
        if isinstance(parsed, FunnelsQuery):
            check_funnels(parsed, ctx)
        else:
            check_trends(parsed, ctx)


async def compute(query: Any, ctx: QueryContext, backend: QueryBackend) -> ComputedResult:
    """Compute an insight query (`InsightVizNode` wrapping a source, or a bare source)."""
    parsed = await asyncio.to_thread(prepare, query, ctx.limits)
    backend.check_kind(_source(query)["kind"])  # prepare checked the source's kind
    with _from_root(query):
        if isinstance(parsed, KindQuery):
            return await parsed.compute(ctx, backend)
        if isinstance(parsed, FunnelsQuery):
            return await compute_funnels(parsed, ctx, backend)
        return await compute_trends(parsed, ctx, backend)


def query_interval(query: Any) -> str | None:
    """The interval of the query's source (`hour`, `day`, …) or None when it has none; never raises."""
    source = _source(query)
    interval = source.get("interval") if isinstance(source, dict) else None
    return interval if isinstance(interval, str) else None


def runs_in_sql_sandbox(query: Any) -> bool:
    """Whether the query is SQL (HogQL): it runs on the team's sandbox connection, never on the caller's."""
    source = _source(query)
    return isinstance(source, dict) and source.get("kind") == "HogQLQuery"


def filters_test_accounts(query: Any) -> bool:
    """Whether the query's source asks for the team's test-account filters (`filterTestAccounts`)."""
    source = _source(query)
    return isinstance(source, dict) and source.get("filterTestAccounts") is True
