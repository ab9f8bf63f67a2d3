"""Experiments, their results and request bodies.

The official package's import path; the structs are defined in ``elluminate.schemas``.
"""

from ._requests import (
    CreateExperimentRequest,
    ExperimentFilter,
    ExperimentGenerationStatus,
    RunExperimentRequest,
)
from ._wire import Experiment, ExperimentResults, MeanRating

__all__ = [
    "CreateExperimentRequest",
    "Experiment",
    "ExperimentFilter",
    "ExperimentGenerationStatus",
    "ExperimentResults",
    "MeanRating",
    "RunExperimentRequest",
]
