"""Helpers every repository uses: live rows of a project (read or locked), soft delete,
names unique among live rows, named lists."""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any

from sqlalchemy import Select, bindparam, delete, select, update

from . import schema as S
from .connection import Connection, ForeignKeyViolation, UniqueViolation
from .database import utcnow
from .errors import NameTaken, NotFound

_ID: Any = bindparam("id")
_PID: Any = bindparam("pid")


@cache
def _live(table: str) -> Select[Any]:
    t = S.metadata.tables[table]
    return select(t).where(t.c.id == _ID, t.c.project_id == _PID, t.c.deleted_at.is_(None))


async def live_row(conn: Connection, table: str, kind: str, pid: int, ident: int) -> Any:
    """The non-deleted row ``ident`` of ``table`` in project ``pid``; NotFound names ``kind``."""
    row = await conn.fetchone(_live(table), {"id": ident, "pid": pid})
    if row is None:
        raise NotFound(kind, ident)
    return row


@cache
def _live_locked(table: str, share: bool) -> Select[Any]:
    return _live(table).with_for_update(read=share, key_share=True)


async def lock_live_row(
    conn: Connection, table: str, kind: str, pid: int, ident: int, *, share: bool = False
) -> Any:
    """:func:`live_row`, locked until the caller's transaction ends.

    On PostgreSQL ``FOR NO KEY UPDATE`` (writers of this row wait; rows referencing it can
    still be inserted), or with ``share`` ``FOR KEY SHARE`` (only a DELETE waits: enough to
    keep a row that a new row will reference). A request that waited sees the row as the
    other request committed it: deleted meanwhile is NotFound. SQLite runs one write
    transaction at a time and ignores the clause.
    """
    row = await conn.fetchone(_live_locked(table, share), {"id": ident, "pid": pid})
    if row is None:
        raise NotFound(kind, ident)
    return row


@cache
def _delete(table: str) -> Any:
    t = S.metadata.tables[table]
    return delete(t).where(t.c.id == _ID)


@cache
def _hide(table: str) -> Any:
    t = S.metadata.tables[table]
    return update(t).where(t.c.id == _ID, t.c.deleted_at.is_(None)).values(
        deleted_at=bindparam("ts")
    )


async def delete_or_hide(conn: Connection, table: str, row_id: int) -> bool:
    """Delete a row; if other rows still reference it, set ``deleted_at`` instead (so past
    experiments keep their meaning). True for a real delete. Inside a transaction."""
    try:
        async with conn.savepoint():
            await conn.execute(_delete(table), {"id": row_id})
        return True
    except ForeignKeyViolation:
        await conn.execute(_hide(table), {"id": row_id, "ts": utcnow()})
        return False


@cache
def _live_id_by_name(table: str) -> Select[Any]:
    t = S.metadata.tables[table]
    return select(t.c.id).where(
        t.c.project_id == _PID, t.c.name == bindparam("name"), t.c.deleted_at.is_(None)
    )


async def insert_unique_name(
    conn: Connection, table: str, stmt: Any, params: Mapping[str, Any]
) -> int:
    """Run ``stmt`` (an INSERT ... RETURNING id into ``table``, whose ``name`` is unique among
    the project's live rows by a partial unique index); its new id.

    ``params`` holds ``pid`` and ``name``. A name that is taken raises :class:`NameTaken` with
    the holder's id, also when a concurrent request took it after the check: the unique index
    refuses the second insert (on PostgreSQL once the first one committed), which then names
    the winner.
    """
    lookup = {"pid": params["pid"], "name": params["name"]}
    existing = await conn.fetchval(_live_id_by_name(table), lookup)
    if existing is not None:
        raise NameTaken(existing)
    try:
        async with conn.savepoint():
            new_id: int = await conn.insert(stmt, params)
        return new_id
    except UniqueViolation:
        existing = await conn.fetchval(_live_id_by_name(table), lookup)
        if existing is None:  # another unique key refused it
            raise
        raise NameTaken(existing) from None


@cache
def named_list(table: str, with_name: bool) -> Select[Any]:
    """The project's non-deleted rows of ``table`` by id (``:name`` filters exactly)."""
    t = S.metadata.tables[table]
    stmt = select(t).where(t.c.project_id == _PID, t.c.deleted_at.is_(None))
    if with_name:
        stmt = stmt.where(t.c.name == bindparam("name"))
    return stmt.order_by(t.c.id)


def like_escaped(text: str) -> str:
    """``text`` for a ``LIKE`` pattern with ``ESCAPE '\\'``: its ``%``, ``_`` and ``\\``
    match themselves (use with ``column.contains(bindparam(...), escape="\\")``)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
