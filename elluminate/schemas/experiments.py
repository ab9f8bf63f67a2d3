"""Experiments, their results and request bodies.

The official package's import path; the structs are defined in ``elluminate.schemas``.
"""

from ._wire import (
    CreateExperimentRequest,
    Experiment,
    ExperimentFilter,
    ExperimentGenerationStatus,
    ExperimentResults,
    MeanRating,
    RunExperimentRequest,
)

__all__ = [
    "CreateExperimentRequest",
    "Experiment",
    "ExperimentFilter",
    "ExperimentGenerationStatus",
    "ExperimentResults",
    "MeanRating",
    "RunExperimentRequest",
]
