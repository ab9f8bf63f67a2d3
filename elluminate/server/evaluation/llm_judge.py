"""The LLM judge: whether a response meets one criterion, with its prompts and usage.

The judge has two ways to reach a verdict, chosen by what the provider offers:

* **From token probabilities** (providers with ``yes_no_score``, i.e. the local model): the
  model reads the criterion, prompt and response and the verdict is whether it puts at least
  :func:`yes_threshold` of its yes-or-no probability on yes. Nothing is generated or parsed,
  so there is no malformed answer; the reasoning states the probability the verdict came from,
  so it can never contradict it. Measured on ``benchmarks/judge`` (see ``BENCHMARKS.md``).
* **From a generated JSON verdict** (every other provider): a schema-constrained
  ``{"reasoning", "rating"}`` answer, parsed tolerantly and retried when malformed, then a
  :class:`GenerationError` with the raw text (:mod:`.structured_output`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from .prompts import render_conversation
from .providers.base import (
    ChatParams,
    LLMProvider,
    SupportsYesNoScore,
    YesNoScore,
    supports_yes_no_score,
)
from .structured_output import ask_structured, parse_verdict, verdict_schema

__all__ = [
    "JUDGE_YES_THRESHOLDS",
    "Verdict",
    "judge",
    "judge_messages",
    "judge_request",
    "judge_score",
    "judge_score_messages",
    "judge_verdict",
    "yes_threshold",
]

# The verdict prompt: a short instruction, then two worked examples as user/assistant pairs
# (small models copy the shape of an example), then the real request as the last user message.
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
    (rating, reasoning), completions = await ask_structured(
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
