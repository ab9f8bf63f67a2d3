"""MULTI_TURN experiments: their sources (a scenario set or a collection of scenarios, and a
persona group), and the conversations a run stores.

A conversation is a response of the experiment for (scenario row, epoch, persona): its
``trial`` is the persona's row id (so the unique key allows one conversation per scenario,
epoch and persona, and a resumed run cannot duplicate one), ``persona_id`` names the persona,
``messages`` hold the whole conversation and ``termination_reason`` why it ended.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import bindparam, insert, select, update

from elluminate.schemas import ColumnTypeEnum, GenerationMetadata

from . import schema as S
from .connection import Connection
from .database import dumps, utcnow

_E, _R, _TV = S.experiments, S.responses, S.template_variables
_ID: Any = bindparam("id")

GOAL = "goal"
OUTCOME = "expected_conversation_outcome"

#: Turn limit of a conversation unless ``agent_config.max_turns`` says otherwise.
DEFAULT_MAX_TURNS = 3
MAX_TURNS_LIMIT = 50

SET_SOURCES = (
    update(_E)
    .where(_E.c.id == _ID)
    .values(scenario_set_id=bindparam("scenario_set_id"), persona_group_id=bindparam("personas"))
)


CONVERSATIONS = select(
    _R.c.id, _R.c.template_variables_id, _R.c.epoch, _R.c.trial, _R.c.error
).where(_R.c.experiment_id == _ID)
SLOT = select(_R.c.id).where(
    _R.c.experiment_id == _ID,
    _R.c.template_variables_id == bindparam("row_id"),
    _R.c.epoch == bindparam("epoch"),
    _R.c.trial == bindparam("trial"),
)
ADD_CONVERSATION = (
    insert(_R)
    .values(
        project_id=bindparam("pid"),
        experiment_id=_ID,
        prompt_id=bindparam("prompt_id"),
        llm_config_id=bindparam("llm_config_id"),
        template_variables_id=bindparam("row_id"),
        epoch=bindparam("epoch"),
        trial=bindparam("persona_id"),
        persona_id=bindparam("persona_id"),
        messages=bindparam("messages"),
        generation_metadata=bindparam("metadata"),
        error=bindparam("error"),
        termination_reason=bindparam("termination_reason"),
        input_tokens=bindparam("input_tokens"),
        output_tokens=bindparam("output_tokens"),
        duration_seconds=bindparam("duration_seconds"),
        created_at=bindparam("ts"),
        updated_at=bindparam("ts"),
    )
    .returning(_R.c.id)
)


def max_turns_of(agent_config: Any) -> int:
    """The turn limit an experiment's ``agent_config`` sets (ValueError saying what to fix)."""
    value = (agent_config or {}).get("max_turns", DEFAULT_MAX_TURNS)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(
            f"agent_config.max_turns must be an integer from 1 to {MAX_TURNS_LIMIT}, "
            f"not {value!r}"
        )
    if not 1 <= value <= MAX_TURNS_LIMIT:
        raise ValueError(
            f"agent_config.max_turns must be from 1 to {MAX_TURNS_LIMIT}; {value} is out of range"
        )
    return value


def goal_column(column_types: Mapping[str, str]) -> str | None:
    """The column holding a scenario's goal: ``goal``, else the first PERSONA_GOAL column."""
    if GOAL in column_types:
        return GOAL
    for name, column_type in column_types.items():
        if column_type == ColumnTypeEnum.PERSONA_GOAL.value:
            return name
    return None


def scenario_columns_problem(column_types: Mapping[str, str]) -> str | None:
    """Why a collection cannot be the scenarios of a MULTI_TURN experiment (None: it can)."""
    missing = []
    if goal_column(column_types) is None:
        missing.append("a 'goal' (or persona_goal) column")
    if OUTCOME not in column_types:
        missing.append(f"an {OUTCOME!r} column")
    if not missing:
        return None
    return (
        "the scenarios of a MULTI_TURN experiment need "
        + " and ".join(missing)
        + " (or use a scenario set: scenario_set_id)"
    )


async def set_sources(
    conn: Connection, experiment_id: int, scenario_set_id: int | None, persona_group_id: int | None
) -> None:
    await conn.execute(
        SET_SOURCES,
        {"id": experiment_id, "scenario_set_id": scenario_set_id, "personas": persona_group_id},
    )


async def conversations(conn: Connection, experiment_id: int) -> list[Any]:
    """``(id, row id, epoch, persona id, error)`` of every conversation of the experiment."""
    return await conn.fetchall(CONVERSATIONS, {"id": experiment_id})


async def insert_conversation(
    conn: Connection,
    project_id: int,
    experiment_id: int,
    prompt_id: int,
    *,
    row_id: int,
    epoch: int,
    persona_id: int,
    messages: list[dict[str, Any]],
    metadata: GenerationMetadata,
    error: str | None,
    termination_reason: str,
    llm_config_id: int | None,
) -> int | None:
    """Store a conversation (in the caller's transaction); None when the (scenario, epoch,
    persona) already has one (a resumed run got there first)."""
    params = {"id": experiment_id, "row_id": row_id, "epoch": epoch, "trial": persona_id}
    if await conn.fetchval(SLOT, params) is not None:
        return None
    new_id: int = await conn.insert(
        ADD_CONVERSATION,
        {
            "pid": project_id,
            "id": experiment_id,
            "prompt_id": prompt_id,
            "llm_config_id": llm_config_id,
            "row_id": row_id,
            "epoch": epoch,
            "persona_id": persona_id,
            "messages": dumps(messages),
            "metadata": dumps(metadata),
            "error": error,
            "termination_reason": termination_reason,
            "input_tokens": metadata.input_tokens,
            "output_tokens": metadata.output_tokens,
            "duration_seconds": metadata.duration_seconds,
            "ts": utcnow(),
        },
    )
    return new_id


__all__ = [
    "DEFAULT_MAX_TURNS",
    "GOAL",
    "MAX_TURNS_LIMIT",
    "OUTCOME",
    "conversations",
    "goal_column",
    "insert_conversation",
    "max_turns_of",
    "scenario_columns_problem",
    "set_sources",
]
