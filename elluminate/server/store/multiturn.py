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

from sqlalchemy import bindparam, update

from elluminate.schemas import ColumnTypeEnum

from . import schema as S
from .connection import Connection

_E, _R, _TV = S.experiments, S.responses, S.template_variables
_ID: Any = bindparam("id")

GOAL = "goal"
OUTCOME = "expected_conversation_outcome"

SET_SOURCES = (
    update(_E)
    .where(_E.c.id == _ID)
    .values(scenario_set_id=bindparam("scenario_set_id"), persona_group_id=bindparam("personas"))
)


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


__all__ = ["GOAL", "OUTCOME", "goal_column", "scenario_columns_problem", "set_sources"]
