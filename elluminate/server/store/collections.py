"""Collections (CONTRACT.md 4.2): create, rename/reshape, delete, list.

Their columns and the stored form of rows are in :mod:`.columns`, their entries in
:mod:`.entries`. A name is unique among a project's live collections (the unique index
``ux_collections_name``): :class:`NameTaken` carries the id of the collection that holds it,
also when a concurrent writer took the name between the check and the write (PostgreSQL).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from functools import cache
from typing import Any, TypeVar

from sqlalchemy import Select, bindparam, func, insert, select, update

from . import schema as S
from .columns import ColumnSpec, add_columns, reshape_columns
from .common import delete_or_hide
from .connection import Connection, UniqueViolation
from .database import dumps, utcnow
from .entries import live_row_ids, retire_row_criteria
from .errors import NotFound

T = TypeVar("T")

_C, _COL = S.collections, S.collection_columns
_PID: Any = bindparam("pid")

LIVE_COLLECTION = select(_C).where(
    _C.c.id == bindparam("collection_id"), _C.c.project_id == _PID, _C.c.deleted_at.is_(None)
)
#: The same row, locked until the transaction ends (PostgreSQL; SQLite has one writer).
LOCKED_COLLECTION = LIVE_COLLECTION.with_for_update()
NAMED = select(_C.c.id).where(
    _C.c.project_id == _PID, _C.c.name == bindparam("name"), _C.c.deleted_at.is_(None)
)
NAMED_OTHER = NAMED.where(_C.c.id != bindparam("exclude_id"))
ADD_COLLECTION = (
    insert(_C)
    .values(
        project_id=_PID,
        name=bindparam("name"),
        description=bindparam("description"),
        read_only=bindparam("read_only"),
        collection_type=bindparam("collection_type"),
        environment_config=bindparam("environment_config"),
        created_at=bindparam("ts"),
        updated_at=bindparam("ts"),
    )
    .returning(_C.c.id)
)
SET_COLLECTION = (
    update(_C)
    .where(_C.c.id == bindparam("collection_id"))
    .values(
        name=bindparam("name"),
        description=bindparam("description"),
        read_only=bindparam("read_only"),
        environment_config=bindparam("environment_config"),
        updated_at=bindparam("ts"),
    )
)


class NameTaken(Exception):
    """Another live collection of the project has the name."""

    def __init__(self, name: str, existing_id: int) -> None:
        super().__init__(f"a collection named {name!r} already exists (id {existing_id})")
        self.name = name
        self.existing_id = existing_id


# ---- reads --------------------------------------------------------------------------------


async def collection_row(
    conn: Connection, pid: int, collection_id: int, *, lock: bool = False
) -> Any:
    """The live collection row of the project (NotFound otherwise); ``lock`` holds it until
    the transaction ends, so writers of one collection take turns."""
    row = await conn.fetchone(
        LOCKED_COLLECTION if lock else LIVE_COLLECTION,
        {"collection_id": collection_id, "pid": pid},
    )
    if row is None:
        raise NotFound("collection", collection_id)
    return row


async def collection_named(
    conn: Connection, pid: int, name: str, *, exclude_id: int | None = None
) -> int | None:
    """The id of the project's live collection called ``name`` (other than ``exclude_id``)."""
    if exclude_id is None:
        found = await conn.fetchval(NAMED, {"pid": pid, "name": name})
    else:
        found = await conn.fetchval(
            NAMED_OTHER, {"pid": pid, "name": name, "exclude_id": exclude_id}
        )
    return None if found is None else int(found)


@cache
def list_statement(by_name: bool, by_placeholders: bool) -> Select[Any]:
    """The project's live collections by id: ``:name`` filters exactly; ``:placeholders``
    (a list) and ``:placeholder_count`` (its length, without duplicates) keep the collections
    that have a column for every placeholder."""
    stmt = select(_C).where(_C.c.project_id == _PID, _C.c.deleted_at.is_(None))
    if by_name:
        stmt = stmt.where(_C.c.name == bindparam("name"))
    if by_placeholders:
        matched = (
            select(func.count())
            .select_from(_COL)
            .where(
                _COL.c.collection_id == _C.c.id,
                _COL.c.name.in_(bindparam("placeholders", expanding=True)),
            )
            .scalar_subquery()
        )
        stmt = stmt.where(matched == bindparam("placeholder_count"))
    return stmt.order_by(_C.c.id)


def list_parameters(
    pid: int, *, name: str | None = None, placeholders: Sequence[str] | None = None
) -> tuple[Select[Any], dict[str, Any]]:
    """The statement and parameters listing the project's collections with these filters."""
    params: dict[str, Any] = {"pid": pid}
    if name is not None:
        params["name"] = name
    if placeholders is not None:
        unique = list(dict.fromkeys(placeholders))
        params["placeholders"] = unique
        params["placeholder_count"] = len(unique)
    return list_statement(name is not None, placeholders is not None), params


# ---- writes -------------------------------------------------------------------------------


async def create_collection(
    conn: Connection,
    pid: int,
    *,
    name: str,
    description: str,
    read_only: bool,
    collection_type: str,
    environment_config: Any,
    columns: Sequence[ColumnSpec],
) -> int:
    """A new collection with its columns (rows: :func:`.entries.insert_entries`); its id.
    :class:`NameTaken` when a live collection of the project has the name (nothing written
    then)."""
    params = {
        "pid": pid,
        "name": name,
        "description": description,
        "read_only": read_only,
        "collection_type": collection_type,
        "environment_config": dumps(environment_config),
        "ts": utcnow(),
    }
    collection_id: int = await _with_name(
        conn, pid, name, None, lambda: conn.insert(ADD_COLLECTION, params)
    )
    await add_columns(conn, collection_id, columns, collection_type)
    return collection_id


async def update_collection(
    conn: Connection,
    collection: Mapping[str, Any],
    *,
    name: str,
    description: str | None,
    read_only: bool | None,
    set_environment: bool,
    environment_config: Any,
    columns: Sequence[ColumnSpec] | None,
) -> None:
    """Rename/describe the (locked) collection, set its flags (``None`` keeps them) and, with
    ``set_environment``, its ``environment_config``; reshape its columns when ``columns`` is
    given (see :func:`.columns.reshape_columns`). :class:`NameTaken` when another live
    collection has the name."""
    pid, collection_id = collection["project_id"], collection["id"]
    params = {
        "collection_id": collection_id,
        "name": name,
        "description": collection["description"] if description is None else description,
        "read_only": bool(collection["read_only"]) if read_only is None else read_only,
        "environment_config": (
            dumps(environment_config) if set_environment else collection["environment_config"]
        ),
        "ts": utcnow(),
    }
    await _with_name(
        conn, pid, name, collection_id, lambda: conn.execute(SET_COLLECTION, params)
    )
    if columns is not None:
        await reshape_columns(conn, collection, columns)


async def _with_name(
    conn: Connection,
    pid: int,
    name: str,
    exclude_id: int | None,
    write: Callable[[], Awaitable[T]],
) -> T:
    """Run ``write``, a statement that gives a collection (not ``exclude_id``) the name
    ``name``; :class:`NameTaken` when another live collection has it. The check comes first
    (a friendly early answer); the unique index decides when a concurrent writer took the
    name in between (PostgreSQL), and then the check runs again."""
    for _ in range(3):
        holder = await collection_named(conn, pid, name, exclude_id=exclude_id)
        if holder is not None:
            raise NameTaken(name, holder)
        try:
            async with conn.savepoint():
                return await write()
        except UniqueViolation:
            continue  # taken meanwhile: find who holds it (or, if released again, retry)
    raise RuntimeError(f"collection name {name!r} keeps being taken and released; retry")


async def delete_collection(conn: Connection, collection_id: int) -> None:
    """Delete a (locked) collection with its rows and their criteria (hidden instead when
    experiments still use it)."""
    await retire_row_criteria(conn, await live_row_ids(conn, collection_id))
    await delete_or_hide(conn, "collections", collection_id)


__all__ = [
    "NameTaken",
    "collection_named",
    "collection_row",
    "create_collection",
    "delete_collection",
    "list_parameters",
    "list_statement",
    "update_collection",
]
