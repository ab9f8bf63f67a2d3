"""Enumerations used on the wire (exact spellings from the platform API)."""

from __future__ import annotations

from enum import Enum


class _StrEnum(str, Enum):
    def __str__(self) -> str:
        return str(self.value)


class RatingValue(_StrEnum):
    YES = "YES"
    NO = "NO"


class RatingMode(_StrEnum):
    FAST = "fast"
    DETAILED = "detailed"


class InferenceType(_StrEnum):
    OPENAI = "openai"
    BOTARIO = "botario"
    CUSTOM_API = "custom_api"


class CollectionType(_StrEnum):
    STANDARD = "STANDARD"
    AGENTIC = "AGENTIC"
    PERSONA = "PERSONA"


class EvaluationMode(_StrEnum):
    STANDARD = "STANDARD"
    AGENTIC = "AGENTIC"
    MULTI_TURN = "MULTI_TURN"


class ColumnTypeEnum(_StrEnum):
    TEXT = "text"
    JSON = "json"
    CONVERSATION = "conversation"
    RAW_INPUT = "raw_input"
    CATEGORY = "category"
    PERSONA_GOAL = "persona_goal"


class ReasoningEffort(_StrEnum):
    MINIMAL = "minimal"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


class Verbosity(_StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


class TaskStatus(_StrEnum):
    """State of a background task; the last five are terminal."""

    PENDING = "PENDING"
    STARTED = "STARTED"
    SUCCESS = "SUCCESS"
    FAILURE = "FAILURE"
    REVOKED = "REVOKED"
    REJECTED = "REJECTED"
    TIMEOUT = "TIMEOUT"

    @property
    def is_terminal(self) -> bool:
        return self not in (TaskStatus.PENDING, TaskStatus.STARTED)

    @property
    def is_failure(self) -> bool:
        return self.is_terminal and self is not TaskStatus.SUCCESS


class ResponsesSampleSortBy(_StrEnum):
    """Orders of the response samples view."""

    RATING_ASC = "rating-asc"
    RATING_DESC = "rating-desc"
    INPUT_TOKENS_ASC = "input-tokens-asc"
    INPUT_TOKENS_DESC = "input-tokens-desc"
    OUTPUT_TOKENS_ASC = "output-tokens-asc"
    OUTPUT_TOKENS_DESC = "output-tokens-desc"
    DURATION_ASC = "duration-asc"
    DURATION_DESC = "duration-desc"
