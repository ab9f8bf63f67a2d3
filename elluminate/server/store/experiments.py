"""Experiments: rows, their runs' bookkeeping, and the list filters.

``generation_task_id`` is set while a run's task is live (PENDING or STARTED) and cleared in
the transaction that records the task's end; ``deleting`` is set by a delete before it stops
the run, so no run starts again on an experiment about to vanish.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from sqlalchemy import Select, bindparam, delete, exists, func, insert, select, update

from . import schema as S
from .connection import Connection
from .database import utcnow
from .errors import NotFound

_E, _R, _P = S.experiments, S.responses, S.prompts
_ID: Any = bindparam("id")
_PID: Any = bindparam("pid")

EXPERIMENT = select(_E).where(_E.c.id == _ID, _E.c.project_id == _PID)
EXPERIMENT_ANY_PROJECT = select(_E).where(_E.c.id == _ID)
OWNER_OF = select(_E.c.project_id).where(_E.c.id == _ID)
ID_BY_NAME = select(_E.c.id).where(_E.c.project_id == _PID, _E.c.name == bindparam("name"))
ADD = (
    insert(_E)
    .values(
        project_id=_PID,
        name=bindparam("name"),
        description=bindparam("description"),
        prompt_template_id=bindparam("prompt_template_id"),
        collection_id=bindparam("collection_id"),
        criterion_set_id=bindparam("criterion_set_id"),
        llm_config_id=bindparam("llm_config_id"),
        rating_version=bindparam("rating_version"),
        rating_mode=bindparam("rating_mode"),
        n_epochs=bindparam("n_epochs"),
        generation_params=bindparam("generation_params"),
        response_column_id=bindparam("response_column_id"),
        evaluation_mode=bindparam("evaluation_mode"),
        agent_config=bindparam("agent_config"),
        evaluation_agent_config=bindparam("evaluation_agent_config"),
        created_at=bindparam("ts"),
        updated_at=bindparam("ts"),
    )
    .returning(_E.c.id)
)
SET_RUN_PARAMS = (
    update(_E)
    .where(_E.c.id == _ID)
    .values(
        rating_mode=bindparam("rating_mode"),
        n_epochs=bindparam("n_epochs"),
        generation_params=bindparam("generation_params"),
        updated_at=bindparam("ts"),
    )
)
START_RUN = (
    update(_E)
    .where(_E.c.id == _ID)
    .values(
        generation_task_id=bindparam("task_id"),
        has_internal_error=False,
        has_run=True,
        started_at=func.coalesce(_E.c.started_at, bindparam("ts")),
        finished_at=None,
        updated_at=bindparam("ts"),
    )
)
REJECTED_RUN = (
    update(_E)
    .where(_E.c.id == _ID)
    .values(has_internal_error=True, logs=bindparam("logs"), updated_at=bindparam("ts"))
)
RELEASE_RUN = (
    update(_E)
    .where(_E.c.id == _ID, _E.c.generation_task_id == bindparam("task_id"))
    .values(
        generation_task_id=None,
        has_internal_error=bindparam("failed"),
        logs=bindparam("logs"),
        finished_at=bindparam("ts"),
        updated_at=bindparam("ts"),
    )
)
SET_DELETING = update(_E).where(_E.c.id == _ID).values(deleting=True)
DELETE = delete(_E).where(_E.c.id == _ID, _E.c.project_id == _PID)
TOUCH = update(_E).where(_E.c.id == _ID).values(updated_at=bindparam("ts"))
ANNOTATED_FAILURES = select(func.count()).where(
    _R.c.experiment_id == _ID, _R.c.error.is_not(None), _R.c.annotation != ""
)
DELETE_FAILED = delete(_P).where(
    _P.c.id.in_(select(_R.c.prompt_id).where(_R.c.experiment_id == _ID, _R.c.error.is_not(None)))
)
LIVE_ROW_COUNT = select(func.count()).where(
    S.template_variables.c.collection_id == _ID, S.template_variables.c.deleted_at.is_(None)
)
_L, _C = S.criterion_set_criteria, S.criteria
LIVE_CRITERIA_COUNT = (
    select(func.count())
    .select_from(_L.join(_C, _C.c.id == _L.c.criterion_id))
    .where(_L.c.criterion_set_id == _ID, _C.c.deleted_at.is_(None))
)
HAS_LIVE_CRITERIA = select(
    exists().where(
        _L.c.criterion_set_id == _ID, _C.c.id == _L.c.criterion_id, _C.c.deleted_at.is_(None)
    )
)
NAME_OF = {
    "collections": select(S.collections.c.name).where(S.collections.c.id == _ID),
    "criterion_sets": select(S.criterion_sets.c.name).where(S.criterion_sets.c.id == _ID),
}
COLUMNS_OF = select(S.collection_columns.c.name, S.collection_columns.c.column_type).where(
    S.collection_columns.c.collection_id == _ID
)
COLUMN_OF = select(S.collection_columns.c.name, S.collection_columns.c.column_type).where(
    S.collection_columns.c.id == _ID, S.collection_columns.c.collection_id == bindparam("cid")
)
LIVE_SET = select(S.criterion_sets.c.id).where(
    S.criterion_sets.c.id == _ID, S.criterion_sets.c.deleted_at.is_(None)
)


EXPERIMENT_FOR_UPDATE = EXPERIMENT.with_for_update()


async def get(conn: Connection, pid: int, experiment_id: int, *, lock: bool = False) -> Any:
    """The experiment row of this project (NotFound otherwise); ``lock``: FOR UPDATE."""
    stmt = EXPERIMENT_FOR_UPDATE if lock else EXPERIMENT
    row = await conn.fetchone(stmt, {"id": experiment_id, "pid": pid})
    if row is None:
        raise NotFound("experiment", experiment_id)
    return row


async def owner_of(conn: Connection, experiment_id: int) -> int | None:
    """The project of an experiment (None if it does not exist)."""
    value = await conn.fetchval(OWNER_OF, {"id": experiment_id})
    return None if value is None else int(value)


async def id_by_name(conn: Connection, pid: int, name: str) -> int | None:
    value = await conn.fetchval(ID_BY_NAME, {"pid": pid, "name": name})
    return None if value is None else int(value)


async def add(conn: Connection, pid: int, **values: Any) -> int:
    """A new experiment; its id (raises UniqueViolation when the name is taken)."""
    new_id: int = await conn.insert(ADD, {"pid": pid, "ts": utcnow(), **values})
    return new_id


async def set_run_params(
    conn: Connection, experiment_id: int, rating_mode: str, n_epochs: int, params: str | None
) -> None:
    await conn.execute(
        SET_RUN_PARAMS,
        {
            "id": experiment_id,
            "rating_mode": rating_mode,
            "n_epochs": n_epochs,
            "generation_params": params,
            "ts": utcnow(),
        },
    )


async def start_run(conn: Connection, experiment_id: int, task_id: str) -> None:
    """Mark the experiment as running ``task_id``."""
    await conn.execute(START_RUN, {"id": experiment_id, "task_id": task_id, "ts": utcnow()})


async def rejected_run(conn: Connection, experiment_id: int, logs: str) -> None:
    """A run that was rejected at once (queue full): the experiment shows the error."""
    await conn.execute(REJECTED_RUN, {"id": experiment_id, "logs": logs, "ts": utcnow()})


async def release_run(
    conn: Connection, experiment_id: int, task_id: str, *, failed: bool, logs: str
) -> None:
    """The run's task ended: clear the running task, keep its log (once per task)."""
    await conn.execute(
        RELEASE_RUN,
        {"id": experiment_id, "task_id": task_id, "failed": failed, "logs": logs, "ts": utcnow()},
    )


async def set_deleting(conn: Connection, experiment_id: int) -> None:
    await conn.execute(SET_DELETING, {"id": experiment_id})


async def delete_experiment(conn: Connection, pid: int, experiment_id: int) -> None:
    """Delete an experiment with its prompts, responses and ratings (cascades)."""
    await conn.execute(DELETE, {"id": experiment_id, "pid": pid})


async def touch(conn: Connection, experiment_id: int) -> None:
    await conn.execute(TOUCH, {"id": experiment_id, "ts": utcnow()})


async def annotated_failures(conn: Connection, experiment_id: int) -> int:
    return int(await conn.fetchval(ANNOTATED_FAILURES, {"id": experiment_id}) or 0)


async def delete_failed_responses(conn: Connection, experiment_id: int) -> int:
    """Delete the failed responses (with their prompts and ratings); how many."""
    return await conn.execute(DELETE_FAILED, {"id": experiment_id})


async def live_row_count(conn: Connection, collection_id: int) -> int:
    return int(await conn.fetchval(LIVE_ROW_COUNT, {"id": collection_id}) or 0)


async def live_criteria_count(conn: Connection, set_id: int) -> int:
    return int(await conn.fetchval(LIVE_CRITERIA_COUNT, {"id": set_id}) or 0)


async def has_live_criteria(conn: Connection, set_id: int) -> bool:
    return bool(await conn.fetchval(HAS_LIVE_CRITERIA, {"id": set_id}))


async def name_of(conn: Connection, table: str, ident: int) -> str | None:
    """The name of a collection or criterion set (deleted ones too)."""
    value = await conn.fetchval(NAME_OF[table], {"id": ident})
    return None if value is None else str(value)


async def column_types(conn: Connection, collection_id: int) -> dict[str, str]:
    """The collection's columns: name -> column type."""
    return {r[0]: r[1] for r in await conn.fetchall(COLUMNS_OF, {"id": collection_id})}


async def column(conn: Connection, column_id: int, collection_id: int) -> Any:
    """``(name, column_type)`` of a column of the collection, or None."""
    return await conn.fetchone(COLUMN_OF, {"id": column_id, "cid": collection_id})


async def criterion_set_is_live(conn: Connection, set_id: int) -> bool:
    return await conn.fetchval(LIVE_SET, {"id": set_id}) is not None


# ---- the list -------------------------------------------------------------------------------

LIST_FILTERS = ("prompt_template_id", "collection_id", "llm_config_id", "criterion_set_id")


@lru_cache(maxsize=256)
def list_statement(
    ids: tuple[str, ...], name: bool, search: bool, template_name: bool, dates: tuple[str, ...]
) -> Select[Any]:
    """The experiments of ``:pid`` in creation order, with the filters named (memoised per
    shape): ``ids`` of LIST_FILTERS, exact ``:name``, ``:search`` substring (escaped with
    :func:`~.common.like_escaped`), the template's
    ``:template_name``, ``dates`` among ``date_from`` / ``date_to``."""
    stmt = select(_E).where(_E.c.project_id == _PID)
    for key in ids:
        stmt = stmt.where(_E.c[key] == bindparam(key))
    if name:
        stmt = stmt.where(_E.c.name == bindparam("name"))
    if search:
        stmt = stmt.where(_E.c.name.contains(bindparam("search"), escape="\\"))
    if template_name:
        t = S.prompt_templates
        stmt = stmt.where(
            _E.c.prompt_template_id.in_(
                select(t.c.id).where(t.c.project_id == _PID, t.c.name == bindparam("template"))
            )
        )
    if "date_from" in dates:
        stmt = stmt.where(_E.c.created_at >= bindparam("date_from"))
    if "date_to" in dates:
        stmt = stmt.where(_E.c.created_at <= bindparam("date_to"))
    return stmt.order_by(_E.c.created_at, _E.c.id)
