"""One error hierarchy, rendered in one place as PostHog's `{"type", "code", "detail", "attr"}` bodies."""

import logging
from typing import Any

import asyncpg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from app.paths import is_capture_path, loggable_path

logger = logging.getLogger("tilecast.errors")


def _encodable(text: str) -> str:
    """Text that can be sent as UTF-8: a message may quote the input, and the input may hold a lone
    surrogate (JSON's `"\\ud800"`), which no response can carry."""
    return text if text.isascii() else text.encode("utf-8", "replace").decode("utf-8")


class AppError(Exception):
    status_code = 400
    type = "invalid_request"
    code = "invalid_request"
    default_detail = "Invalid request."

    def __init__(
        self, detail: str | None = None, *, attr: str | None = None, code: str | None = None
    ) -> None:
        self.detail = _encodable(detail or self.default_detail)
        self.attr = _encodable(attr) if attr is not None else None
        if code is not None:
            # PostHog's handler (drf-exceptions-hog) reports DRF's generic "invalid" as "invalid_input".
            self.code = "invalid_input" if code == "invalid" else code
        super().__init__(self.detail)

    headers: dict[str, str] | None = None

    def body(self) -> dict[str, Any]:
        return {"type": self.type, "code": self.code, "detail": self.detail, "attr": self.attr}

    def response(self) -> Response:
        return JSONResponse(self.body(), status_code=self.status_code, headers=self.headers)


class ValidationFailed(AppError):
    type = "validation_error"
    code = "invalid_input"
    default_detail = "Invalid input."


class ParseError(AppError):
    code = "parse_error"
    default_detail = "Malformed request."


class NotAuthenticated(AppError):
    status_code = 401
    type = "authentication_error"
    code = "not_authenticated"
    default_detail = "Authentication credentials were not provided."
    headers = {"WWW-Authenticate": "Bearer"}  # noqa: RUF012  (read, never mutated)


class AuthenticationFailed(NotAuthenticated):
    code = "authentication_failed"
    default_detail = "Incorrect authentication credentials."


class PermissionDenied(AppError):
    # drf-exceptions-hog files permission errors under "authentication_error", like 401s.
    status_code = 403
    type = "authentication_error"
    code = "permission_denied"
    default_detail = "You do not have permission to perform this action."


class NotFound(AppError):
    status_code = 404
    code = "not_found"
    default_detail = "Not found."


class MethodNotAllowed(AppError):
    status_code = 405
    code = "method_not_allowed"


class Conflict(AppError):
    status_code = 409
    code = "conflict"
    default_detail = "Conflict."


class PayloadTooLarge(AppError):
    status_code = 413
    code = "payload_too_large"
    default_detail = "Request body is too large."


class Throttled(AppError):
    """Too many attempts (DRF's throttled body); `Retry-After` says when to try again."""

    status_code = 429
    type = "throttled_error"
    code = "throttled"

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"Request was throttled. Expected available in {retry_after} seconds.")
        self.headers = {"Retry-After": str(retry_after)}


class ServiceUnavailable(AppError):
    """The database is away, restarting, saturated or too slow: a transient fault the client should retry."""

    status_code = 503
    type = "server_error"
    code = "service_unavailable"
    default_detail = "Service temporarily unavailable, try again later."
    headers = {"Retry-After": "2"}  # noqa: RUF012  (read, never mutated)


class ErrorBody(AppError):
    """A custom action's own `{"error": ...}` body, kept exactly as PostHog sends it."""

    def __init__(self, status_code: int, error: str) -> None:
        super().__init__(error)
        self.status_code = status_code

    def body(self) -> dict[str, Any]:
        return {"error": self.detail}


# Pydantic error types → DRF's messages and codes, so clients see what PostHog would say.
_DRF_MESSAGES: dict[str, tuple[str, str]] = {
    "missing": ("required", "This field is required."),
    "int_parsing": ("invalid", "A valid integer is required."),
    "int_type": ("invalid", "A valid integer is required."),
    "int_from_float": ("invalid", "A valid integer is required."),
    "bool_parsing": ("invalid", "Must be a valid boolean."),
    "bool_type": ("invalid", "Must be a valid boolean."),
    "string_type": ("invalid", "Not a valid string."),
    "list_type": ("not_a_list", "Expected a list of items."),
    "dict_type": ("invalid", "Expected a dictionary of items."),
    "datetime_parsing": ("invalid", "Datetime has wrong format."),
    "datetime_type": ("invalid", "Datetime has wrong format."),
    "datetime_from_date_parsing": ("invalid", "Datetime has wrong format."),
    "uuid_parsing": ("invalid", "Must be a valid UUID."),
    "uuid_type": ("invalid", "Must be a valid UUID."),
    "string_too_long": ("max_length", "Ensure this field has no more than {max_length} characters."),
    "too_short": ("min_length", "Ensure this field has at least {min_length} elements."),
    "too_long": ("max_length", "Ensure this field has no more than {max_length} elements."),
    "greater_than_equal": ("min_value", "Ensure this value is greater than or equal to {ge}."),
    "less_than_equal": ("max_value", "Ensure this value is less than or equal to {le}."),
}


# DRF error codes that validators may raise directly with `PydanticCustomError(code, message)`.
DRF_CODES = frozenset(
    {"blank", "empty", "null", "null_characters_not_allowed", "does_not_exist", "invalid_choice"}
)


def _attr(loc: tuple[Any, ...]) -> str | None:
    parts = (
        [str(p) for p in loc[1:] if p != "__root__"]
        if loc and loc[0] in ("body", "query", "path", "header")
        else [str(p) for p in loc]
    )
    return "__".join(parts) or None


def validation_error_from_pydantic(errors: list[Any]) -> AppError:
    """The first error, as PostHog's exception handler reports it (one error per response)."""
    err = errors[0]
    kind = err.get("type", "")
    loc = tuple(err.get("loc", ()))
    ctx = err.get("ctx") or {}
    if kind == "json_invalid":
        return ParseError(f"JSON parse error - {ctx.get('error', 'invalid JSON')}")
    if loc and loc[0] == "path":
        # A malformed id in the URL matches no object, as in PostHog's URL patterns.
        return NotFound()
    attr = _attr(loc)
    if kind in DRF_CODES:
        # Raised by our own validators as `PydanticCustomError(<DRF code>, <DRF message>)`.
        return ValidationFailed(str(err.get("msg", "Invalid input.")), attr=attr, code=kind)
    if attr is not None and kind.endswith("_type") and err.get("input", ...) is None:
        return ValidationFailed("This field may not be null.", attr=attr, code="null")
    if kind in ("model_attributes_type", "dict_type", "model_type") and attr is None:
        if err.get("input", ...) is None:
            return ValidationFailed("This field may not be null.", code="null")
        got = type(err.get("input")).__name__
        return ValidationFailed(f"Invalid data. Expected a dictionary, but got {got}.", code="invalid")
    if kind in ("literal_error", "enum"):
        return ValidationFailed(
            f'"{err.get("input")}" is not a valid choice.', attr=attr, code="invalid_choice"
        )
    if kind == "value_error":
        message = str(ctx.get("error", err.get("msg", "Invalid input.")))
        return ValidationFailed(message, attr=attr)
    if kind in _DRF_MESSAGES:
        code, template = _DRF_MESSAGES[kind]
        try:
            message = template.format(**ctx)
        except (KeyError, IndexError):
            message = template
        return ValidationFailed(message, attr=attr, code=code)
    return ValidationFailed(str(err.get("msg", "Invalid input.")), attr=attr)


# SQLSTATE class 22, "data exception": out-of-range numbers, NUL characters, malformed values.
DATA_EXCEPTION_CLASS = "22"
UNSTORABLE_VALUE = "Invalid input: a value is out of range or contains characters that cannot be stored."
UNIQUE_VIOLATION = "23505"
# Faults that pass: the connection is gone (class 08), the server is shutting down or starting (57P0x), out of
# connections (53300), a statement ran past its timeout (57014) or lost a lock or serialisation race.
_TRANSIENT_CLASSES = ("08", "57P0")
_TRANSIENT_SQLSTATES = frozenset({"53300", "57014", "55P03", "40001", "40P01"})


def is_transient(exc: BaseException) -> bool:
    """A database fault a retry can get past (the request itself was fine)."""
    if isinstance(exc, PoolTimeout | OSError):  # no free connection; no server to connect to
        return True
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    sqlstate = str(getattr(getattr(exc, "orig", exc), "sqlstate", None) or "")
    return sqlstate in _TRANSIENT_SQLSTATES or sqlstate.startswith(_TRANSIENT_CLASSES)


CONCURRENT_CHANGE = "Another request changed the same object at the same time; retry the request."


def _describe(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None)
    sqlstate = getattr(orig, "sqlstate", None)
    name = type(orig if orig is not None else exc).__name__
    return f"{name} (SQLSTATE {sqlstate})" if sqlstate else name


def error_response(exc: AppError) -> Response:
    return exc.response()


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at this path. (Starlette's own `Allow` names only the first route
    whose path matched, e.g. just GET for `/dashboards/{id}/`.)"""
    allowed = []
    for method in ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"):
        scope = {**request.scope, "method": method}
        if any(route.matches(scope)[0] == Match.FULL for route in request.app.router.routes):
            allowed.append(method)
    return allowed


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AppError)
    async def _app_error(_: Request, exc: AppError) -> Response:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> Response:
        return error_response(validation_error_from_pydantic(list(exc.errors())))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 404:
            return error_response(NotFound())
        if exc.status_code == 405:
            err: AppError = MethodNotAllowed(f'Method "{request.method}" not allowed.')
            err.headers = {"Allow": ", ".join(_allowed_methods(request))}
            return error_response(err)
        if exc.status_code == 400:
            # FastAPI's answer to a body it could not read at all (e.g. JSON nested too deeply).
            return error_response(ParseError())
        err = AppError(str(exc.detail))
        err.status_code = exc.status_code
        err.headers = dict(exc.headers) if exc.headers else None
        return error_response(err)

    async def _unavailable(request: Request, exc: Exception) -> Response:
        # A warning, not a traceback: these pass, and clients retry.
        path = loggable_path(request.url.path)
        logger.warning("database unavailable on %s %s: %s", request.method, path, _describe(exc))
        if is_capture_path(request.url.path):
            # PostHog's capture says so in plain text; its SDKs retry on any 5xx.
            return PlainTextResponse(
                "transient error, please retry", status_code=503, headers=ServiceUnavailable.headers
            )
        return error_response(ServiceUnavailable())

    async def _connecting(request: Request, exc: Exception) -> Response:
        # asyncpg's own errors while connecting (the server is starting, shutting down, out of connections),
        # which SQLAlchemy does not wrap.
        if is_transient(exc):
            return await _unavailable(request, exc)
        return _server_error(request)

    app.add_exception_handler(PoolTimeout, _unavailable)
    app.add_exception_handler(OSError, _unavailable)
    app.add_exception_handler(asyncpg.PostgresError, _connecting)

    @app.exception_handler(DBAPIError)
    async def _database(request: Request, exc: DBAPIError) -> Response:
        if is_transient(exc):
            return await _unavailable(request, exc)
        sqlstate = str(getattr(exc.orig, "sqlstate", None) or "")
        if sqlstate == UNIQUE_VIOLATION:
            # Two requests created the same thing at once (e.g. one insight put on one dashboard twice):
            # the loser's transaction is rolled back whole; it may simply retry.
            return error_response(Conflict(CONCURRENT_CHANGE))
        if not sqlstate.startswith(DATA_EXCEPTION_CLASS):
            raise exc  # a server fault: the generic handler below answers 500
        # A value PostgreSQL cannot hold (an integer beyond its range, a NUL character) slipped past
        # validation: the request is at fault, never the server. Logged so the missing check gets added;
        # the value itself is not logged.
        logger.warning(
            "database refused a request value on %s %s (SQLSTATE %s)",
            request.method,
            loggable_path(request.url.path),
            sqlstate,
        )
        return error_response(ValidationFailed(UNSTORABLE_VALUE))

    @app.exception_handler(Exception)
    async def _unhandled(request: Request, exc: Exception) -> Response:
        return _server_error(request)


def _server_error(request: Request) -> Response:
    logger.exception("unhandled error on %s %s", request.method, loggable_path(request.url.path))
    err = AppError("A server error occurred.", code="error")
    err.status_code = 500
    err.type = "server_error"
    return error_response(err)
