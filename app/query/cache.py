"""The result cache: PostgreSQL rows shared by every worker, keyed by team, timezone and canonical query."""

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Integer,
    String,
    and_,
    any_,
    bindparam,
    cast,
    delete,
    func,
    not_,
    or_,
    select,
    update,
)
from sqlalchemy import Text as SAText
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, insert
from sqlalchemy.ext.asyncio import AsyncConnection

from app.models import QueryCache


def canonical_json(query: Any) -> str:
    """One text for equal queries: sorted keys, no whitespace."""
    return json.dumps(query, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def cache_key(team_id: int, timezone: str, query: Any) -> str:
    # surrogatepass: a lone surrogate from a JSON "\ud800" escape still hashes (the engine refuses it later).
    text = f"{team_id}\x1f{timezone}\x1f{canonical_json(query)}"
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


def lock_id(key: str) -> int:
    """A signed 64-bit advisory-lock id derived from the cache key."""
    return int.from_bytes(bytes.fromhex(key[:16]), "big", signed=True)


@dataclass(frozen=True)
class CachedResult:
    payload: dict[str, Any]
    last_refresh: datetime


# A row's use stamp is rewritten by a read at most this often: repeated reads within it write nothing.
LAST_USED_RESOLUTION = timedelta(minutes=1)

_COLUMNS = (
    QueryCache.cache_key,
    QueryCache.result,
    QueryCache.last_refresh,
    QueryCache.last_used_at,
    QueryCache.saved,
)
# Built once, the keys bound as one array parameter: the statement text is the same for any number of keys.
_KEYS = bindparam("keys", type_=ARRAY(String))
_READ = select(*_COLUMNS).where(QueryCache.cache_key == bindparam("key", type_=String))
_READ_MANY = select(*_COLUMNS).where(QueryCache.cache_key == any_(_KEYS))


def _build_touch() -> Any:
    """The use stamp of the rows read (and their kind, when a saved insight read an ad-hoc row). Rows another
    transaction holds (writing, evicting or touching them) are skipped rather than waited for."""
    now = bindparam("now", type_=DateTime(timezone=True))
    saved = bindparam("saved", type_=Boolean)
    stale = or_(
        QueryCache.last_used_at < bindparam("cutoff", type_=DateTime(timezone=True)),
        and_(saved, not_(QueryCache.saved)),
    )
    lockable = (
        select(QueryCache.cache_key)
        .where(QueryCache.cache_key == any_(_KEYS), stale)
        .with_for_update(skip_locked=True)
    )
    return (
        update(QueryCache)
        .where(QueryCache.cache_key.in_(lockable))
        .values(last_used_at=now, saved=or_(QueryCache.saved, saved))
        .execution_options(synchronize_session=False)
    )


_TOUCH = _build_touch()


async def _hits(
    conn: AsyncConnection, rows: Sequence[Sequence[Any]], *, saved: bool
) -> dict[str, CachedResult]:
    """The rows as results; their use stamps renewed in one statement, only when one is a minute old (or a
    saved read found an ad-hoc row), so that repeated reads write nothing."""
    now = datetime.now(UTC)
    cutoff = now - LAST_USED_RESOLUTION
    # Rows as read by `_READ` / `_READ_MANY`: key, result, last_refresh, last_used_at, saved.
    stale = [row[0] for row in rows if row[3] < cutoff or (saved and not row[4])]
    if stale:
        await conn.execute(_TOUCH, {"keys": stale, "now": now, "cutoff": cutoff, "saved": saved})
    return {row[0]: CachedResult(payload=row[1], last_refresh=row[2]) for row in rows}


async def read(conn: AsyncConnection, key: str, *, saved: bool) -> CachedResult | None:
    """One result. `saved`: read for a saved insight's own query (see `QueryCache.saved`)."""
    rows = (await conn.execute(_READ, {"key": key})).all()
    return (await _hits(conn, rows, saved=saved)).get(key)


async def read_many(conn: AsyncConnection, keys: Sequence[str], *, saved: bool) -> dict[str, CachedResult]:
    """Several results in one statement (lists and dashboards read all their cached results at once)."""
    if not keys:
        return {}
    rows = (await conn.execute(_READ_MANY, {"keys": list(set(keys))})).all()
    return await _hits(conn, rows, saved=saved)


def _build_write() -> Any:
    """An upsert whose size is measured by PostgreSQL on the stored JSON (the result is sent once). A row
    once saved stays saved; an ad-hoc one becomes saved when a saved insight computes it."""
    now = bindparam("now", type_=DateTime(timezone=True))
    result = select(bindparam("result", type_=JSONB).label("r")).subquery("s").c.r
    source = select(
        bindparam("key", type_=String),
        bindparam("team_id", type_=Integer),
        result,
        now,
        func.octet_length(cast(result, SAText)),
        bindparam("saved", type_=Boolean),
        now,
    )
    stmt = insert(QueryCache).from_select(
        ["cache_key", "team_id", "result", "last_refresh", "size_bytes", "saved", "last_used_at"], source
    )
    new = stmt.excluded
    return stmt.on_conflict_do_update(
        index_elements=[QueryCache.cache_key],
        set_={
            "result": new.result,
            "last_refresh": new.last_refresh,
            "size_bytes": new.size_bytes,
            "saved": or_(QueryCache.saved, new.saved),
            "last_used_at": new.last_used_at,
        },
    )


_WRITE = _build_write()


def _build_evict() -> Any:
    """One statement: the team's total (from the eviction index alone) and, only when it is over the budget,
    the deletion of its least valuable rows — ad hoc before saved, least recently used first — until the rest
    fits. Rows other transactions hold are skipped, never waited for (no deadlock between workers evicting
    at once; a skipped row is someone's current work anyway); the next write evicts what is left over."""
    team_id = bindparam("team_id", type_=Integer)
    budget = bindparam("budget", type_=BigInteger)
    total = (
        select(func.coalesce(func.sum(QueryCache.size_bytes), 0).label("bytes"))
        .where(QueryCache.team_id == team_id)
        .cte("total")
    )
    excess = select(total.c.bytes - budget).scalar_subquery()
    ranked = (
        select(
            QueryCache.cache_key,
            QueryCache.size_bytes,
            func.sum(QueryCache.size_bytes)
            .over(order_by=(QueryCache.saved, QueryCache.last_used_at), rows=(None, 0))
            .label("freed"),
        )
        .where(QueryCache.team_id == team_id, excess > 0)
        .cte("ranked")
    )
    # A row goes while what the rows before it free is still short of the excess.
    victims = select(ranked.c.cache_key).where(ranked.c.freed - ranked.c.size_bytes < excess)
    lockable = (
        select(QueryCache.cache_key)
        .where(QueryCache.cache_key.in_(victims))
        .with_for_update(skip_locked=True)
    )
    return (
        delete(QueryCache)
        .where(QueryCache.team_id == team_id, QueryCache.cache_key.in_(lockable))
        .execution_options(synchronize_session=False)
    )


_EVICT = _build_evict()


async def write(
    conn: AsyncConnection,
    key: str,
    team_id: int,
    payload: dict[str, Any],
    now: datetime,
    *,
    saved: bool,
    budget: int,
) -> None:
    """Store a result, then keep its team within `budget` bytes (in the same transaction)."""
    values = {"key": key, "team_id": team_id, "result": payload, "now": now, "saved": saved}
    await conn.execute(_WRITE, values)
    await evict(conn, team_id, budget)


async def evict(conn: AsyncConnection, team_id: int, budget: int) -> None:
    await conn.execute(_EVICT, {"team_id": team_id, "budget": budget})


async def lock_and_set_timeout(conn: AsyncConnection, key: str, timeout_ms: int) -> None:
    """Serialise identical computations across processes (the lock lasts until the transaction ends) and
    bound the computation's statements, in one round trip."""
    await conn.execute(
        select(
            func.pg_advisory_xact_lock(lock_id(key)),
            func.set_config("statement_timeout", str(timeout_ms), True),
        )
    )


async def reset_timeout(conn: AsyncConnection, timeout_ms: int) -> None:
    await conn.execute(select(func.set_config("statement_timeout", str(timeout_ms), True)))
