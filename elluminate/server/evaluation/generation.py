"""Generating responses: the provider of an LLM config, the rendered prompt, one call."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from elluminate._templates import render_messages
from elluminate.schemas import GenerationMetadata, LLMConfig

from ..store.columns import InvalidCell, conversation_envelope
from ..store.serializers import llm_config_from_row
from . import prompts as llm_prompts
from .cache import LLMCache, call_key
from .providers import (
    ChatParams,
    Completion,
    LLMProvider,
    ProviderConfig,
    ProviderError,
    message_text,
)
from .registry import Providers

T = TypeVar("T")


class Limiter(Protocol):
    """Anything that runs an LLM call under the LLM call limit (engine or task context)."""

    async def llm(self, call: Callable[[], Awaitable[T]]) -> T: ...


class Unavailable(Exception):
    """The provider cannot be used (unsupported config, provider that cannot be built)."""


@dataclass
class Generator:
    """A generation provider with the per-call settings of one LLM config."""

    provider: LLMProvider
    params: ChatParams | None = None
    system_message: str | None = None
    llm_config: LLMConfig | None = None
    llm_config_id: int | None = None
    #: the server's LLM call cache (``--llm-cache``), else None
    cache: LLMCache | None = None


def generator_for(
    providers: Providers, llm_row: Any, generation_params: dict[str, Any] | None = None
) -> Generator:
    """The provider for an LLM config row (``None``: the server default).

    Raises :class:`Unavailable` when the config cannot be used (unsupported inference type,
    provider that cannot be built).
    """
    gp = generation_params or {}
    if llm_row is None:
        try:
            provider = providers.default()
        except Exception as exc:  # ImportError, ValueError, RuntimeError from a provider
            raise Unavailable(f"the server's default LLM provider is not available: {exc}") from exc
        params = ChatParams(
            temperature=gp.get("temperature"),
            top_p=gp.get("top_p"),
            max_tokens=gp.get("max_tokens"),
        )
        return Generator(provider=provider, params=params, cache=providers.cache)
    name = llm_row["name"]
    if llm_row["inference_type"] != "openai":
        raise Unavailable(
            f"LLM config {name!r} uses inference_type {llm_row['inference_type']!r}, which this "
            "server does not support; use an OpenAI-compatible endpoint (inference_type 'openai')"
        )
    config = ProviderConfig(
        kind="openai",
        base_url=llm_row["llm_base_url"],
        model=llm_row["llm_model_name"],
        api_key=llm_row["api_key"],
        max_connections=max(1, int(llm_row["max_connections"] or 10)),
        timeout=None if llm_row["timeout"] is None else float(llm_row["timeout"]),
        max_retries=llm_row["max_retries"],
    )
    try:
        provider = providers.get(config)
    except Exception as exc:
        raise Unavailable(f"cannot use LLM config {name!r}: {exc}") from exc

    def pick(key: str) -> Any:
        value = gp.get(key)
        return llm_row[key] if value is None else value

    params = ChatParams(
        temperature=pick("temperature"),
        top_p=pick("top_p"),
        max_tokens=pick("max_tokens"),
        timeout=config.timeout,
        max_retries=config.max_retries,
    )
    return Generator(
        provider=provider,
        params=params,
        system_message=llm_row["system_message"],
        llm_config=llm_config_from_row(llm_row),
        llm_config_id=llm_row["id"],
        cache=providers.cache,
    )


def prompt_messages(
    template_messages: list[dict[str, Any]] | None,
    values: dict[str, Any],
    input_columns: Sequence[tuple[str, str]] = (),
) -> list[dict[str, Any]]:
    """The rendered prompt of one row (ValueError naming missing placeholders).

    Without a template, a ``conversation`` column's envelope supplies the prompt (its
    ``input.messages``), else a ``raw_input`` column (a string becomes one user message, a
    list is taken as messages).
    """
    if template_messages is not None:
        return render_messages(template_messages, values)
    envelope = _envelope(values, input_columns)
    if envelope is not None:
        return [dict(m) for m in envelope.input.messages]
    for name, column_type in input_columns:
        value = values.get(name)
        if column_type == "raw_input" and isinstance(value, str):
            return [{"role": "user", "content": value}]
        if isinstance(value, list) and all(isinstance(m, dict) for m in value):
            return list(value)
        if isinstance(value, dict) and isinstance(value.get("messages"), list):
            return list(value["messages"])
    raise ValueError("the row has no raw_input or conversation value to use as the prompt")


def _envelope(values: dict[str, Any], input_columns: Sequence[tuple[str, str]]) -> Any:
    for name, column_type in input_columns:
        if column_type == "conversation":
            try:
                envelope = conversation_envelope(values.get(name), name)
            except InvalidCell:  # stored before envelopes were checked: not a prompt
                continue
            if envelope is not None:
                return envelope
    return None


def prompt_settings(
    template_messages: list[dict[str, Any]] | None,
    values: dict[str, Any],
    input_columns: Sequence[tuple[str, str]] = (),
) -> dict[str, Any] | None:
    """Without a template, the ``tools``, ``tool_choice`` and ``response_format`` (OpenAI
    form) of the row's conversation envelope, recorded on the prompt it resolves to (None:
    no envelope, or the template's own apply)."""
    if template_messages is not None:
        return None
    envelope = _envelope(values, input_columns)
    if envelope is None:
        return None
    body = envelope.input
    response_format: dict[str, Any] | None = None
    if body.response_format is not None:
        if body.response_format.response_schema is not None:
            response_format = {
                "type": "json_schema",
                "json_schema": {"name": "response", "schema": body.response_format.response_schema},
            }
        elif body.response_format.hint is not None:
            response_format = {"type": body.response_format.hint}
    return {
        "tools": body.tools,
        "tool_choice": body.tool_choice,
        "response_format": response_format,
    }


def response_text(messages: Sequence[dict[str, Any]]) -> str:
    """The text the judge rates: the last assistant message (else the last message)."""
    for message in reversed(messages):
        if message.get("role") == "assistant":
            return message_text(message)
    return message_text(messages[-1]) if messages else ""


async def generate(
    limiter: Limiter, gen: Generator, messages: list[dict[str, Any]], *, epoch: int = 1
) -> tuple[list[dict[str, Any]], GenerationMetadata | None, str | None]:
    """Generate one response: ``(messages, metadata, error)``; never raises a provider error.

    With the LLM call cache, an identical earlier call (same provider, parameters, messages
    and ``epoch``) answers without calling the provider; ``metadata.from_cache`` says which.
    """
    sent = llm_prompts.with_system_message(messages, gen.system_message)
    cache, key = gen.cache, ""
    completion: Completion | None = None
    if cache is not None:
        key = call_key("generation", gen.provider, sent, params=gen.params, epoch=epoch)
        completion = _completion(await cache.get(key))
    from_cache = completion is not None
    if completion is None:
        try:
            completion = await limiter.llm(lambda: gen.provider.chat(sent, params=gen.params))
        except ProviderError as exc:
            return [], None, str(exc) or type(exc).__name__
        if cache is not None and completion.text:  # an empty answer is not worth keeping
            await cache.put(key, "generation", completion.model, _completion_value(completion))
    metadata = GenerationMetadata(
        llm_model_config=gen.llm_config,
        duration_seconds=completion.duration_seconds,
        input_tokens=completion.input_tokens,
        output_tokens=completion.output_tokens,
        from_cache=from_cache,
    )
    return [{"role": "assistant", "content": completion.text}], metadata, None


def _completion_value(completion: Completion) -> dict[str, Any]:
    return {
        "text": completion.text,
        "input_tokens": completion.input_tokens,
        "output_tokens": completion.output_tokens,
        "duration_seconds": completion.duration_seconds,
        "model": completion.model,
    }


def _completion(value: dict[str, Any] | None) -> Completion | None:
    """A cached completion, or None for a miss (or a value of another shape)."""
    if value is None:
        return None
    try:
        return Completion(
            text=str(value["text"]),
            input_tokens=int(value["input_tokens"]),
            output_tokens=int(value["output_tokens"]),
            duration_seconds=float(value["duration_seconds"]),
            model=str(value["model"]),
        )
    except (KeyError, TypeError, ValueError):
        return None
