"""PostgreSQL store (``--db postgresql://USER:PASSWORD@HOST:PORT/DBNAME``), on asyncpg.

Several servers (replicas) may share one database. Each holds a pool of connections for its
requests and tasks, and one more connection that LISTENs for the store's notifications, so
any replica can serve any task's progress and react to a cancel at once. Migrations run under
an advisory lock, so replicas that start together migrate once.

Statements are the same SQLAlchemy Core statements as on SQLite (:mod:`.compiler`), compiled
for the asyncpg dialect; rows are ``asyncpg.Record`` (by name and by position, like
``sqlite3.Row``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy.dialects.postgresql import asyncpg as asyncpg_dialect
from sqlalchemy.sql import ClauseElement

from .compiler import StatementCache
from .connection import ForeignKeyViolation, IntegrityError, TextNotStorable, UniqueViolation
from .migrate import HEAD, VERSION_TABLE, create_statements, needs_upgrade

log = logging.getLogger("elluminate.server.store.postgres")

#: Seconds :meth:`PostgresDatabase.close` waits for connections in use before it terminates them.
CLOSE_TIMEOUT = 10.0

#: The dialect statements are compiled for (asyncpg's ``$n`` parameters).
POSTGRES_DIALECT: Any = asyncpg_dialect.dialect()  # type: ignore[no-untyped-call]

#: ``pg_advisory_lock`` key held while a replica migrates.
MIGRATION_LOCK = 0x656C6C75  # "ellu"


def is_postgres_url(value: str) -> bool:
    """Whether ``--db`` names a PostgreSQL database (else it is a SQLite file)."""
    return value.startswith(("postgresql://", "postgres://", "postgresql+asyncpg://"))


def redact(url: str) -> str:
    """The URL with its password replaced (for messages and logs)."""
    parts = urlsplit(url)
    if not parts.password:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


def dsn(url: str) -> str:
    """The libpq form of the URL (asyncpg does not know SQLAlchemy's driver suffix)."""
    for prefix in ("postgresql+asyncpg://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql://" + url[len(prefix) :]
    return url


class PostgresConnection:
    """:class:`~.connection.Connection` over one pooled asyncpg connection."""

    dialect_name = "postgresql"

    def __init__(self, raw: Any, cache: StatementCache) -> None:
        self._raw = raw
        self._cache = cache
        self.pending_notifications: list[tuple[str, str]] = []

    def _prepare(
        self, stmt: ClauseElement, params: Mapping[str, Any] | None
    ) -> tuple[str, list[Any]]:
        params = params or {}
        compiled = self._cache.compiled(stmt, params)
        return compiled.sql, compiled.arguments(params)

    async def fetchall(
        self, stmt: ClauseElement, params: Mapping[str, Any] | None = None
    ) -> list[Any]:
        sql, args = self._prepare(stmt, params)
        async with _mapped_errors():
            return list(await self._raw.fetch(sql, *args))

    async def fetchone(self, stmt: ClauseElement, params: Mapping[str, Any] | None = None) -> Any:
        sql, args = self._prepare(stmt, params)
        async with _mapped_errors():
            return await self._raw.fetchrow(sql, *args)

    async def fetchval(self, stmt: ClauseElement, params: Mapping[str, Any] | None = None) -> Any:
        sql, args = self._prepare(stmt, params)
        async with _mapped_errors():
            return await self._raw.fetchval(sql, *args)

    async def execute(self, stmt: ClauseElement, params: Mapping[str, Any] | None = None) -> int:
        sql, args = self._prepare(stmt, params)
        async with _mapped_errors():
            status: str = await self._raw.execute(sql, *args)
        count = status.rsplit(" ", 1)[-1]  # "UPDATE 3", "DELETE 0", "INSERT 0 1"
        return int(count) if count.isdigit() else 0

    async def executemany(self, stmt: ClauseElement, params: Sequence[Mapping[str, Any]]) -> None:
        if not params:
            return
        compiled = self._cache.compiled(stmt, params[0])
        async with _mapped_errors():
            await self._raw.executemany(compiled.sql, [compiled.arguments(p) for p in params])

    async def insert(self, stmt: ClauseElement, params: Mapping[str, Any] | None = None) -> Any:
        return await self.fetchval(stmt, params)

    @contextlib.asynccontextmanager
    async def savepoint(self) -> AsyncIterator[None]:
        async with _mapped_errors(), self._raw.transaction():
            yield

    def statement_guard(self) -> contextlib.AbstractAsyncContextManager[None]:
        # a failed statement aborts a PostgreSQL transaction: keep it usable with a savepoint
        return self.savepoint()

    def notify(self, channel: str, payload: str) -> None:
        self.pending_notifications.append((channel, payload))

    def change_marker(self) -> None:
        """None: other replicas write too, so built structs are not shared across requests."""
        return None


@contextlib.asynccontextmanager
async def _mapped_errors() -> AsyncIterator[None]:
    import asyncpg

    try:
        yield
    except asyncpg.UniqueViolationError as exc:
        raise UniqueViolation(str(exc)) from exc
    except asyncpg.ForeignKeyViolationError as exc:
        raise ForeignKeyViolation(str(exc)) from exc
    except asyncpg.IntegrityConstraintViolationError as exc:
        raise IntegrityError(str(exc)) from exc
    except (asyncpg.CharacterNotInRepertoireError, asyncpg.UntranslatableCharacterError) as exc:
        raise TextNotStorable(str(exc)) from exc


class PostgresDatabase:
    """A pool of asyncpg connections plus one LISTEN connection (see the module docstring)."""

    dialect_name = "postgresql"

    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        self.url = url
        self.path = redact(url)
        self.statements = StatementCache(POSTGRES_DIALECT)
        self._pool_size = pool_size
        self._pool: Any = None
        self._listen_conn: Any = None
        self._listeners: dict[str, list[Callable[[str], None]]] = {}

    async def open(self) -> None:
        """Connect, migrate (once, whichever replica comes first) and start listening."""
        if self._pool is not None:
            return
        try:
            import asyncpg
        except ImportError as exc:  # pragma: no cover - depends on the installation
            raise RuntimeError(
                "a PostgreSQL --db needs asyncpg: pip install 'elluminate[postgres]'"
            ) from exc
        try:
            self._pool = await asyncpg.create_pool(
                dsn(self.url), min_size=1, max_size=self._pool_size, command_timeout=120
            )
        except (OSError, asyncpg.PostgresError) as exc:
            raise RuntimeError(f"cannot connect to the database {self.path}: {exc}") from exc
        try:
            await self._migrate()
            self._listen_conn = await asyncpg.connect(dsn(self.url))
            for channel in self._listeners:
                await self._listen_conn.add_listener(channel, self._dispatch)
        except BaseException:
            await self.close()
            raise

    async def _migrate(self) -> None:
        async with self._pool.acquire() as raw:
            await raw.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK)
            try:
                exists = await raw.fetchval("SELECT to_regclass('alembic_version') IS NOT NULL")
                if exists:
                    revision = await raw.fetchval("SELECT version_num FROM alembic_version")
                    if not needs_upgrade(revision, self.path):
                        return
                    await self._alembic_upgrade()
                    log.info("database %s upgraded to schema revision %s", self.path, HEAD)
                    return
                tables = await raw.fetchval(
                    "SELECT count(*) FROM information_schema.tables "
                    "WHERE table_schema = current_schema()"
                )
                if tables:
                    raise RuntimeError(
                        f"{self.path} already has tables but no elluminate schema: use an "
                        "empty database (or one elluminate created)"
                    )
                async with raw.transaction():
                    for statement in create_statements(POSTGRES_DIALECT):
                        await raw.execute(statement)
                    await raw.execute(VERSION_TABLE)
                    await raw.execute("INSERT INTO alembic_version (version_num) VALUES ($1)", HEAD)
                log.info("database %s created at schema revision %s", self.path, HEAD)
            finally:
                await raw.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK)

    async def _alembic_upgrade(self) -> None:
        from sqlalchemy.ext.asyncio import create_async_engine

        from .migrate import alembic_upgrade

        engine = create_async_engine("postgresql+asyncpg://" + dsn(self.url).split("://", 1)[1])
        try:
            async with engine.connect() as conn:
                await conn.run_sync(alembic_upgrade)
        finally:
            await engine.dispose()

    async def start(self) -> None:
        """:meth:`open` (the store interface the app uses for both databases)."""
        await self.open()

    async def stop(self) -> None:
        """:meth:`close`."""
        await self.close()

    async def close(self) -> None:
        """Close the listener and the pool (idempotent). A connection that is not given back
        within :data:`CLOSE_TIMEOUT` seconds is terminated: shutting down never hangs on one."""
        listen, self._listen_conn = self._listen_conn, None
        pool, self._pool = self._pool, None
        if listen is not None:
            with contextlib.suppress(Exception):
                await listen.close(timeout=CLOSE_TIMEOUT)
        if pool is not None:
            try:
                await asyncio.wait_for(pool.close(), CLOSE_TIMEOUT)
            except (asyncio.TimeoutError, OSError) as exc:
                log.warning("PostgreSQL pool did not close in %s s (%r): terminated",
                            CLOSE_TIMEOUT, exc)
                pool.terminate()

    @contextlib.asynccontextmanager
    async def begin(self) -> AsyncIterator[PostgresConnection]:
        """A write transaction (READ COMMITTED; rolled back when the block raises)."""
        async with self._pool.acquire() as raw, raw.transaction():
            conn = PostgresConnection(raw, self.statements)
            yield conn
            for channel, payload in conn.pending_notifications:  # delivered at commit
                await raw.execute("SELECT pg_notify($1, $2)", channel, payload)

    @contextlib.asynccontextmanager
    async def connect(self) -> AsyncIterator[PostgresConnection]:
        """A connection for reads (each statement sees the latest committed data)."""
        async with self._pool.acquire() as raw:
            yield PostgresConnection(raw, self.statements)

    async def listen(self, channel: str, callback: Callable[[str], None]) -> None:
        """Call ``callback(payload)`` on every notification of ``channel`` by any replica."""
        first = channel not in self._listeners
        self._listeners.setdefault(channel, []).append(callback)
        if first and self._listen_conn is not None:
            await self._listen_conn.add_listener(channel, self._dispatch)

    def _dispatch(self, connection: Any, pid: int, channel: str, payload: str) -> None:
        for callback in list(self._listeners.get(channel, ())):
            try:
                callback(payload)
            except Exception:  # pragma: no cover - a listener's bug must not stop the others
                log.exception("listener of %s failed", channel)


__all__ = ["PostgresConnection", "PostgresDatabase", "dsn", "is_postgres_url", "redact"]
