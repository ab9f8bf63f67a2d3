"""LLM configurations.

The official package's import path; the structs are defined in ``elluminate.schemas``.
"""

from ._enums import InferenceType
from ._wire import (
    LLMConfig,
)

__all__ = [
    "InferenceType",
    "LLMConfig",
]
