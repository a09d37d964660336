"""ASGI middleware: optional trailing slashes without redirects, and one log line per request."""

import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

access_logger = logging.getLogger("tilecast.access")


# Capture paths the SDKs post to, with or without the slash.
CAPTURE_PATHS = frozenset({"/capture", "/batch", "/e", "/i/v0/e"})


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


class AccessLogMiddleware:
    """Method, path, status and duration. Never the query string: it may carry `personal_api_key`."""

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
            access_logger.info(
                "%s %s %d %.1fms",
                scope["method"],
                scope["path"],
                status,
                (time.perf_counter() - start) * 1000,
            )
