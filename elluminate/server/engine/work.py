"""What every task handler uses: the worker pool, the counts behind a task's outcome, and the
generator and judge a task may use (a task that cannot have them is rejected)."""

from __future__ import annotations

from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from elluminate._taskgroup import run_all

from ..evaluation.generation import Generator, Unavailable, generator_for
from ..evaluation.judging import Judge, judge_for
from ..store.responses import Outcome
from .task_context import TaskContext, TaskRejected

#: Consecutive failed generations (with no success at all) after which a task gives up.
ABORT_AFTER = 20


@dataclass
class Stats:
    """Counts of one task (for its outcome and its log)."""

    generated: int = 0
    failed: int = 0
    streak: int = 0
    first_error: str | None = None
    ratings_ok: int = 0
    ratings_failed: int = 0
    first_rating_error: str | None = None

    def generation(self, error: str | None) -> None:
        if error is None:
            self.generated += 1
            self.streak = 0
        else:
            self.failed += 1
            self.streak += 1
            self.first_error = self.first_error or error

    def ratings(self, outcomes: Iterable[Outcome]) -> None:
        for o in outcomes:
            if o.rating is None:
                self.ratings_failed += 1
                self.first_rating_error = self.first_rating_error or o.error
            else:
                self.ratings_ok += 1

    @property
    def dead(self) -> bool:
        """Many failures in a row and not one success: the provider is not working."""
        return self.generated == 0 and self.streak >= ABORT_AFTER


async def run_workers(
    count: int,
    items: deque[Any],
    work: Callable[[Any], Awaitable[None]],
    stop: Callable[[], bool] = lambda: False,
) -> None:
    """Run ``work`` over ``items`` with ``count`` workers until done or ``stop()``.

    Structured: the first unexpected error cancels the other workers and is raised only once
    they have all stopped, so no worker outlives the task that started it.
    """

    async def worker() -> None:
        while items and not stop():
            await work(items.popleft())

    await run_all(worker() for _ in range(max(1, min(count, len(items)))))


async def log_failed_ratings(
    ctx: TaskContext, response_id: int, outcomes: Sequence[Outcome]
) -> None:
    """One task log line per rating that failed."""
    for o in outcomes:
        if o.rating is None:
            await ctx.log(
                f"response {response_id}: rating for criterion {o.criterion_id} failed: {o.error}"
            )


def generator_or_reject(
    providers: Any, llm_row: Any, params: dict[str, Any] | None = None
) -> Generator:
    """The generator for an LLM config row (``None``: the server default), or
    :class:`TaskRejected` with the reason it cannot be used."""
    try:
        return generator_for(providers, llm_row, params)
    except Unavailable as exc:
        raise TaskRejected(str(exc)) from None


def judge_or_reject(providers: Any, rating_version: str | None, mode: str) -> Judge:
    """The judge for a rating version and mode, or :class:`TaskRejected` with the reason."""
    try:
        return judge_for(providers, rating_version, mode)
    except Unavailable as exc:
        raise TaskRejected(str(exc)) from None
