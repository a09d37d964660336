"""Database plumbing: the declarative base, engine and session factories, the session dependency."""

from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import MetaData, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Session

from app.config import Settings

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def async_url(url: str) -> URL:
    """Accept `postgres://`, `postgresql://` and `postgresql+asyncpg://`; return the asyncpg form."""
    parsed = make_url(
        url.replace("postgres://", "postgresql://", 1) if url.startswith("postgres://") else url
    )
    if parsed.get_backend_name() != "postgresql":
        raise ValueError(f"DATABASE_URL must be a PostgreSQL URL, got {parsed.get_backend_name()!r}")
    return parsed.set(drivername="postgresql+asyncpg")


def create_engine(url: str, settings: Settings) -> AsyncEngine:
    server_settings = {"application_name": "tilecast"}
    if settings.db_statement_timeout_ms:
        server_settings["statement_timeout"] = str(settings.db_statement_timeout_ms)
    return create_async_engine(
        async_url(url),
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout_s,
        pool_pre_ping=False,
        connect_args={"server_settings": server_settings},
    )


def create_sessionmaker(engine: AsyncEngine, clickhouse: Any = None) -> async_sessionmaker[AsyncSession]:
    """Sessions on `engine`. `clickhouse`: the events store when events live in ClickHouse, which every
    session carries (`session.info["clickhouse"]`) to the query engine."""
    info = {} if clickhouse is None else {"clickhouse": clickhouse}
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False, info=info)


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One transaction per request: commit when the handler succeeds, roll back when it raises."""
    sessionmaker: async_sessionmaker[AsyncSession] = request.app.state.sessionmaker
    async with sessionmaker() as session:
        try:
            yield session
        except BaseException:
            await session.rollback()
            raise
        else:
            await session.commit()


# scope="function": the commit happens when the handler returns, before the response is sent.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


_AFTER_COMMIT = "tilecast.after_commit"


def after_commit(session: AsyncSession, callback: Callable[[], None]) -> None:
    """Run `callback` once the session's transaction commits (never if it rolls back): for process memory
    that must only ever describe committed rows."""
    session.info.setdefault(_AFTER_COMMIT, []).append(callback)


@event.listens_for(Session, "after_commit")
def _run_after_commit(session: Session) -> None:
    for callback in session.info.pop(_AFTER_COMMIT, ()):
        callback()


@event.listens_for(Session, "after_rollback")
def _drop_after_commit(session: Session, *_: Any) -> None:
    session.info.pop(_AFTER_COMMIT, None)
