"""A real browser streams a dashboard: Debian's Chromium, driven by Playwright for Python, loads a small page
from another origin that opens an `EventSource` on a live `tilecast serve` (the key as `personal_api_key`,
the page's origin allowed by `TILECAST_CORS_ALLOWED_ORIGINS`), receives the metadata, every tile and
`complete`, then closes it. A screenshot of the page is saved in the test's temporary directory.

Playwright drives the system's Chromium (`executable_path`); no browser is ever downloaded. Without
`/usr/bin/chromium` the test is skipped, saying why.
"""

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from playwright.sync_api import sync_playwright

from tests.conftest import FreshDatabases
from tests.live import env_without_database, free_port, run_cli, serve
from tests.resources import trends

CHROMIUM = Path("/usr/bin/chromium")

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason=f"Chromium is not installed at {CHROMIUM} (Debian's `chromium` package; .ci/run installs it)",
)

PAGE = """<!doctype html>
<html>
<head>
<meta charset="utf-8">
<title>Tilecast stream</title>
<style>
  body { font: 14px system-ui, sans-serif; margin: 24px; color: #1d1f27; }
  h1 { font-size: 20px; margin: 0 0 4px; }
  #status { color: #5f6470; margin: 0 0 16px; }
  #tiles { display: grid; grid-template-columns: repeat(3, 1fr); gap: 12px; padding: 0; }
  .tile { list-style: none; border: 1px solid #d0d3da; border-radius: 6px; padding: 12px; }
  .tile b { display: block; margin-bottom: 6px; }
  .value { font-size: 22px; }
</style>
</head>
<body>
<h1 id="title">Connecting…</h1>
<p id="status">waiting for the metadata</p>
<ol id="tiles"></ol>
<script>
const stream = new URLSearchParams(location.search).get("stream");
window.received = [];
window.errors = 0;
window.done = false;
const tiles = document.getElementById("tiles");
const status = (text) => { document.getElementById("status").textContent = text; };

function show(tile) {
  const item = document.createElement("li");
  item.className = "tile";
  item.dataset.id = tile.id;
  item.style.order = tile.order;
  const title = document.createElement("b");
  const value = document.createElement("span");
  value.className = "value";
  if (tile.text) {
    title.textContent = "Text";
    value.textContent = tile.text.body;
  } else {
    title.textContent = tile.insight.name;
    const series = (tile.insight.result || [])[0];
    value.textContent = series ? series.count : "no result";
  }
  item.append(title, value);
  tiles.append(item);
}

const source = new EventSource(stream);
window.source = source;
source.onmessage = (event) => {
  const message = JSON.parse(event.data);
  window.received.push({ message, lastEventId: event.lastEventId });
  if (message.type === "metadata") {
    document.getElementById("title").textContent = message.dashboard.name;
    message.dashboard.tiles.forEach(show);
    status("metadata received");
  } else if (message.type === "tile") {
    show(message.tile);
    status(`${tiles.children.length} tiles`);
  } else if (message.type === "complete") {
    source.close();
    status(`complete: ${tiles.children.length} tiles, ${window.received.length} messages`);
    window.done = true;
  }
};
source.onerror = () => { window.errors += 1; status(`error (readyState ${source.readyState})`); };
</script>
</body>
</html>
"""


@pytest.fixture
def page_server() -> Iterator[str]:
    """The test page, served by a plain HTTP server on another port (another origin than the API)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = PAGE.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_browser_receives_the_metadata_every_tile_and_complete(
    fresh_databases: FreshDatabases, tmp_path: Path, page_server: str
) -> None:
    env = env_without_database(
        DATABASE_URL=fresh_databases.create(migrated=False),
        TILECAST_LOG_LEVEL="INFO",
        TILECAST_CORS_ALLOWED_ORIGINS=page_server,
    )
    created = run_cli(["create-key", "--email", "browser@example.com", "--json"], env)
    assert created.returncode == 0, created.stderr
    account = json.loads(created.stdout)
    headers = {"Authorization": f"Bearer {account['key']}"}
    with serve(env, tmp_path) as (base, log):
        api = f"{base}/api/environments/{account['team_id']}"
        now = datetime.now(UTC)
        batch = [
            {"event": name, "distinct_id": f"u{i}", "timestamp": (now - timedelta(hours=i)).isoformat()}
            for i, name in enumerate(["$pageview"] * 5 + ["signup"] * 2)
        ]
        captured = httpx.post(f"{base}/batch/", json={"api_key": account["project_api_key"], "batch": batch})
        assert captured.status_code == 200, captured.text
        board = httpx.post(f"{api}/dashboards/", json={"name": "Browser board"}, headers=headers).json()["id"]
        for name, event in [("Pageviews", "$pageview"), ("Signups", "signup"), ("Purchases", "purchase")]:
            body = {"name": name, "query": trends(event), "dashboards": [board]}
            assert httpx.post(f"{api}/insights/", json=body, headers=headers).status_code == 201
        patched = httpx.patch(
            f"{api}/dashboards/{board}/", json={"tiles": [{"text": {"body": "Hello"}}]}, headers=headers
        )
        tile_ids = sorted(t["id"] for t in patched.json()["tiles"])
        assert len(tile_ids) == 4

        stream = f"{api}/dashboards/{board}/stream_tiles/?" + urlencode({"personal_api_key": account["key"]})
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM))
            try:
                page = browser.new_page(viewport={"width": 900, "height": 420})
                page.goto(f"{page_server}/?" + urlencode({"stream": stream}))
                page.wait_for_function("window.done === true", timeout=30_000)
                received = page.evaluate("window.received")
                closed = page.evaluate("window.source.readyState")
                errors = page.evaluate("window.errors")
                shown = page.eval_on_selector_all(".tile", "items => items.map(i => Number(i.dataset.id))")
                status = page.inner_text("#status")
                screenshot = tmp_path / "stream_tiles.png"
                page.screenshot(path=str(screenshot), full_page=True)
            finally:
                browser.close()

        messages = [r["message"] for r in received]
        assert messages[0]["type"] == "metadata" and messages[0]["dashboard"]["name"] == "Browser board"
        assert messages[-1] == {"type": "complete"}
        assert {m["type"] for m in messages[1:-1]} <= {"tile"}
        delivered = [t["id"] for t in messages[0]["dashboard"]["tiles"]]
        delivered += [m["tile"]["id"] for m in messages[1:-1]]
        assert sorted(delivered) == tile_ids == sorted(shown)
        values = {m["tile"]["insight"]["name"]: m["tile"] for m in messages[1:-1] if m["tile"]["insight"]}
        assert values["Pageviews"]["insight"]["result"][0]["count"] == 5
        assert all(r["lastEventId"].startswith("1.") for r in received)
        assert closed == 2 and errors == 0  # EventSource.CLOSED: the page closed it on `complete`
        assert status == f"complete: 4 tiles, {len(messages)} messages"
        assert screenshot.stat().st_size > 5_000

    logged = log.read_text()
    assert f"/dashboards/{board}/stream_tiles/ 200" in logged
    assert account["key"] not in logged and "personal_api_key" not in logged
