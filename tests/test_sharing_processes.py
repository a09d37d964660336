"""Two app instances on one database agree: on the unlock rate limits (counted in PostgreSQL) and on the key
that signs the JWTs (generated once and stored there). Committed data, each instance with its own engine and
pool, as two workers or hosts."""

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from tests.conftest import FreshDatabases
from tests.factories import make_actor
from tests.sharing_helpers import FakeClock, Protected, protected_dashboard, unlock
from tests.streams import app_on


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
        app_on(committed_url, monkeypatch) as (
            second,
            _,
        ),
    ):
        # One stopped clock for both: the counts' minute cannot turn during the test.
        first.state.clock = second.state.clock = FakeClock()
        yield first, second


def _client(app: FastAPI, address: str = "192.0.2.7") -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(address, 4321))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


async def _share(app: FastAPI) -> Protected:
    async with app.state.sessionmaker() as session:
        actor = await make_actor(session)
    async with _client(app) as client:
        return await protected_dashboard(client, actor)


async def test_two_instances_agree_on_the_rate_limits(instances: tuple[FastAPI, FastAPI]) -> None:
    first, second = instances
    share = await _share(first)
    async with _client(first) as a, _client(second) as b:
        statuses = [
            (await unlock(client, share.token, "wrong password")).status_code for client in [a, b] * 5
        ]
        assert statuses == [401] * 10
        # Ten failures from this address, counted by both: the eleventh is refused by either.
        for client in (b, a):
            limited = await unlock(client, share.token, "wrong password")
            assert limited.status_code == 429
            assert limited.headers["retry-after"]
    # Per share: other addresses, half on each instance, until thirty failures in all.
    statuses = []
    for i in range(22):
        async with _client(first if i % 2 else second, f"198.51.100.{i}") as other:
            statuses.append((await unlock(other, share.token, "wrong password")).status_code)
    assert statuses[:20] == [401] * 20
    assert statuses[20:] == [429, 429]


async def test_a_jwt_from_one_instance_opens_the_share_on_the_other(
    instances: tuple[FastAPI, FastAPI],
) -> None:
    first, second = instances
    share = await _share(first)
    async with _client(first) as a, _client(second) as b:
        token = (await unlock(a, share.token, share.password)).json()["shareToken"]
        opened = await b.get(f"/shared/{share.token}.json", headers={"Authorization": f"Bearer {token}"})
        assert opened.json()["type"] == "scene"
        again = (await unlock(b, share.token, share.password)).json()["shareToken"]
        assert (await a.get(f"/shared/{share.token}.json", params={"sharing_access_token": again})).json()[
            "type"
        ] == "scene"
