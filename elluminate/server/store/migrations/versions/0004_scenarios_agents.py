"""Issue 14: scenario sets, agent results and multi-turn responses.

* ``scenario_sets``: a named set whose scenarios are the rows of a hidden backing collection.
* ``experiments``: ``scenario_set_id`` and ``persona_group_id`` (MULTI_TURN sources) and
  ``definition`` (the frozen tasks and criteria of an AGENTIC experiment).
* ``responses``: ``trial`` joins the unique key, which becomes (experiment, row, epoch,
  trial): an AGENTIC upload appends with the next trial number, a MULTI_TURN conversation
  uses its persona's row id, STANDARD responses keep trial 0 (so (experiment, row, epoch)
  stays unique for them); ``persona_id``, and what an agent run reported: ``reward``,
  ``steps``, ``cost_usd``, ``result_metadata``.

Revision ID: 0004
Revises: 0003_llm_cache
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003_llm_cache"
branch_labels = None
depends_on = None

#: timestamptz on PostgreSQL, ISO-8601 text on SQLite (as ``store.schema.Timestamp``)
TIMESTAMP = sa.DateTime(timezone=True).with_variant(sa.Text(), "sqlite")
_LIVE = sa.text("deleted_at IS NULL")
_IN_EXPERIMENT = sa.text("experiment_id IS NOT NULL")


def _add_reference(table: str, column: str, target: str) -> None:
    """A nullable integer column referencing ``target`` (``table.id``).

    SQLite cannot add a constraint to a table, but ``ADD COLUMN ... REFERENCES`` is plain
    DDL there (a batch rebuild would lose the tables' ON DELETE rules); PostgreSQL adds the
    column, then the constraint under the name it would have given it itself.
    """
    target_table, target_column = target.split(".")
    if op.get_bind().dialect.name == "sqlite":
        op.execute(
            f"ALTER TABLE {table} ADD COLUMN {column} INTEGER "
            f"REFERENCES {target_table} ({target_column})"
        )
        return
    op.add_column(table, sa.Column(column, sa.Integer(), nullable=True))
    op.create_foreign_key(f"{table}_{column}_fkey", table, target_table, [column], [target_column])


def upgrade() -> None:
    op.create_table(
        "scenario_sets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), server_default="", nullable=False),
        sa.Column("collection_id", sa.Integer(), nullable=False),
        sa.Column("read_only", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("is_platform_builtin", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("version", sa.Text(), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.Column("deleted_at", TIMESTAMP, nullable=True),
        sa.ForeignKeyConstraint(["collection_id"], ["collections.id"]),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_scenario_sets_collection", "scenario_sets", ["collection_id"])
    op.create_index("ix_scenario_sets_project_name", "scenario_sets", ["project_id", "name"])
    op.create_index(
        "ux_scenario_sets_name",
        "scenario_sets",
        ["project_id", "name"],
        unique=True,
        sqlite_where=_LIVE,
        postgresql_where=_LIVE,
    )

    _add_reference("experiments", "scenario_set_id", "scenario_sets.id")
    _add_reference("experiments", "persona_group_id", "collections.id")
    op.add_column("experiments", sa.Column("definition", sa.Text(), nullable=True))
    op.create_index("ix_experiments_scenario_set", "experiments", ["scenario_set_id"])
    op.create_index("ix_experiments_persona_group", "experiments", ["persona_group_id"])

    op.add_column(
        "responses", sa.Column("trial", sa.Integer(), server_default=sa.text("0"), nullable=False)
    )
    _add_reference("responses", "persona_id", "template_variables.id")
    op.add_column("responses", sa.Column("reward", sa.Float(), nullable=True))
    op.add_column("responses", sa.Column("steps", sa.Integer(), nullable=True))
    op.add_column("responses", sa.Column("cost_usd", sa.Float(), nullable=True))
    op.add_column("responses", sa.Column("result_metadata", sa.Text(), nullable=True))
    op.create_index("ix_responses_persona", "responses", ["persona_id"])
    op.drop_index("ux_responses_row_epoch", table_name="responses")
    op.create_index(
        "ux_responses_slot",
        "responses",
        ["experiment_id", "template_variables_id", "epoch", "trial"],
        unique=True,
        sqlite_where=_IN_EXPERIMENT,
        postgresql_where=_IN_EXPERIMENT,
    )


def downgrade() -> None:
    op.drop_index("ux_responses_slot", table_name="responses")
    op.execute("DELETE FROM responses WHERE trial <> 0")
    op.create_index(
        "ux_responses_row_epoch",
        "responses",
        ["experiment_id", "template_variables_id", "epoch"],
        unique=True,
        sqlite_where=_IN_EXPERIMENT,
        postgresql_where=_IN_EXPERIMENT,
    )
    op.drop_index("ix_responses_persona", table_name="responses")
    op.drop_index("ix_experiments_persona_group", table_name="experiments")
    op.drop_index("ix_experiments_scenario_set", table_name="experiments")
    with op.batch_alter_table("responses") as batch:
        for column in ("result_metadata", "cost_usd", "steps", "reward", "persona_id", "trial"):
            batch.drop_column(column)
    with op.batch_alter_table("experiments") as batch:
        for column in ("definition", "persona_group_id", "scenario_set_id"):
            batch.drop_column(column)
    op.drop_table("scenario_sets")
