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
  one response per (experiment, row, epoch)).
* Fencing: each claim raises the task's ``fence``. Every write of a handler runs in
  :meth:`TaskContext.write`, which first checks (and on PostgreSQL locks) that this replica
  still holds that claim; a replica that lost its lease gets :class:`LeaseLost` and stops,
  so a slow old owner and the new one never both write.
* Cancellation is a flag in the row (:meth:`TaskEngine.cancel`), seen by the owner at once
  through a notification, and at the latest at its next heartbeat (every second).
* A handler raising :class:`TaskRejected` ends ``REJECTED``, :class:`TaskFailed` ``FAILURE``
  with its message, anything else unexpected ``FAILURE`` ("internal error: ...");
  ``config.task_timeout`` seconds after its first start -> ``TIMEOUT``.
* Shutdown releases the tasks a replica runs (they stay STARTED without an owner), so another
  replica, or this server once restarted, resumes them. On SQLite one server holds the file,
  so at start every STARTED task is free to claim.
* Progress and logs are in the database, so any replica serves polls and SSE streams; watchers
  are woken by notifications (PostgreSQL ``LISTEN/NOTIFY``, in-process on SQLite) and poll
  as a fallback.
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
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, TypeVar

from elluminate.schemas import TaskStatus

from ..config import ServerConfig
from ..store import experiments as experiment_store
from ..store import tasks as store
from ..store.connection import Connection, Store
from ..store.database import dumps, loads, ts_or_none, utcnow
from .limiter import Limiter, next_permits, shares

if TYPE_CHECKING:
    from ..evaluation.registry import Providers

log = logging.getLogger("elluminate.server.engine")

T = TypeVar("T")

#: Concurrent LLM calls by provider kind when the config does not say.
DEFAULT_CONCURRENCY = {"local": 1, "openai": 8, "echo": 256}
TERMINAL = frozenset(s.value for s in TaskStatus if s.is_terminal)
SHUTDOWN_MESSAGE = "server shut down"
CANCEL_MESSAGE = "cancelled by the user"
#: A task's log is bounded; the line that would cross the bound says so and ends it.
MAX_LOG_CHARS = 2 * 1024 * 1024
#: States the official SDK's blocking waits do not understand (they only end on
#: SUCCESS/FAILURE); polls without ``connection_uuid`` see them as FAILURE.
COMPAT_FAILURE = frozenset({"REVOKED", "REJECTED", "TIMEOUT"})
#: Notification channels: a task changed (payload: its id), a task may be claimed, cancel.
TASK_CHANNEL = "elluminate_task"
WORK_CHANNEL = "elluminate_work"
CANCEL_CHANNEL = "elluminate_cancel"
#: Seconds between change notifications of one task (its end is always notified).
NOTIFY_EVERY = 0.05


class TaskRejected(Exception):
    """Raised by a handler before doing any work: the task ends ``REJECTED`` with the reason."""


class TaskFailed(Exception):
    """Raised by a handler when the task cannot proceed: ends ``FAILURE`` with the message."""


class LeaseLost(Exception):
    """This replica no longer holds the task (its lease ran out and another claimed it)."""


def effective_concurrency(config: ServerConfig) -> int:
    """``config.max_concurrency``, or the provider kind's default when it is ``None``."""
    value = getattr(config, "max_concurrency", None)
    if value is None:
        return DEFAULT_CONCURRENCY.get(config.llm, 4)
    return max(1, int(value))


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
        holds the task (:class:`LeaseLost` otherwise, nothing written)."""
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


@dataclass
class _Running:
    state: TaskState
    task: asyncio.Task[None] | None = None
    stop_reason: str | None = None  # "revoke", "timeout", "release", "lost"
    revoke_message: str | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)


class TaskEngine:
    """Claims, runs and finishes tasks; see the module docstring."""

    def __init__(
        self,
        db: Store,
        config: ServerConfig,
        providers: Providers | None = None,
        handlers: dict[str, Handler] | None = None,
    ) -> None:
        self.db = db
        self.config = config
        self.providers = providers
        self.handlers: dict[str, Handler] = dict(handlers or {})
        self.replica_id = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.limit = effective_concurrency(config)
        self.limiter = Limiter(self.limit)
        self.lease_seconds = float(getattr(config, "lease_seconds", 30.0))
        self.heartbeat_seconds = min(1.0, self.lease_seconds / 3)
        self._running: dict[str, _Running] = {}
        self._watchers: dict[str, asyncio.Event] = {}
        self._last_notified: dict[str, float] = {}
        self._work = asyncio.Event()
        self._loops: list[asyncio.Task[None]] = []
        self._closed = True
        self._shared = False  # several replicas may share the database (PostgreSQL)
        self._share_requested = asyncio.Event()

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
        self._shared = self.db.dialect_name != "sqlite"
        async with self.db.begin() as conn:
            if not self._shared:  # one server per SQLite file: nobody else runs its tasks
                freed = await store.release_all_started(conn)
                if freed:
                    log.warning("%d task(s) interrupted by the previous shutdown resume", freed)
            else:
                await store.add_replica(conn, self.replica_id, socket.gethostname(), os.getpid())
        if self._shared:  # replicas share the limit (an idle SQLite server writes nothing)
            self.limiter.resize(0)
            self.limiter.on_starved = self._share_requested.set
            await self._rebalance()
        else:
            self.limiter.resize(self.limit)
        self._work.set()
        loop = asyncio.get_running_loop()
        self._loops = [
            loop.create_task(self._claim_loop(), name="elluminate-claim"),
            loop.create_task(self._heartbeat_loop(), name="elluminate-heartbeat"),
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
        running = list(self._running.values())
        for item in running:
            item.stop_reason = item.stop_reason or "release"
            if item.task is not None:
                item.task.cancel()
        tasks = [item.task for item in running if item.task is not None]
        if tasks:
            await asyncio.wait(tasks, timeout=timeout)
        with contextlib.suppress(Exception):
            async with self.db.begin() as conn:
                if self._shared:
                    await store.remove_replica(conn, self.replica_id)
                if running:
                    conn.notify(WORK_CHANNEL, "")
        if running:
            log.info("%d running task(s) released on shutdown", len(running))

    # -- submitting, cancelling, reading ---------------------------------------------------

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
        item = self._running.get(task_id)
        if item is not None and item.task is not None and item.stop_reason is None:
            item.stop_reason = "revoke"
            item.task.cancel()

    # -- LLM calls ----------------------------------------------------------------------------

    async def llm(self, call: Callable[[], Awaitable[T]]) -> T:
        """Run one LLM call under this replica's share of the limit."""
        return await self.limiter.run(call)

    async def _rebalance(self) -> None:
        """Record this replica's demand and take its share of the LLM call limit."""
        dead_before = utcnow() - timedelta(seconds=max(3 * self.heartbeat_seconds, 5.0))
        async with self.db.begin() as conn:
            await store.remove_dead_replicas(conn, dead_before)
            rows = await store.locked_replicas(conn)
            demand = self.limiter.demand
            demands = [demand if r["id"] == self.replica_id else int(r["demand"]) for r in rows]
            mine = next((i for i, r in enumerate(rows) if r["id"] == self.replica_id), None)
            if mine is None:  # removed as dead (a long pause): join again
                await store.add_replica(conn, self.replica_id, socket.gethostname(), os.getpid())
                rows = await store.locked_replicas(conn)
                demands = [demand if r["id"] == self.replica_id else int(r["demand"]) for r in rows]
                mine = next(i for i, r in enumerate(rows) if r["id"] == self.replica_id)
            fair = shares(self.limit, demands)
            held_by_others = sum(int(r["permits"]) for i, r in enumerate(rows) if i != mine)
            permits = next_permits(
                current=self.limiter.size,
                target=fair[mine],
                in_flight=self.limiter.in_flight,
                limit=self.limit,
                held_by_others=held_by_others,
            )
            await store.heartbeat(conn, self.replica_id, permits, demand)
        self.limiter.resize(permits)

    # -- loops --------------------------------------------------------------------------------

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

    async def _heartbeat_loop(self) -> None:
        while not self._closed:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._share_requested.wait(), self.heartbeat_seconds)
            self._share_requested.clear()
            try:
                await self._beat()
            except Exception:  # pragma: no cover - a database hiccup: try again
                log.exception("heartbeat failed")

    async def _beat(self) -> None:
        # Judge only the tasks that were running when the leases were renewed: one claimed
        # meanwhile is not in the answer and has not lost anything.
        running = dict(self._running)
        if running:
            async with self.db.begin() as conn:
                held = await store.renew_leases(
                    conn, self.replica_id, list(running), self.lease_seconds
                )
            fences = {r["id"]: (r["fence"], bool(r["cancel_requested"])) for r in held}
            for task_id, item in running.items():
                if item.done.is_set():
                    continue
                found = fences.get(task_id)
                if found is None or found[0] != item.state.fence:
                    if item.stop_reason is None and item.task is not None:
                        log.warning("task %s: lease lost, another server resumes it", task_id)
                        item.stop_reason = "lost"
                        item.task.cancel()
                elif found[1]:
                    self._on_cancel(task_id)
        if self._shared:
            await self._rebalance()

    # -- running ------------------------------------------------------------------------------

    def _start(self, state: TaskState) -> None:
        if state.id in self._running:
            return
        item = self._running[state.id] = _Running(state)
        item.task = asyncio.get_running_loop().create_task(self._run(item), name=f"task-{state.id}")

    async def _run(self, item: _Running) -> None:
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
            self._running.pop(state.id, None)
            item.done.set()

    async def _cancel_reason(self, task_id: str) -> str:
        async with self.db.connect() as conn:
            row = await store.task_row(conn, task_id)
        reason = None if row is None else row["cancel_reason"]
        return reason or CANCEL_MESSAGE

    def _expire(self, item: _Running) -> None:
        """``task_timeout`` elapsed: stop the task (it ends TIMEOUT)."""
        if item.task is not None and item.stop_reason is None:
            item.stop_reason = "timeout"
            item.task.cancel()

    async def _release(self, item: _Running) -> None:
        try:
            async with self.db.begin() as conn:
                await store.release(conn, item.state.id, self.replica_id, item.state.fence)
        except Exception:
            log.exception(
                "task %s: giving it back failed (its lease runs out instead)", item.state.id
            )

    async def _finish(self, item: _Running, status: str, message: str | None) -> None:
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
    "LeaseLost",
    "TaskContext",
    "TaskEngine",
    "TaskFailed",
    "TaskRejected",
    "TaskState",
    "effective_concurrency",
    "log_line",
    "state_from_row",
]
