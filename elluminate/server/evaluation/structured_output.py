"""Structured answers: the JSON schemas a prompt asks for, tolerant parsers of what comes
back, and :func:`ask_structured`, which asks again until an answer parses.

Prompts are short on purpose (the embedded local model has 135M parameters); the parsers are
tolerant instead (the first JSON object in the text, ``"Yes"`` for ``"yes"``...). A malformed
answer is retried up to two more times, then :class:`GenerationError` carries the raw text;
no function ever returns a partial or guessed result. :class:`ProviderError` from the provider
(network, HTTP, ...) propagates unchanged: providers retry their own transport failures.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Sequence
from typing import Any

from .providers.base import ChatParams, Completion, GenerationError, LLMProvider

__all__ = [
    "MAX_ATTEMPTS",
    "ask_structured",
    "criteria_schema",
    "extract_json_object",
    "parse_criteria",
    "parse_test_case",
    "parse_verdict",
    "row_schema",
    "verdict_schema",
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


# --------------------------------------------------------------------------- asking


async def ask_structured(
    provider: LLMProvider,
    messages: list[dict[str, Any]],
    schema: dict[str, Any],
    params: ChatParams | None,
    parse: Callable[[str], Any],
    what: str,
) -> tuple[Any, list[Completion]]:
    """``(parse(answer), completions of every attempt)`` for the first answer that parses
    (``parse`` returns ``None`` for a malformed one); :class:`GenerationError` with the last
    raw answer after :data:`MAX_ATTEMPTS` malformed ones. ``what`` names it in messages."""
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
