"""Provider-agnostic prompts and parsers: criteria, test cases, judge verdicts, responses.

Prompts are short on purpose (the embedded local model has 135M parameters); the parsers are
tolerant instead (the first JSON object in the text, ``"Yes"`` for ``"yes"``...). A malformed
answer is retried up to two more times, then :class:`GenerationError` carries the raw text;
no function ever returns a partial or guessed result. :class:`ProviderError` from the provider
(network, HTTP, ...) propagates unchanged: providers retry their own transport failures.

The judge has two ways to reach a verdict, chosen by what the provider offers:

* **From token probabilities** (providers with ``yes_no_score``, i.e. the local model): the
  model reads the criterion, prompt and response and the verdict is whether it puts at least
  :func:`yes_threshold` of its yes-or-no probability on yes. Nothing is generated or parsed,
  so there is no malformed answer; the reasoning states the probability the verdict came from,
  so it can never contradict it. Measured on ``benchmarks/judge`` (see ``BENCHMARKS.md``).
* **From a generated JSON verdict** (every other provider): a schema-constrained
  ``{"reasoning", "rating"}`` answer, parsed and retried as above.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .providers.base import (
    ChatParams,
    Completion,
    GenerationError,
    LLMProvider,
    SupportsYesNoScore,
    YesNoScore,
    message_text,
    supports_yes_no_score,
)

__all__ = [
    "MAX_ATTEMPTS",
    "Verdict",
    "criteria_schema",
    "extract_json_object",
    "generate_criteria",
    "generate_response",
    "generate_test_case",
    "judge",
    "judge_messages",
    "judge_request",
    "judge_score",
    "judge_score_messages",
    "judge_verdict",
    "parse_criteria",
    "parse_test_case",
    "parse_verdict",
    "render_conversation",
    "row_schema",
    "verdict_schema",
    "with_system_message",
    "yes_threshold",
]

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3  # one try plus two retries on malformed output
_MAX_CRITERION_CHARS = 500
_SNIPPET = 300
_DECODER = json.JSONDecoder()


# --------------------------------------------------------------------------- schemas


def criteria_schema() -> dict[str, Any]:
    """``{"criteria": [str, ...]}``, titled ``CriteriaList``."""
    return {
        "title": "CriteriaList",
        "type": "object",
        "properties": {"criteria": {"type": "array", "items": {"type": "string"}}},
        "required": ["criteria"],
        "additionalProperties": False,
    }


def row_schema(placeholders: Sequence[str]) -> dict[str, Any]:
    """One row: every placeholder a required string property; titled ``TestCases``."""
    return {
        "title": "TestCases",
        "type": "object",
        "properties": {name: {"type": "string"} for name in placeholders},
        "required": list(placeholders),
        "additionalProperties": False,
    }


def verdict_schema(detailed: bool = True) -> dict[str, Any]:
    """``{"reasoning": str, "rating": "yes"|"no"}``, titled ``Verdict``.

    Without ``detailed`` only ``rating`` is asked for.
    """
    props: dict[str, Any] = {}
    if detailed:
        props["reasoning"] = {"type": "string"}
    props["rating"] = {"type": "string", "enum": ["yes", "no"]}
    return {
        "title": "Verdict",
        "type": "object",
        "properties": props,
        "required": list(props),
        "additionalProperties": False,
    }


# --------------------------------------------------------------------------- parsing


def _snippet(text: str) -> str:
    text = re.sub(r"\s+", " ", text).strip()
    return text if len(text) <= _SNIPPET else text[:_SNIPPET] + "..."


def extract_json_object(text: str) -> dict[str, Any] | None:
    """The whole text as a JSON object, else the first JSON object inside it, else ``None``."""
    stripped = text.strip()
    try:
        value = json.loads(stripped)
    except ValueError:
        pass
    else:
        return value if isinstance(value, dict) else None
    pos = stripped.find("{")
    while pos >= 0:
        try:
            value, _ = _DECODER.raw_decode(stripped, pos)
        except ValueError:
            pass
        else:
            if isinstance(value, dict):
                return value
        pos = stripped.find("{", pos + 1)
    return None


def parse_criteria(text: str, n: int) -> list[str] | None:
    """Up to ``n`` stripped, de-duplicated, non-empty criteria, or ``None`` if malformed."""
    data = extract_json_object(text)
    items: Any = data.get("criteria") if data is not None else None
    if items is None:
        try:
            items = json.loads(text.strip())  # a bare JSON list is acceptable too
        except ValueError:
            return None
    if not isinstance(items, list):
        return None
    out: list[str] = []
    seen: set[str] = set()
    for item in items:
        if not isinstance(item, str):
            return None
        criterion = " ".join(item.split())
        key = criterion.casefold()
        if not criterion or key in seen or len(criterion) > _MAX_CRITERION_CHARS:
            continue
        seen.add(key)
        out.append(criterion)
    return out[:n] or None


def parse_test_case(text: str, placeholders: Sequence[str]) -> dict[str, str] | None:
    """A row with exactly ``placeholders`` as keys and non-empty string values, or ``None``."""
    data = extract_json_object(text)
    if data is None:
        return None
    row: dict[str, str] = {}
    for name in placeholders:
        value = data.get(name)
        if isinstance(value, bool) or value is None:
            return None
        if isinstance(value, (int, float)):
            value = str(value)
        if not isinstance(value, str) or not value.strip():
            return None
        row[name] = value.strip()
    return row


_BARE_RATING = re.compile(r"^\W*(yes|no)\W*$", re.IGNORECASE)


def _rating(value: Any) -> str | None:
    if isinstance(value, bool):
        return "YES" if value else "NO"
    if isinstance(value, str):
        word = value.strip().strip(".!\"' ").casefold()
        if word in ("yes", "true"):
            return "YES"
        if word in ("no", "false"):
            return "NO"
    return None


def parse_verdict(text: str) -> tuple[str, str | None] | None:
    """``("YES"|"NO", reasoning)`` from a verdict answer, or ``None`` if malformed.

    Accepts any case and surrounding whitespace, a JSON object anywhere in the text, and a bare
    ``yes``/``no`` answer; anything else is malformed (never guessed).
    """
    data = extract_json_object(text)
    if data is None:
        bare = _BARE_RATING.match(text)
        return (bare.group(1).upper(), None) if bare else None
    lowered = {str(k).strip().casefold(): v for k, v in data.items()}
    rating = _rating(lowered.get("rating"))
    if rating is None:
        return None
    reasoning = lowered.get("reasoning")
    reasoning_str = reasoning.strip() if isinstance(reasoning, str) and reasoning.strip() else None
    return rating, reasoning_str


# --------------------------------------------------------------------------- prompts


def render_conversation(messages: Sequence[Mapping[str, Any]]) -> str:
    """Messages as plain text: a lone message is its text, several are ``role: text`` lines."""
    if len(messages) == 1:
        return message_text(dict(messages[0])).strip()
    return "\n".join(f"{m.get('role', 'user')}: {message_text(dict(m)).strip()}" for m in messages)


# Each prompt is a short instruction, one worked example as a user/assistant pair (small models
# copy the shape of an example far more reliably than they follow a description), then the
# real request as the last user message.

_CRITERIA_SYSTEM = (
    "You write yes/no questions that check answers to a prompt. Reply only with JSON."
)
_CRITERIA_USER = "Prompt: {prompt}\n\nWrite {n} different yes/no questions for this prompt."
_CRITERIA_EXAMPLE = (
    _CRITERIA_USER.format(prompt="Write a poem about the sea.", n=3),
    json.dumps(
        {
            "criteria": [
                "Is the answer a poem?",
                "Does the poem mention the sea?",
                "Does the poem rhyme?",
            ]
        }
    ),
)

_TEST_CASE_SYSTEM = "You write realistic test inputs for prompt templates. Reply only with JSON."
_TEST_CASE_USER = (
    "<template>\n{template}\n</template>\n\n"
    "Write test case #{index}: a value for each placeholder ({names}).{avoid}"
)
_TEST_CASE_EXAMPLE = (
    _TEST_CASE_USER.format(
        template="Write a {{style}} story about {{animal}}.",
        index=1,
        names="style, animal",
        avoid="",
    ),
    json.dumps({"style": "funny", "animal": "a penguin who learns to fly"}),
)

_JUDGE_SYSTEM = (
    "You are a strict evaluator. Decide if the response meets the criterion. Reply only with JSON: "
    '"reasoning" is one short sentence, "rating" is "yes" or "no".'
)
_JUDGE_USER = (
    "<criterion>{criterion}</criterion>\n\n"
    "<prompt>\n{prompt}\n</prompt>\n\n"
    "<response>\n{response}\n</response>"
)
_JUDGE_EXAMPLES = (
    (
        "Does the response mention a color?",
        "Describe your cat.",
        "My cat sleeps on the sofa all day.",
        "The response names no color.",
        "no",
    ),
    (
        "Is the response friendly?",
        "Say hello.",
        "Hello, nice to meet you!",
        "The response greets warmly.",
        "yes",
    ),
)


def _with_example(system: str, example: tuple[str, str], request: str) -> list[dict[str, Any]]:
    return [
        {"role": "system", "content": system},
        {"role": "user", "content": example[0]},
        {"role": "assistant", "content": example[1]},
        {"role": "user", "content": request},
    ]


async def _ask_structured(
    provider: LLMProvider,
    messages: list[dict[str, Any]],
    schema: dict[str, Any],
    params: ChatParams | None,
    parse: Callable[[str], Any],
    what: str,
) -> tuple[Any, list[Completion]]:
    completions: list[Completion] = []
    raw = ""
    for attempt in range(1, MAX_ATTEMPTS + 1):
        completion = await provider.chat(messages, json_schema=schema, params=params)
        completions.append(completion)
        raw = completion.text
        parsed = parse(raw)
        if parsed is not None:
            return parsed, completions
        log.warning(
            "%s model %r returned malformed %s (attempt %d/%d): %s",
            provider.name,
            provider.model,
            what,
            attempt,
            MAX_ATTEMPTS,
            _snippet(raw),
        )
    raise GenerationError(
        f"{provider.name} model {provider.model!r} returned no valid {what} after {MAX_ATTEMPTS} "
        f"attempts; last answer: {_snippet(raw) or '(empty)'}",
        raw_text=raw,
    )


async def generate_criteria(
    provider: LLMProvider,
    template_messages: list[dict[str, Any]],
    n: int = 5,
    *,
    params: ChatParams | None = None,
) -> list[str]:
    """Ask for ``n`` concise yes/no criteria for a prompt template (1 to ``n`` are returned)."""
    if n < 1:
        raise ValueError("n must be at least 1")
    request = _CRITERIA_USER.format(n=n, prompt=render_conversation(template_messages))
    messages = _with_example(_CRITERIA_SYSTEM, _CRITERIA_EXAMPLE, request)
    criteria, _ = await _ask_structured(
        provider,
        messages,
        criteria_schema(),
        params,
        lambda raw: parse_criteria(raw, n),
        "criteria",
    )
    return list(criteria)


async def generate_test_case(
    provider: LLMProvider,
    template_messages: list[dict[str, Any]],
    placeholders: list[str],
    *,
    existing: Sequence[Mapping[str, str]] = (),
    params: ChatParams | None = None,
) -> dict[str, str]:
    """One test-case row with exactly ``placeholders`` as keys (non-empty strings).

    ``existing`` rows (the last five are shown) ask for a different row; the row is numbered
    ``len(existing) + 1`` in the prompt.
    """
    names = list(dict.fromkeys(placeholders))
    if not names:
        return {}
    avoid = ""
    if existing:
        shown = "\n".join(json.dumps(dict(row), ensure_ascii=False) for row in list(existing)[-5:])
        avoid = f"\nMake it different from these:\n{shown}"
    request = _TEST_CASE_USER.format(
        template=render_conversation(template_messages),
        index=len(existing) + 1,
        names=", ".join(names),
        avoid=avoid,
    )
    messages = _with_example(_TEST_CASE_SYSTEM, _TEST_CASE_EXAMPLE, request)
    row, _ = await _ask_structured(
        provider,
        messages,
        row_schema(names),
        params,
        lambda raw: parse_test_case(raw, names),
        "test case",
    )
    return dict(row)


@dataclass
class Verdict:
    """A judge's decision plus the usage of every attempt it took."""

    rating: str
    reasoning: str | None
    raw_text: str
    input_tokens: int
    output_tokens: int
    duration_seconds: float
    model: str


def judge_messages(
    criterion_str: str,
    prompt_messages: list[dict[str, Any]],
    response_str: str,
    *,
    detailed: bool = True,
) -> list[dict[str, Any]]:
    """The judge's chat messages; the last user message holds criterion, prompt and response."""

    def answer(reasoning: str, rating: str) -> str:
        return json.dumps(
            {"reasoning": reasoning, "rating": rating} if detailed else {"rating": rating}
        )

    system = (
        _JUDGE_SYSTEM
        if detailed
        else 'You are a strict evaluator. Reply only with JSON: "rating" is "yes" or "no".'
    )
    messages: list[dict[str, Any]] = [{"role": "system", "content": system}]
    for criterion, prompt, response, reasoning, rating in _JUDGE_EXAMPLES:
        messages.append(
            {
                "role": "user",
                "content": _JUDGE_USER.format(
                    criterion=criterion, prompt=prompt, response=response
                ),
            }
        )
        messages.append({"role": "assistant", "content": answer(reasoning, rating)})
    request = _JUDGE_USER.format(
        criterion=criterion_str.strip(),
        prompt=render_conversation(prompt_messages),
        response=response_str,
    )
    messages.append({"role": "user", "content": request})
    return messages


# The probability judge's prompt: the criterion comes last, right before the answer, as a
# question about the response (small models answer the question nearest to the answer slot).
_SCORE_SYSTEM = (
    "You are a strict evaluator. You read a prompt, the response to it, and a yes/no question "
    "about the response. Answer the question about the response with one word: yes or no."
)
_SCORE_USER = (
    "<prompt>\n{prompt}\n</prompt>\n\n"
    "<response>\n{response}\n</response>\n\n"
    "Question about the response: {criterion}\n"
    "Answer yes or no."
)

#: Calibrated P(yes) thresholds per judge model (the model name a provider reports), fitted on
#: the development split of ``benchmarks/judge`` (``python benchmarks/judge.py --calibrate``).
#: Models not listed answer yes when P(yes) >= 0.5, i.e. when yes is more likely than no.
#: SmolLM2-135M puts P(yes) near 0.35 whatever the answer (0.5 would make it say yes to about
#: 12 % of items); its fitted threshold at least balances its yes-rate. See BENCHMARKS.md.
JUDGE_YES_THRESHOLDS: dict[str, float] = {"SmolLM2-135M-Instruct": 0.3571}


def yes_threshold(model: str) -> float:
    """The P(yes) from which the probability judge of ``model`` answers yes."""
    return JUDGE_YES_THRESHOLDS.get(model, 0.5)


def judge_score_messages(
    criterion_str: str, prompt_messages: list[dict[str, Any]], response_str: str
) -> list[dict[str, Any]]:
    """The probability judge's messages: its first answer token is scored as yes or no."""
    request = _SCORE_USER.format(
        criterion=criterion_str.strip(),
        prompt=render_conversation(prompt_messages),
        response=response_str,
    )
    return [{"role": "system", "content": _SCORE_SYSTEM}, {"role": "user", "content": request}]


async def judge_score(
    provider: SupportsYesNoScore,
    criterion_str: str,
    prompt_messages: list[dict[str, Any]],
    response_str: str,
) -> YesNoScore:
    """The probability judge's raw score (``p_yes``) for one criterion, before the threshold."""
    messages = judge_score_messages(criterion_str, prompt_messages, response_str)
    return await provider.yes_no_score(messages)


def _score_reasoning(rating: str, score: YesNoScore, threshold: float) -> str:
    """States the probability and the threshold with enough digits to tell them apart, so the
    sentence cannot read as the opposite of the verdict."""
    digits = 2
    while digits < 6 and score.p_yes != threshold:
        if f"{score.p_yes:.{digits}f}" != f"{threshold:.{digits}f}":
            break
        digits += 1
    relation = "at or above" if rating == "YES" else "below"
    return (
        f"Rated {rating.lower()} from the judge model's token probabilities: yes "
        f"{score.p_yes:.{digits}f} against no {1 - score.p_yes:.{digits}f}, {relation} the "
        f"threshold {threshold:.{digits}f} for yes."
    )


async def _verdict_from_score(
    provider: SupportsYesNoScore,
    criterion_str: str,
    prompt_messages: list[dict[str, Any]],
    response_str: str,
    detailed: bool,
) -> Verdict:
    score = await judge_score(provider, criterion_str, prompt_messages, response_str)
    threshold = yes_threshold(score.model)
    rating = "YES" if score.p_yes >= threshold else "NO"
    raw = json.dumps(
        {
            "rating": rating.lower(),
            "p_yes": round(score.p_yes, 4),
            "threshold": threshold,
            "yes_no_mass": round(score.mass, 4),
        }
    )
    return Verdict(
        rating=rating,
        reasoning=_score_reasoning(rating, score, threshold) if detailed else None,
        raw_text=raw,
        input_tokens=score.input_tokens,
        output_tokens=1,
        duration_seconds=score.duration_seconds,
        model=score.model,
    )


def judge_request(
    provider: LLMProvider,
    criterion_str: str,
    prompt_messages: list[dict[str, Any]],
    response_str: str,
    *,
    detailed: bool = True,
) -> tuple[str, list[dict[str, Any]], dict[str, Any] | None]:
    """What :func:`judge_verdict` asks ``provider``: ``(kind, messages, json_schema)``, kind
    ``score`` (token probabilities) or ``verdict`` (a generated JSON verdict). For cache keys."""
    if supports_yes_no_score(provider):
        # the score does not depend on ``detailed``; the reasoning sentence does
        kind = "score" if detailed else "score-fast"
        return kind, judge_score_messages(criterion_str, prompt_messages, response_str), None
    messages = judge_messages(criterion_str, prompt_messages, response_str, detailed=detailed)
    return "verdict", messages, verdict_schema(detailed)


async def judge_verdict(
    provider: LLMProvider,
    criterion_str: str,
    prompt_messages: list[dict[str, Any]],
    response_str: str,
    *,
    detailed: bool = True,
    params: ChatParams | None = None,
) -> Verdict:
    """Like :func:`judge`, with the raw answer and summed usage for generation metadata.

    A provider with ``yes_no_score`` (the local model) is judged from its token probabilities,
    any other from a generated JSON verdict (see the module docstring).
    """
    if supports_yes_no_score(provider):
        return await _verdict_from_score(
            provider, criterion_str, prompt_messages, response_str, detailed
        )
    messages = judge_messages(criterion_str, prompt_messages, response_str, detailed=detailed)
    (rating, reasoning), completions = await _ask_structured(
        provider, messages, verdict_schema(detailed), params, parse_verdict, "verdict"
    )
    last = completions[-1]
    return Verdict(
        rating=rating,
        reasoning=reasoning if detailed else None,
        raw_text=last.text,
        input_tokens=sum(c.input_tokens for c in completions),
        output_tokens=sum(c.output_tokens for c in completions),
        duration_seconds=sum(c.duration_seconds for c in completions),
        model=last.model,
    )


async def judge(
    provider: LLMProvider,
    criterion_str: str,
    prompt_messages: list[dict[str, Any]],
    response_str: str,
    *,
    detailed: bool = True,
    params: ChatParams | None = None,
) -> tuple[str, str | None]:
    """``("YES"|"NO", reasoning)`` for one criterion; reasoning is ``None`` unless ``detailed``."""
    verdict = await judge_verdict(
        provider, criterion_str, prompt_messages, response_str, detailed=detailed, params=params
    )
    return verdict.rating, verdict.reasoning


async def generate_response(
    provider: LLMProvider,
    messages: list[dict[str, Any]],
    params: ChatParams | None = None,
    *,
    system_message: str | None = None,
) -> Completion:
    """The model's answer to rendered prompt messages.

    ``system_message`` (an LLM config's) is prepended unless the prompt already starts with a
    system or developer message.
    """
    return await provider.chat(with_system_message(messages, system_message), params=params)


def with_system_message(
    messages: list[dict[str, Any]], system_message: str | None
) -> list[dict[str, Any]]:
    """``messages`` with ``system_message`` first, unless they start with a system or
    developer message already (or there is none to add)."""
    if system_message and not (messages and messages[0].get("role") in ("system", "developer")):
        return [{"role": "system", "content": system_message}, *messages]
    return messages
