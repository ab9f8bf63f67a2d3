"""The elluminate error hierarchy (shared by the SDK and the local server).

Every error raised by the SDK for a failed call is an :class:`ElluminateError`. HTTP answers
map to :class:`APIError` subclasses by status; failures without an HTTP answer raise
:class:`TransportError` (the original library error is its ``__cause__``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

_SECRET_QUERY = re.compile(r"(api_key|token|key|secret|password)", re.IGNORECASE)


@dataclass(frozen=True)
class ResponseInfo:
    """What is kept of a failed HTTP answer (the raw response object is not kept)."""

    status_code: int | None
    method: str | None = None
    url: str | None = None
    body: Any = None
    content_type: str | None = None

    @staticmethod
    def redact_url(url: str) -> str:
        """Replace the query string by ``?<redacted>`` if it mentions a secret."""
        base, sep, query = url.partition("?")
        if sep and _SECRET_QUERY.search(query):
            return f"{base}?<redacted>"
        return url

    @classmethod
    def from_response(cls, response: Any) -> ResponseInfo:
        """What to keep of an HTTP response object (httpx, requests or this SDK's own).

        The body is parsed as JSON when it is JSON, else kept as text cut to 1000 characters.
        """
        status = getattr(response, "status_code", None)
        if status is None:
            status = getattr(response, "status", None)
        request = getattr(response, "request", None)
        method = getattr(request, "method", None) or getattr(response, "method", None)
        url = getattr(request, "url", None) or getattr(response, "url", None)
        headers = getattr(response, "headers", None) or {}
        content_type = getattr(response, "content_type", None) or headers.get("content-type")
        content = getattr(response, "content", b"")
        if isinstance(content, str):
            content = content.encode()
        return cls(
            status_code=status,
            method=method,
            url=cls.redact_url(str(url)) if url is not None else None,
            body=_parse_body(content or b""),
            content_type=content_type or None,
        )


def _parse_body(content: bytes) -> Any:
    """JSON if the bytes parse as JSON, else the text (cut to 1000 characters)."""
    if not content:
        return ""
    try:
        return json.loads(content)
    except ValueError:
        text = content.decode("utf-8", errors="replace")
        return text if len(text) <= 1000 else text[:1000] + "..."


class ElluminateError(Exception):
    """Base of every error raised by elluminate.

    ``attempts`` is how many times the failed HTTP request was sent (retries included) when
    the error comes from a request; the message mentions it when it is more than 1. It is 0
    for errors that did not come from sending a request (e.g. a name lookup with no match).
    """

    attempts: int = 0


class TransportError(ElluminateError):
    """No HTTP answer: connection refused or reset, timeout, protocol or stream error."""


class RequestTimeoutError(TransportError, TimeoutError):
    """An HTTP request did not complete within the client's ``timeout``."""


class ConnectError(TransportError):
    """No connection: refused, unknown host, unreachable. The server never saw the request."""

    request_sent = False


class ConnectTimeoutError(ConnectError, RequestTimeoutError):
    """Connecting took longer than the timeout: the server never saw the request."""


class AmbiguousTransportError(TransportError):
    """The connection broke (reset, closed, cut off) after the request may have reached the
    server, so it may have been carried out; a POST is never resent after one."""

    request_sent = True


class APIError(ElluminateError):
    """The server answered with a non-2xx status."""

    def __init__(
        self,
        message: Any,
        status_code: int | None = None,
        response: Any = None,
        *,
        response_info: ResponseInfo | None = None,
    ) -> None:
        if response_info is None and response is not None:
            response_info = ResponseInfo.from_response(response)
        if status_code is None and response_info is not None:
            status_code = response_info.status_code
        self.message = message
        self.status_code = status_code
        self.response_info = response_info
        super().__init__(str(self))

    def __str__(self) -> str:
        text = f"[{self.status_code}] {self.message}"
        if self.status_code is None:
            text = str(self.message)
        return f"{text} (after {self.attempts} attempts)" if self.attempts > 1 else text

    def __reduce__(self) -> tuple[Any, ...]:
        return (
            _rebuild_api_error,
            (type(self), self.message, self.status_code, self.response_info),
        )

    @property
    def body(self) -> Any:
        """The parsed JSON error body (or text), if any."""
        return self.response_info.body if self.response_info else None


def _rebuild_api_error(
    cls: type[APIError], message: Any, status_code: int | None, info: ResponseInfo | None
) -> APIError:
    return cls(message, status_code=status_code, response_info=info)


class BadRequestError(APIError):
    """400 or 422: the request is invalid; the message says what to fix."""


class AuthenticationError(APIError):
    """401: missing or wrong API key / token."""


class PermissionDeniedError(APIError):
    """403: the credentials may not do this."""


class NotFoundError(APIError, ValueError):
    """404, or a name lookup that matched nothing."""


class ConflictError(APIError):
    """409: an object with this identity exists already."""

    def __init__(
        self,
        message: Any,
        status_code: int | None = 409,
        response: Any = None,
        resource_type: str | None = None,
        resource_name: str | None = None,
        resource_id: int | None = None,
        *,
        response_info: ResponseInfo | None = None,
    ) -> None:
        self.resource_type = resource_type
        self.resource_name = resource_name
        self.resource_id = resource_id
        super().__init__(message, status_code, response, response_info=response_info)


class RateLimitError(APIError):
    """429: too many requests; ``retry_after`` holds the server's hint in seconds."""

    def __init__(
        self,
        message: Any,
        status_code: int | None = 429,
        response: Any = None,
        retry_after: float | None = None,
        *,
        response_info: ResponseInfo | None = None,
    ) -> None:
        self.retry_after = retry_after
        super().__init__(message, status_code, response, response_info=response_info)


class ServerError(APIError):
    """5xx: the server failed."""


class ValidationError(ElluminateError):
    """Data the server would not accept."""


class TaskMatchError(BadRequestError, ValidationError):
    """Agent results matched no task of the experiment (a 400 answer).

    ``accepted_tasks`` (up to 10 tasks with ``task_id`` and ``task_name``),
    ``accepted_tasks_total`` and the per-result ``reasons`` come from the server's answer.
    """

    def __init__(
        self,
        message: Any,
        status_code: int | None = None,
        response: Any = None,
        accepted_tasks: list[Any] | None = None,
        accepted_tasks_total: int = 0,
        reasons: list[Any] | None = None,
        *,
        response_info: ResponseInfo | None = None,
    ) -> None:
        self.accepted_tasks = accepted_tasks or []
        self.accepted_tasks_total = accepted_tasks_total
        self.reasons = reasons or []
        super().__init__(message, status_code, response, response_info=response_info)


class PartialUploadError(ElluminateError):
    """Some uploaded results were rejected (the accepted ones are stored)."""

    def __init__(self, message: str, response: Any = None) -> None:
        self.response = response
        super().__init__(message)


class ModelNotBoundError(ElluminateError):
    """A rich-model method was called on an object no client produced."""

    def __init__(self, model_type: str, hint: str | None = None) -> None:
        self.model_type = model_type
        self.hint = hint
        super().__init__(
            f"{model_type} is not bound to a client: obtain it from a Client/AsyncClient call"
            + (f" ({hint})" if hint else "")
        )


class ConfigurationError(ElluminateError, ValueError):
    """The client is configured inconsistently (e.g. no credentials)."""


class AmbiguousProjectError(ElluminateError):
    """OAuth credentials see several projects and no ``project_id`` was given."""


class RetryExhaustedError(ElluminateError):
    """Retries ran out (the original error is re-raised instead; kept for compatibility)."""

    def __init__(
        self, message: str, last_exception: BaseException | None = None, attempts: int = 0
    ) -> None:
        self.last_exception = last_exception
        self.attempts = attempts
        super().__init__(message)


class TaskFailedError(ElluminateError, RuntimeError):
    """A background task ended in FAILURE, REVOKED, REJECTED or TIMEOUT."""

    def __init__(self, status: str, error_msg: str | None, task_id: str | None = None) -> None:
        self.status = status
        self.error_msg = error_msg
        self.task_id = task_id
        super().__init__(
            f"task {task_id or ''} ended {status}: {error_msg or 'no message'}".replace("  ", " ")
        )


class TaskTimeoutError(ElluminateError, TimeoutError):
    """A blocking wait exceeded its ``timeout``."""


_STATUS_MAP: dict[int, type[APIError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    422: BadRequestError,
    429: RateLimitError,
}


def error_class_for_status(status: int) -> type[APIError]:
    """The APIError subclass for an HTTP status (CONTRACT.md 6.2)."""
    if status >= 500:
        return ServerError
    return _STATUS_MAP.get(status, APIError)


def api_error_for(response: Any, message: Any = None) -> APIError:
    """The APIError subclass for ``response`` (an httpx, requests or this SDK's response).

    The message is ``message`` if given, else the body's ``detail``, else the body's text,
    else ``HTTP <status>``. A 429's ``Retry-After`` becomes ``retry_after``; a 409's
    ``prompt_template_id`` becomes ``resource_id``.
    """
    from ._retry import parse_retry_after  # imported here: _retry may import this module

    info = ResponseInfo.from_response(response)
    status = info.status_code
    body = info.body
    if message is None:
        if isinstance(body, dict) and body.get("detail"):
            message = body["detail"]
        else:
            content = getattr(response, "content", b"") or b""
            text = content.decode("utf-8", "replace") if isinstance(content, bytes) else content
            message = text or f"HTTP {status}"
    cls = error_class_for_status(status) if isinstance(status, int) else APIError
    if cls is RateLimitError:
        headers = getattr(response, "headers", None) or {}
        retry_after = getattr(response, "retry_after", None) or headers.get("retry-after")
        return RateLimitError(
            message, status, retry_after=parse_retry_after(retry_after), response_info=info
        )
    if cls is ConflictError:
        resource_id = body.get("prompt_template_id") if isinstance(body, dict) else None
        return ConflictError(message, status, resource_id=resource_id, response_info=info)
    return cls(message, status, response_info=info)


def raise_api_error(response: Any, message: str | None = None) -> None:
    """Raise the APIError subclass for ``response`` (see :func:`api_error_for`)."""
    raise api_error_for(response, message)


__all__ = [
    "APIError",
    "AmbiguousProjectError",
    "AmbiguousTransportError",
    "AuthenticationError",
    "BadRequestError",
    "ConfigurationError",
    "ConflictError",
    "ConnectError",
    "ConnectTimeoutError",
    "ElluminateError",
    "ModelNotBoundError",
    "NotFoundError",
    "PartialUploadError",
    "PermissionDeniedError",
    "RateLimitError",
    "RequestTimeoutError",
    "ResponseInfo",
    "RetryExhaustedError",
    "ServerError",
    "TaskFailedError",
    "TaskMatchError",
    "TaskTimeoutError",
    "TransportError",
    "ValidationError",
    "api_error_for",
    "error_class_for_status",
    "raise_api_error",
]
