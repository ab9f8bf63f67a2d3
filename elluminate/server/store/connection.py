"""The store's query interface: one API over SQLite and PostgreSQL connections.

Repositories receive a :class:`Connection` (from ``async with store.begin() as conn`` for a
write transaction, ``async with store.connect() as conn`` for reads) and run SQLAlchemy Core
statements on it::

    row = await conn.fetchone(BY_ID, {"id": 3, "pid": 1})
    new_id = await conn.insert(INSERT_TEMPLATE, {...})      # a statement with RETURNING id
    changed = await conn.execute(UPDATE_NAME, {...})        # the number of rows it changed

Rows are the driver's (``sqlite3.Row``, ``asyncpg.Record``): both index by column name and by
position. Values come back as each driver gives them: on SQLite timestamps are ISO text and
booleans integers, on PostgreSQL ``datetime`` and ``bool``; ``database.ts`` and ``bool()`` read
both. Parameters must have the column's Python type (``datetime`` for timestamps, ``bool`` for
flags, ``str`` for JSON text).
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from sqlalchemy.sql import ClauseElement


class IntegrityError(Exception):
    """A constraint refused a write (the transaction or savepoint is rolled back)."""


class UniqueViolation(IntegrityError):
    """A unique key or index already holds the value."""


class ForeignKeyViolation(IntegrityError):
    """A row is still referenced, or references a row that does not exist."""


class TextNotStorable(Exception):
    """A text value the database cannot store (PostgreSQL: a NUL character)."""


class Row(Protocol):
    """A result row: by column name or by position."""

    def __getitem__(self, key: Any) -> Any: ...

    def keys(self) -> Any: ...


class Connection(Protocol):
    """Runs statements on one database connection (in a transaction or not)."""

    dialect_name: str

    async def fetchall(
        self, stmt: ClauseElement, params: Mapping[str, Any] | None = None
    ) -> list[Any]:
        """Every row of a query."""
        ...

    async def fetchone(self, stmt: ClauseElement, params: Mapping[str, Any] | None = None) -> Any:
        """The first row of a query, or None."""
        ...

    async def fetchval(self, stmt: ClauseElement, params: Mapping[str, Any] | None = None) -> Any:
        """The first column of the first row, or None."""
        ...

    async def execute(self, stmt: ClauseElement, params: Mapping[str, Any] | None = None) -> int:
        """Run a statement; the number of rows it changed."""
        ...

    async def executemany(self, stmt: ClauseElement, params: Sequence[Mapping[str, Any]]) -> None:
        """Run a statement once per parameter set."""
        ...

    async def insert(self, stmt: ClauseElement, params: Mapping[str, Any] | None = None) -> Any:
        """Run an INSERT ... RETURNING <one column>; the returned value."""
        ...

    def savepoint(self) -> contextlib.AbstractAsyncContextManager[None]:
        """A nested transaction: rolled back alone when its block raises."""
        ...

    def statement_guard(self) -> contextlib.AbstractAsyncContextManager[None]:
        """Around one statement whose constraint error the caller catches: the transaction
        stays usable after it. A savepoint on PostgreSQL (where a failed statement aborts the
        transaction); nothing on SQLite, where a failed statement undoes only itself."""
        ...

    def notify(self, channel: str, payload: str) -> None:
        """Wake listeners of ``channel`` once this transaction commits."""
        ...

    def change_marker(self) -> Any:
        """A value that changes with every write to the database, or None when it cannot
        be known (other replicas write): caches of built structs are keyed by it."""
        ...


class Store(Protocol):
    """A database: SQLite (:class:`~.database.Database`) or PostgreSQL
    (:class:`~.postgres.PostgresDatabase`)."""

    dialect_name: str
    #: the database file, or the URL without its password
    path: str

    async def start(self) -> None:
        """Open the database: connect, migrate the schema."""
        ...

    async def stop(self) -> None:
        """Close it (idempotent)."""
        ...

    def begin(self) -> contextlib.AbstractAsyncContextManager[Any]:
        """A write transaction: ``async with store.begin() as conn`` (a :class:`Connection`)."""
        ...

    def connect(self) -> contextlib.AbstractAsyncContextManager[Any]:
        """A connection for reads: ``async with store.connect() as conn``."""
        ...

    async def listen(self, channel: str, callback: Any) -> None:
        """Call ``callback(payload)`` for every committed notification on ``channel``."""
        ...
