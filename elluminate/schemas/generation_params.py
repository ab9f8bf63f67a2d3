"""Per-experiment sampling overrides.

The official package's import path; the structs are defined in ``elluminate.schemas``.
"""

from ._wire import (
    GenerationParams,
)

__all__ = [
    "GenerationParams",
]
