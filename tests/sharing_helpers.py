"""Requests the sharing tests share: turning a share on, protecting it, unlocking it, and a movable clock."""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from tests.factories import Actor
from tests.resources import new_dashboard, trends


class FakeClock:
    """`app.state.clock` for tests: now, or wherever it was moved to."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def sharing_url(actor: Actor, dashboard: int, rest: str = "") -> str:
    return actor.url(f"dashboards/{dashboard}/sharing/{rest}")


async def patch_sharing(
    client: httpx.AsyncClient, actor: Actor, dashboard: int, **body: Any
) -> dict[str, Any]:
    response = await client.patch(sharing_url(actor, dashboard), json=body, headers=actor.headers)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def shared_dashboard(client: httpx.AsyncClient, actor: Actor, **dashboard: Any) -> tuple[int, str]:
    """A new dashboard with one insight tile, shared publicly: (its id, the share's token)."""
    dashboard_id = await new_dashboard(client, actor, **dashboard)
    made = await client.post(
        actor.url("insights/"),
        json={"name": "Views", "query": trends(), "dashboards": [dashboard_id]},
        headers=actor.headers,
    )
    assert made.status_code == 201, made.text
    shared = await patch_sharing(client, actor, dashboard_id, enabled=True)
    return dashboard_id, str(shared["access_token"])


@dataclass
class Protected:
    dashboard: int
    token: str
    password: str
    password_id: int


async def add_password(
    client: httpx.AsyncClient, actor: Actor, dashboard: int, raw: str = "correct horse"
) -> tuple[str, int]:
    made = await client.post(
        sharing_url(actor, dashboard, "passwords/"), json={"raw_password": raw}, headers=actor.headers
    )
    assert made.status_code == 201, made.text
    return str(made.json()["password"]), int(made.json()["id"])


async def protected_dashboard(client: httpx.AsyncClient, actor: Actor, **dashboard: Any) -> Protected:
    dashboard_id, token = await shared_dashboard(client, actor, **dashboard)
    await patch_sharing(client, actor, dashboard_id, password_required=True)
    password, password_id = await add_password(client, actor, dashboard_id)
    return Protected(dashboard_id, token, password, password_id)


async def unlock(
    client: httpx.AsyncClient, token: str, password: str, prefix: str = "shared"
) -> httpx.Response:
    return await client.post(f"/{prefix}/{token}", json={"password": password})


async def jwt_for(client: httpx.AsyncClient, share: Protected) -> str:
    response = await unlock(client, share.token, share.password)
    assert response.status_code == 200, response.text
    return str(response.json()["shareToken"])
