"""Agent results: trials of an agent uploaded to an AGENTIC experiment, matched to its tasks
(CONTRACT.md 4.12, 7.17). The official package's import path.

A trial names its task by ``task_id`` (the row id) or ``task_name`` (the value of the
collection's ``task`` column) and may carry the conversation, counters, a trajectory (typed
:class:`~elluminate.schemas.atif.ATIFTrajectory` or a raw ATIF dict, sent verbatim) and
ratings of some criteria; the server's judge rates the others when ``evaluate`` is true.
"""

from __future__ import annotations

from typing import Any, Literal

from .._repr import line, short
from ._checks import (
    MAX_COST_USD,
    MAX_DURATION_SECONDS,
    check_choice,
    check_count,
    check_mapping,
    check_messages,
    check_number,
    check_text,
    coerce,
)
from ._wire import Message, Wire
from .atif import ATIFTrajectory

DEFAULT_EVALUATION_POLLING_INTERVAL = 3.0
_MAX_LABEL_LENGTH = 25


class CriterionRatingIn(Wire, kw_only=True):
    """A rating the agent run brings along: the criterion by ``criterion_id`` or ``label``,
    ``YES`` or ``NO``, and why. (``description`` is ignored by the server.)"""

    criterion_id: int | None = None
    label: str | None = None
    description: str = ""
    rating: Literal["YES", "NO"]
    reasoning: str = ""

    def __post_init__(self) -> None:
        owner = "CriterionRatingIn"
        check_number(owner, "criterion_id", self.criterion_id, low=1, integer=True)
        check_text(owner, "label", self.label, max_length=_MAX_LABEL_LENGTH)
        check_text(owner, "description", self.description, optional=False)
        check_text(owner, "reasoning", self.reasoning, optional=False)
        rating = getattr(self.rating, "value", self.rating)
        check_choice(owner, "rating", rating, ["YES", "NO"])
        self.rating = rating
        if self.criterion_id is None and not (self.label or "").strip():
            raise ValueError(f"{owner} needs criterion_id or label to name its criterion")


class AgentTrialTaskRef(Wire, kw_only=True):
    """Which task a trial belongs to: ``task_id`` (row id) or ``task_name``."""

    task_id: int | None = None
    task_name: str | None = None

    def __post_init__(self) -> None:
        owner = type(self).__name__
        check_number(owner, "task_id", self.task_id, low=1, integer=True)
        check_text(owner, "task_name", self.task_name)
        if self.task_id is None and not (self.task_name or "").strip():
            raise ValueError(f"{owner} needs task_id or task_name to name its task")


class AgentTrialResult(AgentTrialTaskRef, kw_only=True):
    """One trial of the agent on one task, as uploaded."""

    messages: list[Message] = []
    reward: float | None = None
    steps: int | None = None
    cost_usd: float | None = None
    duration_seconds: float | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cached_tokens: int | None = None
    error: str | None = None
    metadata: dict[str, Any] | None = None
    trajectory: Any = None
    criterion_ratings: list[CriterionRatingIn] = []

    def __post_init__(self) -> None:
        super().__post_init__()
        owner = "AgentTrialResult"
        self.messages = check_messages(owner, "messages", self.messages)
        check_number(owner, "reward", self.reward, low=0, high=1)
        check_count(owner, "steps", self.steps)
        check_number(owner, "cost_usd", self.cost_usd, low=0, high=MAX_COST_USD)
        check_number(
            owner, "duration_seconds", self.duration_seconds, low=0, high=MAX_DURATION_SECONDS
        )
        for name in ("input_tokens", "output_tokens", "cached_tokens"):
            check_count(owner, name, getattr(self, name))
        check_text(owner, "error", self.error)
        check_mapping(owner, "metadata", self.metadata)
        if self.trajectory is not None and not isinstance(self.trajectory, (dict, ATIFTrajectory)):
            raise ValueError(
                f"{owner}.trajectory must be an ATIFTrajectory or a raw ATIF dict, "
                f"not {type(self.trajectory).__name__}"
            )
        self.criterion_ratings = coerce(
            owner, "criterion_ratings", self.criterion_ratings or [], list[CriterionRatingIn]
        )

    def __repr__(self) -> str:
        task = self.task_name if self.task_id is None else self.task_id
        return line(
            self,
            [
                ("task", short(task)),
                ("reward", self.reward),
                ("messages", len(self.messages)),
                (
                    "trajectory",
                    "raw"
                    if isinstance(self.trajectory, dict)
                    else "typed"
                    if self.trajectory is not None
                    else None,
                ),
                ("ratings", len(self.criterion_ratings)),
            ],
        )


class AgentResultsUploadRequest(Wire, kw_only=True):
    """Body of ``POST experiments/{id}/agent-results``."""

    results: list[AgentTrialResult]
    epoch: int = 1
    evaluate: bool = True

    def __post_init__(self) -> None:
        check_number("AgentResultsUploadRequest", "epoch", self.epoch, low=1, integer=True)
        if self.epoch is None:
            raise ValueError("AgentResultsUploadRequest.epoch must be an integer, at least 1")


class AgentResultsMatchPreviewRequest(Wire, kw_only=True):
    """Body of ``POST experiments/{id}/agent-results/preview``: only the task references."""

    results: list[AgentTrialTaskRef]


class AgentResultMatch(Wire, kw_only=True):
    """How one result of a preview matched: ``reason`` says why it did not (None: matched)."""

    index: int
    task_id: int | None = None
    task_name: str | None = None
    reason: str | None = None

    @property
    def matched(self) -> bool:
        return self.reason is None


class AgentResultsMatchPreview(Wire, kw_only=True):
    """Which results of an upload would match a task, without storing anything."""

    task_name_column: str | None
    matched: int
    unmatched: int
    results: list[AgentResultMatch]

    @property
    def unmatched_results(self) -> list[AgentResultMatch]:
        return [r for r in self.results if not r.matched]


class AgentResultTaskRefOut(Wire, kw_only=True):
    """A task of the experiment (as listed by a ``unmatched_tasks`` answer)."""

    task_id: int
    task_name: str


class AgentResultsUploadResponse(Wire, kw_only=True):
    """What an upload stored; ``errors`` lists the results that were rejected, and
    ``evaluation_task_id`` is the judge's task when one was queued."""

    created_responses: int
    created_ratings: int
    errors: list[str] = []
    pending_evaluations: int = 0
    evaluation_task_id: str | None = None


class AgentResultCriterionDefinition(Wire, kw_only=True):
    """A criterion of one task (``scope``: ``system``, ``shared`` or ``task``), rendered
    with the task's values."""

    criterion_id: int
    label: str
    scope: str
    rendered_criterion_str: str


class AgentResultTaskDefinition(Wire, kw_only=True):
    task_id: int
    task_name: str
    criteria: list[AgentResultCriterionDefinition]
    row_exists: bool = True
    current_task_name: str | None = None


class AgentResultsDefinition(Wire, kw_only=True):
    """The frozen tasks of an AGENTIC experiment and the criteria each is rated against."""

    version: int
    task_name_column: str
    tasks: list[AgentResultTaskDefinition]


__all__ = [
    "DEFAULT_EVALUATION_POLLING_INTERVAL",
    "AgentResultCriterionDefinition",
    "AgentResultMatch",
    "AgentResultTaskDefinition",
    "AgentResultTaskRefOut",
    "AgentResultsDefinition",
    "AgentResultsMatchPreview",
    "AgentResultsMatchPreviewRequest",
    "AgentResultsUploadRequest",
    "AgentResultsUploadResponse",
    "AgentTrialResult",
    "AgentTrialTaskRef",
    "CriterionRatingIn",
]
