"""The task engine: background work (experiment runs, response and rating batches) that any
replica can run, with its state in the database.

States (CONTRACT.md 5.3): ``PENDING`` -> ``STARTED`` -> one of ``SUCCESS`` / ``FAILURE`` /
``REVOKED`` / ``REJECTED`` / ``TIMEOUT``; ``REJECTED`` may also be the first state (queue full).

* :meth:`TaskEngine.submit` stores a task row in the caller's transaction and wakes the
  replicas. Each replica's claim loop takes free tasks (PENDING, or STARTED without a live
  owner) with a lease (``--lease-seconds``) and runs their handler; the claim skips rows
  another replica has locked (``store.tasks.claim_next``), so replicas of one PostgreSQL
  claim different tasks. A heartbeat renews the leases of the tasks a replica runs. A
  replica that dies stops renewing; once the lease has run out another replica claims the
  task and its handler resumes from what is stored (work is planned from the stored rows;
  one response per (experiment, row, epoch)). The leases, and each replica's share of the
  LLM call limit, are kept by :class:`~.leases.LeaseKeeper`.
* Fencing: each claim raises the task's ``fence``. Every write of a handler runs in
  :meth:`~.task_context.TaskContext.write`, which first checks (and on PostgreSQL locks)
  that this replica still holds that claim; a replica that lost its lease gets
  :class:`~.task_context.LeaseLost` and stops, so a slow old owner and the new one never
  both write.
* Cancellation is a flag in the row (:meth:`TaskEngine.cancel`), seen by the owner at once
  through a notification, and at the latest at its next heartbeat (every second).
* A handler raising :class:`~.task_context.TaskRejected` ends ``REJECTED``,
  :class:`~.task_context.TaskFailed` ``FAILURE`` with its message, anything else unexpected
  ``FAILURE`` ("internal error: ..."); ``config.task_timeout`` seconds after its first start
  -> ``TIMEOUT``.
* Shutdown releases the tasks a replica runs (they stay STARTED without an owner), so another
  replica, or this server once restarted, resumes them. On SQLite one server holds the file,
  so at start every STARTED task is free to claim.
* Progress and logs are in the database, so any replica serves polls and SSE streams
  (:class:`~.task_reader.TaskReader`); watchers are woken by notifications (PostgreSQL
  ``LISTEN/NOTIFY``, in-process on SQLite) and poll as a fallback.
* LLM calls of every task and endpoint go through one :class:`~.limiter.Limiter` whose size
  is this replica's share of ``--max-concurrency`` across replicas.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from elluminate.schemas import TaskStatus

from ..config import ServerConfig
from ..store import experiments as experiment_store
from ..store import tasks as store
from ..store.connection import Connection, Store
from ..store.database import dumps, utcnow
from .leases import HeldTask, LeaseKeeper
from .limiter import Limiter
from .task_context import Handler, LeaseLost, TaskContext, TaskFailed, TaskRejected
from .task_reader import TaskReader
from .task_state import TERMINAL, TaskState, log_line, state_from_row

if TYPE_CHECKING:
    from ..evaluation.registry import Providers

log = logging.getLogger("elluminate.server.engine")

T = TypeVar("T")

#: Concurrent LLM calls by provider kind when the config does not say.
DEFAULT_CONCURRENCY = {"local": 1, "openai": 8, "echo": 256}
SHUTDOWN_MESSAGE = "server shut down"
CANCEL_MESSAGE = "cancelled by the user"
#: Notification channels: a task changed (payload: its id), a task may be claimed, cancel.
TASK_CHANNEL = "elluminate_task"
WORK_CHANNEL = "elluminate_work"
CANCEL_CHANNEL = "elluminate_cancel"
#: Seconds between change notifications of one task (its end is always notified).
NOTIFY_EVERY = 0.05


def effective_concurrency(config: ServerConfig) -> int:
    """``config.max_concurrency``, or the provider kind's default when it is ``None``."""
    value = getattr(config, "max_concurrency", None)
    if value is None:
        return DEFAULT_CONCURRENCY.get(config.llm, 4)
    return max(1, int(value))


class TaskEngine(TaskReader):
    """Claims, runs and finishes tasks (and reads them, as a :class:`TaskReader`); see the
    module docstring."""

    def __init__(
        self,
        db: Store,
        config: ServerConfig,
        providers: Providers | None = None,
        handlers: dict[str, Handler] | None = None,
    ) -> None:
        super().__init__(db)
        self.config = config
        self.providers = providers
        self.handlers: dict[str, Handler] = dict(handlers or {})
        self.replica_id = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.limit = effective_concurrency(config)
        self.limiter = Limiter(self.limit)
        self.lease_seconds = float(getattr(config, "lease_seconds", 30.0))
        self.heartbeat_seconds = min(1.0, self.lease_seconds / 3)
        self.leases = LeaseKeeper(
            db,
            self.replica_id,
            lease_seconds=self.lease_seconds,
            heartbeat_seconds=self.heartbeat_seconds,
            limiter=self.limiter,
            limit=self.limit,
        )
        self._watchers: dict[str, asyncio.Event] = {}
        self._last_notified: dict[str, float] = {}
        self._work = asyncio.Event()
        self._loops: list[asyncio.Task[None]] = []
        self._closed = True

    # -- lifecycle ----------------------------------------------------------------------

    @property
    def concurrency(self) -> int:
        """The LLM call limit (across all replicas)."""
        return self.limit

    def register(self, kind: str, handler: Handler) -> None:
        """Declare the coroutine that runs tasks of ``kind``."""
        self.handlers[kind] = handler

    async def start(self) -> None:
        """Join the replicas, free orphaned tasks (SQLite) and start claiming."""
        if not self._closed:
            return
        self._closed = False
        await self.db.listen(TASK_CHANNEL, self._on_task_changed)
        await self.db.listen(WORK_CHANNEL, lambda _payload: self._work.set())
        await self.db.listen(CANCEL_CHANNEL, self._on_cancel)
        await self.leases.join(shared=self.db.dialect_name != "sqlite")
        self._work.set()
        loop = asyncio.get_running_loop()
        self._loops = [
            loop.create_task(self._claim_loop(), name="elluminate-claim"),
            loop.create_task(self.leases.run(), name="elluminate-heartbeat"),
        ]

    async def shutdown(self, timeout: float = 10.0) -> None:
        """Stop claiming; give the running tasks back (another replica, or this server
        after a restart, resumes them)."""
        if self._closed:
            return
        self._closed = True
        for loop_task in self._loops:
            loop_task.cancel()
        await asyncio.gather(*self._loops, return_exceptions=True)
        self._loops = []
        running = list(self.leases.held.values())
        for item in running:
            item.stop_reason = item.stop_reason or "release"
            if item.task is not None:
                item.task.cancel()
        tasks = [item.task for item in running if item.task is not None]
        if tasks:
            await asyncio.wait(tasks, timeout=timeout)
        with contextlib.suppress(Exception):
            async with self.db.begin() as conn:
                if self.leases.shared:
                    await store.remove_replica(conn, self.replica_id)
                if running:
                    conn.notify(WORK_CHANNEL, "")
        if running:
            log.info("%d running task(s) released on shutdown", len(running))

    # -- submitting, cancelling -----------------------------------------------------------

    async def submit(
        self,
        conn: Connection,
        kind: str,
        project_id: int,
        experiment_id: int | None,
        payload: Any,
    ) -> TaskState:
        """Store a new task in the caller's transaction (``REJECTED`` when the queue is full,
        or the server is shutting down); replicas are woken when it commits."""
        if kind not in self.handlers:
            raise ValueError(f"no handler for task kind {kind!r}")
        moment = utcnow()
        state = TaskState(
            id=str(uuid.uuid4()),
            kind=kind,
            project_id=project_id,
            experiment_id=experiment_id,
            payload=payload,
            created_at=moment,
        )
        busy = await store.unfinished_count(conn)
        if self._closed or busy >= self.config.max_queued_tasks:
            state.status = TaskStatus.REJECTED.value
            state.error_msg = SHUTDOWN_MESSAGE if self._closed else f"queue full ({busy} tasks)"
            state.finished_at = moment
        await store.add_task(
            conn,
            task_id=state.id,
            kind=kind,
            project_id=project_id,
            experiment_id=experiment_id,
            status=state.status,
            error_msg=state.error_msg,
            payload=dumps(payload),
            created_at=moment,
            finished_at=state.finished_at,
        )
        if state.terminal:
            await store.append_line(conn, state.id, log_line(f"rejected: {state.error_msg}"))
            log.warning("task %s (%s) rejected: %s", state.id, kind, state.error_msg)
        else:
            conn.notify(WORK_CHANNEL, "")
        return state

    async def cancel(
        self, task_id: str, reason: str = CANCEL_MESSAGE, *, wait: float = 10.0
    ) -> bool:
        """Revoke a live task and wait (up to ``wait`` s) until it has ended.

        Returns False when the task is not live (unknown or ended).
        """
        async with self.db.begin() as conn:
            row = await store.task_row(conn, task_id)
            if row is None or row["status"] in TERMINAL:
                return False
            if await store.lock_if_unclaimed(conn, task_id):  # nobody runs it: end it here
                await self._record_end(conn, state_from_row(row), TaskStatus.REVOKED.value, reason)
                return True
            await store.request_cancel(conn, task_id, reason)
            conn.notify(CANCEL_CHANNEL, task_id)
        self._on_cancel(task_id)
        deadline = asyncio.get_running_loop().time() + wait
        while True:
            event = self.changed(task_id)
            state = await self.get(None, task_id)
            if state is None or state.terminal:
                return True
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                log.error("task %s did not stop within %.1f s of its cancellation", task_id, wait)
                return True
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(event.wait(), min(left, 0.25))

    # -- notifications ----------------------------------------------------------------------

    def changed(self, task_id: str) -> asyncio.Event:
        """An event set at the task's next change. Take it BEFORE reading the state."""
        event = self._watchers.get(task_id)
        if event is None or event.is_set():
            event = self._watchers[task_id] = asyncio.Event()
        return event

    def notify_soon(self, conn: Connection, task_id: str, *, final: bool = False) -> None:
        """Notify watchers of a task change when ``conn`` commits (throttled per task)."""
        now = asyncio.get_running_loop().time()
        if final or now - self._last_notified.get(task_id, -1e9) >= NOTIFY_EVERY:
            self._last_notified[task_id] = now
            conn.notify(TASK_CHANNEL, task_id)
        if final:
            self._last_notified.pop(task_id, None)

    def _on_task_changed(self, task_id: str) -> None:
        event = self._watchers.pop(task_id, None)
        if event is not None:
            event.set()

    def _on_cancel(self, task_id: str) -> None:
        item = self.leases.held.get(task_id)
        if item is not None:
            item.stop("revoke")

    # -- LLM calls ----------------------------------------------------------------------------

    async def llm(self, call: Callable[[], Awaitable[T]]) -> T:
        """Run one LLM call under this replica's share of the limit."""
        return await self.limiter.run(call)

    # -- claiming ---------------------------------------------------------------------------

    async def _claim_loop(self) -> None:
        while not self._closed:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._work.wait(), self.heartbeat_seconds)
            self._work.clear()
            try:
                while not self._closed:
                    async with self.db.begin() as conn:
                        row = await store.claim_next(conn, self.replica_id, self.lease_seconds)
                    if row is None:
                        break
                    self._start(state_from_row(row))
            except Exception:  # pragma: no cover - a database hiccup: try again later
                log.exception("claiming tasks failed")

    # -- running ------------------------------------------------------------------------------

    def _start(self, state: TaskState) -> None:
        if state.id in self.leases.held:
            return
        item = self.leases.held[state.id] = HeldTask(state)
        item.task = asyncio.get_running_loop().create_task(self._run(item), name=f"task-{state.id}")

    async def _run(self, item: HeldTask) -> None:
        state = item.state
        try:
            if state.cancel_requested:
                await self._finish(item, TaskStatus.REVOKED.value, state.cancel_reason)
                return
            async with self.db.connect() as conn:
                _, chars = await store.log_size(conn, state.id)
            ctx = TaskContext(self, state, chars)
            handler = self.handlers.get(state.kind)
            if handler is None:
                await self._finish(
                    item, TaskStatus.FAILURE.value, f"unknown task kind {state.kind!r}"
                )
                return
            started = state.started_at or utcnow()
            left = self.config.task_timeout - (utcnow() - started).total_seconds()
            timer = asyncio.get_running_loop().call_later(max(0.0, left), self._expire, item)
            status, message = TaskStatus.SUCCESS.value, None
            try:
                await handler(ctx)
            except TaskRejected as exc:
                status, message = TaskStatus.REJECTED.value, str(exc)
            except TaskFailed as exc:
                status, message = TaskStatus.FAILURE.value, str(exc)
            except asyncio.CancelledError:
                if item.stop_reason in ("release", "lost", None):
                    if item.stop_reason != "lost":  # shutdown: give it back to be resumed
                        await self._release(item)
                    return
                if item.stop_reason == "timeout":
                    status = TaskStatus.TIMEOUT.value
                    message = (
                        f"timed out: the task ran longer than task_timeout "
                        f"({self.config.task_timeout:g} s) and was stopped after "
                        f"{state.completed_responses} of {state.total_responses} responses"
                    )
                else:
                    status = TaskStatus.REVOKED.value
                    message = await self._cancel_reason(state.id)
            except LeaseLost:
                log.warning("task %s: lease lost, another server resumes it", state.id)
                return
            except Exception as exc:
                log.exception("task %s (%s) failed with an unexpected error", state.id, state.kind)
                status = TaskStatus.FAILURE.value
                message = f"internal error: {type(exc).__name__}: {exc}"
            finally:
                timer.cancel()
            await self._finish(item, status, message)
        except LeaseLost:
            return
        except asyncio.CancelledError:  # cancelled while finishing (shutdown): resume later
            return
        except Exception:  # pragma: no cover - the database failed while finishing
            log.exception("task %s: recording its end failed", state.id)
        finally:
            self.leases.held.pop(state.id, None)
            item.done.set()

    async def _cancel_reason(self, task_id: str) -> str:
        async with self.db.connect() as conn:
            row = await store.task_row(conn, task_id)
        reason = None if row is None else row["cancel_reason"]
        return reason or CANCEL_MESSAGE

    def _expire(self, item: HeldTask) -> None:
        """``task_timeout`` elapsed: stop the task (it ends TIMEOUT)."""
        item.stop("timeout")

    async def _release(self, item: HeldTask) -> None:
        try:
            async with self.db.begin() as conn:
                await store.release(conn, item.state.id, self.replica_id, item.state.fence)
        except Exception:
            log.exception(
                "task %s: giving it back failed (its lease runs out instead)", item.state.id
            )

    async def _finish(self, item: HeldTask, status: str, message: str | None) -> None:
        """Record the end (fenced: only while this replica holds the task)."""
        state = item.state
        async with self.db.begin() as conn:
            if not await store.holds(conn, state.id, self.replica_id, state.fence):
                return
            if message:
                await store.append_line(conn, state.id, log_line(f"{status}: {message}"))
            elif status == TaskStatus.SUCCESS.value:
                await store.append_line(conn, state.id, log_line("finished"))
            await self._record_end(conn, state, status, message)
        state.status, state.error_msg = status, message
        level = logging.INFO if status == TaskStatus.SUCCESS.value else logging.WARNING
        log.log(
            level,
            "task %s (%s) ended %s%s",
            state.id,
            state.kind,
            status,
            f": {message}" if message else "",
        )

    async def _record_end(
        self, conn: Connection, state: TaskState, status: str, message: str | None
    ) -> None:
        """Write a task's end and release its experiment, in ``conn``'s transaction."""
        if not await store.finish(conn, state.id, status, message):
            return
        if state.experiment_id is not None and state.kind == "experiment":
            logs, _ = await store.lines_after(conn, state.id, 0)
            await experiment_store.release_run(
                conn,
                state.experiment_id,
                state.id,
                failed=status != TaskStatus.SUCCESS.value,
                logs=logs,
            )
        self.notify_soon(conn, state.id, final=True)


__all__ = [
    "CANCEL_MESSAGE",
    "DEFAULT_CONCURRENCY",
    "TaskEngine",
    "effective_concurrency",
]
