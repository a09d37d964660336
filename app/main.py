"""The FastAPI application: lifespan (database, embedded PostgreSQL), routers, error handlers."""

import asyncio
import contextlib
import gc
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from sqlalchemy import text
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from app import metrics
from app.api import mount_api
from app.auth import key_changes
from app.auth.grants import JwtSecret
from app.auth.principal_cache import PrincipalCache
from app.clock import system_clock
from app.config import get_settings
from app.dashboards.views import ViewRecorder
from app.db import create_engine, create_sessionmaker
from app.embedded import EmbeddedPostgres
from app.errors import install_error_handlers
from app.ingestion.retention import run_retention
from app.ingestion.router import router as capture_router
from app.keys.router import router as keys_router
from app.logs import ensure_app_logging
from app.middleware import (
    AccessLogMiddleware,
    ApiCORSMiddleware,
    BodyLimitMiddleware,
    SandboxContextMiddleware,
    TrailingSlashMiddleware,
)
from app.paths import loggable_path
from app.query.pool import RenderPool
from app.sharing.passwords import PasswordChecks
from app.sharing.public import router as sharing_public_router
from app.sql_sandbox import Sandbox
from app.streaming.slots import StreamSlots
from app.users.router import router as users_router
from app.web.docs import install_docs
from app.web.routes import router as web_router
from app.web.viewer import router as viewer_router

logger = logging.getLogger("tilecast")

DESCRIPTION = """
A self-hosted, PostHog-compatible dashboards service.

Authenticate with a personal API key (`tilecast create-key --email you@example.com`) sent as
`Authorization: Bearer phx_…`. Every path works with or without its trailing slash.
"""


class _UvicornAccessFilter(logging.Filter):
    """uvicorn's access line, when uvicorn runs the app itself (`uvicorn app.main:app`), without the query
    string (it may carry `personal_api_key`) and with share tokens masked."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) == 5 and isinstance(args[2], str):
            record.args = (args[0], args[1], loggable_path(args[2].split("?", 1)[0]), *args[3:])
        return True


# Young objects the collector lets pile up before it runs (CPython's default is 700). A request of a list of
# 100 dashboards allocates tens of thousands of container objects, almost all freed by reference counting;
# at 700 the collector ran several times per request, each time walking what was still alive.
GC_YOUNG_THRESHOLD = 10_000


def settle_garbage_collector() -> None:
    """After start-up: the modules, routes, schemas and statements built so far live as long as the process,
    so the cyclic garbage collector stops walking them (`gc.freeze`), and it runs less often. Measured with
    `benchmarks/bench_read_path.py`: the list of 100 dashboards from 8.8 to 5.6 ms of CPU a request."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, middle, old)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings = get_settings()
    ensure_app_logging(settings.log_level, settings.log_format)
    embedded: EmbeddedPostgres | None = None
    url = settings.database_url
    if url is None:
        embedded = EmbeddedPostgres(settings.data_dir)
        url = await asyncio.to_thread(embedded.start)
        logger.info("using the embedded PostgreSQL under %s", embedded.pgdata)
    engine = create_engine(url, settings)
    metrics.instrument_engine(engine, settings.db_pool_size)
    app.state.engine = engine
    if settings.events_backend == "clickhouse":
        from app.clickhouse.client import describe, open_clickhouse  # the optional extra `.[clickhouse]`

        app.state.clickhouse = open_clickhouse(settings.clickhouse_url, settings.data_dir)
        logger.info(
            "events are stored and computed in ClickHouse (%s)",
            describe(settings.clickhouse_url, settings.data_dir, settings.clickhouse_cluster),
        )
    # Sessions carry the ClickHouse store to the query engine (`app.query.render`).
    app.state.sessionmaker = create_sessionmaker(engine, app.state.clickhouse)
    views: ViewRecorder = app.state.views
    background = [
        asyncio.create_task(views.run()),
        asyncio.create_task(app.state.sandbox.expire_idle_connections()),
    ]
    principals: PrincipalCache = app.state.principals
    if principals.ttl > 0:
        # Keys changed through Tilecast are forgotten by this worker at once (`app.auth.key_changes`).
        background.append(asyncio.create_task(key_changes.listen(url, principals)))
    if settings.events_retention_days is not None:
        background.append(
            asyncio.create_task(
                run_retention(
                    engine,
                    app.state.sessionmaker,
                    settings.events_retention_days,
                    app.state.clock,
                    clickhouse=app.state.clickhouse,
                    cluster=settings.clickhouse_cluster,
                )
            )
        )
    settle_garbage_collector()
    try:
        yield
    finally:
        for task in background:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        # The views noted within the last minute: written before the engine goes.
        try:
            await views.flush(everything=True)
        except Exception:  # logged by flush
            logger.error("%d dashboard views were not written at shutdown", views.pending)
        await app.state.sandbox.close()
        if app.state.clickhouse is not None:
            await app.state.clickhouse.close()
        await engine.dispose()
        if embedded is not None:
            await asyncio.to_thread(embedded.stop)
        metrics.worker_exited(os.getpid())


def _route_name(route: APIRoute) -> str:
    return route.name


def create_app() -> FastAPI:
    settings = get_settings()
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, _UvicornAccessFilter) for f in access.filters):
        access.addFilter(_UvicornAccessFilter())
    app = FastAPI(
        title="Tilecast",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        redirect_slashes=False,
        # Served offline by app/web (FastAPI's own pages load their assets from a CDN).
        docs_url=None,
        redoc_url=None,
    )
    # The ClickHouse events store (`app.clickhouse`), opened by the lifespan when the events backend is
    # ClickHouse; None on PostgreSQL.
    app.state.clickhouse = None
    # Its sessionmaker is read at each write: the lifespan (and tests) set the app's.
    app.state.views = ViewRecorder(lambda: app.state.sessionmaker)
    app.state.principals = PrincipalCache(get_settings().auth_cache_ttl_s)
    # Tile computations of this worker, at most `render_concurrency` at once (`app.query.pool`).
    app.state.renders = RenderPool(lambda: app.state.sessionmaker, settings.effective_render_concurrency)
    # SQL insights' connections, logged in as each team's own role (`app.sql_sandbox`).
    app.state.sandbox = Sandbox(lambda: app.state.engine, settings)
    # Open `stream_tiles` streams of this worker, at most `stream_max_streams` (`app.streaming.slots`).
    app.state.streams = StreamSlots(settings.stream_max_streams)
    # Tests replace the clock to move time (a share's grace period, a JWT's lifetime).
    app.state.clock = system_clock
    app.state.sharing_secret = JwtSecret(settings)
    app.state.password_checks = PasswordChecks(settings.sharing_password_checks)
    install_error_handlers(app)
    mount_api(app)
    # The caller's own endpoints (outside any team): PostHog's operation ids are the route names.
    app.include_router(users_router, generate_unique_id_function=_route_name)
    app.include_router(keys_router, generate_unique_id_function=_route_name)
    app.include_router(capture_router)
    app.include_router(sharing_public_router)
    app.include_router(web_router)
    app.include_router(viewer_router)
    app.include_router(metrics.router)
    install_docs(app)

    @app.get("/_health", tags=["operations"], operation_id="health")
    async def health() -> dict[str, str]:
        """The process is up."""
        return {"status": "ok"}

    @app.get(
        "/_readyz",
        tags=["operations"],
        operation_id="readyz",
        responses={503: {"description": "No database (or no ClickHouse, when it stores the events)"}},
    )
    async def readyz(request: Request) -> Any:
        """The database answers (and ClickHouse, when it stores the events)."""

        async def ping() -> None:
            async with request.app.state.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            if request.app.state.clickhouse is not None:
                await request.app.state.clickhouse.query("SELECT 1")

        try:
            await asyncio.wait_for(ping(), timeout=5)
        except Exception as exc:  # any failure to reach the database means not ready
            logger.warning("readiness check failed: %s", type(exc).__name__)
            return JSONResponse({"status": "unavailable"}, status_code=503)
        return {"status": "ok"}

    # The last added is the outermost: slashes are settled first, then the request is logged, then bounded.
    app.add_middleware(BodyLimitMiddleware, limit=settings.max_body_bytes)
    if settings.cors_origins:
        app.add_middleware(ApiCORSMiddleware, origins=settings.cors_origins)
    app.add_middleware(AccessLogMiddleware)
    app.add_middleware(TrailingSlashMiddleware)
    app.add_middleware(SandboxContextMiddleware)
    if settings.trusted_proxies:
        # Outermost: the client's address and scheme are settled before anything reads them.
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.trusted_proxies)
    return app


app = create_app()
