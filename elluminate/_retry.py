"""Retry policy shared by both twins (pure: decisions and waits, no I/O)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS", "TRACE"})


@dataclass(frozen=True)
class RetryConfig:
    """How failed requests are retried.

    ``max_attempts`` counts the first try; ``RetryConfig(max_attempts=1)`` disables retries.
    Waits grow as ``multiplier * 2**(n-1)`` clamped to ``[min_wait, max_wait]``, with up to
    ``jitter`` (a fraction) added at random; the ``Retry-After`` of a 429 or 503 is honoured
    instead (capped at ``max_wait``). A POST/PATCH is only retried when the request certainly
    did not reach the server (connection refused, connect timeout) or the server said so
    (429, 503); never after a reset, a read timeout, a 502 or a 504, which it may have seen.
    The error raised when retries stop carries ``attempts`` (how many times it was sent).
    """

    max_attempts: int = 3
    min_wait: float = 1.0
    max_wait: float = 30.0
    multiplier: float = 2.0
    retry_on_429: bool = True
    retry_on_503: bool = True
    retry_on_timeout: bool = True
    jitter: float = 0.1

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("RetryConfig.max_attempts must be at least 1 (1 = no retries)")
        if self.min_wait < 0 or self.max_wait < self.min_wait:
            raise ValueError("RetryConfig needs 0 <= min_wait <= max_wait")
        if self.jitter < 0:
            raise ValueError("RetryConfig.jitter must not be negative")

    def should_retry_status(self, method: str, status: int) -> bool:
        """Whether an HTTP answer with ``status`` may be retried for ``method``."""
        if status == 429:
            return self.retry_on_429
        if status == 503:
            return self.retry_on_503
        if status in (502, 504):
            return self.retry_on_503 and method.upper() in IDEMPOTENT_METHODS
        return False

    def should_retry_error(self, method: str, *, request_sent: bool) -> bool:
        """Whether a failure without an HTTP answer may be retried.

        ``request_sent`` is False only when the connection was never established, so the
        server cannot have seen the request; otherwise only idempotent methods are retried.
        """
        if not self.retry_on_timeout:
            return False
        return not request_sent or method.upper() in IDEMPOTENT_METHODS

    def should_retry(self, exception: BaseException, *, idempotent: bool = True) -> bool:
        """Whether a request that failed with ``exception`` may be sent again.

        ``idempotent``: the request's method is idempotent (GET, PUT, DELETE, ...).
        """
        from .exceptions import APIError, TransportError

        method = "GET" if idempotent else "POST"
        if isinstance(exception, APIError) and exception.status_code is not None:
            return self.should_retry_status(method, exception.status_code)
        if isinstance(exception, TransportError):
            sent = getattr(exception, "request_sent", True)
            return self.should_retry_error(method, request_sent=sent)
        return False

    def wait_seconds(self, failed_attempts: int, retry_after: float | None = None) -> float:
        """Seconds to wait after the ``failed_attempts``-th failure."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_wait)
        base = self.multiplier * 2.0 ** (failed_attempts - 1)
        wait = min(self.max_wait, max(self.min_wait, base))
        if self.jitter:
            wait = min(self.max_wait, wait * (1.0 + random.uniform(0.0, self.jitter)))
        return wait


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delay-seconds or HTTP-date); None if unusable."""
    if value is None:
        return None
    value = value.strip()
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max((when - datetime.now(timezone.utc)).total_seconds(), 0.0)
