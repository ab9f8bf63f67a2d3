"""Paired concurrency primitives: the async names used in ``_async`` and their sync twins.

``scripts/unasync.py`` renames ``asleep -> sleep``, ``agather -> gather``, ... when it
generates ``_sync``; the sync side really runs the same work, sequentially.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from ._taskgroup import run_all

T = TypeVar("T")


async def asleep(seconds: float) -> None:
    await asyncio.sleep(seconds)


def sleep(seconds: float) -> None:
    time.sleep(seconds)


async def agather(*aws: Awaitable[T]) -> list[T]:
    """Run awaitables concurrently; their results in order.

    Structured (see :func:`elluminate._taskgroup.run_all`): the first error cancels the other
    awaitables and waits for them before it is raised, and cancelling the caller cancels and
    awaits them all, so no request outlives the call.
    """
    return await run_all(aws)


def gather(*results: T) -> list[T]:
    """Sync twin of :func:`agather`: the calls already ran, in order, as arguments."""
    return list(results)


class ALock:
    """asyncio.Lock usable before a loop runs (its twin is threading.Lock)."""

    def __init__(self) -> None:
        self._lock = asyncio.Lock()

    async def __aenter__(self) -> None:
        await self._lock.acquire()

    async def __aexit__(self, *exc: object) -> None:
        self._lock.release()


class Lock:
    """Sync twin of :class:`ALock`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def __enter__(self) -> None:
        self._lock.acquire()

    def __exit__(self, *exc: object) -> None:
        self._lock.release()


def lazy_init(
    initialize: Callable[[], Awaitable[object]], close: Callable[[], Awaitable[object]]
) -> None:
    """Async clients connect on first use (``__init__`` cannot await): nothing to do now."""


def eager_init(initialize: Callable[[], object], close: Callable[[], object]) -> None:
    """Sync clients connect in the constructor, so bad credentials fail right away."""
    try:
        initialize()
    except BaseException:
        close()
        raise
