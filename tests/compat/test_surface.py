"""The public surface of this SDK against the official ``elluminate`` 1.5.2 package's.

Both surfaces are dumped by introspection (surface_dump.py, each under its own interpreter:
``ELLUMINATE_OFFICIAL_PYTHON`` for the official package) and compared by surface_compare.py:
module paths, importable names, classes and their methods (parameter names, kinds, defaults,
return types), model fields, enum members and exception bases. Core and Advanced differences
must be zero; every extra of ours is listed below with its reason.

See the figures: ``python tests/compat/surface_compare.py $ELLUMINATE_OFFICIAL_PYTHON``.
"""

from __future__ import annotations

import importlib.util
import os
import re
import sys
from pathlib import Path
from typing import Any

import pytest

OFFICIAL_PYTHON = os.environ.get("ELLUMINATE_OFFICIAL_PYTHON")

pytestmark = pytest.mark.skipif(
    not OFFICIAL_PYTHON,
    reason="set ELLUMINATE_OFFICIAL_PYTHON to a python with the official elluminate package "
    "(.ci/run and the compat tox env do) to compare the public surfaces",
)


def _load_compare_module() -> Any:
    name = "surface_compare"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name(f"{name}.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


surface = _load_compare_module()

# What this SDK has beyond the official surface: regex on "<path>: <what>" -> reason.
EXTRAS: dict[str, str] = {
    r"Error\.__init__: extra parameter 'response_info'$": (
        "an error can be built from an already parsed ResponseInfo (the transport does); "
        "response= still takes an HTTP response object as in the official package"
    ),
    r"Error\.body: property": "shortcut for response_info.body",
    r"^elluminate\.PartialUploadError\.__init__: parameter 'response' optional": (
        "the upload answer is optional when the error is raised by hand"
    ),
    r"^elluminate\.ResponseInfo\.(body|method|url) \(field\): optional here$": (
        "defaults for errors without an HTTP request (a name lookup that matched nothing)"
    ),
    r"^elluminate\.ResponseInfo\.redact_url: ": "the URL redaction on its own",
    r"^elluminate\.(schemas\.)?GenerationMetadata\.from_cache \(field\): field$": (
        "whether the local server answered this call from its LLM cache (absent elsewhere)"
    ),
    r"^elluminate\.(schemas\.)?ExperimentResults\.num_cached_(responses|ratings) \(field\): "
    r"field$": "how many responses and ratings the local server's LLM cache answered",
    r"^elluminate\.exceptions\.(BadRequestError|RequestTimeoutError|TaskFailedError"
    r"|TaskTimeoutError): name$": (
        "finer errors, each a subclass of what the official package raises there: "
        "APIError (400/422), TransportError and TimeoutError, RuntimeError, TimeoutError"
    ),
    r"^elluminate\.exceptions\.(AmbiguousTransportError|ConnectError|ConnectTimeoutError)"
    r": name$": (
        "transport errors named by what happened (refused or unknown host, connect timeout, "
        "a connection that broke after the request was sent), each a TransportError"
    ),
    r"^elluminate\.exceptions\.(api_error_for|error_class_for_status): name$": (
        "the status-to-exception mapping as functions (raise_api_error uses them)"
    ),
    r"^elluminate\.(Async)?Client\(\)\.(fallback_to_newest|project_id|retry_config"
    r"|skip_version_check): instance attribute$": "the constructor's settings stay readable",
    r"^elluminate\.(Async)?Client\.(delete_criterion|edit_criterion|list_criteria"
    r"|list_llm_configs): ": "operations the official package has only on private resources",
    r"^elluminate\.(Async)?Client\.cancel_experiment: ": "stop a running experiment (REVOKED)",
    r"^elluminate\.(Async)?Client\.(list_response_samples|get_response_stats"
    r"|get_experiment_map): ": (
        "the samples, stats and map views, private in the official package "
        "(client._responses.list_samples / get_stats, client._experiments.get_map)"
    ),
    r"^elluminate\.(Async)?Client\.(create|run)_experiment: extra parameter "
    r"'generation_params'$": (
        "per-experiment sampling overrides when creating (the official package takes them "
        "only in Experiment.run)"
    ),
    r"^elluminate\.(Async)?Client\.run_experiment: extra parameter 'show_progress'$": (
        "a progress bar for blocking runs"
    ),
    r"\.create_llm_config: parameter 'api_key' optional here": (
        "local models and OpenAI-compatible servers need no key"
    ),
    r"\.(get_or_create_prompt_template|create_prompt_template|a?new_version): "
    r"(extra parameter 'template'|parameter 'messages' optional here)": (
        "the seed's template=\"... {{x}} ...\" shorthand, accepted besides messages="
    ),
    r"^elluminate\.Client\.stream_(experiment|batch_rate|agent_evaluation): generator": (
        "the sync client streams too (a plain generator); the official one is async-only"
    ),
    r"^elluminate\.(Async)?Client\.update_scenario_set: ": (
        "rename a scenario set or change its description (PUT scenario-sets/{id}), private "
        "in the official package (client._scenario_sets.update)"
    ),
    r"^elluminate\.ScenarioSet\.a?add_scenario: ": (
        "add one scenario (POST scenario-sets/{id}/scenarios), private in the official "
        "package (client._scenario_sets.add_scenario)"
    ),
    r"^elluminate\.RetryConfig\.(jitter \(field\): field|should_retry_error: |"
    r"should_retry_status: |wait_seconds: )": (
        "random jitter on waits, and the policy's decisions as methods"
    ),
    r"^elluminate\.TaskStatus\.is_(failure|terminal): property": "terminal and failure flags",
    r"^elluminate\.(RatingMode|RatingValue): name$": (
        "at top level for the seed's and the official README's examples"
    ),
    r"^elluminate\.(aevaluate|alocal_client|local_client|reset_default_client): name$": (
        "evaluate() for asyncio code, zero-setup clients for a local server, and "
        "reset_default_client next to evaluate"
    ),
    r"^elluminate\.evaluate\.aevaluate: name$": "evaluate() for asyncio code",
    r"^elluminate\.(pytest_plugin: module|server: name)$": (
        "the pytest fixtures and the self-hostable server"
    ),
    r"^elluminate\.schemas\.(BatchRateRequest|CreateEntryRequest|UpdateCriterionRequest"
    r"|UpdateEntryRequest|TaskStatusPayload): name$": (
        "this SDK's names of structs the official package names otherwise (the official "
        "names are aliases of the same classes)"
    ),
    r"^elluminate\.schemas\.(CollectionType|EvaluationMode|ReasoningEffort|Verbosity"
    r"|TaskStatus): name$": (
        "str enums for values the official package types as Literal strings (each member "
        "equals its string)"
    ),
    r"^elluminate\.schemas\.(CreateLLMConfigRequest|CreateProjectRequest|RetryFailedRequest"
    r"|UpdateAnnotationRequest|VersionCheckRequest|VersionCheckResponse|ErrorBody|Page"
    r"|CustomApiInfo|BatchCreateStatus|Message|ToolChoice): name$": (
        "wire structs of the remaining bodies of CONTRACT.md 7, shared with the server "
        "(the official package keeps them in submodules or inline)"
    ),
    r"^elluminate\.schemas\.ExperimentGenerationStatus\.(generation_task_id|"
    r"has_internal_error|logs_delta) \(field\): field$": (
        "status keys newer servers send (CONTRACT.md 5.2)"
    ),
    r"^elluminate\.schemas\.(CreateExperimentRequest\.description|"
    r"Organization\.stripe_subscription_id|Project\.description) \(field\): optional here$": (
        "defaults as CONTRACT.md 7 documents them"
    ),
    r"^elluminate\.schemas\.Experiment\.to_(csv|jsonl|pandas|records): ": (
        "exports of an experiment's ratings"
    ),
    r"^elluminate\.schemas\.ExperimentResults\.summary: ": "the text print_summary prints",
    r"^elluminate\.schemas\.TemplateVariablesCollectionWithEntries\.a?(get|update|delete)"
    r"_entry: ": "single-entry operations, private in the official package",
    r"^elluminate\.streaming\.(parse_status|progress_from_payload): name$": (
        "turn status payloads into events"
    ),
    r"^elluminate\.schemas\.atif\.(MAX_MODEL_NAME_LENGTH|MAX_STEPS|MAX_SUBAGENT_TRAJECTORIES)"
    r": name$": "the other ATIF limits the models check, named like the official ones",
    r"\.model_(dump|dump_json|copy|validate|validate_json): (function|classmethod) ": (
        "the part of pydantic's model API the official objects inherit that user code "
        "commonly calls (the official members come from pydantic, so the dump skips them)"
    ),
}


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Any:
    workdir = str(tmp_path_factory.mktemp("surface"))
    assert OFFICIAL_PYTHON is not None
    official = surface.dump_with(OFFICIAL_PYTHON, workdir)
    ours = surface.dump_with(sys.executable, workdir)
    assert official["package"] == "1.5.2", official["package"]
    return surface.compare(official, ours)


def test_core_surface_matches_the_official_package(report: Any) -> None:
    gaps = report.gaps_of("core")
    assert gaps == [], "\n".join(f"{p}: {w}" for p, w in gaps)
    figures = report.figures()
    # the comparison really looked at the surface (a broken dump would compare nothing)
    for kind, at_least in [("modules", 20), ("names", 150), ("methods", 120), ("fields", 300)]:
        matched, _, total = figures[f"core {kind}"].partition(" of ")
        assert int(matched) == int(total) >= at_least, (kind, figures)


def test_advanced_surface_matches_the_official_package(report: Any) -> None:
    # every Advanced feature of the client is built: samples, stats and map views, agent
    # results with ATIF trajectories, scenario sets, the conversation envelope
    assert report.advanced_features_open() == {}
    gaps = report.gaps_of("advanced")
    assert gaps == [], "\n".join(f"{p}: {w}" for p, w in gaps)
    figures = report.figures()
    for kind, at_least in [("modules", 5), ("names", 130), ("methods", 46), ("fields", 200)]:
        matched, _, total = figures[f"advanced {kind}"].partition(" of ")
        assert int(matched) == int(total) >= at_least, (kind, figures)


def test_internal_differences_are_only_the_listed_helpers(report: Any) -> None:
    internal = report.gaps_of("internal")
    for pattern in surface.INTERNAL:
        assert any(re.search(pattern, path) for path, _ in internal), f"unused: {pattern}"


def test_every_extra_is_listed_with_a_reason(report: Any) -> None:
    assert report.unlisted_extras(EXTRAS) == []
    assert report.unused_extra_rules(EXTRAS) == []
