"""The database schema as SQLAlchemy Core tables: the one definition both databases use.

Alembic migrations (``store/migrations``) create and change it; the store compiles statements
built from these tables for SQLite or PostgreSQL. Conventions:

* ids are integers that are never reused (``AUTOINCREMENT`` on SQLite, identity on
  PostgreSQL), so a stale id never finds a different object; task ids are UUID strings;
* timestamps are :data:`Timestamp`: ``timestamptz`` on PostgreSQL, ISO-8601 UTC text
  (``2026-01-02T03:04:05.123456Z``, sortable as text) on SQLite;
* JSON columns are text written and read by the store (key order is kept, and stored JSON
  can be passed through to answers without decoding);
* historical objects (templates, collections, rows, criteria, criterion sets, LLM configs)
  have ``deleted_at``: deleted when nothing references them, hidden otherwise.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
    UniqueConstraint,
    false,
    text,
)

metadata = MetaData()

#: ``timestamptz`` on PostgreSQL, ISO-8601 UTC text on SQLite.
Timestamp: Any = DateTime(timezone=True).with_variant(Text(), "sqlite")
#: JSON stored as text on both databases (the store encodes and decodes it).
JSONText = Text


def _id() -> Column[Any]:
    return Column("id", Integer, primary_key=True)


def _fk(
    name: str, target: str, *, ondelete: str | None = None, nullable: bool = True
) -> Column[Any]:
    return Column(name, Integer, ForeignKey(target, ondelete=ondelete), nullable=nullable)


def _ts(name: str, *, nullable: bool = False) -> Column[Any]:
    return Column(name, Timestamp, nullable=nullable)


def _flag(name: str) -> Column[Any]:
    return Column(name, Boolean, nullable=False, server_default=false())


def _live_unique(name: str) -> Index:
    """Unique name among a project's live (not deleted) rows."""
    return Index(
        name,
        "project_id",
        "name",
        unique=True,
        sqlite_where=text("deleted_at IS NULL"),
        postgresql_where=text("deleted_at IS NULL"),
    )


organizations = Table(
    "organizations",
    metadata,
    _id(),
    Column("name", Text, nullable=False),
    Column("domain", Text, nullable=False, server_default=""),
    Column("stripe_subscription_id", Text),
    _ts("created_at"),
    _ts("updated_at"),
    sqlite_autoincrement=True,
)

projects = Table(
    "projects",
    metadata,
    _id(),
    _fk("organization_id", "organizations.id", ondelete="CASCADE", nullable=False),
    Column("name", Text, nullable=False),
    Column("description", Text, nullable=False, server_default=""),
    _flag("public_in_org"),
    _flag("is_default"),
    _ts("created_at"),
    _ts("updated_at"),
    Index("ix_projects_org", "organization_id"),
    Index("ix_projects_name", "organization_id", "name"),
    sqlite_autoincrement=True,
)

api_keys = Table(
    "api_keys",
    metadata,
    _id(),
    _fk("project_id", "projects.id", ondelete="CASCADE", nullable=False),
    Column("key_hash", Text, nullable=False, unique=True),
    Column("prefix", Text, nullable=False),
    _flag("is_bootstrap"),
    _ts("created_at"),
    Index("ix_api_keys_project", "project_id"),
    sqlite_autoincrement=True,
)

criterion_sets = Table(
    "criterion_sets",
    metadata,
    _id(),
    _fk("project_id", "projects.id", ondelete="CASCADE", nullable=False),
    Column("name", Text, nullable=False),
    _ts("created_at"),
    _ts("updated_at"),
    _ts("deleted_at", nullable=True),
    Index("ix_criterion_sets_project_name", "project_id", "name"),
    _live_unique("ux_criterion_sets_name"),
    sqlite_autoincrement=True,
)

prompt_templates = Table(
    "prompt_templates",
    metadata,
    _id(),
    _fk("project_id", "projects.id", ondelete="CASCADE", nullable=False),
    Column("name", Text, nullable=False),
    Column("version", Integer, nullable=False),
    Column("messages", JSONText, nullable=False),
    Column("placeholders", JSONText, nullable=False),
    Column("response_format_json_schema", JSONText),
    Column("tools", JSONText),
    Column("tool_choice", JSONText),
    Column("content_hash", Text, nullable=False),
    _fk("parent_prompt_template_id", "prompt_templates.id", ondelete="SET NULL"),
    _fk("criterion_set_id", "criterion_sets.id", ondelete="SET NULL"),
    _ts("created_at"),
    _ts("updated_at"),
    _ts("deleted_at", nullable=True),
    UniqueConstraint("project_id", "name", "version"),
    Index("ix_prompt_templates_project_name", "project_id", "name"),
    Index("ix_prompt_templates_parent", "parent_prompt_template_id"),
    Index("ix_prompt_templates_cset", "criterion_set_id"),
    sqlite_autoincrement=True,
)

collections = Table(
    "collections",
    metadata,
    _id(),
    _fk("project_id", "projects.id", ondelete="CASCADE", nullable=False),
    Column("name", Text, nullable=False),
    Column("description", Text, nullable=False, server_default=""),
    _flag("read_only"),
    Column("collection_type", Text, nullable=False, server_default="STANDARD"),
    Column("environment_config", JSONText),
    Column("version", Text),
    _ts("created_at"),
    _ts("updated_at"),
    _ts("deleted_at", nullable=True),
    Index("ix_collections_project_name", "project_id", "name"),
    _live_unique("ux_collections_name"),
    sqlite_autoincrement=True,
)

collection_columns = Table(
    "collection_columns",
    metadata,
    _id(),
    _fk("collection_id", "collections.id", ondelete="CASCADE", nullable=False),
    Column("name", Text, nullable=False),
    Column("column_type", Text, nullable=False, server_default="text"),
    Column("default_value", Text, nullable=False, server_default=""),
    Column("column_position", Integer, nullable=False, server_default=text("0")),
    Column("categorical_values", JSONText),
    UniqueConstraint("collection_id", "name"),
    Index("ix_collection_columns_collection", "collection_id"),
    sqlite_autoincrement=True,
)

#: Scenario sets (revision 0004): the goals MULTI_TURN experiments run over. A set's
#: scenarios are the rows of its backing collection (``collection_id``: columns ``goal``,
#: ``expected_conversation_outcome`` and the declared fields), which is hidden
#: (``deleted_at`` set) from the collection endpoints; see ``store/scenarios.py``.
scenario_sets = Table(
    "scenario_sets",
    metadata,
    _id(),
    _fk("project_id", "projects.id", ondelete="CASCADE", nullable=False),
    Column("name", Text, nullable=False),
    Column("description", Text, nullable=False, server_default=""),
    _fk("collection_id", "collections.id", nullable=False),
    _flag("read_only"),
    _flag("is_platform_builtin"),
    Column("version", Text),
    _ts("created_at"),
    _ts("updated_at"),
    _ts("deleted_at", nullable=True),
    Index("ix_scenario_sets_project_name", "project_id", "name"),
    Index("ix_scenario_sets_collection", "collection_id"),
    _live_unique("ux_scenario_sets_name"),
    sqlite_autoincrement=True,
)

template_variables = Table(
    "template_variables",
    metadata,
    _id(),
    _fk("collection_id", "collections.id", ondelete="CASCADE", nullable=False),
    Column("input_values", JSONText, nullable=False),
    Column("environment_config", JSONText),
    Column("identity_hash", Text, nullable=False),
    _ts("created_at"),
    _ts("updated_at"),
    _ts("deleted_at", nullable=True),
    Index("ix_template_variables_collection", "collection_id"),
    Index("ix_template_variables_identity", "collection_id", "identity_hash"),
    sqlite_autoincrement=True,
)

criteria = Table(
    "criteria",
    metadata,
    _id(),
    _fk("project_id", "projects.id", ondelete="CASCADE", nullable=False),
    Column("criterion_str", Text, nullable=False),
    Column("label", Text),
    _fk("prompt_template_id", "prompt_templates.id", ondelete="SET NULL"),
    _fk("template_variables_id", "template_variables.id", ondelete="SET NULL"),
    _fk("previous_version_id", "criteria.id", ondelete="SET NULL"),
    _ts("created_at"),
    _ts("deleted_at", nullable=True),
    Index("ix_criteria_project", "project_id"),
    Index("ix_criteria_template", "prompt_template_id"),
    Index("ix_criteria_tv", "template_variables_id"),
    Index("ix_criteria_previous", "previous_version_id"),
    sqlite_autoincrement=True,
)

criterion_set_criteria = Table(
    "criterion_set_criteria",
    metadata,
    _fk("criterion_set_id", "criterion_sets.id", ondelete="CASCADE", nullable=False),
    _fk("criterion_id", "criteria.id", ondelete="CASCADE", nullable=False),
    Column("position", Integer, nullable=False, server_default=text("0")),
    PrimaryKeyConstraint("criterion_set_id", "criterion_id"),
    Index("ix_csc_criterion", "criterion_id"),
)

criterion_set_prompt_templates = Table(
    "criterion_set_prompt_templates",
    metadata,
    _fk("criterion_set_id", "criterion_sets.id", ondelete="CASCADE", nullable=False),
    _fk("prompt_template_id", "prompt_templates.id", ondelete="CASCADE", nullable=False),
    _ts("created_at"),
    PrimaryKeyConstraint("criterion_set_id", "prompt_template_id"),
    Index("ix_cspt_template", "prompt_template_id"),
)

llm_configs = Table(
    "llm_configs",
    metadata,
    _id(),
    _fk("project_id", "projects.id", ondelete="CASCADE", nullable=False),
    Column("name", Text, nullable=False),
    Column("description", Text, nullable=False, server_default=""),
    Column("llm_model_name", Text, nullable=False),
    Column("llm_base_url", Text),
    Column("api_key", Text),
    Column("api_version", Text),
    Column("max_connections", Integer, nullable=False, server_default=text("10")),
    Column("inference_type", Text, nullable=False, server_default="openai"),
    Column("max_retries", Integer),
    Column("timeout", Integer),
    Column("system_message", Text),
    Column("max_tokens", Integer),
    Column("top_p", Float),
    Column("temperature", Float),
    Column("best_of", Integer),
    Column("top_k", Integer),
    Column("logprobs", Integer),
    Column("top_logprobs", Integer),
    Column("reasoning_effort", Text),
    Column("verbosity", Text),
    Column("custom_api_config", JSONText),
    Column("custom_response_parser", Text),
    Column("input_price_per_mtok", Float),
    Column("output_price_per_mtok", Float),
    _ts("created_at"),
    _ts("updated_at"),
    _ts("deleted_at", nullable=True),
    Index("ix_llm_configs_project_name", "project_id", "name"),
    _live_unique("ux_llm_configs_name"),
    sqlite_autoincrement=True,
)

experiments = Table(
    "experiments",
    metadata,
    _id(),
    _fk("project_id", "projects.id", ondelete="CASCADE", nullable=False),
    Column("name", Text, nullable=False),
    Column("description", Text, nullable=False, server_default=""),
    _fk("prompt_template_id", "prompt_templates.id"),
    _fk("collection_id", "collections.id", nullable=False),
    _fk("criterion_set_id", "criterion_sets.id", nullable=False),
    _fk("llm_config_id", "llm_configs.id"),
    Column("rating_version", Text),
    Column("rating_mode", Text, nullable=False, server_default="detailed"),
    Column("n_epochs", Integer, nullable=False, server_default=text("1")),
    Column("generation_params", JSONText),
    _fk("response_column_id", "collection_columns.id", ondelete="SET NULL"),
    Column("evaluation_mode", Text, nullable=False, server_default="STANDARD"),
    Column("agent_config", JSONText),
    Column("evaluation_agent_config", JSONText),
    Column("generation_task_id", Text),
    _flag("has_internal_error"),
    _flag("has_run"),
    Column("logs", Text),
    Column("dropped_trajectories", Integer, nullable=False, server_default=text("0")),
    _ts("started_at", nullable=True),
    _ts("finished_at", nullable=True),
    _ts("created_at"),
    _ts("updated_at"),
    _flag("deleting"),
    # revision 0003: +1 (by the triggers of RESULTS_TRIGGERS) on every write to the
    # experiment's responses or their ratings, so computed results can be kept per version
    Column("results_version", Integer, nullable=False, server_default=text("0")),
    # revision 0004 (issue 14): MULTI_TURN sources and the frozen AGENTIC definition
    _fk("scenario_set_id", "scenario_sets.id"),
    _fk("persona_group_id", "collections.id"),
    Column("definition", JSONText),
    UniqueConstraint("project_id", "name"),
    Index("ix_experiments_project_name", "project_id", "name"),
    Index("ix_experiments_template", "prompt_template_id"),
    Index("ix_experiments_collection", "collection_id"),
    Index("ix_experiments_cset", "criterion_set_id"),
    Index("ix_experiments_llm", "llm_config_id"),
    Index("ix_experiments_response_column", "response_column_id"),
    Index("ix_experiments_task", "generation_task_id"),
    Index("ix_experiments_scenario_set", "scenario_set_id"),
    Index("ix_experiments_persona_group", "persona_group_id"),
    sqlite_autoincrement=True,
)

prompts = Table(
    "prompts",
    metadata,
    _id(),
    _fk("project_id", "projects.id", ondelete="CASCADE", nullable=False),
    _fk("experiment_id", "experiments.id", ondelete="CASCADE"),
    _fk("prompt_template_id", "prompt_templates.id"),
    _fk("template_variables_id", "template_variables.id", nullable=False),
    Column("messages", JSONText, nullable=False),
    Column("resolved_tools", JSONText),
    Column("resolved_tool_choice", JSONText),
    Column("resolved_response_format", JSONText),
    _ts("created_at"),
    Index("ix_prompts_project", "project_id"),
    Index("ix_prompts_experiment", "experiment_id"),
    Index("ix_prompts_template", "prompt_template_id"),
    Index("ix_prompts_tv", "template_variables_id"),
    sqlite_autoincrement=True,
)

responses = Table(
    "responses",
    metadata,
    _id(),
    _fk("project_id", "projects.id", ondelete="CASCADE", nullable=False),
    _fk("experiment_id", "experiments.id", ondelete="CASCADE"),
    _fk("prompt_id", "prompts.id", ondelete="CASCADE", nullable=False),
    _fk("llm_config_id", "llm_configs.id"),
    Column("epoch", Integer, nullable=False, server_default=text("1")),
    Column("messages", JSONText, nullable=False),
    Column("generation_metadata", JSONText),
    Column("error", Text),
    Column("termination_reason", Text),
    Column("trajectory", JSONText),
    Column("annotation", Text, nullable=False, server_default=""),
    Column("input_tokens", Integer),
    Column("output_tokens", Integer),
    Column("duration_seconds", Float),
    _ts("created_at"),
    _ts("updated_at"),
    _fk("template_variables_id", "template_variables.id"),
    _flag("from_cache"),  # revision 0003: the generation came from the LLM call cache
    # revision 0004 (issue 14): which of several responses of one (row, epoch) this is
    # (AGENTIC: the upload's sequence number, MULTI_TURN: the persona's row id; STANDARD: 0),
    # the persona of a MULTI_TURN conversation, and what an agent run reported
    Column("trial", Integer, nullable=False, server_default=text("0")),
    _fk("persona_id", "template_variables.id"),
    Column("reward", Float),
    Column("steps", Integer),
    Column("cost_usd", Float),
    Column("result_metadata", JSONText),
    Index("ix_responses_project", "project_id"),
    Index("ix_responses_experiment", "experiment_id"),
    Index("ix_responses_prompt", "prompt_id"),
    Index("ix_responses_llm", "llm_config_id"),
    Index("ix_responses_tv", "template_variables_id"),
    Index("ix_responses_persona", "persona_id"),
    # one response per (experiment, row, epoch, trial): a resumed or repeated run cannot
    # duplicate; STANDARD experiments always use trial 0, so for them (experiment, row,
    # epoch) is unique
    Index(
        "ux_responses_slot",
        "experiment_id",
        "template_variables_id",
        "epoch",
        "trial",
        unique=True,
        sqlite_where=text("experiment_id IS NOT NULL"),
        postgresql_where=text("experiment_id IS NOT NULL"),
    ),
    sqlite_autoincrement=True,
)

ratings = Table(
    "ratings",
    metadata,
    _id(),
    _fk("project_id", "projects.id", ondelete="CASCADE", nullable=False),
    _fk("response_id", "responses.id", ondelete="CASCADE", nullable=False),
    _fk("criterion_id", "criteria.id", nullable=False),
    Column("rating", Text),
    Column("reasoning", Text),
    Column("generation_metadata", JSONText),
    Column("error", Text),
    Column("raw_text", Text),
    _ts("created_at"),
    _flag("from_cache"),  # revision 0003: the verdict came from the LLM call cache
    Index("ix_ratings_project", "project_id"),
    Index("ix_ratings_response", "response_id"),
    Index("ix_ratings_criterion", "criterion_id"),
    sqlite_autoincrement=True,
)

tasks = Table(
    "tasks",
    metadata,
    Column("id", Text, primary_key=True),
    Column("kind", Text, nullable=False),
    _fk("project_id", "projects.id", ondelete="CASCADE", nullable=False),
    _fk("experiment_id", "experiments.id", ondelete="SET NULL"),
    Column("status", Text, nullable=False, server_default="PENDING"),
    Column("error_msg", Text),
    Column("completed_responses", Integer, nullable=False, server_default=text("0")),
    Column("completed_ratings", Integer, nullable=False, server_default=text("0")),
    Column("total_responses", Integer, nullable=False, server_default=text("0")),
    Column("logs", Text, nullable=False, server_default=""),  # before schema 2; now task_logs
    Column("payload", JSONText),
    Column("result", JSONText),
    _ts("created_at"),
    _ts("started_at", nullable=True),
    _ts("finished_at", nullable=True),
    # revision 0002: tasks any replica can run (see engine/engine.py)
    Column("owner", Text),  # the replica running it (NULL: free to claim)
    Column("fence", Integer, nullable=False, server_default=text("0")),  # +1 per claim
    _ts("lease_expires_at", nullable=True),
    _flag("cancel_requested"),
    Column("cancel_reason", Text),
    Index("ix_tasks_project", "project_id"),
    Index("ix_tasks_experiment", "experiment_id"),
    Index("ix_tasks_status", "status"),
    Index("ix_tasks_owner", "owner"),
)

#: A replica's heartbeat and its share of the LLM call limit (revision 0002).
replicas = Table(
    "replicas",
    metadata,
    Column("id", Text, primary_key=True),
    Column("host", Text, nullable=False, server_default=""),
    Column("pid", Integer, nullable=False, server_default=text("0")),
    _ts("started_at"),
    _ts("heartbeat_at"),
    Column("permits", Integer, nullable=False, server_default=text("0")),
    Column("demand", Integer, nullable=False, server_default=text("0")),
)

#: Where each polling consumer (``connection_uuid``) stands in a task's log (revision 0002),
#: so that any replica serves its next poll.
task_cursors = Table(
    "task_cursors",
    metadata,
    Column("task_id", Text, ForeignKey("tasks.id", ondelete="CASCADE"), nullable=False),
    Column("consumer", Text, nullable=False),
    Column("last_log_id", Integer, nullable=False, server_default=text("0")),
    PrimaryKeyConstraint("task_id", "consumer"),
)

task_logs = Table(
    "task_logs",
    metadata,
    Column("id", Integer, primary_key=True),  # the log cursor: lines in order of writing
    Column("task_id", Text, ForeignKey("tasks.id", ondelete="CASCADE"), nullable=False),
    Column("line", Text, nullable=False),
    Index("ix_task_logs_task", "task_id", "id"),
    sqlite_autoincrement=True,
)

#: The LLM call cache (revision 0003, ``--llm-cache``): a validated answer per call key (a
#: SHA-256 over provider, base URL, model, parameters, messages and epoch), until it expires.
llm_cache = Table(
    "llm_cache",
    metadata,
    Column("key", Text, primary_key=True),
    Column("kind", Text, nullable=False),  # generation, verdict, score
    Column("model", Text, nullable=False, server_default=""),
    Column("value", JSONText, nullable=False),
    _ts("created_at"),
    _ts("expires_at"),
    Index("ix_llm_cache_expires", "expires_at"),
)

#: Triggers that raise ``experiments.results_version`` on every insert, update or delete of a
#: response of the experiment or of a rating of such a response (revision 0003), per dialect.
#: They make a version that no write can forget: cascades and every code path included.
RESULTS_TRIGGERS: dict[str, list[str]] = {
    "sqlite": [
        f"CREATE TRIGGER tr_{table}_{op.lower()}_results AFTER {op} ON {table} "
        f"BEGIN UPDATE experiments SET results_version = results_version + 1 WHERE id = "
        f"{target.format(row=row)}; END"
        for table, target in (
            ("responses", "{row}.experiment_id"),
            ("ratings", "(SELECT experiment_id FROM responses WHERE id = {row}.response_id)"),
        )
        for op, rows in (("INSERT", ("NEW",)), ("UPDATE", ("NEW",)), ("DELETE", ("OLD",)))
        for row in rows
    ],
    "postgresql": [
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
    ],
}
