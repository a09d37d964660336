"""Who is calling, and may they act on this team: the principal and team-access dependencies.

A principal is today a user holding a personal API key; a sharing grant (GET-only, one dashboard) will be a
second kind, so handlers depend on `Principal`/`TeamAccess`, never on the key itself.
"""

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import Depends, Path, Request, Security
from fastapi.security import HTTPBearer, SecurityScopes
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from app.auth import repository
from app.auth.keys import hash_key_value, scope_allows
from app.auth.principal_cache import PrincipalCache
from app.db import SessionDep
from app.errors import AuthenticationFailed, NotAuthenticated, PermissionDenied
from app.models import ADMIN, PersonalAPIKey, Team, User

_BEARER_RE = re.compile(r"^Bearer\s+(\S.+)$")
LAST_USED_RESOLUTION = timedelta(hours=1)

# Declares the Bearer scheme in OpenAPI; the key is read by `get_principal`, which also accepts the body
# and the query string as PostHog does.
bearer_scheme = HTTPBearer(
    scheme_name="PersonalAPIKeyAuth",
    auto_error=False,
    description="A personal API key (`phx_…`), as `Authorization: Bearer <key>`.",
)


@dataclass
class Principal:
    user: User
    key: PersonalAPIKey

    @property
    def scopes(self) -> list[str] | None:
        return self.key.scopes


@dataclass
class TeamAccess:
    """The caller, the URL's team, and the caller's organization membership level in it."""

    principal: Principal
    team: Team
    membership_level: int
    is_admin: bool = field(init=False)

    def __post_init__(self) -> None:
        self.is_admin = self.membership_level >= ADMIN

    @property
    def user(self) -> User:
        return self.principal.user


async def _find_key(request: Request) -> tuple[str, str] | None:
    """The first candidate key and where it came from, in PostHog's order: header, body, query string."""
    header = request.headers.get("authorization")
    if header:
        match = _BEARER_RE.match(header)
        if match:
            return match.group(1).strip(), "Authorization header"
    # PostHog reads `request.data` whatever the method, so a GET with a JSON body may carry the key too.
    if "json" in request.headers.get("content-type", ""):
        try:
            body = json.loads(await request.body() or b"null")
        except (ValueError, RecursionError):  # malformed, not UTF-8, or nested too deep: holds no key
            body = None
        if isinstance(body, dict) and isinstance(body.get("personal_api_key"), str):
            return body["personal_api_key"], "body"
    value = request.query_params.get("personal_api_key")
    if value:
        return value, "query string"
    return None


async def _credentials(request: Request) -> tuple[str, str]:
    """The candidate key and where it came from (401 when the request carries none)."""
    found = await _find_key(request)
    if found is None:
        raise NotAuthenticated()
    return found


def _invalid_key(source: str) -> AuthenticationFailed:
    return AuthenticationFailed(f"Personal API key found in request {source} is invalid.")


async def _record_use(session: AsyncSession, key: PersonalAPIKey) -> bool:
    """Write `last_used_at` at most once an hour per key (PostHog's resolution); whether it was written."""
    now = datetime.now(UTC)
    if key.last_used_at is None or now - key.last_used_at >= LAST_USED_RESOLUTION:
        await repository.touch_key(session, key.id, now)
        set_committed_value(key, "last_used_at", now)  # already written: no second UPDATE at flush
        return True
    return False


async def get_principal(
    request: Request, session: SessionDep, _bearer: Annotated[object, Depends(bearer_scheme)] = None
) -> Principal:
    value, source = await _credentials(request)
    # Keys are ASCII: anything else (a lone surrogate from a JSON body cannot even be hashed) matches none.
    key = await repository.get_key_with_user(session, hash_key_value(value)) if value.isascii() else None
    if key is None:
        raise _invalid_key(source)
    await _record_use(session, key)
    return Principal(user=key.user, key=key)


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def require_scopes(caller: "Principal | TeamAccess", *scopes: str) -> None:
    """403 naming the first scope the caller's key lacks. Routes declare their own scope (`scoped`); an action
    that also creates, changes or deletes another kind of object asks for that kind's scope here, before
    any change (DESIGN.md, "Scopes of every object changed")."""
    principal = caller.principal if isinstance(caller, TeamAccess) else caller
    for scope in scopes:
        if not scope_allows(principal.scopes, scope):
            raise PermissionDenied(f"API key missing required scope '{scope}'")


NO_PROJECT_ACCESS = "You don't have access to the project."

# The team id of PostHog's URLs, documented as PostHog does (a string: it may be anything, and anything
# that is not one of the caller's teams gets 403).
ProjectIdPath = Annotated[
    str,
    Path(
        description="Project ID of the project you're trying to access. To find the ID of the project, "
        "make a call to /api/projects/."
    ),
]


async def get_team_access(
    security_scopes: SecurityScopes,
    project_id: ProjectIdPath,
    request: Request,
    session: SessionDep,
    _bearer: Annotated[object, Depends(bearer_scheme)] = None,
) -> TeamAccess:
    """The caller may act on the URL's team with every scope the route asks for (see `scoped`).

    The key, its user, the team and the user's membership come in one statement; the checks then run in the
    order the answers are owed: bad credentials (401), a missing scope (403), no access to the team (403)."""
    value, source = await _credentials(request)
    team_id = _parse_team_id(project_id)
    # Keys are ASCII: anything else (a lone surrogate from a JSON body cannot even be hashed) matches none.
    if not value.isascii():
        raise _invalid_key(source)
    secure_value = hash_key_value(value)
    principals: PrincipalCache = request.app.state.principals
    found = principals.get(secure_value, team_id)
    if found is None:
        found = await repository.get_principal_for_team(session, secure_value, team_id)
        if found is None:
            raise _invalid_key(source)
        principals.put(secure_value, team_id, found)
    key, team, level = found
    if await _record_use(session, key):
        principals.used(secure_value, team_id, key)
    principal = Principal(user=key.user, key=key)
    require_scopes(principal, *security_scopes.scopes)
    scoped_teams = key.scoped_teams
    if team_id is None or (scoped_teams and team_id not in scoped_teams):
        raise PermissionDenied(NO_PROJECT_ACCESS)
    if team is None or level is None:
        # An unknown team answers like a team of someone else's: existence is not disclosed.
        raise PermissionDenied(NO_PROJECT_ACCESS)
    scoped_orgs = key.scoped_organizations
    if scoped_orgs and str(team.organization_id) not in scoped_orgs:
        raise PermissionDenied(NO_PROJECT_ACCESS)
    return TeamAccess(principal=principal, team=team, membership_level=level)


def scoped(scope: str) -> Any:
    """`Annotated[TeamAccess, scoped("dashboard:read")]`: FastAPI's security scopes, so each operation's
    OpenAPI security requirement names its scope (`{"PersonalAPIKeyAuth": ["dashboard:read"]}`)."""
    return Security(get_team_access, scopes=[scope])


MAX_TEAM_ID = 2**31 - 1  # team ids are PostgreSQL integers


def _parse_team_id(raw: str) -> int | None:
    if raw.isascii() and raw.isdigit() and len(raw) <= len(str(MAX_TEAM_ID)) and int(raw) <= MAX_TEAM_ID:
        return int(raw)
    return None
