"""The live dashboard page draws SQL insights, in Debian's Chromium: a `DataVisualizationNode` as the chart
its display and axes name (or PostHog's automatic choice), a number, and a `DataTableNode` as a table.

The dashboard is built and computed through the API on a database set up for SQL insights (each query runs as
its team's role), then its tiles are replayed to the real page as in `test_web_browser.py`.
"""

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from app.web.pages import PageOptions
from tests.conftest import FreshDatabases
from tests.hogql_helpers import World, sql_database, sql_world
from tests.test_web_browser import (
    CHROMIUM,
    Replay,
    browser_app,
    chromium,
    live,
    open_page,
    screenshot,
    tile_named,
)

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason=f"Chromium is not installed at {CHROMIUM} (Debian's `chromium` package; .ci/run installs it)",
)

PER_DAY = "SELECT toDate(timestamp) AS day, count() AS n FROM events GROUP BY day ORDER BY day"
BY_EVENT = (
    "SELECT event, count() AS n, uniq(distinct_id) AS people FROM events "
    "GROUP BY event ORDER BY n DESC, event"
)


@pytest.fixture
def sql_url(fresh_databases: FreshDatabases) -> str:
    return sql_database(fresh_databases)


@pytest.fixture
async def world(sql_url: str) -> AsyncIterator[World]:
    async with sql_world(sql_url) as built:
        yield built


def _viz(sql: str, **node: Any) -> dict[str, Any]:
    return {"kind": "DataVisualizationNode", "source": {"kind": "HogQLQuery", "query": sql}, **node}


async def _sql_dashboard(world: World) -> dict[str, Any]:
    client, actor = world.client, world.ours
    made = await client.post(actor.url("dashboards/"), json={"name": "SQL"}, headers=actor.headers)
    assert made.status_code == 201, made.text
    board = made.json()["id"]
    insights = [
        (
            "Events per day",
            _viz(
                PER_DAY,
                display="ActionsLineGraph",
                chartSettings={"xAxis": {"column": "day"}, "yAxis": [{"column": "n"}]},
            ),
        ),
        ("Events (automatic)", _viz(PER_DAY)),
        ("Total events", _viz("SELECT count() AS total FROM events")),
        ("By event", {"kind": "DataTableNode", "source": {"kind": "HogQLQuery", "query": BY_EVENT}}),
    ]
    for name, query in insights:
        body = {"name": name, "query": query, "dashboards": [board]}
        created = await client.post(actor.url("insights/"), json=body, headers=actor.headers)
        assert created.status_code == 201, created.text
    got = await client.get(actor.url(f"dashboards/{board}/?refresh=blocking"), headers=actor.headers)
    assert got.status_code == 200, got.text
    dashboard: dict[str, Any] = got.json()
    for tile in dashboard["tiles"]:
        assert tile.get("error") is None and tile["insight"]["result"] is not None, tile
    return dashboard


async def test_the_page_draws_sql_insights(world: World, tmp_path: Path) -> None:
    dashboard = await _sql_dashboard(world)
    # The fixed events: 2 on Jan 1, 2 on Jan 2, 2 on Jan 3, 2 on Jan 4 (UTC).
    per_day = tile_named(dashboard, "Events per day")["insight"]
    assert per_day["columns"] == ["day", "n"]
    assert per_day["result"] == [["2026-01-01", 2], ["2026-01-02", 2], ["2026-01-03", 2], ["2026-01-04", 2]]

    app = browser_app(Replay(dashboard), PageOptions(expected_tiles=len(dashboard["tiles"])))
    async with live(app) as base, chromium() as browser:
        page, watch = await open_page(browser, base, height=1400)
        await page.goto(f"{base}/_test/dashboard")
        await page.locator('#tilecast-dashboard[data-state="complete"]').wait_for(timeout=15_000)
        await page.wait_for_timeout(400)
        await page.screenshot(path=screenshot(tmp_path, "sql"), full_page=True)

        def tile(name: str) -> Any:
            return page.locator(f'[data-tile-id="{tile_named(dashboard, name)["id"]}"]')

        # The named chart: a line over the four days, its x labels the `day` column.
        chart = tile("Events per day")
        assert await chart.locator("svg.tc-chart-line").count() == 1
        assert await chart.locator(".tc-sql").count() == 0
        labels = await chart.locator("svg text").all_text_contents()
        assert "2026-01-01" in labels and "2026-01-04" in labels
        # No display: a date column and a number over several rows is a line, as PostHog picks.
        assert await tile("Events (automatic)").locator("svg.tc-chart-line").count() == 1
        # One number: the number itself.
        assert await tile("Total events").locator(".tc-number-value").text_content() == "8"
        # A table node: its columns and rows as a table.
        table = tile("By event").locator("table.tc-sql")
        assert await table.locator("th").all_text_contents() == ["event", "n", "people"]
        assert await table.locator("tbody tr").count() == 4
        assert await table.locator("tbody tr").first.locator("td").all_text_contents() == [
            "$pageview",
            "4",
            "3",
        ]
        assert watch.page_errors == [] and watch.console_errors == []
