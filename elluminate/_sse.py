"""Incremental Server-Sent Events parser (pure; fed line by line by either transport)."""

from __future__ import annotations

from typing import Any

import msgspec

from .exceptions import TransportError

MAX_EVENT_BYTES = 1024 * 1024


class SSEError(TransportError, ValueError):
    """A stream that breaks the SSE rules: an event over 1 MiB, or data that is not a JSON object.

    A TransportError (the stream is unusable, like a dropped one: progress waits fall back to
    polling) and a ValueError (what such a stream raised before).
    """


class SSEParser:
    """Collects ``data:`` lines into events; ``feed(line)`` returns a finished event or None.

    Comment lines (``:``) and ``event:``/``id:``/``retry:`` fields are accepted and ignored.
    Each event's data must be a JSON object; :class:`SSEError` says when it is not, or when an
    event grows over :data:`MAX_EVENT_BYTES`.
    """

    def __init__(self) -> None:
        self._data: list[bytes] = []
        self._size = 0

    def feed(self, line: bytes) -> dict[str, Any] | None:
        line = line.rstrip(b"\r\n")
        if not line:
            return self._dispatch()
        if line.startswith(b":"):
            return None
        field, _, value = line.partition(b":")
        if value.startswith(b" "):
            value = value[1:]
        if field == b"data":
            self._size += len(value) + 1
            if self._size > MAX_EVENT_BYTES:
                raise SSEError("SSE event larger than 1 MiB")
            self._data.append(value)
        return None

    def _dispatch(self) -> dict[str, Any] | None:
        if not self._data:
            return None
        payload = b"\n".join(self._data)
        self._data = []
        self._size = 0
        try:
            event = msgspec.json.decode(payload)
        except msgspec.DecodeError as exc:
            raise SSEError(f"SSE event data is not JSON: {payload[:200]!r}") from exc
        if not isinstance(event, dict):
            raise SSEError(f"SSE event data is not a JSON object: {payload[:200]!r}")
        return event


def format_event(data: bytes) -> bytes:
    """One SSE event carrying ``data`` (a JSON document without newlines)."""
    return b"data: " + data + b"\n\n"
