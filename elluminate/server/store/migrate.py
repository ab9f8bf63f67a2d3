"""Bring a database to the current schema when a server opens it.

* A new, empty database gets the current schema at once (the DDL of :mod:`.schema`) and is
  stamped with the newest Alembic revision, :data:`HEAD`: the same result as running every
  migration (a test checks that), without loading Alembic on every start.
* A database at :data:`HEAD` is left alone.
* A database at an older revision is upgraded by Alembic (the scripts in ``migrations/``), one
  transaction per revision.
* A SQLite file made before the store used Alembic (a ``schema_version`` table) is first
  brought to schema 2 by :mod:`.legacy`, stamped with :data:`BASELINE` and then upgraded like
  any other.
* A database migrated by a newer elluminate (a revision this one does not know) is refused.
"""

from __future__ import annotations

import logging
import re
import sqlite3
from pathlib import Path
from typing import Any

from sqlalchemy.schema import CreateIndex, CreateTable

from .schema import RESULTS_TRIGGERS, metadata

log = logging.getLogger("elluminate.server.store.migrate")

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
#: The first Alembic revision: the schema of the files made by schema version 2.
BASELINE = "0001"
#: The newest revision (a test checks it against the migration scripts).
HEAD = "0004"

VERSION_TABLE = (
    "CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL, "
    "CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num))"
)


class SchemaTooNewError(RuntimeError):
    """The database was migrated by a newer elluminate than this one."""


_REVISION = re.compile(r"^revision\s*=\s*[\"']([^\"']+)[\"']", re.MULTILINE)


def known_revisions() -> set[str]:
    """The revision ids of the packaged migration scripts (their ``revision = "..."``)."""
    found: set[str] = set()
    for path in (MIGRATIONS_DIR / "versions").glob("[0-9]*_*.py"):
        match = _REVISION.search(path.read_text(encoding="utf-8"))
        if match is not None:
            found.add(match.group(1))
    return found


def needs_upgrade(revision: str | None, where: str) -> bool:
    """Whether a database at ``revision`` must be upgraded (raise if it is too new)."""
    if revision == HEAD:
        return False
    if revision is not None and revision not in known_revisions():
        raise SchemaTooNewError(
            f"database {where} has schema revision {revision}, which this elluminate does not "
            "know (a newer version migrated it): upgrade elluminate"
        )
    return True


def create_statements(dialect: Any) -> list[str]:
    """The DDL of the current schema: tables in dependency order, each with its indexes,
    then the triggers."""
    statements: list[str] = []
    for table in metadata.sorted_tables:
        statements.append(str(CreateTable(table).compile(dialect=dialect)).strip())
        for index in sorted(table.indexes, key=lambda i: str(i.name)):
            statements.append(str(CreateIndex(index).compile(dialect=dialect)).strip())
    statements += RESULTS_TRIGGERS[dialect.name]
    return statements


def alembic_upgrade(connection: Any) -> None:
    """Run the Alembic migrations up to HEAD on a SQLAlchemy (sync) connection."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


def migrate_sqlite(conn: sqlite3.Connection, path: str) -> None:
    """Migrate the SQLite database on ``conn`` (a ``sqlite3`` connection in autocommit mode,
    foreign keys on); the caller holds the file's server lock."""
    from sqlalchemy.dialects import sqlite as sqlite_dialect

    from . import legacy

    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if "alembic_version" in tables:
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        if not needs_upgrade(None if row is None else row[0], path):
            return
    elif "schema_version" in tables:
        legacy.upgrade_to_v2(conn, path)
        with _transaction(conn):
            conn.execute(VERSION_TABLE)
            conn.execute("INSERT INTO alembic_version (version_num) VALUES (?)", (BASELINE,))
            conn.execute("DROP TABLE schema_version")
        log.info("database %s: schema 2 stamped as revision %s", path, BASELINE)
        if BASELINE == HEAD:
            return
    elif tables - {"sqlite_sequence"}:
        raise RuntimeError(
            f"{path} is a SQLite database, but not one of elluminate's (it has tables "
            f"{', '.join(sorted(tables)[:5])}, ...): use another --db"
        )
    else:
        with _transaction(conn):
            for statement in create_statements(sqlite_dialect.dialect()):
                conn.execute(statement)
            conn.execute(VERSION_TABLE)
            conn.execute("INSERT INTO alembic_version (version_num) VALUES (?)", (HEAD,))
        log.info("database %s created at schema revision %s", path, HEAD)
        return
    from sqlalchemy import create_engine

    engine = create_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as sa_conn:
            alembic_upgrade(sa_conn)
    finally:
        engine.dispose()
    log.info("database %s upgraded to schema revision %s", path, HEAD)


class _transaction:
    """``BEGIN IMMEDIATE`` ... ``COMMIT`` on a sqlite3 connection (``ROLLBACK`` on error)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> None:
        self.conn.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self.conn.execute("ROLLBACK" if exc_type is not None else "COMMIT")
