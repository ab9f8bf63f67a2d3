"""Prompt templates: versions counted per (project, name), content identity, list filters.

A template's versions form a family (same project and name). A new version gets the family's
highest version plus one (deleted versions count, so a number is never given twice); the
unique key (project, name, version) makes two concurrent creates unable to share a number.
On PostgreSQL the family's rows are locked first, so concurrent creates of an existing name
take turns and each sees the versions committed before it; two first versions of a new name
meet at the unique key instead, and the loser counts again.
"""

from __future__ import annotations

import logging
from functools import cache
from typing import Any

from sqlalchemy import Select, bindparam, delete, func, insert, or_, select

from . import schema as S
from .common import delete_or_hide, live_row, lock_live_row
from .connection import Connection, UniqueViolation
from .database import dumps, loads, utcnow
from .pages import fetch_page

log = logging.getLogger("elluminate.server.store.templates")

_T, _L = S.prompt_templates, S.criterion_set_prompt_templates
_ID: Any = bindparam("id")
_PID: Any = bindparam("pid")
_NAME: Any = bindparam("name")

#: How often a create counts again after losing a version number to a concurrent create.
MAX_VERSION_ATTEMPTS = 10

FAMILY = (
    select(_T.c.id)
    .where(_T.c.project_id == _PID, _T.c.name == _NAME)
    .order_by(_T.c.id)
    .with_for_update(key_share=True)
)
SAME_CONTENT = (
    select(_T.c.id, _T.c.version)
    .where(
        _T.c.project_id == _PID,
        _T.c.name == _NAME,
        _T.c.content_hash == bindparam("content_hash"),
        _T.c.deleted_at.is_(None),
    )
    .order_by(_T.c.version.desc())
    .limit(1)
)
LATEST_VERSION = select(func.max(_T.c.version)).where(_T.c.project_id == _PID, _T.c.name == _NAME)
#: The live version with this content and the highest version number, read in ONE statement:
#: on PostgreSQL each statement sees its own snapshot, and a version committed between two
#: separate reads would count for the number but not for the content (two equal versions).
SAME_AND_LATEST = select(
    SAME_CONTENT.with_only_columns(_T.c.id).scalar_subquery().label("same_id"),
    SAME_CONTENT.with_only_columns(_T.c.version).scalar_subquery().label("same_version"),
    LATEST_VERSION.scalar_subquery().label("latest"),
)
INSERT_TEMPLATE = (
    insert(_T)
    .values(
        project_id=_PID,
        name=_NAME,
        version=bindparam("version"),
        messages=bindparam("messages"),
        placeholders=bindparam("placeholders"),
        response_format_json_schema=bindparam("response_format"),
        tools=bindparam("tools"),
        tool_choice=bindparam("tool_choice"),
        content_hash=bindparam("content_hash"),
        parent_prompt_template_id=bindparam("parent_id"),
        created_at=bindparam("ts"),
        updated_at=bindparam("ts"),
    )
    .returning(_T.c.id)
)
UNLINK_FROM_SETS = delete(_L).where(_L.c.prompt_template_id == _ID)
BY_IDS = select(_T).where(_T.c.id.in_(bindparam("ids", expanding=True)))
_CC = S.collection_columns
COLUMN_NAMES = select(_CC.c.name).where(_CC.c.collection_id == _ID)


class SameContent(Exception):
    """A live version of the name already has exactly this content (HTTP 409)."""

    def __init__(self, template_id: int, version: int) -> None:
        super().__init__(f"version {version} (id {template_id}) has this content")
        self.template_id = template_id
        self.version = version


class VersionContention(Exception):
    """Concurrent creates of one name kept taking the next version number (retry later)."""


async def live_template(conn: Connection, pid: int, template_id: int) -> Any:
    """The (non-deleted) template row of this project; NotFound otherwise."""
    return await live_row(conn, "prompt_templates", "prompt template", pid, template_id)


async def lock_template(conn: Connection, pid: int, template_id: int) -> Any:
    """:func:`live_template`, locked for the caller's transaction (its set links change)."""
    return await lock_live_row(conn, "prompt_templates", "prompt template", pid, template_id)


async def create_template(
    conn: Connection,
    pid: int,
    name: str,
    *,
    messages: list[Any],
    placeholders: list[str],
    response_format: Any,
    tools: Any,
    tool_choice: Any,
    content_hash: str,
    parent_id: int | None,
) -> tuple[int, int]:
    """A new version of the template called ``name``: (its id, its version).

    NotFound for a missing parent, :class:`SameContent` when a live version already has this
    ``content_hash``. In the caller's transaction.
    """
    if parent_id is not None:  # kept from being deleted until this transaction ends
        await lock_live_row(conn, "prompt_templates", "prompt template", pid, parent_id, share=True)
    family = {"pid": pid, "name": name}
    params = {
        **family,
        "messages": dumps(messages),
        "placeholders": dumps(placeholders),
        "response_format": dumps(response_format),
        "tools": dumps(tools),
        "tool_choice": dumps(tool_choice),
        "content_hash": content_hash,
        "parent_id": parent_id,
        "ts": utcnow(),
    }
    for _ in range(MAX_VERSION_ATTEMPTS):
        await conn.fetchall(FAMILY, family)  # PostgreSQL: wait for creates of this name
        found = await conn.fetchone(SAME_AND_LATEST, {**family, "content_hash": content_hash})
        assert found is not None  # one row of scalar subqueries
        if found["same_id"] is not None:
            raise SameContent(found["same_id"], found["same_version"])
        version = int(found["latest"] or 0) + 1
        try:
            async with conn.savepoint():
                template_id: int = await conn.insert(
                    INSERT_TEMPLATE, {**params, "version": version}
                )
            return template_id, version
        except UniqueViolation:
            # a concurrent create committed this version first: look again (its content too)
            log.debug(
                "version %d of template %r was taken meanwhile; counting again", version, name
            )
    raise VersionContention(name)


async def delete_template(conn: Connection, pid: int, template_id: int) -> None:
    """Delete a template version (hidden while experiments use it); NotFound if missing."""
    await lock_template(conn, pid, template_id)
    await conn.execute(UNLINK_FROM_SETS, {"id": template_id})
    await delete_or_hide(conn, "prompt_templates", template_id)


async def collection_columns(conn: Connection, pid: int, collection_id: int) -> frozenset[str]:
    """The column names of a live collection of this project (NotFound otherwise)."""
    await live_row(conn, "collections", "collection", pid, collection_id)
    rows = await conn.fetchall(COLUMN_NAMES, {"id": collection_id})
    return frozenset(r[0] for r in rows)


@cache
def _listing(by_name: bool, by_version: bool, by_set: bool, ids_only: bool) -> Select[Any]:
    columns: tuple[Any, ...] = (_T.c.id, _T.c.placeholders) if ids_only else (_T,)
    stmt = select(*columns).where(_T.c.project_id == _PID, _T.c.deleted_at.is_(None))
    if by_name:
        stmt = stmt.where(_T.c.name == _NAME)
    if by_version:
        stmt = stmt.where(_T.c.version == bindparam("version"))
    if by_set:
        set_id: Any = bindparam("set_id")
        linked = select(_L.c.prompt_template_id).where(_L.c.criterion_set_id == set_id)
        stmt = stmt.where(or_(_T.c.criterion_set_id == set_id, _T.c.id.in_(linked)))
    return stmt.order_by(_T.c.version.desc() if by_name else _T.c.id)


async def list_templates(
    conn: Connection,
    pid: int,
    *,
    name: str | None,
    version: int | None,
    criterion_set_id: int | None,
    compatible_columns: frozenset[str] | None,
    page: int,
    size: int,
) -> tuple[list[Any], int]:
    """A page of the project's live template rows and the total count.

    ``name`` lists its versions newest first (else by id); ``criterion_set_id`` keeps the
    templates linked to that set or having it as default; ``compatible_columns`` keeps the
    templates whose every placeholder is one of these column names.
    """
    params: dict[str, Any] = {"pid": pid}
    if name is not None:
        params["name"] = name
    if version is not None:
        params["version"] = version
    if criterion_set_id is not None:
        params["set_id"] = criterion_set_id
    shape = (name is not None, version is not None, criterion_set_id is not None)
    if compatible_columns is None:
        return await fetch_page(conn, _listing(*shape, False), params, page=page, size=size)
    # placeholders are a JSON list: the subset test runs here, not in SQL (portable, and
    # a project's templates are few); then the page's rows are loaded by id
    candidates = await conn.fetchall(_listing(*shape, True), params)
    matching = [
        r["id"] for r in candidates if compatible_columns.issuperset(loads(r["placeholders"]))
    ]
    chosen = matching[(page - 1) * size : page * size]
    if not chosen:
        return [], len(matching)
    by_id = {r["id"]: r for r in await conn.fetchall(BY_IDS, {"ids": chosen})}
    return [by_id[i] for i in chosen], len(matching)
