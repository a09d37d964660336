"""Payloads of the query endpoint."""

from datetime import datetime
from typing import Annotated, Any

import orjson
from fastapi import Response
from fastapi.responses import JSONResponse
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from app.validation import reject_nul_in_query


class QueryRequest(BaseModel):
    model_config = ConfigDict(
        extra="ignore",
        json_schema_extra={
            "examples": [
                {
                    "query": {
                        "kind": "TrendsQuery",
                        "series": [{"kind": "EventsNode", "event": "$pageview", "math": "total"}],
                        "interval": "day",
                        "dateRange": {"date_from": "-7d"},
                    },
                    "refresh": "blocking",
                }
            ]
        },
    )

    query: Annotated[dict[str, Any], AfterValidator(reject_nul_in_query)] = Field(
        description="A query node, e.g. a `TrendsQuery` or an `InsightVizNode`."
    )
    refresh: str | None = Field(
        default=None, description="`blocking` (default), `force_blocking`, `force_cache`, … as for insights."
    )


class QueryResponse(BaseModel):
    results: Any
    hasMore: bool
    is_cached: bool
    last_refresh: datetime | None
    next_allowed_client_refresh: datetime | None
    cache_key: str
    cache_target_age: datetime | None
    timezone: str
    resolved_date_range: dict[str, Any] | None
    query_status: None = None

    def json_response(self, extra: dict[str, Any] | None = None) -> Response:
        """The body of a computed result (a cached one passes through as text: `service._cached_response`),
        with the fields its kind answers besides the results (`extra`: HogQL's `columns`, `types`, …)."""
        body = {**self.model_dump(mode="json"), **(extra or {})}
        try:
            return Response(orjson.dumps(body), media_type="application/json")
        except TypeError:  # an integer past 64 bits: the standard library's encoder
            return JSONResponse(body)
