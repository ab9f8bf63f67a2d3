"""Experiment runs (CONTRACT.md 4.8): run, retry-failed, cancel, and a run's generation
status and its SSE stream.

A run is an ``experiment`` task of the task engine (see :mod:`elluminate.server.engine`):
``generation_task_id`` is set while it is live and cleared when it ends. ``/cancel`` (not in
the official API) revokes it. :func:`retry_failed_run` and :func:`cancel_run` also serve the
web viewer.
"""

from __future__ import annotations

import logging
from typing import Any

import msgspec
from aiohttp import web

from elluminate.schemas import EvaluationMode, RetryFailedRequest, RunExperimentRequest

from ..engine.engine import TaskEngine
from ..engine.multiturn import plan_conversations
from ..engine.planning import load_setup, plan_work
from ..engine.task_state import TaskState
from ..store import experiments as store
from ..store.connection import Connection
from ..store.database import dumps
from . import experiment_modes as modes
from .errors import conflict, unprocessable
from .experiments import (
    ONE,
    check_epochs,
    check_not_deleting,
    check_runnable,
    experiment_view,
    running_task,
    start_task,
)
from .http import (
    convert,
    get_db,
    json_response,
    path_id,
    project_id,
    read_raw_json,
)
from .sse import find_task, get_engine, stream_task

log = logging.getLogger("elluminate.server.api.experiments")

routes = web.RouteTableDef()
#: the OpenAPI tag of these operations (the same as the experiments' own)
OPENAPI_TAG = "experiments"

GENERATION = ONE + r"/generation/{task_id}"

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
    return json_response(await experiment_view(request, experiment_id, task_id))


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
    return json_response(await experiment_view(request, experiment_id, task_id))


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
    return json_response(await experiment_view(request, experiment_id))


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
