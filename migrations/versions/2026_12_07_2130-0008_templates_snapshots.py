"""Users' current team (what `@current` means), dashboard templates (a team's own; the built-in ones live
in code) and dashboard snapshots (the "before" state `analyze_refresh_result` compares against, kept 30
minutes).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 21:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("app_user", sa.Column("current_team_id", sa.Integer(), nullable=True))
    op.create_foreign_key(
        op.f("fk_app_user_current_team_id_team"),
        "app_user",
        "team",
        ["current_team_id"],
        ["id"],
        ondelete="SET NULL",
    )
    op.create_table(
        "dashboard_template",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("team_id", sa.Integer(), nullable=True),
        sa.Column("template_name", sa.String(length=400), nullable=True),
        sa.Column("dashboard_description", sa.String(length=400), nullable=True),
        sa.Column("dashboard_filters", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("tiles", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("variables", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("tags", postgresql.ARRAY(sa.String(length=255)), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("deleted", sa.Boolean(), server_default=sa.text("false"), nullable=True),
        sa.Column("image_url", sa.String(length=8201), nullable=True),
        sa.Column("scope", sa.String(length=24), nullable=True),
        sa.Column("github_url", sa.String(length=8201), nullable=True),
        sa.Column("availability_contexts", postgresql.ARRAY(sa.String(length=255)), nullable=True),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["app_user.id"],
            name=op.f("fk_dashboard_template_created_by_id_app_user"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["team_id"], ["team.id"], name=op.f("fk_dashboard_template_team_id_team"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dashboard_template")),
        sa.UniqueConstraint(
            "template_name", "team_id", name=op.f("uq_dashboard_template_template_name_team_id")
        ),
    )
    op.create_index(op.f("ix_dashboard_template_team_id"), "dashboard_template", ["team_id"], unique=False)
    op.create_table(
        "dashboard_snapshot",
        sa.Column("cache_key", sa.String(length=200), nullable=False),
        sa.Column("team_id", sa.Integer(), nullable=False),
        sa.Column("dashboard_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("tiles", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["dashboard_id"],
            ["dashboard.id"],
            name=op.f("fk_dashboard_snapshot_dashboard_id_dashboard"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["team_id"], ["team.id"], name=op.f("fk_dashboard_snapshot_team_id_team"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["app_user.id"],
            name=op.f("fk_dashboard_snapshot_user_id_app_user"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("cache_key", name=op.f("pk_dashboard_snapshot")),
    )
    op.create_index(
        op.f("ix_dashboard_snapshot_dashboard_id"), "dashboard_snapshot", ["dashboard_id"], unique=False
    )
    op.create_index(
        op.f("ix_dashboard_snapshot_expires_at"), "dashboard_snapshot", ["expires_at"], unique=False
    )


def downgrade() -> None:
    op.drop_table("dashboard_snapshot")
    op.drop_table("dashboard_template")
    op.drop_constraint(op.f("fk_app_user_current_team_id_team"), "app_user", type_="foreignkey")
    op.drop_column("app_user", "current_team_id")
