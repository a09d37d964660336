"""Queries for authentication: keys with their users, teams with the caller's membership.

Every request runs one of these lookups, so their statements are built once, with bound parameters
(building a statement costs more than running one of these lookups). A request on a team's URL finds its
key, the key's user, the team and the user's membership in one round trip (`get_principal_for_team`).
"""

from datetime import datetime
from typing import Any

from sqlalchemy import (
    ARRAY,
    DateTime,
    Integer,
    Select,
    String,
    and_,
    any_,
    bindparam,
    cast,
    func,
    literal,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased, contains_eager

from app.models import (
    Dashboard,
    OrganizationMembership,
    PersonalAPIKey,
    SharePassword,
    SharingConfiguration,
    Team,
    User,
)

_KEY_WITH_USER = (
    select(PersonalAPIKey)
    .join(PersonalAPIKey.user)
    .options(contains_eager(PersonalAPIKey.user))
    .where(PersonalAPIKey.secure_value == bindparam("secure_value", type_=String), User.is_active.is_(True))
)

# The row stays locked until the request's transaction ends, so a concurrent request with the same key skips
# the update (SKIP LOCKED) instead of waiting for that whole request.
_TOUCH_KEY = (
    update(PersonalAPIKey)
    .where(
        PersonalAPIKey.id
        == select(PersonalAPIKey.id)
        .where(PersonalAPIKey.id == bindparam("key_id", type_=String))
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    .values(last_used_at=bindparam("now", type_=DateTime(timezone=True)))
)

# Outer join: the level is None when the user is not a member of the team's organization.
_TEAM_WITH_MEMBERSHIP = (
    select(Team, OrganizationMembership.level)
    .outerjoin(
        OrganizationMembership,
        (OrganizationMembership.organization_id == Team.organization_id)
        & (OrganizationMembership.user_id == bindparam("user_id", type_=Integer)),
    )
    .where(Team.id == bindparam("team_id", type_=Integer))
)


# The key by its hash (the unique index on secure_value: one indexed read), its user, and, outer-joined, the
# URL's team and the user's membership level in the team's organization. A key that is unknown or whose user
# is inactive selects no row; an unknown team (or a team id that is no integer: NULL) leaves the team's
# columns NULL; a team of an organization the user is not in leaves the level NULL.
_PRINCIPAL_FOR_TEAM = (
    select(PersonalAPIKey, Team, OrganizationMembership.level)
    .join(PersonalAPIKey.user)
    .outerjoin(Team, Team.id == bindparam("team_id", type_=Integer))
    .outerjoin(
        OrganizationMembership,
        and_(
            OrganizationMembership.organization_id == Team.organization_id,
            OrganizationMembership.user_id == User.id,
        ),
    )
    .options(contains_eager(PersonalAPIKey.user))
    .where(PersonalAPIKey.secure_value == bindparam("secure_value", type_=String), User.is_active.is_(True))
)


async def get_principal_for_team(
    session: AsyncSession, secure_value: str, team_id: int | None
) -> tuple[PersonalAPIKey, Team | None, int | None] | None:
    """The key (with its user), the team `team_id` (None if there is none) and the user's membership level in
    its organization (None when not a member), in one statement; None when no active user has this key."""
    row = (
        await session.execute(_PRINCIPAL_FOR_TEAM, {"secure_value": secure_value, "team_id": team_id})
    ).one_or_none()
    return None if row is None else (row[0], row[1], row[2])


async def get_key_with_user(session: AsyncSession, secure_value: str) -> PersonalAPIKey | None:
    return (await session.execute(_KEY_WITH_USER, {"secure_value": secure_value})).scalar_one_or_none()


async def touch_key(session: AsyncSession, key_id: str, now: datetime) -> None:
    """Record the key's use without waiting on another request that holds its row."""
    await session.execute(_TOUCH_KEY, {"key_id": key_id, "now": now})


def reachable_teams(user_id: int, key: PersonalAPIKey) -> Select[Any]:
    """The teams a key reaches: its user is a member of their organization, and they are within the key's
    `scoped_teams` and `scoped_organizations` when it has them (what `get_team_access` lets it act on)."""
    stmt = select(Team).join(
        OrganizationMembership,
        (OrganizationMembership.organization_id == Team.organization_id)
        & (OrganizationMembership.user_id == user_id),
    )
    if key.scoped_teams:
        stmt = stmt.where(Team.id.in_(key.scoped_teams))
    if key.scoped_organizations:
        stmt = stmt.where(cast(Team.organization_id, String).in_(key.scoped_organizations))
    return stmt


async def current_team_id(session: AsyncSession, key: PersonalAPIKey) -> int | None:
    """The team `@current` means for this key: its user's current team when the key reaches it, else the
    key's first scoped team, else the user's first team the key reaches (None: it reaches none)."""
    user = key.user
    first_scoped = (
        func.array_position(cast(list(key.scoped_teams), ARRAY(Integer)), Team.id)
        if key.scoped_teams
        else literal(None)
    )
    stmt = (
        reachable_teams(user.id, key)
        .with_only_columns(Team.id)
        .order_by(
            (Team.id == user.current_team_id).desc(),
            first_scoped.asc().nulls_last(),
            Team.id,
        )
        .limit(1)
    )
    found: int | None = (await session.execute(stmt)).scalar_one_or_none()
    return found


async def get_team_with_membership(
    session: AsyncSession, team_id: int, user_id: int
) -> tuple[Team, int | None] | None:
    """The team and the user's membership level in its organization (None when not a member)."""
    row = (
        await session.execute(_TEAM_WITH_MEMBERSHIP, {"team_id": team_id, "user_id": user_id})
    ).one_or_none()
    return None if row is None else (row[0], row[1])


# --- sharing grants ---------------------------------------------------------------------------------------

# A share that opens its dashboard now: enabled, not expired (a rotated token keeps working until its grace
# period ends), its dashboard live. With its team, for the grant's `TeamAccess`, and the first of the given
# passwords (of JWTs) that is still active on this dashboard's share (a rotated token's passwords move to the
# new row): one statement for the whole check.
_owner = aliased(SharingConfiguration)
_ACTIVE_PASSWORD = (
    select(func.min(SharePassword.id))
    .join(_owner, _owner.id == SharePassword.sharing_configuration_id)
    .where(
        SharePassword.id == any_(bindparam("password_ids", type_=ARRAY(Integer))),
        SharePassword.is_active.is_(True),
        _owner.dashboard_id == SharingConfiguration.dashboard_id,
    )
    .correlate(SharingConfiguration)
    .scalar_subquery()
)
_LIVE_SHARE = (
    select(SharingConfiguration, Team, _ACTIVE_PASSWORD)
    .join(Team, Team.id == SharingConfiguration.team_id)
    .join(Dashboard, Dashboard.id == SharingConfiguration.dashboard_id)
    .where(
        SharingConfiguration.access_token == bindparam("token", type_=String),
        SharingConfiguration.enabled.is_(True),
        or_(
            SharingConfiguration.expires_at.is_(None),
            SharingConfiguration.expires_at > bindparam("now", type_=DateTime(timezone=True)),
        ),
        Dashboard.deleted.is_(False),
    )
)


async def get_live_share(
    session: AsyncSession, token: str, now: datetime, password_ids: list[int] | None = None
) -> tuple[SharingConfiguration, Team, int | None] | None:
    """The live share of `token`, its team, and the first of `password_ids` still active on it."""
    params = {"token": token, "now": now, "password_ids": password_ids or []}
    found = (await session.execute(_LIVE_SHARE, params)).first()
    return None if found is None else (found[0], found[1], found[2])


_SECRET_INSERT = text(
    "INSERT INTO app_secret (name, value) VALUES (:name, :value) ON CONFLICT (name) DO NOTHING"
)
_SECRET_SELECT = text("SELECT value FROM app_secret WHERE name = :name")


async def get_or_create_secret(session: AsyncSession, name: str, candidate: str) -> str:
    """The stored secret `name`, stored as `candidate` when there is none yet (the first writer wins)."""
    await session.execute(_SECRET_INSERT, {"name": name, "value": candidate})
    return str((await session.execute(_SECRET_SELECT, {"name": name})).scalar_one())
