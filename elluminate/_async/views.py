"""Read-only views (mixed into ``AsyncClient``): response samples, comparison samples between
two experiments, response stats and the experiment map (CONTRACT.md 4.8, 4.9, 7.15).

The queries are sent as the official package sends them: lists as repeated keys,
``categorical_filters`` as a JSON string, flags only when set.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Literal

from .. import schemas
from .._arguments import id_of
from ..schemas import ResponsesSampleSortBy

if TYPE_CHECKING:
    from ._http import AsyncHTTP

FILTER_SAMPLES_BY = ("improved", "regressed")
STATS_DAYS = (1, 90)


def _categorical_filters(filters: dict[str, list[str]] | None) -> str | None:
    """``{"column": ["value", ...]}`` as the JSON string the API expects (None: no filter)."""
    if filters is None:
        return None
    if not isinstance(filters, dict) or not all(
        isinstance(k, str) and isinstance(v, list) and all(isinstance(x, str) for x in v)
        for k, v in filters.items()
    ):
        raise ValueError(
            "categorical_filters maps a column name to a list of allowed values, "
            'e.g. {"language": ["de", "en"]}'
        )
    return json.dumps(filters)


class ViewsMixin:
    """Samples, stats and map views of the client."""

    _http: AsyncHTTP

    if TYPE_CHECKING:  # provided by the client class

        async def _prefix(self) -> str: ...

    async def list_comparison_samples(
        self,
        experiment_a: schemas.Experiment,
        experiment_b: schemas.Experiment,
        filter_samples_by: Literal["improved", "regressed"] | None = None,
        criterion_ids: list[int] | None = None,
        categorical_filters: dict[str, list[str]] | None = None,
    ) -> list[schemas.ResponsesSample]:
        """The input rows both experiments answered, each with its responses in A and in B.

        ``filter_samples_by="improved"`` keeps rows where B passes more criteria than A,
        ``"regressed"`` rows where it passes fewer; ``criterion_ids`` limits the comparison to
        those criteria; ``categorical_filters`` keeps rows whose category columns have one of
        the listed values.
        """
        if filter_samples_by is not None and filter_samples_by not in FILTER_SAMPLES_BY:
            raise ValueError(
                f"filter_samples_by must be 'improved', 'regressed' or None, "
                f"not {filter_samples_by!r}"
            )
        prefix = await self._prefix()
        params = {
            "experiment_a_id": id_of(experiment_a, "experiment"),
            "experiment_b_id": id_of(experiment_b, "experiment"),
            "filter_samples_by": filter_samples_by,
            "criterion_ids": list(criterion_ids) if criterion_ids is not None else None,
            "categorical_filters": _categorical_filters(categorical_filters),
        }
        return await self._http.get(
            f"{prefix}/responses/comparison/samples", list[schemas.ResponsesSample], params
        )

    async def list_response_samples(
        self,
        experiment: schemas.Experiment | int,
        exclude_perfect_responses: bool = False,
        show_only_annotated_responses: bool = False,
        filters: schemas.ResponsesSampleFilter | None = None,
        sort_by: ResponsesSampleSortBy | str | None = None,
    ) -> list[schemas.ResponsesSample]:
        """The input rows of an experiment, each with its responses, filtered and sorted.

        ``exclude_perfect_responses`` drops rows whose responses pass every criterion;
        ``filters`` bounds durations and token counts and selects verdicts per criterion
        (``criteria_filter_by={criterion_id: "YES"}``); ``sort_by`` is a
        ``ResponsesSampleSortBy``.
        """
        experiment_id = id_of(experiment, "experiment")
        if filters is not None and filters.experiment_id != experiment_id:
            raise ValueError(
                f"filters.experiment_id is {filters.experiment_id}, "
                f"but the experiment is {experiment_id}"
            )
        params: dict[str, Any] = {"experiment_id": experiment_id}
        if filters is not None:
            for key in schemas.ResponsesSampleFilter.__struct_fields__:
                value = getattr(filters, key)
                if key == "criteria_filter_by" and value is not None:
                    value = json.dumps({str(k): str(v) for k, v in value.items()})
                if key != "experiment_id" and value is not None:
                    params[key] = value
        if show_only_annotated_responses:
            params["show_only_annotated_responses"] = True
        if exclude_perfect_responses:
            params["exclude_perfect_responses"] = True
        if sort_by is not None:
            params["sort_by"] = ResponsesSampleSortBy(sort_by).value
        prefix = await self._prefix()
        return await self._http.get(
            f"{prefix}/responses/samples", list[schemas.ResponsesSample], params
        )

    async def get_response_stats(
        self, llm_config: schemas.LLMConfig | int | None = None, days: int = 30
    ) -> schemas.ResponsesStats:
        """Responses, durations and tokens of the last ``days`` days (1 to 90), in total and
        per day, for ``llm_config`` (default: the project's default LLM config)."""
        low, high = STATS_DAYS
        if isinstance(days, bool) or not isinstance(days, int) or not low <= days <= high:
            raise ValueError(f"days must be an integer from {low} to {high}, not {days!r}")
        prefix = await self._prefix()
        params = {
            "days": days,
            "llm_config_id": None if llm_config is None else id_of(llm_config, "LLM config"),
        }
        return await self._http.get(f"{prefix}/responses/stats", schemas.ResponsesStats, params)

    async def get_experiment_map(
        self, experiment: schemas.Experiment | int, *, page: int = 1, limit: int = 50
    ) -> schemas.ExperimentMap:
        """One page of an experiment's rows with per-response metadata (no messages):
        epoch, error flag, criteria passed and failed."""
        if page < 1 or limit < 1:
            raise ValueError("page and limit must be at least 1")
        prefix = await self._prefix()
        return await self._http.get(
            f"{prefix}/experiments/{id_of(experiment, 'experiment')}/map",
            schemas.ExperimentMap,
            {"page": page, "limit": limit},
        )
