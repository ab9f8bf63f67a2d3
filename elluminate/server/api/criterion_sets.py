"""Criterion sets and template links (CONTRACT.md 4.5), plus the criteria check they share.

A template's ``criterion_set_id`` is its default set: set by the first link (or by criteria
generation), moved to another linked set (or cleared) when that link goes away.
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web

from elluminate.schemas import CreateCriterionSetRequest, CriterionIn

from ..store import criteria as store
from ..store.errors import NameTaken
from ..store.views import Views
from .errors import conflict, unprocessable
from .http import (
    check_name,
    get_db,
    json_response,
    named_page_response,
    no_content,
    path_id,
    project_id,
    read_json,
)

log = logging.getLogger("elluminate.server.api.criterion_sets")

routes = web.RouteTableDef()

BASE = r"/api/v0/projects/{project_id:\d+}/criterion_sets"
ONE = BASE + r"/{set_id:\d+}"
LINK = ONE + r"/prompt_templates/{template_id:\d+}"


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


@routes.get(BASE)
async def list_criterion_sets(request: web.Request) -> web.Response:
    """Paginated; ``name`` filters exactly."""
    async with get_db(request).connect() as conn:
        views = Views(conn, project_id(request))

        async def build(rows: list[Any]) -> list[Any]:
            return [await views.criterion_set_row(r) for r in rows]

        return await named_page_response(request, conn, "criterion_sets", build)


@routes.get(ONE)
async def get_criterion_set(request: web.Request) -> web.Response:
    set_id = path_id(request, "set_id", "criterion set")
    async with get_db(request).connect() as conn:
        return json_response(await Views(conn, project_id(request)).criterion_set(set_id))


@routes.post(BASE)
async def create_criterion_set(request: web.Request) -> web.Response:
    """Create a set (409 on a duplicate name) with optional initial criteria."""
    body, _ = await read_json(request, CreateCriterionSetRequest)
    name = check_name(body.name)
    items = check_criteria(body.criteria or [])
    pid = project_id(request)
    try:
        async with get_db(request).begin() as conn:
            set_id = await store.create_set(conn, pid, name, items)
            return json_response(await Views(conn, pid).criterion_set(set_id), status=201)
    except NameTaken as exc:
        raise conflict(
            f"a criterion set named {name!r} already exists (id {exc.existing_id})",
            criterion_set_id=exc.existing_id,
        ) from None


@routes.delete(ONE)
async def delete_criterion_set(request: web.Request) -> web.Response:
    """Delete a set and its criteria; a set used by experiments is hidden instead (intact)."""
    set_id = path_id(request, "set_id", "criterion set")
    async with get_db(request).begin() as conn:
        await store.delete_set(conn, project_id(request), set_id)
    return no_content()


@routes.put(LINK)
async def link_prompt_template(request: web.Request) -> web.Response:
    """Link the set to a template (no body); returns the set."""
    set_id = path_id(request, "set_id", "criterion set")
    template_id = path_id(request, "template_id", "prompt template")
    pid = project_id(request)
    async with get_db(request).begin() as conn:
        await store.lock_link_ends(conn, pid, set_id, template_id)
        await store.link_template(conn, set_id, template_id)
        return json_response(await Views(conn, pid).criterion_set(set_id))


@routes.delete(LINK)
async def unlink_prompt_template(request: web.Request) -> web.Response:
    set_id = path_id(request, "set_id", "criterion set")
    template_id = path_id(request, "template_id", "prompt template")
    async with get_db(request).begin() as conn:
        await store.lock_link_ends(conn, project_id(request), set_id, template_id)
        await store.unlink_template(conn, set_id, template_id)
    return no_content()
