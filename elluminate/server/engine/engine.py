"""The task engine: background work (experiment runs, response and rating batches) in-process.

States (CONTRACT.md 5.3): ``PENDING`` (created, not yet running) -> ``STARTED`` -> one of
``SUCCESS`` / ``FAILURE`` / ``REVOKED`` / ``REJECTED`` / ``TIMEOUT``; ``REJECTED`` may also be
the first state (queue full). Every status change is written to the ``tasks`` table at once
(small transactions, never an ``await`` inside), so a restart never loses one; progress
counters only grow and are written together with the rows they count.

* :meth:`TaskEngine.submit` stores the task and starts an ``asyncio`` task for it at once:
  many tasks run concurrently. What bounds the load is ONE semaphore shared by every LLM call
  of every task and of the synchronous endpoints (:meth:`TaskEngine.llm`), sized
  ``config.max_concurrency``. At most ``config.max_queued_tasks`` tasks may be unfinished: a
  submit beyond that creates the task directly in ``REJECTED`` ("queue full (N tasks)").
* A handler raising :class:`TaskRejected` ends ``REJECTED`` (invalid config found at start),
  :class:`TaskFailed` ends ``FAILURE`` with its message, anything else unexpected ends
  ``FAILURE`` ("internal error: ..."). ``config.task_timeout`` seconds -> ``TIMEOUT``;
  :meth:`TaskEngine.cancel` -> ``REVOKED``; server shutdown -> ``REVOKED`` ("server shut
  down"). On startup, tasks left ``PENDING``/``STARTED`` by a crash become ``FAILURE``
  ("interrupted by a server restart; use retry-failed") and their experiments are released.
* Watchers (SSE streams) get an :class:`asyncio.Event` per task from :meth:`TaskEngine.changed`;
  the engine sets it on every change, so a stream reacts within milliseconds.
* Logs: one ``task_logs`` row per line (an append is one INSERT whatever the log's size);
  ``logs_delta``: each consumer (``connection_uuid`` query parameter, or one SSE stream) has a
  cursor (a line number) into the task's log; a poll without ``connection_uuid`` gets the
  whole log. When an experiment's task ends, its log is copied once into the experiment.
* Handlers run their work through :func:`elluminate._taskgroup.run_all` (structured): an
  unexpected error cancels and awaits the sibling workers before the task records its end.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, TypeVar

from elluminate.schemas import TaskStatus

from ..config import ServerConfig
from ..store.database import Database, dumps, loads, now

if TYPE_CHECKING:
    from ..evaluation.registry import Providers

log = logging.getLogger("elluminate.server.engine.engine")

T = TypeVar("T")

#: Concurrent LLM calls by provider kind when the config does not say.
DEFAULT_CONCURRENCY = {"local": 1, "openai": 8, "echo": 256}
TERMINAL = frozenset(s.value for s in TaskStatus if s.is_terminal)
LIVE = (TaskStatus.PENDING.value, TaskStatus.STARTED.value)
RESTART_MESSAGE = "interrupted by a server restart; use retry-failed"
RESTART_MESSAGE_BATCH = "interrupted by a server restart; submit the batch again"
SHUTDOWN_MESSAGE = "server shut down"
CANCEL_MESSAGE = "cancelled by the user"
#: A task's log is bounded; the line that would cross the bound says so and ends it.
MAX_LOG_CHARS = 2 * 1024 * 1024
MAX_CURSORS = 10_000
#: States the official SDK's blocking waits do not understand (they only end on
#: SUCCESS/FAILURE); polls without ``connection_uuid`` see them as FAILURE.
COMPAT_FAILURE = frozenset({"REVOKED", "REJECTED", "TIMEOUT"})


class TaskRejected(Exception):
    """Raised by a handler before doing any work: the task ends ``REJECTED`` with the reason."""


class TaskFailed(Exception):
    """Raised by a handler when the task cannot proceed: ends ``FAILURE`` with the message."""


def effective_concurrency(config: ServerConfig) -> int:
    """``config.max_concurrency``, or the provider kind's default when it is ``None``."""
    value = getattr(config, "max_concurrency", None)
    if value is None:
        return DEFAULT_CONCURRENCY.get(config.llm, 4)
    return max(1, int(value))


@dataclass
class TaskState:
    """One task as the engine and the status endpoints see it."""

    id: str
    kind: str
    project_id: int
    experiment_id: int | None
    status: str = TaskStatus.PENDING.value
    error_msg: str | None = None
    completed_responses: int = 0
    completed_ratings: int = 0
    total_responses: int = 0
    log_lines: list[str] = field(default_factory=list)
    log_chars: int = 0
    payload: Any = None
    result: Any = None
    created_at: str = ""
    started_at: str | None = None
    finished_at: str | None = None

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL

    @property
    def logs(self) -> str:
        """The whole log text."""
        return "".join(self.log_lines)

    def logs_since(self, cursor: int) -> tuple[str, int]:
        """The log text after line ``cursor`` and the cursor after it."""
        return "".join(self.log_lines[cursor:]), len(self.log_lines)

    def key(self) -> tuple[Any, ...]:
        """What a status event shows (a change of any part is worth a new event)."""
        return (
            self.status,
            self.error_msg,
            self.completed_responses,
            self.completed_ratings,
            self.total_responses,
            len(self.log_lines),
        )


def _state_from_row(row: Any, log_lines: list[str]) -> TaskState:
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
        log_lines=log_lines,
        log_chars=sum(map(len, log_lines)),
        payload=loads(row["payload"]),
        result=loads(row["result"]),
        created_at=row["created_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
    )


class TaskContext:
    """What a handler gets: its task, the server's resources, progress and log helpers."""

    def __init__(self, engine: TaskEngine, state: TaskState) -> None:
        self.engine = engine
        self.state = state
        self.db = engine.db
        self.config = engine.config
        self.providers = engine.providers

    @property
    def task_id(self) -> str:
        return self.state.id

    @property
    def payload(self) -> Any:
        return self.state.payload

    @property
    def concurrency(self) -> int:
        """Size of the shared LLM semaphore (how many workers are worth running)."""
        return self.engine.concurrency

    def log(self, message: str) -> None:
        """Append a line to the task log (persisted; visible as ``logs_delta``)."""
        self.engine.append_log(self.state, message)

    def set_total(self, total: int) -> None:
        """Set ``total_responses`` (the amount of planned work)."""
        with self.db.transaction():
            self.db.execute(
                "UPDATE tasks SET total_responses = ? WHERE id = ?", (total, self.task_id)
            )
        self.state.total_responses = total
        self.engine.notify(self.task_id)

    def progress(self, *, responses: int = 0, ratings: int = 0) -> None:
        """Add to the counters. May run inside the caller's transaction (it joins it), so the
        counter is committed together with the rows it counts."""
        if not responses and not ratings:
            return
        with self.db.transaction():
            self.db.execute(
                "UPDATE tasks SET completed_responses = completed_responses + ?, "
                "completed_ratings = completed_ratings + ? WHERE id = ?",
                (responses, ratings, self.task_id),
            )
        self.state.completed_responses += responses
        self.state.completed_ratings += ratings
        self.engine.notify(self.task_id)

    def set_result(self, result: Any) -> None:
        """Store a JSON result on the task row (e.g. the ids a batch created)."""
        with self.db.transaction():
            self.db.execute(
                "UPDATE tasks SET result = ? WHERE id = ?", (dumps(result), self.task_id)
            )
        self.state.result = result

    async def llm(self, call: Callable[[], Awaitable[T]]) -> T:
        """Run one LLM call under the shared semaphore."""
        return await self.engine.llm(call)


Handler = Callable[[TaskContext], Awaitable[None]]


@dataclass
class _Live:
    state: TaskState
    task: asyncio.Task[None] | None = None
    revoke_reason: str | None = None
    timed_out: bool = False


class TaskEngine:
    """Runs handlers as asyncio tasks, persists their states, bounds their LLM calls."""

    def __init__(
        self,
        db: Database,
        config: ServerConfig,
        providers: Providers | None = None,
        handlers: dict[str, Handler] | None = None,
    ) -> None:
        self.db = db
        self.config = config
        self.providers = providers
        self.handlers: dict[str, Handler] = dict(handlers or {})
        self.concurrency = effective_concurrency(config)
        self._semaphore: asyncio.Semaphore | None = None
        self._live: dict[str, _Live] = {}
        self._events: dict[str, asyncio.Event] = {}
        self._cursors: OrderedDict[tuple[str, str], int] = OrderedDict()
        self._closed = False

    # -- lifecycle ----------------------------------------------------------------------

    def register(self, kind: str, handler: Handler) -> None:
        """Declare the coroutine that runs tasks of ``kind``."""
        self.handlers[kind] = handler

    def start(self) -> int:
        """Recover from a crash (see :meth:`recover`) and get ready; returns the recovered count."""
        self._closed = False
        self._semaphore = asyncio.Semaphore(self.concurrency)
        return self.recover()

    def recover(self) -> int:
        """Tasks left PENDING/STARTED in the database (a crash) become FAILURE; their
        experiments are released (``generation_task_id`` cleared, ``has_internal_error`` set)."""
        ts = now()
        with self.db.transaction():
            rows = self.db.fetchall(
                "SELECT id, kind, experiment_id FROM tasks WHERE status IN (?, ?)", LIVE
            )
            for row in rows:
                message = RESTART_MESSAGE if row["kind"] == "experiment" else RESTART_MESSAGE_BATCH
                self.db.execute(
                    "UPDATE tasks SET status = ?, error_msg = ?, finished_at = ? WHERE id = ?",
                    (TaskStatus.FAILURE.value, message, ts, row["id"]),
                )
                lines = self._stored_log_lines(row["id"])
                self._insert_log_line(row["id"], len(lines), _log_line(message))
                self.db.execute(
                    "UPDATE experiments SET generation_task_id = NULL, has_internal_error = 1, "
                    "logs = ?, finished_at = ?, updated_at = ? WHERE generation_task_id = ?",
                    ("".join(lines) + _log_line(message), ts, ts, row["id"]),
                )
        if rows:
            log.warning("%d task(s) interrupted by the previous shutdown marked FAILURE", len(rows))
        return len(rows)

    async def shutdown(self, timeout: float = 10.0) -> None:
        """Revoke every unfinished task ("server shut down") and wait for them to stop."""
        self._closed = True
        lives = list(self._live.values())
        for live in lives:
            live.revoke_reason = live.revoke_reason or SHUTDOWN_MESSAGE
            if live.task is not None:
                live.task.cancel()
        tasks = [live.task for live in lives if live.task is not None]
        if tasks:
            await asyncio.wait(tasks, timeout=timeout)
        for live in lives:  # tasks cancelled before their first step never ran their handler
            if not live.state.terminal:
                self._finish(live, TaskStatus.REVOKED.value, live.revoke_reason or SHUTDOWN_MESSAGE)
        if lives:
            log.info("%d running task(s) revoked on shutdown", len(lives))

    # -- LLM calls ----------------------------------------------------------------------

    @property
    def semaphore(self) -> asyncio.Semaphore:
        if self._semaphore is None:
            self._semaphore = asyncio.Semaphore(self.concurrency)
        return self._semaphore

    async def llm(self, call: Callable[[], Awaitable[T]]) -> T:
        """Run one LLM call under the semaphore shared by all tasks and endpoints."""
        async with self.semaphore:
            return await call()

    # -- submitting and cancelling ---------------------------------------------------------

    def unfinished(self) -> int:
        """How many tasks are PENDING or STARTED."""
        return len(self._live)

    def submit(
        self, kind: str, project_id: int, experiment_id: int | None, payload: Any
    ) -> TaskState:
        """Store a new task and start it; returns its state (``REJECTED`` when the queue is
        full). Call it inside the request's transaction to commit the task with its objects:
        the task body only starts after the caller yields to the event loop."""
        if kind not in self.handlers:
            raise ValueError(f"no handler for task kind {kind!r}")
        task_id = str(uuid.uuid4())
        state = TaskState(
            id=task_id,
            kind=kind,
            project_id=project_id,
            experiment_id=experiment_id,
            payload=payload,
            created_at=now(),
        )
        busy = self.unfinished()
        if self._closed or busy >= self.config.max_queued_tasks:
            state.status = TaskStatus.REJECTED.value
            state.error_msg = SHUTDOWN_MESSAGE if self._closed else f"queue full ({busy} tasks)"
            state.finished_at = state.created_at
            state.log_lines = [_log_line(f"rejected: {state.error_msg}")]
            state.log_chars = len(state.log_lines[0])
        with self.db.transaction():
            self.db.execute(
                "INSERT INTO tasks (id, kind, project_id, experiment_id, status, error_msg, "
                "payload, created_at, finished_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    task_id,
                    kind,
                    project_id,
                    experiment_id,
                    state.status,
                    state.error_msg,
                    dumps(payload),
                    state.created_at,
                    state.finished_at,
                ),
            )
            for seq, line in enumerate(state.log_lines):
                self._insert_log_line(task_id, seq, line)
        if state.terminal:
            log.warning("task %s (%s) rejected: %s", task_id, kind, state.error_msg)
            return state
        live = self._live[task_id] = _Live(state)
        live.task = asyncio.get_running_loop().create_task(self._run(live), name=f"task-{task_id}")
        log.debug("task %s (%s) submitted", task_id, kind)
        return state

    async def cancel(
        self, task_id: str, reason: str = CANCEL_MESSAGE, *, wait: float = 10.0
    ) -> bool:
        """Revoke a running task and wait (up to ``wait`` s) until it is REVOKED.

        Returns False when the task is not running (unknown or finished).
        """
        live = self._live.get(task_id)
        if live is None:
            return False
        live.revoke_reason = live.revoke_reason or reason
        if live.task is not None:
            live.task.cancel()
            _, pending = await asyncio.wait([live.task], timeout=wait)
            if pending:  # pragma: no cover - a handler ignoring cancellation
                log.error("task %s did not stop within %.1f s of its cancellation", task_id, wait)
        if not live.state.terminal:
            self._finish(live, TaskStatus.REVOKED.value, live.revoke_reason)
        return True

    def is_running(self, task_id: str | None) -> bool:
        return task_id is not None and task_id in self._live

    # -- running ------------------------------------------------------------------------

    async def _run(self, live: _Live) -> None:
        state = live.state
        dropped = False
        try:
            exists = self.db.fetchval("SELECT 1 FROM tasks WHERE id = ?", (state.id,))
            if not exists:  # the submitting transaction was rolled back
                dropped = True
                self._live.pop(state.id, None)
                return
            state.status = TaskStatus.STARTED.value
            state.started_at = now()
            with self.db.transaction():
                self.db.execute(
                    "UPDATE tasks SET status = ?, started_at = ? WHERE id = ?",
                    (state.status, state.started_at, state.id),
                )
            self.notify(state.id)
            handler = self.handlers[state.kind]
            ctx = TaskContext(self, state)
            status, message = TaskStatus.SUCCESS.value, None
            timer = asyncio.get_running_loop().call_later(
                self.config.task_timeout, self._expire, live
            )
            try:
                await handler(ctx)
            except TaskRejected as exc:
                status, message = TaskStatus.REJECTED.value, str(exc)
            except TaskFailed as exc:
                status, message = TaskStatus.FAILURE.value, str(exc)
            except asyncio.CancelledError:
                if live.timed_out:
                    status = TaskStatus.TIMEOUT.value
                    message = (
                        f"timed out: the task ran longer than task_timeout "
                        f"({self.config.task_timeout:g} s) and was stopped after "
                        f"{state.completed_responses} of {state.total_responses} responses"
                    )
                else:
                    status = TaskStatus.REVOKED.value
                    message = live.revoke_reason or CANCEL_MESSAGE
            except Exception as exc:
                log.exception("task %s (%s) failed with an unexpected error", state.id, state.kind)
                status = TaskStatus.FAILURE.value
                message = f"internal error: {type(exc).__name__}: {exc}"
            finally:
                timer.cancel()
            self._finish(live, status, message)
        except asyncio.CancelledError:  # cancelled before the handler started
            self._finish(live, TaskStatus.REVOKED.value, live.revoke_reason or CANCEL_MESSAGE)
        finally:
            if not state.terminal and not dropped:  # e.g. the database failed while finishing
                state.status = TaskStatus.FAILURE.value
                state.error_msg = state.error_msg or "internal error while finishing the task"
                self._live.pop(state.id, None)
                self.notify(state.id, final=True)

    def _expire(self, live: _Live) -> None:
        """``task_timeout`` elapsed: stop the task (it ends TIMEOUT)."""
        if live.task is not None and not live.state.terminal and live.revoke_reason is None:
            live.timed_out = True
            live.task.cancel()

    def _finish(self, live: _Live, status: str, message: str | None) -> None:
        """Persist the terminal state and release the experiment (idempotent)."""
        state = live.state
        if state.terminal:
            return
        ts = now()
        if message:
            self.append_log(state, f"{status}: {message}", notify=False)
        elif status == TaskStatus.SUCCESS.value:
            self.append_log(state, "finished", notify=False)
        with self.db.transaction():
            self.db.execute(
                "UPDATE tasks SET status = ?, error_msg = ?, finished_at = ? WHERE id = ?",
                (status, message, ts, state.id),
            )
            if state.experiment_id is not None and state.kind == "experiment":
                self.db.execute(
                    "UPDATE experiments SET generation_task_id = NULL, has_internal_error = ?, "
                    "logs = ?, finished_at = ?, updated_at = ? "
                    "WHERE id = ? AND generation_task_id = ?",
                    (
                        int(status != TaskStatus.SUCCESS.value),
                        state.logs,
                        ts,
                        ts,
                        state.experiment_id,
                        state.id,
                    ),
                )
        state.status, state.error_msg, state.finished_at = status, message, ts
        self._live.pop(state.id, None)
        level = logging.INFO if status == TaskStatus.SUCCESS.value else logging.WARNING
        log.log(
            level,
            "task %s (%s) ended %s%s",
            state.id,
            state.kind,
            status,
            f": {message}" if message else "",
        )
        self.notify(state.id, final=True)

    # -- logs and notifications -------------------------------------------------------------

    def append_log(self, state: TaskState, message: str, *, notify: bool = True) -> None:
        """Append a timestamped line to a task's log (bounded to MAX_LOG_CHARS).

        One INSERT of one row per line: the cost of an append does not grow with the log.
        """
        if state.log_chars >= MAX_LOG_CHARS:
            return
        line = _log_line(message)
        if state.log_chars + len(line) >= MAX_LOG_CHARS:
            line = _log_line("log truncated: further lines are dropped")
            state.log_chars = MAX_LOG_CHARS
        else:
            state.log_chars += len(line)
        seq = len(state.log_lines)
        state.log_lines.append(line)
        with self.db.transaction():
            self._insert_log_line(state.id, seq, line)
        if notify:
            self.notify(state.id)

    def _insert_log_line(self, task_id: str, seq: int, line: str) -> None:
        del seq  # lines are ordered by their row id
        self.db.execute("INSERT INTO task_logs (task_id, line) VALUES (?, ?)", (task_id, line))

    def _stored_log_lines(self, task_id: str) -> list[str]:
        return [
            r[0]
            for r in self.db.fetchall(
                "SELECT line FROM task_logs WHERE task_id = ? ORDER BY id", (task_id,)
            )
        ]

    def notify(self, task_id: str, *, final: bool = False) -> None:
        """Wake every watcher of ``task_id``."""
        event = self._events.pop(task_id, None) if final else self._events.get(task_id)
        if event is not None:
            event.set()
            if not final:
                self._events[task_id] = asyncio.Event()

    def changed(self, task_id: str) -> asyncio.Event:
        """An event set at the task's next change. Take it BEFORE reading the state."""
        if task_id not in self._live:
            return asyncio.Event()  # nothing will change: the caller's timeout decides
        event = self._events.get(task_id)
        if event is None or event.is_set():
            event = self._events[task_id] = asyncio.Event()
        return event

    # -- reading --------------------------------------------------------------------------

    def get(self, project_id: int, task_id: str) -> TaskState | None:
        """The task if it exists in this project (memory for running tasks, else the db)."""
        live = self._live.get(task_id)
        if live is not None:
            return live.state if live.state.project_id == project_id else None
        row = self.db.fetchone(
            "SELECT * FROM tasks WHERE id = ? AND project_id = ?", (task_id, project_id)
        )
        return None if row is None else _state_from_row(row, self._stored_log_lines(task_id))

    def logs_delta(self, state: TaskState, consumer: str | None) -> str:
        """Log text since the consumer's previous call (the whole log without a consumer);
        a consumer's cursor is a line number."""
        if not consumer:
            return state.logs
        key = (state.id, consumer)
        text, self._cursors[key] = state.logs_since(self._cursors.pop(key, 0))
        while len(self._cursors) > MAX_CURSORS:
            self._cursors.popitem(last=False)
        return text

    def payload(
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
        delta = logs_delta if logs_delta is not None else self.logs_delta(state, consumer)
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


def _log_line(message: str) -> str:
    stamp = datetime.now(timezone.utc).strftime("%H:%M:%S")
    return f"[{stamp}] {message.rstrip()}\n"
