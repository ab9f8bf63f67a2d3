"""A task as stored: its row as a :class:`TaskState`, the terminal states, its log lines."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from elluminate.schemas import TaskStatus

from ..store.database import loads, ts_or_none

TERMINAL = frozenset(s.value for s in TaskStatus if s.is_terminal)


@dataclass
class TaskState:
    """One task as stored (logs are read separately)."""

    id: str
    kind: str
    project_id: int
    experiment_id: int | None
    status: str = TaskStatus.PENDING.value
    error_msg: str | None = None
    completed_responses: int = 0
    completed_ratings: int = 0
    total_responses: int = 0
    payload: Any = None
    result: Any = None
    created_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    fence: int = 0
    cancel_requested: bool = False
    cancel_reason: str | None = None

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL

    def key(self) -> tuple[Any, ...]:
        """What a status event shows (a change of any part is worth a new event)."""
        return (
            self.status,
            self.error_msg,
            self.completed_responses,
            self.completed_ratings,
            self.total_responses,
        )


def state_from_row(row: Any) -> TaskState:
    """A :class:`TaskState` from a ``tasks`` row."""
    return TaskState(
        id=row["id"],
        kind=row["kind"],
        project_id=row["project_id"],
        experiment_id=row["experiment_id"],
        status=row["status"],
        error_msg=row["error_msg"],
        completed_responses=row["completed_responses"],
        completed_ratings=row["completed_ratings"],
        total_responses=row["total_responses"],
        payload=loads(row["payload"]),
        result=loads(row["result"]),
        created_at=ts_or_none(row["created_at"]),
        started_at=ts_or_none(row["started_at"]),
        finished_at=ts_or_none(row["finished_at"]),
        fence=row["fence"],
        cancel_requested=bool(row["cancel_requested"]),
        cancel_reason=row["cancel_reason"],
    )


def log_line(message: str) -> str:
    """A timestamped log line."""
    stamp = datetime.now(timezone.utc).strftime("%H:%M:%S")
    return f"[{stamp}] {message.rstrip()}\n"


__all__ = ["TERMINAL", "TaskState", "log_line", "state_from_row"]
