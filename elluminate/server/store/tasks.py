"""Tasks, their logs and log cursors, and the replicas that run them.

A task row is the whole truth about a task: any replica can read its state, claim it when it
is free (PENDING, or STARTED with no owner or an expired lease), renew its lease, and write
its end. Every write on behalf of a task names the claim it holds (``fence``, raised by one
on each claim): a replica that lost its lease can no longer write.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, delete, func, insert, or_, select, update

from elluminate.schemas import TaskStatus

from . import schema as S
from .connection import Connection, UniqueViolation
from .database import utcnow

_T, _L, _C, _R = S.tasks, S.task_logs, S.task_cursors, S.replicas
_ID: Any = bindparam("id")
LIVE = (TaskStatus.PENDING.value, TaskStatus.STARTED.value)

ADD_TASK = insert(_T).values(
    id=_ID,
    kind=bindparam("kind"),
    project_id=bindparam("pid"),
    experiment_id=bindparam("experiment_id"),
    status=bindparam("status"),
    error_msg=bindparam("error_msg"),
    payload=bindparam("payload"),
    created_at=bindparam("ts"),
    finished_at=bindparam("finished_at"),
)
TASK = select(_T).where(_T.c.id == _ID)
TASK_OF_PROJECT = select(_T).where(_T.c.id == _ID, _T.c.project_id == bindparam("pid"))
UNFINISHED_COUNT = select(func.count()).where(_T.c.status.in_(LIVE))
_free = and_(
    _T.c.status.in_(LIVE),
    or_(_T.c.owner.is_(None), _T.c.lease_expires_at < bindparam("now")),
)
NEXT_FREE = (
    select(_T.c.id)
    .where(_free)
    .order_by(_T.c.created_at, _T.c.id)
    .limit(1)
    .with_for_update(skip_locked=True)  # PostgreSQL: replicas claim different rows
)
CLAIM = (
    update(_T)
    .where(_T.c.id == _ID, _free)
    .values(
        owner=bindparam("owner"),
        fence=_T.c.fence + 1,
        status=TaskStatus.STARTED.value,
        started_at=func.coalesce(_T.c.started_at, bindparam("now")),
        lease_expires_at=bindparam("lease"),
    )
    .returning(*_T.c)
)
RENEW = (
    update(_T)
    .where(
        _T.c.id.in_(bindparam("ids", expanding=True)),
        _T.c.owner == bindparam("owner"),
        _T.c.status == TaskStatus.STARTED.value,
    )
    .values(lease_expires_at=bindparam("lease"))
    .returning(_T.c.id, _T.c.fence, _T.c.cancel_requested, _T.c.cancel_reason)
)
FENCE_CHECK = (
    select(_T.c.id)
    .where(_T.c.id == _ID, _T.c.fence == bindparam("fence"), _T.c.owner == bindparam("owner"))
    .with_for_update()  # PostgreSQL: a claim by another replica waits for this transaction
)
RELEASE = (
    update(_T)
    .where(_T.c.id == _ID, _T.c.fence == bindparam("fence"), _T.c.owner == bindparam("holder"))
    .values(owner=None, lease_expires_at=None)
)
RELEASE_ALL_STARTED = (
    update(_T)
    .where(_T.c.status == TaskStatus.STARTED.value)
    .values(owner=None, lease_expires_at=None)
)
FINISH = (
    update(_T)
    .where(_T.c.id == _ID, _T.c.status.in_(LIVE))
    .values(
        status=bindparam("status"),
        error_msg=bindparam("error_msg"),
        finished_at=bindparam("now"),
        owner=None,
        lease_expires_at=None,
    )
)
REQUEST_CANCEL = (
    update(_T)
    .where(_T.c.id == _ID, _T.c.status.in_(LIVE))
    .values(cancel_requested=True, cancel_reason=bindparam("reason"))
)
CANCEL_UNCLAIMED = (
    select(_T.c.id)
    .where(_T.c.id == _ID, _T.c.status == TaskStatus.PENDING.value, _T.c.owner.is_(None))
    .with_for_update()
)
SET_TOTAL = update(_T).where(_T.c.id == _ID).values(total_responses=bindparam("total"))
ADD_PROGRESS = (
    update(_T)
    .where(_T.c.id == _ID)
    .values(
        completed_responses=_T.c.completed_responses + bindparam("responses"),
        completed_ratings=_T.c.completed_ratings + bindparam("ratings"),
    )
)
RESET_PROGRESS = (
    update(_T)
    .where(_T.c.id == _ID)
    .values(completed_responses=0, completed_ratings=0, total_responses=bindparam("total"))
)
SET_RESULT = update(_T).where(_T.c.id == _ID).values(result=bindparam("result"))

ADD_LINE = insert(_L).values(task_id=_ID, line=bindparam("line"))
LINES_AFTER = (
    select(_L.c.id, _L.c.line)
    .where(_L.c.task_id == _ID, _L.c.id > bindparam("after"))
    .order_by(_L.c.id)
)
LAST_LINE = select(func.max(_L.c.id)).where(_L.c.task_id == _ID)
LOG_SIZE = select(func.count(), func.coalesce(func.sum(func.length(_L.c.line)), 0)).where(
    _L.c.task_id == _ID
)
CURSOR = select(_C.c.last_log_id).where(_C.c.task_id == _ID, _C.c.consumer == bindparam("who"))
MOVE_CURSOR = (
    update(_C)
    .where(_C.c.task_id == _ID, _C.c.consumer == bindparam("who"))
    .values(last_log_id=bindparam("last"))
)
ADD_CURSOR = insert(_C).values(
    task_id=_ID, consumer=bindparam("who"), last_log_id=bindparam("last")
)

ADD_REPLICA = insert(_R).values(
    id=_ID,
    host=bindparam("host"),
    pid=bindparam("pid"),
    started_at=bindparam("now"),
    heartbeat_at=bindparam("now"),
    permits=0,
    demand=0,
)
REPLICAS = select(_R).order_by(_R.c.started_at, _R.c.id).with_for_update()
BEAT = (
    update(_R)
    .where(_R.c.id == _ID)
    .values(heartbeat_at=bindparam("now"), permits=bindparam("permits"), demand=bindparam("demand"))
)
REMOVE_REPLICA = delete(_R).where(_R.c.id == _ID)
REMOVE_DEAD_REPLICAS = delete(_R).where(_R.c.heartbeat_at < bindparam("before"))


async def add_task(
    conn: Connection,
    *,
    task_id: str,
    kind: str,
    project_id: int,
    experiment_id: int | None,
    status: str,
    error_msg: str | None,
    payload: str | None,
    created_at: datetime,
    finished_at: datetime | None,
) -> None:
    """Store a new task (PENDING, or already REJECTED)."""
    await conn.execute(
        ADD_TASK,
        {
            "id": task_id,
            "kind": kind,
            "pid": project_id,
            "experiment_id": experiment_id,
            "status": status,
            "error_msg": error_msg,
            "payload": payload,
            "ts": created_at,
            "finished_at": finished_at,
        },
    )


async def unfinished_count(conn: Connection) -> int:
    """How many tasks are PENDING or STARTED (in every replica)."""
    return int(await conn.fetchval(UNFINISHED_COUNT) or 0)


async def task_row(conn: Connection, task_id: str, project_id: int | None = None) -> Any:
    """A task's row (of ``project_id`` when given), or None."""
    if project_id is None:
        return await conn.fetchone(TASK, {"id": task_id})
    return await conn.fetchone(TASK_OF_PROJECT, {"id": task_id, "pid": project_id})


async def claim_next(conn: Connection, owner: str, lease_seconds: float) -> Any:
    """Claim the oldest free task for ``owner`` (in a transaction); its new row, or None."""
    moment = utcnow()
    task_id = await conn.fetchval(NEXT_FREE, {"now": moment})
    if task_id is None:
        return None
    return await conn.fetchone(
        CLAIM,
        {
            "id": task_id,
            "owner": owner,
            "now": moment,
            "lease": moment + timedelta(seconds=lease_seconds),
        },
    )


async def renew_leases(
    conn: Connection, owner: str, task_ids: Sequence[str], lease_seconds: float
) -> list[Any]:
    """Extend the leases of the tasks ``owner`` runs (``task_ids``; a claim it no longer
    runs is left to expire, so another replica takes it): ``(id, fence, cancel_requested,
    cancel_reason)`` of each task it still holds."""
    lease = utcnow() + timedelta(seconds=lease_seconds)
    return await conn.fetchall(RENEW, {"ids": list(task_ids), "owner": owner, "lease": lease})


async def holds(conn: Connection, task_id: str, owner: str, fence: int) -> bool:
    """Whether ``owner`` still holds its claim ``fence`` on the task (locks the row)."""
    found = await conn.fetchval(FENCE_CHECK, {"id": task_id, "owner": owner, "fence": fence})
    return found is not None


async def release(conn: Connection, task_id: str, owner: str, fence: int) -> bool:
    """Give a claimed task back (it stays STARTED; the next claim resumes it)."""
    return await conn.execute(RELEASE, {"id": task_id, "holder": owner, "fence": fence}) == 1


async def release_all_started(conn: Connection) -> int:
    """Free every STARTED task (SQLite start: the previous server is gone)."""
    return await conn.execute(RELEASE_ALL_STARTED)


async def finish(conn: Connection, task_id: str, status: str, error_msg: str | None) -> bool:
    """Record a task's end (once: False when it had ended already)."""
    changed = await conn.execute(
        FINISH, {"id": task_id, "status": status, "error_msg": error_msg, "now": utcnow()}
    )
    return changed == 1


async def request_cancel(conn: Connection, task_id: str, reason: str) -> bool:
    """Set the cancel flag of a live task (its owner honours it)."""
    return await conn.execute(REQUEST_CANCEL, {"id": task_id, "reason": reason}) == 1


async def lock_if_unclaimed(conn: Connection, task_id: str) -> bool:
    """Whether the task is PENDING with no owner (locked, so it can be revoked at once)."""
    return await conn.fetchval(CANCEL_UNCLAIMED, {"id": task_id}) is not None


async def set_total(conn: Connection, task_id: str, total: int) -> None:
    await conn.execute(SET_TOTAL, {"id": task_id, "total": total})


async def reset_progress(conn: Connection, task_id: str, total: int) -> None:
    await conn.execute(RESET_PROGRESS, {"id": task_id, "total": total})


async def add_progress(conn: Connection, task_id: str, responses: int, ratings: int) -> None:
    await conn.execute(ADD_PROGRESS, {"id": task_id, "responses": responses, "ratings": ratings})


async def set_result(conn: Connection, task_id: str, result: str | None) -> None:
    await conn.execute(SET_RESULT, {"id": task_id, "result": result})


# ---- logs -------------------------------------------------------------------------------------


async def append_line(conn: Connection, task_id: str, line: str) -> None:
    """Append one log line (one INSERT, whatever the log's size)."""
    await conn.execute(ADD_LINE, {"id": task_id, "line": line})


async def lines_after(conn: Connection, task_id: str, after: int = 0) -> tuple[str, int]:
    """The log text after line id ``after``, and the id of its last line (the new cursor)."""
    rows = await conn.fetchall(LINES_AFTER, {"id": task_id, "after": after})
    if not rows:
        return "", after
    return "".join(r[1] for r in rows), int(rows[-1][0])


async def last_line_id(conn: Connection, task_id: str) -> int:
    """The id of a task's last log line (0 without lines)."""
    return int(await conn.fetchval(LAST_LINE, {"id": task_id}) or 0)


async def log_size(conn: Connection, task_id: str) -> tuple[int, int]:
    """(lines, characters) of a task's log."""
    row = await conn.fetchone(LOG_SIZE, {"id": task_id})
    return (0, 0) if row is None else (int(row[0]), int(row[1]))


async def read_for(conn: Connection, task_id: str, consumer: str) -> str:
    """The log text since ``consumer``'s previous read, moving its cursor (in a transaction)."""
    after = await conn.fetchval(CURSOR, {"id": task_id, "who": consumer})
    text, last = await lines_after(conn, task_id, int(after or 0))
    params = {"id": task_id, "who": consumer, "last": last}
    if after is None:
        with contextlib.suppress(UniqueViolation):  # a concurrent first read of the same
            async with conn.savepoint():
                await conn.execute(ADD_CURSOR, params)
    elif last != after:
        await conn.execute(MOVE_CURSOR, params)
    return text


# ---- replicas ---------------------------------------------------------------------------------


async def add_replica(conn: Connection, replica_id: str, host: str, pid: int) -> None:
    await conn.execute(ADD_REPLICA, {"id": replica_id, "host": host, "pid": pid, "now": utcnow()})


async def locked_replicas(conn: Connection) -> list[Any]:
    """Every replica row, locked (PostgreSQL) so that shares are computed one at a time."""
    return await conn.fetchall(REPLICAS)


async def heartbeat(conn: Connection, replica_id: str, permits: int, demand: int) -> None:
    await conn.execute(
        BEAT, {"id": replica_id, "now": utcnow(), "permits": permits, "demand": demand}
    )


async def remove_replica(conn: Connection, replica_id: str) -> None:
    await conn.execute(REMOVE_REPLICA, {"id": replica_id})


async def remove_dead_replicas(conn: Connection, before: datetime) -> int:
    return await conn.execute(REMOVE_DEAD_REPLICAS, {"before": before})
