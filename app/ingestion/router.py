"""Capture endpoints, outside `/api`: the paths PostHog's SDKs post to."""

from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from app.db import SessionDep
from app.ingestion import service
from app.middleware import CAPTURE_PATHS

router = APIRouter(tags=["capture"])


async def _capture(request: Request, session: SessionDep) -> Response:
    """Capture one event, an array of events or a `batch` envelope (PostHog's wire format)."""
    body = await request.body()
    compression = request.query_params.get("compression") or request.headers.get("content-encoding")
    try:
        payload = service.decode_body(body, compression)
        await service.capture(session, payload, datetime.now(UTC))
    except service.CaptureError as exc:
        return PlainTextResponse(exc.message, status_code=exc.status_code)
    return JSONResponse({"status": 1})


for _path in sorted(CAPTURE_PATHS):
    _name = "capture_" + _path.strip("/").replace("/", "_")
    router.add_api_route(_path + "/", _capture, methods=["POST"], name=_name, operation_id=_name)
