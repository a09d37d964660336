"""What the engine's parts share: the team context of a query and the errors a query can raise."""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

MB = 1024 * 1024


@dataclass(frozen=True)
class QueryLimits:
    """How much work one query may ask for (settings `TILECAST_QUERY_MAX_*`; these defaults are theirs)."""

    # Breakdown values (`breakdown_limit`) x time buckets of one series and period; without a breakdown, the
    # buckets alone.
    breakdown_points: int = 50_000
    # The JSON of a computed result, measured before it is stored.
    result_bytes: int = 20 * MB
    # Values in one property filter.
    filter_values: int = 10_000
    # Bind parameters of one statement (asyncpg refuses more than 32,767; compiling costs time on the loop).
    parameters: int = 500
    # PostgreSQL's work_mem (kB) for statements that sort the events per actor (funnels); 0: the server's.
    work_mem_kb: int = 65_536


@dataclass(frozen=True)
class QueryContext:
    """Everything a computation depends on besides the query itself. `now` is fixed for the whole query so
    that every series and the compare period agree on it."""

    team_id: int
    timezone: str
    now: datetime
    limits: QueryLimits = QueryLimits()
    # The team's test-account filters (PostHog's property filter dicts), applied where a query says
    # `filterTestAccounts: true`; and its week's first day (0 Sunday, 1 Monday).
    test_account_filters: tuple[dict[str, Any], ...] = ()
    week_start_day: int = 0


Path = tuple[str | int, ...]


class QueryError(Exception):
    """A query that cannot be computed. Rendered as a tile/insight `error` `{type, message}` or a 400.

    `path` is where in the query the problem is (`("breakdownFilter", "breakdown_limit")`), relative to the
    query the engine was given, when one field is to blame; it becomes the 400's `attr`."""

    type = "QueryError"

    def __init__(self, message: str, *, path: Path | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.path = path

    def as_dict(self) -> dict[str, str]:
        return {"type": self.type, "message": self.message}

    def attr(self, prefix: str = "query") -> str:
        """The field to blame as a 400's `attr`: `query__source__breakdownFilter__breakdown_limit`."""
        return "__".join([prefix, *(str(part) for part in self.path or ())])


class InvalidQuery(QueryError):
    """The query does not match PostHog's schema (missing fields, wrong types)."""

    type = "ValidationError"


class UnsupportedQuery(QueryError):
    """A kind, or a field inside a query, that the engine does not implement; the message names it."""

    type = "UnsupportedQuery"


class QueryTooLarge(QueryError):
    """The query asks for more work than a limit allows (`QueryLimits`); the message names the limit."""

    type = "QueryTooLarge"


class QueryTimeout(QueryError):
    type = "QueryTimeout"


class SandboxUnavailable(QueryError):
    """SQL insights cannot run here: the database lacks the setup they need (per-team roles that the
    database user may not create); the message names what an operator runs. Not the query's fault (503)."""

    type = "SandboxUnavailable"


class SandboxBusy(QueryError):
    """Too many SQL queries of one team run at once (its connections are all in use, here or on other
    workers); the client may retry later (429)."""

    type = "SandboxBusy"


@dataclass
class ComputedResult:
    """The engine's answer for one query: PostHog's `results` list and what goes around it."""

    # A list of series or steps (a list of lists for funnel breakdowns); an object for time to convert.
    results: Any
    # Each result's JSON, when the engine serialized them already (to measure them): stored as it is.
    serialized: list[str] | None = None
    has_more: bool = False
    resolved_date_range: dict[str, str] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
