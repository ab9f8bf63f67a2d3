"""Parsers, the retry-then-fail rule, the generation prompts and the judge (no model needed)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from elluminate.server.evaluation import llm_judge
from elluminate.server.evaluation.llm_judge import (
    judge,
    judge_score_messages,
    judge_verdict,
    yes_threshold,
)
from elluminate.server.evaluation.prompts import generate_criteria, generate_test_case
from elluminate.server.evaluation.providers import (
    ChatParams,
    Completion,
    GenerationError,
    ProviderError,
)
from elluminate.server.evaluation.providers.base import YesNoScore
from elluminate.server.evaluation.structured_output import (
    MAX_ATTEMPTS,
    criteria_schema,
    extract_json_object,
    parse_criteria,
    parse_test_case,
    parse_verdict,
    row_schema,
    verdict_schema,
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


# ---- the probability judge (providers with yes_no_score) ---------------------------------------


class Scoring(Scripted):
    """A provider that scores yes/no with fixed probabilities; generating is an error."""

    def __init__(self, *p_yes: float, model: str = "score-1") -> None:
        super().__init__()
        self.model = model
        self.p_yes = list(p_yes)
        self.scored: list[list[dict[str, Any]]] = []

    async def chat(self, *args: Any, **kwargs: Any) -> Completion:
        raise AssertionError("the probability judge must not generate")

    async def yes_no_score(
        self, messages: list[dict[str, Any]], *, params: ChatParams | None = None
    ) -> YesNoScore:
        self.scored.append(messages)
        return YesNoScore(
            p_yes=self.p_yes.pop(0), mass=0.9, input_tokens=42, duration_seconds=0.01,
            model=self.model,
        )


PROMPT = [{"role": "user", "content": "Say hi to Ana."}]


@pytest.mark.parametrize(
    ("p_yes", "rating"), [(0.9, "YES"), (0.5, "YES"), (0.49, "NO"), (0.0, "NO")]
)
async def test_verdict_comes_from_the_probability(p_yes: float, rating: str) -> None:
    provider = Scoring(p_yes)
    verdict = await judge_verdict(provider, "Does it greet Ana?", PROMPT, "Hi Ana!")
    assert verdict.rating == rating
    assert json.loads(verdict.raw_text) == {
        "rating": rating.lower(), "p_yes": p_yes, "threshold": 0.5, "yes_no_mass": 0.9
    }
    assert (verdict.input_tokens, verdict.output_tokens, verdict.model) == (42, 1, "score-1")
    assert provider.requests == []  # nothing was generated


@pytest.mark.parametrize("p_yes", [0.0, 0.2, 0.49, 0.5, 0.51, 0.8, 1.0])
async def test_reasoning_never_contradicts_the_verdict(p_yes: float) -> None:
    verdict = await judge_verdict(Scoring(p_yes), "Is it polite?", PROMPT, "Hi Ana!")
    assert verdict.reasoning is not None
    other = "no" if verdict.rating == "YES" else "yes"
    assert verdict.reasoning.startswith(f"Rated {verdict.rating.lower()} ")
    assert f"Rated {other}" not in verdict.reasoning
    assert f"yes {p_yes:.2f}" in verdict.reasoning
    relation = "at or above" if verdict.rating == "YES" else "below"
    assert f"{relation} the threshold 0.50 for yes." in verdict.reasoning
    fast = await judge_verdict(Scoring(p_yes), "Is it polite?", PROMPT, "Hi", detailed=False)
    assert fast.rating == verdict.rating and fast.reasoning is None


async def test_calibrated_threshold_applies_per_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(llm_judge.JUDGE_YES_THRESHOLDS, "tiny", 0.7)
    assert yes_threshold("tiny") == 0.7 and yes_threshold("other") == 0.5
    assert (await judge(Scoring(0.65, model="tiny"), "c?", PROMPT, "r"))[0] == "NO"
    assert (await judge(Scoring(0.71, model="tiny"), "c?", PROMPT, "r"))[0] == "YES"
    assert (await judge(Scoring(0.65, model="other"), "c?", PROMPT, "r"))[0] == "YES"


async def test_score_prompt_carries_criterion_prompt_and_response() -> None:
    provider = Scoring(0.3)
    await judge_verdict(provider, "  Does it mention Ana?  ", PROMPT, "Hello there.")
    (messages,) = provider.scored
    assert [m["role"] for m in messages] == ["system", "user"]
    text = messages[-1]["content"]
    assert "Say hi to Ana." in text and "Hello there." in text
    assert text.index("Hello there.") < text.index("Does it mention Ana?")  # criterion last
    assert messages == judge_score_messages("Does it mention Ana?", PROMPT, "Hello there.")


async def test_providers_without_scoring_keep_the_json_verdict() -> None:
    provider = Scripted('{"reasoning": "It greets.", "rating": "yes"}')
    verdict = await judge_verdict(provider, "Greets?", PROMPT, "Hi")
    assert (verdict.rating, verdict.reasoning) == ("YES", "It greets.")
    assert provider.requests[0]["schema"] == verdict_schema()


@pytest.mark.parametrize(
    ("p_yes", "shown"), [(0.3569, "0.3569"), (0.3574, "0.3574"), (0.2, "0.20")]
)
async def test_reasoning_tells_a_close_probability_from_the_threshold(
    p_yes: float, shown: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(llm_judge.JUDGE_YES_THRESHOLDS, "tiny", 0.3571)
    verdict = await judge_verdict(Scoring(p_yes, model="tiny"), "c?", PROMPT, "r")
    assert verdict.reasoning is not None
    assert f"yes {shown} against" in verdict.reasoning
    if verdict.rating == "NO":
        assert f"below the threshold {0.3571:.{len(shown) - 2}f}" in verdict.reasoning
    else:
        assert f"at or above the threshold {0.3571:.{len(shown) - 2}f}" in verdict.reasoning
