"""Who may do what to a dashboard: restriction levels, privileges and the edit checks.

No paywalls: `effective_restriction_level` is always the stored `restriction_level`.
"""

from dataclasses import dataclass
from functools import lru_cache

from app.auth.dependencies import TeamAccess
from app.dashboards.repository import DashboardFullRow, DashboardListRow, DashboardRow
from app.dashboards.schemas import PrivilegeLevel, RestrictionLevel
from app.errors import PermissionDenied

CANNOT_EDIT = "You don't have edit permissions for this dashboard."
CANNOT_RESTRICT = (
    "Only the dashboard owner and project admins have the restriction rights required to change the "
    "dashboard's restriction level."
)


@dataclass(frozen=True)
class DashboardAccess:
    effective_restriction_level: RestrictionLevel
    effective_privilege_level: PrivilegeLevel
    can_restrict: bool
    can_edit: bool

    @property
    def user_access_level(self) -> str:
        return "editor" if self.can_edit else "viewer"


# Shared context (a sharing grant): PostHog's fixed levels, and no right to change anything.
SHARED = DashboardAccess(
    RestrictionLevel.ONLY_COLLABORATORS_CAN_EDIT, PrivilegeLevel.CAN_VIEW, can_restrict=False, can_edit=False
)


def access_for(
    row: DashboardRow | DashboardListRow | DashboardFullRow, access: TeamAccess
) -> DashboardAccess:
    if access.grant is not None:
        return SHARED
    dashboard = row.dashboard
    can_restrict = access.is_admin or dashboard.created_by_id == access.user.id
    return _rights(dashboard.restriction_level, can_restrict, row.privilege_level)


@lru_cache(maxsize=64)
def _rights(restriction_level: int, can_restrict: bool, privilege_level: int | None) -> DashboardAccess:
    """The rights for one combination of the stored values (a list of a hundred dashboards has a few); an
    unknown value fails, as the enums do."""
    restriction = RestrictionLevel(restriction_level)
    if restriction == RestrictionLevel.EVERYONE_IN_PROJECT_CAN_EDIT or can_restrict:
        privilege = PrivilegeLevel.CAN_EDIT
    else:
        privilege = PrivilegeLevel(privilege_level or PrivilegeLevel.CAN_VIEW)
    can_edit = (
        restriction < RestrictionLevel.ONLY_COLLABORATORS_CAN_EDIT or privilege >= PrivilegeLevel.CAN_EDIT
    )
    return DashboardAccess(restriction, privilege, can_restrict, can_edit)


def ensure_can_edit(row: DashboardRow, access: TeamAccess) -> DashboardAccess:
    rights = access_for(row, access)
    if not rights.can_edit:
        raise PermissionDenied(CANNOT_EDIT)
    return rights


def ensure_can_manage_collaborators(row: DashboardRow, access: TeamAccess) -> None:
    if not access_for(row, access).can_restrict:
        raise PermissionDenied(CANNOT_EDIT)
