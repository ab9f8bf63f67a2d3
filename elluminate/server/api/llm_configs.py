"""LLM configs (CONTRACT.md 4.6). The ``api_key`` is stored but never returned in full.

``custom_response_parser`` is stored as text and never executed by this server.
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web

from elluminate.schemas import CreateLLMConfigRequest

from ..store import llm_configs as store
from ..store.database import dumps
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

log = logging.getLogger("elluminate.server.api.llm_configs")

routes = web.RouteTableDef()

BASE = r"/api/v0/projects/{project_id:\d+}/llm_configs"
ONE = BASE + r"/{config_id:\d+}"


def _validate(body: CreateLLMConfigRequest) -> None:
    def at_least(name: str, value: float | None, minimum: float) -> None:
        if value is not None and value < minimum:
            raise unprocessable(f"{name} must be >= {minimum}, got {value}")

    def between(name: str, value: float | None, low: float, high: float) -> None:
        if value is not None and not low <= value <= high:
            raise unprocessable(f"{name} must be between {low} and {high}, got {value}")

    if not body.llm_model_name.strip():
        raise unprocessable("llm_model_name must not be empty")
    if body.llm_base_url is not None and not body.llm_base_url.startswith(("http://", "https://")):
        raise unprocessable(
            f"llm_base_url must be an http:// or https:// URL, got {body.llm_base_url!r}"
        )
    at_least("max_connections", body.max_connections, 1)
    at_least("max_retries", body.max_retries, 0)
    at_least("timeout", body.timeout, 1)
    at_least("max_tokens", body.max_tokens, 1)
    at_least("best_of", body.best_of, 1)
    at_least("top_k", body.top_k, 0)
    at_least("top_logprobs", body.top_logprobs, 0)
    at_least("input_price_per_mtok", body.input_price_per_mtok, 0)
    at_least("output_price_per_mtok", body.output_price_per_mtok, 0)
    between("temperature", body.temperature, 0.0, 2.0)
    between("top_p", body.top_p, 0.0, 1.0)


def _column_value(body: CreateLLMConfigRequest, name: str) -> Any:
    value = getattr(body, name)
    if name == "custom_api_config":
        return dumps(value)
    if name == "logprobs":
        return None if value is None else int(value)
    if hasattr(value, "value"):  # enums
        return value.value
    return value


@routes.get(BASE)
async def list_llm_configs(request: web.Request) -> web.Response:
    """Paginated; ``name`` filters exactly."""
    async with get_db(request).connect() as conn:
        views = Views(conn, project_id(request))

        async def build(rows: list[Any]) -> list[Any]:
            return [views.llm_config_row(r) for r in rows]

        return await named_page_response(request, conn, "llm_configs", build)


@routes.get(ONE)
async def get_llm_config(request: web.Request) -> web.Response:
    config_id = path_id(request, "config_id", "LLM config")
    async with get_db(request).connect() as conn:
        return json_response(await Views(conn, project_id(request)).llm_config(config_id))


@routes.post(BASE)
async def create_llm_config(request: web.Request) -> web.Response:
    """Create a config (409 on a duplicate name); every key of the request is stored."""
    body, _ = await read_json(request, CreateLLMConfigRequest)
    body.name = check_name(body.name)
    body.description = body.description or ""
    _validate(body)
    db, pid = get_db(request), project_id(request)
    values = {column: _column_value(body, column) for column in store.COLUMNS}
    try:
        async with db.begin() as conn:
            config_id = await store.create_llm_config(conn, pid, values)
            config = await Views(conn, pid).llm_config(config_id)
    except NameTaken as exc:
        raise conflict(
            f"an LLM config named {body.name!r} already exists (id {exc.existing_id})",
            llm_config_id=exc.existing_id,
        ) from None
    log.info("created LLM config %r (id %d, model %s)", body.name, config_id, body.llm_model_name)
    return json_response(config, status=201)


@routes.delete(ONE)
async def delete_llm_config(request: web.Request) -> web.Response:
    config_id = path_id(request, "config_id", "LLM config")
    async with get_db(request).begin() as conn:
        await store.delete_llm_config(conn, project_id(request), config_id)
    return no_content()
