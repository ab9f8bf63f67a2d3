"""Experiments (CONTRACT.md 4.7, 4.8): create, list, get, delete, run, retry-failed, cancel,
generation status and its SSE stream.

A run is an ``experiment`` task of the task engine (see :mod:`elluminate.server.engine`):
``generation_task_id`` is set while it is live and cleared when it ends. ``/cancel`` (not in
the official API) revokes it. ``rated_responses`` is always ``[]`` in experiment answers:
clients load responses from ``GET @/responses?experiment_id=`` (the official SDK always does).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
from typing import Any

import msgspec
from aiohttp import web

from elluminate.schemas import (
    CreateExperimentRequest,
    EvaluationMode,
    RetryFailedRequest,
    RunExperimentRequest,
)

from ..engine.engine import TaskEngine
from ..engine.multiturn import plan_conversations
from ..engine.planning import load_setup, plan_work
from ..engine.task_state import TaskState
from ..evaluation.judging import resolve_rating_version
from ..store import experiments as store
from ..store.common import like_escaped, live_row
from ..store.connection import Connection, UniqueViolation
from ..store.database import dumps, loads
from ..store.tasks import lines_after
from ..store.views_experiments import ExperimentViews
from . import experiment_modes as modes
from .errors import conflict, unprocessable
from .http import (
    check_name,
    convert,
    get_db,
    json_response,
    no_content,
    page_response,
    path_id,
    project_id,
    query_int,
    query_str,
    read_json,
    read_raw_json,
)
from .sse import find_task, get_engine, stream_task

log = logging.getLogger("elluminate.server.api.experiments")

routes = web.RouteTableDef()

BASE = r"/api/v0/projects/{project_id:\d+}/experiments"
ONE = BASE + r"/{experiment_id:\d+}"
GENERATION = ONE + r"/generation/{task_id}"
MAX_EPOCHS = 1000


# ---- helpers ----------------------------------------------------------------------------


def check_epochs(n_epochs: int) -> int:
    if n_epochs < 1:
        raise unprocessable(f"n_epochs must be at least 1, got {n_epochs}")
    if n_epochs > MAX_EPOCHS:
        raise unprocessable(f"n_epochs must be at most {MAX_EPOCHS}, got {n_epochs}")
    return n_epochs


async def check_runnable(conn: Connection, exp: Any) -> None:
    """422 unless the experiment has input rows and criteria to rate against."""
    if not await store.live_row_count(conn, exp["collection_id"]):
        name = await store.name_of(conn, "collections", exp["collection_id"])
        raise unprocessable(
            f"collection {name!r} (id {exp['collection_id']}) has no entries: add input rows "
            "before running the experiment"
        )
    if not await store.live_criteria_count(conn, exp["criterion_set_id"]):
        name = await store.name_of(conn, "criterion_sets", exp["criterion_set_id"])
        raise unprocessable(
            f"criterion set {name!r} (id {exp['criterion_set_id']}) has no criteria: add criteria "
            "(POST .../criteria with criterion_set_id) before running the experiment"
        )


def check_not_deleting(exp: Any) -> None:
    """409 while a delete of the experiment is stopping its run."""
    if exp["deleting"]:
        raise conflict(f"experiment {exp['name']!r} is being deleted")


def running_task(exp: Any) -> str | None:
    """The experiment's live task (PENDING or STARTED, on whichever replica), if any."""
    task_id: str | None = exp["generation_task_id"]
    return task_id


async def start_task(
    conn: Connection, engine: TaskEngine, pid: int, exp: Any, payload: dict[str, Any]
) -> str:
    """Submit the experiment's task (in the caller's transaction); returns its id.

    A task rejected at once (queue full) is not stored as the experiment's running task, but
    its id is returned so the caller can report it.
    """
    state = await engine.submit(conn, "experiment", pid, exp["id"], payload)
    if state.terminal:
        logs, _ = await lines_after(conn, state.id, 0)
        await store.rejected_run(conn, exp["id"], logs)
    else:
        await store.start_run(conn, exp["id"], state.id)
    return state.id


async def _view(request: web.Request, experiment_id: int, task_id: str | None = None) -> Any:
    db, pid = get_db(request), project_id(request)
    async with db.connect() as conn:
        views = ExperimentViews(conn, pid, store=db)
        return await views.experiment(experiment_id, generation_task_id=task_id)


# ---- create / list / get / delete ---------------------------------------------------------


async def _resolve_criterion_set(
    conn: Connection, pid: int, body: CreateExperimentRequest, template: Any
) -> int:
    if body.criterion_set_id is not None:
        await live_row(conn, "criterion_sets", "criterion set", pid, body.criterion_set_id)
        return body.criterion_set_id
    if template is not None and template["criterion_set_id"] is not None:
        if await store.criterion_set_is_live(conn, template["criterion_set_id"]):
            return int(template["criterion_set_id"])
    where = f"prompt template {template['name']!r} (id {template['id']})" if template else "none"
    raise unprocessable(
        "no criterion set for this experiment: pass criterion_set_id, or link a criterion set "
        f"to the prompt template (template: {where})"
    )


async def _check_columns(conn: Connection, collection: Any, template: Any) -> dict[str, str]:
    columns = await store.column_types(conn, collection["id"])
    if template is None:
        if not any(t in ("raw_input", "conversation") for t in columns.values()):
            raise unprocessable(
                "prompt_template_id is required unless the collection has a raw_input or "
                f"conversation column (collection {collection['name']!r} has none)"
            )
        return columns
    placeholders: list[str] = loads(template["placeholders"]) or []
    missing = [p for p in placeholders if p not in columns]
    if missing:
        raise unprocessable(
            f"collection {collection['name']!r} (id {collection['id']}) has no column for the "
            f"placeholder(s) {', '.join(missing)} of prompt template {template['name']!r}: add "
            "these columns to the collection or choose a matching collection",
            missing_placeholders=missing,
        )
    return columns


def _name_taken(name: str, existing: int) -> Exception:
    return conflict(
        f"an experiment named {name!r} already exists (id {existing}); choose another "
        "name or get the existing one",
        experiment_id=existing,
    )


@routes.post(BASE)
async def create_experiment(request: web.Request) -> web.Response:
    """Create an experiment; ``generate=true`` starts its run at once."""
    body, _ = await read_json(request, CreateExperimentRequest)
    name = check_name(body.name)
    check_epochs(body.n_epochs)
    modes.check_request(body)
    db, pid, engine = get_db(request), project_id(request), get_engine(request)
    try:
        async with db.begin() as conn:
            existing = await store.id_by_name(conn, pid, name)
            if existing is not None:
                raise _name_taken(name, existing)
            template = None
            if body.prompt_template_id is not None:
                template = await live_row(
                    conn, "prompt_templates", "prompt template", pid, body.prompt_template_id
                )
            source = await modes.resolve_source(conn, pid, body)
            collection = source.collection
            if body.llm_config_id is not None:
                await live_row(conn, "llm_configs", "LLM config", pid, body.llm_config_id)
            set_id = await _resolve_criterion_set(conn, pid, body, template)
            if template is None and body.evaluation_mode is not EvaluationMode.STANDARD:
                columns = await store.column_types(conn, collection["id"])  # no template needed
            else:
                columns = await _check_columns(conn, collection, template)
            response_column_id = body.response_column_id
            if response_column_id is not None:
                column = await store.column(conn, response_column_id, collection["id"])
                if column is None or column["column_type"] != "text":
                    raise unprocessable(
                        f"response_column_id {response_column_id} is not a text column of "
                        f"collection {collection['name']!r} (columns: "
                        f"{', '.join(sorted(columns)) or 'none'})"
                    )
            params = (
                None
                if body.generation_params is None
                else msgspec.to_builtins(body.generation_params)
            )
            experiment_id = await store.add(
                conn,
                pid,
                name=name,
                description=body.description or "",
                prompt_template_id=body.prompt_template_id,
                collection_id=collection["id"],
                criterion_set_id=set_id,
                llm_config_id=body.llm_config_id,
                rating_version=resolve_rating_version(body.rating_version),
                rating_mode=body.rating_mode.value,
                n_epochs=1 if response_column_id is not None else body.n_epochs,
                generation_params=dumps(params),
                response_column_id=response_column_id,
                evaluation_mode=body.evaluation_mode.value,
                agent_config=dumps(body.agent_config),
                evaluation_agent_config=dumps(body.evaluation_agent_config),
            )
            await modes.after_create(conn, experiment_id, body, source, set_id)
            task_id = None
            if body.generate:
                exp = await store.get(conn, pid, experiment_id)
                await check_runnable(conn, exp)
                await modes.check_runnable(conn, exp)
                task_id = await start_task(
                    conn, engine, pid, exp, {"rating_mode": body.rating_mode.value}
                )
    except UniqueViolation:  # created by a concurrent request (PostgreSQL)
        async with db.connect() as conn:
            existing = await store.id_by_name(conn, pid, name)
        raise _name_taken(name, existing or 0) from None
    log.info(
        "experiment %r (id %d) created%s", name, experiment_id, " and started" if task_id else ""
    )
    return json_response(await _view(request, experiment_id, task_id), status=201)


def _date_bound(value: str, *, end: bool) -> datetime:
    """A ``date_from``/``date_to`` value as a moment: a date alone covers its whole day."""
    text = value.strip()
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise unprocessable(
            f"date filter {value!r} is not a date (YYYY-MM-DD) or an ISO-8601 timestamp"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    if end and len(text) <= 10:  # the whole day
        moment = moment + timedelta(days=1) - timedelta(microseconds=1)
    return moment


@routes.get(BASE)
async def list_experiments(request: web.Request) -> web.Response:
    """Paginated (creation order); ``experiment_name`` is an exact-name lookup."""
    db, pid = get_db(request), project_id(request)
    params: dict[str, Any] = {"pid": pid}
    ids: list[str] = []
    for key in store.LIST_FILTERS:
        ident = query_int(request, key)
        if ident is not None:
            ids.append(key)
            params[key] = ident
    name = query_str(request, "experiment_name")
    if name is not None and name.strip():
        params["name"] = name.strip()
    search = query_str(request, "experiment_name_search")
    if search is not None and search.strip():
        params["search"] = like_escaped(search.strip())
    template_name = query_str(request, "prompt_template_name")
    if template_name is not None and template_name.strip():
        params["template"] = template_name.strip()
    dates: list[str] = []
    for key in ("date_from", "date_to"):
        value = query_str(request, key)
        if value is not None and value.strip() and value.strip().lower() not in ("none", "null"):
            dates.append(key)
            params[key] = _date_bound(value, end=key == "date_to")
    stmt = store.list_statement(
        tuple(ids), "name" in params, "search" in params, "template" in params, tuple(dates)
    )
    async with db.connect() as conn:
        views = ExperimentViews(conn, pid, store=db)
        return await page_response(request, conn, stmt, params, views.experiments_from_rows)


def _categorical_filters(request: web.Request) -> dict[str, list[Any]] | None:
    raw = request.query.get("categorical_filters")
    if raw is None or not raw.strip() or raw.strip().lower() in ("none", "null"):
        return None
    try:
        data = msgspec.json.decode(raw.encode())
    except msgspec.DecodeError:
        data = None
    if not isinstance(data, dict) or not all(
        isinstance(k, str) and isinstance(v, list) for k, v in data.items()
    ):
        raise unprocessable(
            "categorical_filters must be a JSON object mapping column names to lists of "
            f'allowed values, e.g. {{"category": ["a", "b"]}}; got {raw!r}'
        )
    return data


@routes.get(ONE)
async def get_experiment(request: web.Request) -> web.Response:
    """One experiment; ``categorical_filters`` restricts ``results`` to matching rows."""
    experiment_id = path_id(request, "experiment_id", "experiment")
    filters = _categorical_filters(request)
    db, pid = get_db(request), project_id(request)
    async with db.connect() as conn:
        views = ExperimentViews(conn, pid, store=db)
        return json_response(await views.experiment(experiment_id, categorical_filters=filters))


@routes.delete(ONE)
async def delete_experiment(request: web.Request) -> web.Response:
    """Delete an experiment with its prompts, responses and ratings (a run is revoked first)."""
    experiment_id = path_id(request, "experiment_id", "experiment")
    db, pid, engine = get_db(request), project_id(request), get_engine(request)
    async with db.begin() as conn:  # from now on run / retry-failed answer 409 (being deleted)
        await store.get(conn, pid, experiment_id, lock=True)
        await store.set_deleting(conn, experiment_id)
    while True:
        async with db.connect() as conn:
            task_id = running_task(await store.get(conn, pid, experiment_id))
        if task_id is not None:  # stop the run first (this awaits)
            await engine.cancel(task_id, "the experiment was deleted")
            continue
        async with db.begin() as conn:  # checked again with the delete
            if running_task(await store.get(conn, pid, experiment_id, lock=True)) is None:
                await store.delete_experiment(conn, pid, experiment_id)
                break
    log.info("experiment %d deleted", experiment_id)
    return no_content()


# ---- run / retry / cancel -------------------------------------------------------------------


@routes.post(ONE + "/run")
async def run_experiment(request: web.Request) -> web.Response:
    """Start the run of an experiment that never ran (409 otherwise)."""
    experiment_id = path_id(request, "experiment_id", "experiment")
    db, pid, engine = get_db(request), project_id(request), get_engine(request)
    async with db.connect() as conn:
        exp = await store.get(conn, pid, experiment_id)
    data = await read_raw_json(request, allow_empty=True)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise unprocessable("request body must be a JSON object")
    data.setdefault("rating_mode", exp["rating_mode"])
    data.setdefault("n_epochs", exp["n_epochs"])
    if data.get("n_epochs") is None:
        data["n_epochs"] = exp["n_epochs"]
    body = convert(data, RunExperimentRequest)
    check_epochs(body.n_epochs)
    async with db.begin() as conn:
        exp = await store.get(conn, pid, experiment_id, lock=True)
        check_not_deleting(exp)
        task_id = running_task(exp)
        if task_id is not None:
            raise conflict(f"experiment {exp['name']!r} is running (task {task_id})")
        if exp["has_run"]:
            raise conflict(
                f"experiment {exp['name']!r} has already run; use retry-failed to regenerate "
                "failed responses, or clone it to run it again"
            )
        params = exp["generation_params"]
        if body.generation_params is not None:
            params = dumps(msgspec.to_builtins(body.generation_params))
        await modes.check_runnable(conn, exp)
        n_epochs = 1 if exp["response_column_id"] is not None else body.n_epochs
        await store.set_run_params(conn, experiment_id, body.rating_mode.value, n_epochs, params)
        exp = await store.get(conn, pid, experiment_id)
        await check_runnable(conn, exp)
        task_id = await start_task(conn, engine, pid, exp, {"rating_mode": body.rating_mode.value})
    return json_response(await _view(request, experiment_id, task_id))


async def retry_failed_run(
    db: Any,
    engine: TaskEngine,
    pid: int,
    experiment_id: int,
    *,
    rating_mode: str,
    discard_annotations: bool = False,
) -> str | None:
    """Delete the experiment's failed responses and start a task for what is missing.

    Returns the task id, or None when nothing is left to do; 409 while it runs, before its
    first run, while it is being deleted, or (unless ``discard_annotations``) when failed
    responses carry annotations. Shared by the API and the web viewer.
    """
    task_id: str | None = None
    async with db.begin() as conn:
        exp = await store.get(conn, pid, experiment_id, lock=True)
        check_not_deleting(exp)
        running = running_task(exp)
        if running is not None:
            raise conflict(
                f"experiment {exp['name']!r} is running (task {running}); wait or cancel"
            )
        if exp["evaluation_mode"] == EvaluationMode.AGENTIC.value:  # re-rate, delete nothing
            deleted, task_id = 0, await _retry_agentic(conn, engine, pid, exp, rating_mode)
        else:
            if not exp["has_run"]:
                raise conflict(
                    f"experiment {exp['name']!r} has not run yet: start it with POST .../run"
                )
            annotated = await store.annotated_failures(conn, experiment_id)
            if annotated and not discard_annotations:
                raise conflict(
                    f"{annotated} failed response(s) of experiment {exp['name']!r} carry "
                    "annotations; pass discard_annotations=true to delete them anyway"
                )
            deleted = await store.delete_failed_responses(conn, experiment_id)
            if exp["evaluation_mode"] == EvaluationMode.MULTI_TURN.value:
                missing = (await plan_conversations(conn, pid, experiment_id)).total
            else:
                missing = (await plan_work(conn, await load_setup(conn, pid, experiment_id))).total
            if missing:
                await check_runnable(conn, exp)
                await modes.check_runnable(conn, exp)
                task_id = await start_task(
                    conn, engine, pid, exp, {"rating_mode": rating_mode, "retry": True}
                )
            else:
                await store.touch(conn, experiment_id)
    log.info(
        "experiment %d retry: %d failed responses deleted, %s",
        experiment_id,
        deleted,
        f"task {task_id}" if task_id else "nothing to do",
    )
    return task_id


async def cancel_run(db: Any, engine: TaskEngine, pid: int, experiment_id: int) -> None:
    """Revoke the experiment's running task and wait until it ended; 409 if nothing runs.
    Shared by the API and the web viewer."""
    async with db.connect() as conn:
        exp = await store.get(conn, pid, experiment_id)
    task_id = running_task(exp)
    if task_id is None:
        raise conflict(f"experiment {exp['name']!r} has no running task to cancel")
    await engine.cancel(task_id)


@routes.post(ONE + "/retry-failed")
async def retry_failed(request: web.Request) -> web.Response:
    """Delete failed responses and generate (and rate) what the experiment is missing."""
    experiment_id = path_id(request, "experiment_id", "experiment")
    db, pid, engine = get_db(request), project_id(request), get_engine(request)
    data = await read_raw_json(request, allow_empty=True)
    body = convert(data if data is not None else {}, RetryFailedRequest)
    task_id = await retry_failed_run(
        db,
        engine,
        pid,
        experiment_id,
        rating_mode=body.rating_mode.value,
        discard_annotations=body.discard_annotations,
    )
    return json_response(await _view(request, experiment_id, task_id))


async def _retry_agentic(
    conn: Connection, engine: TaskEngine, pid: int, exp: Any, rating_mode: str
) -> str | None:
    """retry-failed of an AGENTIC experiment: the judge again for uploaded responses whose
    criteria are not all rated (failed ratings included); None when there are none."""
    waiting = await modes.agentic_retry(conn, exp)
    if not waiting:
        await store.touch(conn, exp["id"])
        return None
    payload = {"rating_mode": rating_mode, "response_ids": waiting}
    return await start_task(conn, engine, pid, exp, payload)


@routes.post(ONE + "/cancel")
async def cancel_experiment(request: web.Request) -> web.Response:
    """Revoke the experiment's running task (it ends REVOKED); 409 if nothing runs."""
    experiment_id = path_id(request, "experiment_id", "experiment")
    await cancel_run(get_db(request), get_engine(request), project_id(request), experiment_id)
    return json_response(await _view(request, experiment_id))


# ---- status -------------------------------------------------------------------------------


@routes.get(GENERATION)
async def generation_status(request: web.Request) -> web.Response:
    """Status of an experiment task (+ the experiment's current task and error flag)."""
    experiment_id = path_id(request, "experiment_id", "experiment")
    db, pid, task_id = get_db(request), project_id(request), request.match_info["task_id"]
    # The task first, then the experiment: a task's end and its experiment's release commit
    # together, so a task read as ended is never paired with an experiment still holding it.
    state = await find_task(request, task_id, "experiment", experiment_id)
    async with db.connect() as conn:
        exp = await store.get(conn, pid, experiment_id)
    if state is not None and not state.terminal and exp["generation_task_id"] != task_id:
        state = await find_task(request, task_id, "experiment", experiment_id)  # it just ended
    consumer = request.query.get("connection_uuid") or None
    payload = await get_engine(request).payload(
        state, consumer=consumer, compat=consumer is None
    )
    async with db.connect() as conn:
        payload["generation_task_id"] = await modes.reported_task(conn, exp, state)
    payload["has_internal_error"] = bool(exp["has_internal_error"])
    return json_response(payload)


@routes.get(GENERATION + "/stream")
async def generation_stream(request: web.Request) -> web.StreamResponse:
    """SSE progress of an experiment task (CONTRACT.md 5.5)."""
    experiment_id = path_id(request, "experiment_id", "experiment")
    db, pid = get_db(request), project_id(request)
    async with db.connect() as conn:
        await store.get(conn, pid, experiment_id)

    async def experiment_keys(task: TaskState | None) -> dict[str, Any]:
        async with db.connect() as conn:
            exp = await store.get(conn, pid, experiment_id)
            return {
                "generation_task_id": await modes.reported_task(conn, exp, task),
                "has_internal_error": bool(exp["has_internal_error"]),
            }

    return await stream_task(
        request, request.match_info["task_id"], "experiment", experiment_id, extra=experiment_keys
    )
