"""The live dashboard page draws funnels, retention, lifecycle and stickiness, in Debian's Chromium.

As in `test_web_browser.py`: events go in through `/batch/`, a dashboard of these kinds is built through the
API and fetched with `refresh=blocking`, and its tiles are replayed as Server-Sent Events to the real page.
A breakdown value is hostile markup, which must show as text. Screenshots are saved in the test's temporary
directory.
"""

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Locator, Page

from app.web.pages import PageOptions
from tests.events import event, ingest
from tests.factories import Actor
from tests.test_web_browser import (
    CHROMIUM,
    HOSTILE,
    Replay,
    browser_app,
    chromium,
    live,
    open_page,
    people,
    screenshot,
    tile_named,
)

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason=f"Chromium is not installed at {CHROMIUM} (Debian's `chromium` package; .ci/run installs it)",
)

STEPS = [{"kind": "EventsNode", "event": name, "name": name} for name in ("$pageview", "signup", "purchase")]
PAGEVIEWS = [{"kind": "EventsNode", "event": "$pageview", "name": "$pageview"}]
LAST_WEEK = {"date_from": "-6d"}


def _insight(kind: str, **source: Any) -> dict[str, Any]:
    return {"kind": "InsightVizNode", "source": {"kind": kind, **source}}


def _funnel(viz: str = "steps", **source: Any) -> dict[str, Any]:
    return _insight(
        "FunnelsQuery",
        series=STEPS,
        dateRange=LAST_WEEK,
        funnelsFilter={"funnelVizType": viz, "funnelWindowInterval": 1, "funnelWindowIntervalUnit": "day"},
        **source,
    )


async def kinds_dashboard(client: httpx.AsyncClient, actor: Actor) -> dict[str, Any]:
    """Ten people over the last week: pageviews on some days, a sign-up and a purchase for some; a dashboard
    of a funnel of each kind, retention (with and without a breakdown), lifecycle and stickiness."""
    now = datetime.now(UTC).replace(microsecond=0)
    start = (now - timedelta(days=6)).replace(hour=0, minute=0, second=0) + timedelta(hours=1)
    browser = {**dict.fromkeys(range(5), "Chrome"), **dict.fromkeys(range(5, 8), "Firefox")}
    events = []
    for n in range(10):
        who = f"p{n}"
        props = {"$browser": browser.get(n, HOSTILE)}
        # Person n visits on day 0 and then on the days d where (n + d) % 3 != 0, up to today.
        for day in range(7):
            at = start + timedelta(days=day, minutes=n)
            if at < now and (day == 0 or (n + day) % 3):
                events.append(event("$pageview", who, at, props))
        if n < 6:  # six sign up (after 7n + 1 minutes); three buy, n hours after that
            events.append(event("signup", who, start + timedelta(minutes=n + 1 + 7 * n), props))
        if n < 3:
            events.append(event("purchase", who, start + timedelta(minutes=n + 2 + 7 * n, hours=n), props))
    await ingest(client, actor, events)

    response = await client.post(actor.url("dashboards/"), json={"name": "Kinds"}, headers=actor.headers)
    assert response.status_code == 201, response.text
    board = response.json()["id"]
    insights = [
        ("Sign-up funnel", _funnel()),
        ("Funnel by browser", _funnel(breakdownFilter={"breakdown": "$browser", "breakdown_type": "event"})),
        ("Conversion over time", _funnel("trends", interval="day")),
        ("Time to convert", _funnel("time_to_convert")),
        (
            "Daily retention",
            _insight(
                "RetentionQuery", dateRange=LAST_WEEK, retentionFilter={"period": "Day", "totalIntervals": 7}
            ),
        ),
        (
            "Retention by browser",
            _insight(
                "RetentionQuery",
                dateRange=LAST_WEEK,
                retentionFilter={"period": "Day", "totalIntervals": 7},
                breakdownFilter={"breakdown": "$browser", "breakdown_type": "event"},
            ),
        ),
        ("Lifecycle", _insight("LifecycleQuery", series=PAGEVIEWS, dateRange=LAST_WEEK, interval="day")),
        (
            "Stickiness",
            _insight(
                "StickinessQuery",
                series=[*PAGEVIEWS, {"kind": "EventsNode", "event": "signup", "name": "signup"}],
                dateRange=LAST_WEEK,
                interval="day",
                compareFilter={"compare": True},
            ),
        ),
    ]
    for name, query in insights:
        body = {"name": name, "query": query, "dashboards": [board]}
        response = await client.post(actor.url("insights/"), json=body, headers=actor.headers)
        assert response.status_code == 201, response.text
    response = await client.get(actor.url(f"dashboards/{board}/?refresh=blocking"), headers=actor.headers)
    assert response.status_code == 200, response.text
    dashboard: dict[str, Any] = response.json()
    assert len(dashboard["tiles"]) == len(insights)
    for tile in dashboard["tiles"]:
        assert tile.get("error") is None, tile
    return dashboard


def _tile(page: Page, dashboard: dict[str, Any], name: str) -> tuple[Locator, Any]:
    tile = tile_named(dashboard, name)
    return page.locator(f'[data-tile-id="{tile["id"]}"]'), tile["insight"]["result"]


def percent(value: float) -> str:
    """A percentage as the page writes it: at most one decimal."""
    return f"{round(value, 1):,}".removesuffix(".0") + "%"


def duration(seconds: float) -> str:
    """A duration as the page writes it: at most two units."""
    rest = round(abs(seconds))
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, rest = divmod(rest, size)
        if count or parts or size == 1:
            parts.append((count, unit))
    first, *more = parts
    text = f"{first[0]}{first[1]}"
    if more and more[0][0]:
        text += f" {more[0][0]}{more[0][1]}"
    return text


async def _alpha(cell: Locator) -> float:
    color = await cell.evaluate("(node) => getComputedStyle(node).backgroundColor")
    assert color.startswith("rgba("), color
    return float(color.rstrip(")").split(",")[-1])


async def test_the_page_draws_funnels_retention_lifecycle_and_stickiness(
    client: httpx.AsyncClient, actor: Actor, tmp_path: Path
) -> None:
    dashboard = await kinds_dashboard(client, actor)
    app = browser_app(Replay(dashboard), PageOptions(expected_tiles=len(dashboard["tiles"])))
    async with live(app) as base, chromium() as browser:
        page, watch = await open_page(browser, base, height=1800)
        await page.goto(f"{base}/_test/dashboard")
        await page.locator('#tilecast-dashboard[data-state="complete"]').wait_for(timeout=15_000)
        await page.wait_for_timeout(400)  # the tiles' arrival animation, for a still screenshot
        await page.screenshot(path=screenshot(tmp_path, "kinds"), full_page=True)

        # Funnel steps: a bar per step with its count, and the conversion from the first and the previous.
        tile, steps = _tile(page, dashboard, "Sign-up funnel")
        assert await tile.get_attribute("data-display") == "Funnel-steps"
        assert [s["count"] for s in steps] == [10, 6, 3]
        assert await tile.locator(".tc-funnel-step").count() == 3
        assert await tile.locator(".tc-funnel-bar").count() == 3
        assert await tile.locator(".tc-funnel-step-name").all_text_contents() == [
            "$pageview",
            "signup",
            "purchase",
        ]
        assert await tile.locator(".tc-funnel-count").all_text_contents() == ["10", "6", "3"]
        assert await tile.locator(".tc-funnel-rate").all_text_contents() == ["100%", "60%", "30%"]
        assert await tile.locator(".tc-funnel-rate-previous").all_text_contents() == [
            "60% from previous",
            "50% from previous",
        ]
        assert await tile.locator(".tc-funnel-dropped").all_text_contents() == [
            "4 dropped off",
            "3 dropped off",
        ]
        assert await tile.locator(".tc-funnel-total").text_content() == "30%"
        widths = [
            await bar.evaluate("(n) => n.getBoundingClientRect().width")
            for bar in await tile.locator(".tc-funnel-bar").all()
        ]
        track = await tile.locator(".tc-funnel-track").first.evaluate(
            "(n) => n.getBoundingClientRect().width"
        )
        assert widths[0] == pytest.approx(track, abs=1)
        assert widths[1] == pytest.approx(track * 0.6, abs=1) and widths[2] == pytest.approx(
            track * 0.3, abs=1
        )
        await tile.screenshot(path=screenshot(tmp_path, "funnel-steps"))

        # A breakdown: in each step one bar per value, a legend naming the values (the hostile one as text).
        tile, groups = _tile(page, dashboard, "Funnel by browser")
        assert len(groups) == 3
        assert await tile.locator(".tc-funnel-step").count() == 3
        assert await tile.locator(".tc-funnel-bar").count() == 9
        for k in range(3):
            counts = await tile.locator(
                f'.tc-funnel-step[data-step="{k}"] .tc-funnel-count'
            ).all_text_contents()
            assert counts == [people(g[k]["count"]) for g in groups]
        labels = await tile.locator(".tc-legend-label").all_text_contents()
        assert labels == [", ".join(g[0]["breakdown_value"]) for g in groups]
        assert sorted(labels) == sorted(["Chrome", "Firefox", HOSTILE])
        await tile.screenshot(path=screenshot(tmp_path, "funnel-breakdown"))

        # Conversion over time: the trends line chart, in percent.
        tile, series = _tile(page, dashboard, "Conversion over time")
        assert len(series) == 1
        chart = tile.locator("svg.tc-chart-line")
        assert await chart.locator("circle.tc-point").count() == len(series[0]["data"]) == 7
        ticks = await chart.locator("text.tc-y-tick").all_text_contents()
        assert ticks and all(t.endswith("%") for t in ticks)
        await tile.screenshot(path=screenshot(tmp_path, "funnel-trends"))

        # Time to convert: a bar per bin, durations on the axis, the average.
        tile, ttc = _tile(page, dashboard, "Time to convert")
        bins = ttc["bins"]
        assert sum(count for _, count in bins) == 3
        chart = tile.locator("svg.tc-chart-bar")
        assert await chart.locator("rect.tc-bar").count() == len(bins)
        x_ticks = await chart.locator("text.tc-x-tick").all_text_contents()
        assert x_ticks[0] == duration(bins[0][0])
        assert set(x_ticks) <= {duration(start) for start, _ in bins}
        assert await tile.locator(".tc-ttc-average").text_content() == duration(
            ttc["average_conversion_time"]
        )
        await tile.screenshot(path=screenshot(tmp_path, "time-to-convert"))

        # Retention: a row per cohort, its size, a shaded cell per period so far, the shade by percentage.
        tile, rows = _tile(page, dashboard, "Daily retention")
        assert len(rows) == 7
        table = tile.locator("table.tc-retention-table")
        assert await table.count() == 1
        headers = await table.locator("thead th").all_text_contents()
        assert headers == ["Cohort", "Size", *(v["label"] for v in rows[0]["values"])]
        body_rows = table.locator("tr.tc-retention-row")
        assert await body_rows.count() == len(rows)
        assert await table.locator("td.tc-retention-size").all_text_contents() == [
            people(row["values"][0]["count"]) for row in rows
        ]
        # The first cohort's row has every period (it started 6 days ago); the last only its day 0.
        first = body_rows.nth(0).locator("td.tc-retention-cell")
        assert await first.count() == 7
        assert await first.all_text_contents() == [
            percent(100 * v["count"] / rows[0]["values"][0]["count"]) for v in rows[0]["values"]
        ]
        last = body_rows.nth(len(rows) - 1)
        assert await last.locator("td.tc-retention-cell:not(.tc-retention-future)").count() == 1
        assert await last.locator("td.tc-retention-future").count() == 6
        cells = [(float(await c.get_attribute("data-percent") or "nan"), c) for c in await first.all()]
        low = min(cells, key=lambda pc: pc[0])
        high = max(cells, key=lambda pc: pc[0])
        assert low[0] < high[0]
        assert await _alpha(low[1]) < await _alpha(high[1])
        assert await tile.locator("tr.tc-retention-mean").count() == 1
        await tile.screenshot(path=screenshot(tmp_path, "retention"))

        # Retention with a breakdown: a table per value, named (the hostile one as text).
        tile, rows = _tile(page, dashboard, "Retention by browser")
        values = list(dict.fromkeys(str(row["breakdown_value"]) for row in rows))
        assert await tile.locator("table.tc-retention-table").count() == len(values) == 3
        assert await tile.locator(".tc-retention-breakdown").all_text_contents() == values
        assert HOSTILE in values

        # Lifecycle: stacked bars, new/returning/resurrecting above the zero line, dormant below it.
        tile, series = _tile(page, dashboard, "Lifecycle")
        assert [s["status"] for s in series] == ["new", "returning", "resurrecting", "dormant"]
        chart = tile.locator("svg.tc-chart-stacked")
        zero = float(await chart.locator("line.tc-zero").get_attribute("y1") or "nan")
        boxes = "(rs) => rs.map((r) => [r.y.baseVal.value, r.height.baseVal.value])"
        above = [box for box in await chart.locator("rect.tc-above").evaluate_all(boxes) if box[1] > 0]
        below = await chart.locator("rect.tc-below").evaluate_all(boxes)
        assert len(above) == sum(1 for s in series[:3] for v in s["data"] if v > 0) > 0
        assert len(below) == sum(1 for v in series[3]["data"] if v < 0) > 0
        assert all(y + h <= zero + 0.5 for y, h in above)
        assert all(y >= zero - 0.5 and h > 0 for y, h in below)
        assert await tile.locator(".tc-legend-label").all_text_contents() == [
            "New",
            "Returning",
            "Resurrecting",
            "Dormant",
        ]
        fills = [await g.get_attribute("fill") for g in await chart.locator("g.tc-series").all()]
        assert len(set(fills)) == 4
        # Hovering shows each status's value in that bucket (dormant negative).
        box = await chart.bounding_box()
        assert box is not None
        await page.mouse.move(box["x"] + box["width"] - 20, box["y"] + box["height"] / 2)
        tooltip = tile.locator(".tc-tooltip")
        await tooltip.wait_for(state="visible")
        assert await tooltip.locator(".tc-tooltip-value").all_text_contents() == [
            people(s["data"][-1]) for s in series
        ]
        await tile.screenshot(path=screenshot(tmp_path, "lifecycle"))
        await page.mouse.move(0, 0)

        # Stickiness: grouped bars, a series per series and period, x labels "1 day", "2 days", ….
        tile, series = _tile(page, dashboard, "Stickiness")
        assert [s.get("compare_label") for s in series] == ["current", "previous", "current", "previous"]
        chart = tile.locator("svg.tc-chart-bar")
        for s, result in enumerate(series):
            bars = chart.locator(f'g.tc-series[data-series="{s}"] rect.tc-bar')
            assert await bars.count() == len(result["data"]) == 7
        assert await chart.locator("g.tc-series.tc-previous").count() == 2
        x_ticks = await chart.locator("text.tc-x-tick").all_text_contents()
        assert x_ticks[0] == "1 day" and set(x_ticks) <= set(series[0]["labels"])
        assert await tile.locator(".tc-legend-label").all_text_contents() == [
            "$pageview",
            "$pageview (previous)",
            "signup",
            "signup (previous)",
        ]
        await tile.screenshot(path=screenshot(tmp_path, "stickiness"))

        # Below 600 px every drawing still fits its tile's width.
        await page.set_viewport_size({"width": 420, "height": 900})
        await page.wait_for_timeout(300)
        await page.screenshot(path=screenshot(tmp_path, "narrow"), full_page=True)
        for tile in dashboard["tiles"]:
            node = page.locator(f'[data-tile-id="{tile["id"]}"] .tc-tile-body')
            widths = await node.evaluate("(n) => [n.scrollWidth, n.clientWidth]")
            assert widths[0] <= widths[1] + 1, (tile["insight"]["name"], widths)
        await _tile(page, dashboard, "Retention by browser")[0].screenshot(
            path=screenshot(tmp_path, "narrow-retention")
        )

        # Hostile data ran nothing.
        assert await page.locator("img").count() == 0
        assert watch.dialogs == []
        assert watch.page_errors == []
        assert watch.console_errors == []
        assert watch.blocked == []
