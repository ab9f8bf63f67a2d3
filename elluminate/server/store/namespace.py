"""The name space collections and scenario sets share (CONTRACT.md 4.11).

A project's live collections and live scenario sets may not share a name. Each kind's own
names are unique by its partial unique index; across the two kinds, a writer that gives a
collection or a scenario set a name first locks the project row
(:func:`lock_names`, ``FOR NO KEY UPDATE`` on PostgreSQL: rows referencing the project can
still be inserted meanwhile), then checks the other kind: two replicas naming a collection and
a scenario set alike take turns, and the second one sees the first one's name.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, select

from . import schema as S
from .connection import Connection

_PID: Any = bindparam("pid")
_SS, _C = S.scenario_sets, S.collections

LOCK_PROJECT = (
    select(S.projects.c.id).where(S.projects.c.id == _PID).with_for_update(key_share=True)
)
SCENARIO_SET_NAMED = select(_SS.c.id).where(
    _SS.c.project_id == _PID, _SS.c.name == bindparam("name"), _SS.c.deleted_at.is_(None)
)
SCENARIO_SET_NAMED_OTHER = SCENARIO_SET_NAMED.where(_SS.c.id != bindparam("exclude_id"))
COLLECTION_NAMED = select(_C.c.id).where(
    _C.c.project_id == _PID, _C.c.name == bindparam("name"), _C.c.deleted_at.is_(None)
)


async def lock_names(conn: Connection, pid: int) -> None:
    """Hold the project's name space until the transaction ends (see the module docstring)."""
    await conn.fetchval(LOCK_PROJECT, {"pid": pid})


async def scenario_set_named(
    conn: Connection, pid: int, name: str, *, exclude_id: int | None = None
) -> int | None:
    """The id of the project's live scenario set called ``name`` (other than ``exclude_id``)."""
    if exclude_id is None:
        found = await conn.fetchval(SCENARIO_SET_NAMED, {"pid": pid, "name": name})
    else:
        found = await conn.fetchval(
            SCENARIO_SET_NAMED_OTHER, {"pid": pid, "name": name, "exclude_id": exclude_id}
        )
    return None if found is None else int(found)


async def collection_named(conn: Connection, pid: int, name: str) -> int | None:
    """The id of the project's live collection called ``name``."""
    found = await conn.fetchval(COLLECTION_NAMED, {"pid": pid, "name": name})
    return None if found is None else int(found)


__all__ = ["collection_named", "lock_names", "scenario_set_named"]
