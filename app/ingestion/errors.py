"""The one error capture raises: a status and a plain-text message, as PostHog's capture answers."""


class CaptureError(Exception):
    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message
