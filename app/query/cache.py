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
    case,
    cast,
    delete,
    exists,
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


def cache_key(team_id: int, timezone: str, query: Any, team_settings: Any = None) -> str:
    """The key of a query's result: everything the result depends on. `team_settings`: the team's settings
    the query reads (its week's first day, its test-account filters when the query filters test accounts),
    so that editing one never serves a result computed under the old value."""
    settings = "" if team_settings is None else canonical_json(team_settings)
    # surrogatepass: a lone surrogate from a JSON "\ud800" escape still hashes (the engine refuses it later).
    text = f"{team_id}\x1f{timezone}\x1f{canonical_json(query)}\x1f{settings}"
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


def lock_id(key: str) -> int:
    """A signed 64-bit advisory-lock id derived from the cache key."""
    return int.from_bytes(bytes.fromhex(key[:16]), "big", signed=True)


class RawJSON:
    """A result's JSON text as PostgreSQL holds it: responses pass it through as it is (`orjson.Fragment`),
    never decoded and encoded again; `value()` decodes it (once) where Python needs the values."""

    __slots__ = ("_value", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self._value: Any = _UNDECODED

    def value(self) -> Any:
        if self._value is _UNDECODED:
            self._value = json.loads(self.text)
        return self._value


_UNDECODED = object()


def decoded(value: Any) -> Any:
    """A result as Python values, whether it was read as JSON text or computed."""
    return value.value() if isinstance(value, RawJSON) else value


@dataclass(frozen=True)
class CachedResult:
    """`payload`: `results` (a `RawJSON` when read from the cache), `has_more`, `resolved_date_range`, and
    `extra`: the fields a kind answers besides them (HogQL's `columns`, `types`, `hogql`, …), or None."""

    payload: dict[str, Any]
    last_refresh: datetime


# A row's use stamp is rewritten by a read at most this often: repeated reads within it write nothing.
LAST_USED_RESOLUTION = timedelta(minutes=1)

# `results` as the text PostgreSQL holds (never decoded on the read path); the two small fields decoded.
_COLUMNS = (
    QueryCache.cache_key,
    cast(QueryCache.result["results"], SAText),
    QueryCache.last_refresh,
    QueryCache.last_used_at,
    QueryCache.saved,
    QueryCache.result["has_more"].as_boolean(),
    QueryCache.result["resolved_date_range"],
    QueryCache.result["extra"],
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
    # Rows as read by `_READ` / `_READ_MANY`: key, results, last_refresh, last_used_at, saved, has_more,
    # resolved_date_range, extra.
    stale = [row[0] for row in rows if row[3] < cutoff or (saved and not row[4])]
    if stale:
        await conn.execute(_TOUCH, {"keys": stale, "now": now, "cutoff": cutoff, "saved": saved})
    return {
        row[0]: CachedResult(
            payload={
                "results": None if row[1] is None else RawJSON(row[1]),
                "has_more": row[5],
                "resolved_date_range": row[6],
                "extra": row[7],
            },
            last_refresh=row[2],
        )
        for row in rows
    }


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
    """An upsert whose size PostgreSQL measures on the stored JSON (the result is sent once), answering the
    team's total bytes and rows after it: the budget check costs no round trip of its own. A row once saved
    stays saved; an ad-hoc one becomes saved when a saved insight computes it."""
    key = bindparam("key", type_=String)
    team_id = bindparam("team_id", type_=Integer)
    now = bindparam("now", type_=DateTime(timezone=True))
    # The engine's JSON text as it is: a large result is not serialized a second time, on the event loop.
    result = select(cast(bindparam("result", type_=SAText), JSONB).label("r")).subquery("s").c.r
    source = select(
        key,
        team_id,
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
    written = (
        stmt.on_conflict_do_update(
            index_elements=[QueryCache.cache_key],
            set_={
                "result": new.result,
                "last_refresh": new.last_refresh,
                "size_bytes": new.size_bytes,
                "saved": or_(QueryCache.saved, new.saved),
                "last_used_at": new.last_used_at,
            },
        )
        .returning(QueryCache.size_bytes)
        .cte("written")
    )
    # The other parts of the statement see the table as it was before it: the team's total then (summed from
    # the eviction index alone), less the row replaced, plus the row written.
    old = select(QueryCache.size_bytes).where(QueryCache.cache_key == key).cte("old")
    before = (
        select(func.coalesce(func.sum(QueryCache.size_bytes), 0).label("bytes"), func.count().label("rows"))
        .where(QueryCache.team_id == team_id)
        .cte("before")
    )
    replaced = func.coalesce(select(old.c.size_bytes).scalar_subquery(), 0)
    size = select(written.c.size_bytes).scalar_subquery()
    return select(
        (before.c.bytes - replaced + size).label("bytes"),
        (before.c.rows + case((exists(old.select()), 0), else_=1)).label("rows"),
        size.label("size"),
    )


_WRITE = _build_write()

# The team's rows in eviction order — ad hoc (false) before saved, least recently used first — read from the
# index in order, stopping after `limit`.
_CANDIDATES = (
    select(QueryCache.cache_key, QueryCache.size_bytes, QueryCache.last_used_at)
    .where(QueryCache.team_id == bindparam("team_id", type_=Integer))
    .order_by(QueryCache.saved, QueryCache.last_used_at)
    .limit(bindparam("limit", type_=Integer))
)
# Rows another transaction holds (writing, touching or evicting them) are skipped, never waited for: workers
# evicting at once cannot deadlock. A row used since it was chosen (a newer stamp) stays.
_DELETE = (
    delete(QueryCache)
    .where(
        QueryCache.cache_key.in_(
            select(QueryCache.cache_key)
            .where(
                QueryCache.cache_key == any_(_KEYS),
                QueryCache.last_used_at <= bindparam("latest", type_=DateTime(timezone=True)),
            )
            .with_for_update(skip_locked=True)
        )
    )
    .returning(QueryCache.size_bytes)
    .execution_options(synchronize_session=False)
)
_EVICTION_ROUNDS = 3


def payload_json(payload: dict[str, Any], results: list[str] | None = None) -> str:
    """The JSON of a cache payload; `results`, when given, holds the JSON of each of `payload["results"]`."""
    if results is None:
        return json.dumps(payload)
    rest = json.dumps({k: v for k, v in payload.items() if k != "results"})
    return '{"results": [' + ", ".join(results) + "], " + rest[1:]


async def write(
    conn: AsyncConnection,
    key: str,
    team_id: int,
    payload: str,
    now: datetime,
    *,
    saved: bool,
    budget: int,
) -> None:
    """Store a result's JSON text (`payload_json`), then keep its team within `budget` bytes (in the same
    transaction)."""
    values = {"key": key, "team_id": team_id, "result": payload, "now": now, "saved": saved}
    total, rows, size = (await conn.execute(_WRITE, values)).one()
    if size > budget:
        # Larger than the whole budget: not kept, rather than emptying the team's cache to make room for it.
        await conn.execute(_DELETE, {"keys": [key], "latest": now})
        total, rows = total - size, rows - 1
    if total > budget:
        await _evict(conn, team_id, total - budget, total // rows)


async def _evict(conn: AsyncConnection, team_id: int, excess: int, average: int) -> None:
    """Delete the team's least valuable rows until `excess` bytes are freed. Twice the rows that the average
    size says are needed are read as candidates; a round frees what the rows not skipped hold, the next
    takes the following candidates. What is still over after that goes at the next write."""
    limit = 2 * -(-excess // max(average, 1)) + 8
    candidates = (await conn.execute(_CANDIDATES, {"team_id": team_id, "limit": limit})).all()
    freed, taken = 0, 0
    for _ in range(_EVICTION_ROUNDS):
        victims, pending = [], 0
        while taken < len(candidates) and freed + pending < excess:
            victims.append(candidates[taken])
            pending += candidates[taken][1]
            taken += 1
        if not victims:
            return
        keys, latest = [v[0] for v in victims], max(v[2] for v in victims)
        freed += sum((await conn.execute(_DELETE, {"keys": keys, "latest": latest})).scalars())
        if freed >= excess:
            return


# Built once: a statement made of `func` calls costs more to build than its round trip.
_LOCK = func.pg_advisory_xact_lock(bindparam("lock", type_=BigInteger))
_TIMEOUT = func.set_config("statement_timeout", bindparam("timeout", type_=String), True)
_LOCK_AND_TIMEOUT = select(_LOCK, _TIMEOUT)
_LOCK_AND_TIMEOUT_NO_FLUSH = select(_LOCK, _TIMEOUT, func.set_config("synchronous_commit", "off", True))
_SET_TIMEOUT = select(_TIMEOUT)


async def lock_and_set_timeout(conn: AsyncConnection, key: str, timeout_ms: int, *, cache_only: bool) -> None:
    """Serialise identical computations across processes (the lock lasts until the transaction ends) and
    bound the computation's statements, in one round trip. `cache_only`: the transaction writes nothing but
    results, so its commit need not wait for the disk (a result a database crash loses is computed again;
    the flush was most of a short query's time)."""
    statement = _LOCK_AND_TIMEOUT_NO_FLUSH if cache_only else _LOCK_AND_TIMEOUT
    await conn.execute(statement, {"lock": lock_id(key), "timeout": str(timeout_ms)})


async def reset_timeout(conn: AsyncConnection, timeout_ms: int) -> None:
    await conn.execute(_SET_TIMEOUT, {"timeout": str(timeout_ms)})
