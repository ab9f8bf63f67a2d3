"""Collection entries (``template_variables`` rows): bulk insert, update, delete.

Deleting a row first retires the criteria specific to it (:func:`retire_row_criteria`), then
deletes it, or hides it (``deleted_at``) when experiments still reference it. Callers lock
the collection row (:func:`elluminate.server.store.collections.collection_row` with
``lock=True``) before writing its entries, so ``skip_existing`` and new columns are safe with
several writers on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Integer, Select, Text, bindparam, delete, func, insert, select, update
from sqlalchemy.dialects.postgresql import ARRAY

from . import schema as S
from .columns import InvalidCell, RowShape, ensure_columns, row_identity
from .common import delete_or_hide
from .connection import Connection, ForeignKeyViolation
from .database import dumps, loads, utcnow

_C, _TV, _CR = S.collections, S.template_variables, S.criteria
_CID: Any = bindparam("collection_id")
_IDS: Any = bindparam("ids", expanding=True)

#: Rows per ``IN`` list (well below the 32,767 parameters asyncpg allows).
IN_CHUNK = 500

_LIVE = (_TV.c.collection_id == _CID, _TV.c.deleted_at.is_(None))
LIVE_ROWS = select(_TV).where(*_LIVE).order_by(_TV.c.id)
LIVE_ROW = select(_TV).where(_TV.c.id == bindparam("entry_id"), *_LIVE)
LIVE_ROW_IDS = select(_TV.c.id).where(*_LIVE).order_by(_TV.c.id)
LIVE_IDENTITIES = select(_TV.c.identity_hash).where(*_LIVE)
RECENT_INPUTS = (
    select(_TV.c.input_values).where(*_LIVE).order_by(_TV.c.id.desc()).limit(bindparam("limit"))
)
_ROW_VALUES = {
    "collection_id": _CID,
    "input_values": bindparam("input_values"),
    "environment_config": bindparam("environment_config"),
    "identity_hash": bindparam("identity_hash"),
    "created_at": bindparam("ts"),
    "updated_at": bindparam("ts"),
}
#: SQLite: one row (run by ``executemany``).
ADD_ROW = insert(_TV).values(**_ROW_VALUES)
_new = func.unnest(
    bindparam("input_values", type_=ARRAY(Text)),
    bindparam("environment_configs", type_=ARRAY(Text)),
    bindparam("identity_hashes", type_=ARRAY(Text)),
).table_valued(
    "input_values", "environment_config", "identity_hash", with_ordinality="position"
).render_derived()
_TS_TYPE = _TV.c.created_at.type
#: PostgreSQL: every row in one statement, from arrays. Its ids come from the sequence in
#: the ORDER BY order (so sorted ids follow the arrays: the guarantee SQLAlchemy's own
#: "insertmanyvalues" relies on), and RETURNING hands them back in one round trip.
ADD_ROWS_FROM_ARRAYS = (
    insert(_TV)
    .from_select(
        [
            "collection_id",
            "input_values",
            "environment_config",
            "identity_hash",
            "created_at",
            "updated_at",
        ],
        select(
            bindparam("collection_id", type_=Integer),
            _new.c.input_values,
            _new.c.environment_config,
            _new.c.identity_hash,
            bindparam("ts", type_=_TS_TYPE),
            bindparam("ts", type_=_TS_TYPE),
        ).order_by(_new.c.position),
    )
    .returning(_TV.c.id)
)
#: SQLite: every id a new row gets is above this (ids are AUTOINCREMENT, one writer).
LAST_ROW_ID = select(func.coalesce(func.max(_TV.c.id), 0))
ROWS_AFTER = select(_TV.c.id).where(_TV.c.collection_id == _CID, _TV.c.id > bindparam("after"))
ROWS_IN_RANGE = select(_TV).where(
    _TV.c.collection_id == _CID, _TV.c.id.between(bindparam("low"), bindparam("high"))
)
SET_ROW = (
    update(_TV)
    .where(_TV.c.id == bindparam("entry_id"))
    .values(
        input_values=bindparam("input_values"),
        environment_config=bindparam("environment_config"),
        identity_hash=bindparam("identity_hash"),
        updated_at=bindparam("ts"),
    )
)
DELETE_LIVE_ROWS = delete(_TV).where(*_LIVE)
TOUCH_COLLECTION = update(_C).where(_C.c.id == _CID).values(updated_at=bindparam("ts"))
LIVE_CRITERIA_OF_ROWS = select(_CR.c.id).where(
    _CR.c.template_variables_id.in_(_IDS), _CR.c.deleted_at.is_(None)
)


# ---- reads --------------------------------------------------------------------------------


def live_rows_query(collection_id: int) -> tuple[Select[Any], dict[str, Any]]:
    """The statement and parameters of the collection's live rows in id order (for pages)."""
    return LIVE_ROWS, {"collection_id": collection_id}


async def live_row_ids(conn: Connection, collection_id: int) -> list[int]:
    """Ids of the collection's rows that are not deleted, in id order."""
    return [r[0] for r in await conn.fetchall(LIVE_ROW_IDS, {"collection_id": collection_id})]


async def live_entry(conn: Connection, collection_id: int, entry_id: int) -> Any:
    """The non-deleted row ``entry_id`` of the collection, or None."""
    return await conn.fetchone(LIVE_ROW, {"collection_id": collection_id, "entry_id": entry_id})


async def recent_input_values(
    conn: Connection, collection_id: int, limit: int = 5
) -> list[dict[str, Any]]:
    """The input values of the collection's newest ``limit`` live rows, oldest first."""
    rows = await conn.fetchall(RECENT_INPUTS, {"collection_id": collection_id, "limit": limit})
    return [loads(r["input_values"]) for r in reversed(rows)]


async def entries_by_ids(conn: Connection, collection_id: int, ids: Sequence[int]) -> list[Any]:
    """The rows ``ids`` of the collection (deleted or not), in the order of ``ids``.

    One range scan for ids inserted together (:func:`insert_entries`), however many.
    """
    if not ids:
        return []
    rows = await conn.fetchall(
        ROWS_IN_RANGE, {"collection_id": collection_id, "low": min(ids), "high": max(ids)}
    )
    by_id = {r["id"]: r for r in rows}
    return [by_id[i] for i in ids if i in by_id]


# ---- writes -------------------------------------------------------------------------------


async def insert_entries(
    conn: Connection,
    collection: Mapping[str, Any],
    rows: Sequence[tuple[Mapping[str, Any], Any]],
    *,
    skip_existing: bool = False,
) -> list[int]:
    """Insert rows ``(input_values, environment_config)`` into the (locked) collection;
    returns the new ids in the order of ``rows``.

    A key that is not a column yet adds a TEXT column (the caller has checked the keys as
    column names). ``skip_existing`` skips rows whose stored form exists already (or earlier
    in ``rows``). In bulk, whatever the number of rows: on PostgreSQL one INSERT from arrays
    returning the ids, on SQLite one ``executemany`` and one query for the new ids.
    """
    collection_id = collection["id"]
    columns = await ensure_columns(conn, collection, (k for values, _ in rows for k in values))
    shape = RowShape(columns)
    seen: set[str] = set()
    if skip_existing:
        seen = {
            r[0] for r in await conn.fetchall(LIVE_IDENTITIES, {"collection_id": collection_id})
        }
    moment = utcnow()
    new_rows: list[tuple[str | None, str | None, str]] = []
    for number, (values, env) in enumerate(rows, 1):
        try:
            stored = shape.normalize(values)
        except InvalidCell as exc:
            raise InvalidCell(f"row {number}: {exc}" if len(rows) > 1 else str(exc)) from None
        identity = row_identity(stored, env)
        if skip_existing:
            if identity in seen:
                continue
            seen.add(identity)
        new_rows.append((dumps(stored), dumps(env), identity))
    if not new_rows:
        return []
    new_ids = await _insert_rows(conn, collection_id, new_rows, moment)
    await conn.execute(TOUCH_COLLECTION, {"collection_id": collection_id, "ts": moment})
    return new_ids


async def _insert_rows(
    conn: Connection,
    collection_id: int,
    new_rows: list[tuple[str | None, str | None, str]],
    moment: datetime,
) -> list[int]:
    """Insert ``(input_values, environment_config, identity_hash)`` rows; their ids."""
    if conn.dialect_name == "postgresql":
        values, envs, hashes = (list(column) for column in zip(*new_rows, strict=True))
        returned = await conn.fetchall(
            ADD_ROWS_FROM_ARRAYS,
            {
                "collection_id": collection_id,
                "input_values": values,
                "environment_configs": envs,
                "identity_hashes": hashes,
                "ts": moment,
            },
        )
        new_ids = sorted(int(r[0]) for r in returned)
    else:  # SQLite: one writer at a time, and AUTOINCREMENT ids above every id ever used
        after = await conn.fetchval(LAST_ROW_ID)
        await conn.executemany(
            ADD_ROW,
            [
                {
                    "collection_id": collection_id,
                    "input_values": value,
                    "environment_config": env,
                    "identity_hash": identity,
                    "ts": moment,
                }
                for value, env, identity in new_rows
            ],
        )
        found = await conn.fetchall(ROWS_AFTER, {"collection_id": collection_id, "after": after})
        new_ids = sorted(r[0] for r in found)
    if len(new_ids) != len(new_rows):  # pragma: no cover - would mean a second writer
        raise RuntimeError(f"inserted {len(new_rows)} rows but found {len(new_ids)} new ids")
    return new_ids


async def update_entry(
    conn: Connection,
    collection: Mapping[str, Any],
    entry_id: int,
    values: Mapping[str, Any],
    environment_config: Any,
) -> None:
    """Replace a row's values (a key that is not a column yet adds a TEXT column)."""
    columns = await ensure_columns(conn, collection, values)
    stored = RowShape(columns).normalize(values)
    await conn.execute(
        SET_ROW,
        {
            "entry_id": entry_id,
            "input_values": dumps(stored),
            "environment_config": dumps(environment_config),
            "identity_hash": row_identity(stored, environment_config),
            "ts": utcnow(),
        },
    )


async def retire_row_criteria(conn: Connection, row_ids: Sequence[int]) -> None:
    """Delete (or hide, when ratings use them) the criteria specific to these rows.

    A row-specific criterion rates only its row; ``NULL`` means "every row", so it must go
    before its row does (the foreign key would otherwise turn it into a criterion for every
    row). Inside the caller's transaction.
    """
    for start in range(0, len(row_ids), IN_CHUNK):
        chunk = list(row_ids[start : start + IN_CHUNK])
        for (criterion_id,) in await conn.fetchall(LIVE_CRITERIA_OF_ROWS, {"ids": chunk}):
            await delete_or_hide(conn, "criteria", criterion_id)


async def delete_entry(conn: Connection, entry_id: int) -> None:
    """Delete one row (hidden instead when experiments still use it), with its criteria."""
    await retire_row_criteria(conn, [entry_id])
    await delete_or_hide(conn, "template_variables", entry_id)


async def delete_all_entries(conn: Connection, collection_id: int) -> None:
    """Remove every live row of the collection, with their criteria (rows used by
    experiments are hidden, not lost)."""
    ids = await live_row_ids(conn, collection_id)
    await retire_row_criteria(conn, ids)
    try:
        async with conn.savepoint():
            await conn.execute(DELETE_LIVE_ROWS, {"collection_id": collection_id})
    except ForeignKeyViolation:
        for entry_id in ids:
            await delete_or_hide(conn, "template_variables", entry_id)
    await conn.execute(TOUCH_COLLECTION, {"collection_id": collection_id, "ts": utcnow()})


__all__ = [
    "delete_all_entries",
    "delete_entry",
    "entries_by_ids",
    "insert_entries",
    "live_entry",
    "live_row_ids",
    "live_rows_query",
    "recent_input_values",
    "retire_row_criteria",
    "update_entry",
]
