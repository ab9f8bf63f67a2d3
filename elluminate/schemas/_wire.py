"""Wire structs: the JSON objects of the platform API (CONTRACT.md section 7), defined once.

The client decodes responses into these (or into rich subclasses of them); the server encodes
its answers from them. Unknown keys are ignored on decode, so newer servers stay compatible.
The request bodies are in :mod:`._requests`.
"""

from __future__ import annotations

import copy
from datetime import date, datetime
from typing import Any, ClassVar, Generic, Literal, TypeVar, Union

import msgspec

from .. import _repr
from .._templates import placeholders_of, render_str
from ._enums import (
    CollectionType,
    ColumnTypeEnum,
    EvaluationMode,
    InferenceType,
    RatingValue,
    ReasoningEffort,
    Verbosity,
)

T = TypeVar("T")
Message = dict[str, Any]
ToolChoice = Union[Literal["none", "auto", "required"], dict[str, Any], None]


class Wire(msgspec.Struct, gc=False):
    """Base of every wire object.

    ``gc=False``: wire objects never form reference cycles, so the garbage collector need not
    track them; decoding thousands of nested responses then costs no collector passes.

    A request struct may name in ``__omit_none__`` the keys it sends only when they are not
    None (CONTRACT.md "omit-none"); :func:`request_body` applies that.
    """

    __omit_none__: ClassVar[frozenset[str]] = frozenset()

    # The part of pydantic's model API that code written for the official package (whose
    # objects are pydantic models) commonly calls.

    def model_dump(
        self,
        *,
        mode: Literal["python", "json"] = "python",
        include: set[str] | None = None,
        exclude: set[str] | None = None,
        exclude_none: bool = False,
    ) -> dict[str, Any]:
        """The fields as a dict, nested objects as dicts (``mode="json"``: JSON types only,
        e.g. datetimes as ISO strings). ``include``/``exclude`` pick top-level fields."""
        keep = (datetime, date) if mode == "python" else ()
        data: dict[str, Any] = msgspec.to_builtins(
            self, builtin_types=keep, str_keys=mode == "json"
        )
        if include is not None:
            data = {k: v for k, v in data.items() if k in include}
        if exclude is not None:
            data = {k: v for k, v in data.items() if k not in exclude}
        return _drop_none(data) if exclude_none else data

    def model_dump_json(
        self,
        *,
        indent: int | None = None,
        include: set[str] | None = None,
        exclude: set[str] | None = None,
        exclude_none: bool = False,
    ) -> str:
        """The fields as a JSON document (see :meth:`model_dump`)."""
        data = self.model_dump(
            mode="json", include=include, exclude=exclude, exclude_none=exclude_none
        )
        encoded = msgspec.json.encode(data)
        if indent is not None:
            encoded = msgspec.json.format(encoded, indent=indent)
        return encoded.decode()

    def model_copy(self, *, update: dict[str, Any] | None = None, deep: bool = False) -> Any:
        """A copy with the ``update`` fields replaced (``deep``: nested objects copied too);
        a copy of a client's object stays bound to that client."""
        changes = dict(update or {})
        if deep:
            for name in self.__struct_fields__:
                if name not in changes:
                    changes[name] = copy.deepcopy(getattr(self, name))
        duplicate = msgspec.structs.replace(self, **changes)
        client = getattr(self, "_client", None)
        if client is not None:
            duplicate._client = client  # type: ignore[attr-defined]
        return duplicate

    @classmethod
    def model_validate(cls: type[W], obj: Any) -> W:
        """An instance from a dict (or an object with these attributes); ValueError if invalid."""
        try:
            # not strict, like pydantic's default: "3" is accepted for an int key or field
            return msgspec.convert(
                obj, cls, strict=False, from_attributes=not isinstance(obj, dict)
            )
        except msgspec.ValidationError as exc:
            raise ValueError(f"invalid {cls.__name__}: {exc}") from None

    @classmethod
    def model_validate_json(cls: type[W], json_data: str | bytes) -> W:
        """An instance from a JSON document; ValueError if invalid."""
        try:
            return msgspec.json.decode(json_data, type=cls)
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            raise ValueError(f"invalid {cls.__name__}: {exc}") from None


W = TypeVar("W", bound=Wire)


def _drop_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_none(v) for v in value]
    return value


def request_body(obj: Any) -> Any:
    """What to send for ``obj``: itself, or for a struct with ``__omit_none__`` a dict of its
    keys without those that are None."""
    omit = getattr(type(obj), "__omit_none__", None)
    if not omit:
        return obj
    data: dict[str, Any] = msgspec.to_builtins(obj)
    return {k: v for k, v in data.items() if not (v is None and k in omit)}


class Organization(Wire, kw_only=True):
    id: int
    name: str
    domain: str
    stripe_subscription_id: str | None = None
    created_at: datetime
    updated_at: datetime


class Project(Wire, kw_only=True):
    id: int
    name: str
    description: str = ""
    organization: Organization
    public_in_org: bool = False
    created_at: datetime
    updated_at: datetime


class PromptTemplate(Wire, kw_only=True):
    id: int
    name: str
    version: int
    messages: list[Message] = []
    placeholders: set[str] = set()
    response_format_json_schema: dict[str, Any] | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: ToolChoice = None
    criterion_set_id: int | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None

    def __repr__(self) -> str:
        return _repr.template_repr(self)


class CollectionColumn(Wire, kw_only=True):
    id: int | None = None
    name: str | None = None
    column_type: ColumnTypeEnum | None = None
    default_value: str | None = ""
    column_position: int | None = 0
    categorical_values: list[str] | None = None


class TemplateVariablesCollection(Wire, kw_only=True):
    id: int
    name: str
    description: str = ""
    columns: list[CollectionColumn] = []
    variables_count: int = 0
    read_only: bool = False
    created_at: datetime | None = None
    updated_at: datetime | None = None
    version: str | None = None
    collection_type: CollectionType = CollectionType.STANDARD
    environment_config: dict[str, Any] | None = None

    def __repr__(self) -> str:
        return _repr.collection_repr(self)


class TemplateVariables(Wire, kw_only=True):
    id: int
    input_values: dict[str, Any]
    collection: TemplateVariablesCollection
    created_at: datetime
    environment_config: dict[str, Any] | None = None

    def __repr__(self) -> str:
        return _repr.entry_repr(self)


class TemplateVariablesCollectionWithEntries(TemplateVariablesCollection, kw_only=True):
    variables: list[TemplateVariables]


class Criterion(Wire, kw_only=True):
    id: int
    criterion_str: str
    label: str | None = None
    prompt_template: PromptTemplate | None = None
    template_variables: TemplateVariables | None = None
    created_at: datetime

    def __repr__(self) -> str:
        return _repr.criterion_repr(self)


class CriterionIn(Wire, kw_only=True):
    criterion_str: str
    label: str | None = None


class CriterionSet(Wire, kw_only=True):
    id: int
    name: str
    linked_prompt_templates: list[PromptTemplate] | None = None
    criteria: list[Criterion] | None = None

    def __repr__(self) -> str:
        return _repr.criterion_set_repr(self)


class LLMConfig(Wire, kw_only=True):
    id: int | None = None
    name: str | None = None
    description: str = ""
    llm_model_name: str | None = None
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

    def __repr__(self) -> str:
        return _repr.llm_config_repr(self)


class GenerationParams(Wire, kw_only=True):
    temperature: float | None = None
    reasoning_effort: ReasoningEffort | None = None
    verbosity: Verbosity | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    max_connections: int = 10

    def __post_init__(self) -> None:
        if self.temperature is not None and not 0.0 <= self.temperature <= 2.0:
            raise ValueError("GenerationParams.temperature must be between 0.0 and 2.0")
        if self.temperature is not None and self.reasoning_effort is not None:
            raise ValueError("GenerationParams: set temperature or reasoning_effort, not both")
        if self.top_p is not None and not 0.0 <= self.top_p <= 1.0:
            raise ValueError("GenerationParams.top_p must be between 0.0 and 1.0")
        if self.max_tokens is not None and self.max_tokens < 1:
            raise ValueError("GenerationParams.max_tokens must be at least 1")
        if self.max_connections < 1:
            raise ValueError("GenerationParams.max_connections must be at least 1")


class CustomApiInfo(Wire, kw_only=True):
    provider: str
    api_request_id: str | None = None
    track_request_url: str | None = None


class GenerationMetadata(Wire, kw_only=True):
    llm_model_config: LLMConfig | None = None
    duration_seconds: float | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    reasoning_tokens: int | None = None
    cached_tokens: int | None = None
    custom_api_info: CustomApiInfo | None = None
    trajectory_ingest_error: str | None = None
    #: set by the self-hosted server: the answer came from its LLM call cache (no provider call)
    from_cache: bool | None = None


class Rating(Wire, kw_only=True):
    id: int
    criterion: Criterion
    rating: RatingValue
    reasoning: str | None = None
    generation_metadata: GenerationMetadata | None = None
    created_at: datetime

    def __repr__(self) -> str:
        return _repr.rating_repr(self)


class Prompt(Wire, kw_only=True):
    id: int
    prompt_template: PromptTemplate | None = None
    template_variables: TemplateVariables
    messages: list[Message] = []
    created_at: datetime
    resolved_tools: list[dict[str, Any]] | None = None
    resolved_tool_choice: dict[str, Any] | str | None = None
    resolved_response_format: dict[str, Any] | None = None
    is_stale: bool = False


class PromptResponse(Wire, kw_only=True):
    id: int
    prompt: Prompt
    messages: list[Message]
    generation_metadata: GenerationMetadata | None
    error: str | None
    epoch: int
    termination_reason: str | None = None
    ratings: list[Rating] = []
    trajectory: dict[str, Any] | None = None
    annotation: str = ""
    created_at: datetime

    @property
    def response_str(self) -> str:
        """Content of the last assistant message ("" if there is none)."""
        for message in reversed(self.messages):
            if message.get("role") == "assistant":
                content = message.get("content")
                if isinstance(content, str):
                    return content
                if isinstance(content, list):
                    return "".join(
                        part.get("text", "") for part in content if isinstance(part, dict)
                    )
                return ""
        return ""

    def __repr__(self) -> str:
        return _repr.response_repr(self)


class MeanRating(Wire, kw_only=True):
    yes: float
    no: float


class ExperimentResults(Wire, kw_only=True):
    mean_all_ratings: MeanRating
    std_all_ratings: float = 0.0
    mean_rating_by_criterion_id: dict[int, MeanRating]
    mean_duration_seconds: float | None = None
    mean_input_tokens: float | None = None
    mean_output_tokens: float | None = None
    mean_reasoning_tokens: float | None = None
    input_tokens_per_response: list[int]
    output_tokens_per_response: list[int]
    reasoning_tokens_per_response: list[int] = []
    duration_seconds_per_response: list[float]
    num_rated_responses: int
    num_failed_responses: int
    completed_epochs: int = 1
    experiment_duration_seconds: float | None = None
    estimated_input_cost_usd: float = 0.0
    estimated_output_cost_usd: float = 0.0
    estimated_total_cost_usd: float = 0.0
    #: self-hosted server: responses / ratings answered by its LLM call cache
    num_cached_responses: int = 0
    num_cached_ratings: int = 0

    def get_criterion_summary(self, criterion_id: int) -> str:
        """One line: the pass rate of one criterion (or that it has no ratings)."""
        mean = self.mean_rating_by_criterion_id.get(criterion_id)
        if mean is None:
            return f"Criterion {criterion_id}: no ratings"
        return f"{mean.yes:.2%} yes, {mean.no:.2%} no"

    def summary(self, criterion_names: dict[int, str] | None = None) -> str:
        """The text that :meth:`print_summary` prints."""
        names = criterion_names or {}
        lines = [
            "Experiment results",
            f"  rated responses:  {self.num_rated_responses}",
            f"  failed responses: {self.num_failed_responses}",
            f"  epochs:           {self.completed_epochs}",
            f"  pass rate:        {self.mean_all_ratings.yes:.2%}",
        ]
        metrics = [
            ("mean duration", self.mean_duration_seconds, "{:.2f} s"),
            ("mean input tokens", self.mean_input_tokens, "{:.1f}"),
            ("mean output tokens", self.mean_output_tokens, "{:.1f}"),
            ("mean reasoning tokens", self.mean_reasoning_tokens, "{:.1f}"),
        ]
        for label, value, spec in metrics:
            if value is not None:
                lines.append(f"  {label + ':':<17} {spec.format(value)}")
        if self.mean_rating_by_criterion_id:
            lines.append("  pass rate by criterion:")
            for cid, mean in self.mean_rating_by_criterion_id.items():
                lines.append(f"    {mean.yes:7.2%}  {names.get(cid, f'criterion {cid}')}")
        return "\n".join(lines)

    def print_summary(self, criterion_names: dict[int, str] | None = None) -> None:
        """Print counts, pass rates (overall and per criterion) and generation metrics.

        ``criterion_names`` maps criterion ids to the names to show instead of the ids.
        """
        print(self.summary(criterion_names))

    def __repr__(self) -> str:
        return _repr.results_repr(self)

    def _repr_html_(self) -> str:
        return _repr.results_html(self)


class Experiment(Wire, kw_only=True):
    id: int
    name: str
    description: str | None = None
    prompt_template: PromptTemplate | None = None
    collection: TemplateVariablesCollection
    criterion_set: CriterionSet
    llm_config: LLMConfig | None
    rating_version: str | None = None
    rated_responses: list[PromptResponse] = []
    created_at: datetime
    updated_at: datetime
    generation_task_id: str | None = None
    has_internal_error: bool = False
    generation_params: GenerationParams | None = None
    n_epochs: int | None = None
    response_column_id: int | None = None
    results: ExperimentResults | None = None
    logs: str | None = None
    evaluation_mode: EvaluationMode = EvaluationMode.STANDARD
    agent_config: dict[str, Any] | None = None
    evaluation_agent_config: dict[str, Any] | None = None
    dropped_trajectories: int = 0

    @property
    def result(self) -> ExperimentResults | None:
        """Alias of ``results``."""
        return self.results

    def __repr__(self) -> str:
        return _repr.experiment_repr(self)

    def _repr_html_(self) -> str:
        return _repr.experiment_html(self)


class ResponsesSample(Wire, kw_only=True):
    """The responses of one input row in one experiment (a sample of the samples views)."""

    experiment_id: int
    template_variables_id: int
    prompt_response_ids: list[int]


class ResponsesSampleFilter(Wire, kw_only=True):
    """Filters of the response samples view (CONTRACT.md 4.9)."""

    experiment_id: int
    criteria_filter_by: dict[int, RatingValue] | None = None
    duration_seconds_min: float | None = None
    duration_seconds_max: float | None = None
    input_tokens_min: int | None = None
    input_tokens_max: int | None = None
    output_tokens_min: int | None = None
    output_tokens_max: int | None = None
    show_only_annotated_responses: bool | None = None


class DailyUsageStats(Wire, kw_only=True):
    date: date
    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0


class ResponsesStats(Wire, kw_only=True):
    """Usage of one LLM config over recent days (``GET responses/stats``)."""

    total_responses: int
    average_duration_seconds: float | None = None
    min_duration_seconds: float | None = None
    max_duration_seconds: float | None = None
    total_input_tokens: int
    total_output_tokens: int
    average_input_tokens: float
    average_output_tokens: float
    average_rating: float | None = None
    daily_usage: list[DailyUsageStats]


class PersonaMinimal(Wire, kw_only=True):
    id: int
    name: str
    version: int


class ExperimentMapResponse(Wire, kw_only=True):
    response_id: int
    epoch: int
    task_name: str | None = None
    has_trajectory: bool
    total_steps: int | None = None
    total_cost_usd: float | None = None
    has_error: bool
    num_criteria_passed: int | None = None
    num_criteria_failed: int | None = None


class ExperimentMapSample(Wire, kw_only=True):
    template_variables_id: int
    persona: PersonaMinimal | None = None
    responses: list[ExperimentMapResponse]


class ExperimentMap(Wire, kw_only=True):
    """Per-row, per-response metadata of an experiment, without messages (one page of rows)."""

    experiment_id: int
    name: str
    num_samples: int
    num_responses: int
    samples: list[ExperimentMapSample]


class TemplateString(Wire, kw_only=True):
    """A text with ``{{placeholders}}``: ``render(**values)`` fills them."""

    template_str: str

    def __str__(self) -> str:
        return self.template_str

    @property
    def is_template(self) -> bool:
        """True if the text has at least one placeholder."""
        return bool(placeholders_of(self.template_str))

    @property
    def placeholders(self) -> set[str]:
        """The names of the placeholders."""
        return set(placeholders_of(self.template_str))

    def render(self, **kwargs: str) -> str:
        """The text with every placeholder filled (ValueError names the missing values)."""
        return render_str(self.template_str, kwargs)


class Page(Wire, Generic[T], kw_only=True):
    """Envelope of paginated list endpoints: the page's items and the total count."""

    items: list[T] = []
    count: int = 0
