"""What a share's public links serve: `/shared/{token}` and `/embedded/{token}` (a page, which may be framed),
their `.json` (the exported data), and `POST` to either (a password, for a password-protected share).

Only sharing credentials count here: the share's token in the path and, for a password-protected share, a JWT
as the `posthog_sharing_token` cookie, as `Authorization: Bearer`, or as `sharing_access_token`. A locked
share names nothing: its `.json` is `{"type": "unlock"}` and its page carries no name or description.
"""

import json
from datetime import datetime, timedelta
from email.utils import format_datetime
from typing import Annotated, Any
from urllib.parse import parse_qs, urlencode

import orjson
from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse

from app.auth.grants import (
    COOKIE_NAME,
    JWT_LIFETIME,
    QUERY_PARAMETER,
    OpenedShare,
    SharingGrant,
    looks_like_jwt,
    read_jwt,
)
from app.clock import NowDep
from app.config import get_settings
from app.dashboards.repository import PageFacts, page_facts
from app.dashboards.responses import dashboard_response
from app.dashboards.views import ViewsDep
from app.db import SessionDep
from app.errors import NotFound
from app.query.pool import RenderPool
from app.query.render import parse_refresh
from app.rendering import Format
from app.sharing import service
from app.sharing.service import Exported, Links, flags_of
from app.web.pages import PageMeta, PageOptions, html_page, render_dashboard_page, render_shell, unlock_form
from app.web.security import ANY_FRAMING

router = APIRouter(include_in_schema=False)

INCORRECT_PASSWORD = "Incorrect password"
# A share's page and data are private to whoever holds the link: never cached on the way, and the token in
# the address is not sent on to other sites.
PRIVATE_HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
MAX_PASSWORD_CHARS = 1024
RefreshParam = Annotated[
    str | None, Query(description="As on a dashboard's retrieve, remapped as in shared context.")
]


def _links(request: Request) -> Links:
    return Links(secret=request.app.state.sharing_secret, sessionmaker=request.app.state.sessionmaker)


def _jwts(request: Request) -> list[str]:
    """The JWTs a request presents: the cookie, `Authorization: Bearer`, `sharing_access_token`."""
    found = []
    if cookie := request.cookies.get(COOKIE_NAME):
        found.append(cookie)
    header = request.headers.get("authorization", "")
    if header[:7].lower() == "bearer ":
        found.append(header[7:].strip())
    if value := request.query_params.get(QUERY_PARAMETER):
        found.append(value)
    return found


async def _open(request: Request, session: SessionDep, token: str, now: NowDep) -> OpenedShare:
    return await service.open_link(session, _links(request), token, _jwts(request), now)


def _exported_json(data: Exported) -> Response:
    body = {
        "type": data.kind,
        "accessToken": data.access_token,
        # The dashboard's own JSON, as its retrieve encodes it (cached results passed through as stored).
        "dashboard": orjson.Fragment(dashboard_response(Format.json, data.dashboard).body),
        "themes": [theme.model_dump(mode="json") for theme in data.themes],
        **data.flags,
        "rootClassName": f"export-type-{data.kind}",
    }
    return Response(orjson.dumps(body), media_type="application/json", headers=PRIVATE_HEADERS)


# Share and embed pages may be framed by any site, as PostHog's (`frame-ancestors *`, no X-Frame-Options);
# otherwise they carry the strict policy of every page (`app.web.security`): no inline script or style.
def _stream_url(grant: SharingGrant, stream_with: str) -> str:
    query = urlencode({QUERY_PARAMETER: stream_with})
    return f"/api/environments/{grant.team_id}/dashboards/{grant.dashboard_id}/stream_tiles/?{query}"


def _dashboard_page(grant: SharingGrant, facts: PageFacts, stream_with: str) -> HTMLResponse:
    flags = flags_of(grant.settings)
    name = facts.name or "Untitled dashboard"
    open_graph = {"og:type": "website", "og:title": name}
    if facts.description:
        open_graph["og:description"] = facts.description
    colors = [c for c in facts.colors or () if isinstance(c, str)] or None
    options = PageOptions(
        no_header=flags.get("noHeader", False),
        legend=flags.get("legend", False),
        whitelabel=flags.get("whitelabel", False),
        detailed=flags.get("detailed", False),
        colors=colors,
        expected_tiles=facts.tiles,
    )
    title = name if options.whitelabel else f"{name} · Tilecast"
    return render_dashboard_page(
        _stream_url(grant, stream_with),
        options=options,
        meta=PageMeta(title=title, open_graph=open_graph),
        frame_ancestors=ANY_FRAMING,
    )


def _unlock_page(path: str) -> HTMLResponse:
    return html_page(
        render_shell("Password protected · Tilecast", unlock_form(path), script="unlock.js"),
        frame_ancestors=ANY_FRAMING,
    )


def _not_found_page() -> HTMLResponse:
    body = '<main class="tc-page tc-narrow">\n<h1>This link does not exist or has expired</h1>\n</main>'
    return html_page(render_shell("Not found · Tilecast", body), frame_ancestors=ANY_FRAMING, status_code=404)


async def _grant_jwt(request: Request, grant: SharingGrant, now: datetime) -> str:
    """What the page's stream presents: the share's token, or for a password-protected share the JWT (of
    those the request carries) that opened it."""
    if grant.password_id is None:
        return grant.access_token
    secret = await _links(request).secret.get(request.app.state.sessionmaker)
    for value in _jwts(request):
        if looks_like_jwt(value) and read_jwt(secret, value, now) == (grant.access_token, grant.password_id):
            return value
    raise NotFound()  # not reached: the share was opened by one of them


async def _json(
    kind: str,
    token: str,
    request: Request,
    session: SessionDep,
    views: ViewsDep,
    now: NowDep,
    refresh: str | None,
) -> Response:
    opened = await _open(request, session, token, now)
    if opened.grant is None:
        return JSONResponse({"type": "unlock"}, headers=PRIVATE_HEADERS)
    pool: RenderPool = request.app.state.renders
    data = await service.exported(session, opened, kind, views, pool, parse_refresh(refresh), "sm")
    return _exported_json(data)


async def _html(
    kind: str,
    token: str,
    request: Request,
    session: SessionDep,
    views: ViewsDep,
    now: NowDep,
    refresh: str | None,
) -> Response:
    try:
        opened = await _open(request, session, token, now)
    except NotFound:
        return _not_found_page()
    wants_json = "application/json" in request.headers.get(
        "accept", ""
    ) and "text/html" not in request.headers.get("accept", "")
    if opened.grant is None:
        if wants_json:
            return JSONResponse({"type": "unlock"}, headers=PRIVATE_HEADERS)
        return _unlock_page(request.url.path)
    if wants_json:
        pool: RenderPool = request.app.state.renders
        data = await service.exported(session, opened, kind, views, pool, parse_refresh(refresh), "sm")
        return _exported_json(data)
    # The page draws itself from the share's stream: here only what it needs first.
    grant = opened.grant
    facts = await page_facts(session, grant.team_id, grant.dashboard_id)
    if facts is None:
        return _not_found_page()
    return _dashboard_page(grant, facts, await _grant_jwt(request, grant, now))


async def _password_of(request: Request) -> str:
    """`password` from a JSON or form body; "" when there is none (an incorrect password)."""
    raw = await request.body()
    content_type = request.headers.get("content-type", "")
    value: Any = None
    if "application/x-www-form-urlencoded" in content_type:
        values = parse_qs(raw.decode("utf-8", "replace")).get("password")
        value = values[0] if values else None
    else:
        try:
            parsed = json.loads(raw or b"null")
        except (ValueError, RecursionError):
            parsed = None
        value = parsed.get("password") if isinstance(parsed, dict) else None
    if not isinstance(value, str) or len(value) > MAX_PASSWORD_CHARS or "\x00" in value:
        return ""
    try:
        value.encode()
    except UnicodeEncodeError:  # a lone surrogate: no password can be one
        return ""
    return value


def _cookie(jwt: str, path: str, secure: bool, now: Any) -> str:
    expires = format_datetime(now + JWT_LIFETIME, usegmt=True)
    seconds = int(JWT_LIFETIME / timedelta(seconds=1))
    cookie = f"{COOKIE_NAME}={jwt}; Max-Age={seconds}; Expires={expires}; Path={path}; HttpOnly; SameSite=Lax"
    return cookie + "; Secure" if secure else cookie


async def _unlock(prefix: str, token: str, request: Request, session: SessionDep, now: NowDep) -> Response:
    settings = get_settings()
    client = request.client.host if request.client else "unknown"
    password = await _password_of(request)
    checks = request.app.state.password_checks
    outcome = await service.unlock(session, _links(request), checks, settings, token, password, client, now)
    if outcome.jwt is None:
        return JSONResponse({"error": INCORRECT_PASSWORD}, status_code=401, headers=PRIVATE_HEADERS)
    response = JSONResponse({"shareToken": outcome.jwt}, headers=PRIVATE_HEADERS)
    public = settings.public_url or ""
    secure = request.url.scheme == "https" or public.startswith("https://")
    response.headers.append("set-cookie", _cookie(outcome.jwt, f"/{prefix}/{token}", secure, now))
    return response


# `.json` first: `/shared/{token}` would take `abc.json` as a token.
@router.get("/shared/{token}.json", name="shared_json")
async def shared_json(
    token: str,
    request: Request,
    session: SessionDep,
    views: ViewsDep,
    now: NowDep,
    refresh: RefreshParam = None,
) -> Response:
    """A shared dashboard's exported data."""
    return await _json("scene", token, request, session, views, now, refresh)


@router.get("/embedded/{token}.json", name="embedded_json")
async def embedded_json(
    token: str,
    request: Request,
    session: SessionDep,
    views: ViewsDep,
    now: NowDep,
    refresh: RefreshParam = None,
) -> Response:
    """An embedded dashboard's exported data."""
    return await _json("embed", token, request, session, views, now, refresh)


@router.get("/shared/{token}", name="shared_page")
async def shared_page(
    token: str,
    request: Request,
    session: SessionDep,
    views: ViewsDep,
    now: NowDep,
    refresh: RefreshParam = None,
) -> Response:
    """A shared dashboard's page (or its unlock page)."""
    return await _html("scene", token, request, session, views, now, refresh)


@router.get("/embedded/{token}", name="embedded_page")
async def embedded_page(
    token: str,
    request: Request,
    session: SessionDep,
    views: ViewsDep,
    now: NowDep,
    refresh: RefreshParam = None,
) -> Response:
    """An embedded dashboard's page, for iframes (or its unlock page)."""
    return await _html("embed", token, request, session, views, now, refresh)


@router.post("/shared/{token}", name="shared_unlock")
async def shared_unlock(token: str, request: Request, session: SessionDep, now: NowDep) -> Response:
    """Unlock a password-protected share: a JWT, also set as a cookie for this page."""
    return await _unlock("shared", token, request, session, now)


@router.post("/embedded/{token}", name="embedded_unlock")
async def embedded_unlock(token: str, request: Request, session: SessionDep, now: NowDep) -> Response:
    """Unlock a password-protected embed: a JWT, also set as a cookie for this page."""
    return await _unlock("embedded", token, request, session, now)
