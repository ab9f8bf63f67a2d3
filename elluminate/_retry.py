"""Retry policy shared by both twins (pure: decisions and waits, no I/O)."""

from __future__ import annotations

import math
import random
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS", "TRACE"})

#: The longest wait a ``Retry-After`` header can ask for (a day); longer ones are capped.
MAX_RETRY_AFTER = 86400.0

# delay-seconds: digits, optionally signed and with a fraction; no exponent, nan or inf.
_DELAY_SECONDS = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)", re.ASCII)


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
        if retry_after is not None and not math.isnan(retry_after):
            return min(max(retry_after, 0.0), self.max_wait)
        base = self.multiplier * 2.0 ** (failed_attempts - 1)
        wait = min(self.max_wait, max(self.min_wait, base))
        if self.jitter:
            wait = min(self.max_wait, wait * (1.0 + random.uniform(0.0, self.jitter)))
        return wait


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (delay-seconds or an HTTP-date).

    The answer is always None (no value, or one that says nothing usable: garbage, ``nan``,
    ``inf``, an impossible date) or a finite number from 0 to :data:`MAX_RETRY_AFTER`:
    negative delays and past dates give 0, huge ones the cap. Delay-seconds may carry a sign
    and a fraction (``1.5``), which some servers send although RFC 9110 asks for digits.
    ``now`` (seconds since the epoch, default the current time) is what a date is relative to.
    """
    if value is None:
        return None
    text = value.strip()
    seconds: float | None
    if _DELAY_SECONDS.fullmatch(text):
        seconds = float(text)  # a digit string too long for a float gives inf: capped below
    else:
        seconds = _seconds_until_http_date(text, time.time() if now is None else now)
    if seconds is None or math.isnan(seconds):
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def retry_after_from_headers(
    headers: Mapping[str, str], *, now: float | None = None
) -> float | None:
    """Seconds to wait from response headers: ``retry-after-ms`` (OpenAI's) or ``Retry-After``.

    Header names are matched case-insensitively; the bounds are those of
    :func:`parse_retry_after`. An unusable ``retry-after-ms`` falls back to ``Retry-After``.
    """
    lowered = {key.lower(): value for key, value in headers.items()}
    millis = lowered.get("retry-after-ms")
    if millis is not None and _DELAY_SECONDS.fullmatch(millis.strip()):
        seconds = float(millis.strip()) / 1000.0
        return min(max(seconds, 0.0), MAX_RETRY_AFTER)
    return parse_retry_after(lowered.get("retry-after"), now=now)


def _seconds_until_http_date(text: str, now: float) -> float | None:
    try:
        when = parsedate_to_datetime(text)
    except Exception:  # header text is arbitrary: any parse failure means "not a date"
        return None
    if when is None:  # older Pythons return None for some malformed dates
        return None
    if when.tzinfo is None:  # "-0000": UTC without a claim about the origin's zone
        when = when.replace(tzinfo=timezone.utc)
    return (when - datetime.fromtimestamp(now, timezone.utc)).total_seconds()
