"""The `format` query parameter: `json` (default) or `txt` (a short plain-text rendering)."""

from enum import StrEnum
from typing import Annotated, TypeVar

from fastapi import APIRouter, Depends, Query, Response, status
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel

from app.schemas import Paginated


class Format(StrEnum):
    json = "json"
    txt = "txt"


async def get_format(
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


async def _hard_delete_not_allowed(id: str) -> Response:
    """Hard delete of this model is not allowed. Use a patch API call to set "deleted" to true."""
    # `id` is a string on purpose: the answer is 405 for every id, even a malformed one (DESIGN.md).
    return Response(status_code=status.HTTP_405_METHOD_NOT_ALLOWED)


def add_hard_delete_refusal(router: APIRouter, name: str, scope: str) -> None:
    """`DELETE /{id}/` → 405 with an empty body, always (DESIGN.md); documented with PostHog's scope."""
    router.add_api_route(
        "/{id}/",
        _hard_delete_not_allowed,
        methods=["DELETE"],
        name=name,
        status_code=status.HTTP_405_METHOD_NOT_ALLOWED,
        response_class=Response,
        responses={405: {"description": 'Always: soft delete with PATCH `{"deleted": true}`.'}},
        openapi_extra={"security": [{"PersonalAPIKeyAuth": [scope]}]},
    )
