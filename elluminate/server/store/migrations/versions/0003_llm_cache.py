"""The LLM call cache (``--llm-cache``) and where responses and ratings came from it.

Revision ID: 0003_llm_cache
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_llm_cache"
down_revision = "0002"
branch_labels = None
depends_on = None

#: timestamptz on PostgreSQL, ISO-8601 text on SQLite (as ``store.schema.Timestamp``)
TIMESTAMP = sa.DateTime(timezone=True).with_variant(sa.Text(), "sqlite")


def upgrade() -> None:
    # plain ADD COLUMN (SQLite supports it): a batch rebuild would lose the ON DELETE rules
    for table in ("responses", "ratings"):
        op.add_column(
            table,
            sa.Column("from_cache", sa.Boolean(), server_default=sa.false(), nullable=False),
        )
    op.create_table(
        "llm_cache",
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("model", sa.Text(), server_default="", nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("expires_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_index("ix_llm_cache_expires", "llm_cache", ["expires_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_llm_cache_expires", table_name="llm_cache")
    op.drop_table("llm_cache")
    for table in ("ratings", "responses"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("from_cache")
