"""Prompt responses (CONTRACT.md 4.9): list, get, add, generate, batches, delete, annotate.

``GET @/responses`` is the hot path; pages are built by
:meth:`~elluminate.server.store.views_experiments.ExperimentViews.responses` with a constant number
of queries. Batches are ``responses`` tasks (:mod:`elluminate.server.engine.handlers`); their POST
answers the task id as a bare JSON string, or ``null`` for an empty batch.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import msgspec
from aiohttp import web

from elluminate.schemas import (
    BatchCreatePromptResponseRequest,
    CreatePromptResponseRequest,
    UpdateAnnotationRequest,
)

from ..engine.batches import generate_and_store, row_prompt, store_given_response
from ..evaluation.generation import Unavailable
from ..store import experiments as experiment_store
from ..store import responses as store
from ..store.connection import Connection
from ..store.pages import fetch_page
from ..store.responses import LIST_INT_FILTERS, LIST_RANGES, DuplicateResponse
from ..store.views_experiments import ExperimentViews
from .errors import HTTPError, bad_request, conflict, not_found, unprocessable
from .http import (
    MAX_INT,
    get_config,
    get_db,
    get_providers,
    json_response,
    no_content,
    page_param,
    path_id,
    project_id,
    query_int,
    query_ints,
    query_str,
    read_json,
)
from .sse import get_engine, status_payload

log = logging.getLogger("elluminate.server.api.responses")

routes = web.RouteTableDef()

BASE = r"/api/v0/projects/{project_id:\d+}/responses"
ONE = BASE + r"/{response_id:\d+}"
BATCHES = BASE + "/batches"
RESPONSE_ROLES = frozenset({"assistant", "tool", "user", "system"})
_page_encoder = msgspec.json.Encoder()


# ---- validation -------------------------------------------------------------------------


def _string_messages(data: dict[str, Any]) -> None:
    """A plain string response becomes one assistant message (CONTRACT.md 4.9)."""
    if isinstance(data.get("messages"), str):
        data["messages"] = [{"role": "assistant", "content": data["messages"]}]
    if data.get("messages") is None:
        data["messages"] = []


def check_messages(messages: list[dict[str, Any]], where: str = "messages") -> None:
    """422 unless the response messages have allowed roles and an assistant/tool message."""
    for index, message in enumerate(messages):
        role = message.get("role")
        if role not in RESPONSE_ROLES:
            raise unprocessable(
                f"{where}[{index}].role must be one of {', '.join(sorted(RESPONSE_ROLES))}, "
                f"got {role!r}"
            )
    if messages and not any(m.get("role") in ("assistant", "tool") for m in messages):
        raise unprocessable(f"{where} must contain an assistant or tool message")


async def check_item(
    conn: Connection,
    pid: int,
    item: CreatePromptResponseRequest,
    where: str,
    *,
    generating: bool,
    cache: dict[Any, Any] | None = None,
) -> dict[str, Any]:
    """Validate one create item against the database; returns it as a plain dict."""
    cache = {} if cache is None else cache
    exp = cache.get(item.experiment_id)
    if exp is None:
        exp = await store.checked_experiment(conn, pid, item.experiment_id)
        if exp is None:
            raise HTTPError(
                404, f"{where}: experiment {item.experiment_id} not found in this project"
            )
        cache[item.experiment_id] = exp
    if exp["evaluation_mode"] == "AGENTIC":
        raise bad_request(
            f"{where}: experiment {exp['name']!r} is AGENTIC: its responses are agent runs, "
            "uploaded with POST .../experiments/{id}/agent-results"
        )
    if exp["evaluation_mode"] == "MULTI_TURN":
        raise bad_request(
            f"{where}: experiment {exp['name']!r} is MULTI_TURN: its responses are the "
            "conversations its run holds (POST .../experiments/{id}/run)"
        )
    if not await store.row_in_collection(conn, item.template_variables_id, exp["collection_id"]):
        raise HTTPError(
            404,
            f"{where}: collection entry {item.template_variables_id} not found in collection "
            f"{exp['collection']!r} of experiment {exp['name']!r}",
        )
    if item.llm_config_id is not None and not await store.llm_config_is_live(
        conn, pid, item.llm_config_id
    ):
        raise HTTPError(404, f"{where}: LLM config {item.llm_config_id} not found in this project")
    if item.epoch < 1:
        raise unprocessable(f"{where}: epoch must be at least 1, got {item.epoch}")
    check_messages(item.messages, f"{where}.messages")
    if generating and not item.messages:
        template = None
        if exp["prompt_template_id"] is not None:
            template = await store.template_row(conn, exp["prompt_template_id"])
        try:
            await row_prompt(conn, template, item.template_variables_id, strict=True)
        except ValueError as exc:
            raise unprocessable(f"{where}: cannot render the prompt: {exc}") from None
    data: dict[str, Any] = msgspec.to_builtins(item)
    if item.metadata is not None:
        data["metadata"] = msgspec.to_builtins(item.metadata)
    slot = (item.experiment_id, item.template_variables_id, item.epoch)
    what = f"collection entry {item.template_variables_id} epoch {item.epoch}"
    if slot in cache.setdefault("slots", set()):
        raise conflict(
            f"{where}: this request holds a second response for {what} of experiment "
            f"{exp['name']!r} (one response per entry and epoch); give each response its own "
            "entry or epoch"
        )
    if await store.slot_taken(conn, *slot) is not None:
        raise conflict(
            f"{where}: experiment {exp['name']!r} already has a response for {what} (one "
            "response per entry and epoch); delete that response first, or use another epoch"
        )
    cache["slots"].add(slot)
    return data


# ---- list / get -------------------------------------------------------------------------


def _query_float(request: web.Request, name: str) -> float | None:
    raw = request.query.get(name)
    if raw is None or raw.strip().lower() in ("", "none", "null"):
        return None
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise unprocessable(f"query parameter {name!r} must be a number, got {raw!r}")
    return value


@routes.get(BASE)
async def list_responses(request: web.Request) -> web.Response:
    """Paginated responses of the project, ordered by id (filters of CONTRACT.md 4.9).

    The hot path of ``get_experiment`` (``?experiment_id=``, page after page): the page's ids
    are picked by an index-only query (no join, no row lookups for the rows skipped by
    ``OFFSET``), then only those rows are joined with their prompts.
    """
    db, pid = get_db(request), project_id(request)
    params: dict[str, Any] = {"pid": pid}
    filters: list[str] = []
    experiment_id = query_int(request, "experiment_id", minimum=None)
    for key in LIST_INT_FILTERS:
        value = query_int(request, key, minimum=None)
        if value is not None:
            filters.append(key)
            params[key] = value
    collection_id = query_int(request, "collection_id")
    if collection_id is not None:
        filters.append("collection_id")
        params["collection_id"] = collection_id
    model = query_str(request, "llm_model_name")
    if model is not None and model.strip() and model.strip().lower() not in ("none", "null"):
        filters.append("llm_model_name")
        params["llm_model_name"] = model.strip()
    ids = query_ints(request, "response_ids")
    if ids:
        filters.append("response_ids")
        params["response_ids"] = ids
    for key, column, op in LIST_RANGES:
        number = _query_float(request, key)
        if number is not None:
            filters.append(key)
            if column == "duration_seconds":
                params[key] = number
            else:  # token counts are integers: the same bound, rounded inward
                bound = math.ceil(number) if op == ">=" else math.floor(number)
                if abs(bound) > MAX_INT:  # beyond what an integer column holds
                    raise unprocessable(
                        f"query parameter {key!r} must be between {-MAX_INT} and {MAX_INT}, "
                        f"got {request.query[key]!r}"
                    )
                params[key] = bound
    page = page_param(request)
    size = get_config(request).page_size
    async with db.connect() as conn:
        if experiment_id is not None:
            # A response belongs to its experiment's project, so once the experiment is known
            # to be this project's, ``experiment_id = ?`` alone selects it (the index).
            if await experiment_store.owner_of(conn, experiment_id) != pid:
                return _page_response([], 0)  # another project's experiment, or none
            params["experiment_id"] = experiment_id
        stmt = store.response_ids_statement(experiment_id is not None, tuple(filters))
        rows, count = await fetch_page(conn, stmt, params, page=page, size=size)
        views = ExperimentViews(conn, pid, store=db)
        items = await views.responses_by_ids([r[0] for r in rows])
    return _page_response(items, count)


def _page_response(items: list[Any], count: int) -> web.Response:
    body = _page_encoder.encode({"items": items, "count": count})
    return web.Response(body=body, content_type="application/json")


async def _response_view(request: web.Request, response_id: int) -> Any:
    db, pid = get_db(request), project_id(request)
    async with db.connect() as conn:
        return await ExperimentViews(conn, pid, store=db).response(response_id)


@routes.get(ONE)
async def get_response(request: web.Request) -> web.Response:
    response_id = path_id(request, "response_id", "response")
    return json_response(await _response_view(request, response_id))


# ---- add / generate ------------------------------------------------------------------------


@routes.post(BASE)
async def add_response(request: web.Request) -> web.Response:
    """Store an externally produced response (``messages`` must not be empty)."""
    body, _ = await read_json(request, CreatePromptResponseRequest, prepare=_string_messages)
    db, pid = get_db(request), project_id(request)
    if not body.messages:
        raise unprocessable(
            "messages must not be empty: give the response's messages, or use "
            "POST .../responses/generate to generate one"
        )
    async with db.begin() as conn:
        item = await check_item(conn, pid, body, "response", generating=False)
        response_id = await store_given_response(conn, pid, item)
    return json_response(await _response_view(request, response_id), status=201)


@routes.post(BASE + "/generate")
async def generate_response(request: web.Request) -> web.Response:
    """Generate one response synchronously (``llm_config_id`` null: the server default).

    A provider failure is stored on the response (``error``), as in experiment runs.
    """
    body, _ = await read_json(request, CreatePromptResponseRequest, prepare=_string_messages)
    db, pid = get_db(request), project_id(request)
    async with db.connect() as conn:
        item = await check_item(conn, pid, body, "response", generating=True)
    if body.messages:
        async with db.begin() as conn:
            response_id = await store_given_response(conn, pid, item)
    else:
        try:
            response_id, _ = await generate_and_store(
                get_engine(request), db, get_providers(request), pid, item
            )
        except Unavailable as exc:
            raise HTTPError(503, str(exc)) from None
        except DuplicateResponse as exc:  # stored by another request while this one generated
            raise conflict(str(exc)) from None
        except LookupError as exc:
            raise HTTPError(404, str(exc)) from None
    return json_response(await _response_view(request, response_id), status=201)


@routes.post(BATCHES)
async def create_batch(request: web.Request) -> web.Response:
    """Start a response batch task: a bare JSON string task id, or ``null`` when empty."""

    def prepare(data: dict[str, Any]) -> None:
        items = data.get("prompt_response_ins")
        if isinstance(items, list):
            for item in items:
                if isinstance(item, dict):
                    _string_messages(item)

    body, _ = await read_json(request, BatchCreatePromptResponseRequest, prepare=prepare)
    if not body.prompt_response_ins:
        return json_response(None)
    db, pid, engine = get_db(request), project_id(request), get_engine(request)
    cache: dict[Any, Any] = {}
    async with db.begin() as conn:
        items = [
            await check_item(
                conn,
                pid,
                item,
                f"prompt_response_ins[{index}]",
                generating=not item.messages,
                cache=cache,
            )
            for index, item in enumerate(body.prompt_response_ins)
        ]
        experiments = {item["experiment_id"] for item in items}
        state = await engine.submit(
            conn,
            "responses",
            pid,
            experiments.pop() if len(experiments) == 1 else None,
            {"items": items},
        )
    log.info("response batch %s: %d items (%s)", state.id, len(items), state.status)
    return json_response(state.id)


@routes.get(BATCHES + r"/{task_id}")
async def batch_status(request: web.Request) -> web.Response:
    return json_response(await status_payload(request, request.match_info["task_id"], "responses"))


# ---- delete / annotate -----------------------------------------------------------------------


@routes.delete(ONE)
async def delete_response(request: web.Request) -> web.Response:
    """Delete a response with its prompt and ratings."""
    response_id = path_id(request, "response_id", "response")
    db, pid = get_db(request), project_id(request)
    async with db.begin() as conn:
        if not await store.delete_response(conn, pid, response_id):
            raise not_found("response", response_id)
    return no_content()


@routes.patch(ONE)
async def update_annotation(request: web.Request) -> web.Response:
    """Set (or clear with ``""``) a response's annotation."""
    response_id = path_id(request, "response_id", "response")
    body, _ = await read_json(request, UpdateAnnotationRequest)
    db, pid = get_db(request), project_id(request)
    async with db.begin() as conn:
        if not await store.set_annotation(conn, pid, response_id, body.annotation):
            raise not_found("response", response_id)
    return json_response(await _response_view(request, response_id))
