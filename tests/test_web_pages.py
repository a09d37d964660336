"""The page module without a browser: the page helper's HTML and policy, the assets, `/docs` and `/redoc`
(no CDN, no inline script), and the OpenAPI document's 400 in place of FastAPI's 422."""

import json
import re
from html.parser import HTMLParser
from typing import Any

import httpx
import pytest

from app.web.docs import ERROR_SCHEMA_NAME
from app.web.pages import PageMeta, PageOptions, asset_url, render_dashboard_page
from app.web.security import dashboard_csp

HOSTILE = '"><script>alert(1)</script><img src=x onerror=alert(1)>'


class _Scan(HTMLParser):
    """Every tag with its attributes, and the text inside `<script>` elements."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.inline_scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline_scripts.append(data)


def scan(document: str) -> _Scan:
    parser = _Scan()
    parser.feed(document)
    return parser


def assert_no_inline_code(document: str) -> _Scan:
    page = scan(document)
    assert page.inline_scripts == []
    for tag, attrs in page.tags:
        assert "style" not in attrs, tag
        assert not any(name.startswith("on") for name in attrs), (tag, attrs)
        assert tag != "style"
        if tag == "script":
            assert attrs.get("src", "").startswith("/static/"), attrs
        for name in ("src", "href"):
            value = attrs.get(name) or ""
            assert not re.match(r"^(https?:)?//", value), (tag, value)  # nothing from another host
    return page


def test_the_page_carries_its_stream_and_options_escaped() -> None:
    response = render_dashboard_page(
        f"/api/shared/x/stream?t={HOSTILE}",
        options=PageOptions(
            no_header=True, legend=False, colors=["#ff0000", "red;x", HOSTILE], expected_tiles=3
        ),
        meta=PageMeta(title=HOSTILE, open_graph={"og:title": HOSTILE, "bad property": "x"}),
    )
    document = bytes(response.body).decode()
    page = assert_no_inline_code(document)
    assert "<script>alert" not in document and "<img" not in document
    root = next(attrs for tag, attrs in page.tags if tag == "main")
    assert root["data-stream-url"] == f"/api/shared/x/stream?t={HOSTILE}"
    assert json.loads(root["data-options"] or "") == {
        "noHeader": True,
        "legend": False,
        "whitelabel": False,
        "detailed": False,
        "colors": ["#ff0000"],
        "expectedTiles": 3,
        "controls": False,
    }
    metas = [attrs for tag, attrs in page.tags if tag == "meta" and "property" in attrs]
    assert metas == [{"property": "og:title", "content": HOSTILE}]
    scripts = [attrs for tag, attrs in page.tags if tag == "script"]
    assert scripts == [{"type": "module", "src": asset_url("dashboard.js")}]


def test_the_page_policy_denies_framing_unless_asked() -> None:
    headers = render_dashboard_page("/s").headers
    assert headers["content-security-policy"] == dashboard_csp()
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert "script-src 'self'" in headers["content-security-policy"]
    assert "unsafe" not in headers["content-security-policy"]
    assert headers["x-frame-options"] == "DENY"
    assert headers["x-content-type-options"] == "nosniff"

    framed = render_dashboard_page("/s", frame_ancestors=("*",)).headers
    assert framed["content-security-policy"].endswith("frame-ancestors *")
    assert "x-frame-options" not in framed
    with pytest.raises(ValueError):
        dashboard_csp(("https://a.example; script-src *",))
    with pytest.raises(ValueError):
        dashboard_csp(())


@pytest.mark.parametrize(
    ("path", "media_type"),
    [
        ("/static/web/dashboard.js", "text/javascript"),
        ("/static/web/dashboard.css", "text/css"),
        ("/static/docs/swagger-ui-bundle.js", "text/javascript"),
        ("/static/docs/swagger-ui.css", "text/css"),
        ("/static/docs/redoc.standalone.js", "text/javascript"),
        ("/static/docs/swagger-init.js", "text/javascript"),
        ("/static/docs/redoc-init.js", "text/javascript"),
        ("/static/docs/favicon.png", "image/png"),
    ],
)
async def test_assets_are_served_from_the_package(
    client: httpx.AsyncClient, path: str, media_type: str
) -> None:
    response = await client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith(media_type)
    assert response.headers["x-content-type-options"] == "nosniff"
    assert len(response.content) > 100


@pytest.mark.parametrize(
    "path", ["/static/web/nope.js", "/static/web/..%2Fpages.py", "/static/docs/core.py", "/static/web/"]
)
async def test_other_static_paths_are_404(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path)
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


async def test_the_module_writes_no_markup() -> None:
    from importlib.resources import files

    for name in ("dashboard.js", "unlock.js"):
        source = files("app.web").joinpath("static", name).read_text("utf-8")
        sinks = ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function")
        for sink in sinks:
            assert sink not in source, (name, sink)
    assert "import " not in source.split("\n", 20)[-1]  # no dependencies


@pytest.mark.parametrize(
    ("path", "bundle"), [("/docs", "swagger-ui-bundle.js"), ("/redoc", "redoc.standalone.js")]
)
async def test_docs_pages_load_only_local_files_under_their_own_policy(
    client: httpx.AsyncClient, path: str, bundle: str
) -> None:
    response = await client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    page = assert_no_inline_code(response.text)
    scripts = [attrs["src"] for tag, attrs in page.tags if tag == "script"]
    assert f"/static/docs/{bundle}" in scripts
    csp = response.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "script-src 'self';" in csp
    assert "frame-ancestors 'none'" in csp
    assert "/openapi.json" in response.text


async def test_openapi_lists_posthogs_400_never_422(client: httpx.AsyncClient) -> None:
    schema: dict[str, Any] = (await client.get("/openapi.json")).json()
    assert '"422"' not in json.dumps(schema)
    assert "HTTPValidationError" not in schema["components"]["schemas"]
    assert set(schema["components"]["schemas"][ERROR_SCHEMA_NAME]["properties"]) == {
        "type",
        "code",
        "detail",
        "attr",
    }
    dashboards = schema["paths"]["/api/environments/{project_id}/dashboards/"]
    for method in ("get", "post"):
        response = dashboards[method]["responses"]["400"]
        assert response["content"]["application/json"]["schema"] == {
            "$ref": f"#/components/schemas/{ERROR_SCHEMA_NAME}"
        }
    # Capture keeps its own plain-text 400.
    assert "text/plain" in schema["paths"]["/batch/"]["post"]["responses"]["400"]["content"]
