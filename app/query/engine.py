"""Dispatch by query kind: parse, then compute on a backend. TrendsQuery is the one kind implemented."""

from typing import Any

from app.query.backend import QueryBackend
from app.query.base import ComputedResult, InvalidQuery, QueryContext, UnsupportedQuery
from app.query.schema import parse_trends
from app.query.trends import compute_trends


def _source(query: Any) -> Any:
    if isinstance(query, dict) and query.get("kind") == "InsightVizNode":
        return query.get("source")
    return query


async def compute(query: Any, ctx: QueryContext, backend: QueryBackend) -> ComputedResult:
    """Compute an insight query (`InsightVizNode` wrapping a source, or a bare source)."""
    if not isinstance(query, dict) or not isinstance(query.get("kind"), str):
        raise InvalidQuery("The query must be an object with a `kind`.")
    source = _source(query)
    if not isinstance(source, dict) or not isinstance(source.get("kind"), str):
        raise InvalidQuery("An InsightVizNode needs a `source` query with a `kind`.")
    if source["kind"] != "TrendsQuery":
        raise UnsupportedQuery(f"{source['kind']} is not supported")
    return await compute_trends(parse_trends(query), ctx, backend)


def query_interval(query: Any) -> str | None:
    """The interval of the query's source (`hour`, `day`, …) or None when it has none; never raises."""
    source = _source(query)
    interval = source.get("interval") if isinstance(source, dict) else None
    return interval if isinstance(interval, str) else None
