"""Result cache budget: each row's size, kind (saved or ad hoc) and last use, indexed for eviction.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 17:02:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("query_cache", sa.Column("size_bytes", sa.Integer(), nullable=True))
    op.add_column("query_cache", sa.Column("saved", sa.Boolean(), nullable=True))
    op.add_column("query_cache", sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True))
    # Existing rows count as ad hoc: evicted first, and marked saved again when a saved tile reads them.
    op.execute(
        "UPDATE query_cache SET size_bytes = octet_length(result::text), saved = false, "
        "last_used_at = last_refresh"
    )
    for column in ("size_bytes", "saved", "last_used_at"):
        op.alter_column("query_cache", column, nullable=False)
    # The new index leads with team_id: it serves the foreign key's cascades as the old one did.
    op.drop_index(op.f("ix_query_cache_team_id"), table_name="query_cache")
    op.create_index(
        "ix_query_cache_team_eviction",
        "query_cache",
        ["team_id", "saved", "last_used_at"],
        unique=False,
        postgresql_include=["size_bytes"],
    )


def downgrade() -> None:
    op.drop_index("ix_query_cache_team_eviction", table_name="query_cache", postgresql_include=["size_bytes"])
    op.create_index(op.f("ix_query_cache_team_id"), "query_cache", ["team_id"], unique=False)
    op.drop_column("query_cache", "last_used_at")
    op.drop_column("query_cache", "saved")
    op.drop_column("query_cache", "size_bytes")
