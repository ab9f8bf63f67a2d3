"""Criteria and criterion sets, and the links between sets and prompt templates.

A criterion belongs to sets through ``criterion_set_criteria`` (with a position). Editing a
criterion makes a new version (a new row that takes the old one's place in every set; the old
row is hidden, so past ratings keep their meaning). A template's ``criterion_set_id`` is its
default set: set by the first link (or by adding criteria to the template), moved to another
linked set (or cleared) when that link goes away.

Concurrency (PostgreSQL): a write locks the rows it builds on with
:func:`~.common.lock_live_row`: the criterion it replaces or deletes, the set it changes, the
template whose default set it creates. Templates are locked before sets, in every path, so two
requests never wait for each other in a circle. Set names are unique among live sets by an
index, which answers a concurrent duplicate.
"""

from __future__ import annotations

import logging
from functools import cache
from typing import Any

from sqlalchemy import Select, and_, bindparam, delete, func, insert, or_, select, update

from elluminate.schemas import CriterionIn

from . import schema as S
from .common import delete_or_hide, insert_unique_name, live_row, lock_live_row
from .connection import Connection, UniqueViolation
from .database import utcnow
from .errors import NameTaken, NotFound

log = logging.getLogger("elluminate.server.store.criteria")

_C, _M, _CS = S.criteria, S.criterion_set_criteria, S.criterion_sets
_PTL, _T = S.criterion_set_prompt_templates, S.prompt_templates
_TV, _COL = S.template_variables, S.collections
_ID: Any = bindparam("id")
_PID: Any = bindparam("pid")
_SET: Any = bindparam("set_id")
_TID: Any = bindparam("template_id")
_TS: Any = bindparam("ts")

# ---- statements -----------------------------------------------------------------------------

INSERT_SET = (
    insert(_CS)
    .values(project_id=_PID, name=bindparam("name"), created_at=_TS, updated_at=_TS)
    .returning(_CS.c.id)
)
SET_NAME_TAKEN = select(_CS.c.id).where(
    _CS.c.project_id == _PID, _CS.c.name == bindparam("name"), _CS.c.deleted_at.is_(None)
)
SET_ALIVE = select(_CS.c.id).where(_CS.c.id == _ID, _CS.c.deleted_at.is_(None))
SET_ALIVE_LOCKED = SET_ALIVE.with_for_update(key_share=True)
TOUCH_SET = update(_CS).where(_CS.c.id == _ID).values(updated_at=_TS)

MEMBER_IDS = (
    select(_M.c.criterion_id)
    .where(_M.c.criterion_set_id == _ID)
    .order_by(_M.c.position, _M.c.criterion_id)
)
MEMBER_COUNT = select(func.count()).select_from(_M).where(_M.c.criterion_set_id == _ID)
MEMBER_KEYS = (
    select(_C.c.id, _C.c.criterion_str, _C.c.template_variables_id)
    .join(_M, _M.c.criterion_id == _C.c.id)
    .where(_M.c.criterion_set_id == _ID)
)
LAST_POSITION = select(func.coalesce(func.max(_M.c.position), -1)).where(
    _M.c.criterion_set_id == _ID
)
ADD_MEMBER = insert(_M).values(
    criterion_set_id=_ID, criterion_id=bindparam("criterion_id"), position=bindparam("position")
)
CLEAR_MEMBERS = delete(_M).where(_M.c.criterion_set_id == _ID)
REMOVE_FROM_SETS = delete(_M).where(_M.c.criterion_id == _ID)
IN_SOME_SET = select(_M.c.criterion_id).where(_M.c.criterion_id == _ID).limit(1)
MOVE_MEMBERSHIPS = (
    update(_M).where(_M.c.criterion_id == bindparam("old")).values(criterion_id=bindparam("new"))
)

INSERT_CRITERION = (
    insert(_C)
    .values(
        project_id=_PID,
        criterion_str=bindparam("text"),
        label=bindparam("label"),
        prompt_template_id=_TID,
        template_variables_id=bindparam("entry_id"),
        previous_version_id=bindparam("previous_id"),
        created_at=_TS,
    )
    .returning(_C.c.id)
)
HIDE_CRITERION = update(_C).where(_C.c.id == _ID).values(deleted_at=_TS)
ENTRY_HELD = (
    select(_TV.c.id)
    .join(_COL, _COL.c.id == _TV.c.collection_id)
    .where(
        _TV.c.id == _ID,
        _COL.c.project_id == _PID,
        _TV.c.deleted_at.is_(None),
        _COL.c.deleted_at.is_(None),
    )
    .with_for_update(read=True, key_share=True, of=_TV)
)

LINKED_TEMPLATES = (
    select(_PTL.c.prompt_template_id)
    .where(_PTL.c.criterion_set_id == _ID)
    .order_by(_PTL.c.prompt_template_id)
)
LOCK_TEMPLATES = (
    select(_T.c.id)
    .where(_T.c.id.in_(bindparam("ids", expanding=True)))
    .order_by(_T.c.id)
    .with_for_update(key_share=True)
)
LINK_EXISTS = select(_PTL.c.criterion_set_id).where(
    _PTL.c.criterion_set_id == _SET, _PTL.c.prompt_template_id == _TID
)
ADD_LINK = insert(_PTL).values(criterion_set_id=_SET, prompt_template_id=_TID, created_at=_TS)
REMOVE_LINK = delete(_PTL).where(
    _PTL.c.criterion_set_id == _SET, _PTL.c.prompt_template_id == _TID
)
DEFAULT_IF_NONE = (
    update(_T)
    .where(_T.c.id == _TID, _T.c.criterion_set_id.is_(None))
    .values(criterion_set_id=_SET)
)
_FALLBACK_SET = (
    select(_PTL.c.criterion_set_id)
    .join(_CS, _CS.c.id == _PTL.c.criterion_set_id)
    .where(_PTL.c.prompt_template_id == _T.c.id, _CS.c.deleted_at.is_(None))
    .order_by(_PTL.c.created_at, _PTL.c.criterion_set_id)
    .limit(1)
    .scalar_subquery()
)
DEFAULT_FALLBACK = (
    update(_T)
    .where(_T.c.id == _TID, _T.c.criterion_set_id == _SET)
    .values(criterion_set_id=_FALLBACK_SET)
)
CLEAR_DEFAULT = update(_T).where(_T.c.id == _TID).values(criterion_set_id=None)


@cache
def criteria_listing(by_template: bool, by_set: bool) -> Select[Any]:
    """The project's live criteria by id; ``:template_id`` keeps those in the template's
    (live) sets, ``:set_id`` those in one set."""
    stmt = select(_C).where(_C.c.project_id == _PID, _C.c.deleted_at.is_(None))
    if by_template:
        sets_of_template = select(_PTL.c.criterion_set_id).where(
            _PTL.c.prompt_template_id == _TID
        )
        default_set = select(_T.c.criterion_set_id).where(_T.c.id == _TID).scalar_subquery()
        in_template_sets = (
            select(_M.c.criterion_id)
            .join(_CS, and_(_CS.c.id == _M.c.criterion_set_id, _CS.c.deleted_at.is_(None)))
            .where(
                or_(
                    _M.c.criterion_set_id.in_(sets_of_template),
                    _M.c.criterion_set_id == default_set,
                )
            )
        )
        stmt = stmt.where(_C.c.id.in_(in_template_sets))
    if by_set:
        stmt = stmt.where(
            _C.c.id.in_(select(_M.c.criterion_id).where(_M.c.criterion_set_id == _SET))
        )
    return stmt.order_by(_C.c.id)


# ---- rows ---------------------------------------------------------------------------------------


async def live_set(conn: Connection, pid: int, set_id: int) -> Any:
    """The (non-deleted) criterion set row of this project; NotFound otherwise."""
    return await live_row(conn, "criterion_sets", "criterion set", pid, set_id)


async def lock_set(conn: Connection, pid: int, set_id: int) -> Any:
    """:func:`live_set`, locked for the caller's transaction (its criteria change)."""
    return await lock_live_row(conn, "criterion_sets", "criterion set", pid, set_id)


async def lock_criterion(conn: Connection, pid: int, criterion_id: int) -> Any:
    """The (non-deleted) criterion row of this project, locked; NotFound otherwise."""
    return await lock_live_row(conn, "criteria", "criterion", pid, criterion_id)


async def hold_entry(conn: Connection, pid: int, entry_id: int) -> None:
    """Keep a live collection entry from being deleted until the transaction ends (new
    criteria will reference it); NotFound (as the read model says it) otherwise."""
    if await conn.fetchval(ENTRY_HELD, {"id": entry_id, "pid": pid}) is None:
        raise NotFound("collection entry", entry_id)


async def set_criterion_ids(conn: Connection, set_id: int) -> list[int]:
    """The criteria of a set, in set order."""
    return [r[0] for r in await conn.fetchall(MEMBER_IDS, {"id": set_id})]


# ---- criteria in sets -------------------------------------------------------------------------


async def add_criteria(
    conn: Connection,
    pid: int,
    set_id: int,
    items: list[CriterionIn],
    *,
    prompt_template_id: int | None = None,
    template_variables_id: int | None = None,
) -> list[int]:
    """Add criteria to a set (locked by the caller), reusing identical strings already in it;
    their ids, in the order of ``items``."""
    existing = {
        (r["criterion_str"], r["template_variables_id"]): r["id"]
        for r in await conn.fetchall(MEMBER_KEYS, {"id": set_id})
    }
    position = int(await conn.fetchval(LAST_POSITION, {"id": set_id}))
    moment = utcnow()
    ids: list[int] = []
    for item in items:
        key = (item.criterion_str, template_variables_id)
        criterion_id = existing.get(key)
        if criterion_id is None:
            criterion_id = await conn.insert(
                INSERT_CRITERION,
                {
                    "pid": pid,
                    "text": item.criterion_str,
                    "label": item.label,
                    "template_id": prompt_template_id,
                    "entry_id": template_variables_id,
                    "previous_id": None,
                    "ts": moment,
                },
            )
            position += 1
            await conn.execute(
                ADD_MEMBER, {"id": set_id, "criterion_id": criterion_id, "position": position}
            )
            existing[key] = criterion_id
        if criterion_id not in ids:
            ids.append(criterion_id)
    if ids:
        await conn.execute(TOUCH_SET, {"id": set_id, "ts": moment})
    return ids


async def drop_criterion(conn: Connection, criterion_id: int) -> None:
    """Delete a criterion that no set uses any more (hidden if ratings reference it)."""
    if await conn.fetchval(IN_SOME_SET, {"id": criterion_id}) is None:
        await delete_or_hide(conn, "criteria", criterion_id)


async def clear_set(conn: Connection, set_id: int) -> None:
    """Remove every criterion from a set (criteria used nowhere else are deleted)."""
    ids = await set_criterion_ids(conn, set_id)
    await conn.execute(CLEAR_MEMBERS, {"id": set_id})
    for criterion_id in ids:
        await drop_criterion(conn, criterion_id)
    await conn.execute(TOUCH_SET, {"id": set_id, "ts": utcnow()})


async def replace_criterion(
    conn: Connection, pid: int, old: Any, text: str, label: str | None
) -> int:
    """A new version of criterion row ``old`` (locked by the caller): it takes the old one's
    place in every set, and the old one is hidden. The new id."""
    moment = utcnow()
    new_id: int = await conn.insert(
        INSERT_CRITERION,
        {
            "pid": pid,
            "text": text,
            "label": label,
            "template_id": old["prompt_template_id"],
            "entry_id": old["template_variables_id"],
            "previous_id": old["id"],
            "ts": moment,
        },
    )
    await conn.execute(MOVE_MEMBERSHIPS, {"old": old["id"], "new": new_id})
    await conn.execute(HIDE_CRITERION, {"id": old["id"], "ts": moment})
    return new_id


async def delete_criterion(conn: Connection, pid: int, criterion_id: int) -> None:
    """Remove a criterion from every set (hidden instead of deleted if it was rated)."""
    await lock_criterion(conn, pid, criterion_id)
    await conn.execute(REMOVE_FROM_SETS, {"id": criterion_id})
    await drop_criterion(conn, criterion_id)


# ---- sets ---------------------------------------------------------------------------------------


async def create_set(conn: Connection, pid: int, name: str, items: list[CriterionIn]) -> int:
    """A new set with ``items``; its id. NameTaken when a live set has the name."""
    set_id = await insert_unique_name(
        conn, "criterion_sets", INSERT_SET, {"pid": pid, "name": name, "ts": utcnow()}
    )
    await add_criteria(conn, pid, set_id, items)
    return set_id


async def delete_set(conn: Connection, pid: int, set_id: int) -> None:
    """Delete a set and its criteria; a set used by experiments is hidden instead (intact).

    Its templates fall back to another linked set. NotFound if missing.
    """
    await live_set(conn, pid, set_id)
    # templates before the set (the lock order); then the links again, as they are now
    linked = [r[0] for r in await conn.fetchall(LINKED_TEMPLATES, {"id": set_id})]
    if linked:
        await conn.fetchall(LOCK_TEMPLATES, {"ids": linked})
    await lock_set(conn, pid, set_id)
    for row in await conn.fetchall(LINKED_TEMPLATES, {"id": set_id}):
        await unlink_template(conn, set_id, row[0])
    ids = await set_criterion_ids(conn, set_id)
    if await delete_or_hide(conn, "criterion_sets", set_id):
        for criterion_id in ids:
            await drop_criterion(conn, criterion_id)


# ---- template links -----------------------------------------------------------------------------


async def link_template(conn: Connection, set_id: int, template_id: int) -> None:
    """Link a set to a template; it becomes the template's default set if it has none."""
    params = {"set_id": set_id, "template_id": template_id}
    if await conn.fetchval(LINK_EXISTS, params) is None:
        try:
            async with conn.savepoint():
                await conn.execute(ADD_LINK, {**params, "ts": utcnow()})
        except UniqueViolation:  # linked by a concurrent request meanwhile
            pass
    await conn.execute(DEFAULT_IF_NONE, params)


async def unlink_template(conn: Connection, set_id: int, template_id: int) -> None:
    """Unlink; a template whose default was this set falls back to another linked set."""
    params = {"set_id": set_id, "template_id": template_id}
    await conn.execute(REMOVE_LINK, params)
    await conn.execute(DEFAULT_FALLBACK, params)


async def lock_link_ends(conn: Connection, pid: int, set_id: int, template_id: int) -> None:
    """Check and lock both ends of a link: NotFound names the set first, then the template;
    the template is locked before the set (the lock order)."""
    await live_set(conn, pid, set_id)
    await lock_live_row(conn, "prompt_templates", "prompt template", pid, template_id)
    await lock_set(conn, pid, set_id)


async def default_set(conn: Connection, template: Any, *, lock: bool = False) -> int | None:
    """The template row's default set if it is alive (``lock``: locked)."""
    set_id: int | None = template["criterion_set_id"]
    if set_id is None:
        return None
    alive = await conn.fetchval(SET_ALIVE_LOCKED if lock else SET_ALIVE, {"id": set_id})
    return None if alive is None else set_id


async def template_criteria_count(conn: Connection, template: Any, *, lock: bool = False) -> int:
    """How many criteria the template row's default set has (0 without one)."""
    set_id = await default_set(conn, template, lock=lock)
    if set_id is None:
        return 0
    return int(await conn.fetchval(MEMBER_COUNT, {"id": set_id}))


async def template_set(conn: Connection, pid: int, template: Any, *, create: bool) -> int | None:
    """The template row's default set, locked (the template row must be locked by the caller);
    with ``create``, a new set named after the template when it has none."""
    set_id = await default_set(conn, template, lock=True)
    if set_id is not None or not create:
        return set_id
    name, new_id = await _insert_set_named_after(conn, pid, template)
    await conn.execute(CLEAR_DEFAULT, {"template_id": template["id"]})
    await link_template(conn, new_id, template["id"])
    log.debug("created criterion set %r (id %d) for template %d", name, new_id, template["id"])
    return new_id


async def _insert_set_named_after(conn: Connection, pid: int, template: Any) -> tuple[str, int]:
    """A new set called after the template: its name, else ``name vN``, ``name vN (2)`` ..."""
    name, version = template["name"], template["version"]
    candidates = [name, f"{name} v{version}"]
    candidates += [f"{name} v{version} ({n})" for n in range(2, 1000)]
    moment = utcnow()
    for candidate in candidates:
        try:
            set_id = await insert_unique_name(
                conn, "criterion_sets", INSERT_SET, {"pid": pid, "name": candidate, "ts": moment}
            )
        except NameTaken:
            continue
        return candidate, set_id
    raise NameTaken(await conn.fetchval(SET_NAME_TAKEN, {"pid": pid, "name": name}))
