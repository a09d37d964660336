"""The result cache: PostgreSQL rows shared by every worker, keyed by team, timezone and canonical query."""

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import String, Text, any_, bindparam, cast, func, select
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


async def read(conn: AsyncConnection, key: str) -> CachedResult | None:
    row = (
        await conn.execute(
            select(QueryCache.result, QueryCache.last_refresh).where(QueryCache.cache_key == key)
        )
    ).first()
    return None if row is None else CachedResult(payload=row[0], last_refresh=row[1])


# Built once, the keys bound as one array parameter: the statement text is the same for any number of keys.
_READ_MANY = select(QueryCache.cache_key, QueryCache.result, QueryCache.last_refresh).where(
    QueryCache.cache_key == any_(bindparam("keys", type_=ARRAY(String)))
)


async def read_many(conn: AsyncConnection, keys: Sequence[str]) -> dict[str, CachedResult]:
    """Several results in one statement (lists and dashboards read all their cached results at once)."""
    if not keys:
        return {}
    rows = (await conn.execute(_READ_MANY, {"keys": list(set(keys))})).all()
    return {k: CachedResult(payload=r, last_refresh=t) for k, r, t in rows}


_WRITE = insert(QueryCache).values(
    cache_key=bindparam("key"),
    team_id=bindparam("team_id"),
    # The engine's JSON text as it is: a large result is not serialized a second time, on the event loop.
    result=cast(bindparam("result", type_=Text), JSONB),
    last_refresh=bindparam("now"),
)
_WRITE = _WRITE.on_conflict_do_update(
    index_elements=[QueryCache.cache_key],
    set_={"result": _WRITE.excluded.result, "last_refresh": _WRITE.excluded.last_refresh},
)


def payload_json(payload: dict[str, Any], results: list[str] | None = None) -> str:
    """The JSON of a cache payload; `results`, when given, holds the JSON of each of `payload["results"]`."""
    if results is None:
        return json.dumps(payload)
    rest = json.dumps({k: v for k, v in payload.items() if k != "results"})
    return '{"results": [' + ", ".join(results) + "], " + rest[1:]


async def write(conn: AsyncConnection, key: str, team_id: int, payload: str, now: datetime) -> None:
    """Store `payload`, a result's JSON text (`payload_json`)."""
    await conn.execute(_WRITE, {"key": key, "team_id": team_id, "result": payload, "now": now})


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
