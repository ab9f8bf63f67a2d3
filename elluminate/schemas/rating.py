"""Ratings, rating modes and their request bodies.

The official package's import path; the structs are defined in ``elluminate.schemas``.
"""

from ._enums import RatingMode, RatingValue
from ._wire import (
    BatchCreateRatingRequest,
    BatchCreateRatingResponseStatus,
    CreateRatingRequest,
    Rating,
)

__all__ = [
    "BatchCreateRatingRequest",
    "BatchCreateRatingResponseStatus",
    "CreateRatingRequest",
    "Rating",
    "RatingMode",
    "RatingValue",
]
