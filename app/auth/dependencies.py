"""Who is calling, and may they act on this team: the principal and team-access dependencies.

A principal is a user holding a personal API key (`Principal`) or a sharing grant (`SharingGrant`: GET/HEAD
only, one shared dashboard and its team's themes). A signed-in viewer's session cookie (`app.auth.sessions`)
reads as its key, for GET/HEAD only, wherever a key is accepted; explicit credentials (a key in the header,
body or query string, a `sharing_access_token`) win over it; routes declared with `session_posts` also take a
session's POST from this site (its `Origin`). Handlers depend on `TeamAccess`, never on the
key itself. Each route declares which kinds it accepts: `scoped(scope)` accepts the key alone and answers 401
to any request carrying `sharing_access_token`; `scoped(scope, grants=GrantTarget.…)` accepts a grant too,
limited to that target. So no route is reached by a grant unless it says so (a test walks the route table).
"""

import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any

from fastapi import Depends, Path, Request, Security
from fastapi.security import HTTPBearer, SecurityScopes
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from app.auth import repository, sessions
from app.auth.grants import QUERY_PARAMETER, JwtSecret, SharingGrant, grant_for_api, looks_like_jwt
from app.auth.keys import hash_key_value, scope_allows
from app.auth.principal_cache import PrincipalCache
from app.clock import clock_of
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


# Who a grant is, where code reached by one asks for a user: nobody. No user row has id 0 (ids start at 1), so
# the caller's privilege and last view are never found, and a view noted for it is dropped when written (the
# dashboard's `last_accessed_at` is still recorded). Never stored: it is not in any session.
ANONYMOUS = User(id=0, uuid=uuid.UUID(int=0), email="", first_name="", last_name="", is_active=False)


@dataclass
class TeamAccess:
    """The caller, the URL's team, and the caller's organization membership level in it (0 for a grant)."""

    principal: Principal | SharingGrant
    team: Team
    membership_level: int
    is_admin: bool = field(init=False)

    def __post_init__(self) -> None:
        self.is_admin = self.membership_level >= ADMIN

    @property
    def user(self) -> User:
        principal = self.principal
        return principal.user if isinstance(principal, Principal) else ANONYMOUS

    @property
    def grant(self) -> SharingGrant | None:
        """The sharing grant when the caller holds one instead of a key (shared context)."""
        principal = self.principal
        return principal if isinstance(principal, SharingGrant) else None


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


SESSION_ENDED = "Your session has ended: sign in again."


def _invalid_key(source: str) -> AuthenticationFailed:
    return AuthenticationFailed(f"Personal API key found in request {source} is invalid.")


OTHER_ORIGIN = "A signed-in session's request must come from this site (its Origin header)."


async def _secure_value(
    request: Request, session: AsyncSession, *, session_posts: bool = False
) -> tuple[str, str]:
    """The hash of the key the request acts as, and where it came from: an explicit key (header, body, query
    string), else, for GET and HEAD, a signed-in viewer's session cookie (and for a route taking
    `session_posts`, its POST whose `Origin` is this service's: 403 otherwise). 401 when it carries none;
    401 for a key that cannot be one (keys are ASCII: a lone surrogate from a JSON body cannot even be
    hashed) or a session that has ended."""
    found = await _find_key(request)
    if found is not None:
        value, source = found
        if not value.isascii():
            raise _invalid_key(source)
        return hash_key_value(value), source
    cookie = request.cookies.get(sessions.COOKIE_NAME)
    if cookie is None:
        raise NotAuthenticated()
    if request.method not in sessions.READ_METHODS:
        if not session_posts or request.method != "POST":
            raise NotAuthenticated()
        if not sessions.same_origin(request):
            raise PermissionDenied(OTHER_ORIGIN)
    secure_value = await sessions.key_of_session(session, cookie, clock_of(request)())
    if secure_value is None:
        raise AuthenticationFailed(SESSION_ENDED)
    return secure_value, "session"


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
    if QUERY_PARAMETER in request.query_params:
        raise _grant_refused(request)
    secure_value, source = await _secure_value(request, session)
    key = await repository.get_key_with_user(session, secure_value)
    if key is None:
        raise _invalid_key(source) if source != "session" else AuthenticationFailed(SESSION_ENDED)
    await _record_use(session, key)
    return Principal(user=key.user, key=key)


PrincipalDep = Annotated[Principal, Depends(get_principal)]


async def get_scoped_principal(security_scopes: SecurityScopes, principal: PrincipalDep) -> Principal:
    """The caller's key, with every scope the route asks for (see `key_scoped`)."""
    require_scopes(principal, *security_scopes.scopes)
    return principal


def key_scoped(scope: str) -> Any:
    """`Annotated[Principal, key_scoped("user:read")]`: a route outside any team (the caller's user, keys,
    organizations and projects) that takes a key alone, with that scope (named in OpenAPI as `scoped`)."""
    return Security(get_scoped_principal, scopes=[scope])


def require_scopes(caller: "Principal | TeamAccess", *scopes: str) -> None:
    """403 naming the first scope the caller's key lacks. Routes declare their own scope (`scoped`); an action
    that also creates, changes or deletes another kind of object asks for that kind's scope here, before
    any change (DESIGN.md, "Scopes of every object changed")."""
    principal = caller.principal if isinstance(caller, TeamAccess) else caller
    if isinstance(principal, SharingGrant):
        # A grant reads; whatever else an action would do, it may not.
        raise PermissionDenied()
    for scope in scopes:
        if not scope_allows(principal.scopes, scope):
            raise PermissionDenied(f"API key missing required scope '{scope}'")


NO_PROJECT_ACCESS = "You don't have access to the project."
# PostHog's stand-in for an id in a URL: the caller's current project (or organization, or key).
CURRENT = "@current"

# The team id of PostHog's URLs, documented as PostHog does (a string: it may be anything, and anything
# that is not one of the caller's teams gets 403).
ProjectIdPath = Annotated[
    str,
    Path(
        description="Project ID of the project you're trying to access. To find the ID of the project, "
        "make a call to /api/projects/. `@current` stands for your current project."
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
    order the answers are owed: bad credentials (401), a missing scope (403), no access to the team (403).
    A request carrying a sharing grant is refused (401): this route accepts keys alone."""
    return await _team_access(security_scopes, project_id, request, session)


async def get_team_access_or_session_post(
    security_scopes: SecurityScopes,
    project_id: ProjectIdPath,
    request: Request,
    session: SessionDep,
    _bearer: Annotated[object, Depends(bearer_scheme)] = None,
) -> TeamAccess:
    """`get_team_access`, and a signed-in viewer's session on a POST from this site (`Origin`)."""
    return await _team_access(security_scopes, project_id, request, session, session_posts=True)


def accepts_session_posts(dependency: Any) -> bool:
    """Whether a dependency takes a session's POST. For the test that walks the route table."""
    return dependency is get_team_access_or_session_post


async def _team_access(
    security_scopes: SecurityScopes,
    project_id: str,
    request: Request,
    session: AsyncSession,
    *,
    session_posts: bool = False,
) -> TeamAccess:
    if QUERY_PARAMETER in request.query_params:
        raise _grant_refused(request)
    secure_value, source = await _secure_value(request, session, session_posts=session_posts)
    if project_id == CURRENT:
        team_id = await _current_team_id(session, secure_value, source)
    else:
        team_id = _parse_team_id(project_id)
    principals: PrincipalCache = request.app.state.principals
    found = principals.get(secure_value, team_id)
    if found is None:
        found = await repository.get_principal_for_team(session, secure_value, team_id)
        if found is None:
            raise _invalid_key(source) if source != "session" else AuthenticationFailed(SESSION_ENDED)
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


async def _current_team_id(session: AsyncSession, secure_value: str, source: str) -> int | None:
    """The team `@current` stands for, for this key (`repository.current_team_id`): None when there is none,
    which the caller refuses as it refuses any team the key does not reach. 401 for an unknown key."""
    key = await repository.get_key_with_user(session, secure_value)
    if key is None:
        raise _invalid_key(source) if source != "session" else AuthenticationFailed(SESSION_ENDED)
    return await repository.current_team_id(session, key)


GET_ONLY = "Sharing access token can only be used for GET requests."
NOT_FOR_GRANTS = "Sharing access token cannot be used on this endpoint."
INVALID_GRANT = "Sharing access token is invalid or has expired."


def _grant_refused(request: Request) -> AuthenticationFailed:
    return AuthenticationFailed(GET_ONLY if request.method not in ("GET", "HEAD") else NOT_FOR_GRANTS)


class GrantTarget(StrEnum):
    """What a route lets a sharing grant read."""

    # The shared dashboard itself: the route's `id` path parameter must be the grant's dashboard.
    DASHBOARD = "dashboard"
    # The grant's team's data color themes (and the global ones): reads of any of them.
    TEAM_THEMES = "team_themes"


def _grant_value(request: Request) -> str | None:
    """The grant a request carries: `sharing_access_token`, or a share's JWT as `Authorization: Bearer`."""
    value = request.query_params.get(QUERY_PARAMETER)
    if value is not None:
        return value
    header = request.headers.get("authorization")
    match = _BEARER_RE.match(header) if header else None
    if match and looks_like_jwt(match.group(1).strip()):
        return match.group(1).strip()
    return None


def carries_grant(request: Request) -> bool:
    """Whether the request presents a sharing grant (whether or not it is valid)."""
    return _grant_value(request) is not None


async def _grant_access(
    request: Request, session: AsyncSession, value: str, target: GrantTarget
) -> TeamAccess:
    if request.method not in ("GET", "HEAD"):
        raise AuthenticationFailed(GET_ONLY)
    secret: JwtSecret = request.app.state.sharing_secret
    found = await grant_for_api(session, secret, request.app.state.sessionmaker, value, clock_of(request)())
    if found is None:
        raise AuthenticationFailed(INVALID_GRANT)
    grant, team = found
    if _parse_team_id(request.path_params.get("project_id", "")) != grant.team_id:
        raise PermissionDenied(NO_PROJECT_ACCESS)
    if target is GrantTarget.DASHBOARD and request.path_params.get("id") != str(grant.dashboard_id):
        raise PermissionDenied()
    return TeamAccess(principal=grant, team=team, membership_level=0)


def _key_or_grant(target: GrantTarget) -> Any:
    async def get_team_access_or_grant(
        security_scopes: SecurityScopes,
        project_id: ProjectIdPath,
        request: Request,
        session: SessionDep,
        _bearer: Annotated[object, Depends(bearer_scheme)] = None,
    ) -> TeamAccess:
        """A key with the route's scopes on the URL's team, or a sharing grant on `target` (GET/HEAD only)."""
        value = _grant_value(request)
        if value is None:
            return await get_team_access(security_scopes, project_id, request, session)
        return await _grant_access(request, session, value, target)

    get_team_access_or_grant.accepts_grants = target  # type: ignore[attr-defined]
    return get_team_access_or_grant


_GRANT_DEPENDENCIES = {target: _key_or_grant(target) for target in GrantTarget}


def accepted_grant(dependency: Any) -> GrantTarget | None:
    """The grant target a dependency accepts (None: keys alone). For the test that walks the route table."""
    return getattr(dependency, "accepts_grants", None)


def scoped(scope: str, *, grants: GrantTarget | None = None, session_posts: bool = False) -> Any:
    """`Annotated[TeamAccess, scoped("dashboard:read")]`: FastAPI's security scopes, so each operation's
    OpenAPI security requirement names its scope (`{"PersonalAPIKeyAuth": ["dashboard:read"]}`). With
    `grants`, the route also accepts a sharing grant on that target (for reads; a grant has no scopes). With
    `session_posts`, a signed-in viewer's session may POST to it from this site (`Origin`)."""
    if session_posts:
        return Security(get_team_access_or_session_post, scopes=[scope])
    if grants is None:
        return Security(get_team_access, scopes=[scope])
    return Security(_GRANT_DEPENDENCIES[grants], scopes=[scope])


MAX_TEAM_ID = 2**31 - 1  # team ids are PostgreSQL integers


def _parse_team_id(raw: str) -> int | None:
    if raw.isascii() and raw.isdigit() and len(raw) <= len(str(MAX_TEAM_ID)) and int(raw) <= MAX_TEAM_ID:
        return int(raw)
    return None
