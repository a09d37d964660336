"""Data color theme payloads. `is_global` is a boolean (the docs page types it as a string by mistake)."""

import re
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator
from pydantic_core import PydanticCustomError

from app.schemas import UserBasic

_HEX_COLOR = re.compile(r"#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6}|[0-9a-fA-F]{8})")

# DRF's CharField: surrounding whitespace is trimmed before the length is checked.
ThemeName = Annotated[str, StringConstraints(strip_whitespace=True, max_length=100)]


def _null() -> PydanticCustomError:
    return PydanticCustomError("null", "This field may not be null.")


def _check_name(value: str | None) -> str:
    if value is None:
        raise _null()
    if not value:
        raise PydanticCustomError("blank", "This field may not be blank.")
    if "\x00" in value:
        # PostgreSQL text cannot hold NUL; DRF refuses it with this code.
        raise PydanticCustomError("null_characters_not_allowed", "Null characters are not allowed.")
    return value


def _check_colors(value: list[str] | None) -> list[str]:
    if value is None:
        raise _null()
    if not value:
        raise ValueError("Provide at least one color.")
    for color in value:
        # fullmatch: `$` would let a trailing newline through.
        if not _HEX_COLOR.fullmatch(color):
            raise ValueError(f'"{color}" is not a color: use #RGB, #RRGGBB or #RRGGBBAA.')
    return value


class DataColorTheme(BaseModel):
    id: int
    name: str
    colors: list[str]
    is_global: bool
    created_at: datetime | None
    created_by: UserBasic | None


class DataColorThemeCreate(BaseModel):
    model_config = ConfigDict(
        extra="ignore",
        json_schema_extra={"examples": [{"name": "Brand", "colors": ["#1d4aff", "#621da6", "#42827e"]}]},
    )

    name: ThemeName
    colors: list[str] = Field(description="A non-empty list of `#RGB`, `#RRGGBB` or `#RRGGBBAA` colors.")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return _check_name(value)

    @field_validator("colors")
    @classmethod
    def _colors(cls, value: list[str]) -> list[str]:
        return _check_colors(value)


class DataColorThemeUpdate(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: ThemeName | None = None
    colors: list[str] | None = Field(default=None, description="A non-empty list of hex colors.")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str | None) -> str:
        return _check_name(value)

    @field_validator("colors")
    @classmethod
    def _colors(cls, value: list[str] | None) -> list[str]:
        return _check_colors(value)
