"""Rendered prompts.

The official package's import path; the structs are defined in ``elluminate.schemas``.
"""

from ._wire import (
    Prompt,
)

__all__ = [
    "Prompt",
]
