"""Rendering the live dashboard page: the one helper every page route (share, embed, signed-in viewer) calls.

The page is static HTML with no inline script or style: what the module needs (the stream's URL, the display
options) travels in `data-*` attributes of its root element, HTML-escaped here. The module
(`static/dashboard.js`) opens the `EventSource` and draws the dashboard as messages arrive.
"""

import hashlib
import html
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib.resources import files
from string import Template

from fastapi.responses import HTMLResponse

from app.web.security import DENY_FRAMING, dashboard_csp, page_headers

STATIC_PREFIX = "/static/web"
# The files this package serves under STATIC_PREFIX, with their media types.
ASSETS: dict[str, str] = {
    "dashboard.js": "text/javascript; charset=utf-8",
    "dashboard.css": "text/css; charset=utf-8",
    "unlock.js": "text/javascript; charset=utf-8",
}
_COLOR = re.compile(r"^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6}|[0-9a-fA-F]{8})$")
_OG_PROPERTY = re.compile(r"^(?:og|twitter):[a-z_:]{1,40}$")


@cache
def asset_bytes(name: str) -> bytes:
    return files("app.web").joinpath("static", name).read_bytes()


@cache
def asset_url(name: str) -> str:
    """The asset's URL, versioned by its content (so it may be cached for long)."""
    digest = hashlib.sha256(asset_bytes(name)).hexdigest()[:12]
    return f"{STATIC_PREFIX}/{name}?v={digest}"


@cache
def _template(name: str) -> Template:
    return Template(files("app.web").joinpath("templates", name).read_text("utf-8"))


@dataclass(frozen=True)
class PageOptions:
    """How the page draws the dashboard: a share's settings, or a signed-in viewer's defaults.

    - `no_header`: no name, description or tags (a share's `noHeader`).
    - `legend`: legends under trend charts (a share's `legend`; on by default for viewers).
    - `whitelabel`: no "Tilecast" mark in the footer (a share's `whitelabel`).
    - `detailed`: each trend chart is followed by a table of its series' values (a share's `detailed`).
    - `colors`: the dashboard's data color theme, one `#RRGGBB` per series in turn; `None`: the default
      palette.
    - `expected_tiles`: how many tiles the stream will send, for the progress ("7 of 12 tiles"); `None`: the
      count is shown without a total until `complete`.
    - `controls`: a signed-in viewer's toolbar: a refresh button (`refresh=force_blocking`) and a date range
      (`filters_override`), each restarting the stream.
    """

    no_header: bool = False
    legend: bool = True
    whitelabel: bool = False
    detailed: bool = False
    colors: Sequence[str] | None = None
    expected_tiles: int | None = None
    controls: bool = False

    def as_json(self) -> str:
        colors = [c for c in (self.colors or ()) if isinstance(c, str) and _COLOR.match(c)]
        return json.dumps(
            {
                "noHeader": self.no_header,
                "legend": self.legend,
                "whitelabel": self.whitelabel,
                "detailed": self.detailed,
                "colors": colors or None,
                "expectedTiles": self.expected_tiles,
                "controls": self.controls,
            },
            separators=(",", ":"),
        )


@dataclass(frozen=True)
class PageMeta:
    """The document's title and OpenGraph tags (`{"og:title": ..., "og:description": ...}`); the share
    route decides what a locked dashboard may reveal (nothing), this only escapes."""

    title: str = "Tilecast"
    open_graph: Mapping[str, str] = field(default_factory=dict)


def _attr(value: str) -> str:
    return html.escape(value, quote=True)


def render_dashboard_html(
    stream_url: str, *, options: PageOptions | None = None, meta: PageMeta | None = None
) -> str:
    options = options or PageOptions()
    meta = meta or PageMeta()
    og = "".join(
        f'\n<meta property="{_attr(prop)}" content="{_attr(content)}">'
        for prop, content in meta.open_graph.items()
        if _OG_PROPERTY.match(prop)
    )
    return _template("dashboard.html").substitute(
        title=_attr(meta.title),
        open_graph=og,
        css_url=_attr(asset_url("dashboard.css")),
        js_url=_attr(asset_url("dashboard.js")),
        stream_url=_attr(stream_url),
        options=_attr(options.as_json()),
    )


def render_dashboard_page(
    stream_url: str,
    *,
    options: PageOptions | None = None,
    meta: PageMeta | None = None,
    frame_ancestors: Sequence[str] = DENY_FRAMING,
    status_code: int = 200,
) -> HTMLResponse:
    """The live dashboard page over `stream_url` (a same-origin `stream_tiles` URL, with its query: the
    share's `sharing_access_token`, `layout_size`, `filters_override`, ...), under the strict policy.
    `frame_ancestors` are CSP source expressions (`("'none'",)` by default; a share or embed page passes
    `("*",)` or its allowed origins)."""
    return HTMLResponse(
        render_dashboard_html(stream_url, options=options, meta=meta),
        status_code=status_code,
        headers=page_headers(dashboard_csp(frame_ancestors), framed=tuple(frame_ancestors) != DENY_FRAMING),
    )


def html_page(
    body: str, *, frame_ancestors: Sequence[str] = DENY_FRAMING, status_code: int = 200
) -> HTMLResponse:
    """Any other page of the same family (sign-in, unlock form), under the same policy: `body` is a whole
    document the caller built and escaped, with no inline script or style."""
    return HTMLResponse(
        body,
        status_code=status_code,
        headers=page_headers(dashboard_csp(frame_ancestors), framed=tuple(frame_ancestors) != DENY_FRAMING),
    )


def render_shell(title: str, body: str, *, script: str | None = None) -> str:
    """A page of the same family as the dashboard's (its stylesheet, optionally one of its module files):
    `body` is markup the caller built and escaped, with no inline script or style."""
    tag = f'\n<script type="module" src="{_attr(asset_url(script))}"></script>' if script else ""
    return _template("page.html").substitute(
        title=_attr(title), css_url=_attr(asset_url("dashboard.css")), script=tag, body=body
    )


def unlock_form(action: str) -> str:
    """The unlock form of a password-protected share posting to `action` (its page's path); `unlock.js`
    posts the password, then opens the page with the JWT it gets as `sharing_access_token`."""
    return (
        '<main class="tc-page tc-narrow">\n'
        f'<form id="tilecast-unlock" class="tc-card tc-form" method="post" action="{_attr(action)}">\n'
        "<h1>This dashboard is password protected</h1>\n"
        "<p>Enter the password you were given to see it.</p>\n"
        '<label for="tc-password">Password</label>\n'
        '<input id="tc-password" name="password" type="password" autocomplete="current-password" '
        "required autofocus>\n"
        '<p class="tc-form-error" role="alert" hidden></p>\n'
        '<button type="submit">Unlock</button>\n'
        "</form>\n</main>"
    )
