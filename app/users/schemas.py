"""The discovery payloads, field for field as PostHog's serializers give them (`UserSerializer`,
`OrganizationSerializer`, `OrganizationBasicSerializer`, `TeamBasicSerializer`, `ProjectBasicSerializer`).
Fields Tilecast has no notion of carry PostHog's defaults (or null)."""

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict


class TeamBasic(BaseModel):
    """A team (project) in a list, and the user's current one (PostHog's `TeamBasicSerializer`)."""

    id: int
    uuid: UUID
    organization: UUID
    project_id: int
    api_token: str
    name: str
    completed_snippet_onboarding: bool = True
    has_completed_onboarding_for: dict[str, Any] | None = None
    ingested_event: bool
    is_demo: bool = False
    timezone: str
    access_control: bool = False


class ProjectBasic(BaseModel):
    id: int
    organization_id: UUID
    name: str


class OrganizationBasic(BaseModel):
    id: UUID
    name: str
    slug: str
    logo_media_id: str | None = None
    membership_level: int | None
    members_can_use_personal_api_keys: bool = True
    is_active: bool = True
    is_not_active_reason: str | None = None
    is_pending_deletion: bool = False


class Organization(OrganizationBasic):
    """`GET /api/organizations/{id}/`: the organization with the teams and projects the key reaches in it."""

    created_at: datetime
    updated_at: datetime
    plugins_access_level: int = 9
    teams: list[TeamBasic]
    projects: list[ProjectBasic]
    available_product_features: list[dict[str, Any]] = []
    is_member_join_email_enabled: bool = True
    metadata: dict[str, Any] = {}
    customer_id: str | None = None
    enforce_2fa: bool | None = None
    members_can_invite: bool = True
    allow_publicly_shared_resources: bool = True
    member_count: int
    is_ai_data_processing_approved: bool | None = None


class User(BaseModel):
    """`GET /api/users/@me/`: the key's user, its current team and organization, and its organizations."""

    date_joined: datetime
    uuid: UUID
    distinct_id: str | None
    first_name: str
    last_name: str
    email: str
    pending_email: str | None = None
    is_email_verified: bool | None
    notification_settings: dict[str, Any] = {}
    anonymize_data: bool = False
    allow_impersonation: bool = False
    toolbar_mode: str | None = None
    has_password: bool
    id: int
    is_staff: bool = False
    is_impersonated: bool = False
    is_impersonated_until: str | None = None
    sensitive_session_expires_at: str | None = None
    team: TeamBasic | None
    organization: Organization | None
    organizations: list[OrganizationBasic]
    events_column_config: dict[str, Any] = {"active": "DEFAULT"}
    is_2fa_enabled: bool = False
    has_social_auth: bool = False
    has_sso_enforcement: bool = False
    has_seen_product_intro_for: dict[str, Any] | None = None
    scene_personalisation: list[dict[str, Any]] = []
    theme_mode: str | None = None
    hedgehog_config: dict[str, Any] | None
    role_at_organization: str | None


class UserUpdate(BaseModel):
    """`PATCH /api/users/@me/`: `set_current_team` (PostHog's name; `current_team` is taken as the same)
    moves the user's current team, which `@current` in every URL then means. Other fields are ignored."""

    model_config = ConfigDict(extra="ignore")

    set_current_team: int | str | None = None
    current_team: int | str | None = None
