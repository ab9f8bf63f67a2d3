# DO NOT EDIT: generated from elluminate/_async/experiments.py by scripts/unasync.py; edit the _async original.
"""Experiments, responses, ratings and long-running tasks (mixed into ``AsyncClient``)."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator
from contextlib import closing
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

import msgspec

from .. import schemas
from .._compat import sleep
from .._progress import TaskProgress, progress_enabled
from .._sse import SSEError, SSEParser
from .._unset import _Unset
from ..exceptions import (
    APIError,
    ElluminateError,
    NotFoundError,
    TaskFailedError,
    TaskTimeoutError,
    TransportError,
)
from ..schemas import EvaluationMode, GenerationParams, RatingMode, TaskStatus
from ..streaming import (
    BatchStatusEvent,
    ExperimentProgress,
    ExperimentStatusEvent,
    parse_status,
    progress_from_payload,
)
from ._http import decoder_for
from .models import CriterionSet, Experiment, bind

if TYPE_CHECKING:
    from ._http import HTTP

logger = logging.getLogger("elluminate")
T = TypeVar("T")

_WAIT_STREAM_INTERVAL = 0.1
_POLL_MIN, _POLL_MAX = 0.05, 1.0


def _check_polling_interval(polling_interval: float) -> None:
    if not 0.1 <= polling_interval <= 10.0:
        raise ValueError("polling_interval must be between 0.1 and 10.0 seconds")


def _deadline(timeout: float | None) -> float | None:
    if timeout is None:
        return None
    if timeout <= 0:
        raise ValueError("timeout must be a positive number of seconds (or None to wait forever)")
    return time.monotonic() + timeout


def _check_deadline(deadline: float | None, what: str) -> None:
    if deadline is not None and time.monotonic() > deadline:
        raise TaskTimeoutError(f"{what} did not finish within the timeout")


def _monotonic_progress(
    payload: dict[str, Any], best: ExperimentProgress | None
) -> ExperimentProgress | None:
    progress = progress_from_payload(payload)
    if progress is None or best is None:
        return progress
    return ExperimentProgress(
        responses_generated=max(progress.responses_generated, best.responses_generated),
        responses_rated=max(progress.responses_rated, best.responses_rated),
        total_responses=max(progress.total_responses, best.total_responses),
    )


class NestedSharer:
    """Makes the responses of one read share their equal nested objects.

    Every response embeds its template, its collection (in its row) and each rating's full
    criterion; across thousands of responses these are a few distinct objects. Keeping one
    of each equal copy saves much of a large read's memory. (So mutating a shared nested
    object changes it in every response that holds it.)
    """

    def __init__(self) -> None:
        self._seen: dict[tuple[type, int], Any] = {}

    def _one(self, obj: Any) -> Any:
        if obj is None:
            return None
        known = self._seen.setdefault((type(obj), obj.id), obj)
        return known if known is obj or known == obj else obj

    def share(self, responses: list[schemas.PromptResponse]) -> None:
        one = self._one
        for response in responses:
            prompt = response.prompt
            prompt.prompt_template = one(prompt.prompt_template)
            prompt.template_variables.collection = one(prompt.template_variables.collection)
            for rating in response.ratings:
                rating.criterion = one(rating.criterion)


def _scenario_set_id(scenario_set: Any) -> int | None:
    """The id of a scenario set given as an object with ``id`` or as an int."""
    if scenario_set is None or (
        isinstance(scenario_set, int) and not isinstance(scenario_set, bool)
    ):
        return scenario_set
    ident = getattr(scenario_set, "id", None)
    if not isinstance(ident, int):
        raise ValueError(f"scenario_set must be a scenario set or its id, not {scenario_set!r}")
    return ident


def _response_messages(response: str | list[dict[str, Any]]) -> list[dict[str, Any]]:
    if isinstance(response, str):
        return [{"role": "assistant", "content": response}]
    if isinstance(response, list) and all(isinstance(m, dict) for m in response):
        if not any(m.get("role") in ("assistant", "tool") for m in response):
            raise ValueError("a response given as messages needs an assistant or tool message")
        return response
    raise ValueError("each response is a string or a list of message dicts")


class ExperimentsMixin:
    """Experiment, response and rating methods of the client."""

    _http: HTTP
    project_route_prefix: str | None
    timeout: float

    if TYPE_CHECKING:  # provided by the client class

        def _prefix(self) -> str: ...

        def _create(self, resource: str, type_: type[T], body: Any, kind: str) -> T: ...

        def create_criterion_set(
            self, name: str, criteria: list[str | schemas.CriterionIn] | None = None
        ) -> CriterionSet: ...

    # ---- experiments ----------------------------------------------------------------------

    def create_experiment(
        self,
        name: str,
        prompt_template: schemas.PromptTemplate | None,
        collection: schemas.TemplateVariablesCollection | None = None,
        llm_config: schemas.LLMConfig | None = None,
        criterion_set: schemas.CriterionSet | None = None,
        description: str = "",
        rating_version: str | None = None,
        response_column_id: int | None = None,
        evaluation_mode: str | EvaluationMode = "STANDARD",
        agent_config: dict[str, Any] | None = None,
        evaluation_agent_config: dict[str, Any] | None = None,
        persona_group_id: int | None = None,
        scenario_set: Any = None,
        generation_params: GenerationParams | None = None,
    ) -> Experiment:
        """Create an experiment without running it (see ``Experiment.arun``).

        ``evaluation_mode`` (STANDARD, AGENTIC, MULTI_TURN), the agent configs,
        ``persona_group_id`` and ``scenario_set`` (instead of ``collection``) are sent as
        given; the server checks them (400 saying what to fix).
        """
        try:
            mode = EvaluationMode(evaluation_mode)
        except ValueError:
            choices = ", ".join(m.value for m in EvaluationMode)
            raise ValueError(
                f"evaluation_mode must be one of {choices}, not {evaluation_mode!r}"
            ) from None
        if (collection is None) == (scenario_set is None):
            raise ValueError("pass exactly one of collection= or scenario_set=")
        body = self._experiment_request(
            name,
            prompt_template,
            collection,
            llm_config,
            criterion_set,
            description,
            rating_version=rating_version,
            response_column_id=response_column_id,
            generation_params=generation_params,
            evaluation_mode=mode,
            agent_config=agent_config,
            evaluation_agent_config=evaluation_agent_config,
            persona_group_id=persona_group_id,
            scenario_set_id=_scenario_set_id(scenario_set),
        )
        return self._post_experiment(body)

    def run_experiment(
        self,
        name: str,
        prompt_template: schemas.PromptTemplate | None,
        collection: schemas.TemplateVariablesCollection,
        llm_config: schemas.LLMConfig | None = None,
        criterion_set: schemas.CriterionSet | None = None,
        criteria: list[str | schemas.CriterionIn] | None = None,
        description: str = "",
        rating_mode: RatingMode = RatingMode.DETAILED,
        n_epochs: int = 1,
        timeout: float | None = None,
        rating_version: str | None = None,
        generate: bool = True,
        response_column_id: int | None = None,
        generation_params: GenerationParams | None = None,
        show_progress: bool | None = None,
    ) -> Experiment:
        """Create an experiment, generate and rate all responses, and return it finished.

        Raises TaskFailedError if the run ends FAILURE, REVOKED, REJECTED or TIMEOUT, and
        TaskTimeoutError if ``timeout`` seconds pass first. ``show_progress`` draws a tqdm
        bar (default: only when stderr is an interactive terminal and not in CI).
        """
        deadline = _deadline(timeout)
        criterion_set = self._criteria_as_set(name, criterion_set, criteria, allow_empty=True)
        body = self._experiment_request(
            name,
            prompt_template,
            collection,
            llm_config,
            criterion_set,
            description,
            rating_mode=rating_mode,
            n_epochs=n_epochs,
            rating_version=rating_version,
            generate=generate,
            response_column_id=response_column_id,
            generation_params=generation_params,
        )
        experiment = self._post_experiment(body)
        if experiment.generation_task_id is not None:
            self._wait_experiment_task(
                experiment, experiment.generation_task_id, deadline, show_progress
            )
        self._refresh_experiment(experiment)
        return experiment

    def stream_experiment(
        self,
        name: str,
        prompt_template: schemas.PromptTemplate | None,
        collection: schemas.TemplateVariablesCollection,
        llm_config: schemas.LLMConfig | None = None,
        criterion_set: schemas.CriterionSet | None = None,
        criteria: list[str | schemas.CriterionIn] | None = None,
        description: str = "",
        rating_mode: RatingMode = RatingMode.DETAILED,
        n_epochs: int = 1,
        polling_interval: float = 0.5,
        response_column_id: int | None = None,
        rating_version: str | None = None,
    ) -> Iterator[ExperimentStatusEvent[Experiment]]:
        """Create and run an experiment, yielding progress events until one terminal event.

        On SUCCESS the event's ``result`` is the finished experiment with its responses.
        """
        _check_polling_interval(polling_interval)
        # Checked before a criterion set is made for ``criteria``, so bad input leaves none.
        body = self._experiment_request(
            name,
            prompt_template,
            collection,
            llm_config,
            criterion_set,
            description,
            rating_mode=rating_mode,
            n_epochs=n_epochs,
            rating_version=rating_version,
            generate=True,
            response_column_id=response_column_id,
        )
        made: schemas.CriterionSet | None = None
        if criteria is not None:
            made = self._criteria_as_set(name, criterion_set, criteria, allow_empty=False)
            body = msgspec.structs.replace(body, criterion_set_id=made.id if made else None)
        try:
            experiment = self._post_experiment(body)
        except APIError as exc:
            # The server refused (e.g. 409, the name is taken): the set made for it goes too.
            # A 5xx may come from a gateway after the server created the experiment: keep it.
            if made is not None and exc.status_code is not None and exc.status_code < 500:
                self._discard_criterion_set(made)
            raise
        task_id = experiment.generation_task_id
        if task_id is None:
            raise RuntimeError(f"the server started no generation task for experiment {name!r}")
        best: ExperimentProgress | None = None
        for payload in self._follow_task(
            self._experiment_task_path(experiment, task_id), polling_interval, stream=True
        ):
            status = parse_status(payload.get("status"))
            best = _monotonic_progress(payload, best)
            result = None
            if status is TaskStatus.SUCCESS:
                self._refresh_experiment(experiment)
                result = experiment
            yield ExperimentStatusEvent(
                status=status,
                progress=best,
                logs_delta=payload.get("logs_delta"),
                error_msg=payload.get("error_msg"),
                result=result,
            )

    def get_experiment(
        self, *, name: str | None = None, id: int | None = None, fetch_responses: bool = True
    ) -> Experiment:
        """An experiment by name or id, with its responses unless ``fetch_responses=False``."""
        if (name is None) == (id is None):
            raise ValueError("pass exactly one of name= or id=")
        prefix = self._prefix()
        if id is not None:
            experiment = self._http.get(f"{prefix}/experiments/{id}", Experiment)
        else:
            page = self._http.get_page(
                f"{prefix}/experiments", Experiment, {"experiment_name": name}
            )
            if not page.items:
                raise NotFoundError(f"no experiment named {name!r}")
            experiment = page.items[0]
        bind(experiment, self)
        if fetch_responses:
            self._fetch_responses(experiment)
        return experiment

    def list_experiments(
        self,
        prompt_template: schemas.PromptTemplate | None = None,
        collection: schemas.TemplateVariablesCollection | None = None,
        llm_config: schemas.LLMConfig | None = None,
    ) -> list[Experiment]:
        """Experiments of the project, optionally filtered (responses are not loaded)."""
        prefix = self._prefix()
        params = {
            "prompt_template_id": prompt_template.id if prompt_template else None,
            "collection_id": collection.id if collection else None,
            "llm_config_id": llm_config.id if llm_config else None,
        }
        items = self._http.paginate(f"{prefix}/experiments", Experiment, params)
        return bind(items, self)  # type: ignore[no-any-return]

    def delete_experiment(self, experiment: schemas.Experiment | int) -> None:
        """Delete an experiment with its responses and ratings."""
        prefix = self._prefix()
        ident = experiment if isinstance(experiment, int) else experiment.id
        self._http.request("DELETE", f"{prefix}/experiments/{ident}")

    def cancel_experiment(self, experiment: schemas.Experiment) -> None:
        """Ask the server to stop a running experiment (its task ends REVOKED)."""
        prefix = self._prefix()
        self._http.request("POST", f"{prefix}/experiments/{experiment.id}/cancel")

    # ---- ratings --------------------------------------------------------------------------

    def stream_batch_rate(
        self,
        prompt_responses: list[schemas.PromptResponse],
        rating_mode: RatingMode = RatingMode.DETAILED,
        polling_interval: float = 0.5,
    ) -> Iterator[BatchStatusEvent]:
        """Rate responses in one batch, yielding status events until one terminal event.

        On SUCCESS the event's ``result`` is one list of ratings per response.
        """
        _check_polling_interval(polling_interval)
        task_id = self._start_rating_batch(prompt_responses, rating_mode)
        if task_id is None:
            yield BatchStatusEvent(status=TaskStatus.SUCCESS, result=[])
            return
        prefix = self._prefix()
        for payload in self._follow_task(
            f"{prefix}/ratings/batches/{task_id}", polling_interval, stream=True
        ):
            status = parse_status(payload.get("status"))
            result = None
            if status is TaskStatus.SUCCESS:
                result = self._ratings_of(prompt_responses)
            yield BatchStatusEvent(status=status, error_msg=payload.get("error_msg"), result=result)

    def _start_rating_batch(
        self, prompt_responses: list[schemas.PromptResponse], rating_mode: RatingMode
    ) -> str | None:
        prefix = self._prefix()
        body = schemas.BatchRateRequest(
            prompt_response_ids=[r.id for r in prompt_responses],
            rating_mode=RatingMode(rating_mode),
        )
        task_id: str | None = self._http.send_json(
            "POST", f"{prefix}/ratings/batches", str | None, body
        )
        return task_id

    def _ratings_of(
        self, prompt_responses: list[schemas.PromptResponse]
    ) -> list[list[schemas.Rating]]:
        if not prompt_responses:
            return []
        prefix = self._prefix()
        fresh = self._http.paginate(
            f"{prefix}/responses",
            schemas.PromptResponse,
            {"response_ids": [r.id for r in prompt_responses]},
        )
        by_id = {r.id: r.ratings for r in fresh}
        return [by_id.get(r.id, []) for r in prompt_responses]

    # ---- used by the Experiment rich model ------------------------------------------------

    def _fetch_responses(
        self, experiment: schemas.Experiment
    ) -> list[schemas.PromptResponse]:
        prefix = self._prefix()
        responses = self._http.paginate(
            f"{prefix}/responses",
            schemas.PromptResponse,
            {"experiment_id": experiment.id},
            each_page=NestedSharer().share,
        )
        experiment.rated_responses = responses
        return responses

    def _run_experiment_task(
        self,
        experiment: Experiment,
        rating_mode: RatingMode,
        n_epochs: int,
        timeout: float | None,
        generation_params: GenerationParams | None,
    ) -> Experiment:
        deadline = _deadline(timeout)
        prefix = self._prefix()
        body = schemas.RunExperimentRequest(
            rating_mode=RatingMode(rating_mode),
            n_epochs=n_epochs,
            generation_params=generation_params or experiment.generation_params,
        )
        started = self._http.send_json(
            "POST", f"{prefix}/experiments/{experiment.id}/run", Experiment, body
        )
        if started.generation_task_id is not None:
            self._wait_experiment_task(experiment, started.generation_task_id, deadline)
        self._refresh_experiment(experiment)
        return experiment

    def _retry_failed(
        self,
        experiment: Experiment,
        rating_mode: RatingMode,
        discard_annotations: bool,
        timeout: float | None,
    ) -> Experiment:
        deadline = _deadline(timeout)
        prefix = self._prefix()
        started = self._http.send_json(
            "POST",
            f"{prefix}/experiments/{experiment.id}/retry-failed",
            Experiment,
            schemas.RetryFailedRequest(
                rating_mode=RatingMode(rating_mode), discard_annotations=discard_annotations
            ),
        )
        if started.generation_task_id is not None:
            self._wait_experiment_task(experiment, started.generation_task_id, deadline)
        self._refresh_experiment(experiment)
        return experiment

    def _clone_experiment(
        self,
        source: schemas.Experiment,
        name: str,
        llm_config: schemas.LLMConfig | None,
        criterion_set: schemas.CriterionSet | None,
        description: str | None,
        rating_version: str | None | _Unset,
    ) -> Experiment:
        if source.evaluation_mode == schemas.EvaluationMode.MULTI_TURN:
            raise ValueError("multi-turn experiments cannot be cloned")
        config = llm_config or source.llm_config
        body = schemas.CreateExperimentRequest(
            name=name,
            description=source.description or "" if description is None else description,
            prompt_template_id=source.prompt_template.id if source.prompt_template else None,
            collection_id=source.collection.id,
            criterion_set_id=(criterion_set or source.criterion_set).id,
            llm_config_id=config.id if config is not None else None,
            rating_version=source.rating_version
            if isinstance(rating_version, _Unset)
            else rating_version,
            response_column_id=source.response_column_id,
            evaluation_mode=source.evaluation_mode,
            agent_config=source.agent_config,
            evaluation_agent_config=source.evaluation_agent_config,
            generation_params=source.generation_params,
        )
        return self._post_experiment(body)

    def _add_responses(
        self,
        experiment: Experiment,
        responses: list[str | list[dict[str, Any]]],
        template_variables: list[schemas.TemplateVariables],
        epoch: int,
        metadata: schemas.LLMConfig | schemas.GenerationMetadata | None,
        timeout: float | None,
    ) -> list[schemas.PromptResponse]:
        if len(responses) != len(template_variables):
            raise ValueError(
                f"{len(responses)} responses but {len(template_variables)} template_variables: "
                "pass one entry per response"
            )
        if isinstance(metadata, schemas.LLMConfig):
            metadata = schemas.GenerationMetadata(llm_model_config=metadata)
        items = [
            schemas.CreatePromptResponseRequest(
                template_variables_id=tv.id,
                experiment_id=experiment.id,
                epoch=epoch,
                messages=_response_messages(response),
                metadata=metadata,
            )
            for response, tv in zip(responses, template_variables, strict=True)
        ]
        if not items:
            return []
        deadline = _deadline(timeout)
        before = {r.id for r in self._fetch_responses(experiment)}
        prefix = self._prefix()
        task_id: str | None = self._http.send_json(
            "POST",
            f"{prefix}/responses/batches",
            str | None,
            schemas.BatchCreatePromptResponseRequest(prompt_response_ins=items),
        )
        if task_id is not None:
            self._wait_batch(f"{prefix}/responses/batches/{task_id}", deadline, False)
        after = self._fetch_responses(experiment)
        return [r for r in after if r.id not in before]

    def _rate_experiment_responses(
        self,
        experiment: Experiment,
        prompt_responses: list[schemas.PromptResponse] | None,
        rating_mode: RatingMode,
        timeout: float | None,
    ) -> list[list[schemas.Rating]]:
        deadline = _deadline(timeout)
        targets = list(experiment.rated_responses if prompt_responses is None else prompt_responses)
        task_id = self._start_rating_batch(targets, rating_mode)
        if task_id is not None:
            prefix = self._prefix()
            self._wait_batch(f"{prefix}/ratings/batches/{task_id}", deadline, True)
        ratings = self._ratings_of(targets)
        self._refresh_experiment(experiment)
        return ratings

    # ---- internals ------------------------------------------------------------------------

    def _experiment_request(
        self,
        name: str,
        prompt_template: schemas.PromptTemplate | None,
        collection: schemas.TemplateVariablesCollection | None,
        llm_config: schemas.LLMConfig | None,
        criterion_set: schemas.CriterionSet | None,
        description: str,
        *,
        rating_mode: RatingMode = RatingMode.DETAILED,
        n_epochs: int = 1,
        rating_version: str | None = None,
        generate: bool = False,
        response_column_id: int | None = None,
        generation_params: GenerationParams | None = None,
        evaluation_mode: EvaluationMode = EvaluationMode.STANDARD,
        agent_config: dict[str, Any] | None = None,
        evaluation_agent_config: dict[str, Any] | None = None,
        persona_group_id: int | None = None,
        scenario_set_id: int | None = None,
    ) -> schemas.CreateExperimentRequest:
        if n_epochs < 1:
            raise ValueError("n_epochs must be at least 1")
        if collection is None and scenario_set_id is None:
            raise ValueError("an experiment needs a collection")
        return schemas.CreateExperimentRequest(
            name=name,
            description=description,
            prompt_template_id=prompt_template.id if prompt_template is not None else None,
            collection_id=collection.id if collection is not None else None,
            criterion_set_id=criterion_set.id if criterion_set is not None else None,
            llm_config_id=llm_config.id if llm_config is not None else None,
            generate=generate,
            rating_mode=RatingMode(rating_mode),
            n_epochs=n_epochs,
            generation_params=generation_params,
            rating_version=rating_version,
            response_column_id=response_column_id,
            evaluation_mode=evaluation_mode,
            agent_config=agent_config,
            evaluation_agent_config=evaluation_agent_config,
            persona_group_id=persona_group_id,
            scenario_set_id=scenario_set_id,
        )

    def _post_experiment(self, body: schemas.CreateExperimentRequest) -> Experiment:
        return self._create("experiments", Experiment, body, "experiment")

    def _criteria_as_set(
        self,
        name: str,
        criterion_set: schemas.CriterionSet | None,
        criteria: list[str | schemas.CriterionIn] | None,
        *,
        allow_empty: bool,
    ) -> schemas.CriterionSet | None:
        if criteria is None:
            return criterion_set
        if criterion_set is not None:
            raise ValueError("pass criterion_set= or criteria=, not both")
        if not criteria:
            if allow_empty:
                return None
            raise ValueError("criteria= must not be empty")
        stamp = datetime.now().strftime("%Y-%m-%d %H:%M")
        created = self.create_criterion_set(f"{name} Criteria ({stamp})")
        created.add_criteria(list(criteria))
        return created

    def _discard_criterion_set(self, criterion_set: schemas.CriterionSet) -> None:
        """Delete a criterion set made for an experiment that was refused (best effort)."""
        prefix = self._prefix()
        try:
            self._http.request("DELETE", f"{prefix}/criterion_sets/{criterion_set.id}")
        except ElluminateError as exc:
            logger.warning(
                "criterion set %r (id %s) was made for a refused experiment and could not be "
                "deleted: %s",
                criterion_set.name,
                criterion_set.id,
                exc,
            )

    def _refresh_experiment(self, experiment: Experiment) -> None:
        prefix = self._prefix()
        fresh = self._http.get(f"{prefix}/experiments/{experiment.id}", schemas.Experiment)
        for field in msgspec.structs.fields(schemas.Experiment):
            if field.name != "rated_responses":
                setattr(experiment, field.name, getattr(fresh, field.name))
        self._fetch_responses(experiment)

    def _experiment_task_path(self, experiment: schemas.Experiment, task_id: str) -> str:
        assert self.project_route_prefix is not None
        return f"{self.project_route_prefix}/experiments/{experiment.id}/generation/{task_id}"

    def _wait_experiment_task(
        self,
        experiment: schemas.Experiment,
        task_id: str,
        deadline: float | None,
        show_progress: bool | None = False,
    ) -> None:
        progress = TaskProgress(experiment.name, progress_enabled(show_progress))
        try:
            last = self._wait_batch(
                self._experiment_task_path(experiment, task_id), deadline, True, progress
            )
        finally:
            progress.close()
        logger.debug("experiment %s task %s ended %s", experiment.id, task_id, last.get("status"))

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
                        _check_deadline(deadline, "the task")
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
            _check_deadline(deadline, "the task")
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
