"""Input types shared by every resource: ids that fit PostgreSQL's integer, text without NUL characters.

PostgreSQL cannot store a NUL character in text or JSONB, nor an id beyond int32: such input is refused
here with a 400 naming the field (or a 404 for an id in the URL), never left for the database to reject.
"""

from typing import Annotated, Any

from fastapi import Path
from pydantic import AfterValidator, Field, StringConstraints
from pydantic_core import PydanticCustomError

MAX_INT32 = 2_147_483_647


def _reject_nul(value: Any) -> Any:
    """Raise DRF's error when a string anywhere in `value` (a string, list or JSON object) holds a NUL
    or cannot be encoded as UTF-8."""
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
            _reject_nul(item)
    elif isinstance(value, list):
        for item in value:
            _reject_nul(item)
    return value


def reject_nul(value: Any) -> Any:
    return _reject_nul(value)


# Text that PostgreSQL can store.
SafeStr = Annotated[str, AfterValidator(_reject_nul)]
# The same, at most 400 characters (names and other `varchar(400)` columns).
SafeStr400 = Annotated[str, StringConstraints(max_length=400), AfterValidator(_reject_nul)]
# An id given in a body: a 400 naming the field when out of range.
BodyId = Annotated[int, Field(ge=-MAX_INT32 - 1, le=MAX_INT32)]
# An id in the URL: out of range matches no object (404).
PathId = Annotated[int, Path(le=MAX_INT32, description="A unique integer value identifying this object.")]
