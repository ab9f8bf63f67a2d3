"""Generic status of batch tasks.

The official package's import path; the structs are defined in ``elluminate.schemas``.
"""

from ._requests import BatchCreateStatus

__all__ = [
    "BatchCreateStatus",
]
