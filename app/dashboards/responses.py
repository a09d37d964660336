"""A dashboard's response body: the model's own JSON, with each cached tile result passed through as the
JSON text PostgreSQL holds (`orjson.Fragment`), never decoded and encoded again. The handler returns the
body itself, so FastAPI does not validate the model a second time; `response_model` still documents it.
A page of dashboards is returned the same way (`list_response`); `stream_tiles` encodes its metadata and
tiles the same way (`dashboard_body`, `tile_body`, `encode`)."""

import json
import uuid
from collections.abc import Sequence
from typing import Any

import orjson
from fastapi import Response
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel

from app.dashboards.schemas import Dashboard, DashboardBasic, Tile
from app.query.cache import RawJSON
from app.rendering import Format, render
from app.schemas import Paginated

# Each insight's cached result as JSON text, and the insight body (a dict of the dumped model) it goes in.
Raws = list[tuple[RawJSON, dict[str, Any]]]


def _raws(tiles: Sequence[Tile], bodies: Sequence[dict[str, Any]]) -> Raws:
    return [
        (tile.insight.raw_result, body["insight"])
        for tile, body in zip(tiles, bodies, strict=True)
        if tile.insight is not None and tile.insight.raw_result is not None
    ]


def dashboard_body(model: Dashboard) -> tuple[dict[str, Any], Raws]:
    """The dashboard's JSON as Python values, its tiles' cached results still to put in (`encode`)."""
    body = model.model_dump(mode="json", by_alias=True)
    return body, _raws(model.tiles or (), body["tiles"] or ())


def tile_body(tile: Tile) -> tuple[dict[str, Any], Raws]:
    body = tile.model_dump(mode="json", by_alias=True)
    return body, _raws([tile], [body])


def encode(content: Any, raws: Raws) -> bytes:
    """`content` as compact JSON, each raw result passed through as the text PostgreSQL holds."""
    for raw, insight in raws:
        insight["result"] = orjson.Fragment(raw.text)
    try:
        return orjson.dumps(content)
    except TypeError:
        # An integer past 64 bits (a stored query may hold one): the standard library's encoder, as
        # Starlette's JSONResponse encodes.
        for raw, insight in raws:
            insight["result"] = raw.value()
        return json.dumps(
            content, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")
        ).encode("utf-8")


def dashboard_response(fmt: Format, model: Dashboard, status_code: int = 200) -> Response:
    if fmt is not Format.json:
        for tile in model.tiles or ():
            if tile.insight is not None:
                tile.insight.with_decoded_result()
        rendered = render(fmt, model)
        assert isinstance(rendered, PlainTextResponse)
        rendered.status_code = status_code
        return rendered
    body, raws = dashboard_body(model)
    return Response(encode(body, raws), status_code=status_code, media_type="application/json")


def _plain_fields(model: object) -> dict[str, object] | str:
    """orjson's fallback for the models of a page: their fields as they are, in declaration order. Only for
    models without aliases, computed or excluded fields (`DashboardBasic`, `UserBasic`, `Paginated`), whose
    JSON is exactly their fields' values (a test compares this body with pydantic's own)."""
    if isinstance(model, BaseModel):
        return model.__dict__
    if isinstance(model, uuid.UUID):  # asyncpg's own UUID class, which orjson does not take as one
        return str(model)
    raise TypeError(f"{type(model).__name__} is not JSON serializable")


def list_response(fmt: Format, page: Paginated[DashboardBasic]) -> Response:
    """A page of dashboards, encoded by orjson from the trusted models' fields (not validated again, nor
    walked by pydantic's serializer); datetimes as pydantic writes them (UTC as `Z`)."""
    if fmt is not Format.json:
        rendered = render(fmt, page)
        assert isinstance(rendered, PlainTextResponse)
        return rendered
    body = orjson.dumps(page, default=_plain_fields, option=orjson.OPT_UTC_Z)
    return Response(body, media_type="application/json")
