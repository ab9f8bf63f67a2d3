"""Pure helpers shared by both transports."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..exceptions import TransportError

Params = list[tuple[str, str]]


@dataclass(frozen=True)
class RawResponse:
    """One HTTP answer as the transports hand it over: status, a few headers, the body bytes."""

    status: int
    content: bytes
    content_type: str
    retry_after: str | None
    method: str
    url: str


class ConnectError(TransportError):
    """The connection could not be established: the server never saw the request."""

    request_sent = False


class AmbiguousTransportError(TransportError):
    """The connection failed after the request may have reached the server."""

    request_sent = True


def _param_value(value: Any) -> str:
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return ""
    if hasattr(value, "value") and not isinstance(value, (str, int, float)):
        return str(value.value)
    return str(value)


def encode_params(params: Mapping[str, Any] | None) -> Params:
    """Query pairs: booleans as true/false, lists as repeated keys, None values dropped."""
    if not params:
        return []
    pairs: Params = []
    for key, value in params.items():
        if value is None:
            continue
        if isinstance(value, (list, tuple)):
            pairs.extend((key, _param_value(item)) for item in value)
        else:
            pairs.append((key, _param_value(value)))
    return pairs


def encode_multipart(
    field: str, filename: str, content_type: str, payload: bytes
) -> tuple[bytes, str]:
    """A one-part ``multipart/form-data`` body and its Content-Type header value."""
    boundary = os.urandom(16).hex()
    head = (
        f"--{boundary}\r\n"
        f'Content-Disposition: form-data; name="{field}"; filename="{filename}"\r\n'
        f"Content-Type: {content_type}\r\n\r\n"
    ).encode()
    body = head + payload + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"
