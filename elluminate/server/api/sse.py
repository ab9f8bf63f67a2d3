"""The task status endpoints' shared code: polling payloads and SSE streams (CONTRACT.md 5.2,
5.5). The task engine itself is created and started by :func:`elluminate.server.app.create_app`.

Polls: ``{"status", "error_msg", "completed_responses", "completed_ratings",
"total_responses", "logs_delta"}``; an unknown task id answers ``{"status": "PENDING"}``.
``logs_delta`` is per ``connection_uuid``; without one it is the whole log. A poll WITHOUT
``connection_uuid`` (the official SDK's blocking waits, which only stop on SUCCESS/FAILURE)
sees REVOKED/REJECTED/TIMEOUT as ``FAILURE`` (real state in ``task_status``); polls with a
``connection_uuid`` and SSE streams report the real state.

Streams (``text/event-stream``): the current state at once, then an event whenever the state,
the counters or the log change (non-terminal events at most once per ``polling_interval``;
the terminal event as soon as the task ends: the engine wakes the stream), a ``: keepalive``
comment at least every 15 s, exactly one terminal event, then the end of the stream. For a
task id unknown to this project the stream sends ``{"status": "PENDING"}`` once per interval
for :data:`UNKNOWN_STREAM_SECONDS` and then ends without a terminal event.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from aiohttp import web

from elluminate._sse import format_event

from ..engine.engine import TaskEngine
from ..engine.task_state import TaskState
from .errors import unprocessable
from .http import ENGINE_KEY, project_id

log = logging.getLogger("elluminate.server.api.sse")

KEEPALIVE_SECONDS = 15.0
UNKNOWN_STREAM_SECONDS = 30.0
DEFAULT_POLLING_INTERVAL = 0.5
_encoder = msgspec.json.Encoder()


def get_engine(request: web.Request) -> TaskEngine:
    """The app's task engine."""
    return request.app[ENGINE_KEY]


async def find_task(
    request: web.Request, task_id: str, kind: str, experiment_id: int | None = None
) -> TaskState | None:
    """The task if it is of ``kind`` in the caller's project (and of ``experiment_id``)."""
    state = await get_engine(request).get(project_id(request), task_id)
    if state is None or state.kind != kind:
        return None
    if experiment_id is not None and state.experiment_id != experiment_id:
        return None
    return state


async def status_payload(
    request: web.Request, task_id: str, kind: str, experiment_id: int | None = None
) -> dict[str, Any]:
    """The polling answer for a task (see the module docstring)."""
    consumer = request.query.get("connection_uuid") or None
    state = await find_task(request, task_id, kind, experiment_id)
    return await get_engine(request).payload(state, consumer=consumer, compat=consumer is None)


def polling_interval(request: web.Request) -> float:
    """The ``polling_interval`` query parameter (0.1 to 10 s, default 0.5)."""
    raw = request.query.get("polling_interval")
    if raw is None or not raw.strip():
        return DEFAULT_POLLING_INTERVAL
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0.1 <= value <= 10.0:
        raise unprocessable(
            f"query parameter 'polling_interval' must be a number of seconds from 0.1 to 10, "
            f"got {raw!r}"
        )
    return value


async def stream_task(
    request: web.Request,
    task_id: str,
    kind: str,
    experiment_id: int | None = None,
    *,
    extra: Callable[[TaskState | None], Awaitable[dict[str, Any]]] | None = None,
) -> web.StreamResponse:
    """Serve a task's status as Server-Sent Events until its one terminal event.

    ``extra(state)`` adds keys to every event (the experiment stream: the experiment's
    ``generation_task_id`` and ``has_internal_error``); a change of them is worth an event,
    and an event naming another task in ``generation_task_id`` (a hand-off) ends the stream.
    """
    interval = polling_interval(request)
    engine = get_engine(request)
    loop = asyncio.get_running_loop()
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",
        }
    )
    await response.prepare(request)
    cursor = 0
    last_key: tuple[Any, ...] | None = None
    last_sent = float("-inf")
    last_write = loop.time()
    give_up = loop.time() + UNKNOWN_STREAM_SECONDS
    try:
        while True:
            changed = engine.changed(task_id)  # taken before reading: no change is missed
            state = await find_task(request, task_id, kind, experiment_id)
            extras = {} if extra is None else await extra(state)
            handed_over = extras.get("generation_task_id") not in (None, task_id)
            now = loop.time()
            throttled = False
            if state is None:
                if now >= give_up and not handed_over:
                    break
                if handed_over or now - last_sent >= interval * 0.999:
                    body = {"status": "PENDING", **extras}
                    await response.write(format_event(_encoder.encode(body)))
                    last_sent = last_write = now
                    if handed_over:
                        break
            else:
                key = (*state.key(), await engine.last_log_id(task_id), *extras.values())
                final = state.terminal or handed_over
                if final or (key != last_key and now - last_sent >= interval * 0.999):
                    delta, cursor = await engine.logs_since(task_id, cursor)
                    body = {**(await engine.payload(state, logs_delta=delta)), **extras}
                    await response.write(format_event(_encoder.encode(body)))
                    last_key, last_sent, last_write = key, now, now
                    if final:
                        break
                elif key != last_key:
                    throttled = True
            if now - last_write >= KEEPALIVE_SECONDS:
                await response.write(b": keepalive\n\n")
                last_write = now
            if request.transport is None or request.transport.is_closing():
                break
            wait = interval - (now - last_sent) if throttled else interval
            wait = max(0.01, min(wait, KEEPALIVE_SECONDS - (now - last_write)))
            try:
                await asyncio.wait_for(changed.wait(), wait)
            except asyncio.TimeoutError:
                pass
    except ConnectionError:
        log.debug("stream of task %s: client went away", task_id)
        return response
    try:
        await response.write_eof()
    except ConnectionError:  # pragma: no cover - client gone at the very end
        pass
    return response
