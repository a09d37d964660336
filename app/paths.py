"""Paths with rules of their own: PostHog's capture paths (their own body limit, plain-text errors), and how a
path is written to a log (share tokens masked)."""

import re

# Capture paths the SDKs post to, with or without the slash.
CAPTURE_PATHS = frozenset({"/capture", "/batch", "/e", "/i/v0/e"})

# A share's token is a credential: logs show only its first characters.
_TOKEN_PATH = re.compile(r"^(/(?:shared|embedded)/[^/]{0,4})[^/]*")


def is_capture_path(path: str) -> bool:
    return path.rstrip("/") in CAPTURE_PATHS


def loggable_path(path: str) -> str:
    """The path as logs may show it: never a query string (callers pass the path alone), a token masked."""
    return _TOKEN_PATH.sub(r"\1…", path, count=1)
