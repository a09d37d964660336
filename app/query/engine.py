"""Dispatch by query kind: parse, then compute on a backend. (The trends module registers itself here.)"""

from typing import Any

from app.query.backend import QueryBackend
from app.query.base import ComputedResult, InvalidQuery, QueryContext, UnsupportedQuery


async def compute(query: Any, ctx: QueryContext, backend: QueryBackend) -> ComputedResult:
    """Compute an insight query (`InsightVizNode` wrapping a source, or a bare source)."""
    if not isinstance(query, dict) or not isinstance(query.get("kind"), str):
        raise InvalidQuery("The query must be an object with a `kind`.")
    raise UnsupportedQuery(f"Query kind {query['kind']!r} is not supported yet.")
