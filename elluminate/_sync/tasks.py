# DO NOT EDIT: generated from elluminate/_async/tasks.py by scripts/unasync.py; edit the _async original.
"""Waiting for long-running server tasks (mixed into ``AsyncClient``): the SSE progress
stream with a polling fallback, deadlines and the checks of stream events (CONTRACT.md 5).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator
from contextlib import closing
from typing import TYPE_CHECKING, Any

from .._compat import sleep
from .._progress import TaskProgress
from .._sse import SSEError, SSEParser
from ..exceptions import TaskFailedError, TaskTimeoutError, TransportError
from ..schemas import TaskStatus
from ..streaming import parse_status
from ._http import decoder_for

if TYPE_CHECKING:
    from ._http import HTTP

logger = logging.getLogger("elluminate")

_WAIT_STREAM_INTERVAL = 0.1
_POLL_MIN, _POLL_MAX = 0.05, 1.0


def check_polling_interval(polling_interval: float) -> None:
    """ValueError unless ``polling_interval`` is between 0.1 and 10 seconds."""
    if not 0.1 <= polling_interval <= 10.0:
        raise ValueError("polling_interval must be between 0.1 and 10.0 seconds")


def task_deadline(timeout: float | None) -> float | None:
    """The monotonic time ``timeout`` seconds from now (None: no deadline)."""
    if timeout is None:
        return None
    if timeout <= 0:
        raise ValueError("timeout must be a positive number of seconds (or None to wait forever)")
    return time.monotonic() + timeout


def check_deadline(deadline: float | None, what: str) -> None:
    """TaskTimeoutError if ``deadline`` has passed."""
    if deadline is not None and time.monotonic() > deadline:
        raise TaskTimeoutError(f"{what} did not finish within the timeout")


class TasksMixin:
    """Waiting for and following the long-running tasks of the client."""

    _http: HTTP
    timeout: float

    def _wait_batch(
        self,
        status_path: str,
        deadline: float | None,
        stream: bool,
        progress: TaskProgress | None = None,
    ) -> dict[str, Any]:
        """Wait for a task to end; returns its SUCCESS payload, raises on any other end."""
        last: dict[str, Any] = {}
        for payload in self._follow_task(
            status_path, _WAIT_STREAM_INTERVAL, stream=stream, deadline=deadline
        ):
            last = payload
            if progress is not None:
                progress.update(payload)
        status = parse_status(last.get("status"))
        if status is not TaskStatus.SUCCESS:
            raise TaskFailedError(
                status.value, last.get("error_msg"), status_path.rsplit("/", 1)[-1]
            )
        return last

    def _follow_task(
        self,
        status_path: str,
        polling_interval: float,
        *,
        stream: bool,
        deadline: float | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Status payloads of a task until exactly one terminal payload.

        Follows the SSE stream when there is one; if the stream breaks before a terminal
        event (dropped, cut, or an event that is malformed or over 1 MiB), continues by
        polling, so the sequence still ends with one terminal payload, and the log text the
        stream delivered is not delivered again.
        """
        delivered = 0  # characters of log text yielded so far (the task log is append-only)
        if stream:
            parser = SSEParser()
            # A silent stream must not outlive the deadline: bound each read by the time left.
            read_timeout = (
                None
                if deadline is None
                else max(0.1, min(self.timeout, deadline - time.monotonic()))
            )
            lines = self._http.stream_lines(
                f"{status_path}/stream",
                {"polling_interval": polling_interval, "connection_uuid": str(uuid.uuid4())},
                read_timeout=read_timeout,
            )
            try:
                with closing(lines):
                    for line in lines:
                        check_deadline(deadline, "the task")
                        event = parser.feed(line)
                        if event is None:
                            continue
                        status = _stream_event_status(event)
                        delivered += len(event.get("logs_delta") or "")
                        yield event
                        if status.is_terminal:
                            return
            except TransportError as exc:
                logger.info("progress stream broke (%s); polling instead", exc)
        # A consumer id of its own: on any server its log cursor starts at the beginning of
        # the log, whatever the stream's cursor was; the part the stream delivered is skipped.
        consumer = str(uuid.uuid4())
        skip = delivered
        interval = _POLL_MIN
        decoder = decoder_for(dict[str, Any])
        while True:
            check_deadline(deadline, "the task")
            resp = self._http.request(
                "GET", status_path, params={"connection_uuid": consumer}
            )
            payload: dict[str, Any] = decoder.decode(resp.content)
            status = parse_status(payload.get("status"))
            delta = payload.get("logs_delta")
            if skip and isinstance(delta, str):
                payload["logs_delta"] = delta[skip:]
                skip -= min(skip, len(delta))
            yield payload
            if status.is_terminal:
                return
            sleep(interval)
            interval = min(_POLL_MAX, interval * 1.5, max(polling_interval, _POLL_MIN))


_EVENT_COUNTERS = ("completed_responses", "completed_ratings", "total_responses")


def _stream_event_status(event: dict[str, Any]) -> TaskStatus:
    """The status of a stream event; SSEError if the event breaks CONTRACT.md 5.5."""
    try:
        status = parse_status(event.get("status"))
    except ValueError as exc:
        raise SSEError(f"SSE event without a valid status: {exc}") from None
    for key in _EVENT_COUNTERS:
        value = event.get(key)
        if value is not None and (type(value) is not int or value < 0):
            raise SSEError(f"SSE event with a bad {key!r}: {value!r}")
    for key in ("logs_delta", "error_msg"):
        value = event.get(key)
        if value is not None and not isinstance(value, str):
            raise SSEError(f"SSE event with a non-string {key!r}: {value!r}")
    return status
