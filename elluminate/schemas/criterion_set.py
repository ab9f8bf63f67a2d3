"""Criterion sets and their request body.

The official package's import path; the structs are defined in ``elluminate.schemas``.
"""

from ._requests import CreateCriterionSetRequest
from ._wire import CriterionSet

__all__ = [
    "CreateCriterionSetRequest",
    "CriterionSet",
]
