"""Rich models: wire structs bound to the client that produced them.

Async-side methods carry an ``a`` prefix (``aadd_many``); the generated sync twin drops it
(``add_many``). The client reference is stored outside the struct's fields, so it is never
encoded and never shown in ``repr``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import schemas
from .._export import experiment_records, to_dataframe, write_csv, write_jsonl
from .._templates import render_messages
from .._unset import UNSET, _Unset
from ..exceptions import ModelNotBoundError
from ..schemas import DEFAULT_EVALUATION_POLLING_INTERVAL, GenerationParams, RatingMode
from ..streaming import ExperimentStatusEvent

if TYPE_CHECKING:
    from .client import AsyncClient


def bound_client(model: Any) -> AsyncClient:
    """The client bound to ``model``; ModelNotBoundError if there is none."""
    client = getattr(model, "_client", None)
    if client is None:
        raise ModelNotBoundError(type(model).__name__, "use an object returned by the client")
    return client  # type: ignore[no-any-return]


def bind(obj: Any, client: Any) -> Any:
    """Attach ``client`` to ``obj`` (a rich model or a list of them) and return it."""
    if isinstance(obj, list):
        for item in obj:
            item._client = client
    elif obj is not None:
        obj._client = client
    return obj


class PromptTemplate(schemas.PromptTemplate, kw_only=True, gc=True, dict=True):
    """A versioned prompt template with ``{{placeholders}}``."""

    def render_messages(self, **values: Any) -> list[dict[str, Any]]:
        """The template's messages with placeholders filled (ValueError lists missing names)."""
        return render_messages(self.messages, values)

    async def anew_version(
        self,
        messages: str | list[dict[str, Any]] | None = None,
        response_format: Any = None,
        tools: list[Any] | None = None,
        tool_choice: Any = None,
        template: str | None = None,
    ) -> PromptTemplate:
        """Create the next version of this template; unset arguments keep current values."""
        return await bound_client(self)._new_template_version(
            self, messages, response_format, tools, tool_choice, template
        )

    async def agenerate_criteria(self, delete_existing: bool = False) -> list[schemas.Criterion]:
        """Let the server's LLM write yes/no criteria for this template."""
        return await bound_client(self)._generate_criteria(self, delete_existing)

    async def aget_or_generate_criteria(self) -> tuple[list[schemas.Criterion], bool]:
        """``(criteria, generated)``: the template's criteria, generated first if it has none."""
        return await bound_client(self)._get_or_generate_criteria(self)

    async def alist_criteria(self) -> list[schemas.Criterion]:
        """All criteria linked to this template through criterion sets."""
        return await bound_client(self)._list_criteria(prompt_template_id=self.id)


class TemplateVariablesCollection(
    schemas.TemplateVariablesCollection, kw_only=True, gc=True, dict=True
):
    """A collection as listed (without its entries)."""


class TemplateVariablesCollectionWithEntries(
    schemas.TemplateVariablesCollectionWithEntries, kw_only=True, gc=True, dict=True
):
    """A collection of test cases with all its entries in ``variables``."""

    def items(self) -> Iterator[schemas.TemplateVariables]:
        """Iterate the entries held locally."""
        return iter(self.variables)

    async def aadd_many(
        self, variables: list[dict[str, Any]], skip_existing: bool = False
    ) -> list[schemas.TemplateVariables]:
        """Upload many entries in one request; returns the rows that were created."""
        return await bound_client(self)._add_entries(self, variables, skip_existing)

    async def aclear(self) -> TemplateVariablesCollectionWithEntries:
        """Delete every entry; returns the refreshed collection."""
        return await bound_client(self)._clear_collection(self)

    async def agenerate_variables(
        self, prompt_template: schemas.PromptTemplate
    ) -> schemas.TemplateVariables:
        """Let the server's LLM invent one entry for ``prompt_template``'s placeholders."""
        return await bound_client(self)._generate_entry(self, prompt_template)

    async def aget_entry(self, entry_id: int) -> schemas.TemplateVariables:
        """One entry of this collection by id."""
        return await bound_client(self)._get_entry(self, entry_id)

    async def aupdate_entry(
        self, entry: schemas.TemplateVariables | int, input_values: dict[str, Any]
    ) -> schemas.TemplateVariables:
        """Replace the values of one entry."""
        return await bound_client(self)._update_entry(self, entry, input_values)

    async def adelete_entry(self, entry: schemas.TemplateVariables | int) -> None:
        """Delete one entry."""
        await bound_client(self)._delete_entry(self, entry)


class CriterionSet(schemas.CriterionSet, kw_only=True, gc=True, dict=True):
    """A named set of yes/no criteria."""

    async def aadd_criterion(self, criterion: str | schemas.CriterionIn) -> schemas.Criterion:
        """Add one criterion (an identical existing one is reused)."""
        added = await bound_client(self)._add_criteria(self, [criterion])
        return added[0]

    async def aadd_criteria(
        self, criteria: list[str | schemas.CriterionIn]
    ) -> list[schemas.Criterion]:
        """Add several criteria (identical existing ones are reused)."""
        return await bound_client(self)._add_criteria(self, criteria)

    async def aclear(self) -> None:
        """Remove every criterion of this set."""
        await bound_client(self)._clear_criteria(self)

    async def alink_template(self, template: schemas.PromptTemplate) -> CriterionSet:
        """Link ``template`` to this set; returns the updated set."""
        return await bound_client(self)._link_template(self, template)

    async def aunlink_template(self, template: schemas.PromptTemplate) -> None:
        """Unlink ``template`` from this set."""
        await bound_client(self)._unlink_template(self, template)


class LLMConfig(schemas.LLMConfig, kw_only=True, gc=True, dict=True):
    """Which model answers, with its sampling settings (``api_key`` comes back masked)."""


class Experiment(schemas.Experiment, kw_only=True, gc=True, dict=True):
    """A prompt template run over a collection and rated against a criterion set."""

    def responses(self) -> Iterator[schemas.PromptResponse]:
        """Iterate the responses held locally (``rated_responses``)."""
        return iter(self.rated_responses)

    def print_results_summary(self) -> None:
        """Print pass rates overall and per criterion."""
        print(results_summary(self))

    def to_records(self) -> list[dict[str, Any]]:
        """One flat dict per rating (response text, inputs, criterion, verdict, reasoning)."""
        return experiment_records(self)

    def to_csv(self, path: str | Path | None = None) -> str:
        """The records as CSV text, also written to ``path`` if given."""
        return write_csv(self.to_records(), path)

    def to_jsonl(self, path: str | Path | None = None) -> str:
        """The records as JSON Lines, also written to ``path`` if given."""
        return write_jsonl(self.to_records(), path)

    def to_pandas(self) -> Any:
        """The records as a pandas DataFrame (needs pandas)."""
        return to_dataframe(self.to_records())

    async def afetch_responses(self) -> Experiment:
        """Load all responses of this experiment into ``rated_responses``; returns ``self``."""
        await bound_client(self)._fetch_responses(self)
        return self

    async def arun(
        self,
        rating_mode: RatingMode = RatingMode.DETAILED,
        n_epochs: int = 1,
        timeout: float | None = None,
        generation_params: GenerationParams | None = None,
    ) -> Experiment:
        """Generate and rate all responses, wait for the end, and update this object."""
        return await bound_client(self)._run_experiment_task(
            self, rating_mode, n_epochs, timeout, generation_params
        )

    async def aretry_failed(
        self,
        rating_mode: RatingMode = RatingMode.DETAILED,
        discard_annotations: bool = False,
        timeout: float | None = None,
    ) -> Experiment:
        """Regenerate and rate only the responses that failed; updates this object."""
        return await bound_client(self)._retry_failed(
            self, rating_mode, discard_annotations, timeout
        )

    async def aclone(
        self,
        name: str,
        llm_config: schemas.LLMConfig | None = None,
        criterion_set: schemas.CriterionSet | None = None,
        description: str | None = None,
        rating_version: str | None | _Unset = UNSET,
    ) -> Experiment:
        """A new, un-run experiment with this one's template, collection and settings."""
        return await bound_client(self)._clone_experiment(
            self, name, llm_config, criterion_set, description, rating_version
        )

    async def aadd_responses(
        self,
        responses: list[str | list[dict[str, Any]]],
        template_variables: list[schemas.TemplateVariables],
        epoch: int = 1,
        metadata: schemas.LLMConfig | schemas.GenerationMetadata | None = None,
        timeout: float | None = None,
    ) -> list[schemas.PromptResponse]:
        """Store externally produced responses (one per entry of ``template_variables``)."""
        return await bound_client(self)._add_responses(
            self, responses, template_variables, epoch, metadata, timeout
        )

    async def arate_responses(
        self,
        prompt_responses: list[schemas.PromptResponse] | None = None,
        rating_mode: RatingMode = RatingMode.DETAILED,
        timeout: float | None = None,
    ) -> list[list[schemas.Rating]]:
        """Rate responses (default: all of this experiment's) against its criteria."""
        return await bound_client(self)._rate_experiment_responses(
            self, prompt_responses, rating_mode, timeout
        )

    async def aget_agent_results_definition(self) -> schemas.AgentResultsDefinition:
        """The frozen tasks of this AGENTIC experiment with the criteria of each."""
        return await bound_client(self).get_agent_results_definition(self)

    async def apreview_agent_results_matching(
        self, results: Sequence[schemas.AgentTrialTaskRef]
    ) -> schemas.AgentResultsMatchPreview:
        """Which of ``results`` would match a task of this experiment (nothing is stored)."""
        return await bound_client(self).preview_agent_results_matching(self, results)

    async def aupload_agent_results(
        self,
        results: list[schemas.AgentTrialResult],
        epoch: int = 1,
        evaluate: bool = True,
        raise_on_partial: bool = False,
    ) -> schemas.AgentResultsUploadResponse:
        """Store agent trials as responses of this experiment (see the client's method)."""
        return await bound_client(self).upload_agent_results(
            self, results, epoch, evaluate, raise_on_partial
        )

    async def await_for_evaluation(
        self,
        task_id: str | None = None,
        timeout: float | None = None,
        polling_interval: float = DEFAULT_EVALUATION_POLLING_INTERVAL,
    ) -> ExperimentStatusEvent[None]:
        """Wait until the judge finished rating this experiment's agent results."""
        return await bound_client(self).wait_for_agent_evaluation(
            self, task_id, timeout, polling_interval
        )


class ScenarioSet(schemas.ScenarioSet, kw_only=True, gc=True, dict=True):
    """Scenarios for multi-turn experiments; ``fields`` and ``scenarios_count`` follow the
    changes made through this object."""

    async def aadd_field(self, name: str, default_value: str = "") -> schemas.ScenarioField:
        """Declare a field (a name usable as ``{{placeholder}}``) with its default value."""
        return await bound_client(self)._add_scenario_field(self, name, default_value)

    async def arename_field(
        self, field: schemas.ScenarioField | int, name: str
    ) -> schemas.ScenarioField:
        """Rename a declared field."""
        return await bound_client(self)._rename_scenario_field(self, field, name)

    async def adelete_field(self, field: schemas.ScenarioField | int) -> None:
        """Delete a declared field (and its values in every scenario)."""
        await bound_client(self)._delete_scenario_field(self, field)

    async def aget_scenario(self, scenario_id: int) -> schemas.Scenario:
        """One scenario of this set by id."""
        return await bound_client(self)._get_scenario(self, scenario_id)

    async def alist_scenarios(self) -> list[schemas.Scenario]:
        """All scenarios of this set."""
        return await bound_client(self)._list_scenarios(self)

    async def aadd_scenario(
        self,
        goal: str,
        expected_conversation_outcome: str,
        field_values: dict[str, Any] | None = None,
    ) -> schemas.Scenario:
        """Add one scenario."""
        return await bound_client(self)._add_scenario(
            self, goal, expected_conversation_outcome, field_values
        )

    async def aadd_scenarios(
        self,
        scenarios: Sequence[schemas.ScenarioIn | dict[str, Any]],
        skip_existing: bool = False,
    ) -> list[schemas.Scenario]:
        """Add scenarios in one request; ``skip_existing`` leaves out those already there.
        Returns the scenarios that were created."""
        return await bound_client(self)._add_scenarios(self, scenarios, skip_existing)

    async def aupdate_scenario(self, scenario: schemas.Scenario) -> schemas.Scenario:
        """Replace a scenario with ``scenario``'s goal, outcome and field values (fields it
        leaves out go back to their defaults)."""
        return await bound_client(self)._update_scenario(self, scenario)

    async def adelete_scenario(self, scenario: schemas.Scenario | int) -> None:
        """Delete a scenario."""
        await bound_client(self)._delete_scenario(self, scenario)


def results_summary(experiment: schemas.Experiment) -> str:
    """The experiment's name and its results summary, criteria named by their text."""
    results = experiment.results
    if results is None:
        return f"{experiment.name}: no results yet"
    names = {c.id: c.criterion_str for c in experiment.criterion_set.criteria or []}
    return f"{experiment.name}\n{results.summary(names)}"
