"""The caller's personal API keys: list, create, change, delete, roll (PostHog's `/api/personal_api_keys/`).

A key never makes or changes a key wider than itself: no scope it lacks (nor `*` unless it has it), no project
or organization beyond its own limits, and no key without limits when it has some. So a key handed to a tool
cannot mint itself more power. Changing, rolling or deleting a key drops what this process remembers of it
(`PrincipalCache.forget`); rolling or deleting ends the browser sessions signed in with it.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts import new_personal_api_key
from app.auth import key_changes
from app.auth.dependencies import CURRENT, Principal
from app.auth.keys import generate_personal_api_key, hash_key_value, mask_key_value, scope_allows
from app.auth.principal_cache import PrincipalCache
from app.errors import NotFound, PermissionDenied, ValidationFailed
from app.keys import repository
from app.keys.schemas import PersonalAPIKey, PersonalAPIKeyCreate, PersonalAPIKeyUpdate
from app.models import PersonalAPIKey as KeyModel

MAX_KEYS_PER_USER = 10
TOO_MANY_KEYS = (
    f"You can only have {MAX_KEYS_PER_USER} personal API keys. "
    "Remove an existing key before creating a new one."
)
NOT_A_MEMBER_OF_TEAMS = "You must be a member of all teams that you are scoping the key to."
NOT_A_MEMBER_OF_ORGANIZATIONS = "You must be a member of all organizations that you are scoping the key to."
INVALID_ORGANIZATION = "Invalid organization UUID"


@dataclass
class Reach:
    """What a key may do: its scopes (None: anything) and its limits (None: none)."""

    scopes: list[str] | None
    teams: list[int] | None
    organizations: list[str] | None

    @classmethod
    def of(cls, key: KeyModel) -> "Reach":
        return cls(key.scopes or None, key.scoped_teams or None, key.scoped_organizations or None)


def to_schema(key: KeyModel, value: str | None = None) -> PersonalAPIKey:
    return PersonalAPIKey(
        id=key.id,
        label=key.label,
        value=value,
        mask_value=key.mask_value,
        created_at=key.created_at,
        last_used_at=key.last_used_at,
        user_id=key.user_id,
        scopes=key.scopes or ["*"],
        scoped_teams=key.scoped_teams or [],
        scoped_organizations=key.scoped_organizations or [],
        last_rolled_at=key.last_rolled_at,
    )


async def _checked_limits(
    session: AsyncSession, user_id: int, teams: Sequence[int] | None, organizations: Sequence[str] | None
) -> tuple[list[int] | None, list[str] | None, dict[int, UUID]]:
    """The limits given, each one the user's own (400 naming the field otherwise), and each team's
    organization. Empty lists mean no limit (stored as none)."""
    team_orgs: dict[int, UUID] = {}
    if teams:
        team_orgs = await repository.member_teams(session, user_id, list(teams))
        if len(team_orgs) != len(set(teams)):
            raise ValidationFailed(NOT_A_MEMBER_OF_TEAMS, attr="scoped_teams")
    orgs: list[str] | None = None
    if organizations:
        try:
            orgs = list(dict.fromkeys(str(UUID(raw)) for raw in organizations))
        except ValueError:
            raise ValidationFailed(INVALID_ORGANIZATION, attr="scoped_organizations") from None
        mine = {str(org) for org in await repository.member_organizations(session, user_id)}
        if not set(orgs) <= mine:
            raise ValidationFailed(NOT_A_MEMBER_OF_ORGANIZATIONS, attr="scoped_organizations")
    return (list(dict.fromkeys(teams)) if teams else None), orgs, team_orgs


def _check_within(caller: Reach, wanted: Reach, team_orgs: dict[int, UUID]) -> None:
    """403 unless `wanted` is no wider than `caller`, naming what would be wider."""
    if caller.scopes is not None and "*" not in caller.scopes:
        if wanted.scopes is None or "*" in wanted.scopes:
            raise PermissionDenied("A key without the '*' scope cannot give a key the '*' scope.")
        for scope in wanted.scopes:
            if not scope_allows(caller.scopes, scope):
                raise PermissionDenied(f"A key cannot give a key a scope it does not have: '{scope}'.")
    if caller.teams is not None:
        if wanted.teams is None:
            raise PermissionDenied("A key limited to some projects cannot give a key access to all projects.")
        beyond = sorted(set(wanted.teams) - set(caller.teams))
        if beyond:
            raise PermissionDenied(
                f"A key cannot give a key access to a project it cannot reach: ID {beyond[0]}."
            )
    if caller.organizations is not None:
        if wanted.organizations is not None:
            beyond_orgs = sorted(set(wanted.organizations) - set(caller.organizations))
            if beyond_orgs:
                raise PermissionDenied(
                    f"A key cannot give a key access to an organization it cannot reach: ID {beyond_orgs[0]}."
                )
        elif wanted.teams is not None:
            # A team the user is no longer in has no organization here: beyond the caller's too.
            outside = sorted(t for t in wanted.teams if str(team_orgs.get(t)) not in caller.organizations)
            if outside:
                raise PermissionDenied(
                    f"A key cannot give a key access to a project it cannot reach: ID {outside[0]}."
                )
        else:
            raise PermissionDenied(
                "A key limited to some organizations cannot give a key access to all organizations."
            )


async def _team_orgs_of(session: AsyncSession, user_id: int, reach: Reach) -> dict[int, UUID]:
    return await repository.member_teams(session, user_id, reach.teams) if reach.teams else {}


async def _target(session: AsyncSession, principal: Principal, key_id: str) -> KeyModel:
    """The caller's own key `key_id` (`@current`: the key making the request); 404 for any other."""
    found = await repository.get_key(
        session, principal.user.id, principal.key.id if key_id == CURRENT else key_id
    )
    if found is None:
        raise NotFound()
    return found


async def _check_may_act_on(session: AsyncSession, principal: Principal, key: KeyModel) -> None:
    """A key acts only on keys no wider than itself (rolling a wider key would hand its caller that key)."""
    reach = Reach.of(key)
    _check_within(Reach.of(principal.key), reach, await _team_orgs_of(session, principal.user.id, reach))


async def list_keys(session: AsyncSession, principal: Principal) -> list[PersonalAPIKey]:
    return [to_schema(key) for key in await repository.list_keys(session, principal.user.id)]


async def retrieve_key(session: AsyncSession, principal: Principal, key_id: str) -> PersonalAPIKey:
    return to_schema(await _target(session, principal, key_id))


def current_key(principal: Principal) -> PersonalAPIKey:
    return to_schema(principal.key)


async def create_key(
    session: AsyncSession, principal: Principal, data: PersonalAPIKeyCreate
) -> PersonalAPIKey:
    user_id = principal.user.id
    teams, orgs, team_orgs = await _checked_limits(
        session, user_id, data.scoped_teams, data.scoped_organizations
    )
    _check_within(Reach.of(principal.key), Reach(data.scopes, teams, orgs), team_orgs)
    if await repository.count_keys_locked(session, user_id) >= MAX_KEYS_PER_USER:
        raise ValidationFailed(TOO_MANY_KEYS)
    key, value = await new_personal_api_key(
        session,
        principal.user,
        scopes=data.scopes,
        label=data.label,
        scoped_teams=teams,
        scoped_organizations=orgs,
    )
    return to_schema(key, value)


async def update_key(
    session: AsyncSession,
    principal: Principal,
    key_id: str,
    data: PersonalAPIKeyUpdate,
    cache: PrincipalCache,
) -> PersonalAPIKey:
    key = await _target(session, principal, key_id)
    await _check_may_act_on(session, principal, key)
    given = data.model_fields_set
    for name in ("label", "scopes"):
        if name in given and getattr(data, name) is None:
            raise ValidationFailed("This field may not be null.", attr=name, code="null")
    # The limits given are checked as on create; those not given stay as they are.
    teams, orgs, _ = await _checked_limits(
        session, principal.user.id, data.scoped_teams, data.scoped_organizations
    )
    if "scoped_teams" not in given:
        teams = key.scoped_teams or None
    if "scoped_organizations" not in given:
        orgs = key.scoped_organizations or None
    scopes = data.scopes if data.scopes is not None else key.scopes
    wanted = Reach(scopes or None, teams, orgs)
    _check_within(Reach.of(principal.key), wanted, await _team_orgs_of(session, principal.user.id, wanted))
    if data.label is not None:
        key.label = data.label
    key.scopes, key.scoped_teams, key.scoped_organizations = scopes, teams, orgs
    await session.flush()
    await key_changes.announce(session, key.secure_value)
    cache.forget(key.secure_value)
    return to_schema(key)


async def delete_key(session: AsyncSession, principal: Principal, key_id: str, cache: PrincipalCache) -> None:
    key = await _target(session, principal, key_id)
    await _check_may_act_on(session, principal, key)
    await repository.delete_key(session, key)
    cache.forget(key.secure_value)


async def roll_key(
    session: AsyncSession, principal: Principal, key_id: str, cache: PrincipalCache
) -> PersonalAPIKey:
    """A new value for the key (returned once); the old one stops working, and its browser sessions end."""
    key = await _target(session, principal, key_id)
    await _check_may_act_on(session, principal, key)
    old = key.secure_value
    value = await roll(session, key)
    cache.forget(old)
    return to_schema(key, value)


async def roll(session: AsyncSession, key: KeyModel) -> str:
    """Give the key a new value (its plaintext, returned once) and end its browser sessions."""
    value = generate_personal_api_key()
    await repository.roll(session, key, hash_key_value(value), mask_key_value(value), datetime.now(UTC))
    return value
