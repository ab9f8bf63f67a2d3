"""Pure helpers shared by both transports."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .._sse import MAX_EVENT_BYTES, SSEError
from ..exceptions import RequestTimeoutError, TransportError

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


class ConnectTimeoutError(ConnectError, RequestTimeoutError):
    """Connecting took longer than the timeout: the server never saw the request."""


class AmbiguousTransportError(TransportError):
    """The connection failed after the request may have reached the server."""

    request_sent = True


class LineSplitter:
    """Cuts a byte stream into lines that keep their newline (both transports' SSE reader).

    Chunk boundaries never create or merge lines (``requests``' ``iter_lines`` invents an
    empty line when a chunk ends with the delimiter; aiohttp's ``readline`` refuses lines
    over 512 KiB). A line longer than ``max_line`` raises SSEError, like an SSE event
    over 1 MiB does in the parser.
    """

    def __init__(self, max_line: int = MAX_EVENT_BYTES + 1024) -> None:
        self._buf = bytearray()
        self.max_line = max_line

    def feed(self, chunk: bytes) -> list[bytes]:
        buf = self._buf
        scanned = len(buf)  # the pending bytes hold no newline
        buf += chunk
        lines: list[bytes] = []
        start = 0
        end = buf.find(b"\n", scanned)
        while end >= 0 and end + 1 - start <= self.max_line:
            lines.append(bytes(buf[start : end + 1]))
            start = end + 1
            end = buf.find(b"\n", start)
        if start:
            del buf[:start]
        if len(buf) > self.max_line and buf.find(b"\n", 0, self.max_line) < 0:
            raise SSEError(f"SSE line longer than {self.max_line} bytes")
        return lines

    def flush(self) -> bytes:
        """The unterminated rest of the stream (empty if it ended with a newline)."""
        rest, self._buf = bytes(self._buf), bytearray()
        return rest


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
