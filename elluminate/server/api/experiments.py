"""Experiments (CONTRACT.md 4.7, 4.8): create, list, get and delete; runs, retry-failed,
cancel and the generation status are in :mod:`.experiment_runs`.

An experiment with ``generate=true`` starts its run (an ``experiment`` task, see
:mod:`elluminate.server.engine`) on creation. ``rated_responses`` is always ``[]`` in answers:
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
)

from ..engine.engine import TaskEngine
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
    get_db,
    json_response,
    no_content,
    page_response,
    path_id,
    project_id,
    query_int,
    query_str,
    read_json,
)
from .sse import get_engine

log = logging.getLogger("elluminate.server.api.experiments")

routes = web.RouteTableDef()

BASE = r"/api/v0/projects/{project_id:\d+}/experiments"
ONE = BASE + r"/{experiment_id:\d+}"
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


async def experiment_view(
    request: web.Request, experiment_id: int, task_id: str | None = None
) -> Any:
    """An experiment's answer body (with its live task, when ``task_id`` is given)."""
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
    return json_response(await experiment_view(request, experiment_id, task_id), status=201)


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
