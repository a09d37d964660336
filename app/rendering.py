"""The `format` query parameter: `json` (default) or `txt` (a short plain-text rendering)."""

from enum import StrEnum
from typing import Annotated, TypeVar

from fastapi import Depends, Query
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel

from app.schemas import Paginated


class Format(StrEnum):
    json = "json"
    txt = "txt"


def get_format(
    format: Annotated[Format, Query(description="`json` (default) or `txt`.")] = Format.json,
) -> Format:
    return format


FormatDep = Annotated[Format, Depends(get_format)]


M = TypeVar("M", bound=BaseModel)


def render(fmt: Format, model: M) -> M | PlainTextResponse:
    """The model itself for JSON; its plain-text form for `txt`."""
    if fmt is Format.json:
        return model
    if isinstance(model, Paginated):
        lines = [f"{model.count} total"] + [item.to_text() for item in model.results]
        return PlainTextResponse("\n".join(lines) + "\n")
    to_text = getattr(model, "to_text", None)
    return PlainTextResponse(to_text() if to_text else model.model_dump_json(indent=2))
