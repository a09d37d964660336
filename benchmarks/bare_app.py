"""The stack's own limit for Tilecast's read path: Starlette + asyncpg + orjson; no ORM, validation or auth.

Three endpoints answer with the JSON body Tilecast gives, read from the same tables:

- `GET /api/environments/{team}/dashboards/{id}/`, a dashboard without `filters` whose tiles have no
  `filters_overrides`:
  1. the dashboard row (with its creator, team timezone and tags);
  2. its live tiles, each joined with its insight or text (creators, editors, tags, the object's tiles);
  3. the cached results of those insights from `query_cache`. The cache key is a hash of the canonical query
     JSON (as Tilecast computes it), which SQL cannot rebuild byte for byte, so the keys are computed here
     between statements 2 and 3.
- `GET /api/environments/{team}/dashboards/?limit=&offset=`: one statement (the page, its creators, tags and
  the total as a window count).
- `POST /api/environments/{team}/query/` with `{"query": …}`: a fresh cached result (two statements: the
  team's timezone, which is part of the cache key, then the cache row); 404 when there is none (this app
  computes nothing).

JSON columns are decoded and the body encoded with orjson. It writes nothing (Tilecast records the
caller's view of a dashboard), checks no key (Tilecast reads the key and the caller's membership), reports
the caller as the dashboard's editor, and takes the dashboard's creator as the caller for `last_viewed_at` in
the list. Used by bench_read_path.py:

    BARE_DATABASE_URL=postgresql://… uvicorn --app-dir benchmarks bare_app:app --port 8001
"""

import hashlib
import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

CACHE_TARGET_AGE = timedelta(hours=6)
CACHE_TARGET_AGE_HOURLY = timedelta(hours=1)
MIN_REFRESH_INTERVAL = timedelta(seconds=60)
_NOT_FOUND = b'{"detail":"Not found."}'
_MISSING = 100


_USER_FIELDS = (
    "id",
    "uuid",
    "distinct_id",
    "first_name",
    "last_name",
    "email",
    "is_email_verified",
    "hedgehog_config",
    "role_at_organization",
)


def _user_columns(alias: str, prefix: str) -> str:
    return ", ".join(f"{alias}.{n} AS {prefix}{n}" for n in _USER_FIELDS)


DASHBOARD_SQL = f"""
SELECT d.id, d.name, d.description, d.pinned, d.created_at, d.last_accessed_at, d.deleted, d.creation_mode,
       d.restriction_level, d.last_refresh, d.team_id, d.filters, d.variables, d.breakdown_colors,
       d.data_color_theme_id, team.timezone, team.week_start_day, {_user_columns("u", "c_")},
       (SELECT array_agg(tag.name ORDER BY tag.name) FROM tagged_item ti JOIN tag ON tag.id = ti.tag_id
         WHERE ti.dashboard_id = d.id) AS tags
FROM dashboard d
JOIN team ON team.id = d.team_id
LEFT JOIN app_user u ON u.id = d.created_by_id
WHERE d.id = $1 AND d.team_id = $2 AND NOT d.deleted
"""

# The tiles of an object (insight or text) on live dashboards, as Tilecast lists them.
_OBJECT_TILES = """
(SELECT json_agg(json_build_object('id', o.id, 'dashboard_id', o.dashboard_id, 'deleted', false)
                 ORDER BY o.id)
   FROM dashboard_tile o JOIN dashboard od ON od.id = o.dashboard_id
  WHERE o.{column} = {owner} AND NOT coalesce(o.deleted, false) AND NOT od.deleted)
"""

TILES_SQL = f"""
SELECT t.id AS tile_id, t.layouts, t.color, t.filters_overrides, t.show_description, t.transparent_background,
       i.id, i.short_id, i.name, i.derived_name, i.query, i.filters, i."order", i.deleted, i.created_at,
       i.description, i.updated_at, i.favorited, i.saved, i.last_modified_at, i.is_sample,
       {_user_columns("ic", "c_")}, {_user_columns("im", "m_")},
       (SELECT array_agg(tag.name ORDER BY tag.name) FROM tagged_item ti JOIN tag ON tag.id = ti.tag_id
         WHERE ti.insight_id = i.id) AS tags,
       {_OBJECT_TILES.format(column="insight_id", owner="i.id")} AS insight_tiles,
       x.id AS text_id, x.body, x.last_modified_at AS text_modified_at, x.team_id AS text_team,
       {_user_columns("xc", "xc_")}, {_user_columns("xm", "xm_")},
       {_OBJECT_TILES.format(column="text_id", owner="x.id")} AS text_tiles
FROM dashboard_tile t
LEFT JOIN insight i ON i.id = t.insight_id
LEFT JOIN app_user ic ON ic.id = i.created_by_id
LEFT JOIN app_user im ON im.id = i.last_modified_by_id
LEFT JOIN text x ON x.id = t.text_id
LEFT JOIN app_user xc ON xc.id = x.created_by_id
LEFT JOIN app_user xm ON xm.id = x.last_modified_by_id
WHERE t.dashboard_id = $1 AND NOT coalesce(t.deleted, false)
  AND (i.id IS NULL OR NOT i.deleted) AND (i.id IS NOT NULL OR x.id IS NOT NULL)
ORDER BY (i.id IS NULL), i."order" ASC NULLS LAST, t.id
"""

CACHE_SQL = "SELECT cache_key, result, last_refresh FROM query_cache WHERE cache_key = ANY($1::text[])"


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _user(row: asyncpg.Record, prefix: str) -> dict[str, Any] | None:
    if row[f"{prefix}id"] is None:
        return None
    user = {name: row[f"{prefix}{name}"] for name in _USER_FIELDS}
    user["uuid"] = str(user["uuid"])
    return user


def _basic(d: Any, accessed: str | None, viewed: str | None) -> dict[str, Any]:
    """The fields a dashboard shows in the list, in PostHog's order; the detail adds its own after them."""
    return {
        "id": d["id"],
        "name": d["name"],
        "description": d["description"],
        "pinned": d["pinned"],
        "created_at": _iso(d["created_at"]),
        "created_by": _user(d, "c_"),
        "last_accessed_at": accessed,
        "last_viewed_at": viewed,
        "is_shared": False,
        "deleted": d["deleted"],
        "creation_mode": d["creation_mode"],
        "tags": d["tags"] or [],
        "restriction_level": d["restriction_level"],
        "effective_restriction_level": d["restriction_level"],
        "effective_privilege_level": 37,
        "user_access_level": "editor",
        "access_control_version": "v2" if d["restriction_level"] <= 21 else "v1",
        "last_refresh": _iso(d["last_refresh"]),
        "team_id": d["team_id"],
    }


def _canonical(value: Any) -> str:
    # The standard library's canonical JSON, as Tilecast's (orjson's differs in floats).
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _cache_key(team_id: int, timezone: str, query: Any, week_start_day: int | None) -> str:
    """Tilecast's key, byte for byte: the team's settings the result depends on are folded in (the week's
    first day; the benchmark's queries do not filter test accounts)."""
    settings = _canonical({"week_start_day": week_start_day or 0})
    text = f"{team_id}\x1f{timezone}\x1f{_canonical(query)}\x1f{settings}"
    return hashlib.sha256(text.encode()).hexdigest()


def _hourly(query: Any) -> bool:
    source = query.get("source", query) if isinstance(query, dict) else None
    return isinstance(source, dict) and source.get("interval") in ("hour", "minute")


def _position(layouts: Any) -> tuple[float, float]:
    box = layouts.get("sm") if isinstance(layouts, dict) else None
    if not isinstance(box, dict):
        return (_MISSING, _MISSING)
    return (box.get("y", _MISSING), box.get("x", _MISSING))


def _insight(row: asyncpg.Record, timezone: str, hit: asyncpg.Record | None) -> dict[str, Any]:
    tiles = row["insight_tiles"] or []
    query = row["query"]
    last_refresh = hit["last_refresh"] if hit is not None else None
    payload = hit["result"] if hit is not None else {}
    target = CACHE_TARGET_AGE_HOURLY if _hourly(query) else CACHE_TARGET_AGE
    return {
        "id": row["id"],
        "short_id": row["short_id"],
        "name": row["name"],
        "derived_name": row["derived_name"],
        "query": query,
        "filters": {} if query is not None else (row["filters"] or {}),
        "order": row["order"],
        "deleted": row["deleted"],
        "dashboards": sorted({t["dashboard_id"] for t in tiles}),
        "dashboard_tiles": tiles,
        "last_refresh": _iso(last_refresh),
        "cache_target_age": _iso(last_refresh + target) if last_refresh else None,
        "next_allowed_client_refresh": _iso(last_refresh + MIN_REFRESH_INTERVAL) if last_refresh else None,
        "result": payload.get("results"),
        "hasMore": bool(payload.get("has_more")) if hit is not None else None,
        "columns": None,
        "created_at": _iso(row["created_at"]),
        "created_by": _user(row, "c_"),
        "description": row["description"],
        "updated_at": _iso(row["updated_at"]),
        "tags": row["tags"] or [],
        "favorited": row["favorited"],
        "saved": row["saved"],
        "last_modified_at": _iso(row["last_modified_at"]),
        "last_modified_by": _user(row, "m_"),
        "is_sample": row["is_sample"],
        "effective_restriction_level": 21,
        "effective_privilege_level": 37,
        "user_access_level": "editor",
        "timezone": timezone,
        "is_cached": hit is not None,
        "query_status": None,
        "hogql": None,
        "types": None,
        "alerts": [],
        "last_viewed_at": None,
        "error": None,
    }


def _text(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "id": row["text_id"],
        "body": row["body"],
        "created_by": _user(row, "xc_"),
        "last_modified_at": _iso(row["text_modified_at"]),
        "last_modified_by": _user(row, "xm_"),
        "team": row["text_team"],
        "dashboard_tiles": row["text_tiles"] or [],
    }


async def retrieve(request: Request) -> Response:
    team_id = int(request.path_params["team"])
    dashboard_id = int(request.path_params["id"])
    pool: asyncpg.Pool = request.app.state.pool
    async with pool.acquire() as conn:
        d = await conn.fetchrow(DASHBOARD_SQL, dashboard_id, team_id)
        if d is None:
            return Response(_NOT_FOUND, status_code=404, media_type="application/json")
        rows = await conn.fetch(TILES_SQL, dashboard_id)
        timezone = d["timezone"]
        keys = {
            r["tile_id"]: _cache_key(team_id, timezone, r["query"], d["week_start_day"])
            for r in rows
            if r["query"] is not None
        }
        hits = {r["cache_key"]: r for r in await conn.fetch(CACHE_SQL, list(set(keys.values())))}

    tiles = []
    for r in rows:
        if r["id"] is not None:
            key = keys.get(r["tile_id"])
            hit = hits.get(key) if key is not None else None
            insight = _insight(r, timezone, hit)
            content = {"insight": insight, "text": None}
            refreshed, cached = insight["last_refresh"], insight["is_cached"]
        else:
            content = {"insight": None, "text": _text(r)}
            refreshed, cached = None, False
        tiles.append(
            {
                "id": r["tile_id"],
                **content,
                "layouts": r["layouts"] or {},
                "color": r["color"],
                "filters_overrides": r["filters_overrides"],
                "show_description": r["show_description"],
                "transparent_background": r["transparent_background"],
                "order": 0,
                "last_refresh": refreshed,
                "is_cached": cached,
            }
        )
    tiles.sort(key=lambda tile: _position(tile["layouts"]))
    for order, tile in enumerate(tiles):
        tile["order"] = order

    now = _iso(datetime.now(UTC))
    variables = d["variables"] or {}
    body = {
        **_basic(d, now, now),
        "filters": d["filters"] or {},
        "variables": variables,
        "breakdown_colors": d["breakdown_colors"],
        "data_color_theme_id": d["data_color_theme_id"],
        "persisted_filters": d["filters"] or None,
        "persisted_variables": variables or None,
        "tiles": tiles,
    }
    return Response(orjson.dumps(body), media_type="application/json")


LIST_SQL = f"""
SELECT d.id, d.name, d.description, d.pinned, d.created_at, d.last_accessed_at, d.deleted, d.creation_mode,
       d.restriction_level, d.last_refresh, d.team_id, {_user_columns("u", "c_")}, v.viewed_at,
       (SELECT array_agg(tag.name ORDER BY tag.name) FROM tagged_item ti JOIN tag ON tag.id = ti.tag_id
         WHERE ti.dashboard_id = d.id) AS tags,
       count(*) OVER () AS total
FROM dashboard d
LEFT JOIN app_user u ON u.id = d.created_by_id
LEFT JOIN dashboard_view v ON v.dashboard_id = d.id AND v.user_id = d.created_by_id
WHERE d.team_id = $1 AND NOT d.deleted AND d.creation_mode <> 'unlisted'
ORDER BY d.pinned DESC, d.name ASC NULLS LAST, d.id
LIMIT $2 OFFSET $3
"""


def _page_links(request: Request, limit: int, offset: int, count: int) -> tuple[str | None, str | None]:
    """DRF's LimitOffsetPagination links, as Tilecast gives them."""
    url = request.url.remove_query_params("personal_api_key")
    nxt = None
    if offset + limit < count:
        nxt = str(url.include_query_params(limit=limit, offset=offset + limit))
    prev = None
    if offset > 0:
        if offset - limit <= 0:
            prev = str(url.include_query_params(limit=limit).remove_query_params("offset"))
        else:
            prev = str(url.include_query_params(limit=limit, offset=offset - limit))
    return nxt, prev


async def list_dashboards(request: Request) -> Response:
    team_id = int(request.path_params["team"])
    limit = min(int(request.query_params.get("limit", 100)), 1000)
    offset = int(request.query_params.get("offset", 0))
    pool: asyncpg.Pool = request.app.state.pool
    async with pool.acquire() as conn:
        rows = await conn.fetch(LIST_SQL, team_id, limit, offset)
    if rows:
        count = rows[0]["total"]
    else:
        async with pool.acquire() as conn:
            count = await conn.fetchval(
                "SELECT count(*) FROM dashboard WHERE team_id = $1 AND NOT deleted "
                "AND creation_mode <> 'unlisted'",
                team_id,
            )
    nxt, prev = _page_links(request, limit, offset, count)
    results = [_basic(d, _iso(d["last_accessed_at"]), _iso(d["viewed_at"])) for d in rows]
    body = {"count": count, "next": nxt, "previous": prev, "results": results}
    return Response(orjson.dumps(body), media_type="application/json")


async def query(request: Request) -> Response:
    team_id = int(request.path_params["team"])
    payload = orjson.loads(await request.body())
    q = payload["query"]
    pool: asyncpg.Pool = request.app.state.pool
    async with pool.acquire() as conn:
        team = await conn.fetchrow("SELECT timezone, week_start_day FROM team WHERE id = $1", team_id)
        if team is None:
            return Response(_NOT_FOUND, status_code=404, media_type="application/json")
        timezone: str = team["timezone"]
        key = _cache_key(team_id, timezone, q, team["week_start_day"])
        hit = await conn.fetchrow(
            "SELECT result, last_refresh FROM query_cache WHERE cache_key = $1 AND team_id = $2", key, team_id
        )
    target = CACHE_TARGET_AGE_HOURLY if _hourly(q) else CACHE_TARGET_AGE
    if hit is None or datetime.now(UTC) - hit["last_refresh"] >= target:
        return Response(_NOT_FOUND, status_code=404, media_type="application/json")
    result, last_refresh = hit["result"], hit["last_refresh"]
    body = {
        "results": result.get("results"),
        "hasMore": bool(result.get("has_more")),
        "is_cached": True,
        "last_refresh": _iso(last_refresh),
        "next_allowed_client_refresh": _iso(last_refresh + MIN_REFRESH_INTERVAL),
        "cache_key": key,
        "cache_target_age": _iso(last_refresh + target),
        "timezone": timezone,
        "resolved_date_range": result.get("resolved_date_range"),
        "query_status": None,
    }
    return Response(orjson.dumps(body), media_type="application/json")


def _encode(value: Any) -> str:
    return orjson.dumps(value).decode()


async def _init_connection(conn: asyncpg.Connection) -> None:
    for name in ("json", "jsonb"):
        await conn.set_type_codec(name, encoder=_encode, decoder=orjson.loads, schema="pg_catalog")


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    url = os.environ["BARE_DATABASE_URL"].replace("postgresql+asyncpg://", "postgresql://", 1)
    # As many connections as a Tilecast worker may open (pool 10 + overflow 10).
    app.state.pool = await asyncpg.create_pool(url, min_size=2, max_size=20, init=_init_connection)
    try:
        yield
    finally:
        await app.state.pool.close()


app = Starlette(
    routes=[
        Route("/api/environments/{team:int}/dashboards/{id:int}/", retrieve),
        Route("/api/environments/{team:int}/dashboards/", list_dashboards),
        Route("/api/environments/{team:int}/query/", query, methods=["POST"]),
    ],
    lifespan=lifespan,
)
