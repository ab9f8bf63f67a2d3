"""The LLM call cache (``--llm-cache``) and where responses and ratings came from it; a
results version per experiment, raised by triggers on every write to its responses and
ratings (computed results are kept per version).

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


#: The triggers as of this revision (``store.schema.RESULTS_TRIGGERS``; a test compares a
#: migrated database with a new one).
_SQLITE_TRIGGERS = [
    f"CREATE TRIGGER tr_{table}_{op.lower()}_results AFTER {op} ON {table} "
    f"BEGIN UPDATE experiments SET results_version = results_version + 1 WHERE id = "
    f"{target.format(row=row)}; END"
    for table, target in (
        ("responses", "{row}.experiment_id"),
        ("ratings", "(SELECT experiment_id FROM responses WHERE id = {row}.response_id)"),
    )
    for op, row in (("INSERT", "NEW"), ("UPDATE", "NEW"), ("DELETE", "OLD"))
]
_POSTGRESQL_TRIGGERS = [
    "CREATE FUNCTION elluminate_response_results() RETURNS trigger LANGUAGE plpgsql AS $$ "
    "BEGIN UPDATE experiments SET results_version = results_version + 1 WHERE id = "
    "CASE WHEN TG_OP = 'DELETE' THEN OLD.experiment_id ELSE NEW.experiment_id END; "
    "RETURN NULL; END $$",
    "CREATE FUNCTION elluminate_rating_results() RETURNS trigger LANGUAGE plpgsql AS $$ "
    "BEGIN UPDATE experiments SET results_version = results_version + 1 WHERE id = "
    "(SELECT experiment_id FROM responses WHERE id = "
    "CASE WHEN TG_OP = 'DELETE' THEN OLD.response_id ELSE NEW.response_id END); "
    "RETURN NULL; END $$",
    "CREATE TRIGGER tr_responses_results AFTER INSERT OR UPDATE OR DELETE ON responses "
    "FOR EACH ROW EXECUTE FUNCTION elluminate_response_results()",
    "CREATE TRIGGER tr_ratings_results AFTER INSERT OR UPDATE OR DELETE ON ratings "
    "FOR EACH ROW EXECUTE FUNCTION elluminate_rating_results()",
]


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
    op.add_column(
        "experiments",
        sa.Column("results_version", sa.Integer(), server_default=sa.text("0"), nullable=False),
    )
    dialect = op.get_context().dialect.name
    for statement in _SQLITE_TRIGGERS if dialect == "sqlite" else _POSTGRESQL_TRIGGERS:
        op.execute(statement)


def downgrade() -> None:
    if op.get_context().dialect.name == "sqlite":
        for statement in _SQLITE_TRIGGERS:
            op.execute("DROP TRIGGER " + statement.split()[2])
    else:
        op.execute("DROP TRIGGER tr_ratings_results ON ratings")
        op.execute("DROP TRIGGER tr_responses_results ON responses")
        op.execute("DROP FUNCTION elluminate_rating_results()")
        op.execute("DROP FUNCTION elluminate_response_results()")
    with op.batch_alter_table("experiments") as batch:
        batch.drop_column("results_version")
    op.drop_index("ix_llm_cache_expires", table_name="llm_cache")
    op.drop_table("llm_cache")
    for table in ("ratings", "responses"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("from_cache")
