"""Pure helpers shared by both transports."""

from __future__ import annotations

import errno
import http.client
import os
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from .._sse import MAX_EVENT_BYTES, SSEError
from ..exceptions import AmbiguousTransportError, ConnectError, ConnectTimeoutError

__all__ = [
    "AmbiguousTransportError",
    "ConnectError",
    "ConnectTimeoutError",
    "LineSplitter",
    "Params",
    "RawResponse",
    "causes",
    "connect_error",
    "connection_lost_error",
    "encode_multipart",
    "encode_params",
]

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


def _is_oserror(exc: BaseException, errno_value: int, kind: type[OSError]) -> bool:
    if isinstance(exc, kind) or (isinstance(exc, OSError) and exc.errno == errno_value):
        return True
    # asyncio joins the failures of several addresses into one OSError without an errno.
    return isinstance(exc, OSError) and exc.errno is None and f"[Errno {errno_value}]" in str(exc)


def connect_error(url: str, chain: Sequence[BaseException]) -> ConnectError:
    """The ConnectError for a connection that could not be made, saying why.

    ``chain`` is the library's exception and its causes, outermost first.
    """
    host = urlsplit(url).hostname or url
    if any(isinstance(e, socket.gaierror) for e in chain):
        reason = f"the host name {host!r} could not be resolved (is it spelled right?)"
    elif any(_is_oserror(e, errno.ECONNREFUSED, ConnectionRefusedError) for e in chain):
        reason = "connection refused (is the server running, and is the port right?)"
    else:
        oserror = next((e for e in reversed(chain) if isinstance(e, OSError)), chain[0])
        reason = getattr(oserror, "strerror", None) or str(oserror) or repr(oserror)
    return ConnectError(f"cannot connect to {url}: {reason}")


def connection_lost_error(
    what: str, chain: Sequence[BaseException], *, closed: bool, mid_answer: bool
) -> AmbiguousTransportError:
    """The AmbiguousTransportError for a connection that broke after the request was sent.

    ``closed``: the library saw the connection end early (FIN, or an answer shorter than it
    said); a reset (RST) is found in ``chain``. ``mid_answer``: part of the answer had arrived.
    Both twins word the same event the same way.
    """
    reset = any(
        _is_oserror(e, errno.ECONNRESET, ConnectionResetError)
        and not isinstance(e, http.client.RemoteDisconnected)  # a clean close, despite its base
        for e in chain
    )
    if mid_answer and (closed or reset):
        reason = "the connection broke before the whole answer arrived"
    elif reset:
        reason = "the connection was reset before any answer"
    elif closed:
        reason = "the server closed the connection before any answer"
    else:
        reason = repr(chain[0])
    return AmbiguousTransportError(f"{what} failed: {reason}")


def causes(exc: BaseException) -> list[BaseException]:
    """``exc`` and what caused it (``__cause__``, ``__context__``, a wrapped first argument,
    urllib3's ``reason``), outermost first."""
    seen: set[int] = set()
    found: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        found.append(cur)
        reason = getattr(cur, "reason", None)
        if isinstance(reason, BaseException):
            cur = reason
            continue
        cur = (
            cur.__cause__
            or cur.__context__
            or (cur.args[0] if cur.args and isinstance(cur.args[0], BaseException) else None)
        )
    return found


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
