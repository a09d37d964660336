"""ASGI middleware: optional trailing slashes without redirects, bounded request bodies, CORS for the API, and
one log line per request."""

import logging
import time

from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app import metrics
from app.errors import PayloadTooLarge, error_response
from app.paths import CAPTURE_PATHS, is_capture_path, loggable_path
from app.query.hogql.context import CURRENT_SANDBOX

access_logger = logging.getLogger("tilecast.access")


class TrailingSlashMiddleware:
    """Serve `/api/...` and capture paths with or without the trailing slash, never redirecting (their
    routes end in `/`)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path: str = scope["path"]
            if (path.startswith("/api/") and not path.endswith("/")) or path in CAPTURE_PATHS:
                scope = dict(scope, path=path + "/")
                if raw := scope.get("raw_path"):
                    scope["raw_path"] = raw + b"/"
        await self.app(scope, receive, send)


class _BodyTooLarge(Exception):
    pass


class BodyLimitMiddleware:
    """Refuse a body larger than `limit` bytes with 413, before the app parses it or authenticates anyone: a
    declared `Content-Length` over the limit is refused unread, and a streamed body stops being read as soon
    as it passes the limit. Capture paths bound their own bodies (larger, with a plain-text 413)."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or is_capture_path(scope["path"]):
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length":
                if not value.isdigit() or int(value) > self.limit:
                    await self._refuse(scope, receive, send)
                    return
                break
        received = 0
        exceeded = False
        started = False

        async def limited_receive() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    exceeded = True
                    raise _BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if exceeded:
                return  # whatever the app answers to a body it could not finish reading, the answer is 413
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if not exceeded:
                raise
        if exceeded and not started:
            await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = error_response(PayloadTooLarge(f"Request body is larger than {self.limit} bytes."))
        await response(scope, receive, send)


class AccessLogMiddleware:
    """One log line per request (method, path, status and duration; never the query string: it may carry
    `personal_api_key`), and the request's metrics, labelled by its route's path template."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            seconds = time.perf_counter() - start
            method = scope["method"]
            path = loggable_path(scope["path"])
            access_logger.info(
                "%s %s %d %.1fms",
                method,
                path,
                status,
                seconds * 1000,
                extra={
                    "method": method,
                    "path": path,
                    "status": status,
                    "duration_ms": round(seconds * 1000, 1),
                },
            )
            template = metrics.route_template(scope)
            metrics.REQUESTS.labels(method, template, str(status)).inc()
            metrics.REQUEST_SECONDS.labels(method, template).observe(seconds)


class ApiCORSMiddleware:
    """CORS on `/api/…` for the origins of `TILECAST_CORS_ALLOWED_ORIGINS` (Starlette's `CORSMiddleware`), so
    that their pages may call the API and open `stream_tiles` with `EventSource`. Capture paths answer CORS
    themselves, to any origin, as PostHog's capture does."""

    def __init__(self, app: ASGIApp, origins: list[str]) -> None:
        self.app = app
        self.cors = CORSMiddleware(
            app,
            allow_origins=origins,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            # `Last-Event-ID`: sent by `EventSource` when it reconnects to a stream.
            allow_headers=["Authorization", "Content-Type", "Last-Event-ID"],
            max_age=600,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/api/"):
            await self.cors(scope, receive, send)
        else:
            await self.app(scope, receive, send)


class SandboxContextMiddleware:
    """Makes the app's SQL sandbox (`app.state.sandbox`) the one SQL insights of this request run on,
    including the renders the request starts (streams, tiles)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        application = scope.get("app")
        sandbox = getattr(getattr(application, "state", None), "sandbox", None)
        if sandbox is not None:
            CURRENT_SANDBOX.set(sandbox)
        await self.app(scope, receive, send)
