"""Prompt templates (CONTRACT.md 4.1): versioned per name, placeholders computed here."""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from aiohttp import web

from elluminate._templates import TemplateSyntaxError, check_messages, message_placeholders
from elluminate.schemas import CreatePromptTemplateRequest

from ..store import templates as store
from ..store.database import dumps_canonical
from ..store.views import Views
from .errors import HTTPError, conflict, unprocessable
from .http import (
    PageBody,
    check_name,
    get_config,
    get_db,
    json_response,
    no_content,
    page_param,
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


@routes.get(BASE)
async def list_prompt_templates(request: web.Request) -> web.Response:
    """Paginated; ``name`` lists newest version first; ``version=None`` means latest."""
    pid = project_id(request)
    name = query_str(request, "name")
    version = query_int(request, "version")
    set_id = query_int(request, "criterion_set_id")
    collection_id = query_int(request, "compatible_collection_id")
    async with get_db(request).connect() as conn:
        columns = None
        if collection_id is not None:  # 404 for a foreign/missing collection
            columns = await store.collection_columns(conn, pid, collection_id)
        rows, count = await store.list_templates(
            conn,
            pid,
            name=None if name is None else name.strip(),
            version=version,
            criterion_set_id=set_id,
            compatible_columns=columns,
            page=page_param(request),
            size=get_config(request).page_size,
        )
        views = Views(conn, pid)
        return json_response(PageBody(items=[views.prompt_template_row(r) for r in rows],
                                      count=count))


@routes.get(BASE + r"/{template_id:\d+}")
async def get_prompt_template(request: web.Request) -> web.Response:
    template_id = path_id(request, "template_id", "prompt template")
    async with get_db(request).connect() as conn:
        return json_response(await Views(conn, project_id(request)).prompt_template(template_id))


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
    try:
        async with db.begin() as conn:
            template_id, version = await store.create_template(
                conn,
                pid,
                name,
                messages=body.messages,
                placeholders=placeholders,
                response_format=body.response_format_json_schema,
                tools=tools,
                tool_choice=body.tool_choice,
                content_hash=digest,
                parent_id=body.parent_prompt_template_id,
            )
            template = await Views(conn, pid).prompt_template(template_id)
    except store.SameContent as exc:
        raise conflict(
            f"prompt template {name!r} version {exc.version} (id {exc.template_id}) already "
            "has exactly this content; use it, or change the content to create a new version",
            prompt_template_id=exc.template_id,
        ) from None
    except store.VersionContention:
        raise HTTPError(
            503, f"prompt template {name!r} is getting new versions concurrently; try again"
        ) from None
    log.debug("created prompt template %r v%d (id %d)", name, version, template_id)
    return json_response(template, status=201)


@routes.delete(BASE + r"/{template_id:\d+}")
async def delete_prompt_template(request: web.Request) -> web.Response:
    """Delete (or hide, when experiments still use it) a template version."""
    template_id = path_id(request, "template_id", "prompt template")
    async with get_db(request).begin() as conn:
        await store.delete_template(conn, project_id(request), template_id)
    return no_content()
