"""Typed ATIF trajectories (Agent Trajectory Interchange Format) for agent-result uploads
(CONTRACT.md 7.17). The official package's import path.

Each model checks its rules when it is built (and when it is decoded): ``schema_version``
``ATIF-v1.<minor>``, at most 10,000 steps and 1,000 embedded subagent trajectories with unique
non-empty ``trajectory_id``, token counts, costs and lengths within the limits below. The
server stays the authority; an upload may also carry a raw ATIF dict, which is sent verbatim.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar, Literal, Union

from ._checks import (
    MAX_COST_USD,
    MAX_DURATION_SECONDS,
    MAX_TOKEN_COUNT,
    check_choice,
    check_count,
    check_list,
    check_mapping,
    check_number,
    check_text,
    coerce,
)
from ._wire import Wire

MAX_STEPS = 10_000
MAX_SUBAGENT_TRAJECTORIES = 1_000
MAX_MODEL_NAME_LENGTH = 256
_SCHEMA_VERSION = re.compile(r"ATIF-v1\.\d+")


class _Model(Wire, kw_only=True):
    """Base of the ATIF models: ``__post_init__`` turns nested dicts into models (as
    pydantic would) and checks the model's rules."""

    __nested__: ClassVar[dict[str, Any]] = {}

    def __post_init__(self) -> None:
        owner = type(self).__name__
        for name, type_ in self.__nested__.items():
            setattr(self, name, coerce(owner, name, getattr(self, name), type_))
        check_mapping(owner, "extra", getattr(self, "extra", None))
        self._check(owner)

    def _check(self, owner: str) -> None:
        """The model's own rules (ValueError names the field and what is allowed)."""


class ATIFTextContentPart(_Model, kw_only=True):
    type: Literal["text"]
    text: str

    def _check(self, owner: str) -> None:
        check_choice(owner, "type", self.type, ["text"])
        check_text(owner, "text", self.text, optional=False)


class ATIFImageSource(_Model, kw_only=True):
    media_type: str
    path: str

    def _check(self, owner: str) -> None:
        check_text(owner, "media_type", self.media_type, optional=False)
        check_text(owner, "path", self.path, optional=False)


class ATIFImageContentPart(_Model, kw_only=True):
    __nested__ = {"source": ATIFImageSource}

    type: Literal["image"]
    source: ATIFImageSource

    def _check(self, owner: str) -> None:
        check_choice(owner, "type", self.type, ["image"])


ATIFContentPart = Union[ATIFTextContentPart, ATIFImageContentPart]
_PARTS: dict[str, type[_Model]] = {"text": ATIFTextContentPart, "image": ATIFImageContentPart}


def _content(owner: str, name: str, value: Any, *, optional: bool) -> Any:
    """A string or a list of content parts (dicts become parts, chosen by their ``type``)."""
    if value is None and optional:
        return None
    if isinstance(value, str):
        return value
    if not isinstance(value, list):
        raise ValueError(
            f"{owner}.{name} must be a string or a list of content parts "
            f"({{'type': 'text', 'text': ...}} or {{'type': 'image', 'source': ...}}), "
            f"not {type(value).__name__}"
        )
    parts = []
    for index, part in enumerate(value):
        if isinstance(part, (ATIFTextContentPart, ATIFImageContentPart)):
            parts.append(part)
            continue
        kind = part.get("type") if isinstance(part, dict) else None
        if kind not in _PARTS:
            raise ValueError(
                f"{owner}.{name}[{index}] must be a content part with type 'text' or "
                f"'image', not {part!r}"
            )
        parts.append(coerce(owner, f"{name}[{index}]", part, _PARTS[kind]))
    return parts


class ATIFSubagentTrajectoryRef(_Model, kw_only=True):
    """Where a subagent's trajectory is: ``trajectory_id`` and/or ``trajectory_path``."""

    trajectory_id: str | None = None
    trajectory_path: str | None = None
    session_id: str | None = None
    extra: dict[str, Any] | None = None

    def _check(self, owner: str) -> None:
        for name in ("trajectory_id", "trajectory_path", "session_id"):
            check_text(owner, name, getattr(self, name))
        if not self.trajectory_id and not self.trajectory_path:
            raise ValueError(f"{owner} must set 'trajectory_id' or 'trajectory_path'")


class ATIFObservationResult(_Model, kw_only=True):
    __nested__ = {"subagent_trajectory_ref": list[ATIFSubagentTrajectoryRef] | None}

    source_call_id: str | None = None
    content: str | list[Any] | None = None
    subagent_trajectory_ref: list[ATIFSubagentTrajectoryRef] | None = None
    extra: dict[str, Any] | None = None

    def _check(self, owner: str) -> None:
        check_text(owner, "source_call_id", self.source_call_id)
        self.content = _content(owner, "content", self.content, optional=True)


class ATIFObservation(_Model, kw_only=True):
    __nested__ = {"results": list[ATIFObservationResult]}

    results: list[ATIFObservationResult]


class ATIFToolCall(_Model, kw_only=True):
    tool_call_id: str
    function_name: str
    arguments: dict[str, Any]
    extra: dict[str, Any] | None = None

    def _check(self, owner: str) -> None:
        check_text(owner, "tool_call_id", self.tool_call_id, optional=False)
        check_text(owner, "function_name", self.function_name, optional=False)
        if not isinstance(self.arguments, dict):
            raise ValueError(
                f"{owner}.arguments must be a dict of the call's arguments (parse a JSON "
                f"string first), not {type(self.arguments).__name__}"
            )


def _check_int_list(owner: str, name: str, value: Any, *, integer: bool) -> None:
    check_list(owner, name, value)
    for index, item in enumerate(value or []):
        check_number(owner, f"{name}[{index}]", item, integer=integer)


class ATIFStepMetrics(_Model, kw_only=True):
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cached_tokens: int | None = None
    cost_usd: float | None = None
    prompt_token_ids: list[int] | None = None
    completion_token_ids: list[int] | None = None
    logprobs: list[float] | None = None
    extra: dict[str, Any] | None = None

    def _check(self, owner: str) -> None:
        for name in ("prompt_tokens", "completion_tokens", "cached_tokens"):
            check_count(owner, name, getattr(self, name))
        check_number(owner, "cost_usd", self.cost_usd, low=0, high=MAX_COST_USD)
        _check_int_list(owner, "prompt_token_ids", self.prompt_token_ids, integer=True)
        _check_int_list(owner, "completion_token_ids", self.completion_token_ids, integer=True)
        _check_int_list(owner, "logprobs", self.logprobs, integer=False)


class ATIFFinalMetrics(_Model, kw_only=True):
    total_prompt_tokens: int | None = None
    total_completion_tokens: int | None = None
    total_cached_tokens: int | None = None
    total_cost_usd: float | None = None
    total_steps: int | None = None
    extra: dict[str, Any] | None = None

    def _check(self, owner: str) -> None:
        for name in (
            "total_prompt_tokens",
            "total_completion_tokens",
            "total_cached_tokens",
            "total_steps",
        ):
            check_count(owner, name, getattr(self, name))
        check_number(owner, "total_cost_usd", self.total_cost_usd, low=0, high=MAX_COST_USD)


class ATIFStep(_Model, kw_only=True):
    """One step of a trajectory: a message from the system, the user or the agent, with the
    agent's tool calls, their observations and the step's metrics."""

    __nested__ = {
        "tool_calls": list[ATIFToolCall] | None,
        "observation": ATIFObservation | None,
        "metrics": ATIFStepMetrics | None,
    }

    step_id: int
    timestamp: str | None = None
    source: Literal["system", "user", "agent"]
    model_name: str | None = None
    reasoning_effort: str | float | None = None
    message: str | list[Any]
    reasoning_content: str | None = None
    tool_calls: list[ATIFToolCall] | None = None
    observation: ATIFObservation | None = None
    metrics: ATIFStepMetrics | None = None
    llm_call_count: int | None = None
    is_copied_context: bool | None = None
    extra: dict[str, Any] | None = None

    def _check(self, owner: str) -> None:
        check_number(owner, "step_id", self.step_id, integer=True)
        if self.step_id is None:
            raise ValueError(f"{owner}.step_id is required")
        check_text(owner, "timestamp", self.timestamp)
        check_choice(owner, "source", self.source, ["system", "user", "agent"])
        check_text(owner, "model_name", self.model_name, max_length=MAX_MODEL_NAME_LENGTH)
        if self.reasoning_effort is not None and (
            isinstance(self.reasoning_effort, bool)
            or not isinstance(self.reasoning_effort, (str, int, float))
        ):
            raise ValueError(
                f"{owner}.reasoning_effort must be a string or a number, "
                f"not {self.reasoning_effort!r}"
            )
        self.message = _content(owner, "message", self.message, optional=False)
        check_text(owner, "reasoning_content", self.reasoning_content)
        check_number(owner, "llm_call_count", self.llm_call_count, low=0, integer=True)
        if self.is_copied_context is not None and not isinstance(self.is_copied_context, bool):
            raise ValueError(f"{owner}.is_copied_context must be true, false or None")


class ATIFAgent(_Model, kw_only=True):
    """The agent that produced the trajectory."""

    name: str
    version: str
    model_name: str | None = None
    tool_definitions: list[dict[str, Any]] | None = None
    extra: dict[str, Any] | None = None

    def _check(self, owner: str) -> None:
        check_text(owner, "name", self.name, optional=False)
        check_text(owner, "version", self.version, optional=False)
        check_text(owner, "model_name", self.model_name)
        check_list(owner, "tool_definitions", self.tool_definitions)


class ATIFTrajectory(_Model, kw_only=True):
    """A whole agent run: ``schema_version`` ``ATIF-v1.<minor>``, the agent, its steps (at
    most 10,000), final metrics and embedded subagent trajectories (at most 1,000, each with
    its own unique ``trajectory_id``)."""

    __nested__ = {
        "agent": ATIFAgent,
        "steps": list[ATIFStep],
        "final_metrics": ATIFFinalMetrics | None,
    }

    schema_version: str
    trajectory_id: str | None = None
    session_id: str | None = None
    agent: ATIFAgent
    steps: list[ATIFStep]
    final_metrics: ATIFFinalMetrics | None = None
    notes: str | None = None
    continued_trajectory_ref: str | None = None
    subagent_trajectories: list[ATIFTrajectory] | None = None
    extra: dict[str, Any] | None = None

    def _check(self, owner: str) -> None:
        if not isinstance(self.schema_version, str) or not _SCHEMA_VERSION.fullmatch(
            self.schema_version
        ):
            raise ValueError(
                f"{owner}.schema_version must look like 'ATIF-v1.<minor>' (e.g. 'ATIF-v1.7'), "
                f"not {self.schema_version!r}"
            )
        for name in ("trajectory_id", "session_id", "notes", "continued_trajectory_ref"):
            check_text(owner, name, getattr(self, name))
        check_list(owner, "steps", self.steps, max_items=MAX_STEPS)
        check_list(
            owner,
            "subagent_trajectories",
            self.subagent_trajectories,
            max_items=MAX_SUBAGENT_TRAJECTORIES,
        )
        self.subagent_trajectories = coerce(
            owner, "subagent_trajectories", self.subagent_trajectories, list[ATIFTrajectory]
        )
        seen: set[str] = set()
        for index, sub in enumerate(self.subagent_trajectories or []):
            if not sub.trajectory_id:
                raise ValueError(
                    f"{owner}.subagent_trajectories[{index}] must set a non-empty "
                    "'trajectory_id' (observations refer to it)"
                )
            if sub.trajectory_id in seen:
                raise ValueError(
                    f"{owner}.subagent_trajectories: trajectory_id {sub.trajectory_id!r} "
                    "appears twice; each embedded trajectory needs its own"
                )
            seen.add(sub.trajectory_id)


__all__ = [
    "MAX_COST_USD",
    "MAX_DURATION_SECONDS",
    "MAX_TOKEN_COUNT",
    "ATIFAgent",
    "ATIFContentPart",
    "ATIFFinalMetrics",
    "ATIFImageContentPart",
    "ATIFImageSource",
    "ATIFObservation",
    "ATIFObservationResult",
    "ATIFStep",
    "ATIFStepMetrics",
    "ATIFSubagentTrajectoryRef",
    "ATIFTextContentPart",
    "ATIFToolCall",
    "ATIFTrajectory",
]
