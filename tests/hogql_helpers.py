"""A fixed event set for SQL insights, and running HogQL through `/query/`."""

from typing import Any

import httpx

from tests.events import event, ingest
from tests.factories import Actor

# Eight events of three people (times UTC), chosen so that each query of the corpus has a result worked
# out by hand in the test.
EVENTS = [
    ("$pageview", "u1", "2026-01-01T10:00:00Z", {"$browser": "Chrome", "$current_url": "https://a.com/x",
                                                  "price": 10, "$session_id": "s1"}),
    ("$pageview", "u1", "2026-01-01T23:30:00Z", {"$browser": "Chrome", "price": "5.5", "$session_id": "s1"}),
    ("$pageview", "u2", "2026-01-02T09:00:00Z", {"$browser": "Firefox", "tags": "a,b",
                                                  "$set": {"email": "b@x.com", "plan": "pro"}}),
    ("signup", "u2", "2026-01-02T09:05:00Z", {"plan": "pro", "nested": {"k": {"z": "deep"}}}),
    ("$pageview", "u3", "2026-01-03T12:00:00Z", {"$browser": "Safari", "price": 20}),
    ("purchase", "u1", "2026-01-03T13:00:00Z", {"amount": 30, "$set": {"email": "a@x.com"}}),
    ("purchase", "u3", "2026-01-04T00:15:00Z", {"amount": 12.5, "flag": True}),
    ("$autocapture", "u2", "2026-01-04T08:00:00Z", {}),
]  # fmt: skip
# Another team's events: no query of the first team may see them.
OTHER_EVENTS = [
    ("$pageview", "intruder", "2026-01-02T10:00:00Z", {"$browser": "Secret", "$set": {"email": "x@secret"}}),
    ("purchase", "intruder", "2026-01-03T10:00:00Z", {"amount": 1000}),
]


async def put_events(client: httpx.AsyncClient, actor: Actor, rows: list[tuple[str, str, str, Any]]) -> None:
    await ingest(client, actor, [event(name, who, when, dict(props)) for name, who, when, props in rows])


async def hogql(client: httpx.AsyncClient, actor: Actor, text: str, **fields: Any) -> httpx.Response:
    """POST a HogQLQuery to `/query/` (fresh: `force_blocking`)."""
    query = {"kind": "HogQLQuery", "query": text, **fields}
    return await client.post(
        actor.url("query/"), json={"query": query, "refresh": "force_blocking"}, headers=actor.headers
    )


async def rows(client: httpx.AsyncClient, actor: Actor, text: str, **fields: Any) -> Any:
    response = await hogql(client, actor, text, **fields)
    assert response.status_code == 200, f"{text}: {response.text}"
    return response.json()["results"]
