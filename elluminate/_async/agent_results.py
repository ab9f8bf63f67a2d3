"""Agent results of AGENTIC experiments and the wait for their evaluation (mixed into
``AsyncClient``; CONTRACT.md 4.12, 5.7).

An upload answers 200 even when some results were rejected: their reasons come back in
``errors`` and are logged, or raised as :class:`~elluminate.PartialUploadError` with
``raise_on_partial=True`` (the accepted ones are stored; uploads append, so resending the
batch would store them twice). When no result matched a task the server answers 400 with the
experiment's tasks, raised as :class:`~elluminate.TaskMatchError`.

Waiting for the judge follows the experiment's current task: a newer upload, a redispatch
or a health check can hand the evaluation over to another task, and the status payload then
names it (``generation_task_id``); the wait switches to it at once.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from contextlib import aclosing
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import msgspec

from .. import schemas
from .._arguments import id_of
from .._compat import asleep
from .._sse import SSEParser
from ..exceptions import (
    BadRequestError,
    PartialUploadError,
    TaskMatchError,
    TaskTimeoutError,
    TransportError,
)
from ..schemas import DEFAULT_EVALUATION_POLLING_INTERVAL, TaskStatus
from ..streaming import (
    ExperimentProgress,
    ExperimentStatusEvent,
    parse_status,
    progress_from_payload,
)

if TYPE_CHECKING:
    from ._http import AsyncHTTP

logger = logging.getLogger("elluminate")

MIN_POLLING_INTERVAL = 0.1
STREAM_POLLING_INTERVALS = (0.1, 10.0)
TRAJECTORY_DROPPED = "trajectory dropped"
AgentEvent = ExperimentStatusEvent[None]


def _results_list(results: Any) -> list[Any]:
    if isinstance(results, (dict, schemas.AgentTrialTaskRef)) or not isinstance(results, Sequence):
        raise ValueError("results must be a list (use a one-element list for one result)")
    return list(results)


def _trial(result: Any, index: int, type_: type[schemas.AgentTrialTaskRef]) -> Any:
    """``result`` as ``type_`` (a dict is converted); ValueError names the result."""
    if isinstance(result, type_):
        return result
    if isinstance(result, dict):
        try:
            return msgspec.convert(result, type_)
        except msgspec.ValidationError as exc:
            raise ValueError(f"results[{index}]: {exc}") from None
    raise ValueError(
        f"results[{index}] must be an {type_.__name__} or a dict, not {type(result).__name__}"
    )


def upload_problems(answer: schemas.AgentResultsUploadResponse) -> str:
    """The text for an upload whose ``errors`` are not empty."""
    lines = [f"the server rejected part of the upload ({len(answer.errors)} error(s)):"]
    lines += [f"  - {error}" for error in answer.errors]
    if any(TRAJECTORY_DROPPED in error for error in answer.errors):
        lines.append(
            "A dropped trajectory is not stored and never evaluated (the rest of its result "
            "is); an ATIF trajectory needs a schema_version like 'ATIF-v1.7'."
        )
    lines.append(
        f"Stored: {answer.created_responses} response(s), {answer.created_ratings} rating(s)."
    )
    return "\n".join(lines)


def _task_match_error(exc: BadRequestError) -> TaskMatchError | None:
    """The TaskMatchError for a 400 ``unmatched_tasks`` answer, else None."""
    body = exc.body
    if not isinstance(body, dict) or body.get("kind") != "unmatched_tasks":
        return None
    try:
        accepted = msgspec.convert(
            body.get("accepted_tasks") or [], list[schemas.AgentResultTaskRefOut]
        )
    except msgspec.ValidationError:
        accepted = []
    total = body.get("accepted_tasks_total")
    total = total if isinstance(total, int) else len(accepted)
    reasons = body.get("results")
    message = exc.message
    if accepted:
        names = ", ".join(f"{t.task_name!r} (id {t.task_id})" for t in accepted)
        more = f" and {total - len(accepted)} more" if total > len(accepted) else ""
        message = f"{message}; the experiment's tasks are {names}{more}"
    return TaskMatchError(
        message,
        exc.status_code,
        accepted_tasks=accepted,
        accepted_tasks_total=total,
        reasons=list(reasons) if isinstance(reasons, list) else [],
        response_info=exc.response_info,
    )


def _evaluation_status(value: Any) -> TaskStatus:
    """The status of an evaluation payload; an unknown one counts as still running."""
    try:
        return parse_status(value)
    except ValueError:
        logger.debug("unknown evaluation task status %r, taken as running", value)
        return TaskStatus.STARTED


def _nothing_running(has_internal_error: bool) -> AgentEvent:
    """The outcome when the experiment runs no evaluation (any more)."""
    if has_internal_error:
        return ExperimentStatusEvent(status=TaskStatus.FAILURE, error_msg="Internal error")
    return ExperimentStatusEvent(status=TaskStatus.SUCCESS)


@dataclass
class _EvaluationWatch:
    """The hand-off rules of CONTRACT.md 5.7, applied to one status payload at a time."""

    experiment_id: int
    task_id: str
    confirmed: bool  # the task is (or was) the experiment's own evaluation task
    progress: ExperimentProgress | None = None  # the current task's latest counters
    delivered: int = 0  # characters of the current task's log already passed on

    def observe(self, payload: dict[str, Any]) -> tuple[AgentEvent, bool]:
        """The event for ``payload`` and whether it ends the wait (a final event without
        counters carries the task's latest ones). Switches ``task_id`` on a hand-off;
        ValueError if an unconfirmed task turns out not to be the experiment's."""
        event, final = self._observe(payload)
        if final and event.progress is None and self.progress is not None:
            event = replace(event, progress=self.progress)
        return event, final

    def _observe(self, payload: dict[str, Any]) -> tuple[AgentEvent, bool]:
        status = _evaluation_status(payload.get("status"))
        progress = progress_from_payload(payload)
        self.progress = progress or self.progress
        logs = payload.get("logs_delta")
        logs = logs if isinstance(logs, str) and logs else None
        self.delivered += len(logs or "")
        error = payload.get("error_msg")
        event: AgentEvent = ExperimentStatusEvent(
            status=status,
            progress=progress,
            logs_delta=logs,
            error_msg=error if isinstance(error, str) else None,
        )
        if status.is_failure:
            return event, True
        if "generation_task_id" not in payload:  # an older backend: the status alone decides
            return event, status.is_terminal
        current = payload["generation_task_id"]
        if current is None:  # the experiment released its evaluation task
            if not self.confirmed:
                raise ValueError(
                    f"task {self.task_id!r} is not an evaluation task of experiment "
                    f"{self.experiment_id}: the experiment runs no evaluation and the task "
                    "reported none of its results. Pass the evaluation_task_id that "
                    "upload_agent_results returned, or leave task_id out to wait for the "
                    "evaluation the experiment runs."
                )
            done = _nothing_running(bool(payload.get("has_internal_error")))
            return replace(event, status=done.status, error_msg=error or done.error_msg), True
        self.confirmed = True
        if current != self.task_id:  # handed over: follow the experiment's current task
            logger.info(
                "evaluation of experiment %s moved from task %s to task %s",
                self.experiment_id,
                self.task_id,
                current,
            )
            self.task_id, self.progress, self.delivered = str(current), None, 0
            return replace(event, status=TaskStatus.STARTED, progress=None), False
        return event, status.is_terminal


class AgentResultsMixin:
    """Agent-result methods of the client and the operations behind ``Experiment``."""

    _http: AsyncHTTP

    if TYPE_CHECKING:  # provided by the client class

        async def _prefix(self) -> str: ...

    async def get_agent_results_definition(
        self, experiment: schemas.Experiment | int
    ) -> schemas.AgentResultsDefinition:
        """The frozen tasks of an AGENTIC experiment with the criteria of each."""
        prefix = await self._prefix()
        ident = id_of(experiment, "experiment")
        return await self._http.get(
            f"{prefix}/experiments/{ident}/agent-results/definition",
            schemas.AgentResultsDefinition,
        )

    async def preview_agent_results_matching(
        self,
        experiment: schemas.Experiment | int,
        results: Sequence[schemas.AgentTrialTaskRef],
    ) -> schemas.AgentResultsMatchPreview:
        """Which of ``results`` would match a task of the experiment; nothing is stored.
        Only the task references are sent."""
        refs = [
            _trial(r, i, schemas.AgentTrialTaskRef) for i, r in enumerate(_results_list(results))
        ]
        only_refs = [
            schemas.AgentTrialTaskRef(task_id=r.task_id, task_name=r.task_name) for r in refs
        ]
        body = schemas.AgentResultsMatchPreviewRequest(results=only_refs)
        prefix = await self._prefix()
        ident = id_of(experiment, "experiment")
        preview: schemas.AgentResultsMatchPreview = await self._http.send_json(
            "POST",
            f"{prefix}/experiments/{ident}/agent-results/preview",
            schemas.AgentResultsMatchPreview,
            body,
        )
        return preview

    async def upload_agent_results(
        self,
        experiment: schemas.Experiment | int,
        results: list[schemas.AgentTrialResult],
        epoch: int = 1,
        evaluate: bool = True,
        raise_on_partial: bool = False,
    ) -> schemas.AgentResultsUploadResponse:
        """Store agent trials as responses of an AGENTIC experiment (epoch ``epoch``).

        Given ``criterion_ratings`` are stored as they are; with ``evaluate`` the server's
        judge rates the remaining criteria in the background (``evaluation_task_id``; wait
        with :meth:`wait_for_agent_evaluation`). Rejected results are logged, or raised as
        PartialUploadError with ``raise_on_partial``; TaskMatchError if none matched a task.
        Uploads append: sending a batch twice stores it twice.
        """
        trials = [
            _trial(r, i, schemas.AgentTrialResult) for i, r in enumerate(_results_list(results))
        ]
        if not isinstance(evaluate, bool):
            raise ValueError("evaluate must be True or False")
        body = schemas.AgentResultsUploadRequest(results=trials, epoch=epoch, evaluate=evaluate)
        ident = id_of(experiment, "experiment")
        if not trials:
            logger.info("no agent results to upload to experiment %s", ident)
            return schemas.AgentResultsUploadResponse(created_responses=0, created_ratings=0)
        prefix = await self._prefix()
        try:
            answer: schemas.AgentResultsUploadResponse = await self._http.send_json(
                "POST",
                f"{prefix}/experiments/{ident}/agent-results",
                schemas.AgentResultsUploadResponse,
                body,
            )
        except BadRequestError as exc:
            unmatched = _task_match_error(exc)
            if unmatched is not None:
                raise unmatched from None
            raise
        if answer.errors:
            text = upload_problems(answer)
            if raise_on_partial:
                raise PartialUploadError(
                    f"{text}\nThe accepted results are stored already and uploads append: "
                    "resending the whole batch would store them twice (err.response has the "
                    "counts).",
                    answer,
                )
            logger.warning("%s", text)
        return answer

    async def wait_for_agent_evaluation(
        self,
        experiment: schemas.Experiment | int,
        task_id: str | None = None,
        timeout: float | None = None,
        polling_interval: float = DEFAULT_EVALUATION_POLLING_INTERVAL,
    ) -> ExperimentStatusEvent[None]:
        """Wait until the judge finished rating an experiment's agent results.

        Without ``task_id`` the experiment's current evaluation is awaited (none running:
        SUCCESS at once, or FAILURE if the last one failed internally). Hand-offs to a newer
        task are followed. Returns the final event (its ``logs_delta`` holds all log text of
        the wait); a failed evaluation is returned, not raised. TaskTimeoutError (a
        TimeoutError) after ``timeout`` seconds.
        """
        if polling_interval < MIN_POLLING_INTERVAL:
            raise ValueError(f"polling_interval must be at least {MIN_POLLING_INTERVAL} seconds")
        if timeout is not None and timeout <= 0:
            raise ValueError("timeout must be a positive number of seconds (or None to wait)")
        deadline = None if timeout is None else time.monotonic() + timeout
        logs: list[str] = []
        final: AgentEvent | None = None
        async with aclosing(
            self._evaluation_events(experiment, task_id, polling_interval, False, deadline)
        ) as events:
            async for event in events:
                if event.logs_delta:
                    logs.append(event.logs_delta)
                final = event
        assert final is not None
        if final.is_failure:
            logger.warning(
                "the evaluation of experiment %s ended %s: %s",
                id_of(experiment, "experiment"),
                final.status.value,
                final.error_msg or "no message",
            )
        return replace(final, logs_delta="".join(logs) or None)

    async def stream_agent_evaluation(
        self,
        experiment: schemas.Experiment | int,
        task_id: str | None = None,
        polling_interval: float = 0.5,
    ) -> AsyncIterator[ExperimentStatusEvent[None]]:
        """Events of the judge's evaluation of an experiment's agent results, until one
        terminal event (the same rules as :meth:`wait_for_agent_evaluation`, over SSE)."""
        low, high = STREAM_POLLING_INTERVALS
        if not low <= polling_interval <= high:
            raise ValueError(f"polling_interval must be between {low} and {high} seconds")
        async with aclosing(
            self._evaluation_events(experiment, task_id, polling_interval, True, None)
        ) as events:
            async for event in events:
                yield event

    # ---- internals ------------------------------------------------------------------------

    async def _evaluation_events(
        self,
        experiment: schemas.Experiment | int,
        task_id: str | None,
        polling_interval: float,
        stream: bool,
        deadline: float | None,
    ) -> AsyncGenerator[AgentEvent, None]:
        """Events of one evaluation wait, the last one final."""
        ident = id_of(experiment, "experiment")
        if task_id is not None and (not isinstance(task_id, str) or not task_id):
            raise ValueError("task_id must be a task id string (or None)")
        prefix = await self._prefix()
        confirmed = task_id is None
        if task_id is None:
            raw = await self._http.get(f"{prefix}/experiments/{ident}", dict[str, Any])
            task_id = raw.get("generation_task_id")
            if not task_id:
                yield _nothing_running(bool(raw.get("has_internal_error")))
                return
        watch = _EvaluationWatch(ident, str(task_id), confirmed)
        base = f"{prefix}/experiments/{ident}/generation"
        if stream:
            async with aclosing(self._streamed_evaluation(watch, base, polling_interval)) as events:
                async for event, final in events:
                    yield event
                    if final:
                        return
        # Polling (also after a stream that ended early): one consumer id for the whole wait,
        # the server's log cursor; the log text a stream already passed on is skipped once.
        consumer = str(uuid.uuid4())
        skip, skip_task = watch.delivered, watch.task_id
        while True:
            if deadline is not None and time.monotonic() >= deadline:
                raise TaskTimeoutError(
                    f"the evaluation of experiment {ident} did not end within the timeout "
                    f"(task {watch.task_id})"
                )
            current = watch.task_id
            payload = await self._http.get(
                f"{base}/{current}", dict[str, Any], {"connection_uuid": consumer}
            )
            delta = payload.get("logs_delta")
            if skip and current == skip_task and isinstance(delta, str):
                payload["logs_delta"], skip = delta[skip:], max(0, skip - len(delta))
            event, final = watch.observe(payload)
            yield event
            if final:
                return
            if watch.task_id != current:
                continue  # handed over: ask the new task at once
            wait = polling_interval
            if deadline is not None:
                wait = max(0.0, min(wait, deadline - time.monotonic()))
            await asleep(wait)

    async def _streamed_evaluation(
        self, watch: _EvaluationWatch, base: str, polling_interval: float
    ) -> AsyncGenerator[tuple[AgentEvent, bool], None]:
        """(event, final) from the SSE stream of the current task, following hand-offs; ends
        early (the caller then polls) if a stream breaks or closes before a final event."""
        while True:
            current = watch.task_id
            parser = SSEParser()
            lines = self._http.stream_lines(
                f"{base}/{current}/stream", {"polling_interval": polling_interval}
            )
            try:
                async with aclosing(lines):
                    async for line in lines:
                        payload = parser.feed(line)
                        if payload is None:
                            continue
                        event, final = watch.observe(payload)
                        yield event, final
                        if final or watch.task_id != current:
                            break
            except TransportError as exc:
                logger.info("evaluation stream broke (%s); polling instead", exc)
                return
            if watch.task_id == current:
                return  # final, or the stream closed early: the caller decides
