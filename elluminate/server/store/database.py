"""The SQLite store (the embedded default): one file, one server, one connection.

* One ``sqlite3`` connection per server (WAL, ``foreign_keys=ON``, ``busy_timeout``), in
  autocommit mode. Statements are SQLAlchemy Core statements compiled once for SQLite
  (:mod:`.compiler`) and run inline on the event-loop thread: a few microseconds each, no
  thread hop. ``async with db.begin() as conn`` is a write block: all of its writes commit or
  none do, and it returns once they are committed; ``async with db.connect() as conn`` a read.
  An async lock makes blocks exclusive, so even an ``await`` inside a transaction never lets
  another request's statements into it, and "database is locked" cannot happen.
* Group commit: the write blocks of one event-loop turn share one ``BEGIN IMMEDIATE`` ...
  ``COMMIT`` (each block after the first in a ``SAVEPOINT``, undone alone when it raises),
  since the commit is most of a small write's cost. A read commits the open group first, so
  reads see committed data only (see :meth:`Database.begin`).
* One server per file: an exclusive lock on ``<db>.lock`` (see :class:`.file_lock.FileLock`).
* The schema is created or migrated on open (:mod:`.migrate`: Alembic revisions).
* JSON columns are TEXT written with :func:`dumps` (msgspec) and read with :func:`loads`.
* Timestamps are ISO-8601 UTC text (``...Z``, sortable): write ``utcnow()`` datetimes, read
  with :func:`ts` (which also reads the datetimes of PostgreSQL).
* Integer ids are ``AUTOINCREMENT``: an id is never reused, so a stale id never finds a
  different object.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import msgspec
from sqlalchemy import Boolean
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.sql import ClauseElement

from .compiler import StatementCache
from .connection import ForeignKeyViolation, IntegrityError, UniqueViolation
from .file_lock import FileLock
from .migrate import migrate_sqlite

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


def utcnow() -> datetime:
    """The current time (UTC, aware): what async store code writes to timestamp columns."""
    return datetime.now(timezone.utc)


def to_text(value: datetime) -> str:
    """A timestamp as SQLite stores it: ISO-8601 UTC with microseconds (sortable as text)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc).isoformat(timespec="microseconds").replace(
        "+00:00", "Z"
    )


def now() -> str:
    """The current UTC time as SQLite stores it (for the synchronous API)."""
    return to_text(utcnow())


_ts_cache: dict[str, datetime] = {}


def ts(value: str | datetime) -> datetime:
    """A stored timestamp as an aware datetime: ISO text (SQLite) or a datetime (PostgreSQL).

    Text is parsed once per distinct value (many rows share a timestamp).
    """
    if isinstance(value, datetime):
        return value
    cached = _ts_cache.get(value)
    if cached is None:
        cached = datetime.fromisoformat(value.replace("Z", "+00:00"))
        if len(_ts_cache) > 4096:
            _ts_cache.clear()
        _ts_cache[value] = cached
    return cached


def ts_or_none(value: str | datetime | None) -> datetime | None:
    """:func:`ts`, with ``None`` for SQL NULL."""
    return None if value is None else ts(value)


#: ``--durability``: what a commit promises (see docs/server.md).
DURABILITY_PRAGMAS = {"full": "FULL", "normal": "NORMAL"}


def sqlite_path(value: str) -> str:
    """The file of a SQLite ``--db``: ``PATH`` or ``sqlite:///PATH`` (``sqlite:////abs``)."""
    if value.startswith("sqlite:///"):
        return value[len("sqlite:///") :] or ":memory:"
    if value.startswith("sqlite://"):
        return value[len("sqlite://") :] or ":memory:"
    return value


class Database:
    """The server's single SQLite connection (see the module docstring for the rules)."""

    def __init__(
        self, path: str | Path, *, busy_timeout_ms: int = 5000, durability: str = "normal"
    ) -> None:
        if durability not in DURABILITY_PRAGMAS:
            raise ValueError(
                f"durability must be one of {', '.join(DURABILITY_PRAGMAS)}, not {durability!r}"
            )
        self.path = sqlite_path(str(path))
        self.durability = durability
        self.dialect_name = "sqlite"
        self.statements = StatementCache(sqlite_dialect.dialect(), native=(Boolean,))
        self._busy_timeout_ms = busy_timeout_ms
        self._conn: sqlite3.Connection | None = None
        self._lock: FileLock | None = None
        self._depth = 0
        self._owner: object = None
        self._block = asyncio.Lock()  # one async block (transaction or read) at a time
        self._group: _CommitGroup | None = None  # the open transaction of group commit
        self._joined = False  # whether the block that runs now joined an open group
        # the task that commits after a block awaiting inside its transaction (a reference
        # kept, as the event loop holds tasks weakly)
        self._committer: asyncio.Task[None] | None = None
        self._listeners: dict[str, list[Callable[[str], None]]] = {}

    # -- lifecycle --------------------------------------------------------------------------

    def open(self) -> None:
        """Open the connection, set the pragmas and migrate the schema (idempotent)."""
        if self._conn is not None:
            return
        if self.path != ":memory:":
            Path(self.path).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)
            # before anything touches the file: one server per database file
            self._lock = FileLock.acquire(self.path)
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
            # statement journals in memory: an insert that fires a trigger on a table with a
            # unique index (responses) writes one; as a temporary file it tripled the insert
            conn.execute("PRAGMA temp_store = MEMORY")
            migrate_sqlite(conn, self.path)
        except BaseException:
            self.close()
            raise

    async def start(self) -> None:
        """:meth:`open` (the store interface the app uses for both databases)."""
        self.open()

    async def stop(self) -> None:
        """:meth:`close`."""
        self.close()

    def close(self) -> None:
        """Close the connection (idempotent). The open commit group is committed first, but
        not a block still in the middle of its transaction: its writes are undone."""
        if self._conn is not None:
            if self._depth and self._group is not None:
                self._undo_block(self._group, self._joined)
                self._depth, self._owner = 0, None
            self._commit_group()
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

    # -- the async API (SQLAlchemy Core statements; see .connection) ------------------------

    @contextlib.asynccontextmanager
    async def begin(self) -> AsyncIterator[SQLiteConnection]:
        """A write transaction: all of the block's writes commit, or none (``ROLLBACK`` when
        the block raises), and the block returns only once they are committed. Inside the
        task that holds a transaction, it joins that transaction.

        Group commit: the blocks that run in one turn of the event loop share one
        ``COMMIT`` (each after the first in its own ``SAVEPOINT``, so a block that raises
        undoes only its own writes). A commit is the expensive part of a small write; a
        reader commits the open group first, so reads see committed data only.
        """
        owner = _current_owner()
        if self._depth and owner is self._owner:
            yield SQLiteConnection(self)
            return
        async with self._block:
            group = self._group
            joined = group is not None
            if group is None:
                self.conn.execute("BEGIN IMMEDIATE")
                group = self._group = _CommitGroup(asyncio.get_running_loop())
                group.loop.call_soon(self._commit_when_free, group)
            else:
                self.conn.execute("SAVEPOINT block")
            self._depth, self._owner, self._joined = 1, owner, joined
            connection = SQLiteConnection(self)
            try:
                yield connection
            except BaseException:
                self._depth, self._owner = 0, None
                self._undo_block(group, joined)
                raise
            self._depth, self._owner = 0, None
            if joined:
                self.conn.execute("RELEASE block")
            group.notifications.extend(connection.pending_notifications)
            group.blocks += 1
        # shielded: a caller cancelled here does not cancel the others' wait for the commit
        await asyncio.shield(group.committed)

    def _undo_block(self, group: _CommitGroup, joined: bool) -> None:
        """Undo a block that raised: its savepoint, or the whole transaction when it was
        the first (no other block's writes are in it yet)."""
        if not self.conn.in_transaction:  # SQLite rolled the transaction back itself
            self._group = None
            group.fail(sqlite3.OperationalError("the transaction was rolled back by SQLite"))
        elif joined:
            self.conn.execute("ROLLBACK TO block")
            self.conn.execute("RELEASE block")
        else:
            self._group = None
            self.conn.execute("ROLLBACK")
            group.fail(None)

    def _commit_when_free(self, group: _CommitGroup) -> None:
        """Commit ``group`` at the start of the next loop turn, or as soon as the block that
        holds the connection now (one that awaits inside its transaction) is done."""
        if self._group is not group:
            return  # committed by a reader, or rolled back
        if self._block.locked():
            self._committer = group.loop.create_task(self._commit_after_block(group))
        else:
            self._commit_group()

    async def _commit_after_block(self, group: _CommitGroup) -> None:
        async with self._block:
            if self._group is group:
                self._commit_group()

    def _commit_group(self) -> None:
        """``COMMIT`` the open group and wake its blocks (or hand them the error)."""
        group, self._group = self._group, None
        if group is None:
            return
        try:
            self.conn.execute("COMMIT")
        except sqlite3.Error as exc:
            log.warning("commit of %d write blocks failed: %s", group.blocks, exc)
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            group.fail(_integrity_error(exc) if isinstance(exc, sqlite3.IntegrityError) else exc)
            return
        group.succeed()
        self._dispatch(group.notifications)

    @contextlib.asynccontextmanager
    async def connect(self) -> AsyncIterator[SQLiteConnection]:
        """A connection for reads: it sees committed data (and, inside the task that holds
        a transaction, that transaction's writes)."""
        if self._depth and _current_owner() is self._owner:
            yield SQLiteConnection(self)
            return
        async with self._block:
            self._commit_group()  # the open group first: no read sees uncommitted writes
            yield SQLiteConnection(self)

    async def listen(self, channel: str, callback: Callable[[str], None]) -> None:
        """Call ``callback(payload)`` after each commit that notified ``channel``."""
        self._listeners.setdefault(channel, []).append(callback)

    def _dispatch(self, notifications: list[tuple[str, str]]) -> None:
        for channel, payload in notifications:
            for callback in list(self._listeners.get(channel, ())):
                try:
                    callback(payload)
                except Exception:  # pragma: no cover - a listener's bug must not stop others
                    log.exception("listener of %s failed", channel)

class _CommitGroup:
    """The write blocks that share one ``COMMIT`` (see :meth:`Database.begin`)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.committed: asyncio.Future[None] = loop.create_future()
        self.notifications: list[tuple[str, str]] = []
        self.blocks = 0

    def succeed(self) -> None:
        if not self.committed.done():
            self.committed.set_result(None)

    def fail(self, error: BaseException | None) -> None:
        """The group's writes are gone: its finished blocks raise ``error`` (``None``: there
        are none, the only block raised its own error)."""
        if self.committed.done():
            return
        if error is None:
            self.committed.set_result(None)
        else:
            self.committed.set_exception(error)
            self.committed.exception()  # retrieved: no "never retrieved" warning if unawaited


class SQLiteConnection:
    """:class:`~.connection.Connection` over the database's one ``sqlite3`` connection.

    Statements run inline on the event-loop thread (microseconds each, no thread hop); the
    database's async lock makes each block exclusive, so even an ``await`` inside a
    transaction cannot let another request's statements into it.
    """

    dialect_name = "sqlite"

    def __init__(self, db: Database) -> None:
        self._conn = db.conn
        self._cache = db.statements
        self._savepoints = 0
        self.pending_notifications: list[tuple[str, str]] = []

    def _run(self, stmt: ClauseElement, params: Mapping[str, Any] | None) -> sqlite3.Cursor:
        params = params or {}
        compiled = self._cache.compiled(stmt, params)
        args = [to_text(v) if isinstance(v, datetime) else v for v in compiled.arguments(params)]
        try:
            return self._conn.execute(compiled.sql, args)
        except sqlite3.IntegrityError as exc:
            raise _integrity_error(exc) from exc

    async def fetchall(
        self, stmt: ClauseElement, params: Mapping[str, Any] | None = None
    ) -> list[Any]:
        return self._run(stmt, params).fetchall()

    async def fetchone(self, stmt: ClauseElement, params: Mapping[str, Any] | None = None) -> Any:
        return self._run(stmt, params).fetchone()

    async def fetchval(self, stmt: ClauseElement, params: Mapping[str, Any] | None = None) -> Any:
        row = self._run(stmt, params).fetchone()
        return None if row is None else row[0]

    async def execute(self, stmt: ClauseElement, params: Mapping[str, Any] | None = None) -> int:
        return self._run(stmt, params).rowcount

    async def executemany(self, stmt: ClauseElement, params: Sequence[Mapping[str, Any]]) -> None:
        if not params:
            return
        compiled = self._cache.compiled(stmt, params[0])
        texts: dict[datetime, str] = {}  # a batch's rows share timestamps: convert each once

        def text(value: datetime) -> str:
            converted = texts.get(value)
            if converted is None:
                converted = texts[value] = to_text(value)
            return converted

        rows = [
            [text(v) if isinstance(v, datetime) else v for v in compiled.arguments(item)]
            for item in params
        ]
        try:
            self._conn.executemany(compiled.sql, rows)
        except sqlite3.IntegrityError as exc:
            raise _integrity_error(exc) from exc

    async def insert(self, stmt: ClauseElement, params: Mapping[str, Any] | None = None) -> Any:
        row = self._run(stmt, params).fetchone()
        return None if row is None else row[0]

    @contextlib.asynccontextmanager
    async def savepoint(self) -> AsyncIterator[None]:
        self._savepoints += 1
        name = f"sp{self._savepoints}"
        self._conn.execute(f"SAVEPOINT {name}")
        try:
            yield
        except BaseException:
            self._conn.execute(f"ROLLBACK TO {name}")
            self._conn.execute(f"RELEASE {name}")
            raise
        self._conn.execute(f"RELEASE {name}")

    def statement_guard(self) -> contextlib.AbstractAsyncContextManager[None]:
        # a statement that fails on a constraint undoes only itself (SQLite's ABORT)
        return contextlib.nullcontext()

    def notify(self, channel: str, payload: str) -> None:
        self.pending_notifications.append((channel, payload))

    def change_marker(self) -> tuple[int, int] | None:
        """A value that changes with every write to the file: the connection's
        ``total_changes`` (this server's writes) and ``PRAGMA data_version`` (commits by
        any other connection). Caches of built structs are keyed by it."""
        return (
            self._conn.total_changes,
            self._conn.execute("PRAGMA data_version").fetchone()[0],
        )


def _integrity_error(exc: sqlite3.IntegrityError) -> IntegrityError:
    message = str(exc)
    if "UNIQUE" in message:
        return UniqueViolation(message)
    if "FOREIGN KEY" in message:
        return ForeignKeyViolation(message)
    return IntegrityError(message)


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
