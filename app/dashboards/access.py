"""Who may do what to a dashboard: restriction levels, privileges and the edit checks.

No paywalls: `effective_restriction_level` is always the stored `restriction_level`.
"""

from dataclasses import dataclass

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


_RESTRICTIONS = {level.value: level for level in RestrictionLevel}
_PRIVILEGES = {level.value: level for level in PrivilegeLevel}


def access_for(
    row: DashboardRow | DashboardListRow | DashboardFullRow, access: TeamAccess
) -> DashboardAccess:
    dashboard = row.dashboard
    # Dictionaries rather than the enums' calls (a list makes a hundred); an unknown value fails as before.
    restriction = _RESTRICTIONS.get(dashboard.restriction_level) or RestrictionLevel(
        dashboard.restriction_level
    )
    can_restrict = access.is_admin or dashboard.created_by_id == access.user.id
    if restriction == RestrictionLevel.EVERYONE_IN_PROJECT_CAN_EDIT or can_restrict:
        privilege = PrivilegeLevel.CAN_EDIT
    else:
        level = row.privilege_level or PrivilegeLevel.CAN_VIEW
        privilege = _PRIVILEGES.get(level) or PrivilegeLevel(level)
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
