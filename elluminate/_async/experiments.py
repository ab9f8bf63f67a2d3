"""Experiments: create, run, stream, read, clone and retry them (mixed into ``AsyncClient``).

Their responses and ratings are in ``responses``, the waiting for their tasks in ``tasks``.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, TypeVar

import msgspec

from .. import schemas
from .._progress import TaskProgress, progress_enabled
from .._unset import _Unset
from ..exceptions import APIError, NotFoundError
from ..schemas import EvaluationMode, GenerationParams, RatingMode, TaskStatus
from ..streaming import (
    ExperimentProgress,
    ExperimentStatusEvent,
    parse_status,
    progress_from_payload,
)
from .models import Experiment, bind
from .responses import NestedSharer
from .tasks import TasksMixin, check_polling_interval, task_deadline

# NestedSharer lived here before responses.py was split off; it stays importable from here.
__all__ = ["ExperimentsMixin", "NestedSharer"]

logger = logging.getLogger("elluminate")
T = TypeVar("T")


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


class ExperimentsMixin(TasksMixin):
    """Experiment methods of the client and the operations behind ``Experiment``."""

    project_route_prefix: str | None

    if TYPE_CHECKING:  # provided by the client class

        async def _prefix(self) -> str: ...

        async def _create(self, resource: str, type_: type[T], body: Any, kind: str) -> T: ...

        async def _fetch_responses(
            self, experiment: schemas.Experiment
        ) -> list[schemas.PromptResponse]: ...

        async def _criteria_as_set(
            self,
            name: str,
            criterion_set: schemas.CriterionSet | None,
            criteria: list[str | schemas.CriterionIn] | None,
            *,
            allow_empty: bool,
        ) -> schemas.CriterionSet | None: ...

        async def _discard_criterion_set(self, criterion_set: schemas.CriterionSet) -> None: ...

    # ---- experiments ----------------------------------------------------------------------

    async def create_experiment(
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
        return await self._post_experiment(body)

    async def run_experiment(
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
        deadline = task_deadline(timeout)
        criterion_set = await self._criteria_as_set(name, criterion_set, criteria, allow_empty=True)
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
        experiment = await self._post_experiment(body)
        if experiment.generation_task_id is not None:
            await self._wait_experiment_task(
                experiment, experiment.generation_task_id, deadline, show_progress
            )
        await self._refresh_experiment(experiment)
        return experiment

    async def stream_experiment(
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
    ) -> AsyncIterator[ExperimentStatusEvent[Experiment]]:
        """Create and run an experiment, yielding progress events until one terminal event.

        On SUCCESS the event's ``result`` is the finished experiment with its responses.
        """
        check_polling_interval(polling_interval)
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
            made = await self._criteria_as_set(name, criterion_set, criteria, allow_empty=False)
            body = msgspec.structs.replace(body, criterion_set_id=made.id if made else None)
        try:
            experiment = await self._post_experiment(body)
        except APIError as exc:
            # The server refused (e.g. 409, the name is taken): the set made for it goes too.
            # A 5xx may come from a gateway after the server created the experiment: keep it.
            if made is not None and exc.status_code is not None and exc.status_code < 500:
                await self._discard_criterion_set(made)
            raise
        task_id = experiment.generation_task_id
        if task_id is None:
            raise RuntimeError(f"the server started no generation task for experiment {name!r}")
        best: ExperimentProgress | None = None
        async for payload in self._follow_task(
            self._experiment_task_path(experiment, task_id), polling_interval, stream=True
        ):
            status = parse_status(payload.get("status"))
            best = _monotonic_progress(payload, best)
            result = None
            if status is TaskStatus.SUCCESS:
                await self._refresh_experiment(experiment)
                result = experiment
            yield ExperimentStatusEvent(
                status=status,
                progress=best,
                logs_delta=payload.get("logs_delta"),
                error_msg=payload.get("error_msg"),
                result=result,
            )

    async def get_experiment(
        self, *, name: str | None = None, id: int | None = None, fetch_responses: bool = True
    ) -> Experiment:
        """An experiment by name or id, with its responses unless ``fetch_responses=False``."""
        if (name is None) == (id is None):
            raise ValueError("pass exactly one of name= or id=")
        prefix = await self._prefix()
        if id is not None:
            experiment = await self._http.get(f"{prefix}/experiments/{id}", Experiment)
        else:
            page = await self._http.get_page(
                f"{prefix}/experiments", Experiment, {"experiment_name": name}
            )
            if not page.items:
                raise NotFoundError(f"no experiment named {name!r}")
            experiment = page.items[0]
        bind(experiment, self)
        if fetch_responses:
            await self._fetch_responses(experiment)
        return experiment

    async def list_experiments(
        self,
        prompt_template: schemas.PromptTemplate | None = None,
        collection: schemas.TemplateVariablesCollection | None = None,
        llm_config: schemas.LLMConfig | None = None,
    ) -> list[Experiment]:
        """Experiments of the project, optionally filtered (responses are not loaded)."""
        prefix = await self._prefix()
        params = {
            "prompt_template_id": prompt_template.id if prompt_template else None,
            "collection_id": collection.id if collection else None,
            "llm_config_id": llm_config.id if llm_config else None,
        }
        items = await self._http.paginate(f"{prefix}/experiments", Experiment, params)
        return bind(items, self)  # type: ignore[no-any-return]

    async def delete_experiment(self, experiment: schemas.Experiment | int) -> None:
        """Delete an experiment with its responses and ratings."""
        prefix = await self._prefix()
        ident = experiment if isinstance(experiment, int) else experiment.id
        await self._http.request("DELETE", f"{prefix}/experiments/{ident}")

    async def cancel_experiment(self, experiment: schemas.Experiment) -> None:
        """Ask the server to stop a running experiment (its task ends REVOKED)."""
        prefix = await self._prefix()
        await self._http.request("POST", f"{prefix}/experiments/{experiment.id}/cancel")

    async def _run_experiment_task(
        self,
        experiment: Experiment,
        rating_mode: RatingMode,
        n_epochs: int,
        timeout: float | None,
        generation_params: GenerationParams | None,
    ) -> Experiment:
        deadline = task_deadline(timeout)
        prefix = await self._prefix()
        body = schemas.RunExperimentRequest(
            rating_mode=RatingMode(rating_mode),
            n_epochs=n_epochs,
            generation_params=generation_params or experiment.generation_params,
        )
        started = await self._http.send_json(
            "POST", f"{prefix}/experiments/{experiment.id}/run", Experiment, body
        )
        if started.generation_task_id is not None:
            await self._wait_experiment_task(experiment, started.generation_task_id, deadline)
        await self._refresh_experiment(experiment)
        return experiment

    async def _retry_failed(
        self,
        experiment: Experiment,
        rating_mode: RatingMode,
        discard_annotations: bool,
        timeout: float | None,
    ) -> Experiment:
        deadline = task_deadline(timeout)
        prefix = await self._prefix()
        started = await self._http.send_json(
            "POST",
            f"{prefix}/experiments/{experiment.id}/retry-failed",
            Experiment,
            schemas.RetryFailedRequest(
                rating_mode=RatingMode(rating_mode), discard_annotations=discard_annotations
            ),
        )
        if started.generation_task_id is not None:
            await self._wait_experiment_task(experiment, started.generation_task_id, deadline)
        await self._refresh_experiment(experiment)
        return experiment

    async def _clone_experiment(
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
        return await self._post_experiment(body)

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

    async def _post_experiment(self, body: schemas.CreateExperimentRequest) -> Experiment:
        return await self._create("experiments", Experiment, body, "experiment")

    async def _refresh_experiment(self, experiment: Experiment) -> None:
        prefix = await self._prefix()
        fresh = await self._http.get(f"{prefix}/experiments/{experiment.id}", schemas.Experiment)
        for field in msgspec.structs.fields(schemas.Experiment):
            if field.name != "rated_responses":
                setattr(experiment, field.name, getattr(fresh, field.name))
        await self._fetch_responses(experiment)

    def _experiment_task_path(self, experiment: schemas.Experiment, task_id: str) -> str:
        assert self.project_route_prefix is not None
        return f"{self.project_route_prefix}/experiments/{experiment.id}/generation/{task_id}"

    async def _wait_experiment_task(
        self,
        experiment: schemas.Experiment,
        task_id: str,
        deadline: float | None,
        show_progress: bool | None = False,
    ) -> None:
        progress = TaskProgress(experiment.name, progress_enabled(show_progress))
        try:
            last = await self._wait_batch(
                self._experiment_task_path(experiment, task_id), deadline, True, progress
            )
        finally:
            progress.close()
        logger.debug("experiment %s task %s ended %s", experiment.id, task_id, last.get("status"))
