"""The experiment map view (rows and responses without messages).

The official package's import path; the structs are defined in ``elluminate.schemas``.
"""

from ._wire import (
    ExperimentMap,
    ExperimentMapResponse,
    ExperimentMapSample,
    PersonaMinimal,
)

__all__ = [
    "ExperimentMap",
    "ExperimentMapResponse",
    "ExperimentMapSample",
    "PersonaMinimal",
]
