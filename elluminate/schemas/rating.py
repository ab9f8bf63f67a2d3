"""Ratings, rating modes and their request bodies.

The official package's import path; the structs are defined in ``elluminate.schemas``.
"""

from ._enums import RatingMode, RatingValue
from ._requests import (
    BatchCreateRatingRequest,
    BatchCreateRatingResponseStatus,
    CreateRatingRequest,
)
from ._wire import Rating

__all__ = [
    "BatchCreateRatingRequest",
    "BatchCreateRatingResponseStatus",
    "CreateRatingRequest",
    "Rating",
    "RatingMode",
    "RatingValue",
]
