"""A dashboard's response body: the model's own JSON, with each cached tile result passed through as the
JSON text PostgreSQL holds (`orjson.Fragment`), never decoded and encoded again. The handler returns the
body itself, so FastAPI does not validate the model a second time; `response_model` still documents it.
A page of dashboards is returned the same way (`list_response`)."""

import orjson
from fastapi import Response
from fastapi.responses import JSONResponse, PlainTextResponse

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


def list_response(fmt: Format, page: Paginated[DashboardBasic]) -> Response:
    """A page of dashboards: the model's own JSON (pydantic's encoder, as FastAPI's), not validated again."""
    if fmt is not Format.json:
        rendered = render(fmt, page)
        assert isinstance(rendered, PlainTextResponse)
        return rendered
    return Response(page.model_dump_json(by_alias=True), media_type="application/json")
