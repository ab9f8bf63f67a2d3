"""Baseline: the schema of databases made by schema version 2 (before Alembic).

Revision ID: 0001
Revises:
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

#: timestamptz on PostgreSQL, ISO-8601 text on SQLite (as ``store.schema.Timestamp``)
TIMESTAMP = sa.DateTime(timezone=True).with_variant(sa.Text(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "organizations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("domain", sa.Text(), server_default="", nullable=False),
        sa.Column("stripe_subscription_id", sa.Text(), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "projects",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), server_default="", nullable=False),
        sa.Column("public_in_org", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("is_default", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(["organization_id"], ["organizations.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_projects_name", "projects", ["organization_id", "name"], unique=False)
    op.create_index("ix_projects_org", "projects", ["organization_id"], unique=False)
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("key_hash", sa.Text(), nullable=False),
        sa.Column("prefix", sa.Text(), nullable=False),
        sa.Column("is_bootstrap", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key_hash"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_api_keys_project", "api_keys", ["project_id"], unique=False)
    op.create_table(
        "collections",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), server_default="", nullable=False),
        sa.Column("read_only", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("collection_type", sa.Text(), server_default="STANDARD", nullable=False),
        sa.Column("environment_config", sa.Text(), nullable=True),
        sa.Column("version", sa.Text(), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.Column("deleted_at", TIMESTAMP, nullable=True),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sqlite_autoincrement=True,
    )
    op.create_index(
        "ix_collections_project_name", "collections", ["project_id", "name"], unique=False
    )
    op.create_index(
        "ux_collections_name",
        "collections",
        ["project_id", "name"],
        unique=True,
        sqlite_where=sa.text("deleted_at IS NULL"),
        postgresql_where=sa.text("deleted_at IS NULL"),
    )
    op.create_table(
        "criterion_sets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.Column("deleted_at", TIMESTAMP, nullable=True),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sqlite_autoincrement=True,
    )
    op.create_index(
        "ix_criterion_sets_project_name", "criterion_sets", ["project_id", "name"], unique=False
    )
    op.create_index(
        "ux_criterion_sets_name",
        "criterion_sets",
        ["project_id", "name"],
        unique=True,
        sqlite_where=sa.text("deleted_at IS NULL"),
        postgresql_where=sa.text("deleted_at IS NULL"),
    )
    op.create_table(
        "llm_configs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), server_default="", nullable=False),
        sa.Column("llm_model_name", sa.Text(), nullable=False),
        sa.Column("llm_base_url", sa.Text(), nullable=True),
        sa.Column("api_key", sa.Text(), nullable=True),
        sa.Column("api_version", sa.Text(), nullable=True),
        sa.Column("max_connections", sa.Integer(), server_default=sa.text("10"), nullable=False),
        sa.Column("inference_type", sa.Text(), server_default="openai", nullable=False),
        sa.Column("max_retries", sa.Integer(), nullable=True),
        sa.Column("timeout", sa.Integer(), nullable=True),
        sa.Column("system_message", sa.Text(), nullable=True),
        sa.Column("max_tokens", sa.Integer(), nullable=True),
        sa.Column("top_p", sa.Float(), nullable=True),
        sa.Column("temperature", sa.Float(), nullable=True),
        sa.Column("best_of", sa.Integer(), nullable=True),
        sa.Column("top_k", sa.Integer(), nullable=True),
        sa.Column("logprobs", sa.Integer(), nullable=True),
        sa.Column("top_logprobs", sa.Integer(), nullable=True),
        sa.Column("reasoning_effort", sa.Text(), nullable=True),
        sa.Column("verbosity", sa.Text(), nullable=True),
        sa.Column("custom_api_config", sa.Text(), nullable=True),
        sa.Column("custom_response_parser", sa.Text(), nullable=True),
        sa.Column("input_price_per_mtok", sa.Float(), nullable=True),
        sa.Column("output_price_per_mtok", sa.Float(), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.Column("deleted_at", TIMESTAMP, nullable=True),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sqlite_autoincrement=True,
    )
    op.create_index(
        "ix_llm_configs_project_name", "llm_configs", ["project_id", "name"], unique=False
    )
    op.create_index(
        "ux_llm_configs_name",
        "llm_configs",
        ["project_id", "name"],
        unique=True,
        sqlite_where=sa.text("deleted_at IS NULL"),
        postgresql_where=sa.text("deleted_at IS NULL"),
    )
    op.create_table(
        "collection_columns",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("collection_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("column_type", sa.Text(), server_default="text", nullable=False),
        sa.Column("default_value", sa.Text(), server_default="", nullable=False),
        sa.Column("column_position", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("categorical_values", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["collection_id"], ["collections.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("collection_id", "name"),
        sqlite_autoincrement=True,
    )
    op.create_index(
        "ix_collection_columns_collection", "collection_columns", ["collection_id"], unique=False
    )
    op.create_table(
        "prompt_templates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("messages", sa.Text(), nullable=False),
        sa.Column("placeholders", sa.Text(), nullable=False),
        sa.Column("response_format_json_schema", sa.Text(), nullable=True),
        sa.Column("tools", sa.Text(), nullable=True),
        sa.Column("tool_choice", sa.Text(), nullable=True),
        sa.Column("content_hash", sa.Text(), nullable=False),
        sa.Column("parent_prompt_template_id", sa.Integer(), nullable=True),
        sa.Column("criterion_set_id", sa.Integer(), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.Column("deleted_at", TIMESTAMP, nullable=True),
        sa.ForeignKeyConstraint(["criterion_set_id"], ["criterion_sets.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(
            ["parent_prompt_template_id"], ["prompt_templates.id"], ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("project_id", "name", "version"),
        sqlite_autoincrement=True,
    )
    op.create_index(
        "ix_prompt_templates_cset", "prompt_templates", ["criterion_set_id"], unique=False
    )
    op.create_index(
        "ix_prompt_templates_parent",
        "prompt_templates",
        ["parent_prompt_template_id"],
        unique=False,
    )
    op.create_index(
        "ix_prompt_templates_project_name", "prompt_templates", ["project_id", "name"], unique=False
    )
    op.create_table(
        "template_variables",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("collection_id", sa.Integer(), nullable=False),
        sa.Column("input_values", sa.Text(), nullable=False),
        sa.Column("environment_config", sa.Text(), nullable=True),
        sa.Column("identity_hash", sa.Text(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.Column("deleted_at", TIMESTAMP, nullable=True),
        sa.ForeignKeyConstraint(["collection_id"], ["collections.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sqlite_autoincrement=True,
    )
    op.create_index(
        "ix_template_variables_collection", "template_variables", ["collection_id"], unique=False
    )
    op.create_index(
        "ix_template_variables_identity",
        "template_variables",
        ["collection_id", "identity_hash"],
        unique=False,
    )
    op.create_table(
        "criteria",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("criterion_str", sa.Text(), nullable=False),
        sa.Column("label", sa.Text(), nullable=True),
        sa.Column("prompt_template_id", sa.Integer(), nullable=True),
        sa.Column("template_variables_id", sa.Integer(), nullable=True),
        sa.Column("previous_version_id", sa.Integer(), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("deleted_at", TIMESTAMP, nullable=True),
        sa.ForeignKeyConstraint(["previous_version_id"], ["criteria.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(
            ["prompt_template_id"], ["prompt_templates.id"], ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["template_variables_id"], ["template_variables.id"], ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_criteria_previous", "criteria", ["previous_version_id"], unique=False)
    op.create_index("ix_criteria_project", "criteria", ["project_id"], unique=False)
    op.create_index("ix_criteria_template", "criteria", ["prompt_template_id"], unique=False)
    op.create_index("ix_criteria_tv", "criteria", ["template_variables_id"], unique=False)
    op.create_table(
        "criterion_set_prompt_templates",
        sa.Column("criterion_set_id", sa.Integer(), nullable=False),
        sa.Column("prompt_template_id", sa.Integer(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(["criterion_set_id"], ["criterion_sets.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(
            ["prompt_template_id"], ["prompt_templates.id"], ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("criterion_set_id", "prompt_template_id"),
    )
    op.create_index(
        "ix_cspt_template", "criterion_set_prompt_templates", ["prompt_template_id"], unique=False
    )
    op.create_table(
        "experiments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), server_default="", nullable=False),
        sa.Column("prompt_template_id", sa.Integer(), nullable=True),
        sa.Column("collection_id", sa.Integer(), nullable=False),
        sa.Column("criterion_set_id", sa.Integer(), nullable=False),
        sa.Column("llm_config_id", sa.Integer(), nullable=True),
        sa.Column("rating_version", sa.Text(), nullable=True),
        sa.Column("rating_mode", sa.Text(), server_default="detailed", nullable=False),
        sa.Column("n_epochs", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.Column("generation_params", sa.Text(), nullable=True),
        sa.Column("response_column_id", sa.Integer(), nullable=True),
        sa.Column("evaluation_mode", sa.Text(), server_default="STANDARD", nullable=False),
        sa.Column("agent_config", sa.Text(), nullable=True),
        sa.Column("evaluation_agent_config", sa.Text(), nullable=True),
        sa.Column("generation_task_id", sa.Text(), nullable=True),
        sa.Column("has_internal_error", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("has_run", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("logs", sa.Text(), nullable=True),
        sa.Column(
            "dropped_trajectories", sa.Integer(), server_default=sa.text("0"), nullable=False
        ),
        sa.Column("started_at", TIMESTAMP, nullable=True),
        sa.Column("finished_at", TIMESTAMP, nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.Column("deleting", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.ForeignKeyConstraint(
            ["collection_id"],
            ["collections.id"],
        ),
        sa.ForeignKeyConstraint(
            ["criterion_set_id"],
            ["criterion_sets.id"],
        ),
        sa.ForeignKeyConstraint(
            ["llm_config_id"],
            ["llm_configs.id"],
        ),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(
            ["prompt_template_id"],
            ["prompt_templates.id"],
        ),
        sa.ForeignKeyConstraint(
            ["response_column_id"], ["collection_columns.id"], ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("project_id", "name"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_experiments_collection", "experiments", ["collection_id"], unique=False)
    op.create_index("ix_experiments_cset", "experiments", ["criterion_set_id"], unique=False)
    op.create_index("ix_experiments_llm", "experiments", ["llm_config_id"], unique=False)
    op.create_index(
        "ix_experiments_project_name", "experiments", ["project_id", "name"], unique=False
    )
    op.create_index(
        "ix_experiments_response_column", "experiments", ["response_column_id"], unique=False
    )
    op.create_index("ix_experiments_task", "experiments", ["generation_task_id"], unique=False)
    op.create_index("ix_experiments_template", "experiments", ["prompt_template_id"], unique=False)
    op.create_table(
        "criterion_set_criteria",
        sa.Column("criterion_set_id", sa.Integer(), nullable=False),
        sa.Column("criterion_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.ForeignKeyConstraint(["criterion_id"], ["criteria.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["criterion_set_id"], ["criterion_sets.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("criterion_set_id", "criterion_id"),
    )
    op.create_index("ix_csc_criterion", "criterion_set_criteria", ["criterion_id"], unique=False)
    op.create_table(
        "prompts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("experiment_id", sa.Integer(), nullable=True),
        sa.Column("prompt_template_id", sa.Integer(), nullable=True),
        sa.Column("template_variables_id", sa.Integer(), nullable=False),
        sa.Column("messages", sa.Text(), nullable=False),
        sa.Column("resolved_tools", sa.Text(), nullable=True),
        sa.Column("resolved_tool_choice", sa.Text(), nullable=True),
        sa.Column("resolved_response_format", sa.Text(), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(["experiment_id"], ["experiments.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(
            ["prompt_template_id"],
            ["prompt_templates.id"],
        ),
        sa.ForeignKeyConstraint(
            ["template_variables_id"],
            ["template_variables.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_prompts_experiment", "prompts", ["experiment_id"], unique=False)
    op.create_index("ix_prompts_project", "prompts", ["project_id"], unique=False)
    op.create_index("ix_prompts_template", "prompts", ["prompt_template_id"], unique=False)
    op.create_index("ix_prompts_tv", "prompts", ["template_variables_id"], unique=False)
    op.create_table(
        "tasks",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("experiment_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.Text(), server_default="PENDING", nullable=False),
        sa.Column("error_msg", sa.Text(), nullable=True),
        sa.Column("completed_responses", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("completed_ratings", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("total_responses", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("logs", sa.Text(), server_default="", nullable=False),
        sa.Column("payload", sa.Text(), nullable=True),
        sa.Column("result", sa.Text(), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("started_at", TIMESTAMP, nullable=True),
        sa.Column("finished_at", TIMESTAMP, nullable=True),
        sa.ForeignKeyConstraint(["experiment_id"], ["experiments.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_tasks_experiment", "tasks", ["experiment_id"], unique=False)
    op.create_index("ix_tasks_project", "tasks", ["project_id"], unique=False)
    op.create_index("ix_tasks_status", "tasks", ["status"], unique=False)
    op.create_table(
        "responses",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("experiment_id", sa.Integer(), nullable=True),
        sa.Column("prompt_id", sa.Integer(), nullable=False),
        sa.Column("llm_config_id", sa.Integer(), nullable=True),
        sa.Column("epoch", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.Column("messages", sa.Text(), nullable=False),
        sa.Column("generation_metadata", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("termination_reason", sa.Text(), nullable=True),
        sa.Column("trajectory", sa.Text(), nullable=True),
        sa.Column("annotation", sa.Text(), server_default="", nullable=False),
        sa.Column("input_tokens", sa.Integer(), nullable=True),
        sa.Column("output_tokens", sa.Integer(), nullable=True),
        sa.Column("duration_seconds", sa.Float(), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.Column("template_variables_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["experiment_id"], ["experiments.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(
            ["llm_config_id"],
            ["llm_configs.id"],
        ),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["prompt_id"], ["prompts.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(
            ["template_variables_id"],
            ["template_variables.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_responses_experiment", "responses", ["experiment_id"], unique=False)
    op.create_index("ix_responses_llm", "responses", ["llm_config_id"], unique=False)
    op.create_index("ix_responses_project", "responses", ["project_id"], unique=False)
    op.create_index("ix_responses_prompt", "responses", ["prompt_id"], unique=False)
    op.create_index("ix_responses_tv", "responses", ["template_variables_id"], unique=False)
    op.create_index(
        "ux_responses_row_epoch",
        "responses",
        ["experiment_id", "template_variables_id", "epoch"],
        unique=True,
        sqlite_where=sa.text("experiment_id IS NOT NULL"),
        postgresql_where=sa.text("experiment_id IS NOT NULL"),
    )
    op.create_table(
        "task_logs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("task_id", sa.Text(), nullable=False),
        sa.Column("line", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["task_id"], ["tasks.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_task_logs_task", "task_logs", ["task_id", "id"], unique=False)
    op.create_table(
        "ratings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("response_id", sa.Integer(), nullable=False),
        sa.Column("criterion_id", sa.Integer(), nullable=False),
        sa.Column("rating", sa.Text(), nullable=True),
        sa.Column("reasoning", sa.Text(), nullable=True),
        sa.Column("generation_metadata", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("raw_text", sa.Text(), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(
            ["criterion_id"],
            ["criteria.id"],
        ),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["response_id"], ["responses.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_ratings_criterion", "ratings", ["criterion_id"], unique=False)
    op.create_index("ix_ratings_project", "ratings", ["project_id"], unique=False)
    op.create_index("ix_ratings_response", "ratings", ["response_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_ratings_response", table_name="ratings")
    op.drop_index("ix_ratings_project", table_name="ratings")
    op.drop_index("ix_ratings_criterion", table_name="ratings")
    op.drop_table("ratings")
    op.drop_index("ix_task_logs_task", table_name="task_logs")
    op.drop_table("task_logs")
    op.drop_index(
        "ux_responses_row_epoch",
        table_name="responses",
        sqlite_where=sa.text("experiment_id IS NOT NULL"),
        postgresql_where=sa.text("experiment_id IS NOT NULL"),
    )
    op.drop_index("ix_responses_tv", table_name="responses")
    op.drop_index("ix_responses_prompt", table_name="responses")
    op.drop_index("ix_responses_project", table_name="responses")
    op.drop_index("ix_responses_llm", table_name="responses")
    op.drop_index("ix_responses_experiment", table_name="responses")
    op.drop_table("responses")
    op.drop_index("ix_tasks_status", table_name="tasks")
    op.drop_index("ix_tasks_project", table_name="tasks")
    op.drop_index("ix_tasks_experiment", table_name="tasks")
    op.drop_table("tasks")
    op.drop_index("ix_prompts_tv", table_name="prompts")
    op.drop_index("ix_prompts_template", table_name="prompts")
    op.drop_index("ix_prompts_project", table_name="prompts")
    op.drop_index("ix_prompts_experiment", table_name="prompts")
    op.drop_table("prompts")
    op.drop_index("ix_csc_criterion", table_name="criterion_set_criteria")
    op.drop_table("criterion_set_criteria")
    op.drop_index("ix_experiments_template", table_name="experiments")
    op.drop_index("ix_experiments_task", table_name="experiments")
    op.drop_index("ix_experiments_response_column", table_name="experiments")
    op.drop_index("ix_experiments_project_name", table_name="experiments")
    op.drop_index("ix_experiments_llm", table_name="experiments")
    op.drop_index("ix_experiments_cset", table_name="experiments")
    op.drop_index("ix_experiments_collection", table_name="experiments")
    op.drop_table("experiments")
    op.drop_index("ix_cspt_template", table_name="criterion_set_prompt_templates")
    op.drop_table("criterion_set_prompt_templates")
    op.drop_index("ix_criteria_tv", table_name="criteria")
    op.drop_index("ix_criteria_template", table_name="criteria")
    op.drop_index("ix_criteria_project", table_name="criteria")
    op.drop_index("ix_criteria_previous", table_name="criteria")
    op.drop_table("criteria")
    op.drop_index("ix_template_variables_identity", table_name="template_variables")
    op.drop_index("ix_template_variables_collection", table_name="template_variables")
    op.drop_table("template_variables")
    op.drop_index("ix_prompt_templates_project_name", table_name="prompt_templates")
    op.drop_index("ix_prompt_templates_parent", table_name="prompt_templates")
    op.drop_index("ix_prompt_templates_cset", table_name="prompt_templates")
    op.drop_table("prompt_templates")
    op.drop_index("ix_collection_columns_collection", table_name="collection_columns")
    op.drop_table("collection_columns")
    op.drop_index(
        "ux_llm_configs_name",
        table_name="llm_configs",
        sqlite_where=sa.text("deleted_at IS NULL"),
        postgresql_where=sa.text("deleted_at IS NULL"),
    )
    op.drop_index("ix_llm_configs_project_name", table_name="llm_configs")
    op.drop_table("llm_configs")
    op.drop_index(
        "ux_criterion_sets_name",
        table_name="criterion_sets",
        sqlite_where=sa.text("deleted_at IS NULL"),
        postgresql_where=sa.text("deleted_at IS NULL"),
    )
    op.drop_index("ix_criterion_sets_project_name", table_name="criterion_sets")
    op.drop_table("criterion_sets")
    op.drop_index(
        "ux_collections_name",
        table_name="collections",
        sqlite_where=sa.text("deleted_at IS NULL"),
        postgresql_where=sa.text("deleted_at IS NULL"),
    )
    op.drop_index("ix_collections_project_name", table_name="collections")
    op.drop_table("collections")
    op.drop_index("ix_api_keys_project", table_name="api_keys")
    op.drop_table("api_keys")
    op.drop_index("ix_projects_org", table_name="projects")
    op.drop_index("ix_projects_name", table_name="projects")
    op.drop_table("projects")
    op.drop_table("organizations")
