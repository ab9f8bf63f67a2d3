"""Progress events of long-running operations (``stream_experiment``, ``stream_batch_rate``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from .schemas._enums import TaskStatus

R = TypeVar("R")


@dataclass(frozen=True)
class ExperimentProgress:
    """Counters of an experiment run (wire: ``completed_responses`` / ``completed_ratings``)."""

    responses_generated: int
    responses_rated: int
    total_responses: int

    @property
    def percent_complete(self) -> float:
        """Rated responses as a percentage of the total (0.0 when the total is unknown)."""
        if self.total_responses <= 0:
            return 0.0
        return min(100.0, self.responses_rated / self.total_responses * 100.0)

    @property
    def generation_complete(self) -> bool:
        return self.responses_generated >= self.total_responses

    @property
    def rating_complete(self) -> bool:
        return self.responses_rated >= self.total_responses


@dataclass(frozen=True)
class BatchProgress:
    processed: int
    total: int
    failed: int = 0

    @property
    def percent_complete(self) -> float:
        return 0.0 if self.total <= 0 else min(100.0, self.processed / self.total * 100.0)

    @property
    def is_complete(self) -> bool:
        return self.processed >= self.total


@dataclass(frozen=True)
class _StatusFlags:
    status: TaskStatus

    @property
    def is_complete(self) -> bool:
        """True for every terminal state (SUCCESS, FAILURE, REVOKED, REJECTED, TIMEOUT)."""
        return self.status.is_terminal

    @property
    def is_success(self) -> bool:
        return self.status is TaskStatus.SUCCESS

    @property
    def is_failure(self) -> bool:
        """True for FAILURE, REVOKED, REJECTED and TIMEOUT."""
        return self.status.is_failure


@dataclass(frozen=True)
class ExperimentStatusEvent(_StatusFlags, Generic[R]):
    """One update of an experiment run; ``result`` is the finished experiment on SUCCESS."""

    progress: ExperimentProgress | None = None
    logs_delta: str | None = None
    error_msg: str | None = None
    result: R | None = None


@dataclass(frozen=True)
class BatchStatusEvent(_StatusFlags):
    """One update of a batch operation; ``result`` holds the ratings on SUCCESS."""

    progress: BatchProgress | None = None
    error_msg: str | None = None
    result: Any = None


def progress_from_payload(payload: dict[str, Any]) -> ExperimentProgress | None:
    """Progress counters from a status payload (None when the task reports none)."""
    generated = payload.get("completed_responses")
    if generated is None:
        return None
    return ExperimentProgress(
        responses_generated=int(generated),
        responses_rated=int(payload.get("completed_ratings") or 0),
        total_responses=int(payload.get("total_responses") or 0),
    )


def parse_status(value: Any) -> TaskStatus:
    """A TaskStatus from a wire value; ValueError names the bad value."""
    try:
        return TaskStatus(str(value).upper())
    except ValueError:
        raise ValueError(f"unknown task status {value!r}") from None


__all__ = [
    "BatchProgress",
    "BatchStatusEvent",
    "ExperimentProgress",
    "ExperimentStatusEvent",
    "TaskStatus",
    "parse_status",
    "progress_from_payload",
]
