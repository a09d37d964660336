"""The stream's messages, in PostHog's wire format: one `data:` line of JSON each, no `event:` field (so
`EventSource.onmessage` sees every message), plus the `id:` that lets a client resume (`resume.py`) and,
on the first message only, `retry:`.

    {"type": "metadata", "dashboard": {...every field of the dashboard..., "tiles": [<up to 2 tiles>]}}
    {"type": "tile", "order": <n>, "tile": {...the tile as retrieve shows it...}}
    {"type": "error", "tile_id": <id>, "error": "<message>"}     an unexpected failure on one tile
    {"type": "complete"}
    {"type": "error", "error": "<message>"}                       fatal: the stream ends, no `complete`
"""

from typing import Any

import orjson
from sse_starlette import ServerSentEvent

from app.dashboards.responses import Raws, dashboard_body, encode, tile_body
from app.dashboards.schemas import Dashboard, Tile

# PostHog separates lines with "\n" (sse-starlette's default is "\r\n"; EventSource reads both).
SEP = "\n"


def _event(data: bytes, *, id: str | None = None, retry: int | None = None) -> ServerSentEvent:
    return ServerSentEvent(data.decode("utf-8"), id=id, retry=retry, sep=SEP)


def metadata(dashboard: Dashboard, *, id: str, retry: int) -> ServerSentEvent:
    body, raws = dashboard_body(dashboard)
    return _event(encode({"type": "metadata", "dashboard": body}, raws), id=id, retry=retry)


def tile_json(tile: Tile) -> tuple[dict[str, Any], Raws]:
    body, raws = tile_body(tile)
    return {"type": "tile", "order": tile.order, "tile": body}, raws


def tile(content: tuple[dict[str, Any], Raws], *, id: str) -> ServerSentEvent:
    return _event(encode(*content), id=id)


def tile_error(tile_id: int, message: str, *, id: str) -> ServerSentEvent:
    return _event(orjson.dumps({"type": "error", "tile_id": tile_id, "error": message}), id=id)


def complete(*, id: str) -> ServerSentEvent:
    return _event(orjson.dumps({"type": "complete"}), id=id)


def fatal(message: str) -> ServerSentEvent:
    # No id: a reconnection resumes from the last message that carried one.
    return _event(orjson.dumps({"type": "error", "error": message}))
