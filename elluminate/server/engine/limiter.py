"""The LLM call limit: ``--max-concurrency`` calls in flight across all replicas.

Each replica runs its LLM calls through a :class:`Limiter`, a semaphore whose size can change
while calls wait. The sizes come from :func:`shares`: on every heartbeat a replica records its
demand (calls in flight plus calls waiting) in the ``replicas`` table and takes its share of
the limit, computed over the live replicas' demands (water-filling: nobody gets more than it
asks for, the rest is split evenly). A replica only grows into permits no other replica
holds, and never shrinks below the calls it has in flight, so the sum of the permits held
never exceeds the limit. A replica that stops beating loses its permits once it is counted as
dead. With one replica (SQLite) the share is the whole limit.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

T = TypeVar("T")


class Limiter:
    """A semaphore of adjustable size; :meth:`run` runs one call under it."""

    def __init__(self, size: int = 0) -> None:
        self._size = max(0, size)
        self._in_flight = 0
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        #: called (no await) when a call has to wait for a permit: ask for a bigger share now
        self.on_starved: Callable[[], None] | None = None

    @property
    def size(self) -> int:
        return self._size

    @property
    def in_flight(self) -> int:
        return self._in_flight

    @property
    def demand(self) -> int:
        """Calls in flight plus calls waiting."""
        return self._in_flight + sum(1 for w in self._waiters if not w.done())

    def resize(self, size: int) -> None:
        """Set the number of permits (calls in flight beyond it finish; none start)."""
        self._size = max(0, size)
        self._wake()

    async def acquire(self) -> None:
        if self._in_flight < self._size and not self._waiters:
            self._in_flight += 1
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        if self.on_starved is not None:
            self.on_starved()
        try:
            await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():  # granted as it was cancelled
                self._in_flight -= 1
                self._wake()
            raise
        finally:
            if waiter in self._waiters:
                self._waiters.remove(waiter)

    def release(self) -> None:
        self._in_flight -= 1
        self._wake()

    def _wake(self) -> None:
        while self._waiters and self._in_flight < self._size:
            waiter = self._waiters.popleft()
            if not waiter.done():
                self._in_flight += 1
                waiter.set_result(None)

    async def run(self, call: Callable[[], Awaitable[T]]) -> T:
        """Run ``call()`` holding one permit."""
        await self.acquire()
        try:
            return await call()
        finally:
            self.release()


def shares(limit: int, demands: Sequence[int]) -> list[int]:
    """Split ``limit`` permits over demands: nobody gets more than it asks for, and what is
    left is spread evenly (lower indexes get the odd permits). ``sum(result) <= limit``."""
    result = [0] * len(demands)
    left = limit
    open_ = [i for i, d in enumerate(demands) if d > 0]
    while left > 0 and open_:
        each, extra = divmod(left, len(open_))
        if each == 0:
            for i in open_[:extra]:
                result[i] += 1
            break
        still: list[int] = []
        for i in open_:
            give = min(each, demands[i] - result[i])
            result[i] += give
            left -= give
            if result[i] < demands[i]:
                still.append(i)
        open_ = still
    return result


def next_permits(
    *, current: int, target: int, in_flight: int, limit: int, held_by_others: int
) -> int:
    """The permits a replica may hold after a heartbeat: grow toward ``target`` only into
    permits nobody else holds; shrink toward it, but not below the calls in flight."""
    if target > current:
        return max(current, min(target, limit - held_by_others))
    return max(target, in_flight)
