"""Reading tasks as any replica serves them: a task's state, its log (whole, after a cursor
or since a consumer's previous poll) and its status object (CONTRACT.md 5.2). Everything is
read from the database, so a replica serves the tasks another one runs."""

from __future__ import annotations

from typing import Any

from elluminate.schemas import TaskStatus

from ..store import tasks as store
from ..store.connection import Store
from .task_state import TaskState, state_from_row

#: States the official SDK's blocking waits do not understand (they only end on
#: SUCCESS/FAILURE); polls without ``connection_uuid`` see them as FAILURE.
COMPAT_FAILURE = frozenset({"REVOKED", "REJECTED", "TIMEOUT"})


class TaskReader:
    """Reads tasks from the database (a :class:`~.engine.TaskEngine` also runs them)."""

    def __init__(self, db: Store) -> None:
        self.db = db

    async def get(self, project_id: int | None, task_id: str) -> TaskState | None:
        """The task (of ``project_id`` when given), or None."""
        async with self.db.connect() as conn:
            row = await store.task_row(conn, task_id, project_id)
        return None if row is None else state_from_row(row)

    async def logs(self, task_id: str) -> str:
        """A task's whole log."""
        async with self.db.connect() as conn:
            text, _ = await store.lines_after(conn, task_id, 0)
        return text

    async def logs_since(self, task_id: str, cursor: int) -> tuple[str, int]:
        """The log text after ``cursor`` (a line id) and the new cursor."""
        async with self.db.connect() as conn:
            return await store.lines_after(conn, task_id, cursor)

    async def last_log_id(self, task_id: str) -> int:
        """The id of the task's last log line (changes whenever a line is added)."""
        async with self.db.connect() as conn:
            return await store.last_line_id(conn, task_id)

    async def logs_delta(self, state: TaskState, consumer: str | None) -> str:
        """Log text since the consumer's previous call (the whole log without a consumer);
        the consumer's cursor is stored, so any replica serves its next poll."""
        if not consumer:
            return await self.logs(state.id)
        async with self.db.begin() as conn:
            return await store.read_for(conn, state.id, consumer)

    async def payload(
        self,
        state: TaskState | None,
        *,
        consumer: str | None = None,
        logs_delta: str | None = None,
        compat: bool = False,
    ) -> dict[str, Any]:
        """The status object of CONTRACT.md 5.2 (``{"status": "PENDING"}`` for no task).

        ``compat``: report REVOKED/REJECTED/TIMEOUT as FAILURE (the official SDK's blocking
        waits only end on SUCCESS/FAILURE); the real state is kept in ``task_status``.
        """
        if state is None:
            return {"status": TaskStatus.PENDING.value}
        delta = logs_delta if logs_delta is not None else await self.logs_delta(state, consumer)
        body: dict[str, Any] = {
            "status": state.status,
            "error_msg": state.error_msg,
            "completed_responses": state.completed_responses,
            "completed_ratings": state.completed_ratings,
            "total_responses": state.total_responses,
            "logs_delta": delta,
        }
        if compat and state.status in COMPAT_FAILURE:
            body["status"] = TaskStatus.FAILURE.value
            body["task_status"] = state.status
            body["error_msg"] = f"{state.status}: {state.error_msg}"
        return body


__all__ = ["COMPAT_FAILURE", "TaskReader"]
