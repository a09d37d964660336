"""What the engine's parts share: the team context of a query and the errors a query can raise."""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class QueryContext:
    """Everything a computation depends on besides the query itself. `now` is fixed for the whole query so
    that every series and the compare period agree on it."""

    team_id: int
    timezone: str
    now: datetime


class QueryError(Exception):
    """A query that cannot be computed. Rendered as a tile/insight `error` `{type, message}` or a 400."""

    type = "QueryError"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def as_dict(self) -> dict[str, str]:
        return {"type": self.type, "message": self.message}


class InvalidQuery(QueryError):
    """The query does not match PostHog's schema (missing fields, wrong types)."""

    type = "ValidationError"


class UnsupportedQuery(QueryError):
    """A kind, or a field inside a query, that the engine does not implement; the message names it."""

    type = "UnsupportedQuery"


class QueryTimeout(QueryError):
    type = "QueryTimeout"


@dataclass
class ComputedResult:
    """The engine's answer for one query: PostHog's `results` list and what goes around it."""

    results: list[dict[str, Any]]
    has_more: bool = False
    resolved_date_range: dict[str, str] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
