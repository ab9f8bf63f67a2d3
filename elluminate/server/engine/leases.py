"""The leases of the tasks a replica runs, and the replica's place among the replicas.

* :meth:`LeaseKeeper.join`: on SQLite one server holds the file, so at start every STARTED
  task is free to claim (the tasks the previous shutdown or crash left are resumed); on
  PostgreSQL the replica registers and takes its share of the LLM call limit.
* The heartbeat (:meth:`LeaseKeeper.run`, every ``heartbeat_seconds``, at once when the
  limiter starves) renews the leases of the tasks this replica holds. A task whose lease was
  lost (its fence moved on: another replica claimed it once the lease ran out) is stopped
  without writing; one whose cancel flag is set is revoked (so a cancel is seen here at the
  latest). When replicas share the database it also records this replica's demand and takes
  its share of ``--max-concurrency`` (:func:`~.limiter.shares`); a replica that stops
  beating is removed as dead.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from dataclasses import dataclass, field
from datetime import timedelta

from ..store import tasks as store
from ..store.connection import Store
from ..store.database import utcnow
from .limiter import Limiter, next_permits, shares
from .task_state import TaskState

log = logging.getLogger("elluminate.server.engine")


@dataclass
class HeldTask:
    """A task this replica claimed: its state, the asyncio task running its handler, why
    that was stopped (``"revoke"``, ``"timeout"``, ``"release"``, ``"lost"``) and an event
    set once the runner has ended."""

    state: TaskState
    task: asyncio.Task[None] | None = None
    stop_reason: str | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def stop(self, reason: str) -> bool:
        """Cancel the runner for ``reason`` unless it is stopping already; whether it was."""
        if self.task is None or self.stop_reason is not None:
            return False
        self.stop_reason = reason
        self.task.cancel()
        return True


class LeaseKeeper:
    """Renews the leases of the tasks this replica holds and keeps its share of the LLM
    call limit (see the module docstring)."""

    def __init__(
        self,
        db: Store,
        replica_id: str,
        *,
        lease_seconds: float,
        heartbeat_seconds: float,
        limiter: Limiter,
        limit: int,
    ) -> None:
        self.db = db
        self.replica_id = replica_id
        self.lease_seconds = lease_seconds
        self.heartbeat_seconds = heartbeat_seconds
        self.limiter = limiter
        self.limit = limit
        #: The tasks this replica claimed and runs, by id.
        self.held: dict[str, HeldTask] = {}
        self.shared = False  # several replicas may share the database (PostgreSQL)
        self._share_requested = asyncio.Event()

    async def join(self, shared: bool) -> None:
        """Free orphaned tasks (SQLite) or join the replicas (PostgreSQL), and take this
        replica's share of the LLM call limit."""
        self.shared = shared
        async with self.db.begin() as conn:
            if not shared:  # one server per SQLite file: nobody else runs its tasks
                freed = await store.release_all_started(conn)
                if freed:
                    log.warning("%d task(s) interrupted by the previous shutdown resume", freed)
            else:
                await store.add_replica(conn, self.replica_id, socket.gethostname(), os.getpid())
        if shared:  # replicas share the limit (an idle SQLite server writes nothing)
            self.limiter.resize(0)
            self.limiter.on_starved = self._share_requested.set
            await self._rebalance()
        else:
            self.limiter.resize(self.limit)

    async def run(self) -> None:
        """The heartbeat loop, until cancelled."""
        while True:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._share_requested.wait(), self.heartbeat_seconds)
            self._share_requested.clear()
            try:
                await self.beat()
            except Exception:  # pragma: no cover - a database hiccup: try again
                log.exception("heartbeat failed")

    async def beat(self) -> None:
        """Renew the leases of the held tasks, stop the lost and the cancelled ones and
        (replicas sharing the database) rebalance the LLM call limit."""
        # Judge only the tasks that were running when the leases were renewed: one claimed
        # meanwhile is not in the answer and has not lost anything.
        running = dict(self.held)
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
                    if item.stop("lost"):
                        log.warning("task %s: lease lost, another server resumes it", task_id)
                elif found[1]:
                    item.stop("revoke")
        if self.shared:
            await self._rebalance()

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


__all__ = ["HeldTask", "LeaseKeeper"]
