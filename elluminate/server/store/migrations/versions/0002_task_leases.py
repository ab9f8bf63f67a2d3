"""Tasks any replica can run: owner, fence, lease, cancel flag; replicas; log cursors.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

#: timestamptz on PostgreSQL, ISO-8601 text on SQLite (as ``store.schema.Timestamp``)
TIMESTAMP = sa.DateTime(timezone=True).with_variant(sa.Text(), "sqlite")


def upgrade() -> None:
    # plain ADD COLUMN (SQLite supports it): a batch rebuild would lose the ON DELETE rules
    op.add_column("tasks", sa.Column("owner", sa.Text(), nullable=True))
    op.add_column(
        "tasks", sa.Column("fence", sa.Integer(), server_default=sa.text("0"), nullable=False)
    )
    op.add_column("tasks", sa.Column("lease_expires_at", TIMESTAMP, nullable=True))
    op.add_column(
        "tasks",
        sa.Column("cancel_requested", sa.Boolean(), server_default=sa.false(), nullable=False),
    )
    op.add_column("tasks", sa.Column("cancel_reason", sa.Text(), nullable=True))
    op.create_index("ix_tasks_owner", "tasks", ["owner"], unique=False)
    op.create_table(
        "replicas",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("host", sa.Text(), server_default="", nullable=False),
        sa.Column("pid", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("started_at", TIMESTAMP, nullable=False),
        sa.Column("heartbeat_at", TIMESTAMP, nullable=False),
        sa.Column("permits", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("demand", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "task_cursors",
        sa.Column("task_id", sa.Text(), nullable=False),
        sa.Column("consumer", sa.Text(), nullable=False),
        sa.Column("last_log_id", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.ForeignKeyConstraint(["task_id"], ["tasks.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("task_id", "consumer"),
    )


def downgrade() -> None:
    op.drop_table("task_cursors")
    op.drop_table("replicas")
    with op.batch_alter_table("tasks") as batch:
        batch.drop_index("ix_tasks_owner")
        for column in ("cancel_reason", "cancel_requested", "lease_expires_at", "fence", "owner"):
            batch.drop_column(column)
