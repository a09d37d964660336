"""Every ORM table. Relationships are `lazy="raise"`: repositories load what they need explicitly."""

from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy import Text as SAText
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db import Base

# Organization membership levels, as PostHog numbers them.
MEMBER, ADMIN, OWNER = 1, 8, 15


class Organization(Base):
    __tablename__ = "organization"

    id: Mapped[UUID] = mapped_column(PG_UUID(as_uuid=True), primary_key=True, default=uuid4)
    name: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class User(Base):
    __tablename__ = "app_user"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[UUID] = mapped_column(PG_UUID(as_uuid=True), unique=True, default=uuid4)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    first_name: Mapped[str] = mapped_column(String(150), default="", server_default="")
    last_name: Mapped[str] = mapped_column(String(150), default="", server_default="")
    distinct_id: Mapped[str | None] = mapped_column(String(200), unique=True)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    is_email_verified: Mapped[bool | None] = mapped_column(Boolean)
    role_at_organization: Mapped[str | None] = mapped_column(String(64))
    hedgehog_config: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    # Only a hash is ever stored; users created by `tilecast create-key` have none.
    password: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    # The team `@current` means for this user (PostHog's `current_team`); set by `create-key` and
    # `PATCH /api/users/@me/`.
    current_team_id: Mapped[int | None] = mapped_column(ForeignKey("team.id", ondelete="SET NULL"))


class Team(Base):
    """A team is both the environment and the project of PostHog's URLs: project id = team id."""

    __tablename__ = "team"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[UUID] = mapped_column(PG_UUID(as_uuid=True), unique=True, default=uuid4)
    organization_id: Mapped[UUID] = mapped_column(
        ForeignKey("organization.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    timezone: Mapped[str] = mapped_column(String(240), default="UTC", server_default="UTC")
    # The project API key (`phc_…`) that the capture endpoints take. Public by design, so stored as is.
    api_token: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    # PostHog's property filters (a list) that `filterTestAccounts: true` adds to a query.
    test_account_filters: Mapped[list[dict[str, Any]]] = mapped_column(
        JSONB, default=list, server_default=text("'[]'::jsonb")
    )
    # 0 (or unset): weeks start on Sunday; 1: on Monday.
    week_start_day: Mapped[int | None] = mapped_column(SmallInteger, default=None)

    organization: Mapped[Organization] = relationship(lazy="raise")

    @property
    def project_id(self) -> int:
        return self.id


class OrganizationMembership(Base):
    __tablename__ = "organization_membership"
    __table_args__ = (UniqueConstraint("organization_id", "user_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    organization_id: Mapped[UUID] = mapped_column(ForeignKey("organization.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id", ondelete="CASCADE"), index=True)
    level: Mapped[int] = mapped_column(SmallInteger, default=MEMBER)
    joined_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class PersonalAPIKey(Base):
    __tablename__ = "personal_api_key"

    id: Mapped[str] = mapped_column(String(50), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id", ondelete="CASCADE"), index=True)
    label: Mapped[str] = mapped_column(String(40), default="", server_default="")
    # "sha256$<hex>" of the key; the key itself is never stored.
    secure_value: Mapped[str] = mapped_column(String(300), unique=True)
    mask_value: Mapped[str] = mapped_column(String(11))
    # Null or empty means a legacy key that may do anything.
    scopes: Mapped[list[str] | None] = mapped_column(ARRAY(String(100)))
    scoped_teams: Mapped[list[int] | None] = mapped_column(ARRAY(Integer))
    scoped_organizations: Mapped[list[str] | None] = mapped_column(ARRAY(String(100)))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_rolled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    user: Mapped[User] = relationship(lazy="raise")


class DataColorTheme(Base):
    __tablename__ = "data_color_theme"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Null team means a global theme, readable by every team.
    team_id: Mapped[int | None] = mapped_column(ForeignKey("team.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    colors: Mapped[list[Any]] = mapped_column(JSONB, default=list, server_default=text("'[]'::jsonb"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id", ondelete="SET NULL"))

    created_by: Mapped[User | None] = relationship(lazy="raise")


class Dashboard(Base):
    __tablename__ = "dashboard"
    __table_args__ = (
        CheckConstraint("restriction_level IN (21, 37)", name="restriction_level"),
        Index(
            "ix_dashboard_team_list",
            "team_id",
            text("pinned DESC"),
            "name",
            postgresql_where=text("NOT deleted"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("team.id", ondelete="CASCADE"))
    name: Mapped[str | None] = mapped_column(String(400))
    description: Mapped[str] = mapped_column(SAText, default="", server_default="")
    pinned: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id", ondelete="SET NULL"))
    deleted: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    last_accessed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_refresh: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    filters: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict, server_default=text("'{}'::jsonb"))
    variables: Mapped[dict[str, Any] | None] = mapped_column(
        JSONB, default=dict, server_default=text("'{}'::jsonb")
    )
    breakdown_colors: Mapped[Any] = mapped_column(
        JSONB, nullable=True, default=list, server_default=text("'[]'::jsonb")
    )
    data_color_theme_id: Mapped[int | None] = mapped_column(
        ForeignKey("data_color_theme.id", ondelete="SET NULL"), index=True
    )
    creation_mode: Mapped[str] = mapped_column(String(16), default="default", server_default="default")
    restriction_level: Mapped[int] = mapped_column(SmallInteger, default=21, server_default=text("21"))
    # Opaque folder metadata given as `_create_in_folder` on create.
    create_in_folder: Mapped[str | None] = mapped_column(String(400))

    created_by: Mapped[User | None] = relationship(lazy="raise")


class Tag(Base):
    __tablename__ = "tag"
    __table_args__ = (UniqueConstraint("team_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("team.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(255))


class TaggedItem(Base):
    """Links a tag to an object; one nullable foreign key per kind of object."""

    __tablename__ = "tagged_item"
    __table_args__ = (
        UniqueConstraint("tag_id", "dashboard_id"),
        UniqueConstraint("tag_id", "insight_id"),
        CheckConstraint("num_nonnulls(dashboard_id, insight_id) = 1", name="exactly_one_target"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tag_id: Mapped[int] = mapped_column(ForeignKey("tag.id", ondelete="CASCADE"))
    dashboard_id: Mapped[int | None] = mapped_column(
        ForeignKey("dashboard.id", ondelete="CASCADE"), index=True
    )
    insight_id: Mapped[int | None] = mapped_column(ForeignKey("insight.id", ondelete="CASCADE"), index=True)

    tag: Mapped[Tag] = relationship(lazy="raise")


class DashboardPrivilege(Base):
    """An explicit collaborator of a dashboard with restriction level 37."""

    __tablename__ = "dashboard_privilege"
    __table_args__ = (UniqueConstraint("dashboard_id", "user_id"),)

    id: Mapped[UUID] = mapped_column(PG_UUID(as_uuid=True), primary_key=True, default=uuid4)
    dashboard_id: Mapped[int] = mapped_column(ForeignKey("dashboard.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id", ondelete="CASCADE"), index=True)
    level: Mapped[int] = mapped_column(SmallInteger)
    added_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )

    user: Mapped[User] = relationship(lazy="raise")


class DashboardView(Base):
    """Each user's last retrieve of each dashboard: the source of `last_viewed_at`."""

    __tablename__ = "dashboard_view"

    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id", ondelete="CASCADE"), primary_key=True)
    dashboard_id: Mapped[int] = mapped_column(
        ForeignKey("dashboard.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    viewed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Event(Base):
    """An ingested event. `(team_id, uuid)` is the key: a retried capture with the same uuid is one event."""

    __tablename__ = "events"
    __table_args__ = (
        # Trends filter on team and event name over a time range; `event: null` series on team and time.
        Index("ix_events_team_event_timestamp", "team_id", "event", "timestamp"),
        Index("ix_events_team_timestamp", "team_id", "timestamp"),
    )

    team_id: Mapped[int] = mapped_column(ForeignKey("team.id", ondelete="CASCADE"), primary_key=True)
    uuid: Mapped[UUID] = mapped_column(PG_UUID(as_uuid=True), primary_key=True)
    event: Mapped[str] = mapped_column(String(400))
    distinct_id: Mapped[str] = mapped_column(String(200))
    timestamp: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    properties: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    inserted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Person(Base):
    """A distinct id's properties, kept by capture from the events' `$set` (overwrites) and `$set_once` (only
    keys not yet set). Actors are distinct ids: ids are never merged."""

    __tablename__ = "person"

    team_id: Mapped[int] = mapped_column(ForeignKey("team.id", ondelete="CASCADE"), primary_key=True)
    distinct_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    properties: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class CaptureRateLimit(Base):
    """Events a team's project key sent in the current minute, when capture is rate limited: one row a team,
    restarted when a new minute begins, so every worker and host counts against the same budget."""

    __tablename__ = "capture_rate_limit"

    team_id: Mapped[int] = mapped_column(ForeignKey("team.id", ondelete="CASCADE"), primary_key=True)
    window_start: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    events: Mapped[int] = mapped_column(BigInteger)


class SharingConfiguration(Base):
    """A dashboard's share: its public token and settings. Rotating the token makes a new row; the old one
    gets `expires_at` (a grace period) and stops counting as the current one."""

    __tablename__ = "sharing_configuration"
    __table_args__ = (
        # At most one current configuration per dashboard.
        Index(
            "ix_sharing_configuration_current",
            "dashboard_id",
            unique=True,
            postgresql_where=text("expires_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("team.id", ondelete="CASCADE"), index=True)
    dashboard_id: Mapped[int] = mapped_column(ForeignKey("dashboard.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    enabled: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    access_token: Mapped[str] = mapped_column(String(400), unique=True)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    settings: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    password_required: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))


class SharePassword(Base):
    """A password that unlocks a password-protected share. Deleting one deactivates it (`is_active`); a
    rotated token's active passwords move to the new configuration."""

    __tablename__ = "share_password"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sharing_configuration_id: Mapped[int] = mapped_column(
        ForeignKey("sharing_configuration.id", ondelete="CASCADE"), index=True
    )
    # argon2id, in its own encoded form (parameters and salt included); the password itself is never stored.
    password_hash: Mapped[str] = mapped_column(String(200))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    note: Mapped[str] = mapped_column(String(100), default="", server_default="")
    is_active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))

    created_by: Mapped[User | None] = relationship(lazy="raise")


class SharingUnlockAttempt(Base):
    """Failed unlock attempts in the current minute, per share (`t:<config id>`) and per share and client
    address (`a:<config id>:<address>`): rows, so that every worker and host counts against the same limit."""

    __tablename__ = "sharing_unlock_attempt"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    window_start: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    failures: Mapped[int] = mapped_column(Integer)


class AppSecret(Base):
    """Secrets the app generates once and every worker shares (the sharing JWT key unless configured)."""

    __tablename__ = "app_secret"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[str] = mapped_column(String(400))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Insight(Base):
    __tablename__ = "insight"
    __table_args__ = (UniqueConstraint("team_id", "short_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("team.id", ondelete="CASCADE"), index=True)
    short_id: Mapped[str] = mapped_column(String(12))
    name: Mapped[str | None] = mapped_column(String(400))
    derived_name: Mapped[str | None] = mapped_column(String(400))
    description: Mapped[str | None] = mapped_column(String(400), default="", server_default="")
    query: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    # Legacy insight filters; Tilecast stores them but computes from `query`.
    filters: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict, server_default=text("'{}'::jsonb"))
    order: Mapped[int | None] = mapped_column(Integer)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    saved: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    favorited: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    is_sample: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id", ondelete="SET NULL"))
    last_modified_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    last_modified_by_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id", ondelete="SET NULL"))
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )

    created_by: Mapped[User | None] = relationship(lazy="raise", foreign_keys=[created_by_id])
    last_modified_by: Mapped[User | None] = relationship(lazy="raise", foreign_keys=[last_modified_by_id])


class Text(Base):
    """The body of a text tile."""

    __tablename__ = "text"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("team.id", ondelete="CASCADE"), index=True)
    body: Mapped[str | None] = mapped_column(String(4000))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id", ondelete="SET NULL"))
    last_modified_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    last_modified_by_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id", ondelete="SET NULL"))

    created_by: Mapped[User | None] = relationship(lazy="raise", foreign_keys=[created_by_id])
    last_modified_by: Mapped[User | None] = relationship(lazy="raise", foreign_keys=[last_modified_by_id])


class DashboardTile(Base):
    """An insight or a text on a dashboard. `deleted` is nullable, as in PostHog: null means not deleted."""

    __tablename__ = "dashboard_tile"
    __table_args__ = (
        CheckConstraint("num_nonnulls(insight_id, text_id) = 1", name="exactly_one_content"),
        Index(
            "uq_dashboard_tile_dashboard_insight",
            "dashboard_id",
            "insight_id",
            unique=True,
            postgresql_where=text("insight_id IS NOT NULL"),
        ),
        Index(
            "uq_dashboard_tile_dashboard_text",
            "dashboard_id",
            "text_id",
            unique=True,
            postgresql_where=text("text_id IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dashboard_id: Mapped[int] = mapped_column(ForeignKey("dashboard.id", ondelete="CASCADE"), index=True)
    insight_id: Mapped[int | None] = mapped_column(ForeignKey("insight.id", ondelete="CASCADE"), index=True)
    text_id: Mapped[int | None] = mapped_column(ForeignKey("text.id", ondelete="CASCADE"), index=True)
    layouts: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict, server_default=text("'{}'::jsonb"))
    color: Mapped[str | None] = mapped_column(String(400))
    filters_overrides: Mapped[dict[str, Any] | None] = mapped_column(
        JSONB, default=dict, server_default=text("'{}'::jsonb")
    )
    show_description: Mapped[bool | None] = mapped_column(Boolean)
    transparent_background: Mapped[bool | None] = mapped_column(Boolean)
    deleted: Mapped[bool | None] = mapped_column(Boolean, default=False)
    last_refresh: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class QueryCache(Base):
    """A computed query result, shared by every worker: keyed by team, timezone and the canonical query.

    Each team's rows stay within a byte budget: past it, ad-hoc results go first, then saved ones, least
    recently used first (`app.query.cache.evict`)."""

    __tablename__ = "query_cache"
    __table_args__ = (
        # The eviction order within a team, and its sizes, read from the index alone (index-only scans).
        Index(
            "ix_query_cache_team_eviction",
            "team_id",
            "saved",
            "last_used_at",
            postgresql_include=["size_bytes"],
        ),
    )

    cache_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("team.id", ondelete="CASCADE"))
    result: Mapped[Any] = mapped_column(JSONB)
    last_refresh: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # Bytes of the result's JSON text as stored (`octet_length(result::text)`): what the budget counts.
    size_bytes: Mapped[int] = mapped_column(Integer)
    # True: a saved insight's own query as its dashboards and retrieve render it. False: an ad-hoc result
    # (`filters_override`, `/query/`), evicted first (false sorts before true).
    saved: Mapped[bool] = mapped_column(Boolean)
    # Written when computed, then on a read at most once a minute: reads stay nearly write-free.
    last_used_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ViewerSession(Base):
    """A signed-in viewer's session: made by signing in with a personal API key, it reads as that key (GET and
    HEAD only). The row holds the key's id, never the key, and a hash of the session's random id (the cookie
    holds the id itself). Deleting the key deletes its sessions; a session older than the key's last roll is
    refused."""

    __tablename__ = "viewer_session"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # sha256 hex of the cookie's random value.
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    key_id: Mapped[str] = mapped_column(ForeignKey("personal_api_key.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class DashboardTemplate(Base):
    """A team's own dashboard template (PostHog's `posthog_dashboardtemplate`). The built-in templates live in
    code (`app.templates.builtin`) and are never rows; `deleted` is a soft delete (DELETE answers 405)."""

    __tablename__ = "dashboard_template"
    __table_args__ = (UniqueConstraint("template_name", "team_id"),)

    id: Mapped[UUID] = mapped_column(PG_UUID(as_uuid=True), primary_key=True, default=uuid4)
    team_id: Mapped[int | None] = mapped_column(ForeignKey("team.id", ondelete="CASCADE"), index=True)
    template_name: Mapped[str | None] = mapped_column(String(400))
    dashboard_description: Mapped[str | None] = mapped_column(String(400))
    dashboard_filters: Mapped[Any] = mapped_column(JSONB, nullable=True)
    tiles: Mapped[Any] = mapped_column(JSONB, nullable=True)
    variables: Mapped[Any] = mapped_column(JSONB, nullable=True)
    tags: Mapped[list[str] | None] = mapped_column(ARRAY(String(255)))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id", ondelete="SET NULL"))
    deleted: Mapped[bool | None] = mapped_column(Boolean, default=False, server_default=text("false"))
    image_url: Mapped[str | None] = mapped_column(String(8201))
    # `team` | `global` | `feature_flag` | '' | null, as PostHog.
    scope: Mapped[str | None] = mapped_column(String(24))
    github_url: Mapped[str | None] = mapped_column(String(8201))
    availability_contexts: Mapped[list[str] | None] = mapped_column(ARRAY(String(255)))


class DashboardSnapshot(Base):
    """The "before" state of a dashboard refresh, kept for `analyze_refresh_result`: one row per `snapshot`
    call, bound to its dashboard and user, readable until `expires_at` (30 minutes) and deleted after."""

    __tablename__ = "dashboard_snapshot"

    cache_key: Mapped[str] = mapped_column(String(200), primary_key=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("team.id", ondelete="CASCADE"))
    dashboard_id: Mapped[int] = mapped_column(ForeignKey("dashboard.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id", ondelete="CASCADE"))
    # {"<tile_id>": {"insight_name": str, "data": <the tile's result>}, ...}
    tiles: Mapped[Any] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


# `property_definition.type`, as PostHog numbers it.
PROPERTY_EVENT, PROPERTY_PERSON = 1, 2


class EventDefinition(Base):
    """An event name a team has sent, recorded by capture the first time it is seen. `last_seen_at` is
    refreshed by capture at most about once an hour per name (see `app.ingestion.definitions`)."""

    __tablename__ = "event_definition"
    __table_args__ = (UniqueConstraint("team_id", "name"),)

    id: Mapped[UUID] = mapped_column(
        PG_UUID(as_uuid=True), primary_key=True, server_default=text("gen_random_uuid()")
    )
    team_id: Mapped[int] = mapped_column(ForeignKey("team.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(400))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    last_seen_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class PropertyDefinition(Base):
    """A property key a team has sent: on events (`type` 1) or as a person property through `$set` or
    `$set_once` (`type` 2). `property_type` is inferred from the first value capture sees (null when that
    value was null, an object or a list, until a typed value comes)."""

    __tablename__ = "property_definition"
    __table_args__ = (UniqueConstraint("team_id", "type", "name"),)

    id: Mapped[UUID] = mapped_column(
        PG_UUID(as_uuid=True), primary_key=True, server_default=text("gen_random_uuid()")
    )
    team_id: Mapped[int] = mapped_column(ForeignKey("team.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(400))
    type: Mapped[int] = mapped_column(SmallInteger)
    # `String`, `Numeric`, `Boolean`, `DateTime` or null.
    property_type: Mapped[str | None] = mapped_column(String(50))
    is_numerical: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))


class EventProperty(Base):
    """A property key seen on an event name (PostHog's `posthog_eventproperty`): what `event_names` on the
    property definitions list filters by."""

    __tablename__ = "event_property"

    team_id: Mapped[int] = mapped_column(ForeignKey("team.id", ondelete="CASCADE"), primary_key=True)
    event: Mapped[str] = mapped_column(String(400), primary_key=True)
    property: Mapped[str] = mapped_column(String(400), primary_key=True)
