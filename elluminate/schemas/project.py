"""Projects.

The official package's import path; the structs are defined in ``elluminate.schemas``.
"""

from ._wire import (
    Project,
)

__all__ = [
    "Project",
]
