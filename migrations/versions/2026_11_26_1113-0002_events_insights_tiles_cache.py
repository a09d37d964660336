"""Events, insights, texts, dashboard tiles and the query result cache; tags on insights.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 11:13:49.613032
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("team_id", sa.Integer(), nullable=False),
        sa.Column("uuid", sa.UUID(), nullable=False),
        sa.Column("event", sa.String(length=400), nullable=False),
        sa.Column("distinct_id", sa.String(length=200), nullable=False),
        sa.Column("timestamp", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "properties",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("inserted_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["team_id"], ["team.id"], name=op.f("fk_events_team_id_team"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("team_id", "uuid", name=op.f("pk_events")),
    )
    op.create_index(
        "ix_events_team_event_timestamp", "events", ["team_id", "event", "timestamp"], unique=False
    )
    op.create_index("ix_events_team_timestamp", "events", ["team_id", "timestamp"], unique=False)
    op.create_table(
        "insight",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("team_id", sa.Integer(), nullable=False),
        sa.Column("short_id", sa.String(length=12), nullable=False),
        sa.Column("name", sa.String(length=400), nullable=True),
        sa.Column("derived_name", sa.String(length=400), nullable=True),
        sa.Column("description", sa.String(length=400), server_default="", nullable=True),
        sa.Column("query", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column(
            "filters",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("order", sa.Integer(), nullable=True),
        sa.Column("deleted", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("saved", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("favorited", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("is_sample", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column(
            "last_modified_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.Column("last_modified_by_id", sa.Integer(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["app_user.id"],
            name=op.f("fk_insight_created_by_id_app_user"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["last_modified_by_id"],
            ["app_user.id"],
            name=op.f("fk_insight_last_modified_by_id_app_user"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["team_id"], ["team.id"], name=op.f("fk_insight_team_id_team"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_insight")),
        sa.UniqueConstraint("team_id", "short_id", name=op.f("uq_insight_team_id_short_id")),
    )
    op.create_index(op.f("ix_insight_team_id"), "insight", ["team_id"], unique=False)
    op.create_table(
        "query_cache",
        sa.Column("cache_key", sa.String(length=64), nullable=False),
        sa.Column("team_id", sa.Integer(), nullable=False),
        sa.Column("result", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("last_refresh", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["team_id"], ["team.id"], name=op.f("fk_query_cache_team_id_team"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("cache_key", name=op.f("pk_query_cache")),
    )
    op.create_index(op.f("ix_query_cache_team_id"), "query_cache", ["team_id"], unique=False)
    op.create_table(
        "text",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("team_id", sa.Integer(), nullable=False),
        sa.Column("body", sa.String(length=4000), nullable=True),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column(
            "last_modified_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.Column("last_modified_by_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["app_user.id"],
            name=op.f("fk_text_created_by_id_app_user"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["last_modified_by_id"],
            ["app_user.id"],
            name=op.f("fk_text_last_modified_by_id_app_user"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["team_id"], ["team.id"], name=op.f("fk_text_team_id_team"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_text")),
    )
    op.create_index(op.f("ix_text_team_id"), "text", ["team_id"], unique=False)
    op.create_table(
        "dashboard_tile",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dashboard_id", sa.Integer(), nullable=False),
        sa.Column("insight_id", sa.Integer(), nullable=True),
        sa.Column("text_id", sa.Integer(), nullable=True),
        sa.Column(
            "layouts",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("color", sa.String(length=400), nullable=True),
        sa.Column(
            "filters_overrides",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=True,
        ),
        sa.Column("show_description", sa.Boolean(), nullable=True),
        sa.Column("transparent_background", sa.Boolean(), nullable=True),
        sa.Column("deleted", sa.Boolean(), nullable=True),
        sa.Column("last_refresh", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "num_nonnulls(insight_id, text_id) = 1", name=op.f("ck_dashboard_tile_exactly_one_content")
        ),
        sa.ForeignKeyConstraint(
            ["dashboard_id"],
            ["dashboard.id"],
            name=op.f("fk_dashboard_tile_dashboard_id_dashboard"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["insight_id"],
            ["insight.id"],
            name=op.f("fk_dashboard_tile_insight_id_insight"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["text_id"], ["text.id"], name=op.f("fk_dashboard_tile_text_id_text"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dashboard_tile")),
    )
    op.create_index(op.f("ix_dashboard_tile_dashboard_id"), "dashboard_tile", ["dashboard_id"], unique=False)
    op.create_index(op.f("ix_dashboard_tile_insight_id"), "dashboard_tile", ["insight_id"], unique=False)
    op.create_index(op.f("ix_dashboard_tile_text_id"), "dashboard_tile", ["text_id"], unique=False)
    op.create_index(
        "uq_dashboard_tile_dashboard_insight",
        "dashboard_tile",
        ["dashboard_id", "insight_id"],
        unique=True,
        postgresql_where=sa.text("insight_id IS NOT NULL"),
    )
    op.create_index(
        "uq_dashboard_tile_dashboard_text",
        "dashboard_tile",
        ["dashboard_id", "text_id"],
        unique=True,
        postgresql_where=sa.text("text_id IS NOT NULL"),
    )
    op.add_column("tagged_item", sa.Column("insight_id", sa.Integer(), nullable=True))
    op.create_index(op.f("ix_tagged_item_insight_id"), "tagged_item", ["insight_id"], unique=False)
    op.create_unique_constraint(
        op.f("uq_tagged_item_tag_id_insight_id"), "tagged_item", ["tag_id", "insight_id"]
    )
    op.create_foreign_key(
        op.f("fk_tagged_item_insight_id_insight"),
        "tagged_item",
        "insight",
        ["insight_id"],
        ["id"],
        ondelete="CASCADE",
    )
    op.create_check_constraint(
        op.f("ck_tagged_item_exactly_one_target"), "tagged_item", "num_nonnulls(dashboard_id, insight_id) = 1"
    )


def downgrade() -> None:
    op.drop_constraint(op.f("ck_tagged_item_exactly_one_target"), "tagged_item", type_="check")
    op.drop_constraint(op.f("fk_tagged_item_insight_id_insight"), "tagged_item", type_="foreignkey")
    op.drop_constraint(op.f("uq_tagged_item_tag_id_insight_id"), "tagged_item", type_="unique")
    op.drop_index(op.f("ix_tagged_item_insight_id"), table_name="tagged_item")
    op.drop_column("tagged_item", "insight_id")
    op.drop_index(
        "uq_dashboard_tile_dashboard_text",
        table_name="dashboard_tile",
        postgresql_where=sa.text("text_id IS NOT NULL"),
    )
    op.drop_index(
        "uq_dashboard_tile_dashboard_insight",
        table_name="dashboard_tile",
        postgresql_where=sa.text("insight_id IS NOT NULL"),
    )
    op.drop_index(op.f("ix_dashboard_tile_text_id"), table_name="dashboard_tile")
    op.drop_index(op.f("ix_dashboard_tile_insight_id"), table_name="dashboard_tile")
    op.drop_index(op.f("ix_dashboard_tile_dashboard_id"), table_name="dashboard_tile")
    op.drop_table("dashboard_tile")
    op.drop_index(op.f("ix_text_team_id"), table_name="text")
    op.drop_table("text")
    op.drop_index(op.f("ix_query_cache_team_id"), table_name="query_cache")
    op.drop_table("query_cache")
    op.drop_index(op.f("ix_insight_team_id"), table_name="insight")
    op.drop_table("insight")
    op.drop_index("ix_events_team_timestamp", table_name="events")
    op.drop_index("ix_events_team_event_timestamp", table_name="events")
    op.drop_table("events")
