"""Request bodies of the elluminate API (msgspec structs; the returned objects are in
:mod:`._wire`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Generic, Literal

from ._enums import (
    CollectionType,
    EvaluationMode,
    InferenceType,
    RatingMode,
    ReasoningEffort,
    Verbosity,
)
from ._wire import (
    CriterionIn,
    GenerationMetadata,
    GenerationParams,
    Message,
    PromptResponse,
    Rating,
    T,
    ToolChoice,
    Wire,
)


class VersionCheckRequest(Wire, kw_only=True):
    current_sdk_version: str


class VersionCheckResponse(Wire, kw_only=True):
    is_compatible: bool
    required_sdk_version: str | None = None


class CreateProjectRequest(Wire, kw_only=True):
    """``public_in_org`` is sent only when set."""

    __omit_none__ = frozenset({"public_in_org"})

    name: str
    description: str = ""
    organization_id: int | None = None
    public_in_org: bool | None = None


class CreatePromptTemplateRequest(Wire, kw_only=True):
    name: str | None = None
    messages: list[Message] = []
    response_format_json_schema: dict[str, Any] | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: ToolChoice = None
    parent_prompt_template_id: int | None = None


class CreateCollectionRequest(Wire, kw_only=True):
    """``variables``, ``columns`` and ``environment_config`` are sent only when set."""

    __omit_none__ = frozenset({"variables", "columns", "environment_config"})

    name: str | None = None
    description: str = ""
    variables: list[dict[str, Any]] | None = None
    columns: list[dict[str, Any]] | None = None
    read_only: bool = False
    collection_type: CollectionType = CollectionType.STANDARD
    environment_config: dict[str, Any] | None = None


class UpdateCollectionRequest(Wire, kw_only=True, omit_defaults=True):
    name: str
    description: str | None = None
    read_only: bool | None = None
    columns: list[dict[str, Any]] | None = None
    environment_config: dict[str, Any] | None = None


class TemplateVariablesCollectionFilter(Wire, kw_only=True):
    """Filters of the collection list (query keys)."""

    name: str | None = None
    name_search: str | None = None
    has_entries: bool | None = None


class TemplateVariablesCollectionSort(Wire, kw_only=True):
    sort: (
        Literal["name", "-name", "created_at", "-created_at", "updated_at", "-updated_at"] | None
    ) = None


class PromptTemplateFilter(Wire, kw_only=True):
    """Filters of the prompt-template list (query keys)."""

    name: str | None = None
    version: int | Literal["latest"] | None = None
    search: str | None = None
    criterion_set_id: int | None = None


class ExperimentFilter(Wire, kw_only=True):
    """Filters of the experiment list (query keys)."""

    experiment_name: str | None = None
    experiment_name_search: str | None = None
    date_from: datetime | None = None
    date_to: datetime | None = None
    prompt_template_id: int | None = None
    prompt_template_name: str | None = None
    collection_id: int | None = None
    llm_config_id: int | None = None
    created_by_schedule_id: int | None = None


class PromptResponseFilter(Wire, kw_only=True):
    """Filters of the response list (query keys; ``response_ids`` repeats)."""

    experiment_id: int | None = None
    prompt_id: int | None = None
    prompt_template_id: int | None = None
    template_variables_id: int | None = None
    collection_id: int | None = None
    llm_model_name: str | None = None
    epoch: int | None = None
    response_ids: list[int] | None = None
    duration_seconds_min: float | None = None
    duration_seconds_max: float | None = None
    input_tokens_min: int | None = None
    input_tokens_max: int | None = None
    output_tokens_min: int | None = None
    output_tokens_max: int | None = None


class CreateEntryRequest(Wire, kw_only=True):
    input_values: dict[str, Any] | None = None
    prompt_template_id: int | None = None
    environment_config: dict[str, Any] | None = None


class UpdateEntryRequest(Wire, kw_only=True, omit_defaults=True):
    input_values: dict[str, Any]
    environment_config: dict[str, Any] | None = None


class CreateCriteriaRequest(Wire, kw_only=True):
    prompt_template_id: int | None = None
    criterion_set_id: int | None = None
    template_variables_id: int | None = None
    criteria: list[CriterionIn] | None = None
    delete_existing: bool = False


class UpdateCriterionRequest(Wire, kw_only=True, omit_defaults=True):
    criterion_str: str | None = None
    label: str | None = None


class CreateCriterionSetRequest(Wire, kw_only=True):
    name: str
    criteria: list[CriterionIn] | None = None


class CreateLLMConfigRequest(Wire, kw_only=True):
    name: str
    description: str = ""
    llm_model_name: str
    llm_base_url: str | None = None
    api_key: str | None = None
    api_version: str | None = None
    max_connections: int = 10
    inference_type: InferenceType = InferenceType.OPENAI
    max_retries: int | None = None
    timeout: int | None = None
    system_message: str | None = None
    max_tokens: int | None = None
    top_p: float | None = None
    temperature: float | None = None
    best_of: int | None = None
    top_k: int | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = None
    reasoning_effort: ReasoningEffort | None = None
    verbosity: Verbosity | None = None
    custom_api_config: dict[str, Any] | None = None
    custom_response_parser: str | None = None
    input_price_per_mtok: float | None = None
    output_price_per_mtok: float | None = None


class CreateExperimentRequest(Wire, kw_only=True):
    name: str
    description: str = ""
    prompt_template_id: int | None = None
    collection_id: int | None = None
    criterion_set_id: int | None = None
    llm_config_id: int | None = None
    generate: bool = False
    rating_mode: RatingMode = RatingMode.DETAILED
    n_epochs: int = 1
    generation_params: GenerationParams | None = None
    rating_version: str | None = None
    response_column_id: int | None = None
    evaluation_mode: EvaluationMode = EvaluationMode.STANDARD
    agent_config: dict[str, Any] | None = None
    evaluation_agent_config: dict[str, Any] | None = None
    persona_group_id: int | None = None
    scenario_set_id: int | None = None


class RunExperimentRequest(Wire, kw_only=True):
    """``generation_params`` is sent only when set."""

    __omit_none__ = frozenset({"generation_params"})

    rating_mode: RatingMode = RatingMode.DETAILED
    n_epochs: int = 1
    generation_params: GenerationParams | None = None


class RetryFailedRequest(Wire, kw_only=True):
    rating_mode: RatingMode = RatingMode.DETAILED
    discard_annotations: bool = False


class CreatePromptResponseRequest(Wire, kw_only=True):
    template_variables_id: int
    experiment_id: int
    epoch: int = 1
    llm_config_id: int | None = None
    messages: list[Message] = []
    metadata: GenerationMetadata | None = None


class BatchCreatePromptResponseRequest(Wire, kw_only=True):
    prompt_response_ins: list[CreatePromptResponseRequest]


class UpdateAnnotationRequest(Wire, kw_only=True):
    annotation: str


class CreateRatingRequest(Wire, kw_only=True):
    prompt_response_id: int
    rating_mode: RatingMode = RatingMode.FAST


class BatchRateRequest(Wire, kw_only=True):
    prompt_response_ids: list[int]
    rating_mode: RatingMode = RatingMode.FAST


class TaskStatusPayload(Wire, kw_only=True):
    """Body of the task polling endpoints and the data of each SSE event (CONTRACT.md 5.2)."""

    status: str
    error_msg: str | None = None
    completed_responses: int | None = None
    completed_ratings: int | None = None
    total_responses: int | None = None
    logs_delta: str | None = None
    generation_task_id: str | None = None
    has_internal_error: bool | None = None


class BatchCreateStatus(Wire, Generic[T], kw_only=True):
    """Status of a batch task (``GET responses/batches/{id}``, ``ratings/batches/{id}``)."""

    status: str
    error_msg: str | None = None


class BatchCreatePromptResponseStatus(BatchCreateStatus[PromptResponse], kw_only=True):
    pass


class BatchCreateRatingResponseStatus(BatchCreateStatus[list[Rating]], kw_only=True):
    pass


class ErrorBody(Wire, kw_only=True):
    detail: Any


# The official package's names for request structs that are named after their use here.
CreateTemplateVariablesRequest = CreateEntryRequest
UpdateTemplateVariablesRequest = UpdateEntryRequest
EditCriterionRequest = UpdateCriterionRequest
BatchCreateRatingRequest = BatchRateRequest
ExperimentGenerationStatus = TaskStatusPayload
