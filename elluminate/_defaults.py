"""The ``defaults=`` dicts of the ``get_or_create_*`` methods (keys used only to create)."""

from __future__ import annotations

from typing import Any, Literal, TypedDict

from .schemas import CollectionColumn, CriterionIn


class CollectionDefaults(TypedDict, total=False):
    """Creation arguments of ``get_or_create_collection``."""

    description: str
    variables: list[dict[str, Any]]
    columns: list[str | CollectionColumn]
    read_only: bool
    collection_type: Literal["STANDARD", "AGENTIC", "PERSONA"]
    environment_config: dict[str, Any]


class CriterionSetDefaults(TypedDict, total=False):
    """Creation arguments of ``get_or_create_criterion_set``."""

    criteria: list[str | CriterionIn]


class LLMConfigDefaults(TypedDict, total=False):
    """Creation arguments of ``get_or_create_llm_config`` (``llm_model_name`` is needed)."""

    llm_model_name: str
    api_key: str
    description: str
    llm_base_url: str
    api_version: str
    temperature: float
    max_tokens: int
    max_connections: int
    max_retries: int
    timeout: int
    system_message: str
    top_p: float
    best_of: int
    top_k: int
    logprobs: bool
    top_logprobs: int
    reasoning_effort: str
    verbosity: str
    inference_type: str
    custom_api_config: dict[str, Any]
    custom_response_parser: str
