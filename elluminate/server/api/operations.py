"""What the router cannot tell about the API's operations (see :mod:`.openapi`): an
:class:`Op` per route, in :data:`OPERATIONS` or put on a handler by :func:`operation`."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, TypeVar

import msgspec

from elluminate import schemas as s

from .projects import Health, ProjectWithKey

F = TypeVar("F", bound=Callable[..., Any])

OP_ATTRIBUTE = "__elluminate_openapi__"

#: A positive integer id (what ``path_id``/``query_int`` accept).
Id = Annotated[int, msgspec.Meta(ge=1)]
#: A 1-based page number.
PageNumber = Annotated[int, msgspec.Meta(ge=1)]


@dataclass(frozen=True)
class Op:
    """What the router cannot tell about one operation.

    ``request``: the JSON body type (``request_required=False``: the body may be empty);
    ``upload``: a JSONL file body instead (multipart part ``file`` or the raw body);
    ``response``: the success body type (None: no body; with ``paginated`` the body is
    ``{"items": [response...], "count": n}`` and a ``page`` query parameter exists);
    ``stream``: the success answer is ``text/event-stream``; ``status``: the success status
    (``extra_responses`` adds other success statuses); ``query``: query parameter name ->
    type (or ``(type, description)``); ``errors``: error statuses beyond the derived ones
    (401 unless public, 404 with path parameters, 413 with a body, 422 with a body or query
    parameters).
    """

    request: Any = None
    request_required: bool = True
    upload: bool = False
    response: Any = None
    paginated: bool = False
    stream: bool = False
    status: int = 200
    query: Mapping[str, Any] = field(default_factory=dict)
    errors: tuple[int, ...] = ()
    extra_responses: Mapping[int, tuple[Any, str]] = field(default_factory=dict)
    summary: str | None = None
    description: str | None = None


def operation(**kwargs: Any) -> Callable[[F], F]:
    """Decorator: attach an :class:`Op` (same keyword arguments) to a route handler."""
    op = Op(**kwargs)

    def decorate(handler: F) -> F:
        setattr(handler, OP_ATTRIBUTE, op)
        return handler

    return decorate


# ---- the table --------------------------------------------------------------------------

P = "/api/v0/projects/{project_id}"
_TASK_QUERY = {
    "connection_uuid": (str, "a consumer id: `logs_delta` is then the log since its last poll"),
}
_STREAM_QUERY = {"polling_interval": (float, "seconds between progress events (0.1 to 10)")}
_BATCH_EMPTY = {200: (type(None), "an empty batch: the body is `null`, no task started")}
_EXPERIMENT_FILTERS = {
    "prompt_template_id": Id,
    "collection_id": Id,
    "llm_config_id": Id,
    "criterion_set_id": Id,
    "experiment_name": (str, "exact name"),
    "experiment_name_search": (str, "substring of the name"),
    "prompt_template_name": str,
    "date_from": (str, "ISO date (prefix compare on created_at)"),
    "date_to": (str, "ISO date (prefix compare on created_at)"),
}
_RESPONSE_FILTERS: dict[str, Any] = {
    "experiment_id": int,
    "prompt_id": int,
    "prompt_template_id": int,
    "template_variables_id": int,
    "epoch": int,
    "collection_id": Id,
    "llm_model_name": str,
    "response_ids": (list[int], "repeat the parameter, or separate ids with commas"),
    "duration_seconds_min": float,
    "duration_seconds_max": float,
    "input_tokens_min": float,
    "input_tokens_max": float,
    "output_tokens_min": float,
    "output_tokens_max": float,
}

#: Operations keyed by ``(method, canonical path)``; a handler's :func:`operation` wins.
OPERATIONS: dict[tuple[str, str], Op] = {
    # health, version, projects
    ("GET", "/"): Op(response=Health),
    ("POST", "/api/v0/version/compatible"): Op(
        request=s.VersionCheckRequest, request_required=False, response=s.VersionCheckResponse
    ),
    ("GET", "/api/v0/projects"): Op(response=s.Page[s.Project]),
    ("GET", P): Op(response=s.Project),
    ("POST", "/api/v0/projects"): Op(
        request=s.CreateProjectRequest, response=ProjectWithKey, status=201, errors=(404,)
    ),
    # prompt templates
    ("GET", P + "/prompt_templates"): Op(
        response=s.PromptTemplate,
        paginated=True,
        query={
            "name": (str, "exact name: every version, newest first"),
            "version": Id,
            "criterion_set_id": Id,
            "compatible_collection_id": Id,
        },
    ),
    ("GET", P + "/prompt_templates/{template_id}"): Op(response=s.PromptTemplate),
    ("POST", P + "/prompt_templates"): Op(
        request=s.CreatePromptTemplateRequest, response=s.PromptTemplate, status=201,
        errors=(404, 409),
    ),
    ("DELETE", P + "/prompt_templates/{template_id}"): Op(status=204),
    # collections and entries
    ("GET", P + "/collections"): Op(
        response=s.TemplateVariablesCollection,
        paginated=True,
        query={"name": (str, "exact name"), "compatible_prompt_template_id": Id},
    ),
    ("GET", P + "/collections/{collection_id}"): Op(
        response=s.TemplateVariablesCollectionWithEntries
    ),
    ("POST", P + "/collections"): Op(
        request=s.CreateCollectionRequest, response=s.TemplateVariablesCollectionWithEntries,
        status=201, errors=(409,),
    ),
    ("PUT", P + "/collections/{collection_id}"): Op(
        request=s.UpdateCollectionRequest, response=s.TemplateVariablesCollection, errors=(409,)
    ),
    ("DELETE", P + "/collections/{collection_id}"): Op(status=204),
    ("GET", P + "/collections/{collection_id}/entries"): Op(
        response=s.TemplateVariables, paginated=True
    ),
    ("GET", P + "/collections/{collection_id}/entries/{entry_id}"): Op(
        response=s.TemplateVariables
    ),
    ("POST", P + "/collections/{collection_id}/entries"): Op(
        request=s.CreateEntryRequest, response=s.TemplateVariables, status=201,
        errors=(400, 502, 503),
    ),
    ("PUT", P + "/collections/{collection_id}/entries/{entry_id}"): Op(
        request=s.UpdateEntryRequest, response=s.TemplateVariables, errors=(400,)
    ),
    ("DELETE", P + "/collections/{collection_id}/entries/{entry_id}"): Op(
        status=204, errors=(400,)
    ),
    ("DELETE", P + "/collections/{collection_id}/entries"): Op(status=204, errors=(400,)),
    ("POST", P + "/collections/{collection_id}/entries/batches"): Op(
        upload=True,
        response=list[s.TemplateVariables],
        status=201,
        query={"skip_existing": (bool, "skip rows equal to an existing row")},
        errors=(400,),
    ),
    # criteria and criterion sets
    ("POST", P + "/criteria"): Op(
        request=s.CreateCriteriaRequest, response=list[s.Criterion], status=201,
        errors=(404, 409, 502, 503),
    ),
    ("GET", P + "/criteria"): Op(
        response=s.Criterion,
        paginated=True,
        query={"prompt_template_id": Id, "criterion_set_id": Id},
        errors=(404,),
    ),
    ("GET", P + "/criteria/{criterion_id}"): Op(response=s.Criterion),
    ("PUT", P + "/criteria/{criterion_id}"): Op(
        request=s.UpdateCriterionRequest, response=s.Criterion
    ),
    ("DELETE", P + "/criteria/{criterion_id}"): Op(status=204),
    ("GET", P + "/criterion_sets"): Op(
        response=s.CriterionSet, paginated=True, query={"name": (str, "exact name")}
    ),
    ("GET", P + "/criterion_sets/{set_id}"): Op(response=s.CriterionSet),
    ("POST", P + "/criterion_sets"): Op(
        request=s.CreateCriterionSetRequest, response=s.CriterionSet, status=201, errors=(409,)
    ),
    ("DELETE", P + "/criterion_sets/{set_id}"): Op(status=204),
    ("PUT", P + "/criterion_sets/{set_id}/prompt_templates/{template_id}"): Op(
        response=s.CriterionSet
    ),
    ("DELETE", P + "/criterion_sets/{set_id}/prompt_templates/{template_id}"): Op(status=204),
    # LLM configs
    ("GET", P + "/llm_configs"): Op(
        response=s.LLMConfig, paginated=True, query={"name": (str, "exact name")}
    ),
    ("GET", P + "/llm_configs/{config_id}"): Op(response=s.LLMConfig),
    ("POST", P + "/llm_configs"): Op(
        request=s.CreateLLMConfigRequest, response=s.LLMConfig, status=201, errors=(409,)
    ),
    ("DELETE", P + "/llm_configs/{config_id}"): Op(status=204),
    # experiments
    ("POST", P + "/experiments"): Op(
        request=s.CreateExperimentRequest, response=s.Experiment, status=201,
        errors=(404, 409, 429),
    ),
    ("GET", P + "/experiments"): Op(
        response=s.Experiment, paginated=True, query=_EXPERIMENT_FILTERS
    ),
    ("GET", P + "/experiments/{experiment_id}"): Op(
        response=s.Experiment,
        query={
            "categorical_filters": (
                str,
                'JSON object: column name -> allowed values, e.g. {"category": ["a"]}',
            )
        },
    ),
    ("DELETE", P + "/experiments/{experiment_id}"): Op(status=204),
    ("POST", P + "/experiments/{experiment_id}/run"): Op(
        request=s.RunExperimentRequest, request_required=False, response=s.Experiment,
        errors=(409, 429),
    ),
    ("POST", P + "/experiments/{experiment_id}/retry-failed"): Op(
        request=s.RetryFailedRequest, request_required=False, response=s.Experiment,
        errors=(409, 429),
    ),
    ("POST", P + "/experiments/{experiment_id}/cancel"): Op(
        response=s.Experiment, errors=(409,)
    ),
    ("GET", P + "/experiments/{experiment_id}/generation/{task_id}"): Op(
        response=s.TaskStatusPayload, query=_TASK_QUERY
    ),
    ("GET", P + "/experiments/{experiment_id}/generation/{task_id}/stream"): Op(
        stream=True, query=_STREAM_QUERY
    ),
    # responses
    ("GET", P + "/responses"): Op(
        response=s.PromptResponse, paginated=True, query=_RESPONSE_FILTERS
    ),
    ("GET", P + "/responses/{response_id}"): Op(response=s.PromptResponse),
    ("POST", P + "/responses"): Op(
        request=s.CreatePromptResponseRequest, response=s.PromptResponse, status=201,
        errors=(404,),
    ),
    ("POST", P + "/responses/generate"): Op(
        request=s.CreatePromptResponseRequest, response=s.PromptResponse, status=201,
        errors=(404, 502, 503),
    ),
    ("POST", P + "/responses/batches"): Op(
        request=s.BatchCreatePromptResponseRequest, response=str, status=202,
        extra_responses=_BATCH_EMPTY, errors=(404, 429),
    ),
    ("GET", P + "/responses/batches/{task_id}"): Op(
        response=s.TaskStatusPayload, query=_TASK_QUERY
    ),
    ("DELETE", P + "/responses/{response_id}"): Op(status=204),
    ("PATCH", P + "/responses/{response_id}"): Op(
        request=s.UpdateAnnotationRequest, response=s.PromptResponse
    ),
    # ratings
    ("GET", P + "/ratings"): Op(
        response=s.Rating, paginated=True, query={"prompt_response_id": Id}
    ),
    ("POST", P + "/ratings"): Op(
        request=s.CreateRatingRequest, response=list[s.Rating], status=201,
        errors=(404, 502, 503),
    ),
    ("POST", P + "/ratings/batches"): Op(
        request=s.BatchRateRequest, response=str, status=202, extra_responses=_BATCH_EMPTY,
        errors=(404, 429),
    ),
    ("GET", P + "/ratings/batches/{task_id}"): Op(
        response=s.TaskStatusPayload, query=_TASK_QUERY
    ),
    ("GET", P + "/ratings/batches/{task_id}/stream"): Op(stream=True, query=_STREAM_QUERY),
}
