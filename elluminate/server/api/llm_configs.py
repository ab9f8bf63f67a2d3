"""LLM configs (CONTRACT.md 4.6). The ``api_key`` is stored but never returned in full.

``custom_response_parser`` is stored as text and never executed by this server.
"""

from __future__ import annotations

import logging
import sqlite3
from typing import Any

from aiohttp import web

from elluminate.schemas import CreateLLMConfigRequest

from ..store.database import Database, dumps, now
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

log = logging.getLogger("elluminate.server.api.llm_configs")

routes = web.RouteTableDef()

BASE = r"/api/v0/projects/{project_id:\d+}/llm_configs"
ONE = BASE + r"/{config_id:\d+}"

_COLUMNS = (
    "name",
    "description",
    "llm_model_name",
    "llm_base_url",
    "api_key",
    "api_version",
    "max_connections",
    "inference_type",
    "max_retries",
    "timeout",
    "system_message",
    "max_tokens",
    "top_p",
    "temperature",
    "best_of",
    "top_k",
    "logprobs",
    "top_logprobs",
    "reasoning_effort",
    "verbosity",
    "custom_api_config",
    "custom_response_parser",
    "input_price_per_mtok",
    "output_price_per_mtok",
)


def llm_config_row(db: Database, pid: int, config_id: int) -> sqlite3.Row:
    """The (non-deleted) LLM config row of this project (with the real key), or 404."""
    return live_row(db, "llm_configs", "LLM config", pid, config_id)


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
    views = SyncViews(get_db(request), project_id(request))
    return list_named(request, "llm_configs", lambda rows: [views.llm_config_row(r) for r in rows])


@routes.get(ONE)
async def get_llm_config(request: web.Request) -> web.Response:
    config_id = path_id(request, "config_id", "LLM config")
    return json_response(SyncViews(get_db(request), project_id(request)).llm_config(config_id))


@routes.post(BASE)
async def create_llm_config(request: web.Request) -> web.Response:
    """Create a config (409 on a duplicate name); every key of the request is stored."""
    body, _ = await read_json(request, CreateLLMConfigRequest)
    body.name = check_name(body.name)
    body.description = body.description or ""
    _validate(body)
    db, pid = get_db(request), project_id(request)
    with db.transaction():
        existing = db.fetchval(
            "SELECT id FROM llm_configs WHERE project_id = ? AND name = ? AND deleted_at IS NULL",
            (pid, body.name),
        )
        if existing is not None:
            raise conflict(
                f"an LLM config named {body.name!r} already exists (id {existing})",
                llm_config_id=existing,
            )
        ts = now()
        columns = ", ".join(_COLUMNS)
        marks = ", ".join("?" for _ in range(len(_COLUMNS) + 3))
        config_id = db.insert(
            f"INSERT INTO llm_configs (project_id, {columns}, created_at, updated_at) "
            f"VALUES ({marks})",
            (pid, *(_column_value(body, c) for c in _COLUMNS), ts, ts),
        )
    log.info("created LLM config %r (id %d, model %s)", body.name, config_id, body.llm_model_name)
    return json_response(SyncViews(db, pid).llm_config(config_id), status=201)


@routes.delete(ONE)
async def delete_llm_config(request: web.Request) -> web.Response:
    config_id = path_id(request, "config_id", "LLM config")
    db, pid = get_db(request), project_id(request)
    with db.transaction():
        llm_config_row(db, pid, config_id)
        db.delete_or_hide("llm_configs", config_id)
    return no_content()
