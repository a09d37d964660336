"""`/docs` (Swagger UI) and `/redoc`, working offline: their bundles come from the `fastapi-offline` package
and are served by Tilecast itself, their start-up scripts are files of this package, and their pages carry a
Content-Security-Policy of their own (`security.docs_csp`).

The OpenAPI document lists what the API really answers to a request it cannot validate: PostHog's 400
`validation_error` body (`app.errors`), never FastAPI's 422.
"""

import html
from functools import cache
from importlib.resources import files
from typing import Any

from fastapi import FastAPI
from fastapi.responses import HTMLResponse

from app.web.security import docs_csp, page_headers

DOCS_PREFIX = "/static/docs"
# Bundles of the `fastapi-offline` package, and this package's own start-up scripts.
VENDOR_ASSETS: dict[str, str] = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "redoc.standalone.js": "text/javascript; charset=utf-8",
    "favicon.png": "image/png",
}
OWN_ASSETS: dict[str, str] = {
    "swagger-init.js": "text/javascript; charset=utf-8",
    "redoc-init.js": "text/javascript; charset=utf-8",
}

ERROR_SCHEMA_NAME = "ErrorResponse"
ERROR_SCHEMA: dict[str, Any] = {
    "title": ERROR_SCHEMA_NAME,
    "type": "object",
    "description": "PostHog's error body, for every error of the API.",
    "properties": {
        "type": {"type": "string", "example": "validation_error"},
        "code": {"type": "string", "example": "invalid_input"},
        "detail": {"type": "string", "example": "A valid integer is required."},
        "attr": {"type": ["string", "null"], "example": "limit"},
    },
    "required": ["type", "code", "detail", "attr"],
}
VALIDATION_RESPONSE: dict[str, Any] = {
    "description": "Invalid request: PostHog's `validation_error` (or `parse_error`) body, naming the "
    "field in `attr`.",
    "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ERROR_SCHEMA_NAME}"}}},
}
_FASTAPI_VALIDATION_SCHEMAS = ("HTTPValidationError", "ValidationError")


@cache
def docs_asset(name: str) -> bytes:
    if name in OWN_ASSETS:
        return files("app.web").joinpath("static", name).read_bytes()
    return files("fastapi_offline").joinpath("static", name).read_bytes()


def _page(title: str, head: str, body: str) -> HTMLResponse:
    document = (
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{html.escape(title)}</title>\n"
        f'<link rel="icon" type="image/png" href="{DOCS_PREFIX}/favicon.png">\n'
        f"{head}</head>\n<body>\n{body}\n</body>\n</html>\n"
    )
    return HTMLResponse(document, headers=page_headers(docs_csp()))


def swagger_page(title: str, openapi_url: str) -> HTMLResponse:
    url = html.escape(openapi_url, quote=True)
    return _page(
        f"{title} - Swagger UI",
        f'<link rel="stylesheet" href="{DOCS_PREFIX}/swagger-ui.css">\n'
        f'<script src="{DOCS_PREFIX}/swagger-ui-bundle.js" defer></script>\n'
        f'<script src="{DOCS_PREFIX}/swagger-init.js" defer></script>\n',
        f'<div id="swagger-ui" data-openapi-url="{url}"></div>',
    )


def redoc_page(title: str, openapi_url: str) -> HTMLResponse:
    url = html.escape(openapi_url, quote=True)
    return _page(
        f"{title} - ReDoc",
        f'<script src="{DOCS_PREFIX}/redoc.standalone.js" defer></script>\n'
        f'<script src="{DOCS_PREFIX}/redoc-init.js" defer></script>\n',
        f'<div id="redoc" data-openapi-url="{url}"></div>',
    )


def with_posthog_validation_errors(schema: dict[str, Any]) -> dict[str, Any]:
    """Every operation's 422 (FastAPI's `HTTPValidationError`) becomes the 400 the API really answers."""
    for item in schema.get("paths", {}).values():
        for operation in item.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            responses = operation["responses"]
            if responses.pop("422", None) is not None and "400" not in responses:
                responses["400"] = VALIDATION_RESPONSE
    schemas = schema.setdefault("components", {}).setdefault("schemas", {})
    for name in _FASTAPI_VALIDATION_SCHEMAS:
        schemas.pop(name, None)
    schemas[ERROR_SCHEMA_NAME] = ERROR_SCHEMA
    return schema


def install_docs(app: FastAPI) -> None:
    """`/docs`, `/redoc` and their assets, and the OpenAPI document with PostHog's 400. The app must be
    built with `docs_url=None, redoc_url=None` (FastAPI's own pages load their assets from a CDN)."""
    openapi_url = app.openapi_url or "/openapi.json"

    generate = app.openapi
    patched: list[dict[str, Any]] = []

    def openapi() -> dict[str, Any]:
        if not patched:
            patched.append(with_posthog_validation_errors(generate()))
        return patched[0]

    app.openapi = openapi  # type: ignore[method-assign]

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return swagger_page(app.title, openapi_url)

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return redoc_page(app.title, openapi_url)
