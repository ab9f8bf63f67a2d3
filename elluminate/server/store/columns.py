"""The columns of a collection, and the stored form of its rows.

Rows are stored complete: every column present, values coerced to the column type (TEXT-like
columns hold strings), so ``skip_existing`` compares the stored (typed) form through an
identity hash. Changing the columns rewrites every row of the collection.

CONVERSATION cells hold a conversation envelope (``elluminate.uce/1``, CONTRACT.md 7.18) or
nothing (``""``, the default); :func:`conversation_envelope` checks one, and every write of a
row (insert, update, a column's new type) checks its CONVERSATION cells: :class:`InvalidCell`
says which and why (the API answers 400 and the write rolls back).

Repository functions run on the caller's connection and transaction (see
:mod:`.connection`); callers that change columns lock the collection row first
(:func:`elluminate.server.store.collections.collection_row` with ``lock=True``), so that two
writers of one collection never interleave on PostgreSQL.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec
from sqlalchemy import bindparam, delete, insert, select, update

from elluminate.schemas import CollectionType, ColumnTypeEnum
from elluminate.schemas._checks import check_messages
from elluminate.schemas.conversation import UCEPayloadV1

from . import schema as S
from .connection import Connection
from .database import dumps, dumps_canonical, loads

_COL, _TV = S.collection_columns, S.template_variables

TEXT_LIKE = frozenset(
    {
        ColumnTypeEnum.TEXT,
        ColumnTypeEnum.CATEGORY,
        ColumnTypeEnum.RAW_INPUT,
        ColumnTypeEnum.PERSONA_GOAL,
    }
)
_TEXT_LIKE_VALUES = frozenset(t.value for t in TEXT_LIKE)

COLUMNS_OF = (
    select(_COL)
    .where(_COL.c.collection_id == bindparam("collection_id"))
    .order_by(_COL.c.column_position, _COL.c.id)
)
ADD_COLUMN = insert(_COL).values(
    collection_id=bindparam("collection_id"),
    name=bindparam("column_name"),
    column_type=bindparam("column_type"),
    default_value=bindparam("default_value"),
    column_position=bindparam("position"),
    categorical_values=bindparam("categorical_values"),
)
DELETE_COLUMN = delete(_COL).where(_COL.c.id == bindparam("column_id"))
RENAME_COLUMN = (
    update(_COL).where(_COL.c.id == bindparam("column_id")).values(name=bindparam("column_name"))
)
SET_COLUMN = (
    update(_COL)
    .where(_COL.c.id == bindparam("column_id"))
    .values(
        name=bindparam("column_name"),
        column_type=bindparam("column_type"),
        default_value=bindparam("default_value"),
        column_position=bindparam("position"),
        categorical_values=bindparam("categorical_values"),
    )
)
ROWS_TO_REWRITE = select(_TV.c.id, _TV.c.input_values, _TV.c.environment_config).where(
    _TV.c.collection_id == bindparam("collection_id")
)
REWRITE_ROW = (
    update(_TV)
    .where(_TV.c.id == bindparam("row_id"))
    .values(input_values=bindparam("input_values"), identity_hash=bindparam("identity_hash"))
)


class InvalidColumns(ValueError):
    """A requested column list does not fit the collection (the message says why)."""


class InvalidCell(ValueError):
    """A row value does not fit its column (the message names the column and what to fix)."""


UCE_VERSION = "elluminate.uce/1"
_UCE_HINT = (
    "a CONVERSATION cell holds a conversation envelope like {'schema_version': "
    "'elluminate.uce/1', 'input': {'messages': [{'role': 'user', 'content': '...'}]}} "
    "(UCEPayloadV1.from_openai(messages).to_uce_dict()), or '' for none"
)


def conversation_envelope(value: Any, column: str = "conversation") -> UCEPayloadV1 | None:
    """The envelope in a CONVERSATION cell (None for an empty cell); :class:`InvalidCell`
    names what is wrong."""
    if value is None or value == "":
        return None
    if not isinstance(value, dict):
        raise InvalidCell(f"column {column!r}: {_UCE_HINT}; got {type(value).__name__}")
    version = value.get("schema_version")
    if version != UCE_VERSION:
        raise InvalidCell(
            f"column {column!r}: a conversation envelope names schema_version {UCE_VERSION!r}, "
            f"not {version!r}; {_UCE_HINT}"
        )
    try:
        envelope = msgspec.convert(value, UCEPayloadV1)
        check_messages("UCEInput", "messages", envelope.input.messages)
    except (msgspec.ValidationError, ValueError) as exc:
        raise InvalidCell(f"column {column!r}: not a valid conversation envelope: {exc}") from None
    if not envelope.input.messages:
        raise InvalidCell(f"column {column!r}: the conversation envelope holds no messages")
    return envelope


def _conversation_columns(columns: Sequence[Mapping[str, Any]]) -> list[str]:
    return [c["name"] for c in columns if c["column_type"] == ColumnTypeEnum.CONVERSATION.value]


@dataclass
class ColumnSpec:
    """A requested column (from a create/update body)."""

    name: str
    column_type: ColumnTypeEnum | None = None
    default_value: str | None = None
    categorical_values: list[str] | None = None
    id: int | None = None


def default_type(name: str, collection_type: str) -> ColumnTypeEnum:
    """The type of a column created without one (``instruction`` of an agentic collection
    is its raw input)."""
    if collection_type == CollectionType.AGENTIC.value and name == "instruction":
        return ColumnTypeEnum.RAW_INPUT
    return ColumnTypeEnum.TEXT


# ---- the stored form of a row (pure) ------------------------------------------------------


def coerce_value(value: Any, column: Mapping[str, Any]) -> Any:
    """A row value in the stored form of ``column`` (TEXT-like columns hold strings)."""
    return _coerce(value, column["default_value"], column["column_type"] in _TEXT_LIKE_VALUES)


def _coerce(value: Any, default: str, text_like: bool) -> Any:
    if value is None:
        return default
    if not text_like or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return dumps(value)


class RowShape:
    """The columns of a collection, prepared for normalizing many rows quickly."""

    def __init__(self, columns: Sequence[Mapping[str, Any]]) -> None:
        self.columns = list(columns)
        self._plan = [
            (c["name"], c["default_value"], c["column_type"] in _TEXT_LIKE_VALUES)
            for c in self.columns
        ]
        self._conversations = _conversation_columns(self.columns)

    def normalize(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """A complete row: every column, in column order, coerced; missing ones get defaults
        (:class:`InvalidCell` for a CONVERSATION cell that is not an envelope)."""
        get = values.get
        for name in self._conversations:
            conversation_envelope(get(name), name)
        return {name: _coerce(get(name), default, text) for name, default, text in self._plan}


def row_identity(values: dict[str, Any], environment_config: Any) -> str:
    """Identity hash of a stored row (``skip_existing`` compares these)."""
    canonical = dumps_canonical({"v": values, "e": environment_config})
    return hashlib.sha256(canonical.encode()).hexdigest()


# ---- columns ------------------------------------------------------------------------------


async def load_columns(conn: Connection, collection_id: int) -> list[Any]:
    """The columns of a collection in position order."""
    return await conn.fetchall(COLUMNS_OF, {"collection_id": collection_id})


async def add_column(
    conn: Connection, collection_id: int, spec: ColumnSpec, position: int, collection_type: str
) -> None:
    """Insert one column at ``position`` (type and default filled in when not given)."""
    await conn.execute(ADD_COLUMN, _column_params(collection_id, spec, position, collection_type))


async def add_columns(
    conn: Connection, collection_id: int, specs: Sequence[ColumnSpec], collection_type: str
) -> None:
    """Insert the columns of a new collection, in order (positions 0, 1, ...)."""
    await conn.executemany(
        ADD_COLUMN,
        [
            _column_params(collection_id, spec, position, collection_type)
            for position, spec in enumerate(specs)
        ],
    )


def _column_params(
    collection_id: int, spec: ColumnSpec, position: int, collection_type: str
) -> dict[str, Any]:
    return {
        "collection_id": collection_id,
        "column_name": spec.name,
        "column_type": (spec.column_type or default_type(spec.name, collection_type)).value,
        "default_value": spec.default_value or "",
        "position": position,
        "categorical_values": dumps(spec.categorical_values),
    }


async def ensure_columns(
    conn: Connection, collection: Mapping[str, Any], keys: Iterable[str]
) -> list[Any]:
    """Add a TEXT column for every key that is not a column yet (rewriting the existing rows
    to include it); return all columns. The caller has checked the keys as column names."""
    columns = await load_columns(conn, collection["id"])
    known = {c["name"] for c in columns}
    missing = [k for k in dict.fromkeys(keys) if k not in known]
    if not missing:
        return columns
    position = max((c["column_position"] for c in columns), default=-1) + 1
    await conn.executemany(
        ADD_COLUMN,
        [
            _column_params(
                collection["id"], ColumnSpec(name), position + offset, collection["collection_type"]
            )
            for offset, name in enumerate(missing)
        ],
    )
    columns = await load_columns(conn, collection["id"])
    await rewrite_rows(conn, collection["id"], columns, {})
    return columns


async def rewrite_rows(
    conn: Connection, collection_id: int, columns: Sequence[Any], renames: Mapping[str, str]
) -> None:
    """Rewrite every row for a new column list (``renames``: new name -> old name)."""
    rows = await conn.fetchall(ROWS_TO_REWRITE, {"collection_id": collection_id})
    if not rows:
        return
    plan = [
        (c["name"], renames.get(c["name"], c["name"]), coerce_value(None, c)) for c in columns
    ]
    conversations = _conversation_columns(columns)
    updates = []
    for row in rows:
        old = loads(row["input_values"])
        values = {name: old[source] if source in old else empty for name, source, empty in plan}
        for name in conversations:
            conversation_envelope(values[name], name)
        env = loads(row["environment_config"])
        updates.append(
            {
                "row_id": row["id"],
                "input_values": dumps(values),
                "identity_hash": row_identity(values, env),
            }
        )
    await conn.executemany(REWRITE_ROW, updates)


async def reshape_columns(
    conn: Connection, collection: Mapping[str, Any], specs: Sequence[ColumnSpec]
) -> None:
    """Make ``specs`` the collection's column list: missing columns are dropped, new ones
    created, existing ones (matched by ``id``, else by name) renamed/retyped and reordered;
    every row is rewritten. :class:`InvalidColumns` when ``specs`` name unknown or repeated
    columns (nothing written then)."""
    collection_id = collection["id"]
    current = {c["id"]: c for c in await load_columns(conn, collection_id)}
    by_name = {c["name"]: c for c in current.values()}
    matched: list[tuple[ColumnSpec, Any]] = []
    for index, spec in enumerate(specs):
        if spec.id is not None:
            if spec.id not in current:
                raise InvalidColumns(
                    f"columns[{index}].id {spec.id} is not a column of this collection"
                )
            matched.append((spec, current[spec.id]))
        else:
            matched.append((spec, by_name.get(spec.name)))
    kept = {row["id"] for _, row in matched if row is not None}
    if len(kept) != sum(1 for _, row in matched if row is not None):
        raise InvalidColumns("columns: the same existing column appears twice")
    for column_id in sorted(set(current) - kept):
        await conn.execute(DELETE_COLUMN, {"column_id": column_id})
    # free the names first, so swaps and renames never collide
    prefix = _unused_prefix([*by_name, *(spec.name for spec in specs)])
    await conn.executemany(
        RENAME_COLUMN,
        [
            {"column_id": row["id"], "column_name": f"{prefix}{row['id']}"}
            for _, row in matched
            if row is not None
        ],
    )
    renames: dict[str, str] = {}
    for position, (spec, row) in enumerate(matched):
        if row is None:
            await add_column(conn, collection_id, spec, position, collection["collection_type"])
            continue
        renames[spec.name] = row["name"]
        await conn.execute(
            SET_COLUMN,
            {
                "column_id": row["id"],
                "column_name": spec.name,
                "column_type": spec.column_type.value if spec.column_type else row["column_type"],
                "default_value": (
                    row["default_value"] if spec.default_value is None else spec.default_value
                ),
                "position": position,
                "categorical_values": (
                    row["categorical_values"]
                    if spec.categorical_values is None
                    else dumps(spec.categorical_values)
                ),
            },
        )
    await rewrite_rows(conn, collection_id, await load_columns(conn, collection_id), renames)


def _unused_prefix(names: Iterable[str]) -> str:
    """A prefix no name starts with (temporary column names; PostgreSQL text has no NUL)."""
    names = list(names)
    prefix = "\x01tmp"
    while any(name.startswith(prefix) for name in names):
        prefix += "\x01"
    return prefix


__all__ = [
    "TEXT_LIKE",
    "ColumnSpec",
    "InvalidColumns",
    "RowShape",
    "add_column",
    "add_columns",
    "coerce_value",
    "default_type",
    "ensure_columns",
    "load_columns",
    "reshape_columns",
    "rewrite_rows",
    "row_identity",
]
