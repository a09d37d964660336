"""Foundation: organizations, users, teams, personal API keys, dashboards, tags, themes.

Seeds the global data color themes.

Revision ID: 0001
Revises:
Create Date: 2026-11-26 10:41:44.266706
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# PostHog's default data colors; global themes have no team and are readable by every team.
GLOBAL_THEMES = [
    {
        "name": "Default Theme",
        "colors": [
            "#1d4aff",
            "#621da6",
            "#42827e",
            "#ce0e74",
            "#f14f58",
            "#7c440e",
            "#529a0a",
            "#0476fb",
            "#fe729e",
            "#35416b",
            "#41cbc4",
            "#b64b02",
            "#e4a604",
            "#a56eff",
            "#30d5c8",
        ],
    },
    {
        "name": "Muted",
        "colors": ["#5470c6", "#91cc75", "#fac858", "#ee6666", "#73c0de", "#3ba272", "#fc8452", "#9a60b4"],
    },
]


def upgrade() -> None:
    op.create_table(
        "app_user",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uuid", sa.UUID(), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("first_name", sa.String(length=150), server_default="", nullable=False),
        sa.Column("last_name", sa.String(length=150), server_default="", nullable=False),
        sa.Column("distinct_id", sa.String(length=200), nullable=True),
        sa.Column("is_active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("is_email_verified", sa.Boolean(), nullable=True),
        sa.Column("role_at_organization", sa.String(length=64), nullable=True),
        sa.Column("hedgehog_config", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("password", sa.String(length=128), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_app_user")),
        sa.UniqueConstraint("distinct_id", name=op.f("uq_app_user_distinct_id")),
        sa.UniqueConstraint("email", name=op.f("uq_app_user_email")),
        sa.UniqueConstraint("uuid", name=op.f("uq_app_user_uuid")),
    )
    op.create_table(
        "organization",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_organization")),
    )
    op.create_table(
        "organization_membership",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organization_id", sa.UUID(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("level", sa.SmallInteger(), nullable=False),
        sa.Column("joined_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organization.id"],
            name=op.f("fk_organization_membership_organization_id_organization"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["app_user.id"],
            name=op.f("fk_organization_membership_user_id_app_user"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_organization_membership")),
        sa.UniqueConstraint(
            "organization_id", "user_id", name=op.f("uq_organization_membership_organization_id_user_id")
        ),
    )
    op.create_index(
        op.f("ix_organization_membership_user_id"), "organization_membership", ["user_id"], unique=False
    )
    op.create_table(
        "personal_api_key",
        sa.Column("id", sa.String(length=50), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("label", sa.String(length=40), server_default="", nullable=False),
        sa.Column("secure_value", sa.String(length=300), nullable=False),
        sa.Column("mask_value", sa.String(length=11), nullable=False),
        sa.Column("scopes", postgresql.ARRAY(sa.String(length=100)), nullable=True),
        sa.Column("scoped_teams", postgresql.ARRAY(sa.Integer()), nullable=True),
        sa.Column("scoped_organizations", postgresql.ARRAY(sa.String(length=100)), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_rolled_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["app_user.id"],
            name=op.f("fk_personal_api_key_user_id_app_user"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_personal_api_key")),
        sa.UniqueConstraint("secure_value", name=op.f("uq_personal_api_key_secure_value")),
    )
    op.create_index(op.f("ix_personal_api_key_user_id"), "personal_api_key", ["user_id"], unique=False)
    op.create_table(
        "team",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uuid", sa.UUID(), nullable=False),
        sa.Column("organization_id", sa.UUID(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("timezone", sa.String(length=240), server_default="UTC", nullable=False),
        sa.Column("api_token", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organization.id"],
            name=op.f("fk_team_organization_id_organization"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_team")),
        sa.UniqueConstraint("api_token", name=op.f("uq_team_api_token")),
        sa.UniqueConstraint("uuid", name=op.f("uq_team_uuid")),
    )
    op.create_index(op.f("ix_team_organization_id"), "team", ["organization_id"], unique=False)
    op.create_table(
        "data_color_theme",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("team_id", sa.Integer(), nullable=True),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column(
            "colors",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'[]'::jsonb"),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["app_user.id"],
            name=op.f("fk_data_color_theme_created_by_id_app_user"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["team_id"], ["team.id"], name=op.f("fk_data_color_theme_team_id_team"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_data_color_theme")),
    )
    op.create_index(op.f("ix_data_color_theme_team_id"), "data_color_theme", ["team_id"], unique=False)
    op.create_table(
        "tag",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("team_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.ForeignKeyConstraint(
            ["team_id"], ["team.id"], name=op.f("fk_tag_team_id_team"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tag")),
        sa.UniqueConstraint("team_id", "name", name=op.f("uq_tag_team_id_name")),
    )
    op.create_table(
        "dashboard",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("team_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=400), nullable=True),
        sa.Column("description", sa.Text(), server_default="", nullable=False),
        sa.Column("pinned", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("deleted", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("last_accessed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_refresh", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "filters",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column(
            "variables",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=True,
        ),
        sa.Column(
            "breakdown_colors",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'[]'::jsonb"),
            nullable=True,
        ),
        sa.Column("data_color_theme_id", sa.Integer(), nullable=True),
        sa.Column("creation_mode", sa.String(length=16), server_default="default", nullable=False),
        sa.Column("restriction_level", sa.SmallInteger(), server_default=sa.text("21"), nullable=False),
        sa.Column("create_in_folder", sa.String(length=400), nullable=True),
        sa.CheckConstraint("restriction_level IN (21, 37)", name=op.f("ck_dashboard_restriction_level")),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["app_user.id"],
            name=op.f("fk_dashboard_created_by_id_app_user"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["data_color_theme_id"],
            ["data_color_theme.id"],
            name=op.f("fk_dashboard_data_color_theme_id_data_color_theme"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["team_id"], ["team.id"], name=op.f("fk_dashboard_team_id_team"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dashboard")),
    )
    op.create_index(
        op.f("ix_dashboard_data_color_theme_id"), "dashboard", ["data_color_theme_id"], unique=False
    )
    op.create_index(
        "ix_dashboard_team_list",
        "dashboard",
        ["team_id", sa.literal_column("pinned DESC"), "name"],
        unique=False,
        postgresql_where=sa.text("NOT deleted"),
    )
    op.create_table(
        "dashboard_privilege",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("dashboard_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("level", sa.SmallInteger(), nullable=False),
        sa.Column("added_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["dashboard_id"],
            ["dashboard.id"],
            name=op.f("fk_dashboard_privilege_dashboard_id_dashboard"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["app_user.id"],
            name=op.f("fk_dashboard_privilege_user_id_app_user"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dashboard_privilege")),
        sa.UniqueConstraint(
            "dashboard_id", "user_id", name=op.f("uq_dashboard_privilege_dashboard_id_user_id")
        ),
    )
    op.create_index(op.f("ix_dashboard_privilege_user_id"), "dashboard_privilege", ["user_id"], unique=False)
    op.create_table(
        "dashboard_view",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("dashboard_id", sa.Integer(), nullable=False),
        sa.Column("viewed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["dashboard_id"],
            ["dashboard.id"],
            name=op.f("fk_dashboard_view_dashboard_id_dashboard"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["app_user.id"], name=op.f("fk_dashboard_view_user_id_app_user"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("user_id", "dashboard_id", name=op.f("pk_dashboard_view")),
    )
    op.create_index(op.f("ix_dashboard_view_dashboard_id"), "dashboard_view", ["dashboard_id"], unique=False)
    op.create_table(
        "tagged_item",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tag_id", sa.Integer(), nullable=False),
        sa.Column("dashboard_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["dashboard_id"],
            ["dashboard.id"],
            name=op.f("fk_tagged_item_dashboard_id_dashboard"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tag_id"], ["tag.id"], name=op.f("fk_tagged_item_tag_id_tag"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tagged_item")),
        sa.UniqueConstraint("tag_id", "dashboard_id", name=op.f("uq_tagged_item_tag_id_dashboard_id")),
    )
    op.create_index(op.f("ix_tagged_item_dashboard_id"), "tagged_item", ["dashboard_id"], unique=False)

    theme = sa.table(
        "data_color_theme",
        sa.column("name", sa.String),
        sa.column("colors", postgresql.JSONB),
        sa.column("team_id", sa.Integer),
    )
    op.bulk_insert(theme, [{**t, "team_id": None} for t in GLOBAL_THEMES])


def downgrade() -> None:
    op.drop_index(op.f("ix_tagged_item_dashboard_id"), table_name="tagged_item")
    op.drop_table("tagged_item")
    op.drop_index(op.f("ix_dashboard_view_dashboard_id"), table_name="dashboard_view")
    op.drop_table("dashboard_view")
    op.drop_index(op.f("ix_dashboard_privilege_user_id"), table_name="dashboard_privilege")
    op.drop_table("dashboard_privilege")
    op.drop_index("ix_dashboard_team_list", table_name="dashboard", postgresql_where=sa.text("NOT deleted"))
    op.drop_index(op.f("ix_dashboard_data_color_theme_id"), table_name="dashboard")
    op.drop_table("dashboard")
    op.drop_table("tag")
    op.drop_index(op.f("ix_data_color_theme_team_id"), table_name="data_color_theme")
    op.drop_table("data_color_theme")
    op.drop_index(op.f("ix_team_organization_id"), table_name="team")
    op.drop_table("team")
    op.drop_index(op.f("ix_personal_api_key_user_id"), table_name="personal_api_key")
    op.drop_table("personal_api_key")
    op.drop_index(op.f("ix_organization_membership_user_id"), table_name="organization_membership")
    op.drop_table("organization_membership")
    op.drop_table("organization")
    op.drop_table("app_user")
