"""Metadata of one LLM generation (tokens, duration, model).

The official package's import path; the structs are defined in ``elluminate.schemas``.
"""

from ._wire import (
    CustomApiInfo,
    GenerationMetadata,
)

__all__ = [
    "CustomApiInfo",
    "GenerationMetadata",
]
