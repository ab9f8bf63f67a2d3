"""Organizations.

The official package's import path; the structs are defined in ``elluminate.schemas``.
"""

from ._wire import (
    Organization,
)

__all__ = [
    "Organization",
]
