"""The one error capture raises: a status and a plain-text message, as PostHog's capture answers."""

from fastapi.responses import PlainTextResponse, Response

from app.errors import AppError


class CaptureError(AppError):
    headers: dict[str, str]

    def __init__(self, status_code: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message
        self.headers = dict(headers or {})

    def response(self) -> Response:
        return PlainTextResponse(self.message, status_code=self.status_code, headers=self.headers)
