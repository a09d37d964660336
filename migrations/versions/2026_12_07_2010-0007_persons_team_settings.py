"""Persons (each distinct id's properties, from `$set` and `$set_once`) and the team settings queries read:
test-account filters and the week's first day.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07 20:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "person",
        sa.Column("team_id", sa.Integer(), nullable=False),
        sa.Column("distinct_id", sa.String(length=200), nullable=False),
        sa.Column(
            "properties",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["team_id"], ["team.id"], name=op.f("fk_person_team_id_team"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("team_id", "distinct_id", name=op.f("pk_person")),
    )
    op.add_column(
        "team",
        sa.Column(
            "test_account_filters",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'[]'::jsonb"),
            nullable=False,
        ),
    )
    op.add_column("team", sa.Column("week_start_day", sa.SmallInteger(), nullable=True))


def downgrade() -> None:
    op.drop_column("team", "week_start_day")
    op.drop_column("team", "test_account_filters")
    op.drop_table("person")
