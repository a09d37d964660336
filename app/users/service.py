"""Who am I, and what can I reach: the key's user, its organizations and projects (teams), `@current`.

A key sees only what it reaches: the teams of its user's organizations, within its `scoped_teams` and
`scoped_organizations` when it has them; organizations without such a team are left out for it."""

import re
from typing import TypeVar
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from app.auth import repository as auth_repository
from app.auth.dependencies import CURRENT, Principal
from app.errors import NotFound, PermissionDenied, ValidationFailed
from app.models import Organization as OrganizationModel
from app.pagination import Page
from app.schemas import Paginated
from app.users import repository
from app.users.repository import Membership, ReachableTeam
from app.users.schemas import (
    Organization,
    OrganizationBasic,
    ProjectBasic,
    TeamBasic,
    User,
    UserUpdate,
)

CURRENT_ORGANIZATION_NOT_FOUND = "Current organization not found."


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "organization"


def team_basic(found: ReachableTeam) -> TeamBasic:
    team = found.team
    return TeamBasic(
        id=team.id,
        uuid=team.uuid,
        organization=team.organization_id,
        project_id=team.id,
        api_token=team.api_token,
        name=team.name,
        ingested_event=found.ingested_event,
        timezone=team.timezone,
    )


def _basic(membership: Membership) -> OrganizationBasic:
    org = membership.organization
    return OrganizationBasic(
        id=org.id, name=org.name, slug=_slug(org.name), membership_level=membership.level
    )


def _organization(membership: Membership, teams: list[ReachableTeam]) -> Organization:
    org: OrganizationModel = membership.organization
    own = [t for t in teams if t.team.organization_id == org.id]
    return Organization(
        **_basic(membership).model_dump(),
        created_at=org.created_at,
        updated_at=org.created_at,
        teams=[team_basic(t) for t in own],
        projects=[ProjectBasic(id=t.team.id, organization_id=org.id, name=t.team.name) for t in own],
        member_count=membership.member_count,
    )


class _Reach:
    """The organizations and teams one key reaches, loaded once per request."""

    def __init__(self, memberships: list[Membership], teams: list[ReachableTeam], principal: Principal):
        key = principal.key
        self.teams = teams
        self.memberships = memberships
        with_teams = {t.team.organization_id for t in teams}
        self.visible = [
            m
            for m in memberships
            if (not key.scoped_organizations or str(m.organization.id) in key.scoped_organizations)
            and (not key.scoped_teams or m.organization.id in with_teams)
        ]

    def organization(self, raw_id: str) -> Membership:
        """The organization `raw_id` names: 404 when the user is not in it, 403 when the key does not
        reach it."""
        try:
            wanted = UUID(raw_id)
        except ValueError:
            raise NotFound() from None
        membership = next((m for m in self.memberships if m.organization.id == wanted), None)
        if membership is None:
            raise NotFound()
        if membership not in self.visible:
            raise PermissionDenied(
                f"API key does not have access to the requested organization: ID {wanted}."
            )
        return membership


async def _reach(session: AsyncSession, principal: Principal) -> _Reach:
    memberships = await repository.list_memberships(session, principal.user.id)
    teams = await repository.list_reachable_teams(session, principal.key)
    return _Reach(memberships, teams, principal)


async def _current(session: AsyncSession, principal: Principal, reach: _Reach) -> ReachableTeam | None:
    team_id = await auth_repository.current_team_id(session, principal.key)
    return next((t for t in reach.teams if t.team.id == team_id), None)


def _current_membership(reach: _Reach, current: ReachableTeam | None) -> Membership | None:
    if current is not None:
        return next(m for m in reach.memberships if m.organization.id == current.team.organization_id)
    return reach.visible[0] if reach.visible else None


async def me(session: AsyncSession, principal: Principal) -> User:
    reach = await _reach(session, principal)
    current = await _current(session, principal, reach)
    membership = _current_membership(reach, current)
    user = principal.user
    return User(
        date_joined=user.created_at,
        uuid=user.uuid,
        distinct_id=user.distinct_id,
        first_name=user.first_name,
        last_name=user.last_name,
        email=user.email,
        is_email_verified=user.is_email_verified,
        has_password=bool(user.password),
        id=user.id,
        team=None if current is None else team_basic(current),
        organization=None if membership is None else _organization(membership, reach.teams),
        organizations=[_basic(m) for m in reach.visible],
        hedgehog_config=user.hedgehog_config,
        role_at_organization=user.role_at_organization,
    )


async def update_me(session: AsyncSession, principal: Principal, data: UserUpdate) -> User:
    """Move the user's current team to one the key reaches (400 naming the field otherwise)."""
    fields = sorted(data.model_fields_set & {"set_current_team", "current_team"})
    if fields:
        reach = await _reach(session, principal)
        for attr in fields:
            raw = getattr(data, attr)
            team = next((t.team for t in reach.teams if str(t.team.id) == str(raw).strip()), None)
            if team is None:
                raise ValidationFailed(
                    f"Object with id={raw} does not exist.", attr=attr, code="does_not_exist"
                )
            await repository.set_current_team(session, principal.user.id, team.id)
            set_committed_value(principal.user, "current_team_id", team.id)
    return await me(session, principal)


async def list_organizations(
    session: AsyncSession, principal: Principal, page: Page
) -> Paginated[Organization]:
    reach = await _reach(session, principal)
    return _page([_organization(m, reach.teams) for m in reach.visible], page)


async def get_organization(session: AsyncSession, principal: Principal, raw_id: str) -> Organization:
    reach = await _reach(session, principal)
    if raw_id == CURRENT:
        membership = _current_membership(reach, await _current(session, principal, reach))
        if membership is None:
            raise NotFound(CURRENT_ORGANIZATION_NOT_FOUND)
    else:
        membership = reach.organization(raw_id)
    return _organization(membership, reach.teams)


async def list_projects(
    session: AsyncSession, principal: Principal, page: Page, organization_id: str = CURRENT
) -> Paginated[TeamBasic]:
    """The projects the key reaches in an organization (by default its current one, as `/api/projects/`)."""
    organization = await get_organization(session, principal, organization_id)
    return _page(organization.teams, page)


T = TypeVar("T")


def _page(items: list[T], page: Page) -> Paginated[T]:
    nxt, prev = page.links(len(items))
    return Paginated[T](
        count=len(items), next=nxt, previous=prev, results=items[page.offset : page.offset + page.limit]
    )
