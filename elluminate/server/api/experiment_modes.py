"""The evaluation modes of experiments (CONTRACT.md 4.7): what AGENTIC and MULTI_TURN change in
creating, running and polling an experiment. :mod:`.experiments` calls these.

* **AGENTIC**: over an AGENTIC collection (its TEXT column ``task`` names the tasks); the
  prompt template may be null; the criterion set resolves as usual; ``agent_config`` and
  ``evaluation_agent_config`` are stored as given. Its definition (tasks and criteria) is frozen
  at creation. Responses come from uploads (``POST .../agent-results``), so ``generate=true``
  and ``POST .../run`` answer 400; ``retry-failed`` re-queues the judge for uploaded responses
  whose criteria are not all rated (it deletes nothing).
* **MULTI_TURN**: over a scenario set (``scenario_set_id``; the experiment's ``collection`` is
  the set's read-only backing collection) or a collection with a ``goal`` (or PERSONA_GOAL)
  column and an ``expected_conversation_outcome`` column, exactly one of the two;
  ``persona_group_id`` is required: the id of a PERSONA collection whose rows are the
  simulated users (see :mod:`..engine.multiturn`). The prompt template may be null (it is
  the model's system prompt, rendered with the scenario); ``agent_config.max_turns`` (1 to
  50, default 3) limits the user turns of a conversation.
* ``scenario_set_id`` and ``persona_group_id`` are refused (400) for other modes.

Polling (5.7): the status of an AGENTIC experiment's task names the experiment's current task
in ``generation_task_id``; once none runs, a task of the experiment reports the newest one
(itself when it was the last), so a wait on the task an upload returned ends with that task's
outcome even when it ended before the first poll.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from elluminate.schemas import CollectionType, CreateExperimentRequest, EvaluationMode

from ..engine.task_state import TaskState
from ..store import agent_results as agentic_store
from ..store import experiments as store
from ..store import multiturn as multiturn_store
from ..store import scenarios as scenario_store
from ..store.common import live_row
from ..store.connection import Connection
from .errors import bad_request, unprocessable

AGENTIC, MULTI_TURN, STANDARD = (
    EvaluationMode.AGENTIC,
    EvaluationMode.MULTI_TURN,
    EvaluationMode.STANDARD,
)


@dataclass
class Source:
    """Where an experiment's rows come from."""

    collection: Any  # the collections row (a scenario set's backing collection)
    scenario_set_id: int | None = None
    persona_group_id: int | None = None


def check_request(body: CreateExperimentRequest) -> None:
    """The mode rules that need no database (400 or 422 saying what to fix)."""
    mode = body.evaluation_mode
    if body.scenario_set_id is not None and mode is not MULTI_TURN:
        raise bad_request(
            "scenario_set_id is only for MULTI_TURN experiments (evaluation_mode='MULTI_TURN'); "
            "use collection_id"
        )
    if body.persona_group_id is not None and mode is not MULTI_TURN:
        raise bad_request(
            "persona_group_id is only for MULTI_TURN experiments (evaluation_mode='MULTI_TURN')"
        )
    if mode is MULTI_TURN:
        if body.persona_group_id is None:
            raise bad_request(
                "persona_group_id is required for a MULTI_TURN experiment: the id of a PERSONA "
                "collection whose rows are the simulated users"
            )
        if (body.collection_id is None) == (body.scenario_set_id is None):
            raise bad_request(
                "a MULTI_TURN experiment runs over exactly one of scenario_set_id or collection_id"
            )
        try:
            multiturn_store.max_turns_of(body.agent_config)
        except ValueError as exc:
            raise bad_request(str(exc)) from None
    elif body.collection_id is None:
        raise unprocessable("collection_id is required")
    if mode is not STANDARD and body.response_column_id is not None:
        raise bad_request(f"response_column_id is only for STANDARD experiments, not {mode.value}")
    if mode is AGENTIC and body.generate:
        raise bad_request(
            "an AGENTIC experiment gets its responses from agent-result uploads: create it "
            "with generate=false, then POST .../experiments/{id}/agent-results"
        )


async def resolve_source(conn: Connection, pid: int, body: CreateExperimentRequest) -> Source:
    """The experiment's collection (404 for another project's ids, 400 for a wrong kind)."""
    mode = body.evaluation_mode
    if body.scenario_set_id is not None:
        scenario_set = await scenario_store.set_row(conn, pid, body.scenario_set_id)
        source = Source(
            await scenario_store.backing_collection(conn, scenario_set), scenario_set["id"]
        )
    else:
        assert body.collection_id is not None
        source = Source(await live_row(conn, "collections", "collection", pid, body.collection_id))
    collection = source.collection
    if mode is AGENTIC:
        if collection["collection_type"] != CollectionType.AGENTIC.value:
            raise bad_request(
                f"collection {collection['name']!r} is a {collection['collection_type']} "
                "collection; an AGENTIC experiment needs an AGENTIC collection (its TEXT column "
                "'task' names the tasks)"
            )
        problem = await agentic_store.check_task_rules(conn, collection)
        if problem is None and not await store.live_row_count(conn, collection["id"]):
            problem = "it has no tasks: add rows with a 'task' value first"
        if problem is not None:
            raise bad_request(f"collection {collection['name']!r}: {problem}")
    if mode is MULTI_TURN:
        assert body.persona_group_id is not None
        personas = await live_row(
            conn, "collections", "persona group (collection)", pid, body.persona_group_id
        )
        if personas["collection_type"] != CollectionType.PERSONA.value:
            raise bad_request(
                f"persona_group_id {personas['id']} is the {personas['collection_type']} "
                f"collection {personas['name']!r}; use a PERSONA collection (collection_type "
                "'PERSONA', one row per simulated user)"
            )
        if source.scenario_set_id is None:
            problem = multiturn_store.scenario_columns_problem(
                await store.column_types(conn, collection["id"])
            )
            if problem is not None:
                raise bad_request(f"collection {collection['name']!r}: {problem}")
        source.persona_group_id = personas["id"]
    return source


async def after_create(
    conn: Connection,
    experiment_id: int,
    body: CreateExperimentRequest,
    source: Source,
    criterion_set_id: int,
) -> None:
    """Store what the mode adds to a new experiment (in the create's transaction)."""
    if body.evaluation_mode is AGENTIC:
        await agentic_store.freeze_definition(
            conn, experiment_id, source.collection["id"], criterion_set_id
        )
    elif body.evaluation_mode is MULTI_TURN:
        await multiturn_store.set_sources(
            conn, experiment_id, source.scenario_set_id, source.persona_group_id
        )


async def check_runnable(conn: Connection, exp: Any) -> None:
    """400 for a run of an AGENTIC experiment; 422 for a MULTI_TURN one without personas."""
    mode = exp["evaluation_mode"]
    if mode == AGENTIC.value:
        raise bad_request(
            f"experiment {exp['name']!r} is AGENTIC: its responses come from uploads "
            "(POST .../agent-results), which start the judge themselves"
        )
    if mode == MULTI_TURN.value and exp["persona_group_id"] is not None:
        if not await store.live_row_count(conn, exp["persona_group_id"]):
            name = await store.name_of(conn, "collections", exp["persona_group_id"])
            raise unprocessable(
                f"persona group {name!r} (id {exp['persona_group_id']}) has no personas: add "
                "rows (one per simulated user) before running the experiment"
            )


async def agentic_retry(conn: Connection, exp: Any) -> list[int]:
    """The uploaded responses of an AGENTIC experiment whose criteria are not all rated."""
    definition = agentic_store.definition_of(exp)
    ids = await agentic_store.response_ids(conn, exp["id"])
    waiting = await agentic_store.pending(conn, exp["id"], definition, ids)
    return [p.response_id for p in waiting]


async def reported_task(conn: Connection, exp: Any, requested: TaskState | None) -> str | None:
    """``generation_task_id`` of a status payload for a task of ``exp`` (see the module
    docstring): the current task, or for AGENTIC experiments running none, the newest task
    when the requested one is the experiment's."""
    current: str | None = exp["generation_task_id"]
    if current is not None or exp["evaluation_mode"] != AGENTIC.value or requested is None:
        return current
    return await agentic_store.latest_task(conn, exp["id"])


__all__ = [
    "Source",
    "after_create",
    "agentic_retry",
    "check_request",
    "check_runnable",
    "reported_task",
    "resolve_source",
]
