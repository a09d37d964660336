"""The live dashboard page in a real browser: Debian's Chromium, driven by Playwright for Python.

The page's module is tested against a stream made in the test: a real dashboard (events sent through
`/batch/`, insights of line, bar, number and table displays, a Markdown text tile, a tile that cannot render)
is fetched through the API with `refresh=blocking`, and its tiles are replayed as Server-Sent Events in
PostHog's wire format by a small route mounted on a live server for the test only. `/docs` and `/redoc` are
loaded with every request to another host blocked.

Playwright drives the system's Chromium (`executable_path`); no browser is ever downloaded. Without
`/usr/bin/chromium` these tests are skipped, saying why. Each test saves screenshots in its temporary
directory.
"""

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, StreamingResponse
from playwright.async_api import Browser, ConsoleMessage, Dialog, Page, Route, async_playwright

from app.main import create_app
from app.web.pages import PageMeta, PageOptions, render_dashboard_page
from tests.events import event, ingest
from tests.factories import Actor
from tests.live import free_port

CHROMIUM = Path("/usr/bin/chromium")

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason=f"Chromium is not installed at {CHROMIUM} (Debian's `chromium` package; .ci/run installs it)",
)

HOSTILE = "<img src=x onerror=alert(1)>"
MARKDOWN = """# Read me *first*

Numbers come from **real events**; see [the docs](https://example.com/docs) and `tilecast demo`.

- one <b>bold</b> claim
- a [bad link](javascript:alert(2))

1. first
2. second

<script>alert(3)</script>
"""


# --- the dashboard, through the real API --------------------------------------------------------------------


async def _post(client: httpx.AsyncClient, actor: Actor, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = await client.post(actor.url(path), json=body, headers=actor.headers)
    assert response.status_code in (200, 201), response.text
    result: dict[str, Any] = response.json()
    return result


def _trends(event_name: str, **source: Any) -> dict[str, Any]:
    return {
        "kind": "InsightVizNode",
        "source": {
            "kind": "TrendsQuery",
            "series": [{"kind": "EventsNode", "event": event_name, "math": "total"}],
            "interval": "day",
            "dateRange": {"date_from": "-6d"},
            **source,
        },
    }


async def real_dashboard(client: httpx.AsyncClient, actor: Actor) -> dict[str, Any]:
    """A dashboard of every kind of tile the page draws, as `GET …/dashboards/{id}/?refresh=blocking`
    returns it."""
    now = datetime.now(UTC).replace(microsecond=0)
    browsers = {"Chrome": (6, 4), "Firefox": (3, 3), HOSTILE: (1, 2)}  # a base and a weekly wobble
    events = []
    for day in range(14):
        at = now - timedelta(days=day, hours=1)
        for browser, (base, wobble) in browsers.items():
            for n in range(base + day % wobble):
                events.append(event("$pageview", f"u{n}", at, {"$browser": browser}))
        for n in range(day % 4 + 1):
            events.append(event("purchase", f"b{n}", at, {"revenue": 1234.5 + day * 100 + n}))
    await ingest(client, actor, events)

    board = await _post(
        client,
        actor,
        "dashboards/",
        {
            "name": "Shop overview",
            "description": "Traffic and revenue, last week",
            "tags": ["growth", HOSTILE],
        },
    )
    board_id = board["id"]
    insights = [
        ("Pageviews by browser", _trends("$pageview", breakdownFilter={"breakdown": "$browser"})),
        (
            "Revenue per day",
            _trends(
                "purchase",
                series=[
                    {"kind": "EventsNode", "event": "purchase", "math": "sum", "math_property": "revenue"}
                ],
                trendsFilter={"display": "ActionsBar"},
                compareFilter={"compare": True},
            ),
        ),
        (
            "Purchases",
            _trends("purchase", trendsFilter={"display": "BoldNumber"}, compareFilter={"compare": True}),
        ),
        (
            "Browsers",
            _trends(
                "$pageview",
                trendsFilter={"display": "ActionsTable"},
                breakdownFilter={"breakdown": "$browser"},
            ),
        ),
        ("User paths", {"kind": "InsightVizNode", "source": {"kind": "PathsQuery"}}),
    ]
    for name, query in insights:
        await _post(client, actor, "insights/", {"name": name, "query": query, "dashboards": [board_id]})
    response = await client.patch(
        actor.url(f"dashboards/{board_id}/"),
        json={"tiles": [{"text": {"body": MARKDOWN}}]},
        headers=actor.headers,
    )
    assert response.status_code == 200, response.text
    response = await client.get(actor.url(f"dashboards/{board_id}/?refresh=blocking"), headers=actor.headers)
    assert response.status_code == 200, response.text
    dashboard: dict[str, Any] = response.json()
    assert len(dashboard["tiles"]) == 6
    return dashboard


def people(value: float) -> str:
    """A number as the page writes it (en-US): thousands separators, at most 2 decimals."""
    return f"{round(value, 2):,}".removesuffix(".0")


def tile_named(dashboard: dict[str, Any], name: str) -> dict[str, Any]:
    return next(t for t in dashboard["tiles"] if t["insight"] and t["insight"]["name"] == name)


# --- a test-only stream of those tiles, on a live server ---------------------------------------------------


@dataclass
class Replay:
    """Replays a dashboard as PostHog's stream: metadata (with the first two tiles), each tile, complete.
    With `drop_after`, the first connection ends after that many messages; the next resumes after its
    `Last-Event-ID`, once `resume` is set."""

    dashboard: dict[str, Any]
    delay: float = 0.05
    drop_after: int | None = None
    fail_tile: int | None = None
    fatal_after: int | None = None
    connections: list[str | None] = field(default_factory=list)
    resume: asyncio.Event = field(default_factory=asyncio.Event)

    def messages(self) -> list[dict[str, Any]]:
        tiles = self.dashboard["tiles"]
        head = {k: v for k, v in self.dashboard.items() if k != "tiles"}
        out: list[dict[str, Any]] = [{"type": "metadata", "dashboard": {**head, "tiles": tiles[:2]}}]
        for tile in tiles[2:]:
            if tile["id"] == self.fail_tile:
                out.append({"type": "error", "tile_id": tile["id"], "error": "The tile's render failed."})
            else:
                out.append({"type": "tile", "order": tile["order"], "tile": tile})
        out.append({"type": "complete"})
        if self.fatal_after is not None:
            out[self.fatal_after :] = [{"type": "error", "error": "The dashboard could not be loaded."}]
        return out

    async def stream(self, last_event_id: str | None) -> AsyncIterator[bytes]:
        self.connections.append(last_event_id)
        start = int(last_event_id) if last_event_id else 0
        if start:
            await self.resume.wait()
        for number, message in enumerate(self.messages()[start:], start=start + 1):
            if self.drop_after is not None and not start and number > self.drop_after:
                return  # the connection drops, without `complete`
            retry = "retry: 200\n" if number == 1 else ""
            yield f"{retry}id: {number}\ndata: {json.dumps(message)}\n\n".encode()
            await asyncio.sleep(self.delay)


def browser_app(replay: Replay, options: PageOptions) -> FastAPI:
    """The real app (its pages, assets, /docs), plus the test's stream and a page over it."""
    app = create_app()
    router = APIRouter(include_in_schema=False)

    @router.get("/_test/stream")
    async def stream(request: Request) -> StreamingResponse:
        return StreamingResponse(
            replay.stream(request.headers.get("last-event-id")),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store"},
        )

    @router.get("/_test/dashboard")
    async def page() -> HTMLResponse:
        return render_dashboard_page("/_test/stream", options=options, meta=PageMeta(title="Test dashboard"))

    app.include_router(router)
    return app


class _Server(uvicorn.Server):
    def capture_signals(self) -> contextlib.AbstractContextManager[None]:  # the test's process keeps its own
        return contextlib.nullcontext()


@contextlib.asynccontextmanager
async def live(app: FastAPI) -> AsyncIterator[str]:
    """`app` served on a free port, in the test's own event loop (no lifespan: the page routes need no
    database)."""
    port = free_port()
    server = _Server(uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_level="warning"))
    task = asyncio.create_task(server.serve())
    try:
        for _ in range(200):
            if server.started:
                break
            await asyncio.sleep(0.02)
        assert server.started, "the test server did not start"
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, timeout=10)


@contextlib.asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            yield browser
        finally:
            await browser.close()


@dataclass
class Watch:
    """What a page did that it should not: dialogs opened, console errors (CSP violations among them),
    requests to other hosts."""

    dialogs: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)


async def open_page(
    browser: Browser, base: str, *, width: int = 1280, height: int = 1100
) -> tuple[Page, Watch]:
    context = await browser.new_context(viewport={"width": width, "height": height}, locale="en-US")
    page = await context.new_page()
    watch = Watch()

    async def on_dialog(dialog: Dialog) -> None:
        watch.dialogs.append(dialog.message)
        await dialog.dismiss()

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            watch.console_errors.append(message.text)

    async def only_this_host(route: Route) -> None:
        if route.request.url.startswith(base + "/"):
            await route.continue_()
        else:
            watch.blocked.append(route.request.url)
            await route.abort()

    page.on("dialog", on_dialog)
    page.on("console", on_console)
    page.on("pageerror", lambda exc: watch.page_errors.append(str(exc)))
    await page.route("**/*", only_this_host)
    return page, watch


async def _count(page: Page, selector: str) -> int:
    return int(await page.locator(selector).count())


def screenshot(tmp_path: Path, name: str) -> str:
    return str(tmp_path / f"{name}.png")


# --- the tests ----------------------------------------------------------------------------------------------


async def test_the_page_draws_every_tile_of_a_real_dashboard(
    client: httpx.AsyncClient, actor: Actor, tmp_path: Path
) -> None:
    dashboard = await real_dashboard(client, actor)
    tiles = dashboard["tiles"]
    replay = Replay(dashboard)
    app = browser_app(replay, PageOptions(expected_tiles=len(tiles)))
    async with live(app) as base, chromium() as browser:
        page, watch = await open_page(browser, base)
        response = await page.goto(f"{base}/_test/dashboard")
        assert response is not None and response.status == 200
        csp = await response.header_value("content-security-policy")
        assert csp is not None and "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
        root = page.locator("#tilecast-dashboard")
        await page.locator('#tilecast-dashboard[data-state="complete"]').wait_for(timeout=15_000)
        await page.screenshot(path=screenshot(tmp_path, "dashboard"), full_page=True)

        # The stream was read to its end and closed; the progress says so.
        assert await page.evaluate("window.tilecastDashboard.source.readyState") == 2  # EventSource.CLOSED
        assert await root.get_attribute("data-stream") == "closed"
        assert await page.locator(".tc-progress").text_content() == f"{len(tiles)} of {len(tiles)} tiles"
        assert replay.connections == [None]

        # The header: name, description, tags (one of them hostile: text).
        assert await page.locator(".tc-title").text_content() == "Shop overview"
        assert await page.locator(".tc-description").text_content() == "Traffic and revenue, last week"
        assert sorted(await page.locator(".tc-tag").all_text_contents()) == sorted(["growth", HOSTILE])
        assert await page.title() == "Shop overview"

        # Every tile is drawn.
        for tile in tiles:
            assert await _count(page, f'[data-tile-id="{tile["id"]}"]') == 1, tile["id"]

        # The line chart: one path and one point per bucket for each series (a series per browser).
        line = tile_named(dashboard, "Pageviews by browser")
        results = line["insight"]["result"]
        assert len(results) == 3
        chart = page.locator(f'[data-tile-id="{line["id"]}"] svg.tc-chart-line')
        assert await chart.count() == 1
        assert await chart.locator("path.tc-line").count() == len(results)
        for s, result in enumerate(results):
            series = chart.locator(f'g.tc-series[data-series="{s}"]')
            assert await series.locator("circle.tc-point").count() == len(result["data"]) == 7
        assert await chart.locator("text.tc-y-tick").count() >= 2
        assert await chart.locator("text.tc-x-tick").count() >= 2
        legend = page.locator(f'[data-tile-id="{line["id"]}"] .tc-legend-label')
        assert sorted(await legend.all_text_contents()) == sorted(r["label"] for r in results)
        assert HOSTILE in await legend.all_text_contents()

        # Hovering shows the values of that bucket.
        box = await chart.bounding_box()
        assert box is not None
        await page.mouse.move(box["x"] + box["width"] - 20, box["y"] + box["height"] / 2)
        tooltip = page.locator(f'[data-tile-id="{line["id"]}"] .tc-tooltip')
        await tooltip.wait_for(state="visible")
        rows = await tooltip.locator(".tc-tooltip-value").all_text_contents()
        assert rows == [people(r["data"][-1]) for r in results]
        await page.screenshot(path=screenshot(tmp_path, "hover"))
        await page.mouse.move(0, 0)

        # The bar chart with its previous period: a bar per bucket for each series, the previous dashed.
        bar = tile_named(dashboard, "Revenue per day")
        results = bar["insight"]["result"]
        assert [r["compare_label"] for r in results] == ["current", "previous"]
        chart = page.locator(f'[data-tile-id="{bar["id"]}"] svg.tc-chart-bar')
        for s, result in enumerate(results):
            series = chart.locator(f'g.tc-series[data-series="{s}"]')
            assert await series.locator("rect.tc-bar").count() == len(result["data"])
        assert await chart.locator("g.tc-series.tc-previous").count() == 1

        # The number, with its change against the previous period.
        number = tile_named(dashboard, "Purchases")
        current, previous = (r["aggregated_value"] for r in number["insight"]["result"])
        assert current and previous
        tile = page.locator(f'[data-tile-id="{number["id"]}"]')
        assert await tile.locator(".tc-number-value").text_content() == people(current)
        change = (current - previous) / previous * 100
        arrow = "▲" if change > 0 else "▼"
        assert (await tile.locator(".tc-number-change").text_content() or "").startswith(
            f"{arrow} {abs(change):.1f}%".replace(".0%", "%")
        )

        # The table, sorted, its hostile breakdown value shown as text.
        table = tile_named(dashboard, "Browsers")
        expected = sorted(table["insight"]["result"], key=lambda r: -r["aggregated_value"])
        tile = page.locator(f'[data-tile-id="{table["id"]}"]')
        assert await tile.locator("td.tc-label").all_text_contents() == [r["label"] for r in expected]
        assert await tile.locator(".tc-value-text").all_text_contents() == [
            people(r["aggregated_value"]) for r in expected
        ]

        # The text tile: Markdown drawn as nodes, no HTML, only http(s) links.
        text = next(t for t in tiles if t["text"])
        tile = page.locator(f'[data-tile-id="{text["id"]}"]')
        assert await tile.locator("h3").text_content() == "Read me first"
        assert await tile.locator("h3 em").text_content() == "first"
        assert await tile.locator("strong").text_content() == "real events"
        assert await tile.locator("code").text_content() == "tilecast demo"
        assert await tile.locator("ul > li").count() == 2
        assert await tile.locator("ol > li").count() == 2
        assert [await a.get_attribute("href") for a in await tile.locator("a").all()] == [
            "https://example.com/docs"
        ]
        assert "one <b>bold</b> claim" in (await tile.locator("ul > li").first.text_content() or "")
        assert await tile.locator("b, script").count() == 0

        # The tile that cannot render: a visible error box naming why.
        failing = tile_named(dashboard, "User paths")
        box_text = await page.locator(f'[data-tile-id="{failing["id"]}"] .tc-error').text_content()
        assert box_text is not None and "PathsQuery" in box_text

        # Grid placement follows the `sm` layouts.
        for tile in tiles:
            sm = tile["layouts"]["sm"]
            bounds = await page.locator(f'[data-tile-id="{tile["id"]}"]').bounding_box()
            assert bounds is not None
            tile["_box"] = bounds
            assert (sm["x"] == 0) == (bounds["x"] < 400), (sm, bounds)
        ys = {t["layouts"]["sm"]["y"]: t["_box"]["y"] for t in tiles}
        assert [ys[y] for y in sorted(ys)] == sorted(ys.values())

        # Hostile data ran nothing: no image element, no dialog, no script error, nothing CSP refused.
        assert await _count(page, "img") == 0
        assert watch.dialogs == []
        assert watch.page_errors == []
        assert watch.console_errors == []
        assert watch.blocked == []

        # Below 600 px: one column, in the order of the `xs` layouts.
        await page.set_viewport_size({"width": 420, "height": 900})
        await page.wait_for_timeout(200)
        await page.screenshot(path=screenshot(tmp_path, "narrow"), full_page=True)
        placed = []
        for tile in tiles:
            bounds = await page.locator(f'[data-tile-id="{tile["id"]}"]').bounding_box()
            assert bounds is not None
            assert bounds["width"] > 350
            placed.append((bounds["y"], tile["layouts"]["xs"]["y"]))
        assert [xs for _, xs in sorted(placed)] == sorted(xs for _, xs in placed)


async def test_a_dropped_stream_shows_reconnecting_and_resumes(
    client: httpx.AsyncClient, actor: Actor, tmp_path: Path
) -> None:
    dashboard = await real_dashboard(client, actor)
    tiles = dashboard["tiles"]
    failing_id = tiles[-1]["id"]
    replay = Replay(dashboard, delay=0.01, drop_after=3, fail_tile=failing_id)
    app = browser_app(
        replay,
        PageOptions(
            expected_tiles=len(tiles),
            legend=False,
            whitelabel=True,
            detailed=True,
            no_header=True,
            colors=["#ff0000", "#00aa00", "#0000ff"],
        ),
    )
    async with live(app) as base, chromium() as browser:
        page, watch = await open_page(browser, base)
        await page.goto(f"{base}/_test/dashboard")
        await page.locator('#tilecast-dashboard[data-state="reconnecting"]').wait_for(timeout=10_000)
        assert await page.locator(".tc-connection").text_content() == "Connection lost — reconnecting…"
        # The metadata carried two tiles, the two messages after it one each.
        assert await page.locator(".tc-progress").text_content() == f"4 of {len(tiles)} tiles"
        await page.wait_for_timeout(400)  # the tiles' arrival animation, for a still screenshot
        await page.screenshot(path=screenshot(tmp_path, "reconnecting"))
        replay.resume.set()
        await page.locator('#tilecast-dashboard[data-state="complete"]').wait_for(timeout=15_000)
        await page.screenshot(path=screenshot(tmp_path, "resumed"), full_page=True)
        # The browser resumed after the last message it had (`Last-Event-ID`), and drew the rest once.
        assert replay.connections[0] is None and set(replay.connections[1:]) == {"3"}
        assert await page.locator(".tc-progress").text_content() == f"{len(tiles)} of {len(tiles)} tiles"
        assert await _count(page, ".tc-tile") == len(tiles)
        failed = page.locator(f'[data-tile-id="{failing_id}"] .tc-error')
        assert "The tile's render failed." in (await failed.text_content() or "")
        # The share settings: no header, no legends, no mark, each chart's series in a table.
        assert await _count(page, ".tc-legend") == 0
        assert not await page.locator(".tc-footer").is_visible()
        assert not await page.locator(".tc-header").is_visible()
        bar = tile_named(dashboard, "Revenue per day")
        details = page.locator(f'[data-tile-id="{bar["id"]}"] table.tc-details tbody tr')
        assert await details.count() == 2
        assert await details.locator("td").all_text_contents() == [
            text
            for r in bar["insight"]["result"]
            for text in (
                "purchase" if r["compare_label"] == "current" else "purchase (previous)",
                people(r["count"]),
            )
        ]
        # The data color theme given, one color per series in turn.
        line = tile_named(dashboard, "Pageviews by browser")
        strokes = page.locator(f'[data-tile-id="{line["id"]}"] g.tc-series')
        assert [await g.get_attribute("stroke") for g in await strokes.all()] == [
            "#ff0000",
            "#00aa00",
            "#0000ff",
        ]
        assert await page.evaluate("window.tilecastDashboard.source.readyState") == 2
        assert watch.dialogs == [] and watch.page_errors == []


async def test_a_stream_that_fails_says_so(client: httpx.AsyncClient, actor: Actor, tmp_path: Path) -> None:
    dashboard = await real_dashboard(client, actor)
    replay = Replay(dashboard, fatal_after=2)
    app = browser_app(replay, PageOptions())

    @app.get("/_test/missing", include_in_schema=False)
    async def missing() -> HTMLResponse:
        return render_dashboard_page("/_test/no-such-stream")

    async with live(app) as base, chromium() as browser:
        page, watch = await open_page(browser, base)
        # A fatal error message: the stream is closed, the error shown, the tiles so far kept.
        await page.goto(f"{base}/_test/dashboard")
        await page.locator('#tilecast-dashboard[data-state="failed"]').wait_for(timeout=10_000)
        assert await page.locator(".tc-fatal").text_content() == "The dashboard could not be loaded."
        assert await page.locator(".tc-progress").text_content() == "3 tiles so far"
        assert await page.evaluate("window.tilecastDashboard.source.readyState") == 2
        await page.wait_for_timeout(400)
        await page.screenshot(path=screenshot(tmp_path, "fatal"))
        assert replay.connections == [None]  # closed: the browser did not reconnect

        # A stream that cannot be opened at all (here a 404).
        await page.goto(f"{base}/_test/missing")
        await page.locator('#tilecast-dashboard[data-state="failed"]').wait_for(timeout=10_000)
        assert await page.locator(".tc-fatal").text_content() == "The dashboard's stream could not be opened."
        await page.screenshot(path=screenshot(tmp_path, "unopened"))
        assert watch.dialogs == [] and watch.page_errors == []


async def test_docs_and_redoc_work_with_other_hosts_blocked(tmp_path: Path) -> None:
    app = create_app()
    async with live(app) as base, chromium() as browser:
        page, watch = await open_page(browser, base)
        response = await page.goto(f"{base}/docs")
        assert response is not None and response.status == 200
        csp = await response.header_value("content-security-policy")
        assert csp is not None and "script-src 'self'" in csp and "unsafe-eval" not in csp
        await page.locator(".opblock").first.wait_for(timeout=15_000)
        operations = await _count(page, ".opblock")
        assert operations > 40
        assert await page.locator(".opblock-summary-path", has_text="/dashboards/").count() > 0
        await page.screenshot(path=screenshot(tmp_path, "docs"))
        # An operation's responses list PostHog's 400, not FastAPI's 422.
        await page.locator(".opblock-get .opblock-summary").first.click()
        await page.locator(".responses-table").first.wait_for()
        codes = await page.locator(".responses-table .response-col_status").all_text_contents()
        assert any(code.strip().startswith("400") for code in codes)
        assert not any(code.strip().startswith("422") for code in codes)

        assert [e for e in watch.console_errors if "Content Security Policy" in e] == []

        response = await page.goto(f"{base}/redoc")
        assert response is not None and response.status == 200
        await page.locator("h1", has_text="Tilecast").first.wait_for(timeout=20_000)
        assert await page.locator("[data-section-id]").count() > 10
        await page.screenshot(path=screenshot(tmp_path, "redoc"))
        assert watch.blocked == [], watch.blocked
        assert watch.page_errors == []
        # Redoc's bundle always shows its maker's logo from its CDN; the policy refuses it (and Redoc then
        # hides it), so nothing is fetched from another host, which is what is refused here and nothing else.
        refused = [e for e in watch.console_errors if "Content Security Policy" in e]
        assert all("https://cdn.redoc.ly/redoc/logo-mini.svg" in e for e in refused), refused
