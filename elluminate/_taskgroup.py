"""Structured concurrency for both the client and the server (pure asyncio, no I/O).

:func:`run_all` runs awaitables concurrently and guarantees that none of them outlives the
call: on the first error the others are cancelled and awaited before the error is raised,
and when the caller itself is cancelled every child is cancelled and awaited first. It is
``asyncio.TaskGroup`` without the ``ExceptionGroup`` (callers get the first error as it was
raised) and available on Python 3.10.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterable
from typing import Any, TypeVar

T = TypeVar("T")

__all__ = ["run_all"]


async def run_all(aws: Iterable[Awaitable[T]]) -> list[T]:
    """Run ``aws`` concurrently; their results in order.

    The first exception (in order of completion) cancels the siblings; they are awaited, then
    that exception is raised. Cancelling the caller cancels and awaits every child. When this
    returns or raises, every child has finished.
    """
    tasks: list[asyncio.Future[T]] = [asyncio.ensure_future(aw) for aw in aws]
    if not tasks:
        return []
    try:
        done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
    except BaseException:  # the caller was cancelled (or interrupted)
        await _cancel_and_wait(tasks)
        raise
    if pending:
        await _cancel_and_wait(list(pending))
    first = _first_error(tasks, done)
    if first is not None:
        raise first
    return [task.result() for task in tasks]


def _first_error(tasks: list[asyncio.Future[Any]], done: set[Any]) -> BaseException | None:
    """The error that stopped the group: a real exception first, a child's own
    cancellation only if nothing else failed."""
    cancelled: BaseException | None = None
    for task in tasks:
        if task not in done or not task.done():
            continue
        if task.cancelled():
            cancelled = cancelled or asyncio.CancelledError()
            continue
        error = task.exception()
        if error is not None:
            return error
    return cancelled


async def _cancel_and_wait(tasks: list[asyncio.Future[Any]]) -> None:
    """Cancel ``tasks`` and wait until all have finished, even if cancelled again meanwhile
    (the repeated cancellation is re-raised once they have)."""
    for task in tasks:
        task.cancel()
    interrupted: BaseException | None = None
    while True:
        unfinished = [task for task in tasks if not task.done()]
        if not unfinished:
            break
        try:
            await asyncio.wait(unfinished)
        except BaseException as exc:  # cancelled while cleaning up: finish the cleanup first
            interrupted = interrupted or exc
            for task in unfinished:
                task.cancel()
    for task in tasks:  # retrieve every outcome so none is reported as "never retrieved"
        if not task.cancelled():
            task.exception()
    if interrupted is not None:
        raise interrupted
