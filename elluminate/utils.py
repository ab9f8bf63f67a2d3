"""Retry configuration and small helpers, under the import path of the official package.

``from elluminate.utils import RetryConfig`` works as there; the retry policy itself is
applied by the transport (see ``RetryConfig``).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec, TypeVar

from ._retry import IDEMPOTENT_METHODS, RetryConfig
from .exceptions import api_error_for

P = ParamSpec("P")
T = TypeVar("T")

DEFAULT_RETRY_CONFIG = RetryConfig()
IDEMPOTENT_HTTP_METHODS = IDEMPOTENT_METHODS


def retry_predicate(exception: BaseException) -> bool:
    """Whether the default policy retries an idempotent request that raised ``exception``."""
    return DEFAULT_RETRY_CONFIG.should_retry(exception)


def raise_for_status_with_detail(response: Any) -> None:
    """Raise the mapped APIError for a non-2xx ``response`` (httpx, requests or ours)."""
    status = getattr(response, "status_code", None)
    if status is None:
        status = getattr(response, "status", 0)
    if not 200 <= int(status or 0) < 300:
        raise api_error_for(response)


def run_async(async_func: Callable[P, Awaitable[T]]) -> Callable[P, T]:
    """A blocking function that runs ``async_func`` to completion in a new event loop.

    Not for use inside a running loop (there, await the coroutine instead).
    """

    @functools.wraps(async_func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        async def call() -> T:
            return await async_func(*args, **kwargs)

        return asyncio.run(call())

    return wrapper


__all__ = [
    "DEFAULT_RETRY_CONFIG",
    "IDEMPOTENT_HTTP_METHODS",
    "RetryConfig",
    "raise_for_status_with_detail",
    "retry_predicate",
    "run_async",
]
