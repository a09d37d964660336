"""Each built-in template makes a dashboard whose every tile renders from the demo's events, with data."""

import json
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from app.demo import synthetic_events
from app.templates.builtin import LLM_ANALYTICS, PRODUCT_ANALYTICS, WEBSITE_TRAFFIC
from tests.events import ingest
from tests.factories import Actor


@pytest.fixture
async def demo_events(client: httpx.AsyncClient, actor: Actor) -> None:
    """The demo's synthetic events (pageviews, screens, sign-ups, purchases, LLM calls), through capture."""
    batch = [
        {
            "event": e.event,
            "distinct_id": e.distinct_id,
            "timestamp": e.timestamp.isoformat(),
            "properties": json.loads(e.properties_json),
            "uuid": str(e.uuid),
        }
        for e in synthetic_events(4000, datetime.now(UTC), seed=15)
    ]
    for start in range(0, len(batch), 1000):
        await ingest(client, actor, batch[start : start + 1000])


def _total(result: Any) -> float:
    """The sum of every number a trends result holds (its series' data, or its aggregated values)."""
    total = 0.0
    for series in result:
        value = series.get("aggregated_value")
        total += float(value) if value is not None else float(sum(series.get("data") or [0]))
    return total


async def _rendered(client: httpx.AsyncClient, actor: Actor, dashboard: dict[str, Any]) -> dict[str, Any]:
    response = await client.get(
        actor.url(f"dashboards/{dashboard['id']}/"), params={"refresh": "blocking"}, headers=actor.headers
    )
    assert response.status_code == 200, response.text
    tiles = response.json()["tiles"]
    by_name = {}
    for tile in tiles:
        insight = tile["insight"]
        assert tile.get("error") is None and insight["error"] is None, (insight["name"], insight["error"])
        assert insight["result"] is not None, insight["name"]
        by_name[insight["name"]] = insight["result"]
    return by_name


@pytest.mark.usefixtures("demo_events")
async def test_product_analytics_renders_every_tile(client: httpx.AsyncClient, actor: Actor) -> None:
    made = await client.post(
        actor.url("dashboards/"), json={"use_template": "DEFAULT_APP"}, headers=actor.headers
    )
    assert made.status_code == 201, made.text

    results = await _rendered(client, actor, made.json())

    assert set(results) == {t["name"] for t in PRODUCT_ANALYTICS.tiles}
    for name in (
        "Daily active users (DAUs)",
        "Weekly active users (WAUs)",
        "Referring domain (last 14 days)",
    ):
        assert _total(results[name]) > 0, name
    (dau,) = results["Daily active users (DAUs)"]
    assert dau["label"] == "Pageview or screen" and len(dau["days"]) == 31
    referrers = {s["breakdown_value"] for s in results["Referring domain (last 14 days)"]}
    assert "www.google.com" in referrers
    funnel = results["Pageview funnel, by browser"]
    assert {steps[0]["breakdown_value"][0] for steps in funnel} >= {"Chrome"}
    assert results["Retention"] and results["Growth accounting"]


@pytest.mark.usefixtures("demo_events")
async def test_website_traffic_renders_every_tile(client: httpx.AsyncClient, actor: Actor) -> None:
    made = await client.post(
        actor.url("dashboards/"), json={"use_template": "WEBSITE_TRAFFIC"}, headers=actor.headers
    )
    assert made.status_code == 201, made.text

    results = await _rendered(client, actor, made.json())

    assert set(results) == {t["name"] for t in WEBSITE_TRAFFIC.tiles}
    for name in set(results):
        assert _total(results[name]) > 0, name
    # Formulas: sessions per user and pages per user are at least one each week that has users.
    for name in ("Sessions Per User", "Pages Per User"):
        (series,) = results[name]
        assert all(value >= 1 for value in series["data"] if value), (name, series["data"])
    # Location is the person's country (set at ingestion), pages have no query string.
    countries = {s["breakdown_value"] for s in results["Website Users by Location"]}
    assert "US" in countries
    pages = {s["breakdown_value"] for s in results["Top Website Pages (Overall)"]}
    assert pages and all("?" not in p for p in pages)


@pytest.mark.usefixtures("demo_events")
async def test_llm_analytics_renders_every_tile(client: httpx.AsyncClient, actor: Actor) -> None:
    made = await client.post(
        actor.url("dashboards/create_unlisted_dashboard/"),
        json={"tag": "llm-analytics"},
        headers=actor.headers,
    )
    assert made.status_code == 201, made.text

    results = await _rendered(client, actor, made.json())

    assert set(results) == {t["name"] for t in LLM_ANALYTICS.tiles}
    for name in results:
        assert _total(results[name]) > 0, name
    models = {s["breakdown_value"] for s in results["Cost by model (USD)"]}
    assert models == {"gpt-4o-mini", "gpt-4o", "claude-3-5-sonnet"}
    # Traces count distinct trace ids: never more than the generation calls.
    (traces,) = results["Traces"]
    (calls,) = results["Generation calls"]
    assert 0 < sum(traces["data"]) < sum(calls["data"])
