"""Prometheus metrics (`prometheus-client`) and the `/metrics` endpoint.

Off the public surface: `/metrics` answers only a scraper sending `Authorization: Bearer
<TILECAST_METRICS_TOKEN>` (404 when no token is set), or, with `TILECAST_METRICS_PORT`, on a port of its own
that `tilecast serve` opens (`serve_metrics_port`). Under `tilecast serve` every worker writes its values to
files in `PROMETHEUS_MULTIPROC_DIR` (prometheus-client's multiprocess mode) and a scrape sums all workers,
whichever one answers it.
"""

import os
import secrets
from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from fastapi.responses import Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client import multiprocess as _multiprocess
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from app.config import get_settings
from app.errors import NotFound

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

REQUESTS = Counter(
    "tilecast_http_requests_total",
    "HTTP requests answered, by method, route (its path template) and status.",
    ["method", "route", "status"],
)
REQUEST_SECONDS = Histogram(
    "tilecast_http_request_duration_seconds",
    "Time to answer an HTTP request (for a stream, until it ends), by method and route.",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
CAPTURE_EVENTS = Counter("tilecast_capture_events_total", "Events stored by the capture endpoints.")
CAPTURE_BATCHES = Counter(
    "tilecast_capture_batches_total", "Capture requests whose events were stored (one per request)."
)
QUERY_COMPUTATIONS = Counter(
    "tilecast_query_computations_total",
    "Insight queries computed on the events (not answered from the result cache), by kind and outcome.",
    ["kind", "outcome"],
)
QUERY_CACHE_HITS = Counter(
    "tilecast_query_cache_hits_total", "Insight queries answered from the result cache, by kind.", ["kind"]
)
OPEN_STREAMS = Gauge("tilecast_open_streams", "Open stream_tiles streams.", multiprocess_mode="livesum")
DB_CONNECTIONS_IN_USE = Gauge(
    "tilecast_db_pool_connections_in_use",
    "Database connections checked out of the pools (all workers).",
    multiprocess_mode="livesum",
)
DB_POOL_SIZE = Gauge(
    "tilecast_db_pool_size", "Connections each worker's pool keeps (per worker).", multiprocess_mode="liveall"
)

UNMATCHED_ROUTE = "unmatched"
# The team routes are mounted under both prefixes (`app.api`); a route knows only its path below them.
TEAM_PREFIXES = ("/api/projects/", "/api/environments/")


def route_template(scope: Mapping[str, Any]) -> str:
    """The matched route's path template (`/api/projects/{project_id}/dashboards/{id}/`), never the path
    itself: ids and tokens would make a label per object. Requests no route matched share one label."""
    path = getattr(scope.get("route"), "path", None)
    if not isinstance(path, str):
        return UNMATCHED_ROUTE
    if not path.startswith("/api/"):
        for prefix in TEAM_PREFIXES:
            if scope["path"].startswith(prefix):
                return f"{prefix}{{project_id}}{path}"
    return path


def query_kind(query: object) -> str:
    """The label of a query: its kind, or its source's for an `InsightVizNode` (a bounded set: the kinds
    the engine knows; anything else is `other`)."""
    node = query.get("source", query) if isinstance(query, dict) else None
    kind = node.get("kind") if isinstance(node, dict) else None
    return kind if isinstance(kind, str) and kind.endswith("Query") and len(kind) <= 40 else "other"


def instrument_engine(engine: AsyncEngine, pool_size: int) -> None:
    """Count the connections checked out of `engine`'s pool."""
    DB_POOL_SIZE.set(pool_size)
    pool = engine.sync_engine.pool
    event.listen(pool, "checkout", lambda *_: DB_CONNECTIONS_IN_USE.inc())
    event.listen(pool, "checkin", lambda *_: DB_CONNECTIONS_IN_USE.dec())


def registry() -> CollectorRegistry:
    """Every worker's values under `tilecast serve`; this process's alone otherwise."""
    if os.environ.get(MULTIPROC_ENV):
        collected = CollectorRegistry()
        _multiprocess.MultiProcessCollector(collected)  # type: ignore[no-untyped-call]
        return collected
    return REGISTRY


def worker_exited(pid: int) -> None:
    """A worker stops: its live gauges (open streams, connections) stop counting."""
    if os.environ.get(MULTIPROC_ENV):
        _multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]


router = APIRouter(tags=["operations"])


@router.get("/metrics", operation_id="metrics", include_in_schema=False)
async def metrics(request: Request, authorization: Annotated[str | None, Header()] = None) -> Response:
    """Prometheus' text format, for a scraper holding `TILECAST_METRICS_TOKEN`."""
    token = get_settings().metrics_token
    expected = f"Bearer {token.get_secret_value()}" if token else None
    if expected is None or not secrets.compare_digest((authorization or "").encode(), expected.encode()):
        # Not "unauthorized": without the token the endpoint does not exist.
        raise NotFound()
    return Response(generate_latest(registry()), media_type=CONTENT_TYPE_LATEST)


def serve_metrics_port(host: str, port: int) -> None:
    """`/metrics` of every worker on a port of its own, from `tilecast serve`'s own process (a thread)."""
    from prometheus_client import start_http_server

    start_http_server(port, addr=host, registry=registry())
