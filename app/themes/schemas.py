"""Data color theme payloads. `is_global` is a boolean (the docs page types it as a string by mistake)."""

import re
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator

from app.schemas import UserBasic

_HEX_COLOR = re.compile(r"^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6}|[0-9a-fA-F]{8})$")


def _check_colors(value: list[str] | None) -> list[str] | None:
    if value is None:
        raise ValueError("This field may not be null.")
    if not value:
        raise ValueError("Provide at least one color.")
    for color in value:
        if not _HEX_COLOR.match(color):
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

    name: str = Field(max_length=100)
    colors: list[str] = Field(description="A non-empty list of `#RGB`, `#RRGGBB` or `#RRGGBBAA` colors.")

    @field_validator("colors")
    @classmethod
    def _colors(cls, value: list[str]) -> list[str] | None:
        return _check_colors(value)


class DataColorThemeUpdate(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: str | None = Field(default=None, max_length=100)
    colors: list[str] | None = Field(default=None, description="A non-empty list of hex colors.")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        if value is None:
            raise ValueError("This field may not be null.")
        return value

    @field_validator("colors")
    @classmethod
    def _colors(cls, value: list[str] | None) -> list[str] | None:
        return _check_colors(value)
