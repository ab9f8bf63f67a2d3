"""Responses, their filters, samples and stats, and request bodies.

The official package's import path; the structs are defined in ``elluminate.schemas``.
"""

from ._enums import ResponsesSampleSortBy
from ._requests import (
    BatchCreatePromptResponseRequest,
    BatchCreatePromptResponseStatus,
    CreatePromptResponseRequest,
    PromptResponseFilter,
)
from ._wire import (
    DailyUsageStats,
    PromptResponse,
    ResponsesSample,
    ResponsesSampleFilter,
    ResponsesStats,
)

__all__ = [
    "BatchCreatePromptResponseRequest",
    "BatchCreatePromptResponseStatus",
    "CreatePromptResponseRequest",
    "DailyUsageStats",
    "PromptResponse",
    "PromptResponseFilter",
    "ResponsesSample",
    "ResponsesSampleFilter",
    "ResponsesSampleSortBy",
    "ResponsesStats",
]
