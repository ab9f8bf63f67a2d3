"""Criteria and their request bodies.

The official package's import path; the structs are defined in ``elluminate.schemas``.
"""

from ._wire import (
    CreateCriteriaRequest,
    Criterion,
    CriterionIn,
    EditCriterionRequest,
)

__all__ = [
    "CreateCriteriaRequest",
    "Criterion",
    "CriterionIn",
    "EditCriterionRequest",
]
