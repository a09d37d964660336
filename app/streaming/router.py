"""`GET …/dashboards/{id}/stream_tiles/`: a thin handler over `app.streaming.service` and `stream`."""

from typing import Annotated

from fastapi import APIRouter, Header, Query, Response, status

from app.dashboards.router import DashboardReadOrShared, OverridesDep
from app.dashboards.views import ViewsDep
from app.db import SessionDep
from app.query.pool import RenderPoolDep
from app.query.render import RefreshMode, parse_refresh
from app.rendering import FormatDep
from app.streaming import service
from app.streaming.slots import StreamSlotDep
from app.streaming.stream import tile_stream
from app.validation import PathId

router = APIRouter(prefix="/dashboards", tags=["dashboards"])

STREAM_DESCRIPTION = """Server-Sent Events, one `data:` line of JSON each (no `event:` field): `{"type":
"metadata", "dashboard": {…, "tiles": [up to 2 tiles]}}` first, then `{"type": "tile", "order", "tile"}`
for every other tile as soon as it is rendered, then `{"type": "complete"}`. `{"type": "error", "tile_id",
"error"}` reports an unexpected failure on one tile (the stream goes on); `{"type": "error", "error"}` ends
the stream without `complete`. Each message's `id:` lets `EventSource` resume with `Last-Event-ID`."""


@router.get(
    "/{id}/stream_tiles/",
    name="dashboards_stream_tiles_retrieve",
    response_class=Response,
    responses={
        200: {"description": STREAM_DESCRIPTION, "content": {"text/event-stream": {}}},
        204: {"description": "A reconnection (`Last-Event-ID`) with every tile already received."},
        503: {"description": "This server has too many open streams (see `Retry-After`)."},
    },
)
async def stream_tiles(
    id: PathId,
    slot: StreamSlotDep,
    session: SessionDep,
    access: DashboardReadOrShared,
    fmt: FormatDep,
    overrides: OverridesDep,
    views: ViewsDep,
    pool: RenderPoolDep,
    refresh: Annotated[
        str | None,
        Query(description="As on retrieve, but `blocking` by default: missing results are computed."),
    ] = None,
    layout_size: Annotated[
        str | None, Query(description="`sm` (default) or `xs`: the layout whose positions order the tiles.")
    ] = None,
    layout_size_camel: Annotated[str | None, Query(alias="layoutSize", description="`layout_size`.")] = None,
    last_event_id: Annotated[
        str | None,
        Header(
            alias="Last-Event-ID",
            description="The `id:` of the last message received: only the missing tiles are sent.",
        ),
    ] = None,
) -> Response:
    """Stream the dashboard's metadata, then each tile as soon as it is rendered (Server-Sent Events)."""
    # `format` changes nothing here (as in PostHog): the answer is always the JSON event stream.
    del fmt
    size = layout_size or layout_size_camel
    mode = parse_refresh(refresh, default=RefreshMode.BLOCKING)
    opened = await service.open_stream(
        session,
        access,
        id,
        overrides,
        views,
        mode,
        size if size in ("sm", "xs") else "sm",
        last_event_id,
    )
    if opened is None:
        return Response(status_code=status.HTTP_204_NO_CONTENT)
    return tile_stream(opened, pool, slot)
