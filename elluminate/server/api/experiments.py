"""Experiments (CONTRACT.md 4.7, 4.8): create, list, get, delete, run, retry-failed, cancel,
generation status and its SSE stream.

A run is an ``experiment`` task of the task engine (see :mod:`elluminate.server.engine.handlers`):
``generation_task_id`` is set while it runs and cleared when it ends. ``/cancel`` (not in the
official API) revokes the running task. ``rated_responses`` is always ``[]`` in experiment
answers: clients load responses from ``GET @/responses?experiment_id=`` (the official SDK
always does).
"""

from __future__ import annotations

import logging
import sqlite3
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
from ..engine.handlers import load_setup, plan_work, resolve_rating_version
from ..store.database import Database, dumps, loads, now
from ..store.views import Views
from ..store.views_experiments import ExperimentViews
from .errors import conflict, not_found, unprocessable
from .http import (
    check_name,
    convert,
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
    read_raw_json,
)
from .sse import get_engine, status_payload, stream_task

log = logging.getLogger("elluminate.server.api.experiments")

routes = web.RouteTableDef()

BASE = r"/api/v0/projects/{project_id:\d+}/experiments"
ONE = BASE + r"/{experiment_id:\d+}"
GENERATION = ONE + r"/generation/{task_id}"
MAX_EPOCHS = 1000


# ---- helpers ----------------------------------------------------------------------------


def experiment_row(db: Database, pid: int, experiment_id: int) -> sqlite3.Row:
    """The experiment row of this project, or 404."""
    row = db.fetchone(
        "SELECT * FROM experiments WHERE id = ? AND project_id = ?", (experiment_id, pid)
    )
    if row is None:
        raise not_found("experiment", experiment_id)
    return row


def check_epochs(n_epochs: int) -> int:
    if n_epochs < 1:
        raise unprocessable(f"n_epochs must be at least 1, got {n_epochs}")
    if n_epochs > MAX_EPOCHS:
        raise unprocessable(f"n_epochs must be at most {MAX_EPOCHS}, got {n_epochs}")
    return n_epochs


def check_runnable(db: Database, exp: sqlite3.Row) -> None:
    """422 unless the experiment has input rows and criteria to rate against."""
    rows = db.fetchval(
        "SELECT COUNT(*) FROM template_variables WHERE collection_id = ? AND deleted_at IS NULL",
        (exp["collection_id"],),
    )
    if not rows:
        name = db.fetchval("SELECT name FROM collections WHERE id = ?", (exp["collection_id"],))
        raise unprocessable(
            f"collection {name!r} (id {exp['collection_id']}) has no entries: add input rows "
            "before running the experiment"
        )
    criteria = db.fetchval(
        "SELECT COUNT(*) FROM criterion_set_criteria l JOIN criteria c ON c.id = l.criterion_id "
        "WHERE l.criterion_set_id = ? AND c.deleted_at IS NULL",
        (exp["criterion_set_id"],),
    )
    if not criteria:
        name = db.fetchval(
            "SELECT name FROM criterion_sets WHERE id = ?", (exp["criterion_set_id"],)
        )
        raise unprocessable(
            f"criterion set {name!r} (id {exp['criterion_set_id']}) has no criteria: add criteria "
            "(POST .../criteria with criterion_set_id) before running the experiment"
        )


def check_not_deleting(exp: sqlite3.Row) -> None:
    """409 while a delete of the experiment is stopping its run."""
    if exp["deleting"]:
        raise conflict(f"experiment {exp['name']!r} is being deleted")


def running_task(engine: TaskEngine, exp: sqlite3.Row) -> str | None:
    """The experiment's task id if it is running in this server."""
    task_id: str | None = exp["generation_task_id"]
    return task_id if engine.is_running(task_id) else None


def start_task(
    db: Database, engine: TaskEngine, pid: int, exp: sqlite3.Row, payload: dict[str, Any]
) -> str:
    """Submit the experiment's task (inside the caller's transaction); returns its id.

    A task rejected at once (queue full) is not stored as the experiment's running task, but
    its id is returned so the caller can report it.
    """
    ts = now()
    state = engine.submit("experiment", pid, exp["id"], payload)
    if state.terminal:
        db.execute(
            "UPDATE experiments SET has_internal_error = 1, logs = ?, updated_at = ? WHERE id = ?",
            (state.logs, ts, exp["id"]),
        )
    else:
        db.execute(
            "UPDATE experiments SET generation_task_id = ?, has_internal_error = 0, has_run = 1, "
            "started_at = COALESCE(started_at, ?), finished_at = NULL, updated_at = ? "
            "WHERE id = ?",
            (state.id, ts, ts, exp["id"]),
        )
    return state.id


def _view(request: web.Request, experiment_id: int, task_id: str | None = None) -> Any:
    db, pid = get_db(request), project_id(request)
    views = ExperimentViews(db, pid, engine=get_engine(request))
    return views.experiment(experiment_id, generation_task_id=task_id)


# ---- create / list / get / delete ---------------------------------------------------------


def _resolve_criterion_set(
    db: Database, pid: int, body: CreateExperimentRequest, template: sqlite3.Row | None
) -> int:
    if body.criterion_set_id is not None:
        live_row(db, "criterion_sets", "criterion set", pid, body.criterion_set_id)
        return body.criterion_set_id
    if template is not None and template["criterion_set_id"] is not None:
        alive = db.fetchval(
            "SELECT 1 FROM criterion_sets WHERE id = ? AND deleted_at IS NULL",
            (template["criterion_set_id"],),
        )
        if alive:
            return int(template["criterion_set_id"])
    where = f"prompt template {template['name']!r} (id {template['id']})" if template else "none"
    raise unprocessable(
        "no criterion set for this experiment: pass criterion_set_id, or link a criterion set "
        f"to the prompt template (template: {where})"
    )


def _check_columns(
    db: Database, collection: sqlite3.Row, template: sqlite3.Row | None
) -> dict[str, str]:
    columns = {
        r[0]: r[1]
        for r in db.fetchall(
            "SELECT name, column_type FROM collection_columns WHERE collection_id = ?",
            (collection["id"],),
        )
    }
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


@routes.post(BASE)
async def create_experiment(request: web.Request) -> web.Response:
    """Create an experiment; ``generate=true`` starts its run at once."""
    body, _ = await read_json(request, CreateExperimentRequest)
    name = check_name(body.name)
    check_epochs(body.n_epochs)
    if body.evaluation_mode is not EvaluationMode.STANDARD:
        raise unprocessable(
            f"evaluation_mode {body.evaluation_mode.value} is not supported by this server; "
            "use STANDARD"
        )
    if body.scenario_set_id is not None or body.persona_group_id is not None:
        raise unprocessable(
            "scenario sets and persona groups are not supported by this server; use a collection"
        )
    if body.collection_id is None:
        raise unprocessable("collection_id is required")
    db, pid, engine = get_db(request), project_id(request), get_engine(request)
    with db.transaction():
        existing = db.fetchval(
            "SELECT id FROM experiments WHERE project_id = ? AND name = ?", (pid, name)
        )
        if existing is not None:
            raise conflict(
                f"an experiment named {name!r} already exists (id {existing}); choose another "
                "name or get the existing one",
                experiment_id=existing,
            )
        template = None
        if body.prompt_template_id is not None:
            template = live_row(
                db, "prompt_templates", "prompt template", pid, body.prompt_template_id
            )
        collection = live_row(db, "collections", "collection", pid, body.collection_id)
        if body.llm_config_id is not None:
            live_row(db, "llm_configs", "LLM config", pid, body.llm_config_id)
        set_id = _resolve_criterion_set(db, pid, body, template)
        columns = _check_columns(db, collection, template)
        response_column_id = body.response_column_id
        if response_column_id is not None:
            column = db.fetchone(
                "SELECT name, column_type FROM collection_columns WHERE id = ? "
                "AND collection_id = ?",
                (response_column_id, collection["id"]),
            )
            if column is None or column["column_type"] != "text":
                raise unprocessable(
                    f"response_column_id {response_column_id} is not a text column of collection "
                    f"{collection['name']!r} (columns: {', '.join(sorted(columns)) or 'none'})"
                )
        params = (
            None if body.generation_params is None else msgspec.to_builtins(body.generation_params)
        )
        ts = now()
        experiment_id = db.insert(
            "INSERT INTO experiments (project_id, name, description, prompt_template_id, "
            "collection_id, criterion_set_id, llm_config_id, rating_version, rating_mode, "
            "n_epochs, generation_params, response_column_id, evaluation_mode, agent_config, "
            "evaluation_agent_config, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                pid,
                name,
                body.description or "",
                body.prompt_template_id,
                collection["id"],
                set_id,
                body.llm_config_id,
                resolve_rating_version(body.rating_version),
                body.rating_mode.value,
                1 if response_column_id is not None else body.n_epochs,
                dumps(params),
                response_column_id,
                body.evaluation_mode.value,
                dumps(body.agent_config),
                dumps(body.evaluation_agent_config),
                ts,
                ts,
            ),
        )
        task_id = None
        if body.generate:
            exp = experiment_row(db, pid, experiment_id)
            check_runnable(db, exp)
            task_id = start_task(db, engine, pid, exp, {"rating_mode": body.rating_mode.value})
    log.info(
        "experiment %r (id %d) created%s", name, experiment_id, " and started" if task_id else ""
    )
    return json_response(_view(request, experiment_id, task_id), status=201)


@routes.get(BASE)
async def list_experiments(request: web.Request) -> web.Response:
    """Paginated (creation order); ``experiment_name`` is an exact-name lookup."""
    db, pid = get_db(request), project_id(request)
    where = ["e.project_id = ?"]
    params: list[Any] = [pid]
    for key in ("prompt_template_id", "collection_id", "llm_config_id", "criterion_set_id"):
        ident = query_int(request, key)
        if ident is not None:
            where.append(f"e.{key} = ?")
            params.append(ident)
    name = query_str(request, "experiment_name")
    if name is not None and name.strip():
        where.append("e.name = ?")
        params.append(name.strip())
    search = query_str(request, "experiment_name_search")
    if search is not None and search.strip():
        where.append("e.name LIKE ? ESCAPE '\\'")
        escaped = search.strip().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        params.append(f"%{escaped}%")
    template_name = query_str(request, "prompt_template_name")
    if template_name is not None and template_name.strip():
        where.append(
            "e.prompt_template_id IN (SELECT id FROM prompt_templates WHERE project_id = ? "
            "AND name = ?)"
        )
        params += [pid, template_name.strip()]
    for key, op in (("date_from", ">="), ("date_to", "<=")):
        value = query_str(request, key)
        if value is not None and value.strip() and value.strip().lower() not in ("none", "null"):
            where.append(f"substr(e.created_at, 1, {len(value.strip())}) {op} ?")
            params.append(value.strip())
    views = ExperimentViews(db, pid, Views(db, pid), engine=get_engine(request))
    return paginate(
        db,
        request,
        select="SELECT e.* FROM experiments e",
        where=" AND ".join(where),
        params=params,
        order_by="e.created_at, e.id",
        build=views.experiments_from_rows,
    )


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
    views = ExperimentViews(db, pid, engine=get_engine(request))
    return json_response(views.experiment(experiment_id, categorical_filters=filters))


@routes.delete(ONE)
async def delete_experiment(request: web.Request) -> web.Response:
    """Delete an experiment with its prompts, responses and ratings (a run is revoked first)."""
    experiment_id = path_id(request, "experiment_id", "experiment")
    db, pid, engine = get_db(request), project_id(request), get_engine(request)
    with db.transaction():  # from now on run / retry-failed answer 409 (being deleted)
        experiment_row(db, pid, experiment_id)
        db.execute("UPDATE experiments SET deleting = 1 WHERE id = ?", (experiment_id,))
    while True:
        exp = experiment_row(db, pid, experiment_id)
        task_id = running_task(engine, exp)
        if task_id is not None:  # stop the run first (this awaits)
            await engine.cancel(task_id, "the experiment was deleted")
            continue
        with db.transaction():  # checked again with the delete, no await in between
            if running_task(engine, experiment_row(db, pid, experiment_id)) is None:
                db.execute(
                    "DELETE FROM experiments WHERE id = ? AND project_id = ?", (experiment_id, pid)
                )
                break
    log.info("experiment %d deleted", experiment_id)
    return no_content()


# ---- run / retry / cancel -------------------------------------------------------------------


@routes.post(ONE + "/run")
async def run_experiment(request: web.Request) -> web.Response:
    """Start the run of an experiment that never ran (409 otherwise)."""
    experiment_id = path_id(request, "experiment_id", "experiment")
    db, pid, engine = get_db(request), project_id(request), get_engine(request)
    exp = experiment_row(db, pid, experiment_id)
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
    with db.transaction():
        exp = experiment_row(db, pid, experiment_id)
        check_not_deleting(exp)
        task_id = running_task(engine, exp)
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
        n_epochs = 1 if exp["response_column_id"] is not None else body.n_epochs
        db.execute(
            "UPDATE experiments SET rating_mode = ?, n_epochs = ?, generation_params = ?, "
            "updated_at = ? WHERE id = ?",
            (body.rating_mode.value, n_epochs, params, now(), experiment_id),
        )
        exp = experiment_row(db, pid, experiment_id)
        check_runnable(db, exp)
        task_id = start_task(db, engine, pid, exp, {"rating_mode": body.rating_mode.value})
    return json_response(_view(request, experiment_id, task_id))


def retry_failed_run(
    db: Database,
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
    with db.transaction():
        exp = experiment_row(db, pid, experiment_id)
        check_not_deleting(exp)
        running = running_task(engine, exp)
        if running is not None:
            raise conflict(
                f"experiment {exp['name']!r} is running (task {running}); wait or cancel"
            )
        if not exp["has_run"]:
            raise conflict(
                f"experiment {exp['name']!r} has not run yet: start it with POST .../run"
            )
        annotated = db.fetchval(
            "SELECT COUNT(*) FROM responses WHERE experiment_id = ? AND error IS NOT NULL "
            "AND annotation != ''",
            (experiment_id,),
        )
        if annotated and not discard_annotations:
            raise conflict(
                f"{annotated} failed response(s) of experiment {exp['name']!r} carry annotations; "
                "pass discard_annotations=true to delete them anyway"
            )
        deleted = db.execute(
            "DELETE FROM prompts WHERE id IN (SELECT prompt_id FROM responses "
            "WHERE experiment_id = ? AND error IS NOT NULL)",
            (experiment_id,),
        ).rowcount
        plan = plan_work(db, load_setup(db, pid, experiment_id))
        if plan.total:
            check_runnable(db, exp)
            task_id = start_task(
                db, engine, pid, exp, {"rating_mode": rating_mode, "retry": True}
            )
        else:
            db.execute("UPDATE experiments SET updated_at = ? WHERE id = ?", (now(), experiment_id))
    log.info(
        "experiment %d retry: %d failed responses deleted, %s",
        experiment_id,
        deleted,
        f"task {task_id}" if task_id else "nothing to do",
    )
    return task_id


async def cancel_run(db: Database, engine: TaskEngine, pid: int, experiment_id: int) -> None:
    """Revoke the experiment's running task and wait until it ended; 409 if nothing runs.
    Shared by the API and the web viewer."""
    exp = experiment_row(db, pid, experiment_id)
    task_id = running_task(engine, exp)
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
    task_id = retry_failed_run(
        db,
        engine,
        pid,
        experiment_id,
        rating_mode=body.rating_mode.value,
        discard_annotations=body.discard_annotations,
    )
    return json_response(_view(request, experiment_id, task_id))


@routes.post(ONE + "/cancel")
async def cancel_experiment(request: web.Request) -> web.Response:
    """Revoke the experiment's running task (it ends REVOKED); 409 if nothing runs."""
    experiment_id = path_id(request, "experiment_id", "experiment")
    await cancel_run(get_db(request), get_engine(request), project_id(request), experiment_id)
    return json_response(_view(request, experiment_id))


# ---- status -------------------------------------------------------------------------------


@routes.get(GENERATION)
async def generation_status(request: web.Request) -> web.Response:
    """Status of an experiment task (+ the experiment's current task and error flag)."""
    experiment_id = path_id(request, "experiment_id", "experiment")
    db, pid = get_db(request), project_id(request)
    exp = experiment_row(db, pid, experiment_id)
    payload = status_payload(request, request.match_info["task_id"], "experiment", experiment_id)
    payload["generation_task_id"] = exp["generation_task_id"]
    payload["has_internal_error"] = bool(exp["has_internal_error"])
    return json_response(payload)


@routes.get(GENERATION + "/stream")
async def generation_stream(request: web.Request) -> web.StreamResponse:
    """SSE progress of an experiment task (CONTRACT.md 5.5)."""
    experiment_id = path_id(request, "experiment_id", "experiment")
    experiment_row(get_db(request), project_id(request), experiment_id)
    return await stream_task(request, request.match_info["task_id"], "experiment", experiment_id)
