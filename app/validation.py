"""Input types shared by every resource: ids that fit PostgreSQL's integer, text without NUL characters.

PostgreSQL cannot store a NUL character in text or JSONB, nor an id beyond int32: such input is refused
here with a 400 naming the field (or a 404 for an id in the URL), never left for the database to reject.
"""

import sys
from typing import Annotated, Any

from fastapi import Path
from pydantic import AfterValidator, Field, StringConstraints
from pydantic_core import PydanticCustomError

MAX_INT32 = 2_147_483_647
# JSON given for storage (filters, variables, colors, queries) nests at most this deep: real ones nest a
# handful of levels, and much deeper values cannot be serialised back (nor walked without recursion limits).
MAX_JSON_DEPTH = 64
# Lists in a request (tags, dashboard ids) hold at most this many items: each becomes a row or a bind
# parameter, and a statement takes at most 32,767 parameters.
MAX_LIST_ITEMS = 1000


def _reject_nul(value: Any, depth: int = 0, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Raise DRF's error when a string anywhere in `value` (a string, list or JSON object) holds a NUL
    or cannot be encoded as UTF-8, or when objects and lists nest deeper than MAX_JSON_DEPTH."""
    if depth > max_depth:
        raise PydanticCustomError("invalid", f"JSON nested more than {max_depth} levels deep.")
    if isinstance(value, str):
        if "\x00" in value:
            raise PydanticCustomError("null_characters_not_allowed", "Null characters are not allowed.")
        if not value.isascii():
            try:
                value.encode()
            except UnicodeEncodeError:
                # A lone surrogate (JSON "\ud800") is valid JSON but no text PostgreSQL can store.
                raise PydanticCustomError("invalid", "Not a valid string.") from None
    elif isinstance(value, dict):
        for key, item in value.items():
            _reject_nul(key)
            _reject_nul(item, depth + 1, max_depth)
    elif isinstance(value, list):
        for item in value:
            _reject_nul(item, depth + 1, max_depth)
    return value


def reject_nul(value: Any) -> Any:
    return _reject_nul(value)


def reject_nul_in_query(value: Any) -> Any:
    """`reject_nul` for an insight's query, whose own check (`app.query`) refuses nesting past 64 levels
    naming where it happens; here only a walk that runs out of stack is refused."""
    try:
        return _reject_nul(value, max_depth=sys.maxsize)
    except RecursionError:
        raise PydanticCustomError("invalid", "JSON nested too deeply.") from None


# Text that PostgreSQL can store.
SafeStr = Annotated[str, AfterValidator(_reject_nul)]
# The same, at most 400 characters (names and other `varchar(400)` columns).
SafeStr400 = Annotated[str, StringConstraints(max_length=400), AfterValidator(_reject_nul)]
# An id given in a body: a 400 naming the field when out of range.
BodyId = Annotated[int, Field(ge=-MAX_INT32 - 1, le=MAX_INT32)]
# Tags and ids given as a list.
TagList = Annotated[list[SafeStr], Field(max_length=MAX_LIST_ITEMS)]
IdList = Annotated[list[BodyId], Field(max_length=MAX_LIST_ITEMS)]
# An id in the URL: out of range matches no object (404).
PathId = Annotated[int, Path(le=MAX_INT32, description="A unique integer value identifying this object.")]
