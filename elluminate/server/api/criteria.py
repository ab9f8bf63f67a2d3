"""Criteria (CONTRACT.md 4.4): add, generate, clear, list, edit (= new version), delete."""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web

from elluminate.schemas import CreateCriteriaRequest, CriterionIn, UpdateCriterionRequest

from ..store import criteria as store
from ..store import templates
from ..store.database import loads
from ..store.errors import NameTaken
from ..store.views import Views
from .criterion_sets import check_criteria
from .errors import HTTPError, bad_gateway, conflict, unprocessable
from .http import (
    get_db,
    get_providers,
    json_response,
    no_content,
    page_response,
    path_id,
    project_id,
    query_int,
    read_json,
)
from .sse import get_engine

log = logging.getLogger("elluminate.server.api.criteria")

routes = web.RouteTableDef()

BASE = r"/api/v0/projects/{project_id:\d+}/criteria"
ONE = BASE + r"/{criterion_id:\d+}"
GENERATED_CRITERIA = 5


async def _generate(request: web.Request, template: Any) -> list[CriterionIn]:
    try:
        from ..evaluation import prompts
        from ..evaluation.providers import ProviderError

        provider = get_providers(request).default()
    except (ImportError, ValueError) as exc:
        raise HTTPError(503, f"the server's LLM provider is not available: {exc}") from None
    try:
        texts = await get_engine(request).llm(  # under the LLM call limit, as tasks are
            lambda: prompts.generate_criteria(
                provider, loads(template["messages"]), n=GENERATED_CRITERIA
            )
        )
    except ProviderError as exc:
        raise bad_gateway(f"criteria generation failed: {exc}") from None
    items = [CriterionIn(criterion_str=t.strip()) for t in texts if t and t.strip()]
    if not items:
        raise bad_gateway("criteria generation failed: the model returned no criteria")
    return items


def _conflict_existing(template: Any, count: int) -> HTTPError:
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
    template = None
    async with db.connect() as conn:
        if body.template_variables_id is not None:
            await Views(conn, pid).template_variables(body.template_variables_id)
        if body.prompt_template_id is not None:
            template = await templates.live_template(conn, pid, body.prompt_template_id)
        else:
            assert body.criterion_set_id is not None
            await store.live_set(conn, pid, body.criterion_set_id)
        if items is None and template is not None:
            count = await store.template_criteria_count(conn, template)
            if count and not body.delete_existing:
                raise _conflict_existing(template, count)

    if items is None:  # generation mode
        if template is None:
            raise unprocessable(
                "criteria: null asks the server to generate criteria, which needs "
                "prompt_template_id; to add criteria to a set, send a list"
            )
        items = await _generate(request, template)  # outside any transaction

    try:
        async with db.begin() as conn:
            if body.template_variables_id is not None:  # may be gone after the await
                await store.hold_entry(conn, pid, body.template_variables_id)
            if template is not None:
                # may have changed meanwhile; locked: one default set per template
                template = await templates.lock_template(conn, pid, template["id"])
                if body.criteria is None and not body.delete_existing:
                    count = await store.template_criteria_count(conn, template, lock=True)
                    if count:
                        raise _conflict_existing(template, count)
                set_id = await store.template_set(conn, pid, template, create=bool(items))
            else:
                set_id = (await store.lock_set(conn, pid, body.criterion_set_id or 0))["id"]
            if set_id is None:  # `[]` for a template without a set: nothing to do
                return json_response([], status=201)
            if body.delete_existing:
                await store.clear_set(conn, set_id)
            ids = await store.add_criteria(
                conn,
                pid,
                set_id,
                items,
                prompt_template_id=None if template is None else template["id"],
                template_variables_id=body.template_variables_id,
            )
            views = Views(conn, pid)
            return json_response([await views.criterion(i) for i in ids], status=201)
    except NameTaken as exc:  # the template's name and its numbered variants are all taken
        raise conflict(
            f"no free name for a criterion set of prompt template {body.prompt_template_id}: "
            f"a set with its name (id {exc.existing_id}) and every numbered variant exist; "
            "rename or delete some of them",
            criterion_set_id=exc.existing_id,
        ) from None


@routes.get(BASE)
async def list_criteria(request: web.Request) -> web.Response:
    """Paginated, in creation order; filters ``prompt_template_id``, ``criterion_set_id``."""
    pid = project_id(request)
    params: dict[str, Any] = {"pid": pid}
    async with get_db(request).connect() as conn:
        template_id = query_int(request, "prompt_template_id")
        if template_id is not None:
            await templates.live_template(conn, pid, template_id)
            params["template_id"] = template_id
        set_id = query_int(request, "criterion_set_id")
        if set_id is not None:
            await store.live_set(conn, pid, set_id)
            params["set_id"] = set_id
        views = Views(conn, pid)

        async def build(rows: list[Any]) -> list[Any]:
            return [await views.criterion_row(r) for r in rows]

        stmt = store.criteria_listing(template_id is not None, set_id is not None)
        return await page_response(request, conn, stmt, params, build)


@routes.get(ONE)
async def get_criterion(request: web.Request) -> web.Response:
    criterion_id = path_id(request, "criterion_id", "criterion")
    async with get_db(request).connect() as conn:
        return json_response(await Views(conn, project_id(request)).criterion(criterion_id))


@routes.put(ONE)
async def update_criterion(request: web.Request) -> web.Response:
    """Edit = new version: a new row (new id) replaces the old one in all its sets.

    The old row stays (hidden) so past ratings keep their meaning.
    """
    body, raw = await read_json(request, UpdateCriterionRequest)
    criterion_id = path_id(request, "criterion_id", "criterion")
    pid = project_id(request)
    async with get_db(request).begin() as conn:
        old = await store.lock_criterion(conn, pid, criterion_id)
        text = old["criterion_str"] if body.criterion_str is None else body.criterion_str.strip()
        if not text:
            raise unprocessable("criterion_str must not be empty")
        label = old["label"] if "label" not in raw else (body.label or None)
        if text == old["criterion_str"] and label == old["label"]:
            new_id = criterion_id
        else:
            new_id = await store.replace_criterion(conn, pid, old, text, label)
        return json_response(await Views(conn, pid).criterion(new_id))


@routes.delete(ONE)
async def delete_criterion(request: web.Request) -> web.Response:
    """Remove a criterion from every set (hidden instead of deleted if it was rated)."""
    criterion_id = path_id(request, "criterion_id", "criterion")
    async with get_db(request).begin() as conn:
        await store.delete_criterion(conn, project_id(request), criterion_id)
    return no_content()
