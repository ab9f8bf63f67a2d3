"""The deterministic echo provider, alone and through the generation and judge prompts."""

from __future__ import annotations

import asyncio
import time

import pytest

from elluminate.server.evaluation.llm_judge import judge, judge_verdict
from elluminate.server.evaluation.prompts import (
    generate_criteria,
    generate_response,
    generate_test_case,
)
from elluminate.server.evaluation.providers import (
    ChatParams,
    EchoProvider,
    GenerationError,
    ProviderConfig,
    ProviderError,
    echo_verdict,
    make_provider,
)

TEMPLATE = [
    {"role": "user", "content": "Explain {{concept}} to a {{ audience }}. Use {{concept}}."}
]
PROMPT = [{"role": "user", "content": "Explain gravity to a child."}]


@pytest.mark.asyncio
async def test_generation_echoes_last_user_message_deterministically() -> None:
    provider = EchoProvider()
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "first question"},
        {"role": "assistant", "content": "an answer"},
        {"role": "user", "content": "What is two plus two?"},
    ]
    first = await provider.chat(messages)
    second = await provider.chat(messages)
    assert first.text == second.text == "Echo: What is two plus two?"
    assert first.model == "echo"
    assert first.input_tokens == 2 + 2 + 2 + 5
    assert first.output_tokens == 6
    assert first.duration_seconds >= 0


@pytest.mark.asyncio
async def test_generation_with_content_parts_and_without_user_message() -> None:
    provider = EchoProvider(model="echo-test")
    parts = [
        {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}
    ]
    assert (await provider.chat(parts)).text == "Echo: a\nb"
    assert (await provider.chat([{"role": "system", "content": "only"}])).text == "Echo: only"
    assert (await provider.chat([])).text == "Echo: "
    assert (await provider.chat(parts)).model == "echo-test"


@pytest.mark.asyncio
async def test_echo_fail_marker_raises_provider_error() -> None:
    provider = EchoProvider()
    with pytest.raises(ProviderError) as info:
        await provider.chat([{"role": "user", "content": "row with ECHO_FAIL inside"}])
    assert "ECHO_FAIL" in str(info.value)
    assert "echo" in str(info.value)
    assert info.value.retryable is False
    assert not isinstance(info.value, GenerationError)
    with pytest.raises(ProviderError):
        await generate_response(provider, [{"role": "system", "content": "ECHO_FAIL"}])


@pytest.mark.asyncio
async def test_latency_is_an_async_sleep_per_call() -> None:
    provider = make_provider(ProviderConfig(kind="echo", echo_latency=0.2))
    start = time.perf_counter()
    await provider.chat(PROMPT)
    assert time.perf_counter() - start >= 0.2
    start = time.perf_counter()
    results = await asyncio.gather(*(provider.chat(PROMPT) for _ in range(10)))
    elapsed = time.perf_counter() - start
    assert 0.2 <= elapsed < 1.0  # concurrent, not serial
    assert {r.text for r in results} == {"Echo: Explain gravity to a child."}
    await provider.aclose()


@pytest.mark.asyncio
async def test_criteria_from_placeholders() -> None:
    provider = EchoProvider()
    criteria = await generate_criteria(provider, TEMPLATE)
    assert criteria == [
        "Does the response address the concept?",
        "Does the response address the audience?",
        "Is the response non-empty?",
    ]
    assert await generate_criteria(provider, TEMPLATE, n=1) == [
        "Does the response address the concept?"
    ]
    no_placeholders = [{"role": "user", "content": "Say hi."}]
    assert await generate_criteria(provider, no_placeholders) == ["Is the response non-empty?"]


@pytest.mark.asyncio
async def test_test_case_from_placeholders() -> None:
    provider = EchoProvider()
    row = await generate_test_case(provider, TEMPLATE, ["concept", "audience"])
    assert row == {"concept": "concept example 1", "audience": "audience example 1"}
    second = await generate_test_case(provider, TEMPLATE, ["concept", "audience"], existing=[row])
    assert second == {"concept": "concept example 2", "audience": "audience example 2"}
    assert await generate_test_case(provider, TEMPLATE, []) == {}


def test_echo_verdict_rule() -> None:
    assert echo_verdict("Is it good?", "A fine answer.")[0] == "yes"
    assert echo_verdict("Is it good?", "   ") == ("no", "The response is empty.")
    assert echo_verdict("Is it good?", "bad ECHO_NO answer")[0] == "no"
    assert echo_verdict("ECHO_NO: always fails", "A fine answer.")[0] == "no"
    rating, reasoning = echo_verdict("c", "r")
    assert rating == "yes" and reasoning


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("criterion", "response"),
    [
        ("Does the response address the concept?", "Echo: gravity pulls things down."),
        ("Does the response address the concept?", "this row says ECHO_NO"),
        ("Is it ECHO_NO?", "a perfectly good answer"),
        ("Is the response non-empty?", ""),
        ("Tricky <criterion> tags?", "multi\nline\n</prompt> response"),
    ],
)
async def test_judge_matches_echo_verdict(criterion: str, response: str) -> None:
    provider = EchoProvider()
    expected_rating, expected_reasoning = echo_verdict(criterion, response)
    rating, reasoning = await judge(provider, criterion, PROMPT, response)
    assert rating == expected_rating.upper()
    assert reasoning == expected_reasoning
    rating_short, no_reasoning = await judge(provider, criterion, PROMPT, response, detailed=False)
    assert rating_short == rating
    assert no_reasoning is None


@pytest.mark.asyncio
async def test_judge_verdict_carries_usage() -> None:
    provider = EchoProvider()
    verdict = await judge_verdict(provider, "Is it fine?", PROMPT, "Yes it is.")
    assert verdict.rating == "YES"
    assert verdict.model == "echo"
    assert verdict.input_tokens > 0 and verdict.output_tokens > 0
    assert '"rating": "yes"' in verdict.raw_text


@pytest.mark.asyncio
async def test_judge_fails_on_echo_fail_criterion() -> None:
    with pytest.raises(ProviderError):
        await judge(EchoProvider(), "ECHO_FAIL criterion", PROMPT, "answer")


@pytest.mark.asyncio
async def test_generate_response_prepends_system_message() -> None:
    provider = EchoProvider()
    completion = await generate_response(
        provider, PROMPT, ChatParams(temperature=0.1), system_message="You are terse."
    )
    assert completion.text == "Echo: Explain gravity to a child."
    assert completion.input_tokens == 3 + 5
    with_system = [{"role": "system", "content": "Own."}, *PROMPT]
    completion = await generate_response(provider, with_system, system_message="Ignored here.")
    assert completion.input_tokens == 1 + 5


@pytest.mark.asyncio
async def test_unknown_schema_gets_minimal_instance() -> None:
    schema = {
        "title": "Other",
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "count": {"type": "integer"},
            "ok": {"type": "boolean"},
            "kind": {"type": "string", "enum": ["a", "b"]},
            "tags": {"type": "array", "items": {"type": "string"}},
        },
        "required": ["name", "count", "ok", "kind", "tags"],
    }
    completion = await EchoProvider().chat(PROMPT, json_schema=schema)
    assert completion.text == '{"name": "echo", "count": 0, "ok": false, "kind": "a", "tags": []}'


def test_make_provider_and_config_repr() -> None:
    cfg = ProviderConfig(kind="openai", model="m", api_key="sk-secret-value")
    assert "sk-secret-value" not in repr(cfg)
    with pytest.raises(ValueError):
        make_provider(ProviderConfig(kind="openai"))
    with pytest.raises(ValueError):
        make_provider(ProviderConfig(kind="nope"))  # type: ignore[arg-type]
    echo = make_provider(ProviderConfig(kind="echo", model="dry-run"))
    assert echo.name == "echo" and echo.model == "dry-run"
    local = make_provider(ProviderConfig(kind="local"))
    assert local.name == "local" and local.model == "SmolLM2-135M-Instruct"
