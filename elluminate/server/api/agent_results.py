"""Agent results of AGENTIC experiments (CONTRACT.md 4.12, 5.7): the definition, the matching
preview and the upload. The repository is :mod:`..store.agent_results`.

Matching: a result names its task by ``task_id`` (the row id) or ``task_name`` (its frozen
name); both given must name the same task. An upload stores one response per matched result
(appended: every upload of a (task, epoch) is a new trial), its ``criterion_ratings`` as they
are, and starts the judge for the criteria left (``evaluate``). It answers 200 with the
problems of single results in ``errors`` (1-based ``result N: ...``): an unmatched task, an
unknown or repeated criterion (the response is kept), a trajectory that is not valid ATIF or
larger than :data:`MAX_TRAJECTORY_BYTES` (the result is stored without it, the experiment
counts it in ``dropped_trajectories``). When no result matched a task it answers 400
``kind: unmatched_tasks``, when matched results could not be stored (their rows were
deleted) 400 ``kind: nothing_stored``; nothing is stored then. A body that does not fit the
wire structs answers 422, one over the server's body limit 413; nothing is stored either.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import msgspec
from aiohttp import web

from elluminate.schemas import (
    AgentResultsDefinition,
    AgentResultsMatchPreview,
    AgentResultsMatchPreviewRequest,
    AgentResultsUploadRequest,
    AgentResultsUploadResponse,
    AgentTrialResult,
    AgentTrialTaskRef,
    EvaluationMode,
    GenerationMetadata,
)
from elluminate.schemas.atif import ATIFTrajectory

from ..evaluation.generation import prompt_messages
from ..store import agent_results as store
from ..store import experiments as experiments_store
from ..store import responses as responses_store
from ..store import tasks as tasks_store
from ..store.connection import Connection
from ..store.database import loads
from ..store.responses import Outcome
from .errors import HTTPError, bad_request
from .experiments import ONE, check_not_deleting, start_task
from .http import get_db, json_response, path_id, project_id, read_json
from .operations import operation
from .sse import get_engine

log = logging.getLogger("elluminate.server.api.agent_results")

routes = web.RouteTableDef()

RESULTS = ONE + "/agent-results"
#: Largest trajectory an upload stores (larger ones are dropped with a message).
MAX_TRAJECTORY_BYTES = 8 * 1024 * 1024
#: Tasks named in the answer to an upload that matched none.
ACCEPTED_TASKS_SHOWN = 10


class _RawResult(msgspec.Struct):
    trajectory: msgspec.Raw = msgspec.Raw(b"null")


class _RawUpload(msgspec.Struct):
    """The trajectories of an upload as they were sent (stored verbatim)."""

    results: list[_RawResult] = []


# ---- the experiment and its definition ------------------------------------------------------


async def _agentic(conn: Connection, pid: int, experiment_id: int, *, lock: bool = False) -> Any:
    exp = await experiments_store.get(conn, pid, experiment_id, lock=lock)
    if exp["evaluation_mode"] != EvaluationMode.AGENTIC.value:
        raise bad_request(
            f"experiment {exp['name']!r} is a {exp['evaluation_mode']} experiment; agent results "
            "belong to AGENTIC experiments (create one with evaluation_mode='AGENTIC' over an "
            "AGENTIC collection)"
        )
    return exp


@routes.get(RESULTS + "/definition")
@operation(response=AgentResultsDefinition, errors=(400,))
async def get_definition(request: web.Request) -> web.Response:
    """The experiment's frozen tasks with the criteria each is rated against."""
    experiment_id = path_id(request, "experiment_id", "experiment")
    async with get_db(request).connect() as conn:
        exp = await _agentic(conn, project_id(request), experiment_id)
        definition = store.definition_of(exp)
        states = await store.row_states(conn, [t["task_id"] for t in definition["tasks"]])
    tasks = []
    for task in definition["tasks"]:
        state = states.get(task["task_id"])
        current = None if state is None or state.name == task["task_name"] else state.name
        tasks.append(
            {
                **task,
                "row_exists": state is not None and state.live,
                "current_task_name": current,
            }
        )
    return json_response({**definition, "tasks": tasks})


# ---- matching -------------------------------------------------------------------------------


@dataclass
class Match:
    """How one result matched: its task (None: unmatched, ``reason`` says why)."""

    index: int
    task: dict[str, Any] | None
    reason: str | None
    given_id: int | None
    given_name: str | None

    def answer(self) -> dict[str, Any]:
        if self.task is not None:
            return {
                "index": self.index,
                "task_id": self.task["task_id"],
                "task_name": self.task["task_name"],
                "reason": None,
            }
        return {
            "index": self.index,
            "task_id": self.given_id,
            "task_name": self.given_name,
            "reason": self.reason,
        }


def match_results(definition: dict[str, Any], refs: list[AgentTrialTaskRef]) -> list[Match]:
    """Match each result to a task of the definition by id or frozen name."""
    by_id = {t["task_id"]: t for t in definition["tasks"]}
    by_name = {t["task_name"]: t for t in definition["tasks"]}
    out = []
    for index, ref in enumerate(refs):
        name = ref.task_name
        task: dict[str, Any] | None = None
        reason = None
        if ref.task_id is not None:
            task = by_id.get(ref.task_id)
            if task is None:
                reason = f"no task with id {ref.task_id} in this experiment"
            elif name is not None and name != task["task_name"]:
                reason = (
                    f"task_id {ref.task_id} is the task {task['task_name']!r}, not {name!r}: "
                    "give one of them, or both of the same task"
                )
                task = None
        else:
            task = by_name.get(name or "")
            if task is None:
                reason = f"no task named {name!r} in this experiment"
        out.append(Match(index, task, reason, ref.task_id, name))
    return out


def _accepted(definition: dict[str, Any]) -> dict[str, Any]:
    tasks = definition["tasks"]
    return {
        "accepted_tasks": [
            {"task_id": t["task_id"], "task_name": t["task_name"]}
            for t in tasks[:ACCEPTED_TASKS_SHOWN]
        ],
        "accepted_tasks_total": len(tasks),
    }


@routes.post(RESULTS + "/preview")
@operation(
    request=AgentResultsMatchPreviewRequest, response=AgentResultsMatchPreview, errors=(400,)
)
async def preview(request: web.Request) -> web.Response:
    """Which results would match a task (by id or frozen name); nothing is stored."""
    body, _ = await read_json(request, AgentResultsMatchPreviewRequest)
    experiment_id = path_id(request, "experiment_id", "experiment")
    async with get_db(request).connect() as conn:
        exp = await _agentic(conn, project_id(request), experiment_id)
    definition = store.definition_of(exp)
    matches = match_results(definition, list(body.results))
    matched = sum(1 for m in matches if m.task is not None)
    return json_response(
        {
            "task_name_column": definition["task_name_column"],
            "matched": matched,
            "unmatched": len(matches) - matched,
            "results": [m.answer() for m in matches],
        }
    )


# ---- the upload -----------------------------------------------------------------------------


def trajectory_problem(raw: bytes, value: Any) -> str | None:
    """Why a trajectory cannot be stored (None: it is valid ATIF and small enough)."""
    if not isinstance(value, dict):
        return f"a trajectory is an ATIF object, not {type(value).__name__}"
    try:
        msgspec.convert(value, ATIFTrajectory)
    except msgspec.ValidationError as exc:
        text = str(exc)
        marker = " - at `$"
        if marker in text:
            message, where = text.split(marker, 1)
            text = f"{message} (at `{where.rstrip('`').lstrip('.') or 'trajectory'}`)"
        return text
    if len(raw) > MAX_TRAJECTORY_BYTES:
        return (
            f"the trajectory is {len(raw)} bytes; at most {MAX_TRAJECTORY_BYTES} are stored "
            "(split it into subagent trajectories or upload fewer steps)"
        )
    return None


_ROLES = {"developer": "system"}


def response_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A trial's messages as response messages (roles ``assistant``, ``tool``, ``user``,
    ``system``: a ``developer`` message is stored as ``system``, a ``function`` result as a
    ``tool`` result named by its function)."""
    out = []
    for message in messages:
        role = message.get("role")
        if role == "function":
            copy = {k: v for k, v in message.items() if k != "name"}
            out.append({**copy, "role": "tool", "tool_call_id": str(message.get("name", ""))})
        elif role in _ROLES:
            out.append({**message, "role": _ROLES[str(role)]})
        else:
            out.append(message)
    return out


def _ratings(
    number: int, result: AgentTrialResult, task: dict[str, Any], errors: list[str]
) -> list[Outcome]:
    """The result's criterion ratings as rating outcomes; problems go to ``errors``."""
    by_id = {c["criterion_id"]: c for c in task["criteria"]}
    by_label: dict[str, list[dict[str, Any]]] = {}
    for c in task["criteria"]:
        by_label.setdefault(c["label"], []).append(c)
    known = ", ".join(f"{c['label']!r} (id {c['criterion_id']})" for c in task["criteria"])
    seen: set[int] = set()
    outcomes = []
    for given in result.criterion_ratings:
        if given.criterion_id is not None:
            criterion = by_id.get(given.criterion_id)
            if criterion is None:
                errors.append(
                    f"result {number}: unknown criterion id {given.criterion_id} for task "
                    f"{task['task_name']!r} (its criteria: {known or 'none'})"
                )
                continue
        else:
            label = (given.label or "").strip()
            found = by_label.get(label, [])
            if not found:
                errors.append(f"result {number}: unknown criterion label {label!r}")
                continue
            if len(found) > 1:
                ids = ", ".join(str(c["criterion_id"]) for c in found)
                errors.append(
                    f"result {number}: criterion label {label!r} names several criteria "
                    f"({ids}); rate by criterion_id"
                )
                continue
            criterion = found[0]
        if criterion["criterion_id"] in seen:
            errors.append(
                f"result {number}: criterion {criterion['label']!r} (id "
                f"{criterion['criterion_id']}) is rated twice; the first rating is kept"
            )
            continue
        seen.add(criterion["criterion_id"])
        outcomes.append(Outcome(criterion["criterion_id"], given.rating, given.reasoning or None))
    return outcomes


async def _prompt(conn: Connection, exp: Any, row_id: int) -> tuple[Any, list[dict[str, Any]]]:
    """The experiment's template (or None) and the task's rendered prompt ([] if none)."""
    template = None
    if exp["prompt_template_id"] is not None:
        template = await responses_store.template_row(conn, exp["prompt_template_id"])
    row, columns = await responses_store.row_and_columns(conn, row_id)
    if row is None:
        return template, []
    messages = None if template is None else loads(template["messages"])
    try:
        return template, prompt_messages(messages, loads(row["input_values"]), columns)
    except ValueError:
        return template, list(messages or [])


def _refused(kind: str, detail: str, definition: dict[str, Any], matches: list[Match]) -> HTTPError:
    return bad_request(
        detail,
        kind=kind,
        **_accepted(definition),
        results=[m.answer() for m in matches],
    )


@routes.post(RESULTS)
@operation(
    request=AgentResultsUploadRequest,
    response=AgentResultsUploadResponse,
    errors=(400, 429),
    description=(
        "Uploads append. 400 `kind: unmatched_tasks` (no result matched a task) or "
        "`kind: nothing_stored`, with `accepted_tasks` (at most 10), `accepted_tasks_total` "
        "and per-result `results`; 413 for a body over the server's limit. A trajectory that "
        "is not valid ATIF (e.g. more than 10,000 steps) or over 8 MiB is dropped: the result "
        "is stored without it and `errors` says why."
    ),
)
async def upload(request: web.Request) -> web.Response:
    """Store agent trials as responses; the judge rates what their ratings leave open."""
    body, _ = await read_json(request, AgentResultsUploadRequest)
    raw = msgspec.json.decode(await request.read(), type=_RawUpload)
    experiment_id = path_id(request, "experiment_id", "experiment")
    db, pid, engine = get_db(request), project_id(request), get_engine(request)
    errors: list[str] = []
    created_responses = created_ratings = dropped = 0
    new_ids: list[int] = []
    task_id: str | None = None
    pending_pairs = 0
    async with db.begin() as conn:
        exp = await _agentic(conn, pid, experiment_id, lock=True)
        check_not_deleting(exp)
        definition = store.definition_of(exp)
        matches = match_results(definition, list(body.results))
        if not any(m.task is not None for m in matches):
            raise _refused(
                "unmatched_tasks",
                "no result matched a task of this experiment: name tasks by task_id (the "
                "collection row id) or task_name (the row's 'task' value when the experiment "
                "was created)",
                definition,
                matches,
            )
        states = await store.row_states(conn, [m.task["task_id"] for m in matches if m.task])
        trials = await store.next_trials(
            conn, experiment_id, body.epoch, [m.task["task_id"] for m in matches if m.task]
        )
        for match, result, sent in zip(matches, body.results, raw.results, strict=True):
            number = match.index + 1
            if match.task is None:
                errors.append(f"result {number}: {match.reason}")
                continue
            row_id = match.task["task_id"]
            if row_id not in states:
                errors.append(
                    f"result {number}: the row of task {match.task['task_name']!r} (id {row_id}) "
                    "was deleted, so nothing was stored for this result"
                )
                continue
            trajectory: str | None = None
            ingest_error: str | None = None
            if result.trajectory is not None:
                problem = trajectory_problem(bytes(sent.trajectory), result.trajectory)
                if problem is None:
                    trajectory = bytes(sent.trajectory).decode()
                else:
                    ingest_error = problem
                    dropped += 1
                    errors.append(f"result {number}: trajectory dropped: {problem}")
            template, prompt = await _prompt(conn, exp, row_id)
            prompt_id = await responses_store.insert_prompt(
                conn, pid, experiment_id, template, row_id, prompt
            )
            response_id = await store.insert_trial(
                conn,
                pid,
                experiment_id,
                store.StoredTrial(
                    row_id=row_id,
                    epoch=body.epoch,
                    trial=trials[row_id],
                    prompt_id=prompt_id,
                    messages=response_messages(list(result.messages)),
                    error=result.error,
                    metadata=GenerationMetadata(
                        duration_seconds=result.duration_seconds,
                        input_tokens=result.input_tokens,
                        output_tokens=result.output_tokens,
                        cached_tokens=result.cached_tokens,
                        trajectory_ingest_error=ingest_error,
                    ),
                    trajectory=trajectory,
                    reward=result.reward,
                    steps=result.steps,
                    cost_usd=result.cost_usd,
                    result_metadata=result.metadata,
                ),
            )
            trials[row_id] += 1
            outcomes = _ratings(number, result, match.task, errors)
            if outcomes:
                await responses_store.store_ratings(conn, pid, response_id, outcomes)
            created_responses += 1
            created_ratings += len(outcomes)
            new_ids.append(response_id)
        if not created_responses:
            raise _refused(
                "nothing_stored",
                "results matched tasks, but none could be stored: " + "; ".join(errors),
                definition,
                matches,
            )
        await store.add_dropped(conn, experiment_id, dropped)
        if body.evaluate:
            waiting = await store.pending(conn, experiment_id, definition, new_ids)
            pending_pairs = sum(len(p.criteria) for p in waiting)
            if waiting:
                task_id = await _start_evaluation(conn, engine, pid, exp, new_ids)
        else:
            await experiments_store.touch(conn, experiment_id)
    log.info(
        "experiment %d: %d agent result(s) stored, %d rating(s), %d problem(s)%s",
        experiment_id,
        created_responses,
        created_ratings,
        len(errors),
        f", evaluation task {task_id}" if task_id else "",
    )
    return json_response(
        AgentResultsUploadResponse(
            created_responses=created_responses,
            created_ratings=created_ratings,
            errors=errors,
            pending_evaluations=pending_pairs,
            evaluation_task_id=task_id,
        )
    )


async def _start_evaluation(
    conn: Connection, engine: Any, pid: int, exp: Any, response_ids: list[int]
) -> str:
    """Start the judge for these responses. A running evaluation hands over: the new task
    also takes the responses the old one had not finished, and the old one stops."""
    ids = list(response_ids)
    running = exp["generation_task_id"]
    if running is not None:
        row = await tasks_store.task_row(conn, running)
        if row is not None:
            earlier = (loads(row["payload"]) or {}).get("response_ids") or []
            ids = sorted({*earlier, *ids})
    return await start_task(
        conn,
        engine,
        pid,
        exp,
        {"rating_mode": exp["rating_mode"], "response_ids": ids, "handed_over_from": running},
    )
