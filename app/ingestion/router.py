"""Capture endpoints, outside `/api`: the paths PostHog's SDKs send events to."""

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response

from app import metrics
from app.config import Settings, get_settings
from app.db import SessionDep
from app.ingestion import service
from app.ingestion.errors import CaptureError
from app.paths import CAPTURE_PATHS

router = APIRouter(tags=["capture"])


# Both dependencies are coroutines: FastAPI runs a plain function dependency in a worker thread, and the two
# round trips to a thread were a tenth of a capture worker's CPU under load (py-spy).
async def receive_time() -> datetime:
    """The server's receive time, the `now` of PostHog's timestamp formula (tests override it)."""
    return datetime.now(UTC)


async def capture_settings(request: Request) -> Settings:
    """`get_settings()`, or what overrides it in the app's `dependency_overrides` (tests do)."""
    provider: Callable[[], Settings] = request.app.dependency_overrides.get(get_settings, get_settings)
    return provider()


SettingsDep = Annotated[Settings, Depends(capture_settings)]
NowDep = Annotated[datetime, Depends(receive_time)]


def cors_headers(request: Request) -> dict[str, str]:
    """posthog-js sends from any site: mirror the origin and requested headers, allow credentials."""
    origin = request.headers.get("origin")
    headers = {
        "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
        "Access-Control-Allow-Headers": request.headers.get("access-control-request-headers") or "*",
        "Vary": "Origin, Access-Control-Request-Headers",
    }
    if origin:
        headers["Access-Control-Allow-Origin"] = origin
        headers["Access-Control-Allow-Credentials"] = "true"
    else:
        headers["Access-Control-Allow-Origin"] = "*"
    return headers


_BODY: dict[str, Any] = {
    "requestBody": {
        "required": False,
        "description": (
            'One event, an array of events, or `{"api_key", "batch": [...], "sent_at"}`. May be gzip '
            "(`Content-Encoding: gzip`, `?compression=gzip-js`, or detected), base64, or a form with `data=`."
        ),
        "content": {
            "application/json": {"schema": {"oneOf": [{"type": "object"}, {"type": "array"}]}},
            "application/x-www-form-urlencoded": {
                "schema": {"type": "object", "properties": {"data": {"type": "string"}}}
            },
        },
    }
}
_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": 'Stored: `{"status": 1}`', "content": {"application/json": {}}},
    204: {"description": "Stored, with `beacon=1`"},
    400: {"description": "Malformed payload (plain text)", "content": {"text/plain": {}}},
    401: {"description": "Missing, invalid or unknown project API key (plain text)"},
    413: {"description": "Body or decompressed payload too large (plain text)"},
}


async def capture_events(
    request: Request, session: SessionDep, settings: SettingsDep, now: NowDep
) -> Response:
    """Capture events as PostHog's SDKs send them; the project API key (`phc_…`) is in the payload."""
    cors = cors_headers(request)
    request_input = service.CaptureInput(
        path=request.url.path,
        query=request.query_params,
        content_type=request.headers.get("content-type"),
        content_encoding=request.headers.get("content-encoding"),
        content_length=request.headers.get("content-length"),
        body=request.stream(),
        client_ip=request.client.host if request.client else None,
    )
    try:
        outcome = await service.capture(session, request_input, settings, now, request.app.state.clickhouse)
    except CaptureError as exc:
        # Raised on, so the request's transaction rolls back (a refused request counts nothing); the
        # answer, plain text as PostHog's capture gives it, goes to browsers too.
        exc.headers.update(cors)
        raise
    metrics.CAPTURE_BATCHES.inc()
    metrics.CAPTURE_EVENTS.inc(outcome.stored)
    if outcome.beacon:
        return Response(status_code=204, headers=cors)
    return JSONResponse({"status": 1}, headers=cors)


async def capture_preflight(request: Request) -> Response:
    """CORS preflight: anything goes, as on PostHog's capture."""
    return JSONResponse({"status": "Ok"}, headers=cors_headers(request))


for _path in sorted(CAPTURE_PATHS):
    _name = "capture_" + _path.strip("/").replace("/", "_")
    for _method in ("POST", "GET"):
        router.add_api_route(
            _path + "/",
            capture_events,
            methods=[_method],
            name=f"{_name}_{_method.lower()}",
            operation_id=f"{_name}_{_method.lower()}" if _method == "GET" else _name,
            response_class=JSONResponse,
            responses=_RESPONSES,
            openapi_extra=_BODY if _method == "POST" else None,
        )
    router.add_api_route(
        _path + "/", capture_preflight, methods=["OPTIONS"], name=f"{_name}_options", include_in_schema=False
    )
