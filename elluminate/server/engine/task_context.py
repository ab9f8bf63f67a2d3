"""What a task handler works with: its :class:`TaskContext` (the claimed task, the server's
resources, fenced writes, progress and log lines) and the exceptions that end a task.

Fencing: each claim raises the task's ``fence``. Every write of a handler runs in
:meth:`TaskContext.write`, which first checks (and on PostgreSQL locks) that this replica
still holds that claim; a replica that lost its lease gets :class:`LeaseLost` and stops, so
a slow old owner and the new one never both write.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from ..store import tasks as store
from ..store.connection import Connection
from ..store.database import dumps
from .task_state import TaskState, log_line

if TYPE_CHECKING:
    from .engine import TaskEngine

T = TypeVar("T")

#: A task's log is bounded; the line that would cross the bound says so and ends it.
MAX_LOG_CHARS = 2 * 1024 * 1024


class TaskRejected(Exception):
    """Raised by a handler before doing any work: the task ends ``REJECTED`` with the reason."""


class TaskFailed(Exception):
    """Raised by a handler when the task cannot proceed: ends ``FAILURE`` with the message."""


class LeaseLost(Exception):
    """This replica no longer holds the task (its lease ran out and another claimed it)."""


class TaskContext:
    """What a handler gets: its claimed task, the server's resources, fenced writes."""

    def __init__(self, engine: TaskEngine, state: TaskState, log_chars: int) -> None:
        self.engine = engine
        self.state = state
        self.db = engine.db
        self.config = engine.config
        self.providers = engine.providers
        self._log_chars = log_chars

    @property
    def task_id(self) -> str:
        return self.state.id

    @property
    def payload(self) -> Any:
        return self.state.payload

    @property
    def resumed(self) -> bool:
        """Whether an earlier claim of this task ran before (a resume after a crash,
        a shutdown or a lost lease)."""
        return self.state.fence > 1

    @property
    def concurrency(self) -> int:
        """How many workers are worth running (the LLM call limit)."""
        return self.engine.concurrency

    @contextlib.asynccontextmanager
    async def write(self) -> AsyncIterator[Connection]:
        """A transaction for this task's writes: it first checks that this replica still
        holds the task (:class:`LeaseLost` otherwise, nothing written).

        First, not at the end: on PostgreSQL the check locks the task row, and every writer
        of a task's rows takes that lock before the others (an upload of agent results
        does too); a check at the end would invert that order and deadlock."""
        async with self.db.begin() as conn:
            if not await store.holds(conn, self.task_id, self.engine.replica_id, self.state.fence):
                raise LeaseLost(f"task {self.task_id}: this server no longer holds it")
            yield conn
            self.engine.notify_soon(conn, self.task_id)

    async def progress(self, conn: Connection, *, responses: int = 0, ratings: int = 0) -> None:
        """Add to the counters, in the caller's :meth:`write` transaction (committed with
        the rows they count)."""
        if responses or ratings:
            await store.add_progress(conn, self.task_id, responses, ratings)
            self.state.completed_responses += responses
            self.state.completed_ratings += ratings

    async def set_total(self, total: int) -> None:
        """Set ``total_responses`` (the amount of planned work)."""
        async with self.write() as conn:
            await store.set_total(conn, self.task_id, total)
        self.state.total_responses = total

    async def reset_progress(self, total: int) -> None:
        """Start the counters again from zero (a batch that redoes its work on resume)."""
        async with self.write() as conn:
            await store.reset_progress(conn, self.task_id, total)
        self.state.completed_responses = self.state.completed_ratings = 0
        self.state.total_responses = total

    async def set_result(self, result: Any) -> None:
        """Store a JSON result on the task row (e.g. the ids a batch created)."""
        async with self.write() as conn:
            await store.set_result(conn, self.task_id, dumps(result))
        self.state.result = result

    async def log(self, message: str) -> None:
        """Append a line to the task log (bounded to MAX_LOG_CHARS)."""
        if self._log_chars >= MAX_LOG_CHARS:
            return
        line = log_line(message)
        if self._log_chars + len(line) >= MAX_LOG_CHARS:
            line = log_line("log truncated: further lines are dropped")
            self._log_chars = MAX_LOG_CHARS
        else:
            self._log_chars += len(line)
        async with self.write() as conn:
            await store.append_line(conn, self.task_id, line)

    async def llm(self, call: Callable[[], Awaitable[T]]) -> T:
        """Run one LLM call under this replica's share of the LLM call limit."""
        return await self.engine.llm(call)


Handler = Callable[[TaskContext], Awaitable[None]]


__all__ = [
    "MAX_LOG_CHARS",
    "Handler",
    "LeaseLost",
    "TaskContext",
    "TaskFailed",
    "TaskRejected",
]
