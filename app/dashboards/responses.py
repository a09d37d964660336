"""A dashboard's response body: the model's own JSON, with each cached tile result passed through as the
JSON text PostgreSQL holds (`orjson.Fragment`), never decoded and encoded again. The handler returns the
body itself, so FastAPI does not validate the model a second time; `response_model` still documents it.
A page of dashboards is returned the same way (`list_response`)."""

import uuid

import orjson
from fastapi import Response
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel

from app.dashboards.schemas import Dashboard, DashboardBasic
from app.rendering import Format, render
from app.schemas import Paginated


def dashboard_response(fmt: Format, model: Dashboard, status_code: int = 200) -> Response:
    if fmt is not Format.json:
        for tile in model.tiles or ():
            if tile.insight is not None:
                tile.insight.with_decoded_result()
        rendered = render(fmt, model)
        assert isinstance(rendered, PlainTextResponse)
        rendered.status_code = status_code
        return rendered
    body = model.model_dump(mode="json", by_alias=True)
    raws = [
        (tile.insight.raw_result, tile_body["insight"])
        for tile, tile_body in zip(model.tiles or (), body["tiles"] or (), strict=True)
        if tile.insight is not None and tile.insight.raw_result is not None
    ]
    for raw, insight in raws:
        insight["result"] = orjson.Fragment(raw.text)
    try:
        return Response(orjson.dumps(body), status_code=status_code, media_type="application/json")
    except TypeError:
        # An integer past 64 bits (a stored query may hold one): the standard library's encoder, as before.
        for raw, insight in raws:
            insight["result"] = raw.value()
        return JSONResponse(body, status_code=status_code)


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
