"""A snapshot taken on one app instance is analysed on another: the "before" state is a PostgreSQL row, not
process memory. Committed data, each instance with its own engine and pool, as two workers or hosts."""

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from tests.conftest import FreshDatabases
from tests.events import ingest
from tests.factories import make_actor
from tests.resources import new_dashboard
from tests.streams import app_on
from tests.test_refresh_analysis import FIRST, SECOND, add_insight, browsers_query


@pytest.fixture(scope="module")
def committed_url(fresh_databases: FreshDatabases) -> str:
    return fresh_databases.create()


@pytest.fixture
async def instances(
    committed_url: str, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[FastAPI, FastAPI]]:
    """Two apps, each with its own engine and pool, on the committed database."""
    async with (
        app_on(committed_url, monkeypatch) as (first, _),
        app_on(committed_url, monkeypatch) as (second, _),
    ):
        yield first, second


def _client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")


async def test_snapshot_on_one_instance_analysed_on_the_other(instances: tuple[FastAPI, FastAPI]) -> None:
    first, second = instances
    async with first.state.sessionmaker() as session:
        actor = await make_actor(session)
    async with _client(first) as a, _client(second) as b:
        board = await new_dashboard(a, actor)
        await add_insight(a, actor, board, "Pageviews by browser", browsers_query())
        await ingest(a, actor, FIRST)
        url = actor.url(f"dashboards/{board}/")
        assert (await a.get(url, params={"refresh": "blocking"}, headers=actor.headers)).status_code == 200
        made = await a.post(url + "snapshot/", headers=actor.headers)
        assert made.status_code == 200
        await ingest(b, actor, SECOND)
        assert (
            await b.get(url, params={"refresh": "force_blocking"}, headers=actor.headers)
        ).status_code == 200
        analysed = await b.post(url + "analyze_refresh_result/", json=made.json(), headers=actor.headers)
        assert analysed.status_code == 200, analysed.text
        assert analysed.json()["result"] == (
            "- Pageviews by browser · Firefox: new, 1\n"
            "- Pageviews by browser · Safari: 1 → 2 (+1, +100.0%)\n"
            "- Pageviews by browser · Chrome: 3 → 4 (+1, +33.3%)"
        )
        # And back on the first: the same row, the same answer.
        again = await a.post(url + "analyze_refresh_result/", json=made.json(), headers=actor.headers)
        assert again.json() == analysed.json()
