"""The LLM call limit: ``--max-concurrency`` calls in flight across all replicas, adapted to
what the providers take.

Each replica runs its LLM calls through a :class:`Limiter`, a semaphore whose size can change
while calls wait. The sizes come from :func:`shares`: on every heartbeat a replica records its
demand (calls in flight plus calls waiting) in the ``replicas`` table and takes its share of
the limit, computed over the live replicas' demands (water-filling: nobody gets more than it
asks for, the rest is split evenly). A replica only grows into permits no other replica
holds, and never shrinks below the calls it has in flight, so the sum of the permits held
never exceeds the limit. A replica that stops beating loses its permits once it is counted as
dead. With one replica (SQLite) the share is the whole limit.

Adaptive concurrency (AIMD, as TCP does it): a call that fails because the provider is rate
limiting (an exception with a true ``rate_limited`` attribute and its ``retry_after``, as the
server's providers raise for HTTP 429 or a ``Retry-After``) pauses every new call of the
replica until the hinted time (or an exponential backoff without a hint), halves the
replica's in-flight ceiling (once per round of calls: calls that were already in flight when
it was halved do not halve it again) and is run again, up to :data:`RATE_LIMIT_RETRIES`
times. Every ceiling's worth of successful calls without a rate limit raises the ceiling by
one, until it reaches the share again. So the calls in flight settle just below what the
provider accepts, instead of retrying into its limit.
"""

from __future__ import annotations

import asyncio
import collections
import math
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

T = TypeVar("T")

#: How often one call is run again after rate limits before its error is raised.
RATE_LIMIT_RETRIES = 20
#: The ceiling is multiplied by this on a rate limit (multiplicative decrease).
DECREASE = 0.5
#: Backoff without a ``Retry-After``: ``BACKOFF_BASE * 2**n`` seconds (n = the call's
#: rate limits so far), at most ``BACKOFF_MAX``, with jitter.
BACKOFF_BASE = 0.25
BACKOFF_MAX = 8.0


def rate_limit_wait(exc: BaseException) -> float | None:
    """The wait a rate-limit error asks for (0.0 when it gives none), or None when ``exc``
    is not a rate limit."""
    if not getattr(exc, "rate_limited", False):
        return None
    hint = getattr(exc, "retry_after", None)
    if isinstance(hint, (int, float)) and math.isfinite(hint) and hint >= 0:
        return float(hint)
    return 0.0


class Limiter:
    """A semaphore of adjustable size with an adaptive ceiling; :meth:`run` runs one call
    under it (see the module docstring)."""

    def __init__(self, size: int = 0) -> None:
        self._size = max(0, size)
        self._in_flight = 0
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        #: called (no await) when a call has to wait for a permit: ask for a bigger share now
        self.on_starved: Callable[[], None] | None = None
        #: the adaptive in-flight ceiling; None while no rate limit was met (or it grew back)
        self._ceiling: int | None = None
        self._round = 0  # +1 on every decrease: calls started before do not decrease again
        self._successes = 0  # successes since the ceiling last changed
        self._resume_at = 0.0  # time.monotonic() before which no call starts
        self._timer: asyncio.TimerHandle | None = None
        #: counts for logs and benchmarks
        self.rate_limited = 0
        self.decreases = 0

    @property
    def size(self) -> int:
        """This replica's share of the limit."""
        return self._size

    @property
    def ceiling(self) -> int | None:
        """The adaptive ceiling (None: none, the share applies)."""
        return self._ceiling

    @property
    def effective(self) -> int:
        """The calls that may be in flight now: the share, or the ceiling when lower."""
        return self._size if self._ceiling is None else min(self._size, self._ceiling)

    @property
    def in_flight(self) -> int:
        return self._in_flight

    @property
    def demand(self) -> int:
        """Calls in flight plus calls waiting (no more than the ceiling lets run)."""
        wanted = self._in_flight + sum(1 for w in self._waiters if not w.done())
        return wanted if self._ceiling is None else min(wanted, max(self._ceiling, self._in_flight))

    def resize(self, size: int) -> None:
        """Set the number of permits (calls in flight beyond it finish; none start)."""
        self._size = max(0, size)
        self._wake()

    def _paused(self) -> bool:
        return time.monotonic() < self._resume_at

    async def acquire(self) -> None:
        if self._in_flight < self.effective and not self._waiters and not self._paused():
            self._in_flight += 1
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        if self.on_starved is not None:
            self.on_starved()
        self._wake()  # a pause may have ended with nobody waiting to be woken
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
        if self._waiters and self._paused():
            if self._timer is None:
                delay = max(0.0, self._resume_at - time.monotonic())
                self._timer = asyncio.get_running_loop().call_later(delay, self._pause_over)
            return
        while self._waiters and self._in_flight < self.effective:
            waiter = self._waiters.popleft()
            if not waiter.done():
                self._in_flight += 1
                waiter.set_result(None)

    def _pause_over(self) -> None:
        self._timer = None
        self._wake()

    def backoff(self, wait: float, started_round: int | None = None) -> None:
        """A provider rate limited a call: pause new calls for ``wait`` seconds and, unless
        the call started before the last decrease, shrink the ceiling."""
        self.rate_limited += 1
        if wait > 0:
            self._resume_at = max(self._resume_at, time.monotonic() + wait)
        if started_round is None or started_round == self._round:
            current = self.effective if self._ceiling is None else self._ceiling
            self._ceiling = max(1, int(min(current, max(self._in_flight + 1, 1)) * DECREASE))
            self._round += 1
            self._successes = 0
            self.decreases += 1

    def succeeded(self) -> None:
        """A call succeeded: after a ceiling's worth of them, let one more call run."""
        if self._ceiling is None:
            return
        self._successes += 1
        if self._successes >= self._ceiling:
            self._successes = 0
            self._ceiling += 1
            if self._ceiling >= self._size:
                self._ceiling = None  # grown back to the share: no ceiling
            self._wake()

    async def run(self, call: Callable[[], Awaitable[T]]) -> T:
        """Run ``call()`` holding one permit; a rate-limited call backs off and is run again
        (up to :data:`RATE_LIMIT_RETRIES` times), any other error is raised."""
        limited = 0
        while True:
            await self.acquire()
            started = self._round
            try:
                result = await call()
            except Exception as exc:
                self.release()
                wait = rate_limit_wait(exc)
                if wait is None or limited >= RATE_LIMIT_RETRIES:
                    raise
                if wait == 0.0:
                    wait = min(BACKOFF_MAX, BACKOFF_BASE * 2**limited) * random.uniform(0.5, 1.0)
                limited += 1
                self.backoff(wait, started)
                continue
            except BaseException:
                self.release()
                raise
            self.release()
            self.succeeded()
            return result


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
