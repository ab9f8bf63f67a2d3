"""Agent results of AGENTIC experiments (CONTRACT.md 4.12, 7.17): the task rules of AGENTIC
collections, the frozen definition, uploaded trials and what the judge still has to rate.

* An AGENTIC collection keys its tasks by a TEXT column ``task`` whose values are non-empty
  and unique (:func:`task_rule_violation`, checked after every write of such a collection).
* An AGENTIC experiment freezes its **definition** when it is created
  (``experiments.definition``): every live row of the collection is a task (``task_id`` = the
  row id, ``task_name`` = its ``task`` value then) with the criteria that apply to it, rendered
  with the row's values. Results are matched against that definition, whatever happens to the
  rows later; the definition's answer tells whether a row still exists and its current name.
* Uploads **append**: each trial of a (task, epoch) is its own response, numbered by
  ``responses.trial`` (0, 1, ...; part of the unique key). Counters, cost, reward, steps and
  the agent's metadata are stored with it, the raw trajectory verbatim.
* Criterion scopes: ``task`` for a criterion specific to the task's row, ``shared`` for the
  criterion set's others (``system`` is the platform's own criteria; this server has none).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, func, insert, select, update

from elluminate._templates import render_str
from elluminate.schemas import GenerationMetadata

from . import schema as S
from .columns import load_columns
from .connection import Connection
from .database import dumps, loads, utcnow

_E, _R, _G, _TV, _C = S.experiments, S.responses, S.ratings, S.template_variables, S.criteria
_L, _T = S.criterion_set_criteria, S.tasks
_ID: Any = bindparam("id")
_IDS: Any = bindparam("ids", expanding=True)

TASK_COLUMN = "task"
DEFINITION_VERSION = 1
MAX_LABEL_LENGTH = 25
IN_CHUNK = 500

LIVE_ROWS = (
    select(_TV.c.id, _TV.c.input_values)
    .where(_TV.c.collection_id == _ID, _TV.c.deleted_at.is_(None))
    .order_by(_TV.c.id)
)
ROWS_BY_IDS = select(_TV.c.id, _TV.c.input_values, _TV.c.deleted_at).where(_TV.c.id.in_(_IDS))
SET_CRITERIA = (
    select(_C.c.id, _C.c.criterion_str, _C.c.label, _C.c.template_variables_id)
    .join(_L, _L.c.criterion_id == _C.c.id)
    .where(_L.c.criterion_set_id == _ID, _C.c.deleted_at.is_(None))
    .order_by(_L.c.position, _C.c.id)
)
SET_DEFINITION = update(_E).where(_E.c.id == _ID).values(definition=bindparam("definition"))
MAX_TRIALS = (
    select(_R.c.template_variables_id, func.max(_R.c.trial))
    .where(
        _R.c.experiment_id == _ID,
        _R.c.epoch == bindparam("epoch"),
        _R.c.template_variables_id.in_(_IDS),
    )
    .group_by(_R.c.template_variables_id)
)
ADD_RESPONSE = (
    insert(_R)
    .values(
        project_id=bindparam("pid"),
        experiment_id=_ID,
        prompt_id=bindparam("prompt_id"),
        template_variables_id=bindparam("row_id"),
        epoch=bindparam("epoch"),
        trial=bindparam("trial"),
        messages=bindparam("messages"),
        generation_metadata=bindparam("metadata"),
        error=bindparam("error"),
        trajectory=bindparam("trajectory"),
        input_tokens=bindparam("input_tokens"),
        output_tokens=bindparam("output_tokens"),
        duration_seconds=bindparam("duration_seconds"),
        reward=bindparam("reward"),
        steps=bindparam("steps"),
        cost_usd=bindparam("cost_usd"),
        result_metadata=bindparam("result_metadata"),
        created_at=bindparam("ts"),
        updated_at=bindparam("ts"),
    )
    .returning(_R.c.id)
)
ADD_DROPPED = (
    update(_E)
    .where(_E.c.id == _ID)
    .values(
        dropped_trajectories=_E.c.dropped_trajectories + bindparam("dropped"),
        updated_at=bindparam("ts"),
    )
)
TO_EVALUATE = (
    select(
        _R.c.id,
        _R.c.template_variables_id,
        _R.c.error,
        _R.c.messages,
        _R.c.trajectory,
        S.prompts.c.messages.label("prompt"),
    )
    .join(S.prompts, S.prompts.c.id == _R.c.prompt_id)
    .where(_R.c.id.in_(_IDS), _R.c.experiment_id == bindparam("experiment_id"))
    .order_by(_R.c.id)
)
RATED = select(_G.c.response_id, _G.c.criterion_id).where(
    _G.c.response_id.in_(_IDS), _G.c.rating.is_not(None)
)
CURRENT_TASK = select(_E.c.generation_task_id).where(_E.c.id == _ID)
#: The experiment's task, locked against a concurrent upload (which locks it FOR UPDATE).
CURRENT_TASK_SHARED = CURRENT_TASK.with_for_update(read=True)
RESPONSE_IDS = select(_R.c.id).where(_R.c.experiment_id == _ID).order_by(_R.c.id)
LATEST_TASK = (
    select(_T.c.id)
    .where(_T.c.experiment_id == _ID, _T.c.kind == "experiment")
    .order_by(_T.c.created_at.desc(), _T.c.id.desc())
    .limit(1)
)


# ---- the task rules of AGENTIC collections ---------------------------------------------------


def task_rule_violation(columns: Sequence[Mapping[str, Any]], rows: Sequence[Any]) -> str | None:
    """What breaks the rules of an AGENTIC collection with these columns and ``(id,
    input_values)`` rows (None: nothing). An empty collection without columns is fine."""
    by_name = {c["name"]: c for c in columns}
    task = by_name.get(TASK_COLUMN)
    if task is None:
        if not columns and not rows:
            return None
        return (
            "an AGENTIC collection needs a TEXT column named 'task' that names each task "
            "(e.g. columns ['task', 'instruction'] and rows {'task': 'fix-bug', ...})"
        )
    if task["column_type"] != "text":
        return (
            f"the 'task' column of an AGENTIC collection must be a TEXT column, not "
            f"{task['column_type']}"
        )
    seen: set[str] = set()
    for _, values in rows:
        raw = loads(values) if isinstance(values, str) else values
        name = raw.get(TASK_COLUMN)
        if not isinstance(name, str) or not name.strip():
            others = {k: v for k, v in raw.items() if k != TASK_COLUMN}
            return (
                "every row of an AGENTIC collection needs a non-empty 'task' value; the row "
                f"{others!r} has {name!r}"
            )
        if name in seen:
            return f"task names of an AGENTIC collection are unique; {name!r} names two rows"
        seen.add(name)
    return None


async def check_task_rules(conn: Connection, collection: Mapping[str, Any]) -> str | None:
    """:func:`task_rule_violation` for a stored collection (None for other types)."""
    if collection["collection_type"] != "AGENTIC":
        return None
    columns = await load_columns(conn, collection["id"])
    rows = await conn.fetchall(LIVE_ROWS, {"id": collection["id"]})
    return task_rule_violation(columns, [(r[0], r[1]) for r in rows])


# ---- the frozen definition --------------------------------------------------------------------


def criterion_label(criterion_id: int, label: str | None) -> str:
    """The label a definition shows for a criterion (at most 25 characters)."""
    text = (label or "").strip()[:MAX_LABEL_LENGTH].strip()
    return text or f"criterion {criterion_id}"


def _render(text: str, values: Mapping[str, Any]) -> str:
    try:
        return render_str(text, dict(values))
    except ValueError:
        return text


async def freeze_definition(
    conn: Connection, experiment_id: int, collection_id: int, criterion_set_id: int
) -> dict[str, Any]:
    """Store (and return) the definition of a new AGENTIC experiment: its tasks and the
    criteria each is rated against, rendered with the task's values."""
    criteria = await conn.fetchall(SET_CRITERIA, {"id": criterion_set_id})
    tasks = []
    for row_id, raw in await conn.fetchall(LIVE_ROWS, {"id": collection_id}):
        values = loads(raw)
        tasks.append(
            {
                "task_id": row_id,
                "task_name": str(values.get(TASK_COLUMN, "")),
                "criteria": [
                    {
                        "criterion_id": c["id"],
                        "label": criterion_label(c["id"], c["label"]),
                        "scope": "shared" if c["template_variables_id"] is None else "task",
                        "rendered_criterion_str": _render(c["criterion_str"], values),
                    }
                    for c in criteria
                    if c["template_variables_id"] in (None, row_id)
                ],
            }
        )
    definition = {"version": DEFINITION_VERSION, "task_name_column": TASK_COLUMN, "tasks": tasks}
    await conn.execute(SET_DEFINITION, {"id": experiment_id, "definition": dumps(definition)})
    return definition


def definition_of(experiment: Mapping[str, Any]) -> dict[str, Any]:
    """The frozen definition of an AGENTIC experiment row."""
    definition = loads(experiment["definition"])
    if not isinstance(definition, dict):
        return {"version": DEFINITION_VERSION, "task_name_column": TASK_COLUMN, "tasks": []}
    return definition


@dataclass
class RowState:
    """Where a task's row stands now."""

    exists: bool  # the row is stored (live or hidden): responses can reference it
    live: bool  # not deleted
    name: str | None  # its current ``task`` value


async def row_states(conn: Connection, row_ids: Sequence[int]) -> dict[int, RowState]:
    """The current state of rows, by id (missing ids: deleted for good)."""
    out: dict[int, RowState] = {}
    unique = sorted(set(row_ids))
    for start in range(0, len(unique), IN_CHUNK):
        for row_id, raw, deleted_at in await conn.fetchall(
            ROWS_BY_IDS, {"ids": unique[start : start + IN_CHUNK]}
        ):
            name = loads(raw).get(TASK_COLUMN)
            out[row_id] = RowState(True, deleted_at is None, None if name is None else str(name))
    return out


# ---- uploads ----------------------------------------------------------------------------------


async def next_trials(
    conn: Connection, experiment_id: int, epoch: int, row_ids: Sequence[int]
) -> dict[int, int]:
    """The next free trial number of each row in this epoch (0 for a first upload). The
    caller holds the experiment row locked, so concurrent uploads take turns."""
    out = {row_id: 0 for row_id in row_ids}
    unique = sorted(set(row_ids))
    for start in range(0, len(unique), IN_CHUNK):
        rows = await conn.fetchall(
            MAX_TRIALS,
            {"id": experiment_id, "epoch": epoch, "ids": unique[start : start + IN_CHUNK]},
        )
        for row_id, trial in rows:
            out[row_id] = int(trial) + 1
    return out


@dataclass
class StoredTrial:
    """One uploaded trial, as it is stored."""

    row_id: int
    epoch: int
    trial: int
    prompt_id: int
    messages: list[dict[str, Any]]
    error: str | None
    metadata: GenerationMetadata
    trajectory: str | None  # the raw JSON text, verbatim
    reward: float | None
    steps: int | None
    cost_usd: float | None
    result_metadata: Any


async def insert_trial(conn: Connection, pid: int, experiment_id: int, trial: StoredTrial) -> int:
    """Store one trial as a response of the experiment; its id."""
    meta = trial.metadata
    new_id: int = await conn.insert(
        ADD_RESPONSE,
        {
            "pid": pid,
            "id": experiment_id,
            "prompt_id": trial.prompt_id,
            "row_id": trial.row_id,
            "epoch": trial.epoch,
            "trial": trial.trial,
            "messages": dumps(trial.messages),
            "metadata": dumps(meta),
            "error": trial.error,
            "trajectory": trial.trajectory,
            "input_tokens": meta.input_tokens,
            "output_tokens": meta.output_tokens,
            "duration_seconds": meta.duration_seconds,
            "reward": trial.reward,
            "steps": trial.steps,
            "cost_usd": trial.cost_usd,
            "result_metadata": dumps(trial.result_metadata),
            "ts": utcnow(),
        },
    )
    return new_id


async def add_dropped(conn: Connection, experiment_id: int, dropped: int) -> None:
    """Count trajectories an upload dropped (``Experiment.dropped_trajectories``)."""
    if dropped:
        await conn.execute(ADD_DROPPED, {"id": experiment_id, "dropped": dropped, "ts": utcnow()})


# ---- evaluation -------------------------------------------------------------------------------


@dataclass
class PendingResponse:
    """An uploaded response with the criteria the judge still has to rate."""

    response_id: int
    row_id: int
    prompt: list[dict[str, Any]]
    messages: list[dict[str, Any]]
    trajectory: Any
    criteria: list[dict[str, Any]]  # definition entries: criterion_id, rendered_criterion_str


async def pending(
    conn: Connection, experiment_id: int, definition: Mapping[str, Any], response_ids: Sequence[int]
) -> list[PendingResponse]:
    """Of ``response_ids`` (responses of the experiment), those without an error that lack a
    successful rating for some criterion of their task, with those criteria (in id order)."""
    by_task = {t["task_id"]: t["criteria"] for t in definition.get("tasks", [])}
    unique = sorted(set(response_ids))
    out: list[PendingResponse] = []
    for start in range(0, len(unique), IN_CHUNK):
        chunk = unique[start : start + IN_CHUNK]
        rated: dict[int, set[int]] = {}
        for response_id, criterion_id in await conn.fetchall(RATED, {"ids": chunk}):
            rated.setdefault(response_id, set()).add(criterion_id)
        for row in await conn.fetchall(TO_EVALUATE, {"ids": chunk, "experiment_id": experiment_id}):
            if row["error"] is not None:
                continue
            done = rated.get(row["id"], set())
            missing = [
                c
                for c in by_task.get(row["template_variables_id"], [])
                if c["criterion_id"] not in done
            ]
            if missing:
                out.append(
                    PendingResponse(
                        response_id=row["id"],
                        row_id=row["template_variables_id"],
                        prompt=loads(row["prompt"]) or [],
                        messages=loads(row["messages"]) or [],
                        trajectory=loads(row["trajectory"]),
                        criteria=missing,
                    )
                )
    return out


async def response_ids(conn: Connection, experiment_id: int) -> list[int]:
    """Every response of the experiment, in id order."""
    return [r[0] for r in await conn.fetchall(RESPONSE_IDS, {"id": experiment_id})]


async def rated_criteria(conn: Connection, response_id: int) -> set[int]:
    """The criteria a response has a successful rating for."""
    return {r[1] for r in await conn.fetchall(RATED, {"ids": [response_id]})}


async def is_current_task(conn: Connection, experiment_id: int, task_id: str) -> bool:
    """Whether ``task_id`` is still the experiment's task (an upload may have handed the
    evaluation to a newer one); in a write transaction the row stays locked against uploads."""
    current = await conn.fetchval(CURRENT_TASK_SHARED, {"id": experiment_id})
    return bool(current == task_id)


async def latest_task(conn: Connection, experiment_id: int) -> str | None:
    """The experiment's newest task (running or ended)."""
    value = await conn.fetchval(LATEST_TASK, {"id": experiment_id})
    return None if value is None else str(value)


__all__ = [
    "DEFINITION_VERSION",
    "TASK_COLUMN",
    "PendingResponse",
    "RowState",
    "StoredTrial",
    "add_dropped",
    "check_task_rules",
    "criterion_label",
    "definition_of",
    "freeze_definition",
    "insert_trial",
    "is_current_task",
    "latest_task",
    "next_trials",
    "pending",
    "rated_criteria",
    "response_ids",
    "row_states",
    "task_rule_violation",
]
