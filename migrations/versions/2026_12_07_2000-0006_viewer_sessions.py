"""Signed-in viewers' sessions: a key's id and a hash of the session's random id.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07 20:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "viewer_session",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("key_id", sa.String(length=50), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["key_id"],
            ["personal_api_key.id"],
            name=op.f("fk_viewer_session_key_id_personal_api_key"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_viewer_session")),
        sa.UniqueConstraint("secret_hash", name=op.f("uq_viewer_session_secret_hash")),
    )
    op.create_index(op.f("ix_viewer_session_key_id"), "viewer_session", ["key_id"], unique=False)
    op.create_index(op.f("ix_viewer_session_expires_at"), "viewer_session", ["expires_at"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_viewer_session_expires_at"), table_name="viewer_session")
    op.drop_index(op.f("ix_viewer_session_key_id"), table_name="viewer_session")
    op.drop_table("viewer_session")
