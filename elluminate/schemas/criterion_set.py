"""Criterion sets and their request body.

The official package's import path; the structs are defined in ``elluminate.schemas``.
"""

from ._wire import (
    CreateCriterionSetRequest,
    CriterionSet,
)

__all__ = [
    "CreateCriterionSetRequest",
    "CriterionSet",
]
