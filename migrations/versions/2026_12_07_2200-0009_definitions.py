"""Event and property definitions, kept by capture: the event names and property keys each team has sent,
and which properties were seen on which events.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 22:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "event_definition",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("team_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=400), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["team_id"], ["team.id"], name=op.f("fk_event_definition_team_id_team"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_event_definition")),
        sa.UniqueConstraint("team_id", "name", name=op.f("uq_event_definition_team_id_name")),
    )
    op.create_table(
        "property_definition",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("team_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=400), nullable=False),
        sa.Column("type", sa.SmallInteger(), nullable=False),
        sa.Column("property_type", sa.String(length=50), nullable=True),
        sa.Column("is_numerical", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.ForeignKeyConstraint(
            ["team_id"], ["team.id"], name=op.f("fk_property_definition_team_id_team"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_property_definition")),
        sa.UniqueConstraint("team_id", "type", "name", name=op.f("uq_property_definition_team_id_type_name")),
    )
    op.create_table(
        "event_property",
        sa.Column("team_id", sa.Integer(), nullable=False),
        sa.Column("event", sa.String(length=400), nullable=False),
        sa.Column("property", sa.String(length=400), nullable=False),
        sa.ForeignKeyConstraint(
            ["team_id"], ["team.id"], name=op.f("fk_event_property_team_id_team"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("team_id", "event", "property", name=op.f("pk_event_property")),
    )


def downgrade() -> None:
    op.drop_table("event_property")
    op.drop_table("property_definition")
    op.drop_table("event_definition")
