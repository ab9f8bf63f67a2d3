"""SQLite storage: one connection, used synchronously from the event-loop thread.

Design:

* One ``sqlite3`` connection per server (WAL, ``foreign_keys=ON``, ``busy_timeout``), opened
  in autocommit mode; writes happen inside ``with db.transaction():`` (``BEGIN IMMEDIATE`` ...
  ``COMMIT``/``ROLLBACK``). A transaction block must contain **no** ``await``: then each
  request's writes are atomic, and no two requests ever interleave inside one transaction, so
  "database is locked" cannot happen. (Entering a transaction that another task holds open
  raises ``RuntimeError``: it means somebody awaited inside a transaction.)
* Reads outside a transaction see committed data only.
* The schema is created/migrated on open (``schema_version`` table, :data:`MIGRATIONS`).
* JSON columns are TEXT written with :func:`dumps` (msgspec) and read with :func:`loads`.
* Timestamps are ISO-8601 UTC strings (``...Z``) written by :func:`now`.
* Integer ids are ``AUTOINCREMENT``: an id is never reused, so a stale id never finds a
  different object.
* Historical objects (templates, collections, rows, criteria, criterion sets, LLM configs)
  have a ``deleted_at`` column: :meth:`Database.delete_or_hide` deletes a row when nothing
  references it and hides it (soft delete) otherwise, so past experiments keep their meaning.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import msgspec

log = logging.getLogger("elluminate.server.store.database")

_encoder = msgspec.json.Encoder()
_sorted_encoder = msgspec.json.Encoder(order="sorted")
_decoder = msgspec.json.Decoder()


def dumps(value: Any) -> str | None:
    """JSON text for a JSON column (``None`` stays SQL NULL)."""
    if value is None:
        return None
    return _encoder.encode(value).decode()


def dumps_canonical(value: Any) -> str:
    """Canonical JSON (sorted keys) for identity hashes and comparisons."""
    return _sorted_encoder.encode(value).decode()


def loads(text: str | bytes | None) -> Any:
    """Value of a JSON column (SQL NULL becomes ``None``)."""
    if text is None:
        return None
    return _decoder.decode(text)


def now() -> str:
    """The current UTC time as stored in the database."""
    return datetime.now(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


# ---- schema -------------------------------------------------------------------------------

_SCHEMA_V1 = """
CREATE TABLE organizations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    domain TEXT NOT NULL DEFAULT '',
    stripe_subscription_id TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE TABLE projects (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    organization_id INTEGER NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    public_in_org INTEGER NOT NULL DEFAULT 0,
    is_default INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX ix_projects_org ON projects(organization_id);
CREATE INDEX ix_projects_name ON projects(organization_id, name);

CREATE TABLE api_keys (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    key_hash TEXT NOT NULL UNIQUE,
    prefix TEXT NOT NULL,
    is_bootstrap INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL
);
CREATE INDEX ix_api_keys_project ON api_keys(project_id);

CREATE TABLE criterion_sets (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    deleted_at TEXT
);
CREATE INDEX ix_criterion_sets_project_name ON criterion_sets(project_id, name);
CREATE UNIQUE INDEX ux_criterion_sets_name ON criterion_sets(project_id, name)
    WHERE deleted_at IS NULL;

CREATE TABLE prompt_templates (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    version INTEGER NOT NULL,
    messages TEXT NOT NULL,
    placeholders TEXT NOT NULL,
    response_format_json_schema TEXT,
    tools TEXT,
    tool_choice TEXT,
    content_hash TEXT NOT NULL,
    parent_prompt_template_id INTEGER REFERENCES prompt_templates(id) ON DELETE SET NULL,
    criterion_set_id INTEGER REFERENCES criterion_sets(id) ON DELETE SET NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    deleted_at TEXT,
    UNIQUE (project_id, name, version)
);
CREATE INDEX ix_prompt_templates_project_name ON prompt_templates(project_id, name);
CREATE INDEX ix_prompt_templates_parent ON prompt_templates(parent_prompt_template_id);
CREATE INDEX ix_prompt_templates_cset ON prompt_templates(criterion_set_id);

CREATE TABLE collections (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    read_only INTEGER NOT NULL DEFAULT 0,
    collection_type TEXT NOT NULL DEFAULT 'STANDARD',
    environment_config TEXT,
    version TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    deleted_at TEXT
);
CREATE INDEX ix_collections_project_name ON collections(project_id, name);
CREATE UNIQUE INDEX ux_collections_name ON collections(project_id, name)
    WHERE deleted_at IS NULL;

CREATE TABLE collection_columns (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    collection_id INTEGER NOT NULL REFERENCES collections(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    column_type TEXT NOT NULL DEFAULT 'text',
    default_value TEXT NOT NULL DEFAULT '',
    column_position INTEGER NOT NULL DEFAULT 0,
    categorical_values TEXT,
    UNIQUE (collection_id, name)
);
CREATE INDEX ix_collection_columns_collection ON collection_columns(collection_id);

CREATE TABLE template_variables (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    collection_id INTEGER NOT NULL REFERENCES collections(id) ON DELETE CASCADE,
    input_values TEXT NOT NULL,
    environment_config TEXT,
    identity_hash TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    deleted_at TEXT
);
CREATE INDEX ix_template_variables_collection ON template_variables(collection_id);
CREATE INDEX ix_template_variables_identity ON template_variables(collection_id, identity_hash);

CREATE TABLE criteria (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    criterion_str TEXT NOT NULL,
    label TEXT,
    prompt_template_id INTEGER REFERENCES prompt_templates(id) ON DELETE SET NULL,
    template_variables_id INTEGER REFERENCES template_variables(id) ON DELETE SET NULL,
    previous_version_id INTEGER REFERENCES criteria(id) ON DELETE SET NULL,
    created_at TEXT NOT NULL,
    deleted_at TEXT
);
CREATE INDEX ix_criteria_project ON criteria(project_id);
CREATE INDEX ix_criteria_template ON criteria(prompt_template_id);
CREATE INDEX ix_criteria_tv ON criteria(template_variables_id);
CREATE INDEX ix_criteria_previous ON criteria(previous_version_id);

CREATE TABLE criterion_set_criteria (
    criterion_set_id INTEGER NOT NULL REFERENCES criterion_sets(id) ON DELETE CASCADE,
    criterion_id INTEGER NOT NULL REFERENCES criteria(id) ON DELETE CASCADE,
    position INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (criterion_set_id, criterion_id)
);
CREATE INDEX ix_csc_criterion ON criterion_set_criteria(criterion_id);

CREATE TABLE criterion_set_prompt_templates (
    criterion_set_id INTEGER NOT NULL REFERENCES criterion_sets(id) ON DELETE CASCADE,
    prompt_template_id INTEGER NOT NULL REFERENCES prompt_templates(id) ON DELETE CASCADE,
    created_at TEXT NOT NULL,
    PRIMARY KEY (criterion_set_id, prompt_template_id)
);
CREATE INDEX ix_cspt_template ON criterion_set_prompt_templates(prompt_template_id);

CREATE TABLE llm_configs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    llm_model_name TEXT NOT NULL,
    llm_base_url TEXT,
    api_key TEXT,
    api_version TEXT,
    max_connections INTEGER NOT NULL DEFAULT 10,
    inference_type TEXT NOT NULL DEFAULT 'openai',
    max_retries INTEGER,
    timeout INTEGER,
    system_message TEXT,
    max_tokens INTEGER,
    top_p REAL,
    temperature REAL,
    best_of INTEGER,
    top_k INTEGER,
    logprobs INTEGER,
    top_logprobs INTEGER,
    reasoning_effort TEXT,
    verbosity TEXT,
    custom_api_config TEXT,
    custom_response_parser TEXT,
    input_price_per_mtok REAL,
    output_price_per_mtok REAL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    deleted_at TEXT
);
CREATE INDEX ix_llm_configs_project_name ON llm_configs(project_id, name);
CREATE UNIQUE INDEX ux_llm_configs_name ON llm_configs(project_id, name) WHERE deleted_at IS NULL;

CREATE TABLE experiments (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    prompt_template_id INTEGER REFERENCES prompt_templates(id),
    collection_id INTEGER NOT NULL REFERENCES collections(id),
    criterion_set_id INTEGER NOT NULL REFERENCES criterion_sets(id),
    llm_config_id INTEGER REFERENCES llm_configs(id),
    rating_version TEXT,
    rating_mode TEXT NOT NULL DEFAULT 'detailed',
    n_epochs INTEGER NOT NULL DEFAULT 1,
    generation_params TEXT,
    response_column_id INTEGER REFERENCES collection_columns(id) ON DELETE SET NULL,
    evaluation_mode TEXT NOT NULL DEFAULT 'STANDARD',
    agent_config TEXT,
    evaluation_agent_config TEXT,
    generation_task_id TEXT,
    has_internal_error INTEGER NOT NULL DEFAULT 0,
    has_run INTEGER NOT NULL DEFAULT 0,
    logs TEXT,
    dropped_trajectories INTEGER NOT NULL DEFAULT 0,
    started_at TEXT,
    finished_at TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE (project_id, name)
);
CREATE INDEX ix_experiments_project_name ON experiments(project_id, name);
CREATE INDEX ix_experiments_template ON experiments(prompt_template_id);
CREATE INDEX ix_experiments_collection ON experiments(collection_id);
CREATE INDEX ix_experiments_cset ON experiments(criterion_set_id);
CREATE INDEX ix_experiments_llm ON experiments(llm_config_id);
CREATE INDEX ix_experiments_response_column ON experiments(response_column_id);
CREATE INDEX ix_experiments_task ON experiments(generation_task_id);

CREATE TABLE prompts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    experiment_id INTEGER REFERENCES experiments(id) ON DELETE CASCADE,
    prompt_template_id INTEGER REFERENCES prompt_templates(id),
    template_variables_id INTEGER NOT NULL REFERENCES template_variables(id),
    messages TEXT NOT NULL,
    resolved_tools TEXT,
    resolved_tool_choice TEXT,
    resolved_response_format TEXT,
    created_at TEXT NOT NULL
);
CREATE INDEX ix_prompts_project ON prompts(project_id);
CREATE INDEX ix_prompts_experiment ON prompts(experiment_id);
CREATE INDEX ix_prompts_template ON prompts(prompt_template_id);
CREATE INDEX ix_prompts_tv ON prompts(template_variables_id);

CREATE TABLE responses (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    experiment_id INTEGER REFERENCES experiments(id) ON DELETE CASCADE,
    prompt_id INTEGER NOT NULL REFERENCES prompts(id) ON DELETE CASCADE,
    llm_config_id INTEGER REFERENCES llm_configs(id),
    epoch INTEGER NOT NULL DEFAULT 1,
    messages TEXT NOT NULL,
    generation_metadata TEXT,
    error TEXT,
    termination_reason TEXT,
    trajectory TEXT,
    annotation TEXT NOT NULL DEFAULT '',
    input_tokens INTEGER,
    output_tokens INTEGER,
    duration_seconds REAL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX ix_responses_project ON responses(project_id);
CREATE INDEX ix_responses_experiment ON responses(experiment_id);
CREATE INDEX ix_responses_prompt ON responses(prompt_id);
CREATE INDEX ix_responses_llm ON responses(llm_config_id);

CREATE TABLE ratings (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    response_id INTEGER NOT NULL REFERENCES responses(id) ON DELETE CASCADE,
    criterion_id INTEGER NOT NULL REFERENCES criteria(id),
    rating TEXT,
    reasoning TEXT,
    generation_metadata TEXT,
    error TEXT,
    raw_text TEXT,
    created_at TEXT NOT NULL
);
CREATE INDEX ix_ratings_project ON ratings(project_id);
CREATE INDEX ix_ratings_response ON ratings(response_id);
CREATE INDEX ix_ratings_criterion ON ratings(criterion_id);

CREATE TABLE tasks (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    experiment_id INTEGER REFERENCES experiments(id) ON DELETE SET NULL,
    status TEXT NOT NULL DEFAULT 'PENDING',
    error_msg TEXT,
    completed_responses INTEGER NOT NULL DEFAULT 0,
    completed_ratings INTEGER NOT NULL DEFAULT 0,
    total_responses INTEGER NOT NULL DEFAULT 0,
    logs TEXT NOT NULL DEFAULT '',
    payload TEXT,
    result TEXT,
    created_at TEXT NOT NULL,
    started_at TEXT,
    finished_at TEXT
);
CREATE INDEX ix_tasks_project ON tasks(project_id);
CREATE INDEX ix_tasks_experiment ON tasks(experiment_id);
CREATE INDEX ix_tasks_status ON tasks(status);
"""

def _statements(script: str) -> list[str]:
    """The statements of a schema script, split where :func:`sqlite3.complete_statement`
    says a statement ends (so a ``;`` inside a string or a trigger body is kept)."""
    statements: list[str] = []
    current: list[str] = []
    for line in script.splitlines(keepends=True):
        current.append(line)
        text = "".join(current)
        if sqlite3.complete_statement(text):
            if text.strip():
                statements.append(text.strip())
            current = []
    rest = "".join(current).strip()
    if rest:
        raise ValueError(f"incomplete SQL statement in a migration: {rest[:80]!r}")
    return statements


#: One (experiment, row, epoch) holds at most one response: the row is copied onto the
#: response so that SQLite can index it. Duplicates left by older versions (two servers on
#: one file) are removed before the index is built, keeping the first response of each.
#: Task logs become one row per line (an append is one INSERT, not a rewrite of the log).
#: ``experiments.deleting``: set by a delete before it stops the run, so no run starts again.
_SCHEMA_V2: list[str] = [
    "ALTER TABLE responses ADD COLUMN template_variables_id INTEGER "
    "REFERENCES template_variables(id)",
    "UPDATE responses SET template_variables_id = "
    "(SELECT p.template_variables_id FROM prompts p WHERE p.id = responses.prompt_id)",
    "DELETE FROM prompts WHERE id IN (SELECT r.prompt_id FROM responses r "
    "WHERE r.experiment_id IS NOT NULL AND r.id NOT IN (SELECT MIN(id) FROM responses "
    "WHERE experiment_id IS NOT NULL GROUP BY experiment_id, template_variables_id, epoch))",
    "CREATE UNIQUE INDEX ux_responses_row_epoch ON responses"
    "(experiment_id, template_variables_id, epoch) WHERE experiment_id IS NOT NULL",
    "CREATE INDEX ix_responses_tv ON responses(template_variables_id)",
    "ALTER TABLE experiments ADD COLUMN deleting INTEGER NOT NULL DEFAULT 0",
    "CREATE TABLE task_logs (task_id TEXT NOT NULL REFERENCES tasks(id) ON DELETE CASCADE, "
    "seq INTEGER NOT NULL, line TEXT NOT NULL, PRIMARY KEY (task_id, seq)) WITHOUT ROWID",
]

#: Ordered schema migrations; ``MIGRATIONS[i]`` upgrades version ``i`` to ``i + 1``, one
#: statement at a time (plus Python steps, called with the database, for data moves).
#: Append new steps, never edit old ones.
MIGRATIONS: list[list[str | Callable[[Database], None]]] = [
    list(_statements(_SCHEMA_V1)),
    [*_SCHEMA_V2, lambda db: _split_task_logs(db)],
]

#: ``--durability``: what a commit promises (see docs/server.md).
DURABILITY_PRAGMAS = {"full": "FULL", "normal": "NORMAL"}


class DatabaseInUseError(RuntimeError):
    """Another server holds the database file (one server per SQLite file)."""


class Database:
    """The server's single SQLite connection (see the module docstring for the rules)."""

    def __init__(
        self, path: str | Path, *, busy_timeout_ms: int = 5000, durability: str = "normal"
    ) -> None:
        if durability not in DURABILITY_PRAGMAS:
            raise ValueError(
                f"durability must be one of {', '.join(DURABILITY_PRAGMAS)}, not {durability!r}"
            )
        self.path = str(path)
        self.durability = durability
        self._busy_timeout_ms = busy_timeout_ms
        self._conn: sqlite3.Connection | None = None
        self._lock: _FileLock | None = None
        self._depth = 0
        self._owner: object = None

    # -- lifecycle --------------------------------------------------------------------------

    def open(self) -> None:
        """Open the connection, set the pragmas and migrate the schema (idempotent)."""
        if self._conn is not None:
            return
        if self.path != ":memory:":
            Path(self.path).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)
            # before anything touches the file: one server per database file
            self._lock = _FileLock.acquire(self.path)
        try:
            conn = sqlite3.connect(
                self.path, isolation_level=None, timeout=self._busy_timeout_ms / 1e3
            )
        except BaseException:
            self._release_lock()
            raise
        conn.row_factory = sqlite3.Row
        self._conn = conn
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_ms)}")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute(f"PRAGMA synchronous = {DURABILITY_PRAGMAS[self.durability]}")
            conn.execute("PRAGMA foreign_keys = ON")
            self.migrate()
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Close the connection (idempotent)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.execute("PRAGMA optimize")
            except sqlite3.Error:  # pragma: no cover - best effort
                pass
            conn.close()
        self._release_lock()

    def _release_lock(self) -> None:
        lock, self._lock = self._lock, None
        if lock is not None:
            lock.release()

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            raise RuntimeError("database is not open")
        return self._conn

    def schema_version(self) -> int:
        """The schema version stored in the database (0 for an empty file)."""
        exists = self.conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
        ).fetchone()
        if not exists:
            return 0
        row = self.conn.execute("SELECT version FROM schema_version").fetchone()
        return int(row[0]) if row else 0

    def migrate(self) -> None:
        """Apply the missing migrations, each in its own transaction."""
        current = self.schema_version()
        if current > len(MIGRATIONS):
            raise RuntimeError(
                f"database {self.path} has schema version {current}, newer than this server "
                f"supports ({len(MIGRATIONS)}); upgrade elluminate"
            )
        for version in range(current, len(MIGRATIONS)):
            with self.transaction():
                if version == 0:
                    self.conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
                    self.conn.execute("INSERT INTO schema_version (version) VALUES (0)")
                for step in MIGRATIONS[version]:
                    if callable(step):
                        step(self)
                    else:
                        self.conn.execute(step)
                self.conn.execute("UPDATE schema_version SET version = ?", (version + 1,))
            log.info("database %s migrated to schema version %d", self.path, version + 1)

    # -- transactions -----------------------------------------------------------------------

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT`` (``ROLLBACK`` on error); nesting joins the outer.

        Never ``await`` inside: the block must run to completion without yielding.
        """
        owner = _current_owner()
        if self._depth:
            if owner is not self._owner:
                raise RuntimeError(
                    "a transaction is already open in another task: never await inside "
                    "`with db.transaction():`"
                )
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        self.conn.execute("BEGIN IMMEDIATE")
        self._depth, self._owner = 1, owner
        try:
            yield
        except BaseException:
            self._depth, self._owner = 0, None
            self.conn.execute("ROLLBACK")
            raise
        self._depth, self._owner = 0, None
        self.conn.execute("COMMIT")

    @property
    def in_transaction(self) -> bool:
        return self._depth > 0

    @contextlib.contextmanager
    def savepoint(self, name: str = "sp") -> Iterator[None]:
        """A nested savepoint inside the current transaction (rolled back on error)."""
        self.conn.execute(f"SAVEPOINT {name}")
        try:
            yield
        except BaseException:
            self.conn.execute(f"ROLLBACK TO {name}")
            self.conn.execute(f"RELEASE {name}")
            raise
        self.conn.execute(f"RELEASE {name}")

    # -- queries ----------------------------------------------------------------------------

    def execute(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> sqlite3.Cursor:
        return self.conn.execute(sql, params)

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> sqlite3.Cursor:
        return self.conn.executemany(sql, rows)

    def fetchone(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> sqlite3.Row | None:
        row: sqlite3.Row | None = self.conn.execute(sql, params).fetchone()
        return row

    def fetchall(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[sqlite3.Row]:
        return self.conn.execute(sql, params).fetchall()

    def fetchval(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> Any:
        row = self.conn.execute(sql, params).fetchone()
        return None if row is None else row[0]

    def insert(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> int:
        """Run an INSERT and return the new row id."""
        cursor = self.conn.execute(sql, params)
        rowid = cursor.lastrowid
        assert rowid is not None
        return rowid

    def delete_or_hide(self, table: str, row_id: int) -> bool:
        """Delete a row; if other rows still reference it, set ``deleted_at`` instead.

        Returns True for a real delete. Must run inside a transaction.
        """
        if not self.in_transaction:
            raise RuntimeError("delete_or_hide must run inside db.transaction()")
        try:
            with self.savepoint("delete_or_hide"):
                self.conn.execute(f"DELETE FROM {table} WHERE id = ?", (row_id,))
            return True
        except sqlite3.IntegrityError:
            self.conn.execute(
                f"UPDATE {table} SET deleted_at = ? WHERE id = ? AND deleted_at IS NULL",
                (now(), row_id),
            )
            return False


def _current_owner() -> object:
    """The running asyncio task (or the thread, outside a loop): who owns a transaction."""
    try:
        task = asyncio.current_task()
    except RuntimeError:
        task = None
    if task is not None:
        return task
    import threading

    return threading.current_thread()


def _split_task_logs(db: Database) -> None:
    """Migration step: the log text of each existing task becomes one row per line."""
    for task_id, logs in db.fetchall("SELECT id, logs FROM tasks WHERE logs != ''"):
        db.executemany(
            "INSERT INTO task_logs (task_id, seq, line) VALUES (?, ?, ?)",
            [(task_id, seq, line) for seq, line in enumerate(logs.splitlines(keepends=True))],
        )
    db.execute("UPDATE tasks SET logs = ''")


class _FileLock:
    """An exclusive advisory lock on ``<database>.lock``, held while the server runs.

    The operating system releases it when the process ends, however it ends (SIGKILL
    included), so a crashed server never leaves a stale lock. The lock file holds the
    owner's process id, for the message a second server shows. (``fcntl``/``msvcrt`` from
    the standard library: twenty lines do not justify a dependency for every SDK user.)
    """

    def __init__(self, path: str, handle: Any) -> None:
        self.path = path
        self._handle = handle

    @classmethod
    def acquire(cls, db_path: str) -> _FileLock:
        lock_path = str(Path(db_path).expanduser().resolve()) + ".lock"
        handle = open(lock_path, "a+", encoding="utf-8")  # noqa: SIM115 - held until release
        try:
            _lock_exclusive(handle)
        except OSError:
            handle.seek(0)
            owner = handle.read().strip()
            handle.close()
            who = f" (process {owner})" if owner.isdigit() else ""
            raise DatabaseInUseError(
                f"database file {db_path} is in use by another elluminate server{who}: only one "
                f"server may use a SQLite file at a time (lock file {lock_path}). Stop that "
                "server, or start this one with another --db."
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        return cls(lock_path, handle)

    def release(self) -> None:
        handle, self._handle = self._handle, None
        if handle is not None:
            handle.close()  # closing the descriptor releases the lock


def _lock_exclusive(handle: Any) -> None:
    """Take a non-blocking exclusive lock on an open file (OSError when held elsewhere)."""
    if sys.platform == "win32":  # pragma: no cover - not tested on this platform
        import msvcrt

        handle.seek(0)
        msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
    else:
        import fcntl

        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
