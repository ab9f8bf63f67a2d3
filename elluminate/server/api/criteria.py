"""Criteria (CONTRACT.md 4.4): add, generate, clear, list, edit (= new version), delete."""

from __future__ import annotations

import logging
import sqlite3
from typing import Any

from aiohttp import web

from elluminate.schemas import CreateCriteriaRequest, CriterionIn, UpdateCriterionRequest

from ..store.database import Database, loads, now
from ..store.views_sync import SyncViews
from .criterion_sets import (
    add_criteria,
    check_criteria,
    clear_set,
    drop_criterion,
    set_criterion_ids,
    set_row,
    template_set,
)
from .errors import HTTPError, bad_gateway, conflict, unprocessable
from .http import (
    get_db,
    get_providers,
    json_response,
    live_row,
    no_content,
    paginate,
    path_id,
    project_id,
    query_int,
    read_json,
)
from .prompt_templates import template_row

log = logging.getLogger("elluminate.server.api.criteria")

routes = web.RouteTableDef()

BASE = r"/api/v0/projects/{project_id:\d+}/criteria"
ONE = BASE + r"/{criterion_id:\d+}"
GENERATED_CRITERIA = 5


def criterion_row(db: Database, pid: int, criterion_id: int) -> sqlite3.Row:
    """The (non-deleted) criterion row of this project, or 404."""
    return live_row(db, "criteria", "criterion", pid, criterion_id)


def _template_criteria_count(db: Database, pid: int, template: sqlite3.Row) -> int:
    set_id = template_set(db, pid, template, create=False)
    return 0 if set_id is None else len(set_criterion_ids(db, set_id))


async def _generate(request: web.Request, template: sqlite3.Row) -> list[CriterionIn]:
    try:
        from ..evaluation import prompts
        from ..evaluation.providers import ProviderError

        provider = get_providers(request).default()
    except (ImportError, ValueError) as exc:
        raise HTTPError(503, f"the server's LLM provider is not available: {exc}") from None
    try:
        texts = await prompts.generate_criteria(
            provider, loads(template["messages"]), n=GENERATED_CRITERIA
        )
    except ProviderError as exc:
        raise bad_gateway(f"criteria generation failed: {exc}") from None
    items = [CriterionIn(criterion_str=t.strip()) for t in texts if t and t.strip()]
    if not items:
        raise bad_gateway("criteria generation failed: the model returned no criteria")
    return items


def _conflict_existing(template: sqlite3.Row, count: int) -> HTTPError:
    return conflict(
        f"prompt template {template['name']!r} (id {template['id']}) already has {count} "
        "criteria; pass delete_existing=true to replace them, or list them with "
        f"GET .../criteria?prompt_template_id={template['id']}",
        prompt_template_id=template["id"],
    )


@routes.post(BASE)
async def create_criteria(request: web.Request) -> web.Response:
    """Add (``criteria`` list), generate (``criteria: null``) or clear (``[]`` + delete)."""
    body, _ = await read_json(request, CreateCriteriaRequest)
    if (body.prompt_template_id is None) == (body.criterion_set_id is None):
        raise unprocessable(
            "give exactly one of prompt_template_id (the template's criterion set) or "
            "criterion_set_id"
        )
    items = None if body.criteria is None else check_criteria(body.criteria)
    db, pid = get_db(request), project_id(request)
    if body.template_variables_id is not None:
        SyncViews(db, pid).template_variables(body.template_variables_id)
    template = None
    if body.prompt_template_id is not None:
        template = template_row(db, pid, body.prompt_template_id)
    else:
        assert body.criterion_set_id is not None
        set_row(db, pid, body.criterion_set_id)

    if items is None:  # generation mode
        if template is None:
            raise unprocessable(
                "criteria: null asks the server to generate criteria, which needs "
                "prompt_template_id; to add criteria to a set, send a list"
            )
        count = _template_criteria_count(db, pid, template)
        if count and not body.delete_existing:
            raise _conflict_existing(template, count)
        items = await _generate(request, template)  # outside any transaction

    with db.transaction():
        if template is not None:
            template = template_row(db, pid, template["id"])  # may have changed meanwhile
            if body.criteria is None and not body.delete_existing:
                count = _template_criteria_count(db, pid, template)
                if count:
                    raise _conflict_existing(template, count)
            set_id = template_set(db, pid, template, create=bool(items))
        else:
            set_id = set_row(db, pid, body.criterion_set_id or 0)["id"]
        if set_id is None:  # `[]` for a template without a set: nothing to do
            return json_response([], status=201)
        if body.delete_existing:
            clear_set(db, set_id)
        ids = add_criteria(
            db,
            pid,
            set_id,
            items,
            prompt_template_id=None if template is None else template["id"],
            template_variables_id=body.template_variables_id,
        )
    views = SyncViews(db, pid)
    return json_response([views.criterion(i) for i in ids], status=201)


@routes.get(BASE)
async def list_criteria(request: web.Request) -> web.Response:
    """Paginated, in creation order; filters ``prompt_template_id``, ``criterion_set_id``."""
    db, pid = get_db(request), project_id(request)
    where = ["c.project_id = ?", "c.deleted_at IS NULL"]
    params: list[Any] = [pid]
    template_id = query_int(request, "prompt_template_id")
    if template_id is not None:
        template_row(db, pid, template_id)
        where.append(
            "c.id IN (SELECT l.criterion_id FROM criterion_set_criteria l "
            "JOIN criterion_sets s ON s.id = l.criterion_set_id AND s.deleted_at IS NULL "
            "WHERE l.criterion_set_id IN (SELECT criterion_set_id FROM "
            "criterion_set_prompt_templates WHERE prompt_template_id = ?) "
            "OR l.criterion_set_id = (SELECT criterion_set_id FROM prompt_templates "
            "WHERE id = ?))"
        )
        params += [template_id, template_id]
    set_id = query_int(request, "criterion_set_id")
    if set_id is not None:
        set_row(db, pid, set_id)
        where.append(
            "c.id IN (SELECT criterion_id FROM criterion_set_criteria WHERE criterion_set_id = ?)"
        )
        params.append(set_id)
    views = SyncViews(db, pid)
    return paginate(
        db,
        request,
        select="SELECT c.* FROM criteria c",
        where=" AND ".join(where),
        params=params,
        order_by="c.id",
        build=lambda rows: [views.criterion_row(r) for r in rows],
    )


@routes.get(ONE)
async def get_criterion(request: web.Request) -> web.Response:
    criterion_id = path_id(request, "criterion_id", "criterion")
    return json_response(SyncViews(get_db(request), project_id(request)).criterion(criterion_id))


@routes.put(ONE)
async def update_criterion(request: web.Request) -> web.Response:
    """Edit = new version: a new row (new id) replaces the old one in all its sets.

    The old row stays (hidden) so past ratings keep their meaning.
    """
    body, raw = await read_json(request, UpdateCriterionRequest)
    criterion_id = path_id(request, "criterion_id", "criterion")
    db, pid = get_db(request), project_id(request)
    with db.transaction():
        old = criterion_row(db, pid, criterion_id)
        text = old["criterion_str"] if body.criterion_str is None else body.criterion_str.strip()
        if not text:
            raise unprocessable("criterion_str must not be empty")
        label = old["label"] if "label" not in raw else (body.label or None)
        if text == old["criterion_str"] and label == old["label"]:
            new_id = criterion_id
        else:
            new_id = db.insert(
                "INSERT INTO criteria (project_id, criterion_str, label, prompt_template_id, "
                "template_variables_id, previous_version_id, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    pid,
                    text,
                    label,
                    old["prompt_template_id"],
                    old["template_variables_id"],
                    criterion_id,
                    now(),
                ),
            )
            db.execute(
                "UPDATE criterion_set_criteria SET criterion_id = ? WHERE criterion_id = ?",
                (new_id, criterion_id),
            )
            db.execute("UPDATE criteria SET deleted_at = ? WHERE id = ?", (now(), criterion_id))
    return json_response(SyncViews(db, pid).criterion(new_id))


@routes.delete(ONE)
async def delete_criterion(request: web.Request) -> web.Response:
    """Remove a criterion from every set (hidden instead of deleted if it was rated)."""
    criterion_id = path_id(request, "criterion_id", "criterion")
    db, pid = get_db(request), project_id(request)
    with db.transaction():
        criterion_row(db, pid, criterion_id)
        db.execute("DELETE FROM criterion_set_criteria WHERE criterion_id = ?", (criterion_id,))
        drop_criterion(db, criterion_id)
    return no_content()
