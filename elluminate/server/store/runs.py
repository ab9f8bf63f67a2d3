"""What an experiment run reads: its setup (template, rows, columns, criteria, LLM config) and
the work left (rows x epochs without a response, responses without all their ratings)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, select

from . import schema as S
from .connection import Connection

_ID: Any = bindparam("id")
_TV, _CC, _C, _L = S.template_variables, S.collection_columns, S.criteria, S.criterion_set_criteria
_R, _G = S.responses, S.ratings

EXPERIMENT = select(S.experiments).where(
    S.experiments.c.id == _ID, S.experiments.c.project_id == bindparam("pid")
)
EVALUATION_MODE = select(S.experiments.c.evaluation_mode).where(S.experiments.c.id == _ID)
TEMPLATE = select(S.prompt_templates).where(S.prompt_templates.c.id == _ID)
LIVE_ROWS = (
    select(_TV.c.id, _TV.c.input_values)
    .where(_TV.c.collection_id == _ID, _TV.c.deleted_at.is_(None))
    .order_by(_TV.c.id)
)
COLUMNS = (
    select(_CC.c.name, _CC.c.column_type)
    .where(_CC.c.collection_id == _ID)
    .order_by(_CC.c.column_position, _CC.c.id)
)
COLUMN_NAME = select(_CC.c.name).where(_CC.c.id == _ID)
LLM_CONFIG = select(S.llm_configs).where(S.llm_configs.c.id == _ID)
LIVE_CRITERIA = (
    select(_C.c.id, _C.c.criterion_str, _C.c.template_variables_id)
    .join(_L, _L.c.criterion_id == _C.c.id)
    .where(_L.c.criterion_set_id == _ID, _C.c.deleted_at.is_(None))
    .order_by(_L.c.position, _C.c.id)
)
RESPONSES = select(_R.c.id, _R.c.epoch, _R.c.error, _R.c.template_variables_id).where(
    _R.c.experiment_id == _ID
)
RATED = (
    select(_G.c.response_id, _G.c.criterion_id)
    .join(_R, _R.c.id == _G.c.response_id)
    .where(_R.c.experiment_id == _ID, _G.c.rating.is_not(None))
)


async def experiment(conn: Connection, project_id: int, experiment_id: int) -> Any:
    return await conn.fetchone(EXPERIMENT, {"id": experiment_id, "pid": project_id})


async def evaluation_mode(conn: Connection, experiment_id: int) -> str | None:
    """The experiment's evaluation mode (None when it is gone)."""
    value = await conn.fetchval(EVALUATION_MODE, {"id": experiment_id})
    return None if value is None else str(value)


async def template(conn: Connection, template_id: int) -> Any:
    return await conn.fetchone(TEMPLATE, {"id": template_id})


async def live_rows(conn: Connection, collection_id: int) -> list[Any]:
    """``(id, input_values)`` of the collection's live rows, by id."""
    return await conn.fetchall(LIVE_ROWS, {"id": collection_id})


async def columns(conn: Connection, collection_id: int) -> list[tuple[str, str]]:
    """``(name, column_type)`` of the collection's columns, in column order."""
    return [(r[0], r[1]) for r in await conn.fetchall(COLUMNS, {"id": collection_id})]


async def column_name(conn: Connection, column_id: int) -> str | None:
    value = await conn.fetchval(COLUMN_NAME, {"id": column_id})
    return None if value is None else str(value)


async def llm_config(conn: Connection, config_id: int) -> Any:
    return await conn.fetchone(LLM_CONFIG, {"id": config_id})


async def live_criteria(conn: Connection, set_id: int) -> list[Any]:
    """``(id, criterion_str, template_variables_id)`` of a set's live criteria, in set order."""
    return await conn.fetchall(LIVE_CRITERIA, {"id": set_id})


async def responses(conn: Connection, experiment_id: int) -> list[Any]:
    """``(id, epoch, error, template_variables_id)`` of every response of the experiment."""
    return await conn.fetchall(RESPONSES, {"id": experiment_id})


async def rated_pairs(conn: Connection, experiment_id: int) -> list[Any]:
    """``(response_id, criterion_id)`` of every successful rating of the experiment."""
    return await conn.fetchall(RATED, {"id": experiment_id})
