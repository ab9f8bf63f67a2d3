"""Responses and their ratings (mixed into ``AsyncClient``): reading an experiment's
responses, adding responses from outside, and rating them in batches.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from .. import schemas
from ..schemas import RatingMode, TaskStatus
from ..streaming import BatchStatusEvent, parse_status
from .models import Experiment
from .tasks import TasksMixin, check_polling_interval, task_deadline


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


def _response_messages(response: str | list[dict[str, Any]]) -> list[dict[str, Any]]:
    if isinstance(response, str):
        return [{"role": "assistant", "content": response}]
    if isinstance(response, list) and all(isinstance(m, dict) for m in response):
        if not any(m.get("role") in ("assistant", "tool") for m in response):
            raise ValueError("a response given as messages needs an assistant or tool message")
        return response
    raise ValueError("each response is a string or a list of message dicts")


class ResponsesMixin(TasksMixin):
    """Response and rating methods of the client and the operations behind ``Experiment``."""

    if TYPE_CHECKING:  # provided by the client class

        async def _prefix(self) -> str: ...

        async def _refresh_experiment(self, experiment: Experiment) -> None: ...

    async def stream_batch_rate(
        self,
        prompt_responses: list[schemas.PromptResponse],
        rating_mode: RatingMode = RatingMode.DETAILED,
        polling_interval: float = 0.5,
    ) -> AsyncIterator[BatchStatusEvent]:
        """Rate responses in one batch, yielding status events until one terminal event.

        On SUCCESS the event's ``result`` is one list of ratings per response.
        """
        check_polling_interval(polling_interval)
        task_id = await self._start_rating_batch(prompt_responses, rating_mode)
        if task_id is None:
            yield BatchStatusEvent(status=TaskStatus.SUCCESS, result=[])
            return
        prefix = await self._prefix()
        async for payload in self._follow_task(
            f"{prefix}/ratings/batches/{task_id}", polling_interval, stream=True
        ):
            status = parse_status(payload.get("status"))
            result = None
            if status is TaskStatus.SUCCESS:
                result = await self._ratings_of(prompt_responses)
            yield BatchStatusEvent(status=status, error_msg=payload.get("error_msg"), result=result)

    async def _start_rating_batch(
        self, prompt_responses: list[schemas.PromptResponse], rating_mode: RatingMode
    ) -> str | None:
        prefix = await self._prefix()
        body = schemas.BatchRateRequest(
            prompt_response_ids=[r.id for r in prompt_responses],
            rating_mode=RatingMode(rating_mode),
        )
        task_id: str | None = await self._http.send_json(
            "POST", f"{prefix}/ratings/batches", str | None, body
        )
        return task_id

    async def _ratings_of(
        self, prompt_responses: list[schemas.PromptResponse]
    ) -> list[list[schemas.Rating]]:
        if not prompt_responses:
            return []
        prefix = await self._prefix()
        fresh = await self._http.paginate(
            f"{prefix}/responses",
            schemas.PromptResponse,
            {"response_ids": [r.id for r in prompt_responses]},
        )
        by_id = {r.id: r.ratings for r in fresh}
        return [by_id.get(r.id, []) for r in prompt_responses]

    async def _fetch_responses(
        self, experiment: schemas.Experiment
    ) -> list[schemas.PromptResponse]:
        prefix = await self._prefix()
        responses = await self._http.paginate(
            f"{prefix}/responses",
            schemas.PromptResponse,
            {"experiment_id": experiment.id},
            each_page=NestedSharer().share,
        )
        experiment.rated_responses = responses
        return responses

    async def _add_responses(
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
        deadline = task_deadline(timeout)
        before = {r.id for r in await self._fetch_responses(experiment)}
        prefix = await self._prefix()
        task_id: str | None = await self._http.send_json(
            "POST",
            f"{prefix}/responses/batches",
            str | None,
            schemas.BatchCreatePromptResponseRequest(prompt_response_ins=items),
        )
        if task_id is not None:
            await self._wait_batch(f"{prefix}/responses/batches/{task_id}", deadline, False)
        after = await self._fetch_responses(experiment)
        return [r for r in after if r.id not in before]

    async def _rate_experiment_responses(
        self,
        experiment: Experiment,
        prompt_responses: list[schemas.PromptResponse] | None,
        rating_mode: RatingMode,
        timeout: float | None,
    ) -> list[list[schemas.Rating]]:
        deadline = task_deadline(timeout)
        targets = list(experiment.rated_responses if prompt_responses is None else prompt_responses)
        task_id = await self._start_rating_batch(targets, rating_mode)
        if task_id is not None:
            prefix = await self._prefix()
            await self._wait_batch(f"{prefix}/ratings/batches/{task_id}", deadline, True)
        ratings = await self._ratings_of(targets)
        await self._refresh_experiment(experiment)
        return ratings
