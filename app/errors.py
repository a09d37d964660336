"""One error hierarchy, rendered in one place as PostHog's `{"type", "code", "detail", "attr"}` bodies."""

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

logger = logging.getLogger("tilecast.errors")


class AppError(Exception):
    status_code = 400
    type = "invalid_request"
    code = "invalid_request"
    default_detail = "Invalid request."

    def __init__(self, detail: str | None = None, *, attr: str | None = None, code: str | None = None) -> None:
        self.detail = detail or self.default_detail
        self.attr = attr
        if code is not None:
            self.code = code
        super().__init__(self.detail)

    headers: dict[str, str] | None = None

    def body(self) -> dict[str, Any]:
        return {"type": self.type, "code": self.code, "detail": self.detail, "attr": self.attr}


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
    headers = {"WWW-Authenticate": "Bearer"}


class AuthenticationFailed(NotAuthenticated):
    code = "authentication_failed"
    default_detail = "Incorrect authentication credentials."


class PermissionDenied(AppError):
    status_code = 403
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
    "greater_than_equal": ("min_value", "Ensure this value is greater than or equal to {ge}."),
    "less_than_equal": ("max_value", "Ensure this value is less than or equal to {le}."),
}


def _attr(loc: tuple[Any, ...]) -> str | None:
    parts = [str(p) for p in loc[1:] if p != "__root__"] if loc and loc[0] in ("body", "query", "path", "header") else [
        str(p) for p in loc
    ]
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
    if kind in ("model_attributes_type", "dict_type", "model_type") and attr is None:
        got = type(err.get("input")).__name__
        return ValidationFailed(f"Invalid data. Expected a dictionary, but got {got}.", code="invalid")
    if kind in ("literal_error", "enum"):
        return ValidationFailed(f'"{err.get("input")}" is not a valid choice.', attr=attr, code="invalid_choice")
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


def error_response(exc: AppError) -> Response:
    return JSONResponse(exc.body(), status_code=exc.status_code, headers=exc.headers)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AppError)
    async def _app_error(_: Request, exc: AppError) -> Response:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> Response:
        return error_response(validation_error_from_pydantic(list(exc.errors())))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 404:
            return error_response(NotFound())
        if exc.status_code == 405:
            return error_response(MethodNotAllowed("Method not allowed."))
        err = AppError(str(exc.detail))
        err.status_code = exc.status_code
        return error_response(err)

    @app.exception_handler(Exception)
    async def _unhandled(request: Request, exc: Exception) -> Response:
        logger.exception("unhandled error on %s %s", request.method, request.url.path)
        err = AppError("A server error occurred.", code="error")
        err.status_code = 500
        err.type = "server_error"
        return error_response(err)
