"""Signed-in viewers: `GET /` (the sign-in page, or the key's teams and their dashboards), `POST /sign-in`
and `POST /sign-out`, and `/project/{team_id}/dashboard/{id}` (PostHog's URL shape), the live page of one
dashboard with a refresh button and a date range.

Signing in takes a personal API key once and makes a server-side session (`app.auth.sessions`): the cookie
holds an opaque random id, HttpOnly, SameSite=Lax, Secure over https, for 12 hours. The session reads as its
key (its scopes and teams) on GET and HEAD only. Both forms are posted only from this site: SameSite=Lax keeps
the cookie off other sites' posts, and a post whose `Sec-Fetch-Site` (or `Origin`) names another site is
refused.
"""

import html
import logging
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import parse_qs

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.security import SecurityScopes
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import repository as auth_repository
from app.auth import sessions
from app.auth.dependencies import get_team_access
from app.auth.keys import hash_key_value, scope_allows
from app.clock import NowDep
from app.config import get_settings
from app.dashboards.repository import page_facts
from app.db import SessionDep
from app.errors import NotAuthenticated, PermissionDenied
from app.models import Dashboard, OrganizationMembership, PersonalAPIKey, Team
from app.web.pages import PageMeta, PageOptions, html_page, render_dashboard_page, render_shell

logger = logging.getLogger("tilecast.web")
router = APIRouter(include_in_schema=False)

MAX_KEY_CHARS = 200
MAX_SEARCH_CHARS = 200
MAX_LISTED = 500
OTHER_SITE = "This form can only be sent from this site."
INVALID_KEY = "That personal API key is not valid."


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _secure(request: Request) -> bool:
    public = get_settings().public_url or ""
    return request.url.scheme == "https" or public.startswith("https://")


def _same_site(request: Request) -> bool:
    """Whether a form post comes from this site. Browsers say so in `Sec-Fetch-Site` (`same-origin`, or
    `none` for what the user typed), which pages cannot forge; without it, the `Origin` must be this
    server's (or the public URL's). (These pages' `no-referrer` policy makes Chromium send `Origin: null`
    even on its own forms, so `Sec-Fetch-Site` decides first.) A client sending neither (not a browser,
    which no other site can drive into sending the cookie) is let through."""
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None:
        return fetch_site in ("same-origin", "none")
    if request.headers.get("origin") is None:
        return True
    return sessions.same_origin(request)


async def _form_value(request: Request, name: str, limit: int) -> str:
    raw = await request.body()
    values = parse_qs(raw.decode("utf-8", "replace")).get(name) if len(raw) < 10_000 else None
    value = values[0].strip() if values else ""
    return value if len(value) <= limit else ""


async def _signed_in(request: Request, session: AsyncSession, now: NowDep) -> PersonalAPIKey | None:
    secure_value = await sessions.key_of_session(session, request.cookies.get(sessions.COOKIE_NAME), now)
    if secure_value is None:
        return None
    return await auth_repository.get_key_with_user(session, secure_value)


# --- pages --------------------------------------------------------------------------------------------------


def _sign_in_page(error: str | None = None, status_code: int = 200) -> Response:
    alert = f'<p class="tc-form-error" role="alert">{_e(error)}</p>\n' if error else ""
    body = (
        '<main class="tc-page tc-narrow">\n'
        '<form class="tc-card tc-form" id="tilecast-sign-in" method="post" action="/sign-in">\n'
        "<h1>Sign in to Tilecast</h1>\n"
        "<p>Sign in with a personal API key (<code>phx_…</code>) to see its projects' dashboards. The key is "
        "not kept in your browser: the session ends after 12 hours, when you sign out, or when the key is "
        "revoked or rolled.</p>\n"
        '<label for="tc-key">Personal API key</label>\n'
        '<input id="tc-key" name="personal_api_key" type="password" autocomplete="off" required autofocus>\n'
        f"{alert}"
        '<button type="submit">Sign in</button>\n'
        "</form>\n</main>"
    )
    return html_page(render_shell("Sign in · Tilecast", body), status_code=status_code)


def _message_page(title: str, text: str, status_code: int) -> Response:
    body = (
        f'<main class="tc-page tc-narrow">\n<div class="tc-card">\n<h1>{_e(title)}</h1>\n<p>{_e(text)}</p>\n'
        '<p><a href="/">All dashboards</a></p>\n</div>\n</main>'
    )
    return html_page(render_shell(f"{title} · Tilecast", body), status_code=status_code)


def _sign_out_form() -> str:
    return (
        '<form method="post" action="/sign-out" class="tc-sign-out">'
        '<button type="submit" class="tc-secondary">Sign out</button></form>'
    )


@dataclass
class _Listed:
    team: Team
    dashboards: list[tuple[int, str | None, str, bool]]


async def _teams_and_dashboards(session: AsyncSession, key: PersonalAPIKey, search: str) -> list[_Listed]:
    """The key's teams (its user's memberships, narrowed by the key's scoped teams and organizations) and
    each one's live dashboards, pinned first, then by name."""
    teams_stmt = (
        select(Team)
        .join(OrganizationMembership, OrganizationMembership.organization_id == Team.organization_id)
        .where(OrganizationMembership.user_id == key.user_id)
        .order_by(Team.id)
    )
    if key.scoped_teams:
        teams_stmt = teams_stmt.where(Team.id.in_(key.scoped_teams))
    teams = [
        team
        for team in (await session.execute(teams_stmt)).scalars().all()
        if not key.scoped_organizations or str(team.organization_id) in key.scoped_organizations
    ]
    if not teams:
        return []
    stmt = (
        select(Dashboard.team_id, Dashboard.id, Dashboard.name, Dashboard.description, Dashboard.pinned)
        .where(Dashboard.team_id.in_([t.id for t in teams]), Dashboard.deleted.is_(False))
        .order_by(Dashboard.team_id, Dashboard.pinned.desc(), func.lower(Dashboard.name), Dashboard.id)
        .limit(MAX_LISTED)
    )
    if search:
        escaped = search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        stmt = stmt.where(Dashboard.name.ilike(f"%{escaped}%", escape="\\"))
    listed = {team.id: _Listed(team, []) for team in teams}
    for team_id, dashboard_id, name, description, pinned in (await session.execute(stmt)).all():
        listed[team_id].dashboards.append((dashboard_id, name, description or "", pinned))
    return list(listed.values())


def _list_page(key: PersonalAPIKey, listed: list[_Listed], search: str) -> Response:
    parts = [
        '<main class="tc-page" id="tilecast-dashboards">',
        '<div class="tc-topbar"><h1 class="tc-title">Dashboards</h1>',
        f'<span class="tc-muted">Signed in as {_e(key.user.email)} (key {_e(key.mask_value)})</span>',
        _sign_out_form() + "</div>",
        '<form class="tc-search" method="get" action="/" role="search">'
        f'<input name="search" type="search" placeholder="Search dashboards" value="{_e(search)}" '
        'aria-label="Search dashboards"><button type="submit">Search</button></form>',
    ]
    if not scope_allows(key.scopes, "dashboard:read"):
        parts.append("<p>This key may not read dashboards (no <code>dashboard:read</code> scope).</p>")
        listed = []
    elif not listed:
        parts.append("<p>This key has no projects.</p>")
    for item in listed:
        parts.append(f'<section class="tc-team" data-team-id="{item.team.id}">')
        parts.append(f"<h2>{_e(item.team.name)} <small>(project {item.team.id})</small></h2>")
        if not item.dashboards:
            parts.append("<p>No dashboards" + (" match." if search else ".") + "</p></section>")
            continue
        parts.append('<ul class="tc-dashboards">')
        for dashboard_id, name, description, pinned in item.dashboards:
            css = ' class="tc-pinned"' if pinned else ""
            href = f"/project/{item.team.id}/dashboard/{dashboard_id}"
            text = _e(name or "Untitled dashboard")
            line = f'<li data-dashboard-id="{dashboard_id}"><a{css} href="{href}">{text}</a>'
            if description:
                line += f"<p>{_e(description)}</p>"
            parts.append(line + "</li>")
        parts.append("</ul></section>")
    parts.append("</main>")
    return html_page(render_shell("Dashboards · Tilecast", "\n".join(parts)))


# --- routes -----------------------------------------------------------------------------------------------


@router.get("/", name="home")
async def home(
    request: Request,
    session: SessionDep,
    now: NowDep,
    search: Annotated[str, Query(max_length=MAX_SEARCH_CHARS)] = "",
) -> Response:
    """The sign-in page, or the signed-in key's teams and their dashboards."""
    key = await _signed_in(request, session, now)
    if key is None:
        response = _sign_in_page()
        if sessions.COOKIE_NAME in request.cookies:  # an ended session: forget its cookie
            response.headers.append("set-cookie", sessions.cleared_cookie(secure=_secure(request)))
        return response
    search = search.strip()
    listed = await _teams_and_dashboards(session, key, search)
    return _list_page(key, listed, search)


@router.post("/sign-in", name="sign_in")
async def sign_in(request: Request, session: SessionDep, now: NowDep) -> Response:
    if not _same_site(request):
        return _message_page("Not signed in", OTHER_SITE, 403)
    value = await _form_value(request, "personal_api_key", MAX_KEY_CHARS)
    key = None
    if value and value.isascii():
        key = await auth_repository.get_key_with_user(session, hash_key_value(value))
    if key is None:
        logger.warning("sign-in refused: not a valid key")
        return _sign_in_page(INVALID_KEY, status_code=401)
    # A new session replaces the one this browser had.
    await sessions.end_session(session, request.cookies.get(sessions.COOKIE_NAME))
    secret = await sessions.create_session(session, key.id, now)
    logger.info("signed in with key %s", key.mask_value)
    response = RedirectResponse("/", status_code=303)
    response.headers["cache-control"] = "no-store"
    response.headers.append("set-cookie", sessions.session_cookie(secret, secure=_secure(request)))
    return response


@router.post("/sign-out", name="sign_out")
async def sign_out(request: Request, session: SessionDep) -> Response:
    if not _same_site(request):
        return _message_page("Not signed out", OTHER_SITE, 403)
    await sessions.end_session(session, request.cookies.get(sessions.COOKIE_NAME))
    response = RedirectResponse("/", status_code=303)
    response.headers["cache-control"] = "no-store"
    response.headers.append("set-cookie", sessions.cleared_cookie(secure=_secure(request)))
    return response


@router.get("/project/{team_id}/dashboard/{dashboard_id}", name="viewer_dashboard")
async def viewer_dashboard(
    team_id: str, dashboard_id: str, request: Request, session: SessionDep
) -> Response:
    """One dashboard's live page for a signed-in viewer (or a request carrying a key)."""
    try:
        access = await get_team_access(SecurityScopes(["dashboard:read"]), team_id, request, session)
    except NotAuthenticated:
        return RedirectResponse("/", status_code=303)
    except PermissionDenied as exc:
        return _message_page("Not allowed", str(exc.detail), 403)
    facts = None
    if dashboard_id.isascii() and dashboard_id.isdigit() and len(dashboard_id) <= 10:
        facts = await page_facts(session, access.team.id, int(dashboard_id))
    if facts is None:
        return _message_page("Not found", "This project has no such dashboard.", 404)
    colors = [c for c in facts.colors or () if isinstance(c, str)] or None
    stream = f"/api/environments/{access.team.id}/dashboards/{facts.id}/stream_tiles/"
    name = facts.name or "Untitled dashboard"
    return render_dashboard_page(
        stream,
        options=PageOptions(controls=True, colors=colors, expected_tiles=facts.tiles),
        meta=PageMeta(title=f"{name} · Tilecast"),
    )
