"""Criteria and their request bodies.

The official package's import path; the structs are defined in ``elluminate.schemas``.
"""

from ._requests import CreateCriteriaRequest, EditCriterionRequest
from ._wire import Criterion, CriterionIn

__all__ = [
    "CreateCriteriaRequest",
    "Criterion",
    "CriterionIn",
    "EditCriterionRequest",
]
