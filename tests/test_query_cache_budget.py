"""The result cache stays bounded: a byte budget per team, ad-hoc results evicted before saved ones, least
recently used first, and reads that write nothing while a row's use stamp is under a minute old."""

import asyncio
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.config import Settings, get_settings
from app.db import create_engine, create_sessionmaker
from app.query import cache
from app.query.render import TeamInfo, cache_key_for
from tests.conftest import FreshDatabases
from tests.events import event, ingest
from tests.factories import Actor, make_actor, make_member
from tests.resources import trends
from tests.statements import recorded_statements


@pytest.fixture
def budget(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[int], Settings]]:
    """Set the per-team cache budget (in bytes) for the app under test."""

    def configure(size: int) -> Settings:
        monkeypatch.setenv("TILECAST_CACHE_BUDGET_BYTES_PER_TEAM", str(size))
        get_settings.cache_clear()
        return get_settings()

    yield configure
    monkeypatch.undo()
    get_settings.cache_clear()


async def _board(client: httpx.AsyncClient, actor: Actor, names: list[str]) -> int:
    response = await client.post(actor.url("dashboards/"), json={"name": "Board"}, headers=actor.headers)
    assert response.status_code == 201, response.text
    board = int(response.json()["id"])
    for name in names:
        body = {"name": name, "query": trends(name), "dashboards": [board]}
        created = await client.post(actor.url("insights/"), json=body, headers=actor.headers)
        assert created.status_code == 201, created.text
    return board


async def _get_board(
    client: httpx.AsyncClient, actor: Actor, board: int, **params: str
) -> list[dict[str, Any]]:
    response = await client.get(actor.url(f"dashboards/{board}/"), params=params, headers=actor.headers)
    assert response.status_code == 200, response.text
    return [t for t in response.json()["tiles"] if t["insight"] is not None]


def _override(days_ago: int) -> str:
    """A distinct eight-day range for each `days_ago`: results of about the same size each time."""
    return f'{{"date_from": "-{days_ago + 7}d", "date_to": "-{days_ago}d"}}'


async def _rows(db: AsyncSession, team_id: int) -> dict[str, tuple[int, Any]]:
    """The team's cache rows: key → (size of the result JSON as stored, the whole row as text)."""
    result = await db.execute(
        text(
            "SELECT cache_key, octet_length(result::text), q::text FROM query_cache q WHERE team_id = :team"
        ),
        {"team": team_id},
    )
    return {key: (size, row) for key, size, row in result.all()}


def _total(rows: dict[str, tuple[int, Any]]) -> int:
    return sum(size for size, _ in rows.values())


async def test_a_flood_of_ad_hoc_reads_stays_within_the_teams_budget(
    client: httpx.AsyncClient,
    actor: Actor,
    other_actor: Actor,
    db: AsyncSession,
    budget: Callable[[int], Settings],
) -> None:
    now = datetime.now(UTC)
    await ingest(client, actor, [event("a", f"u{i}", now - timedelta(days=i)) for i in range(40)])
    board = await _board(client, actor, ["a", "b"])
    await _get_board(client, actor, board, refresh="blocking")
    saved = await _rows(db, actor.team.id)
    assert len(saved) == 2
    # Another team's results, which the flood must not touch, though they are over the budget and ad hoc
    # and older than the flood's (the first to go, were the budget not the team's own).
    elsewhere = await _board(client, other_actor, [f"e{i}" for i in range(10)])
    await _get_board(client, other_actor, elsewhere, refresh="blocking", filters_override=_override(50))
    theirs = await _rows(db, other_actor.team.id)
    assert len(theirs) == 10

    reader = await make_member(db, actor.team, scopes=["dashboard:read"])
    await _get_board(client, reader, board, refresh="blocking", filters_override=_override(100))
    one_read = _total(await _rows(db, actor.team.id)) - _total(saved)  # its two tiles' results
    assert one_read > 0
    # Room for the saved results and three and a half reads' worth of ad-hoc ones.
    limit = _total(saved) + 7 * one_read // 2
    budget(limit)

    for days_ago in range(30):
        await _get_board(client, reader, board, refresh="blocking", filters_override=_override(days_ago))
        total = _total(await _rows(db, actor.team.id))
        assert total <= limit, f"over the budget after read {days_ago}"
    # Evicted down to the budget, not far below it.
    assert total > limit - one_read // 2

    rows = await _rows(db, actor.team.id)
    assert set(saved) <= set(rows), "the saved tiles' results were evicted before ad-hoc ones"
    assert len(rows) - 2 in (6, 7)  # three reads' results and perhaps one of the read before
    # The saved tiles still render from the cache, without computing.
    assert all(t["is_cached"] and t["insight"]["result"] for t in await _get_board(client, reader, board))
    # The most recent ad-hoc results are kept; the oldest went first.
    latest = await _get_board(client, reader, board, filters_override=_override(29))
    assert all(t["insight"]["result"] for t in latest)
    first = await _get_board(client, reader, board, filters_override=_override(0))
    assert all(t["insight"]["result"] is None for t in first)
    # The other team's rows are exactly as they were.
    assert _total(theirs) > limit
    assert await _rows(db, other_actor.team.id) == theirs


async def test_a_repeated_cached_read_writes_nothing(
    client: httpx.AsyncClient, actor: Actor, db: AsyncSession, engine: AsyncEngine
) -> None:
    board = await _board(client, actor, ["a", "b"])
    await _get_board(client, actor, board, refresh="blocking")
    await _get_board(client, actor, board)
    with recorded_statements(engine) as sql:
        tiles = await _get_board(client, actor, board)
        await _get_board(client, actor, board, refresh="blocking")
    assert all(t["is_cached"] for t in tiles)
    assert _cache_writes(sql) == [], sql


async def _stamps(db: AsyncSession, team_id: int) -> dict[str, tuple[datetime, bool]]:
    result = await db.execute(
        text("SELECT cache_key, last_used_at, saved FROM query_cache WHERE team_id = :team"),
        {"team": team_id},
    )
    return {key: (used, saved) for key, used, saved in result.all()}


async def _age(db: AsyncSession, key: str, minutes: float) -> None:
    """Pretend the row was last used `minutes` ago (time passing, which a test cannot wait for)."""
    await db.execute(
        text("UPDATE query_cache SET last_used_at = now() - make_interval(secs => :s) WHERE cache_key = :k"),
        {"s": minutes * 60, "k": key},
    )
    await db.commit()


def _cache_writes(statements: list[str]) -> list[str]:
    return [s for s in statements if "query_cache" in s and not s.lstrip().upper().startswith("SELECT")]


async def test_a_read_renews_the_use_stamp_at_most_once_a_minute(
    client: httpx.AsyncClient, actor: Actor, db: AsyncSession, engine: AsyncEngine
) -> None:
    board = await _board(client, actor, ["a", "b"])
    await _get_board(client, actor, board, refresh="blocking")
    keys = list(await _stamps(db, actor.team.id))
    for key in keys:
        await _age(db, key, 2)
    with recorded_statements(engine) as first:
        await _get_board(client, actor, board)
    with recorded_statements(engine) as second:
        await _get_board(client, actor, board)
    # One statement renews both rows' stamps; the next read within the minute writes nothing.
    assert [s.split()[0] for s in _cache_writes(first)] == ["UPDATE"], first
    assert _cache_writes(second) == [], second
    stamps = await _stamps(db, actor.team.id)
    assert all(datetime.now(UTC) - used < timedelta(seconds=30) for used, _ in stamps.values())
    # Under a minute old, a row is not renewed.
    await _age(db, keys[0], 0.5)
    with recorded_statements(engine) as third:
        await _get_board(client, actor, board)
    assert _cache_writes(third) == [], third


async def test_saved_results_go_after_ad_hoc_ones_least_recently_used_first(
    client: httpx.AsyncClient, actor: Actor, db: AsyncSession, budget: Callable[[int], Settings]
) -> None:
    board = await _board(client, actor, ["a", "b"])
    tiles = await _get_board(client, actor, board, refresh="blocking")
    ids = {t["insight"]["name"]: t["insight"]["id"] for t in tiles}
    key_a, key_b = (
        cache_key_for(TeamInfo(id=actor.team.id, timezone="UTC"), trends(name)) for name in ("a", "b")
    )
    sizes = {key: size for key, (size, _) in (await _rows(db, actor.team.id)).items()}
    assert set(sizes) == {key_a, key_b}
    await _age(db, key_a, 10)
    await _age(db, key_b, 5)
    # Reading `a` makes it the more recently used of the two.
    response = await client.get(actor.url(f"insights/{ids['a']}/"), headers=actor.headers)
    assert response.status_code == 200 and response.json()["is_cached"]
    budget(max(sizes.values()) + 100)  # room for one of them

    # A one-off query: its own result is evicted first, then the least recently used saved one.
    body = {"query": trends("c"), "refresh": "blocking"}
    response = await client.post(actor.url("query/"), json=body, headers=actor.headers)
    assert response.status_code == 200 and response.json()["results"], response.text
    assert set(await _stamps(db, actor.team.id)) == {key_a}


async def test_results_are_saved_or_ad_hoc_by_what_they_were_made_for(
    client: httpx.AsyncClient, actor: Actor, db: AsyncSession
) -> None:
    board = await _board(client, actor, ["a"])
    await _get_board(client, actor, board, refresh="blocking")
    await _get_board(client, actor, board, refresh="blocking", filters_override='{"date_from": "-3d"}')
    response = await client.post(actor.url("query/"), json={"query": trends("q")}, headers=actor.headers)
    query_key = response.json()["cache_key"]
    kinds = {key: kind for key, (_, kind) in (await _stamps(db, actor.team.id)).items()}
    assert (
        kinds.pop(cache_key_for(TeamInfo(id=actor.team.id, timezone="UTC"), trends("a"))) is True
    )  # the tile as saved
    assert kinds.pop(query_key) is False  # `/query/`
    assert list(kinds.values()) == [False]  # the tile under a `filters_override`

    # An insight saved with the same query as an ad-hoc result: reading it marks that result saved, and
    # an ad-hoc computation of it later does not make it ad hoc again.
    body = {"name": "q", "query": trends("q")}
    insight = (await client.post(actor.url("insights/"), json=body, headers=actor.headers)).json()["id"]
    assert (await client.get(actor.url(f"insights/{insight}/"), headers=actor.headers)).json()["is_cached"]
    assert (await _stamps(db, actor.team.id))[query_key][1] is True
    body = {"query": trends("q"), "refresh": "force_blocking"}
    assert (await client.post(actor.url("query/"), json=body, headers=actor.headers)).status_code == 200
    assert (await _stamps(db, actor.team.id))[query_key][1] is True


async def _concurrent_evictions(url: str) -> tuple[set[str], set[str], float]:
    engine = create_engine(url, get_settings())
    try:
        async with create_sessionmaker(engine)() as session:
            team = (await make_actor(session)).team.id
        then = datetime.now(UTC) - timedelta(hours=1)
        async with engine.begin() as conn:
            for i, key in enumerate(["old1", "old2", "new1", "new2"]):
                stamp = then + timedelta(minutes=i)
                await cache.write(
                    conn, key, team, cache.payload_json({"results": [0]}), stamp, saved=False, budget=10**9
                )
        size = await _scalar(engine, "SELECT size_bytes FROM query_cache WHERE cache_key = 'old1'")
        async with engine.connect() as a, engine.connect() as b:
            await a.begin()
            await b.begin()
            for conn in (a, b):
                # Waiting on a row lock would fail the statement (and a deadlock would be reported).
                await conn.execute(text("SET LOCAL lock_timeout = '2s'"))
            # Each worker reads one of the two oldest rows (renewing its stamp holds it until its transaction
            # ends), then writes a result that puts the team one row over a budget of four: the least
            # recently used row it sees is the one the other worker holds.
            assert await cache.read(a, "old1", saved=False) is not None
            assert await cache.read(b, "old2", saved=False) is not None
            started = time.perf_counter()
            now = datetime.now(UTC)
            await asyncio.gather(
                cache.write(
                    a, "fromA", team, cache.payload_json({"results": [0]}), now, saved=False, budget=4 * size
                ),
                cache.write(
                    b, "fromB", team, cache.payload_json({"results": [0]}), now, saved=False, budget=4 * size
                ),
            )
            took = time.perf_counter() - started
            await a.commit()
            await b.commit()
        keys = "SELECT cache_key FROM query_cache"
        async with engine.begin() as conn:
            after_both = set((await conn.execute(text(keys))).scalars())
            now = datetime.now(UTC)
            await cache.write(
                conn, "next", team, cache.payload_json({"results": [0]}), now, saved=False, budget=4 * size
            )
            after_next = set((await conn.execute(text(keys))).scalars())
        return after_both, after_next, took
    finally:
        await engine.dispose()


async def _scalar(engine: AsyncEngine, sql: str) -> Any:
    async with engine.connect() as conn:
        return (await conn.execute(text(sql))).scalar()


def test_workers_evicting_at_once_skip_each_others_rows_instead_of_waiting(
    fresh_databases: FreshDatabases,
) -> None:
    after_both, after_next, took = asyncio.run(_concurrent_evictions(fresh_databases.create()))
    assert took < 1.5
    # Neither took the row the other held (the least recently used one it saw): each took the next one.
    assert after_both == {"old1", "old2", "fromA", "fromB"}
    # The next write evicts what is least recently used then.
    assert len(after_next) == 4 and {"fromA", "fromB", "next"} <= after_next


async def test_a_result_larger_than_the_whole_budget_is_answered_but_not_kept(
    client: httpx.AsyncClient, actor: Actor, db: AsyncSession, budget: Callable[[int], Settings]
) -> None:
    for name in ("a", "b"):
        body = {"query": trends(name, interval="hour", dateRange={"date_from": "-1d"})}
        assert (await client.post(actor.url("query/"), json=body, headers=actor.headers)).status_code == 200
    kept = await _rows(db, actor.team.id)
    budget(2 * max(size for size, _ in kept.values()))
    # A month by hour: several times larger than the budget.
    body = {"query": trends("c", interval="hour", dateRange={"date_from": "-30d"}), "refresh": "blocking"}
    response = await client.post(actor.url("query/"), json=body, headers=actor.headers)
    assert response.status_code == 200 and len(response.json()["results"][0]["data"]) > 24 * 30
    assert response.json()["is_cached"] is False
    # Nothing was evicted to make room for it.
    assert await _rows(db, actor.team.id) == kept
