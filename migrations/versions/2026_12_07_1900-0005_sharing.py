"""Sharing: share configurations, share passwords, unlock attempt counters, generated app secrets.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07 19:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sharing_configuration",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("team_id", sa.Integer(), nullable=False),
        sa.Column("dashboard_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("enabled", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("access_token", sa.String(length=400), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("settings", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("password_required", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.ForeignKeyConstraint(
            ["dashboard_id"],
            ["dashboard.id"],
            name=op.f("fk_sharing_configuration_dashboard_id_dashboard"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["team_id"], ["team.id"], name=op.f("fk_sharing_configuration_team_id_team"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sharing_configuration")),
        sa.UniqueConstraint("access_token", name=op.f("uq_sharing_configuration_access_token")),
    )
    op.create_index(
        op.f("ix_sharing_configuration_team_id"), "sharing_configuration", ["team_id"], unique=False
    )
    op.create_index(
        "ix_sharing_configuration_current",
        "sharing_configuration",
        ["dashboard_id"],
        unique=True,
        postgresql_where=sa.text("expires_at IS NULL"),
    )
    op.create_table(
        "share_password",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sharing_configuration_id", sa.Integer(), nullable=False),
        sa.Column("password_hash", sa.String(length=200), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("note", sa.String(length=100), server_default="", nullable=False),
        sa.Column("is_active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["app_user.id"],
            name=op.f("fk_share_password_created_by_id_app_user"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["sharing_configuration_id"],
            ["sharing_configuration.id"],
            name=op.f("fk_share_password_sharing_configuration_id_sharing_configuration"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_share_password")),
    )
    op.create_index(
        op.f("ix_share_password_sharing_configuration_id"),
        "share_password",
        ["sharing_configuration_id"],
        unique=False,
    )
    op.create_table(
        "sharing_unlock_attempt",
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_sharing_unlock_attempt")),
    )
    op.create_table(
        "app_secret",
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("value", sa.String(length=400), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_app_secret")),
    )


def downgrade() -> None:
    op.drop_table("app_secret")
    op.drop_table("sharing_unlock_attempt")
    op.drop_index(op.f("ix_share_password_sharing_configuration_id"), table_name="share_password")
    op.drop_table("share_password")
    op.drop_index(
        "ix_sharing_configuration_current",
        table_name="sharing_configuration",
        postgresql_where=sa.text("expires_at IS NULL"),
    )
    op.drop_index(op.f("ix_sharing_configuration_team_id"), table_name="sharing_configuration")
    op.drop_table("sharing_configuration")
