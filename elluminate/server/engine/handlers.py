"""The work behind the tasks: generate responses, rate them, store both.

Task kinds (handlers for :class:`~elluminate.server.engine.engine.TaskEngine`):

* ``experiment``: for each input row x epoch that has no response yet, render the template
  with the row, call the generation provider (the experiment's LLM config, else the server
  default), store prompt + response (or the provider's error), then rate the response against
  every applicable criterion of the experiment's criterion set. Responses without error that
  lack a rating for some criterion are (re-)rated too, so the same handler serves ``run`` and
  ``retry-failed`` (which first deletes the failed responses). Rows run concurrently through
  a pool of workers; every LLM call goes through the engine's shared semaphore.
* ``responses``: a response batch: store given messages, or generate when they are empty.
* ``ratings``: a rating batch: rate given responses against their experiment's criteria,
  replacing earlier ratings of those responses.

Judge-failure policy: a judge call that fails (provider error, or no valid verdict after the
judge's retries) is stored as a *failed rating* row (``rating`` NULL, ``error``, ``raw_text``)
and logged in the task log. Failed ratings are never shown as YES/NO: they are left out of
``ratings`` lists and results, and their response does not count as rated;
``retry-failed`` rates such responses again.

Outcomes: a task ends SUCCESS when every planned row was attempted (failed generations are
recorded on their responses and counted in ``num_failed_responses``). It ends FAILURE when
nothing could be done: every generation failed (the message quotes the first provider error),
or every rating failed; after :data:`ABORT_AFTER` failures in a row without any success the
task stops early (a dead provider), leaving the rest for ``retry-failed``.
"""

from __future__ import annotations

import logging
import sqlite3
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from elluminate._taskgroup import run_all
from elluminate._templates import render_messages, render_str
from elluminate.schemas import GenerationMetadata, LLMConfig

from ..evaluation import prompts as llm_prompts
from ..evaluation.providers import (
    ChatParams,
    Completion,
    GenerationError,
    ProviderConfig,
    ProviderError,
    echo_verdict,
    message_text,
)
from ..store.database import Database, dumps, loads, now
from ..store.serializers import llm_config_from_row
from .engine import TaskContext, TaskFailed, TaskRejected

log = logging.getLogger("elluminate.server.engine.handlers")

T = TypeVar("T")

DEFAULT_RATING_VERSION = "v1"
RATING_VERSIONS = frozenset({"v1", "mock"})
#: Consecutive failed generations (with no success at all) after which a task gives up.
ABORT_AFTER = 20


class Limiter(Protocol):
    """Anything that runs an LLM call under the shared semaphore (engine or task context)."""

    async def llm(self, call: Callable[[], Awaitable[T]]) -> T: ...


def resolve_rating_version(requested: str | None) -> str:
    """The judge version actually used: ``mock``, or the default for anything else."""
    if requested is not None and requested.strip() in RATING_VERSIONS:
        return requested.strip()
    return DEFAULT_RATING_VERSION


# ---- providers ---------------------------------------------------------------------------


@dataclass
class Generator:
    """A generation provider with the per-call settings of one LLM config."""

    provider: Any
    params: ChatParams | None = None
    system_message: str | None = None
    llm_config: LLMConfig | None = None
    llm_config_id: int | None = None


def generator_for(
    providers: Any, llm_row: sqlite3.Row | None, generation_params: dict[str, Any] | None = None
) -> Generator:
    """The provider for an LLM config row (``None``: the server default).

    Raises :class:`TaskRejected` when the config cannot be used (unsupported inference type,
    provider that cannot be built).
    """
    gp = generation_params or {}
    if llm_row is None:
        try:
            provider = providers.default()
        except Exception as exc:  # ImportError, ValueError, RuntimeError from a provider
            raise TaskRejected(
                f"the server's default LLM provider is not available: {exc}"
            ) from exc
        params = ChatParams(
            temperature=gp.get("temperature"),
            top_p=gp.get("top_p"),
            max_tokens=gp.get("max_tokens"),
        )
        return Generator(provider=provider, params=params)
    name = llm_row["name"]
    if llm_row["inference_type"] != "openai":
        raise TaskRejected(
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
        raise TaskRejected(f"cannot use LLM config {name!r}: {exc}") from exc

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
    )


@dataclass
class Judge:
    """The rating provider (``None`` for the ``mock`` version: :func:`echo_verdict`)."""

    provider: Any
    detailed: bool = True


def judge_for(providers: Any, rating_version: str | None, rating_mode: str) -> Judge:
    """The judge of a rating version (raises :class:`TaskRejected` when unavailable)."""
    detailed = rating_mode != "fast"
    if resolve_rating_version(rating_version) == "mock":
        return Judge(provider=None, detailed=detailed)
    try:
        return Judge(provider=providers.default(), detailed=detailed)
    except Exception as exc:
        raise TaskRejected(
            f"the server's judge (default LLM provider) is not available: {exc}"
        ) from exc


# ---- prompts -----------------------------------------------------------------------------


@dataclass
class Criterion:
    id: int
    text: str
    row_id: int | None  # a row-specific criterion applies only to that row


def criteria_of_set(db: Database, set_id: int) -> list[Criterion]:
    """The live criteria of a criterion set, in set order."""
    rows = db.fetchall(
        "SELECT c.id, c.criterion_str, c.template_variables_id FROM criteria c "
        "JOIN criterion_set_criteria l ON l.criterion_id = c.id "
        "WHERE l.criterion_set_id = ? AND c.deleted_at IS NULL ORDER BY l.position, c.id",
        (set_id,),
    )
    return [Criterion(r[0], r[1], r[2]) for r in rows]


def applicable(criteria: Sequence[Criterion], row_id: int) -> list[Criterion]:
    return [c for c in criteria if c.row_id is None or c.row_id == row_id]


def render_criterion(text: str, values: dict[str, Any]) -> str:
    """A criterion with the row's placeholders filled (unchanged if some are missing)."""
    try:
        return render_str(text, values)
    except ValueError:
        return text


def prompt_messages(
    template_messages: list[dict[str, Any]] | None,
    values: dict[str, Any],
    input_columns: Sequence[tuple[str, str]] = (),
) -> list[dict[str, Any]]:
    """The rendered prompt of one row (ValueError naming missing placeholders).

    Without a template, a ``raw_input`` column supplies the prompt (a string becomes one user
    message, a list is taken as messages), or a ``conversation`` column's messages.
    """
    if template_messages is not None:
        return render_messages(template_messages, values)
    for name, column_type in input_columns:
        value = values.get(name)
        if column_type == "raw_input" and isinstance(value, str):
            return [{"role": "user", "content": value}]
        if isinstance(value, list) and all(isinstance(m, dict) for m in value):
            return list(value)
        if isinstance(value, dict) and isinstance(value.get("messages"), list):
            return list(value["messages"])
    raise ValueError("the row has no raw_input or conversation value to use as the prompt")


def response_text(messages: Sequence[dict[str, Any]]) -> str:
    """The text the judge rates: the last assistant message (else the last message)."""
    for message in reversed(messages):
        if message.get("role") == "assistant":
            return message_text(message)
    return message_text(messages[-1]) if messages else ""


# ---- storing -------------------------------------------------------------------------------


@dataclass
class Outcome:
    """One judge decision (``rating`` None = failed rating with ``error``)."""

    criterion_id: int
    rating: str | None = None
    reasoning: str | None = None
    metadata: GenerationMetadata | None = None
    error: str | None = None
    raw_text: str | None = None


class DuplicateResponse(LookupError):
    """The experiment already holds a response for this (row, epoch)."""


def insert_prompt(
    db: Database,
    project_id: int,
    experiment_id: int | None,
    template: sqlite3.Row | None,
    row_id: int,
    messages: list[dict[str, Any]],
) -> int:
    """Store a rendered prompt (inside the caller's transaction)."""
    return db.insert(
        "INSERT INTO prompts (project_id, experiment_id, prompt_template_id, "
        "template_variables_id, "
        "messages, resolved_tools, resolved_tool_choice, resolved_response_format, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            project_id,
            experiment_id,
            None if template is None else template["id"],
            row_id,
            dumps(messages),
            None if template is None else template["tools"],
            None if template is None else template["tool_choice"],
            None if template is None else template["response_format_json_schema"],
            now(),
        ),
    )


def insert_response(
    db: Database,
    project_id: int,
    experiment_id: int,
    prompt_id: int,
    *,
    row_id: int,
    epoch: int,
    messages: list[dict[str, Any]],
    metadata: GenerationMetadata | dict[str, Any] | None,
    error: str | None,
    llm_config_id: int | None,
) -> int:
    """Store a response (inside the caller's transaction); token columns feed the results.

    Raises :class:`DuplicateResponse` when the experiment already holds a response for this
    (row, epoch): the unique key allows one.
    """
    meta: dict[str, Any] = {}
    if isinstance(metadata, GenerationMetadata):
        meta = {
            "input_tokens": metadata.input_tokens,
            "output_tokens": metadata.output_tokens,
            "duration_seconds": metadata.duration_seconds,
        }
    elif isinstance(metadata, dict):
        meta = metadata
    ts = now()
    if db.fetchval(
        "SELECT 1 FROM responses WHERE experiment_id = ? AND template_variables_id = ? "
        "AND epoch = ?",
        (experiment_id, row_id, epoch),
    ):
        raise DuplicateResponse(
            f"experiment {experiment_id} already has a response for collection entry {row_id} "
            f"epoch {epoch}; delete that response first to store another"
        )
    return db.insert(
        "INSERT INTO responses (project_id, experiment_id, prompt_id, template_variables_id, "
        "llm_config_id, epoch, messages, generation_metadata, error, input_tokens, "
        "output_tokens, duration_seconds, created_at, updated_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            project_id,
            experiment_id,
            prompt_id,
            row_id,
            llm_config_id,
            epoch,
            dumps(messages),
            dumps(metadata),
            error,
            meta.get("input_tokens"),
            meta.get("output_tokens"),
            meta.get("duration_seconds"),
            ts,
            ts,
        ),
    )


def store_ratings(
    db: Database, project_id: int, response_id: int, outcomes: Sequence[Outcome]
) -> list[int]:
    """Replace the response's ratings of the outcomes' criteria (inside a transaction)."""
    ids = sorted({o.criterion_id for o in outcomes})
    if ids:
        marks = ",".join("?" * len(ids))
        db.execute(
            f"DELETE FROM ratings WHERE response_id = ? AND criterion_id IN ({marks})",
            (response_id, *ids),
        )
    ts = now()
    return [
        db.insert(
            "INSERT INTO ratings (project_id, response_id, criterion_id, rating, reasoning, "
            "generation_metadata, error, raw_text, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                project_id,
                response_id,
                o.criterion_id,
                o.rating,
                o.reasoning,
                dumps(o.metadata),
                o.error,
                o.raw_text,
                ts,
            ),
        )
        for o in outcomes
    ]


def row_is_live(db: Database, row_id: int) -> bool:
    """Whether a collection entry still exists and is not deleted (hidden)."""
    return bool(
        db.fetchval(
            "SELECT 1 FROM template_variables WHERE id = ? AND deleted_at IS NULL", (row_id,)
        )
    )


def response_exists(db: Database, response_id: int) -> bool:
    """Whether a response still exists (it may be deleted while it is rated)."""
    return bool(db.fetchval("SELECT 1 FROM responses WHERE id = ?", (response_id,)))


# ---- LLM work ------------------------------------------------------------------------------


async def generate(
    limiter: Limiter, gen: Generator, messages: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], GenerationMetadata | None, str | None]:
    """Generate one response: ``(messages, metadata, error)``; never raises a provider error."""
    try:
        completion: Completion = await limiter.llm(
            lambda: llm_prompts.generate_response(
                gen.provider, messages, gen.params, system_message=gen.system_message
            )
        )
    except ProviderError as exc:
        return [], None, str(exc) or type(exc).__name__
    metadata = GenerationMetadata(
        llm_model_config=gen.llm_config,
        duration_seconds=completion.duration_seconds,
        input_tokens=completion.input_tokens,
        output_tokens=completion.output_tokens,
    )
    return [{"role": "assistant", "content": completion.text}], metadata, None


async def judge_one(
    limiter: Limiter,
    judge: Judge,
    criterion: Criterion,
    values: dict[str, Any],
    prompt: list[dict[str, Any]],
    answer: str,
) -> Outcome:
    """Rate one response against one criterion; failures become failed outcomes."""
    text = render_criterion(criterion.text, values)
    if judge.provider is None:
        rating, reasoning = echo_verdict(text, answer)
        return Outcome(criterion.id, rating.upper(), reasoning if judge.detailed else None, None)
    try:
        verdict = await limiter.llm(
            lambda: llm_prompts.judge_verdict(
                judge.provider, text, prompt, answer, detailed=judge.detailed
            )
        )
    except GenerationError as exc:
        return Outcome(criterion.id, error=str(exc), raw_text=exc.raw_text)
    except ProviderError as exc:
        return Outcome(criterion.id, error=str(exc) or type(exc).__name__)
    metadata = GenerationMetadata(
        duration_seconds=verdict.duration_seconds,
        input_tokens=verdict.input_tokens,
        output_tokens=verdict.output_tokens,
    )
    return Outcome(
        criterion.id, verdict.rating, verdict.reasoning, metadata, None, verdict.raw_text
    )


async def judge_all(
    limiter: Limiter,
    judge: Judge,
    criteria: Sequence[Criterion],
    values: dict[str, Any],
    prompt: list[dict[str, Any]],
    answer: str,
) -> list[Outcome]:
    """Rate against several criteria concurrently (each call takes the semaphore); an
    unexpected error cancels the other calls (structured: none outlives this call)."""
    if len(criteria) == 1:
        return [await judge_one(limiter, judge, criteria[0], values, prompt, answer)]
    return await run_all(judge_one(limiter, judge, c, values, prompt, answer) for c in criteria)


# ---- experiment setup and plan ---------------------------------------------------------------


@dataclass
class Setup:
    """Everything an experiment run needs, loaded synchronously from the database."""

    experiment: sqlite3.Row
    template: sqlite3.Row | None
    template_messages: list[dict[str, Any]] | None
    rows: list[tuple[int, dict[str, Any]]]
    columns: list[tuple[str, str]]
    criteria: list[Criterion]
    llm_row: sqlite3.Row | None
    response_column: str | None
    n_epochs: int

    @property
    def id(self) -> int:
        return int(self.experiment["id"])


def load_setup(db: Database, project_id: int, experiment_id: int) -> Setup:
    """Load an experiment's template, rows, criteria and LLM config (TaskRejected if gone)."""
    exp = db.fetchone(
        "SELECT * FROM experiments WHERE id = ? AND project_id = ?", (experiment_id, project_id)
    )
    if exp is None:
        raise TaskRejected(f"experiment {experiment_id} no longer exists")
    template = None
    if exp["prompt_template_id"] is not None:
        template = db.fetchone(
            "SELECT * FROM prompt_templates WHERE id = ?", (exp["prompt_template_id"],)
        )
    rows = [
        (r[0], loads(r[1]))
        for r in db.fetchall(
            "SELECT id, input_values FROM template_variables WHERE collection_id = ? "
            "AND deleted_at IS NULL ORDER BY id",
            (exp["collection_id"],),
        )
    ]
    columns = [
        (r[0], r[1])
        for r in db.fetchall(
            "SELECT name, column_type FROM collection_columns WHERE collection_id = ? "
            "ORDER BY column_position, id",
            (exp["collection_id"],),
        )
    ]
    response_column = None
    if exp["response_column_id"] is not None:
        response_column = db.fetchval(
            "SELECT name FROM collection_columns WHERE id = ?", (exp["response_column_id"],)
        )
    llm_row = None
    if exp["llm_config_id"] is not None:
        llm_row = db.fetchone("SELECT * FROM llm_configs WHERE id = ?", (exp["llm_config_id"],))
    return Setup(
        experiment=exp,
        template=template,
        template_messages=None if template is None else loads(template["messages"]),
        rows=rows,
        columns=columns,
        criteria=criteria_of_set(db, exp["criterion_set_id"]),
        llm_row=llm_row,
        response_column=response_column,
        n_epochs=1 if response_column is not None else max(1, int(exp["n_epochs"] or 1)),
    )


@dataclass
class Plan:
    """The work left in an experiment: rows x epochs to generate, responses to (re)rate."""

    generate: list[tuple[int, int]] = field(default_factory=list)  # (row id, epoch)
    rate: list[tuple[int, list[Criterion]]] = field(default_factory=list)

    @property
    def total(self) -> int:
        return len(self.generate) + len(self.rate)


def plan_work(db: Database, setup: Setup) -> Plan:
    """What is missing: (row, epoch) pairs without a response, and responses without error
    that lack a successful rating for some applicable criterion."""
    have: set[tuple[int, int]] = set()
    ok: list[tuple[int, int]] = []  # (response id, row id)
    for r in db.fetchall(
        "SELECT r.id, r.epoch, r.error, p.template_variables_id FROM responses r "
        "JOIN prompts p ON p.id = r.prompt_id WHERE r.experiment_id = ?",
        (setup.id,),
    ):
        have.add((r[3], r[1]))
        if r[2] is None:
            ok.append((r[0], r[3]))
    plan = Plan()
    for row_id, _ in setup.rows:
        for epoch in range(1, setup.n_epochs + 1):
            if (row_id, epoch) not in have:
                plan.generate.append((row_id, epoch))
    if setup.criteria and ok:
        rated: dict[int, set[int]] = {}
        for r in db.fetchall(
            "SELECT g.response_id, g.criterion_id FROM ratings g JOIN responses r "
            "ON r.id = g.response_id WHERE r.experiment_id = ? AND g.rating IS NOT NULL",
            (setup.id,),
        ):
            rated.setdefault(r[0], set()).add(r[1])
        for response_id, row_id in ok:
            done = rated.get(response_id, set())
            missing = [c for c in applicable(setup.criteria, row_id) if c.id not in done]
            if missing:
                plan.rate.append((response_id, missing))
    return plan


# ---- the experiment task ---------------------------------------------------------------------


@dataclass
class Stats:
    """Counts of one task (for its outcome and its log)."""

    generated: int = 0
    failed: int = 0
    streak: int = 0
    first_error: str | None = None
    ratings_ok: int = 0
    ratings_failed: int = 0
    first_rating_error: str | None = None

    def generation(self, error: str | None) -> None:
        if error is None:
            self.generated += 1
            self.streak = 0
        else:
            self.failed += 1
            self.streak += 1
            self.first_error = self.first_error or error

    def ratings(self, outcomes: Iterable[Outcome]) -> None:
        for o in outcomes:
            if o.rating is None:
                self.ratings_failed += 1
                self.first_rating_error = self.first_rating_error or o.error
            else:
                self.ratings_ok += 1

    @property
    def dead(self) -> bool:
        """Many failures in a row and not one success: the provider is not working."""
        return self.generated == 0 and self.streak >= ABORT_AFTER


async def _workers(
    count: int,
    items: deque[Any],
    work: Callable[[Any], Awaitable[None]],
    stop: Callable[[], bool] = lambda: False,
) -> None:
    """Run ``work`` over ``items`` with ``count`` workers until done or ``stop()``.

    Structured: the first unexpected error cancels the other workers and is raised only once
    they have all stopped, so no worker outlives the task that started it.
    """

    async def worker() -> None:
        while items and not stop():
            await work(items.popleft())

    await run_all(worker() for _ in range(max(1, min(count, len(items)))))


def _log_ratings(ctx: TaskContext, response_id: int, outcomes: Sequence[Outcome]) -> None:
    for o in outcomes:
        if o.rating is None:
            ctx.log(
                f"response {response_id}: rating for criterion {o.criterion_id} failed: {o.error}"
            )


async def experiment_task(ctx: TaskContext) -> None:
    """Generate and rate what an experiment is missing (see the module docstring)."""
    db, project_id = ctx.db, ctx.state.project_id
    assert ctx.state.experiment_id is not None
    payload = ctx.payload or {}
    setup = load_setup(db, project_id, ctx.state.experiment_id)
    exp = setup.experiment
    gen = None
    if setup.response_column is None:
        gen = generator_for(ctx.providers, setup.llm_row, loads(exp["generation_params"]))
    judge = judge_for(
        ctx.providers, exp["rating_version"], payload.get("rating_mode") or exp["rating_mode"]
    )
    plan = plan_work(db, setup)
    ctx.set_total(plan.total)
    values_of = dict(setup.rows)
    verb = "Retrying" if payload.get("retry") else "Generating"
    ctx.log(
        f"{verb}: {len(plan.generate)} responses to generate "
        f"({len(setup.rows)} rows x {setup.n_epochs} epochs), {len(plan.rate)} to rate again; "
        f"{len(setup.criteria)} criteria"
    )
    stats = Stats()

    async def rate(
        response_id: int,
        row_id: int,
        criteria: list[Criterion],
        prompt: list[dict[str, Any]],
        answer: str,
    ) -> None:
        outcomes = await judge_all(ctx, judge, criteria, values_of.get(row_id, {}), prompt, answer)
        with db.transaction():
            gone = not response_exists(db, response_id)
            if not gone:
                store_ratings(db, project_id, response_id, outcomes)
            ctx.progress(ratings=1)
        if gone:
            ctx.log(f"response {response_id} was deleted during the run: its ratings are dropped")
            return
        stats.ratings(outcomes)
        _log_ratings(ctx, response_id, outcomes)

    async def generate_item(item: tuple[int, int]) -> None:
        row_id, epoch = item
        values = values_of[row_id]
        error: str | None = None
        metadata: GenerationMetadata | None = None
        messages: list[dict[str, Any]] = []
        try:
            prompt = prompt_messages(setup.template_messages, values, setup.columns)
        except ValueError as exc:
            prompt, error = [], f"cannot render the prompt for row {row_id}: {exc}"
        if error is None:
            if setup.response_column is not None:
                text = values.get(setup.response_column)
                messages = [{"role": "assistant", "content": "" if text is None else str(text)}]
            else:
                assert gen is not None
                messages, metadata, error = await generate(ctx, gen, prompt)
        skipped: str | None = None
        try:
            with db.transaction():
                if not row_is_live(db, row_id):
                    raise LookupError("the row was deleted during the run")
                prompt_id = insert_prompt(db, project_id, setup.id, setup.template, row_id, prompt)
                response_id = insert_response(
                    db,
                    project_id,
                    setup.id,
                    prompt_id,
                    row_id=row_id,
                    epoch=epoch,
                    messages=messages,
                    metadata=metadata,
                    error=error,
                    llm_config_id=None if gen is None else gen.llm_config_id,
                )
                ctx.progress(responses=1, ratings=1 if error else 0)
        except LookupError as exc:  # this item only (DuplicateResponse included): go on
            skipped = str(exc)
        if skipped is not None:
            with db.transaction():
                ctx.progress(responses=1, ratings=1)
            ctx.log(f"row {row_id} epoch {epoch}: skipped: {skipped}")
            return
        stats.generation(error)
        if error is not None:
            ctx.log(f"row {row_id} epoch {epoch}: generation failed: {error}")
            return
        criteria = applicable(setup.criteria, row_id)
        if criteria:
            await rate(response_id, row_id, criteria, prompt, response_text(messages))
        else:
            ctx.progress(ratings=1)

    async def rate_item(item: tuple[int, list[Criterion]]) -> None:
        response_id, criteria = item
        row = db.fetchone(
            "SELECT r.messages, p.messages AS prompt, p.template_variables_id AS row_id "
            "FROM responses r JOIN prompts p ON p.id = r.prompt_id WHERE r.id = ?",
            (response_id,),
        )
        if row is None:  # deleted meanwhile
            ctx.progress(ratings=1)
            return
        await rate(
            response_id,
            row["row_id"],
            criteria,
            loads(row["prompt"]),
            response_text(loads(row["messages"])),
        )

    async def work(item: Any) -> None:
        if isinstance(item[1], list):
            await rate_item(item)
        else:
            await generate_item(item)

    if plan.rate:
        ctx.progress(responses=len(plan.rate))
    items: deque[Any] = deque([*plan.rate, *plan.generate])
    await _workers(ctx.concurrency, items, work, stop=lambda: stats.dead)
    summary = (
        f"{stats.generated} responses generated, {stats.failed} failed; "
        f"{stats.ratings_ok} ratings, {stats.ratings_failed} failed ratings"
    )
    ctx.log(summary)
    if stats.dead:
        raise TaskFailed(
            f"stopped after {stats.failed} failed generations in a row without any success "
            f"({len(items)} rows left for retry-failed); first error: {stats.first_error}"
        )
    if stats.failed and not stats.generated:
        raise TaskFailed(
            f"every generation failed ({stats.failed}); first error: {stats.first_error}"
        )
    if stats.ratings_failed and not stats.ratings_ok:
        raise TaskFailed(
            f"every rating failed ({stats.ratings_failed}); first error: {stats.first_rating_error}"
        )


# ---- response batches ----------------------------------------------------------------------


def experiment_context(db: Database, experiment_id: int) -> tuple[sqlite3.Row, sqlite3.Row | None]:
    """An experiment row and its template row (for batch items)."""
    exp = db.fetchone("SELECT * FROM experiments WHERE id = ?", (experiment_id,))
    if exp is None:
        raise LookupError(f"experiment {experiment_id} no longer exists")
    template = None
    if exp["prompt_template_id"] is not None:
        template = db.fetchone(
            "SELECT * FROM prompt_templates WHERE id = ?", (exp["prompt_template_id"],)
        )
    return exp, template


def row_prompt(
    db: Database, template: sqlite3.Row | None, row_id: int, *, strict: bool
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """``(input values, rendered prompt)`` of a row; with ``strict`` a render error raises
    ValueError, else the unrendered template messages are used."""
    tv = db.fetchone(
        "SELECT input_values, collection_id FROM template_variables WHERE id = ?", (row_id,)
    )
    if tv is None:
        raise ValueError(f"collection entry {row_id} no longer exists")
    values = loads(tv["input_values"])
    columns = [
        (r[0], r[1])
        for r in db.fetchall(
            "SELECT name, column_type FROM collection_columns WHERE collection_id = ? "
            "ORDER BY column_position, id",
            (tv["collection_id"],),
        )
    ]
    messages = None if template is None else loads(template["messages"])
    try:
        return values, prompt_messages(messages, values, columns)
    except ValueError:
        if strict:
            raise
        return values, list(messages or [])


def store_given_response(db: Database, project_id: int, item: dict[str, Any]) -> int:
    """Store an externally produced response (inside the caller's transaction)."""
    exp, template = experiment_context(db, item["experiment_id"])
    _, prompt = row_prompt(db, template, item["template_variables_id"], strict=False)
    prompt_id = insert_prompt(
        db, project_id, exp["id"], template, item["template_variables_id"], prompt
    )
    return insert_response(
        db,
        project_id,
        exp["id"],
        prompt_id,
        row_id=item["template_variables_id"],
        epoch=item.get("epoch") or 1,
        messages=item["messages"],
        metadata=item.get("metadata"),
        error=None,
        llm_config_id=item.get("llm_config_id"),
    )


async def generate_and_store(
    limiter: Limiter, db: Database, providers: Any, project_id: int, item: dict[str, Any]
) -> tuple[int, str | None]:
    """Generate one response for a batch item / the generate endpoint; ``(id, error)``.

    Raises :class:`TaskRejected` when the item's LLM config cannot be used.
    """
    exp, template = experiment_context(db, item["experiment_id"])
    llm_row = None
    if item.get("llm_config_id") is not None:
        llm_row = db.fetchone("SELECT * FROM llm_configs WHERE id = ?", (item["llm_config_id"],))
    gen = generator_for(providers, llm_row, loads(exp["generation_params"]))
    error: str | None
    messages: list[dict[str, Any]] = []
    metadata: GenerationMetadata | None = None
    try:
        _, prompt = row_prompt(db, template, item["template_variables_id"], strict=True)
    except ValueError as exc:
        prompt, error = [], f"cannot render the prompt: {exc}"
    else:
        messages, metadata, error = await generate(limiter, gen, prompt)
    with db.transaction():
        if not row_is_live(db, item["template_variables_id"]):
            raise LookupError(
                f"collection entry {item['template_variables_id']} was deleted while its "
                "response was generated"
            )
        prompt_id = insert_prompt(
            db, project_id, exp["id"], template, item["template_variables_id"], prompt
        )
        response_id = insert_response(
            db,
            project_id,
            exp["id"],
            prompt_id,
            row_id=item["template_variables_id"],
            epoch=item.get("epoch") or 1,
            messages=messages,
            metadata=metadata,
            error=error,
            llm_config_id=gen.llm_config_id,
        )
    return response_id, error


async def response_batch_task(ctx: TaskContext) -> None:
    """Store or generate each item of a response batch (payload ``{"items": [...]}``)."""
    db, project_id = ctx.db, ctx.state.project_id
    items: list[dict[str, Any]] = list((ctx.payload or {}).get("items") or [])
    ctx.set_total(len(items))
    to_generate = [(i, it) for i, it in enumerate(items) if not it.get("messages")]
    for config_id in {it.get("llm_config_id") for _, it in to_generate}:  # reject early
        llm_row = None
        if config_id is not None:
            llm_row = db.fetchone("SELECT * FROM llm_configs WHERE id = ?", (config_id,))
        generator_for(ctx.providers, llm_row)
    ctx.log(f"{len(items) - len(to_generate)} responses to store, {len(to_generate)} to generate")
    created: list[int | None] = [None] * len(items)
    with db.transaction():
        for index, item in enumerate(items):
            if item.get("messages"):
                try:
                    created[index] = store_given_response(db, project_id, item)
                except (LookupError, ValueError) as exc:
                    ctx.log(f"item {index}: not stored: {exc}")
        ctx.progress(responses=len(items) - len(to_generate))
    stats = Stats()

    async def work(entry: tuple[int, dict[str, Any]]) -> None:
        index, item = entry
        try:
            response_id, error = await generate_and_store(ctx, db, ctx.providers, project_id, item)
        except LookupError as exc:
            response_id, error = None, str(exc)
        created[index] = response_id
        stats.generation(error)
        if error is not None:
            ctx.log(f"item {index}: generation failed: {error}")
        ctx.progress(responses=1)

    await _workers(ctx.concurrency, deque(to_generate), work, stop=lambda: stats.dead)
    ctx.set_result({"response_ids": created})
    if to_generate and (stats.dead or not stats.generated):
        raise TaskFailed(
            f"every generation failed ({stats.failed}); first error: {stats.first_error}"
        )


# ---- rating batches -------------------------------------------------------------------------


@dataclass
class RatingTarget:
    """A response to rate, with its prompt, answer and applicable criteria."""

    response_id: int
    error: str | None
    prompt: list[dict[str, Any]]
    answer: str
    values: dict[str, Any]
    criteria: list[Criterion]
    rating_version: str | None = None


def rating_targets(db: Database, response_ids: Sequence[int]) -> list[RatingTarget]:
    """Load the responses to rate, in the given order (missing ids are skipped)."""
    rows: dict[int, sqlite3.Row] = {}
    unique = list(dict.fromkeys(response_ids))
    for start in range(0, len(unique), 500):
        chunk = unique[start : start + 500]
        for row in db.fetchall(
            "SELECT r.id, r.error, r.messages, p.messages AS prompt, tv.id AS row_id, "
            "tv.input_values, e.criterion_set_id, e.rating_version FROM responses r "
            "JOIN prompts p ON p.id = r.prompt_id "
            "JOIN template_variables tv ON tv.id = p.template_variables_id "
            f"JOIN experiments e ON e.id = r.experiment_id WHERE r.id IN "
            f"({','.join('?' * len(chunk))})",
            chunk,
        ):
            rows[row["id"]] = row
    targets: list[RatingTarget] = []
    set_cache: dict[int, list[Criterion]] = {}
    for response_id in response_ids:
        found = rows.get(response_id)
        if found is None:
            continue
        row = found
        set_id = row["criterion_set_id"]
        if set_id not in set_cache:
            set_cache[set_id] = criteria_of_set(db, set_id)
        targets.append(
            RatingTarget(
                response_id=row["id"],
                error=row["error"],
                prompt=loads(row["prompt"]),
                answer=response_text(loads(row["messages"])),
                values=loads(row["input_values"]),
                criteria=applicable(set_cache[set_id], row["row_id"]),
                rating_version=row["rating_version"],
            )
        )
    return targets


async def rate_target(
    limiter: Limiter,
    db: Database,
    project_id: int,
    judge: Judge,
    target: RatingTarget,
    on_stored: Callable[[], None] = lambda: None,
) -> list[Outcome]:
    """Rate one response against all its criteria, replacing its earlier ratings;
    ``on_stored`` runs inside the storing transaction (e.g. to count the progress)."""
    outcomes = await judge_all(
        limiter, judge, target.criteria, target.values, target.prompt, target.answer
    )
    with db.transaction():
        if not response_exists(db, target.response_id):  # deleted while it was being rated
            on_stored()
            return []
        db.execute("DELETE FROM ratings WHERE response_id = ?", (target.response_id,))
        store_ratings(db, project_id, target.response_id, outcomes)
        on_stored()
    return outcomes


async def rating_batch_task(ctx: TaskContext) -> None:
    """Rate the payload's ``response_ids`` (``rating_mode``, ``rating_version`` per experiment)."""
    db, project_id = ctx.db, ctx.state.project_id
    payload = ctx.payload or {}
    ids: list[int] = list(payload.get("response_ids") or [])
    targets = rating_targets(db, ids)
    ctx.set_total(len(ids))
    ctx.progress(responses=len(ids), ratings=len(ids) - len(targets))
    mode = payload.get("rating_mode") or "detailed"
    judges = {t.rating_version: judge_for(ctx.providers, t.rating_version, mode) for t in targets}
    ctx.log(f"rating {len(targets)} responses")
    stats = Stats()

    async def work(target: RatingTarget) -> None:
        if target.error is not None:
            ctx.log(f"response {target.response_id}: not rated, its generation failed")
        elif not target.criteria:
            ctx.log(f"response {target.response_id}: not rated, no criteria apply")
        else:
            judge = judges[target.rating_version]
            # the progress is committed with the ratings it counts (one transaction)
            outcomes = await rate_target(
                ctx, db, project_id, judge, target, lambda: ctx.progress(ratings=1)
            )
            stats.ratings(outcomes)
            _log_ratings(ctx, target.response_id, outcomes)
            return
        ctx.progress(ratings=1)

    await _workers(ctx.concurrency, deque(targets), work)
    if stats.ratings_failed and not stats.ratings_ok:
        raise TaskFailed(
            f"every rating failed ({stats.ratings_failed}); first error: {stats.first_rating_error}"
        )


HANDLERS: dict[str, Callable[[TaskContext], Awaitable[None]]] = {
    "experiment": experiment_task,
    "responses": response_batch_task,
    "ratings": rating_batch_task,
}
