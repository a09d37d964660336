"""HogQL's errors, as PostHog names them (`code` of the 400 body)."""

from app.query.base import QueryError


class HogQLSyntaxError(QueryError):
    """The text is not one HogQL SELECT."""

    type = "HogQLSyntaxError"


class HogQLQueryError(QueryError):
    """An unknown table, field or function, a wrong arity, an unresolved placeholder: named in the message."""

    type = "HogQLQueryError"
