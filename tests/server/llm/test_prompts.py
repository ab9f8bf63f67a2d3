"""Parsers and the retry-then-fail rule of the prompts module (no model needed)."""

from __future__ import annotations

from typing import Any

import pytest

from elluminate.server.evaluation.prompts import (
    MAX_ATTEMPTS,
    criteria_schema,
    extract_json_object,
    generate_criteria,
    generate_test_case,
    judge,
    parse_criteria,
    parse_test_case,
    parse_verdict,
    row_schema,
    verdict_schema,
)
from elluminate.server.evaluation.providers import (
    ChatParams,
    Completion,
    GenerationError,
    ProviderError,
)


class Scripted:
    """A provider answering from a list of texts; records every request."""

    name = "scripted"
    model = "script-1"

    def __init__(self, *answers: str) -> None:
        self.answers = list(answers)
        self.requests: list[dict[str, Any]] = []

    async def chat(
        self,
        messages: list[dict[str, Any]],
        *,
        json_schema: dict[str, Any] | None = None,
        params: ChatParams | None = None,
    ) -> Completion:
        self.requests.append({"messages": messages, "schema": json_schema, "params": params})
        text = self.answers.pop(0)
        return Completion(text, 10, 5, 0.01, self.model)

    async def aclose(self) -> None:
        pass


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"rating": "yes", "reasoning": "ok"}', ("YES", "ok")),
        ('{"rating": "Yes"}', ("YES", None)),
        ('  {"Rating": " NO. ", "Reasoning": "  bad  "}  ', ("NO", "bad")),
        ('Sure! {"reasoning": "fine", "rating": "no"} done', ("NO", "fine")),
        ('```json\n{"reasoning": "r", "rating": "YES"}\n```', ("YES", "r")),
        ('{"rating": true}', ("YES", None)),
        ("Yes.", ("YES", None)),
        ("  no  ", ("NO", None)),
        ('{"rating": "maybe"}', None),
        ('{"reasoning": "no rating"}', None),
        ("I think the answer is yes because...", None),
        ("", None),
        ('{"rating": "yes"', None),
    ],
)
def test_parse_verdict(text: str, expected: tuple[str, str | None] | None) -> None:
    assert parse_verdict(text) == expected


def test_extract_json_object() -> None:
    assert extract_json_object('{"a": 1}') == {"a": 1}
    assert extract_json_object('noise {bad} then {"a": {"b": 2}} and {"c": 3}') == {"a": {"b": 2}}
    assert extract_json_object("[1, 2]") is None
    assert extract_json_object("nothing") is None


def test_parse_criteria() -> None:
    text = '{"criteria": ["  Is it  short? ", "", "is it short?", "Is it kind?", "Is it true?"]}'
    assert parse_criteria(text, 5) == ["Is it short?", "Is it kind?", "Is it true?"]
    assert parse_criteria(text, 2) == ["Is it short?", "Is it kind?"]
    assert parse_criteria('["Is it a list?"]', 5) == ["Is it a list?"]
    assert parse_criteria('{"criteria": []}', 5) is None
    assert parse_criteria('{"criteria": ["", "  "]}', 5) is None
    assert parse_criteria('{"criteria": ["ok?", 3]}', 5) is None
    assert parse_criteria('{"criteria": "Is it?"}', 5) is None
    assert parse_criteria("garbage", 5) is None


def test_parse_test_case() -> None:
    names = ["topic", "n"]
    assert parse_test_case('{"topic": " cats ", "n": 3, "extra": "x"}', names) == {
        "topic": "cats",
        "n": "3",
    }
    assert parse_test_case('{"topic": "cats"}', names) is None
    assert parse_test_case('{"topic": "cats", "n": ""}', names) is None
    assert parse_test_case('{"topic": "cats", "n": null}', names) is None
    assert parse_test_case('{"topic": "cats", "n": ["x"]}', names) is None
    assert parse_test_case("no json", names) is None


def test_schemas_are_strict_mode_compatible() -> None:
    for schema in (criteria_schema(), row_schema(["a", "b"]), verdict_schema()):
        assert schema["additionalProperties"] is False
        assert set(schema["required"]) == set(schema["properties"])
    assert criteria_schema()["title"] == "CriteriaList"
    assert row_schema(["a"])["title"] == "TestCases"
    verdict = verdict_schema()
    assert verdict["title"] == "Verdict"
    assert verdict["properties"]["rating"]["enum"] == ["yes", "no"]
    assert list(verdict_schema(detailed=False)["properties"]) == ["rating"]


@pytest.mark.asyncio
async def test_malformed_then_valid_is_retried() -> None:
    provider = Scripted("not json", '{"reasoning": "ok", "rating": "no"}')
    assert await judge(provider, "c", [{"role": "user", "content": "p"}], "r") == ("NO", "ok")
    assert len(provider.requests) == 2
    assert provider.requests[0]["schema"]["title"] == "Verdict"


@pytest.mark.asyncio
async def test_always_malformed_raises_generation_error_with_raw_text() -> None:
    provider = Scripted(*["{'rating': maybe}"] * MAX_ATTEMPTS)
    with pytest.raises(GenerationError) as info:
        await judge(provider, "c", [{"role": "user", "content": "p"}], "r")
    assert info.value.raw_text == "{'rating': maybe}"
    assert "script-1" in str(info.value) and "verdict" in str(info.value)
    assert isinstance(info.value, ProviderError)
    assert len(provider.requests) == MAX_ATTEMPTS


@pytest.mark.asyncio
async def test_criteria_and_test_case_never_partial() -> None:
    template = [{"role": "user", "content": "Write about {{topic}}."}]
    criteria = Scripted(*['{"criteria": []}'] * MAX_ATTEMPTS)
    with pytest.raises(GenerationError):
        await generate_criteria(criteria, template, n=3)
    rows = Scripted(*['{"other": "x"}'] * MAX_ATTEMPTS)
    with pytest.raises(GenerationError) as info:
        await generate_test_case(rows, template, ["topic"])
    assert info.value.raw_text == '{"other": "x"}'
    good = Scripted('{"topic": "volcanoes"}')
    assert await generate_test_case(good, template, ["topic"]) == {"topic": "volcanoes"}
    schema = good.requests[0]["schema"]
    assert schema["title"] == "TestCases" and schema["required"] == ["topic"]
    assert "{{topic}}" in good.requests[0]["messages"][-1]["content"]


@pytest.mark.asyncio
async def test_params_are_passed_through() -> None:
    provider = Scripted('{"criteria": ["Is it ok?"]}')
    params = ChatParams(temperature=0.0, max_tokens=64)
    template = [{"role": "user", "content": "x"}]
    assert await generate_criteria(provider, template, params=params) == ["Is it ok?"]
    assert provider.requests[0]["params"] is params
    with pytest.raises(ValueError):
        await generate_criteria(provider, template, n=0)
