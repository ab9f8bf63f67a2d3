"""elluminate: an async-first SDK for the elluminate LLM-evaluation platform.

``AsyncClient`` for asyncio code and ``Client`` for blocking code have identical methods;
rich models returned by ``AsyncClient`` carry ``a``-prefixed coroutines (``aadd_many``).
The local server lives in ``elluminate.server`` and is imported only when used.
"""

from . import exceptions, schemas, streaming
from ._async.client import AsyncClient
from ._async.evaluate import aevaluate
from ._async.local import alocal_client
from ._retry import RetryConfig
from ._sync.client import Client
from ._sync.evaluate import evaluate, reset_default_client
from ._sync.local import local_client
from ._version import __version__
from .exceptions import (
    APIError,
    AuthenticationError,
    ConflictError,
    ElluminateError,
    NotFoundError,
    TransportError,
)
from .schemas import RatingMode, RatingValue, TaskStatus
from .streaming import BatchStatusEvent, ExperimentStatusEvent

__all__ = [
    "APIError",
    "AsyncClient",
    "AuthenticationError",
    "BatchStatusEvent",
    "Client",
    "ConflictError",
    "ElluminateError",
    "ExperimentStatusEvent",
    "NotFoundError",
    "RatingMode",
    "RatingValue",
    "RetryConfig",
    "TaskStatus",
    "TransportError",
    "__version__",
    "aevaluate",
    "alocal_client",
    "local_client",
    "evaluate",
    "reset_default_client",
    "exceptions",
    "schemas",
    "streaming",
]
