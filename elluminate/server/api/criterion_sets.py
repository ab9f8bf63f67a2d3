"""Criterion sets and template links (CONTRACT.md 4.5), plus the criteria helpers they share.

A template's ``criterion_set_id`` is its default set: set by the first link (or by criteria
generation), moved to another linked set (or cleared) when that link goes away.
"""

from __future__ import annotations

import logging
import sqlite3

from aiohttp import web

from elluminate.schemas import CreateCriterionSetRequest, CriterionIn

from ..store.database import Database, now
from ..store.views_sync import SyncViews
from .errors import conflict, unprocessable
from .http import (
    check_name,
    get_db,
    json_response,
    list_named,
    live_row,
    no_content,
    path_id,
    project_id,
    read_json,
)
from .prompt_templates import template_row

log = logging.getLogger("elluminate.server.api.criterion_sets")

routes = web.RouteTableDef()

BASE = r"/api/v0/projects/{project_id:\d+}/criterion_sets"
ONE = BASE + r"/{set_id:\d+}"
LINK = ONE + r"/prompt_templates/{template_id:\d+}"


# ---- helpers (also used by the criteria routes) ----------------------------------------


def set_row(db: Database, pid: int, set_id: int) -> sqlite3.Row:
    """The (non-deleted) criterion set row of this project, or 404."""
    return live_row(db, "criterion_sets", "criterion set", pid, set_id)


def set_name_taken(db: Database, pid: int, name: str) -> int | None:
    """Id of the live set called ``name``, if any."""
    return db.fetchval(  # type: ignore[no-any-return]
        "SELECT id FROM criterion_sets WHERE project_id = ? AND name = ? AND deleted_at IS NULL",
        (pid, name),
    )


def insert_set(db: Database, pid: int, name: str) -> int:
    ts = now()
    return db.insert(
        "INSERT INTO criterion_sets (project_id, name, created_at, updated_at) VALUES (?, ?, ?, ?)",
        (pid, name, ts, ts),
    )


def check_criteria(items: list[CriterionIn], *, what: str = "criteria") -> list[CriterionIn]:
    """Stripped, non-empty criterion strings (422 naming the bad item)."""
    checked: list[CriterionIn] = []
    for index, item in enumerate(items):
        text = item.criterion_str.strip()
        if not text:
            raise unprocessable(f"{what}[{index}].criterion_str must not be empty")
        label = item.label.strip() if isinstance(item.label, str) else None
        checked.append(CriterionIn(criterion_str=text, label=label or None))
    return checked


def set_criterion_ids(db: Database, set_id: int) -> list[int]:
    return [
        r[0]
        for r in db.fetchall(
            "SELECT criterion_id FROM criterion_set_criteria WHERE criterion_set_id = ? "
            "ORDER BY position, criterion_id",
            (set_id,),
        )
    ]


def add_criteria(
    db: Database,
    pid: int,
    set_id: int,
    items: list[CriterionIn],
    *,
    prompt_template_id: int | None = None,
    template_variables_id: int | None = None,
) -> list[int]:
    """Add criteria to a set, reusing identical strings already in it; returns their ids."""
    existing = {
        (r["criterion_str"], r["template_variables_id"]): r["id"]
        for r in db.fetchall(
            "SELECT c.id, c.criterion_str, c.template_variables_id FROM criteria c "
            "JOIN criterion_set_criteria l ON l.criterion_id = c.id "
            "WHERE l.criterion_set_id = ?",
            (set_id,),
        )
    }
    position = db.fetchval(
        "SELECT COALESCE(MAX(position), -1) FROM criterion_set_criteria WHERE criterion_set_id = ?",
        (set_id,),
    )
    ts = now()
    ids: list[int] = []
    for item in items:
        key = (item.criterion_str, template_variables_id)
        criterion_id = existing.get(key)
        if criterion_id is None:
            criterion_id = db.insert(
                "INSERT INTO criteria (project_id, criterion_str, label, prompt_template_id, "
                "template_variables_id, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                (
                    pid,
                    item.criterion_str,
                    item.label,
                    prompt_template_id,
                    template_variables_id,
                    ts,
                ),
            )
            position += 1
            db.execute(
                "INSERT INTO criterion_set_criteria (criterion_set_id, criterion_id, position) "
                "VALUES (?, ?, ?)",
                (set_id, criterion_id, position),
            )
            existing[key] = criterion_id
        if criterion_id not in ids:
            ids.append(criterion_id)
    if ids:
        db.execute("UPDATE criterion_sets SET updated_at = ? WHERE id = ?", (ts, set_id))
    return ids


def drop_criterion(db: Database, criterion_id: int) -> None:
    """Delete a criterion that no set uses any more (hidden if ratings reference it)."""
    if not db.fetchval(
        "SELECT 1 FROM criterion_set_criteria WHERE criterion_id = ? LIMIT 1", (criterion_id,)
    ):
        db.delete_or_hide("criteria", criterion_id)


def clear_set(db: Database, set_id: int) -> None:
    """Remove every criterion from a set (criteria used nowhere else are deleted)."""
    ids = set_criterion_ids(db, set_id)
    db.execute("DELETE FROM criterion_set_criteria WHERE criterion_set_id = ?", (set_id,))
    for criterion_id in ids:
        drop_criterion(db, criterion_id)
    db.execute("UPDATE criterion_sets SET updated_at = ? WHERE id = ?", (now(), set_id))


def link_template(db: Database, set_id: int, template_id: int) -> None:
    """Link a set to a template; it becomes the template's default set if it has none."""
    db.execute(
        "INSERT OR IGNORE INTO criterion_set_prompt_templates "
        "(criterion_set_id, prompt_template_id, created_at) VALUES (?, ?, ?)",
        (set_id, template_id, now()),
    )
    db.execute(
        "UPDATE prompt_templates SET criterion_set_id = ? WHERE id = ? "
        "AND criterion_set_id IS NULL",
        (set_id, template_id),
    )


def unlink_template(db: Database, set_id: int, template_id: int) -> None:
    """Unlink; a template whose default was this set falls back to another linked set."""
    db.execute(
        "DELETE FROM criterion_set_prompt_templates WHERE criterion_set_id = ? "
        "AND prompt_template_id = ?",
        (set_id, template_id),
    )
    db.execute(
        "UPDATE prompt_templates SET criterion_set_id = (SELECT l.criterion_set_id FROM "
        "criterion_set_prompt_templates l JOIN criterion_sets s ON s.id = l.criterion_set_id "
        "WHERE l.prompt_template_id = prompt_templates.id AND s.deleted_at IS NULL "
        "ORDER BY l.created_at, l.criterion_set_id LIMIT 1) "
        "WHERE id = ? AND criterion_set_id = ?",
        (template_id, set_id),
    )


def template_set(db: Database, pid: int, template: sqlite3.Row, *, create: bool) -> int | None:
    """The template's default criterion set; with ``create``, make one named after it."""
    set_id: int | None = template["criterion_set_id"]
    if set_id is not None:
        alive = db.fetchval(
            "SELECT 1 FROM criterion_sets WHERE id = ? AND deleted_at IS NULL", (set_id,)
        )
        if alive:
            return set_id
    if not create:
        return None
    name = template["name"]
    candidates = [name, f"{name} v{template['version']}"]
    candidates += [f"{name} v{template['version']} ({n})" for n in range(2, 1000)]
    for candidate in candidates:
        if set_name_taken(db, pid, candidate) is None:
            name = candidate
            break
    new_id = insert_set(db, pid, name)
    db.execute(
        "UPDATE prompt_templates SET criterion_set_id = NULL WHERE id = ?", (template["id"],)
    )
    link_template(db, new_id, template["id"])
    log.debug("created criterion set %r (id %d) for template %d", name, new_id, template["id"])
    return new_id


# ---- routes -----------------------------------------------------------------------------


@routes.get(BASE)
async def list_criterion_sets(request: web.Request) -> web.Response:
    """Paginated; ``name`` filters exactly."""
    views = SyncViews(get_db(request), project_id(request))
    return list_named(
        request, "criterion_sets", lambda rows: [views.criterion_set_row(r) for r in rows]
    )


@routes.get(ONE)
async def get_criterion_set(request: web.Request) -> web.Response:
    set_id = path_id(request, "set_id", "criterion set")
    return json_response(SyncViews(get_db(request), project_id(request)).criterion_set(set_id))


@routes.post(BASE)
async def create_criterion_set(request: web.Request) -> web.Response:
    """Create a set (409 on a duplicate name) with optional initial criteria."""
    body, _ = await read_json(request, CreateCriterionSetRequest)
    name = check_name(body.name)
    items = check_criteria(body.criteria or [])
    db, pid = get_db(request), project_id(request)
    with db.transaction():
        existing = set_name_taken(db, pid, name)
        if existing is not None:
            raise conflict(
                f"a criterion set named {name!r} already exists (id {existing})",
                criterion_set_id=existing,
            )
        set_id = insert_set(db, pid, name)
        add_criteria(db, pid, set_id, items)
    return json_response(SyncViews(db, pid).criterion_set(set_id), status=201)


@routes.delete(ONE)
async def delete_criterion_set(request: web.Request) -> web.Response:
    """Delete a set and its criteria; a set used by experiments is hidden instead (intact)."""
    set_id = path_id(request, "set_id", "criterion set")
    db, pid = get_db(request), project_id(request)
    with db.transaction():
        set_row(db, pid, set_id)
        templates = [
            r[0]
            for r in db.fetchall(
                "SELECT prompt_template_id FROM criterion_set_prompt_templates "
                "WHERE criterion_set_id = ?",
                (set_id,),
            )
        ]
        for template_id in templates:
            unlink_template(db, set_id, template_id)
        ids = set_criterion_ids(db, set_id)
        if db.delete_or_hide("criterion_sets", set_id):
            for criterion_id in ids:
                drop_criterion(db, criterion_id)
    return no_content()


@routes.put(LINK)
async def link_prompt_template(request: web.Request) -> web.Response:
    """Link the set to a template (no body); returns the set."""
    set_id = path_id(request, "set_id", "criterion set")
    template_id = path_id(request, "template_id", "prompt template")
    db, pid = get_db(request), project_id(request)
    with db.transaction():
        set_row(db, pid, set_id)
        template_row(db, pid, template_id)
        link_template(db, set_id, template_id)
    return json_response(SyncViews(db, pid).criterion_set(set_id))


@routes.delete(LINK)
async def unlink_prompt_template(request: web.Request) -> web.Response:
    set_id = path_id(request, "set_id", "criterion set")
    template_id = path_id(request, "template_id", "prompt template")
    db, pid = get_db(request), project_id(request)
    with db.transaction():
        set_row(db, pid, set_id)
        template_row(db, pid, template_id)
        unlink_template(db, set_id, template_id)
    return no_content()
