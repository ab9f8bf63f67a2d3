"""Judging: rate one response against criteria with the judge of a rating version."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from elluminate._taskgroup import run_all
from elluminate._templates import render_str
from elluminate.schemas import GenerationMetadata

from ..store.responses import Outcome
from . import llm_judge
from .cache import LLMCache, call_key
from .checks import CheckVerdict, check_criterion
from .generation import Limiter, Unavailable
from .providers import GenerationError, LLMProvider, ProviderError, echo_verdict
from .registry import Providers

log = logging.getLogger(__name__)

DEFAULT_RATING_VERSION = "v1"
RATING_VERSIONS = frozenset({"v1", "mock"})


def resolve_rating_version(requested: str | None) -> str:
    """The judge version actually used: ``mock``, or the default for anything else."""
    if requested is not None and requested.strip() in RATING_VERSIONS:
        return requested.strip()
    return DEFAULT_RATING_VERSION


@dataclass
class Criterion:
    id: int
    text: str
    row_id: int | None  # a row-specific criterion applies only to that row


def applicable(criteria: Sequence[Criterion], row_id: int) -> list[Criterion]:
    return [c for c in criteria if c.row_id is None or c.row_id == row_id]


@dataclass
class Judge:
    """The rating provider (``None`` for the ``mock`` version: :func:`echo_verdict`).

    With ``checks`` the deterministic checks of :mod:`.checks` rate the criteria they claim
    and the provider rates the rest (the server's ``--judge-checks``, for the local model).
    """

    provider: LLMProvider | None
    detailed: bool = True
    checks: bool = False
    #: the server's LLM call cache (``--llm-cache``), else None
    cache: LLMCache | None = None


def judge_for(providers: Providers, rating_version: str | None, rating_mode: str) -> Judge:
    """The judge of a rating version (raises :class:`~.generation.Unavailable` when unavailable)."""
    detailed = rating_mode != "fast"
    if resolve_rating_version(rating_version) == "mock":
        return Judge(provider=None, detailed=detailed)
    try:
        return Judge(
            provider=providers.default(),
            detailed=detailed,
            checks=providers.judge_checks,
            cache=providers.cache,
        )
    except Exception as exc:
        raise Unavailable(
            f"the server's judge (default LLM provider) is not available: {exc}"
        ) from exc


def render_criterion(text: str, values: dict[str, Any]) -> str:
    """A criterion with the row's placeholders filled (unchanged if some are missing)."""
    try:
        return render_str(text, values)
    except ValueError:
        return text


async def judge_one(
    limiter: Limiter,
    judge: Judge,
    criterion: Criterion,
    values: dict[str, Any],
    prompt: list[dict[str, Any]],
    answer: str,
    epoch: int = 1,
) -> Outcome:
    """Rate one response against one criterion; failures become failed outcomes.

    With the LLM call cache, an identical earlier judge call (same judge, criterion, prompt,
    response, mode and ``epoch``) gives the verdict without calling the provider."""
    text = render_criterion(criterion.text, values)
    provider = judge.provider
    if provider is None:
        rating, reasoning = echo_verdict(text, answer)
        return Outcome(criterion.id, rating.upper(), reasoning if judge.detailed else None, None)
    if judge.checks:
        checked = await _checked(text, answer)
        if checked is not None:
            check, seconds = checked
            return Outcome(
                criterion.id,
                check.rating,
                check.reasoning if judge.detailed else None,
                GenerationMetadata(duration_seconds=seconds, input_tokens=0, output_tokens=0),
                None,
                json.dumps({"rating": check.rating.lower(), "check": check.check}),
            )
    cache, key = judge.cache, ""
    verdict: llm_judge.Verdict | None = None
    if cache is not None:
        kind, messages, schema = llm_judge.judge_request(
            provider, text, prompt, answer, detailed=judge.detailed
        )
        key = call_key(kind, provider, messages, json_schema=schema, epoch=epoch)
        verdict = _verdict(await cache.get(key))
    from_cache = verdict is not None
    if verdict is None:
        try:
            verdict = await limiter.llm(
                lambda: llm_judge.judge_verdict(
                    provider, text, prompt, answer, detailed=judge.detailed
                )
            )
        except GenerationError as exc:  # malformed after the retries: never cached
            return Outcome(criterion.id, error=str(exc), raw_text=exc.raw_text)
        except ProviderError as exc:
            return Outcome(criterion.id, error=str(exc) or type(exc).__name__)
        if cache is not None:
            await cache.put(key, "verdict", verdict.model, dataclasses.asdict(verdict))
    metadata = GenerationMetadata(
        duration_seconds=verdict.duration_seconds,
        input_tokens=verdict.input_tokens,
        output_tokens=verdict.output_tokens,
        from_cache=from_cache,
    )
    return Outcome(
        criterion.id,
        verdict.rating,
        verdict.reasoning,
        metadata,
        None,
        verdict.raw_text,
        from_cache=from_cache,
    )


async def _checked(criterion: str, answer: str) -> tuple[CheckVerdict, float] | None:
    """The deterministic check's verdict and its seconds, or ``None`` for the model to judge.

    Run in a thread (the language detector loads its models on first use); a check that
    fails unexpectedly is logged and the model judges instead.
    """
    start = time.perf_counter()
    try:
        verdict = await asyncio.to_thread(check_criterion, criterion, answer)
    except Exception:
        log.exception("a deterministic check failed on criterion %r; the model judges", criterion)
        return None
    return (verdict, time.perf_counter() - start) if verdict is not None else None


def _verdict(value: dict[str, Any] | None) -> llm_judge.Verdict | None:
    """A cached verdict, or None for a miss (or a value of another shape)."""
    if value is None or value.get("rating") not in ("YES", "NO"):
        return None
    try:
        return llm_judge.Verdict(**value)
    except TypeError:
        return None


async def judge_all(
    limiter: Limiter,
    judge: Judge,
    criteria: Sequence[Criterion],
    values: dict[str, Any],
    prompt: list[dict[str, Any]],
    answer: str,
    epoch: int = 1,
) -> list[Outcome]:
    """Rate against several criteria concurrently (each call takes the semaphore); an
    unexpected error cancels the other calls (structured: none outlives this call)."""
    if len(criteria) == 1:
        return [await judge_one(limiter, judge, criteria[0], values, prompt, answer, epoch)]
    return await run_all(
        judge_one(limiter, judge, c, values, prompt, answer, epoch) for c in criteria
    )
