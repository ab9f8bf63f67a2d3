"""Scenario sets, their fields and scenarios (CONTRACT.md 4.11, 7.16).

A scenario set is a ``scenario_sets`` row plus a **backing collection**: a collection hidden
from the collection endpoints (``deleted_at`` set when it is made, so it never holds a
collection name either) whose columns are the implicit fields ``goal`` and
``expected_conversation_outcome`` followed by the declared fields (TEXT columns, default
``""`` unless given), and whose rows are the scenarios. So a scenario is stored like any
collection row (complete, in the stored form of :mod:`.columns`; ``skip_existing`` compares
identity hashes), a field rename rewrites every scenario, and a MULTI_TURN experiment over
the set runs over the backing collection's rows like any experiment over a collection.

Writers lock the scenario set row (``FOR UPDATE``), so the writers of one set take turns on
PostgreSQL; names are checked in the name space shared with collections (:mod:`.namespace`).
Rule violations raise :class:`ScenarioRuleError` (the message says what to fix); the caller's
transaction then rolls back, so nothing is stored.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any

from sqlalchemy import Select, bindparam, func, insert, select, update

from elluminate.schemas import ColumnTypeEnum, Scenario, ScenarioField, ScenarioSet
from elluminate.schemas._checks import IMPLICIT_FIELDS, check_field_name

from . import schema as S
from .columns import (
    ColumnSpec,
    add_column,
    add_columns,
    load_columns,
    reshape_columns,
    rewrite_rows,
)
from .common import delete_or_hide
from .connection import Connection
from .database import loads, ts, ts_or_none, utcnow
from .entries import (
    delete_entry,
    insert_entries,
    live_entry,
    live_row_ids,
    retire_row_criteria,
    update_entry,
)
from .errors import NotFound
from .namespace import collection_named, lock_names, scenario_set_named

_SS, _C, _TV = S.scenario_sets, S.collections, S.template_variables
_PID: Any = bindparam("pid")
_ID: Any = bindparam("id")

GOAL, OUTCOME = IMPLICIT_FIELDS
#: Types a declared field may have (new fields are TEXT).
FIELD_TYPES = frozenset({"text", "category", "json"})

LIVE_SET = select(_SS).where(_SS.c.id == _ID, _SS.c.project_id == _PID, _SS.c.deleted_at.is_(None))
LOCKED_SET = LIVE_SET.with_for_update()
BACKING = select(_C).where(_C.c.id == _ID)
ADD_BACKING = (
    insert(_C)
    .values(
        project_id=_PID,
        name=bindparam("name"),
        description=bindparam("description"),
        read_only=True,
        collection_type="STANDARD",
        created_at=bindparam("ts"),
        updated_at=bindparam("ts"),
        deleted_at=bindparam("ts"),
    )
    .returning(_C.c.id)
)
ADD_SET = (
    insert(_SS)
    .values(
        project_id=_PID,
        name=bindparam("name"),
        description=bindparam("description"),
        collection_id=bindparam("collection_id"),
        created_at=bindparam("ts"),
        updated_at=bindparam("ts"),
    )
    .returning(_SS.c.id)
)
SET_DETAILS = (
    update(_SS)
    .where(_SS.c.id == _ID)
    .values(
        name=bindparam("name"), description=bindparam("description"), updated_at=bindparam("ts")
    )
)
BACKING_DETAILS = (
    update(_C)
    .where(_C.c.id == _ID)
    .values(
        name=bindparam("name"), description=bindparam("description"), updated_at=bindparam("ts")
    )
)
TOUCH_SET = update(_SS).where(_SS.c.id == _ID).values(updated_at=bindparam("ts"))
LIVE_COUNT = select(func.count()).where(_TV.c.collection_id == _ID, _TV.c.deleted_at.is_(None))
LIVE_COUNTS = (
    select(_TV.c.collection_id, func.count())
    .where(_TV.c.collection_id.in_(bindparam("ids", expanding=True)), _TV.c.deleted_at.is_(None))
    .group_by(_TV.c.collection_id)
)
USED_BY_EXPERIMENTS = (
    select(S.experiments.c.id).where(S.experiments.c.scenario_set_id == _ID).limit(1)
)


class ScenarioRuleError(ValueError):
    """A request breaks a scenario-set rule (HTTP 400; the message says what to fix)."""


# ---- reads --------------------------------------------------------------------------------


async def set_row(conn: Connection, pid: int, set_id: int, *, lock: bool = False) -> Any:
    """The project's live scenario set (NotFound otherwise); ``lock`` holds it until the
    transaction ends, so writers of one set take turns."""
    row = await conn.fetchone(LOCKED_SET if lock else LIVE_SET, {"id": set_id, "pid": pid})
    if row is None:
        raise NotFound("scenario set", set_id)
    return row


@cache
def list_statement(search: bool) -> Select[Any]:
    """The project's live scenario sets by id; ``:search`` (lower-cased, escaped with
    :func:`~.common.like_escaped`) keeps names containing it, ignoring case."""
    stmt = select(_SS).where(_SS.c.project_id == _PID, _SS.c.deleted_at.is_(None))
    if search:
        stmt = stmt.where(func.lower(_SS.c.name).contains(bindparam("search"), escape="\\"))
    return stmt.order_by(_SS.c.id)


async def declared_fields(conn: Connection, collection_id: int) -> list[Any]:
    """The declared fields (columns after the implicit ones) of a backing collection."""
    return [c for c in await load_columns(conn, collection_id) if c["name"] not in IMPLICIT_FIELDS]


def field_struct(column: Mapping[str, Any]) -> ScenarioField:
    return ScenarioField(
        id=column["id"],
        name=column["name"],
        field_type=column["column_type"],
        default_value=column["default_value"],
    )


async def set_structs(conn: Connection, rows: Sequence[Any]) -> list[ScenarioSet]:
    """ScenarioSet structs for ``scenario_sets`` rows (counts in one query)."""
    counts: dict[int, int] = {}
    ids = [r["collection_id"] for r in rows]
    if ids:
        counts = {r[0]: int(r[1]) for r in await conn.fetchall(LIVE_COUNTS, {"ids": ids})}
    out = []
    for row in rows:
        fields = await declared_fields(conn, row["collection_id"])
        out.append(
            ScenarioSet(
                id=row["id"],
                name=row["name"],
                description=row["description"],
                fields=[field_struct(c) for c in fields],
                scenarios_count=counts.get(row["collection_id"], 0),
                version=row["version"],
                read_only=bool(row["read_only"]),
                is_platform_builtin=bool(row["is_platform_builtin"]),
                created_at=ts_or_none(row["created_at"]),
                updated_at=ts_or_none(row["updated_at"]),
            )
        )
    return out


async def set_struct(conn: Connection, pid: int, set_id: int) -> ScenarioSet:
    """One scenario set of the project (NotFound otherwise)."""
    return (await set_structs(conn, [await set_row(conn, pid, set_id)]))[0]


def scenario_struct(row: Mapping[str, Any]) -> Scenario:
    """A Scenario from a backing collection row (its values hold every field)."""
    values = loads(row["input_values"])
    return Scenario(
        id=row["id"],
        goal=str(values.get(GOAL, "")),
        expected_conversation_outcome=str(values.get(OUTCOME, "")),
        field_values={k: v for k, v in values.items() if k not in IMPLICIT_FIELDS},
        created_at=ts(row["created_at"]),
    )


async def scenario_row(conn: Connection, scenario_set: Mapping[str, Any], scenario_id: int) -> Any:
    """A live scenario of the set (NotFound otherwise)."""
    row = await live_entry(conn, scenario_set["collection_id"], scenario_id)
    if row is None:
        raise NotFound("scenario", scenario_id)
    return row


async def backing_collection(conn: Connection, scenario_set: Mapping[str, Any]) -> Any:
    """The (hidden) collection row holding the set's scenarios."""
    row = await conn.fetchone(BACKING, {"id": scenario_set["collection_id"]})
    assert row is not None, "a scenario set always has its backing collection"
    return row


# ---- names ----------------------------------------------------------------------------------


async def check_name_free(
    conn: Connection, pid: int, name: str, *, exclude_id: int | None = None
) -> None:
    """Lock the project's name space, then :class:`ScenarioRuleError` when a live scenario
    set (other than ``exclude_id``) or a live collection has ``name``."""
    await lock_names(conn, pid)
    holder = await scenario_set_named(conn, pid, name, exclude_id=exclude_id)
    if holder is not None:
        raise ScenarioRuleError(
            f"a scenario set named {name!r} already exists (id {holder}); choose another name"
        )
    holder = await collection_named(conn, pid, name)
    if holder is not None:
        raise ScenarioRuleError(
            f"a collection named {name!r} exists (id {holder}); collections and scenario sets "
            "share one name space: choose another name"
        )


async def unused_name(conn: Connection, pid: int) -> str:
    """A generated name no live scenario set or collection of the project has."""
    await lock_names(conn, pid)
    while True:
        name = f"Scenario set {secrets.token_hex(4)}"
        if (
            await scenario_set_named(conn, pid, name) is None
            and await collection_named(conn, pid, name) is None
        ):
            return name


def check_field_names(names: Sequence[str], existing: Sequence[str] = ()) -> list[str]:
    """Declared field names, each checked (usable as ``{{placeholder}}``, not implicit), unique
    among themselves and ``existing``; :class:`ScenarioRuleError` says which one is wrong."""
    seen = set(existing)
    out: list[str] = []
    for name in names:
        try:
            check_field_name(name)
        except ValueError as exc:
            raise ScenarioRuleError(str(exc)) from None
        if name in seen:
            raise ScenarioRuleError(
                f"the scenario set has a field named {name!r} already; field names are unique"
            )
        seen.add(name)
        out.append(name)
    return out


# ---- scenario sets --------------------------------------------------------------------------


async def create_set(
    conn: Connection, pid: int, *, name: str, description: str, fields: Sequence[str]
) -> int:
    """A new scenario set with its backing collection and declared fields; its id. The
    caller checked the name (:func:`check_name_free`) and the fields."""
    moment = utcnow()
    collection_id: int = await conn.insert(
        ADD_BACKING, {"pid": pid, "name": name, "description": description, "ts": moment}
    )
    specs = [ColumnSpec(GOAL, ColumnTypeEnum.TEXT), ColumnSpec(OUTCOME, ColumnTypeEnum.TEXT)]
    specs += [ColumnSpec(f, ColumnTypeEnum.TEXT, "") for f in fields]
    await add_columns(conn, collection_id, specs, "STANDARD")
    set_id: int = await conn.insert(
        ADD_SET,
        {
            "pid": pid,
            "name": name,
            "description": description,
            "collection_id": collection_id,
            "ts": moment,
        },
    )
    return set_id


def check_writable(scenario_set: Mapping[str, Any]) -> None:
    """:class:`ScenarioRuleError` for a read-only or platform built-in set."""
    if scenario_set["is_platform_builtin"]:
        raise ScenarioRuleError(
            f"scenario set {scenario_set['name']!r} is built into the platform and cannot be "
            "changed; create your own set"
        )
    if scenario_set["read_only"]:
        raise ScenarioRuleError(f"scenario set {scenario_set['name']!r} is read-only")


async def update_set(
    conn: Connection, scenario_set: Mapping[str, Any], *, name: str, description: str
) -> None:
    """Rename / describe a (locked) set; its backing collection follows."""
    moment = utcnow()
    params = {"name": name, "description": description, "ts": moment}
    await conn.execute(SET_DETAILS, {"id": scenario_set["id"], **params})
    await conn.execute(BACKING_DETAILS, {"id": scenario_set["collection_id"], **params})


async def delete_set(conn: Connection, scenario_set: Mapping[str, Any]) -> None:
    """Delete a (locked) set with its fields and scenarios; like a collection, a set that
    experiments used is hidden instead (they keep their conversations' scenarios)."""
    collection_id = scenario_set["collection_id"]
    used = await conn.fetchval(USED_BY_EXPERIMENTS, {"id": scenario_set["id"]}) is not None
    if not used:
        await retire_row_criteria(conn, await live_row_ids(conn, collection_id))
    await delete_or_hide(conn, "scenario_sets", scenario_set["id"])
    await delete_or_hide(conn, "collections", collection_id)


async def _touch(conn: Connection, scenario_set: Mapping[str, Any]) -> None:
    await conn.execute(TOUCH_SET, {"id": scenario_set["id"], "ts": utcnow()})


# ---- fields ---------------------------------------------------------------------------------


async def _field(conn: Connection, scenario_set: Mapping[str, Any], field_id: int) -> Any:
    columns = await load_columns(conn, scenario_set["collection_id"])
    for column in columns:
        if column["id"] == field_id:
            if column["name"] in IMPLICIT_FIELDS:
                raise ScenarioRuleError(
                    f"{column['name']!r} is an implicit field of every scenario set; it cannot "
                    "be renamed or deleted"
                )
            return column
    raise NotFound("scenario field", field_id)


async def add_field(
    conn: Connection, scenario_set: Mapping[str, Any], name: str, default_value: str
) -> Any:
    """Declare a field on a (locked) set: every existing scenario gets ``default_value``."""
    collection_id = scenario_set["collection_id"]
    columns = await load_columns(conn, collection_id)
    check_field_names([name], [c["name"] for c in columns])
    position = max((c["column_position"] for c in columns), default=-1) + 1
    spec = ColumnSpec(name, ColumnTypeEnum.TEXT, default_value)
    await add_column(conn, collection_id, spec, position, "STANDARD")
    columns = await load_columns(conn, collection_id)
    await rewrite_rows(conn, collection_id, columns, {})
    await _touch(conn, scenario_set)
    return next(c for c in columns if c["name"] == name)


async def rename_field(
    conn: Connection, scenario_set: Mapping[str, Any], field_id: int, name: str
) -> Any:
    """Rename a declared field of a (locked) set (the key moves in every scenario)."""
    field = await _field(conn, scenario_set, field_id)
    columns = await load_columns(conn, scenario_set["collection_id"])
    if name != field["name"]:
        check_field_names([name], [c["name"] for c in columns if c["id"] != field_id])
    specs = [ColumnSpec(name if c["id"] == field_id else c["name"], id=c["id"]) for c in columns]
    await reshape_columns(conn, await backing_collection(conn, scenario_set), specs)
    await _touch(conn, scenario_set)
    columns = await load_columns(conn, scenario_set["collection_id"])
    return next(c for c in columns if c["id"] == field_id)


async def delete_field(conn: Connection, scenario_set: Mapping[str, Any], field_id: int) -> None:
    """Drop a declared field of a (locked) set (its key leaves every scenario)."""
    await _field(conn, scenario_set, field_id)
    columns = await load_columns(conn, scenario_set["collection_id"])
    specs = [ColumnSpec(c["name"], id=c["id"]) for c in columns if c["id"] != field_id]
    await reshape_columns(conn, await backing_collection(conn, scenario_set), specs)
    await _touch(conn, scenario_set)


# ---- scenarios ------------------------------------------------------------------------------


def scenario_values(
    goal: str, outcome: str, field_values: Mapping[str, Any], fields: Sequence[str]
) -> dict[str, Any]:
    """The stored row of a scenario; :class:`ScenarioRuleError` names keys that are no
    declared field (declared fields left out get their defaults when stored)."""
    unknown = [k for k in field_values if k not in fields]
    if unknown:
        implicit = [k for k in unknown if k in IMPLICIT_FIELDS]
        if implicit:
            raise ScenarioRuleError(
                f"field_values must not set the implicit field(s) {', '.join(implicit)}: use "
                "goal and expected_conversation_outcome"
            )
        declared = ", ".join(fields) or "none"
        raise ScenarioRuleError(
            f"field_values has unknown field(s) {', '.join(repr(k) for k in unknown)}; the "
            f"set's fields are: {declared} (declare a field with POST .../fields first)"
        )
    return {GOAL: goal, OUTCOME: outcome, **field_values}


async def field_names(conn: Connection, scenario_set: Mapping[str, Any]) -> list[str]:
    return [c["name"] for c in await declared_fields(conn, scenario_set["collection_id"])]


async def add_scenarios(
    conn: Connection,
    scenario_set: Mapping[str, Any],
    rows: Sequence[dict[str, Any]],
    *,
    skip_existing: bool = False,
) -> list[int]:
    """Store scenario rows (from :func:`scenario_values`) in a (locked) set; the new ids.
    ``skip_existing`` skips scenarios equal (with defaults filled) to a stored one or an
    earlier one of ``rows``."""
    if not rows:
        return []
    collection = await backing_collection(conn, scenario_set)
    ids = await insert_entries(
        conn, collection, [(r, None) for r in rows], skip_existing=skip_existing
    )
    if ids:
        await _touch(conn, scenario_set)
    return ids


async def replace_scenario(
    conn: Connection, scenario_set: Mapping[str, Any], scenario_id: int, values: dict[str, Any]
) -> None:
    """Replace a scenario of a (locked) set (declared fields left out reset to default)."""
    await scenario_row(conn, scenario_set, scenario_id)
    collection = await backing_collection(conn, scenario_set)
    await update_entry(conn, collection, scenario_id, values, None)
    await _touch(conn, scenario_set)


async def delete_scenario(
    conn: Connection, scenario_set: Mapping[str, Any], scenario_id: int
) -> None:
    """Delete a scenario of a (locked) set (hidden instead when experiments used it)."""
    await scenario_row(conn, scenario_set, scenario_id)
    await delete_entry(conn, scenario_id)
    await _touch(conn, scenario_set)


async def scenario_count(conn: Connection, scenario_set: Mapping[str, Any]) -> int:
    return int(await conn.fetchval(LIVE_COUNT, {"id": scenario_set["collection_id"]}) or 0)


__all__ = [
    "FIELD_TYPES",
    "GOAL",
    "OUTCOME",
    "ScenarioRuleError",
    "add_field",
    "add_scenarios",
    "backing_collection",
    "check_field_names",
    "check_name_free",
    "check_writable",
    "create_set",
    "declared_fields",
    "delete_field",
    "delete_scenario",
    "delete_set",
    "field_names",
    "field_struct",
    "list_statement",
    "rename_field",
    "replace_scenario",
    "scenario_count",
    "scenario_row",
    "scenario_struct",
    "scenario_values",
    "set_row",
    "set_struct",
    "set_structs",
    "unused_name",
    "update_set",
]
