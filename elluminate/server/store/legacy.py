"""SQLite files made before the store used Alembic: a ``schema_version`` table, schema 1 or 2.

Schema 1 is the first release's; schema 2 added one response per (experiment, row, epoch),
task logs as one row per line and the experiments' ``deleting`` flag. :func:`upgrade_to_v2`
brings a schema-1 file to schema 2, which is what Alembic's baseline revision describes;
:mod:`.migrate` then stamps it and hands it to Alembic. Nothing here is used for new files.
"""

from __future__ import annotations

import logging
import sqlite3

log = logging.getLogger("elluminate.server.store.legacy")

#: Schema 1 -> 2. The row is copied onto each response so that SQLite can index it;
#: duplicates left by older versions (two servers on one file) are removed first, keeping the
#: first response of each (row, epoch).
SCHEMA_2: list[str] = [
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
    "CREATE TABLE task_logs (id INTEGER PRIMARY KEY AUTOINCREMENT, task_id TEXT NOT NULL "
    "REFERENCES tasks(id) ON DELETE CASCADE, line TEXT NOT NULL)",
    "CREATE INDEX ix_task_logs_task ON task_logs(task_id, id)",
]


def upgrade_to_v2(conn: sqlite3.Connection, path: str) -> None:
    """Bring a schema-1 (or 2) file to schema 2, in one transaction."""
    version = conn.execute("SELECT version FROM schema_version").fetchone()
    current = int(version[0]) if version else 0
    if current >= 2:
        if current > 2:
            raise RuntimeError(
                f"database {path} has schema version {current}, newer than this server "
                "supports: upgrade elluminate"
            )
        return
    if current < 1:
        raise RuntimeError(f"database {path} has no complete schema (version {current})")
    conn.execute("BEGIN IMMEDIATE")
    try:
        for statement in SCHEMA_2:
            conn.execute(statement)
        for task_id, logs in conn.execute("SELECT id, logs FROM tasks WHERE logs != ''").fetchall():
            conn.executemany(
                "INSERT INTO task_logs (task_id, line) VALUES (?, ?)",
                [(task_id, line) for line in logs.splitlines(keepends=True)],
            )
        conn.execute("UPDATE tasks SET logs = ''")
        conn.execute("UPDATE schema_version SET version = 2")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    log.info("database %s migrated to schema version 2", path)
