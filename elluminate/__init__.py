"""elluminate: an async-first SDK for the elluminate LLM-evaluation platform.

``AsyncClient`` for asyncio code and ``Client`` for blocking code have identical methods;
rich models returned by ``AsyncClient`` carry ``a``-prefixed coroutines (``aadd_many``).
The local server lives in ``elluminate.server`` and is imported only when used.
"""

from . import async_client, client, exceptions, schemas, streaming, utils
from ._async.client import AsyncClient
from ._async.local import alocal_client
from ._defaults import CollectionDefaults, CriterionSetDefaults, LLMConfigDefaults
from ._sync.client import Client
from ._sync.local import local_client
from ._version import __version__
from .evaluate import aevaluate, evaluate, reset_default_client
from .exceptions import (
    AmbiguousProjectError,
    APIError,
    AuthenticationError,
    ConfigurationError,
    ConflictError,
    ElluminateError,
    ModelNotBoundError,
    NotFoundError,
    PartialUploadError,
    PermissionDeniedError,
    RateLimitError,
    ResponseInfo,
    RetryExhaustedError,
    ServerError,
    TaskMatchError,
    TransportError,
    ValidationError,
)
from .schemas import (
    CriterionIn,
    ExperimentMap,
    ExperimentMapResponse,
    ExperimentMapSample,
    GenerationMetadata,
    LLMConfig,
    PersonaMinimal,
    RatingMode,
    RatingValue,
    TaskStatus,
)
from .streaming import BatchProgress, BatchStatusEvent, ExperimentProgress, ExperimentStatusEvent
from .utils import RetryConfig

__all__ = [
    "APIError",
    "AmbiguousProjectError",
    "AsyncClient",
    "AuthenticationError",
    "BatchProgress",
    "BatchStatusEvent",
    "Client",
    "CollectionDefaults",
    "ConfigurationError",
    "ConflictError",
    "CriterionIn",
    "CriterionSetDefaults",
    "ElluminateError",
    "ExperimentMap",
    "ExperimentMapResponse",
    "ExperimentMapSample",
    "ExperimentProgress",
    "ExperimentStatusEvent",
    "GenerationMetadata",
    "LLMConfig",
    "LLMConfigDefaults",
    "ModelNotBoundError",
    "NotFoundError",
    "PartialUploadError",
    "PermissionDeniedError",
    "PersonaMinimal",
    "RateLimitError",
    "RatingMode",
    "RatingValue",
    "ResponseInfo",
    "RetryConfig",
    "RetryExhaustedError",
    "ServerError",
    "TaskMatchError",
    "TaskStatus",
    "TransportError",
    "ValidationError",
    "__version__",
    "aevaluate",
    "alocal_client",
    "async_client",
    "client",
    "evaluate",
    "exceptions",
    "local_client",
    "reset_default_client",
    "schemas",
    "streaming",
    "utils",
]
