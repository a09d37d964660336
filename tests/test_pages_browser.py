"""Tilecast's own pages in a real browser (Debian's Chromium, driven by Playwright for Python), end to end: a
real app on a committed database behind a live server, its real stream.

- A shared dashboard of every kind of tile draws every tile, its progress reaches complete and its stream is
  closed; hostile data shows as text and runs nothing.
- A password-protected share shows its form, refuses a wrong password and shows the dashboard after the right
  one, on its own and inside a cross-site iframe (where the unlock's cookie is not sent).
- A signed-in viewer lists the key's dashboards and opens one, changes its date range and refreshes it; once
  the key is revoked, its session is refused.
- "What changed?" snapshots the tiles as shown, refreshes them and shows the analysis with the new numbers.

Without `/usr/bin/chromium` these tests are skipped, saying why. Each test saves screenshots in its temporary
directory.
"""

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from playwright.async_api import Frame, Page
from sqlalchemy import text

from tests.conftest import FreshDatabases
from tests.events import ingest
from tests.factories import Actor
from tests.funnels_helpers import funnel_query, step
from tests.resources import new_dashboard
from tests.sharing_helpers import add_password, patch_sharing
from tests.streams import app_on, asgi_client, new_actor, served
from tests.test_refresh_analysis import FIRST, RANGE, SECOND, add_insight, browsers_query
from tests.test_web_browser import (
    CHROMIUM,
    HOSTILE,
    Watch,
    chromium,
    open_page,
    people,
    real_dashboard,
    screenshot,
    tile_named,
)

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason=f"Chromium is not installed at {CHROMIUM} (Debian's `chromium` package; .ci/run installs it)",
)

COMPLETE = '#tilecast-dashboard[data-state="complete"]'


@pytest.fixture(scope="module")
def committed(fresh_databases: FreshDatabases) -> str:
    return fresh_databases.create()


@pytest.fixture
async def world(
    committed: str, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient, Actor]]:
    async with app_on(committed, monkeypatch) as (app, engine), asgi_client(app) as client:
        yield app, client, await new_actor(engine)


async def assert_dashboard_drawn(page: Page | Frame, dashboard: dict[str, Any]) -> None:
    """Every tile drawn from the real stream: the trends' series and points, the number, the table, the text,
    the failed tile's error; progress complete and the stream closed."""
    tiles = dashboard["tiles"]
    root = page.locator("#tilecast-dashboard")
    await page.locator(COMPLETE).wait_for(timeout=30_000)
    assert await page.locator(".tc-progress").text_content() == f"{len(tiles)} of {len(tiles)} tiles"
    assert await page.evaluate("window.tilecastDashboard.source.readyState") == 2  # EventSource.CLOSED
    assert await root.get_attribute("data-stream") == "closed"
    for tile in tiles:
        assert await page.locator(f'[data-tile-id="{tile["id"]}"]').count() == 1, tile["id"]

    line = tile_named(dashboard, "Pageviews by browser")
    chart = page.locator(f'[data-tile-id="{line["id"]}"] svg.tc-chart-line')
    results = line["insight"]["result"]
    assert await chart.locator("path.tc-line").count() == len(results) == 3
    for s, result in enumerate(results):
        points = chart.locator(f'g.tc-series[data-series="{s}"] circle.tc-point')
        assert await points.count() == len(result["data"]) == 7

    bar = tile_named(dashboard, "Revenue per day")
    chart = page.locator(f'[data-tile-id="{bar["id"]}"] svg.tc-chart-bar')
    results = bar["insight"]["result"]
    assert await chart.locator("g.tc-series").count() == len(results) == 2
    for s, result in enumerate(results):
        bars = chart.locator(f'g.tc-series[data-series="{s}"] rect.tc-bar')
        assert await bars.count() == len(result["data"])

    number = tile_named(dashboard, "Purchases")
    current = number["insight"]["result"][0]["aggregated_value"]
    value = page.locator(f'[data-tile-id="{number["id"]}"] .tc-number-value')
    assert await value.text_content() == people(current)

    table = tile_named(dashboard, "Browsers")
    labels = page.locator(f'[data-tile-id="{table["id"]}"] td.tc-label')
    assert sorted(await labels.all_text_contents()) == sorted(r["label"] for r in table["insight"]["result"])
    assert HOSTILE in await labels.all_text_contents()

    text = next(t for t in tiles if t["text"])
    assert await page.locator(f'[data-tile-id="{text["id"]}"] h3').text_content() == "Read me first"

    failing = tile_named(dashboard, "User paths")
    error = await page.locator(f'[data-tile-id="{failing["id"]}"] .tc-error').text_content()
    assert error and "PathsQuery" in error


def assert_nothing_ran(watch: Watch, *, refused_401s: int = 0) -> None:
    assert watch.dialogs == []
    assert watch.page_errors == []
    # Chromium logs each refused password or key (401) as a failed load; nothing else may be logged.
    refused = "the server responded with a status of 401"
    assert [e for e in watch.console_errors if refused not in e] == []
    assert len(watch.console_errors) == refused_401s
    assert watch.blocked == []


async def test_a_shared_dashboard_draws_every_tile_from_its_stream(
    world: tuple[FastAPI, httpx.AsyncClient, Actor], tmp_path: Path
) -> None:
    app, client, actor = world
    dashboard = await real_dashboard(client, actor)
    shared = await patch_sharing(client, actor, dashboard["id"], enabled=True, settings={"legend": True})
    async with served(app) as (base, _), chromium() as browser:
        page, watch = await open_page(browser, base)
        response = await page.goto(f"{base}/shared/{shared['access_token']}")
        assert response is not None and response.status == 200
        csp = await response.header_value("content-security-policy")
        assert csp is not None and "script-src 'self'" in csp and "frame-ancestors *" in csp
        await assert_dashboard_drawn(page, dashboard)
        await page.wait_for_timeout(400)  # the tiles' arrival animation, for a still screenshot
        await page.screenshot(path=screenshot(tmp_path, "shared"), full_page=True)
        assert await page.locator(".tc-title").text_content() == "Shop overview"
        assert HOSTILE in await page.locator(".tc-tag").all_text_contents()
        line = tile_named(dashboard, "Pageviews by browser")
        legend = page.locator(f'[data-tile-id="{line["id"]}"] .tc-legend-label')
        assert HOSTILE in await legend.all_text_contents()
        # The hostile value is text: no image element was made, no handler ran.
        assert await page.locator("img").count() == 0
        assert_nothing_ran(watch)


async def _unlock(page: Page | Frame, password: str) -> None:
    await page.locator('input[name="password"]').fill(password)
    await page.locator('button[type="submit"]').click()


async def test_a_password_protected_share_opens_with_the_right_password(
    world: tuple[FastAPI, httpx.AsyncClient, Actor], tmp_path: Path
) -> None:
    app, client, actor = world
    dashboard = await real_dashboard(client, actor)
    shared = await patch_sharing(client, actor, dashboard["id"], enabled=True, password_required=True)
    password, _ = await add_password(client, actor, dashboard["id"], "correct horse battery")
    token = shared["access_token"]

    @app.get("/_test/host", include_in_schema=False)
    async def host(src: str) -> HTMLResponse:  # a page of another site framing the embed
        return HTMLResponse(
            f'<!doctype html><title>Host</title><h1>Another site</h1><iframe src="{src}" '
            'width="1240" height="1500"></iframe>'
        )

    async with served(app) as (base, _), chromium() as browser:
        page, watch = await open_page(browser, base)
        await page.goto(f"{base}/shared/{token}")
        form = page.locator("form#tilecast-unlock")
        await form.wait_for()
        assert "Shop overview" not in await page.content()
        await _unlock(page, "not the password")
        error = page.locator(".tc-form-error")
        await error.wait_for(state="visible")
        assert await error.text_content() == "Incorrect password"
        await page.screenshot(path=screenshot(tmp_path, "wrong-password"))
        await _unlock(page, password)
        await assert_dashboard_drawn(page, dashboard)
        # The JWT is in the stream's URL, not left in the address bar.
        assert page.url == f"{base}/shared/{token}"
        await page.wait_for_timeout(400)
        await page.screenshot(path=screenshot(tmp_path, "unlocked"), full_page=True)
        # A reload opens directly: the unlock's cookie.
        await page.reload()
        await assert_dashboard_drawn(page, dashboard)
        assert await page.locator("form#tilecast-unlock").count() == 0
        assert_nothing_ran(watch, refused_401s=1)

        # Inside a cross-site iframe (another host: `localhost` frames `127.0.0.1`), no cookie is sent.
        other = base.replace("127.0.0.1", "localhost")
        framed, framed_watch = await open_page(browser, other)
        await framed.route(f"{base}/**", lambda route: route.continue_())
        await framed.goto(f"{other}/_test/host?src={base}/embedded/{token}")
        frame = framed.frame_locator("iframe")
        await frame.locator("form#tilecast-unlock").wait_for(timeout=15_000)
        await frame.locator('input[name="password"]').fill("wrong again")
        await frame.locator('button[type="submit"]').click()
        await frame.locator(".tc-form-error").wait_for(state="visible")
        assert await frame.locator(".tc-form-error").text_content() == "Incorrect password"
        await frame.locator('input[name="password"]').fill(password)
        await frame.locator('button[type="submit"]').click()
        inner = next(f for f in framed.frames if f.url.startswith(f"{base}/embedded/"))
        await assert_dashboard_drawn(inner, dashboard)
        await framed.wait_for_timeout(400)
        await framed.screenshot(path=screenshot(tmp_path, "iframe-unlocked"), full_page=True)
        assert framed_watch.dialogs == [] and framed_watch.page_errors == []


async def test_a_signed_in_viewer_lists_and_opens_dashboards_until_the_key_is_revoked(
    world: tuple[FastAPI, httpx.AsyncClient, Actor], tmp_path: Path
) -> None:
    app, client, actor = world
    dashboard = await real_dashboard(client, actor)
    other = await client.post(
        actor.url("dashboards/"), json={"name": "Pinned notes", "pinned": True}, headers=actor.headers
    )
    assert other.status_code == 201
    async with served(app) as (base, _), chromium() as browser:
        page, watch = await open_page(browser, base)
        await page.goto(f"{base}/")
        await page.locator('input[name="personal_api_key"]').fill("phx_not_a_key")
        await page.locator('button[type="submit"]').click()
        assert await page.locator(".tc-form-error").text_content() == "That personal API key is not valid."
        await page.locator('input[name="personal_api_key"]').fill(actor.key)
        await page.locator('button[type="submit"]').click()
        listed = page.locator(".tc-dashboards a")
        await listed.first.wait_for()
        assert await listed.all_text_contents() == ["Pinned notes", "Shop overview"]
        await page.screenshot(path=screenshot(tmp_path, "dashboards"), full_page=True)
        # The session's cookie is not readable by scripts.
        assert await page.evaluate("document.cookie") == ""

        await page.locator(".tc-dashboards a", has_text="Shop overview").click()
        await page.wait_for_url(f"{base}/project/{actor.team.id}/dashboard/{dashboard['id']}")
        await assert_dashboard_drawn(page, dashboard)
        await page.wait_for_timeout(400)
        await page.screenshot(path=screenshot(tmp_path, "viewer"), full_page=True)

        # The date range: the stream again, with `filters_override`; the refresh: with `force_blocking`.
        streams: list[str] = []
        page.on("request", lambda r: streams.append(r.url) if "/stream_tiles/" in r.url else None)
        await page.locator("select.tc-range").select_option("-14d")
        await page.locator(COMPLETE).wait_for(timeout=30_000)
        line = tile_named(dashboard, "Pageviews by browser")
        points = page.locator(f'[data-tile-id="{line["id"]}"] g.tc-series[data-series="0"] circle.tc-point')
        assert await points.count() == 15  # 14 days back and today
        await page.locator("button.tc-refresh").click()
        await page.locator(COMPLETE).wait_for(timeout=30_000)
        assert await page.locator(".tc-progress").text_content() == "6 of 6 tiles"
        assert len(streams) == 2
        assert "filters_override=%7B%22date_from%22%3A%22-14d%22%7D" in streams[0]
        assert "refresh=force_blocking" in streams[1] and "filters_override" in streams[1]
        await page.wait_for_timeout(400)
        await page.screenshot(path=screenshot(tmp_path, "viewer-14d"), full_page=True)
        assert_nothing_ran(watch, refused_401s=1)

        # The key is revoked: its session is refused, on the API and on the pages.
        async with app.state.sessionmaker() as session:  # revoking a key deletes its row
            await session.execute(
                text("DELETE FROM personal_api_key WHERE user_id = :u"), {"u": actor.user.id}
            )
            await session.commit()
        api = await page.request.get(f"{base}/api/environments/{actor.team.id}/dashboards/")
        assert api.status == 401
        await page.reload()
        await page.wait_for_url(f"{base}/")
        await page.locator('input[name="personal_api_key"]').wait_for()
        await page.screenshot(path=screenshot(tmp_path, "revoked"))


async def test_what_changed_refreshes_and_shows_the_changes(
    world: tuple[FastAPI, httpx.AsyncClient, Actor], tmp_path: Path
) -> None:
    """The signed-in viewer's "What changed?": a snapshot of the tiles as shown, a forced refresh, and the
    analysis in a panel, with the numbers of the events sent in between."""
    app, client, actor = world
    board = await new_dashboard(client, actor, name="Shop")
    await add_insight(client, actor, board, "Pageviews by browser", browsers_query())
    await add_insight(
        client, actor, board, "Signup funnel", funnel_query(step("signup"), step("purchase"), dateRange=RANGE)
    )
    await ingest(client, actor, FIRST)
    async with served(app) as (base, _), chromium() as browser:
        page, watch = await open_page(browser, base)
        await page.goto(f"{base}/")
        await page.locator('input[name="personal_api_key"]').fill(actor.key)
        await page.locator('button[type="submit"]').click()
        await page.locator(".tc-dashboards a").first.wait_for()
        await page.goto(f"{base}/project/{actor.team.id}/dashboard/{board}")
        await page.locator(COMPLETE).wait_for(timeout=30_000)
        # Not while another range is shown: it compares the dashboard's own.
        button = page.locator("button.tc-what-changed")
        await page.locator("select.tc-range").select_option("-14d")
        assert await button.is_disabled()
        await page.locator("select.tc-range").select_option("")
        await page.locator(COMPLETE).wait_for(timeout=30_000)
        assert await button.is_enabled()

        await ingest(client, actor, SECOND)
        posts: list[str] = []
        page.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)
        await button.click()
        panel = page.locator('.tc-changes[data-state="done"]')
        await panel.wait_for(timeout=30_000)
        assert await panel.locator(".tc-changes-summary li").all_text_contents() == [
            "Pageviews by browser · Firefox: new, 1",
            "Signup funnel · Overall conversion: 25% → 50% (+25 pp, +100.0%)",
            "Pageviews by browser · Safari: 1 → 2 (+1, +100.0%)",
            "Pageviews by browser · Chrome: 3 → 4 (+1, +33.3%)",
        ]
        rows = [
            await row.locator("td").all_text_contents()
            for row in await panel.locator(".tc-changes-table tbody tr").all()
        ]
        assert rows == [
            ["Pageviews by browser", "Chrome", "3", "4", "+1", "+33.3%"],
            ["Pageviews by browser", "Safari", "1", "2", "+1", "+100%"],
            ["Pageviews by browser", "Firefox", "\u2013", "1", "new", ""],
            ["Signup funnel", "Overall conversion", "25", "50", "+25", "+100%"],
        ]
        assert [p.rsplit("/", 2)[-2] for p in posts] == ["snapshot", "analyze_refresh_result"]
        # The tiles were drawn again from the refreshed stream.
        line = page.locator(".tc-tile", has_text="Pageviews by browser")
        assert await line.locator("path.tc-line").count() == 3
        await page.wait_for_timeout(300)
        await page.screenshot(path=screenshot(tmp_path, "what-changed"), full_page=True)
        await page.screenshot(path="/tmp/wt15c-what-changed.png", full_page=True)
        assert_nothing_ran(watch)
        await page.locator(".tc-changes-close").click()
        assert await page.locator(".tc-changes").is_hidden()
