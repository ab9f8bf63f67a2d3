"""Helpers every repository uses: live rows of a project, soft delete, named lists."""

from __future__ import annotations

from functools import cache
from typing import Any

from sqlalchemy import Select, bindparam, delete, select, update

from . import schema as S
from .connection import Connection, ForeignKeyViolation
from .database import utcnow
from .errors import NotFound

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
