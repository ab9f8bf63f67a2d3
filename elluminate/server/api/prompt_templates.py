"""Prompt templates (CONTRACT.md 4.1): versioned per name, placeholders computed here."""

from __future__ import annotations

import hashlib
import logging
import sqlite3
from typing import Any

from aiohttp import web

from elluminate._templates import TemplateSyntaxError, check_messages, message_placeholders
from elluminate.schemas import CreatePromptTemplateRequest

from ..store.database import Database, dumps, dumps_canonical, now
from ..store.views_sync import SyncViews
from .errors import conflict, unprocessable
from .http import (
    check_name,
    get_db,
    json_response,
    live_row,
    no_content,
    paginate,
    path_id,
    project_id,
    query_int,
    query_str,
    read_json,
)

log = logging.getLogger("elluminate.server.api.prompt_templates")

routes = web.RouteTableDef()

BASE = r"/api/v0/projects/{project_id:\d+}/prompt_templates"
MESSAGE_ROLES = frozenset({"developer", "system", "user", "assistant", "tool", "function"})
TOOL_CHOICE_MODES = frozenset({"none", "auto", "required"})


def content_hash(
    messages: list[dict[str, Any]],
    response_format: dict[str, Any] | None,
    tools: list[dict[str, Any]] | None,
    tool_choice: Any,
) -> str:
    """Identity of a template's content (what makes two versions "the same")."""
    canonical = dumps_canonical(
        {
            "messages": messages,
            "response_format": response_format,
            "tools": tools,
            "tool_choice": tool_choice,
        }
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def validate_messages(messages: list[dict[str, Any]]) -> None:
    """422 unless ``messages`` is a non-empty list of chat messages with valid placeholders."""
    if not messages:
        raise unprocessable("messages must be a non-empty list of chat messages")
    for index, message in enumerate(messages):
        role = message.get("role")
        if not isinstance(role, str) or role not in MESSAGE_ROLES:
            raise unprocessable(
                f"messages[{index}].role must be one of {', '.join(sorted(MESSAGE_ROLES))}, "
                f"got {role!r}"
            )
        content = message.get("content")
        if content is not None and not isinstance(content, (str, list)):
            raise unprocessable(
                f"messages[{index}].content must be a string, a list of content parts or null"
            )
        if content is None and role != "assistant":
            raise unprocessable(f"messages[{index}] ({role}) needs a content")
        try:
            check_messages([message])
        except TemplateSyntaxError as exc:
            raise unprocessable(f"messages[{index}].content: {exc}") from None


def validate_tools(tools: list[dict[str, Any]] | None, tool_choice: Any) -> None:
    """422 for malformed tools, or a ``tool_choice`` without tools / naming an unknown tool."""
    names: set[str] = set()
    for index, tool in enumerate(tools or []):
        function = tool.get("function")
        if tool.get("type", "function") != "function" or not isinstance(function, dict):
            raise unprocessable(
                f'tools[{index}] must be {{"type": "function", "function": {{"name": ...}}}}'
            )
        name = function.get("name")
        if not isinstance(name, str) or not name:
            raise unprocessable(f"tools[{index}].function.name must be a non-empty string")
        names.add(name)
    if tool_choice is None:
        return
    if not tools:
        raise unprocessable("tool_choice is set but tools is empty: give tools or drop tool_choice")
    if isinstance(tool_choice, dict):
        function = tool_choice.get("function")
        name = function.get("name") if isinstance(function, dict) else None
        if tool_choice.get("type") != "function" or not isinstance(name, str):
            raise unprocessable(
                'tool_choice must be "none", "auto", "required" or '
                '{"type": "function", "function": {"name": ...}}'
            )
        if name not in names:
            raise unprocessable(f"tool_choice names the function {name!r}, which is not in tools")


def template_row(db: Database, pid: int, template_id: int) -> sqlite3.Row:
    """The (non-deleted) template row of this project, or 404."""
    return live_row(db, "prompt_templates", "prompt template", pid, template_id)


@routes.get(BASE)
async def list_prompt_templates(request: web.Request) -> web.Response:
    """Paginated; ``name`` lists newest version first; ``version=None`` means latest."""
    db, pid = get_db(request), project_id(request)
    where = ["t.project_id = ?", "t.deleted_at IS NULL"]
    params: list[Any] = [pid]
    name = query_str(request, "name")
    order = "t.id"
    if name is not None:
        where.append("t.name = ?")
        params.append(name.strip())
        order = "t.version DESC"
    version = query_int(request, "version")
    if version is not None:
        where.append("t.version = ?")
        params.append(version)
    set_id = query_int(request, "criterion_set_id")
    if set_id is not None:
        where.append(
            "(t.criterion_set_id = ? OR t.id IN (SELECT prompt_template_id FROM "
            "criterion_set_prompt_templates WHERE criterion_set_id = ?))"
        )
        params += [set_id, set_id]
    collection_id = query_int(request, "compatible_collection_id")
    if collection_id is not None:
        SyncViews(db, pid).collection(collection_id)  # 404 for a foreign/missing collection
        where.append(
            "NOT EXISTS (SELECT 1 FROM json_each(t.placeholders) p WHERE p.value NOT IN "
            "(SELECT name FROM collection_columns WHERE collection_id = ?))"
        )
        params.append(collection_id)
    views = SyncViews(db, pid)
    return paginate(
        db,
        request,
        select="SELECT t.* FROM prompt_templates t",
        where=" AND ".join(where),
        params=params,
        order_by=order,
        build=lambda rows: [views.prompt_template_row(r) for r in rows],
    )


@routes.get(BASE + r"/{template_id:\d+}")
async def get_prompt_template(request: web.Request) -> web.Response:
    template_id = path_id(request, "template_id", "prompt template")
    views = SyncViews(get_db(request), project_id(request))
    return json_response(views.prompt_template(template_id))


@routes.post(BASE)
async def create_prompt_template(request: web.Request) -> web.Response:
    """New name: version 1; same content as a version: 409; else the next version."""
    body, _ = await read_json(request, CreatePromptTemplateRequest)
    name = check_name(body.name)
    validate_messages(body.messages)
    validate_tools(body.tools, body.tool_choice)
    tools = body.tools or None
    placeholders = message_placeholders(body.messages)
    digest = content_hash(body.messages, body.response_format_json_schema, tools, body.tool_choice)
    db, pid = get_db(request), project_id(request)
    with db.transaction():
        if body.parent_prompt_template_id is not None:
            template_row(db, pid, body.parent_prompt_template_id)
        same = db.fetchone(
            "SELECT id, version FROM prompt_templates WHERE project_id = ? AND name = ? "
            "AND content_hash = ? AND deleted_at IS NULL ORDER BY version DESC LIMIT 1",
            (pid, name, digest),
        )
        if same is not None:
            raise conflict(
                f"prompt template {name!r} version {same['version']} (id {same['id']}) already "
                "has exactly this content; use it, or change the content to create a new version",
                prompt_template_id=same["id"],
            )
        latest = db.fetchval(
            "SELECT MAX(version) FROM prompt_templates WHERE project_id = ? AND name = ?",
            (pid, name),
        )
        ts = now()
        template_id = db.insert(
            "INSERT INTO prompt_templates (project_id, name, version, messages, placeholders, "
            "response_format_json_schema, tools, tool_choice, content_hash, "
            "parent_prompt_template_id, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                pid,
                name,
                (latest or 0) + 1,
                dumps(body.messages),
                dumps(placeholders),
                dumps(body.response_format_json_schema),
                dumps(tools),
                dumps(body.tool_choice),
                digest,
                body.parent_prompt_template_id,
                ts,
                ts,
            ),
        )
    log.debug("created prompt template %r v%d (id %d)", name, (latest or 0) + 1, template_id)
    return json_response(SyncViews(db, pid).prompt_template(template_id), status=201)


@routes.delete(BASE + r"/{template_id:\d+}")
async def delete_prompt_template(request: web.Request) -> web.Response:
    """Delete (or hide, when experiments still use it) a template version."""
    template_id = path_id(request, "template_id", "prompt template")
    db, pid = get_db(request), project_id(request)
    with db.transaction():
        template_row(db, pid, template_id)
        db.execute(
            "DELETE FROM criterion_set_prompt_templates WHERE prompt_template_id = ?",
            (template_id,),
        )
        db.delete_or_hide("prompt_templates", template_id)
    return no_content()
