"""The work behind the tasks: generate responses, rate them, store both.

Task kinds (handlers for :class:`~elluminate.server.engine.engine.TaskEngine`):

* ``experiment``: for each input row x epoch that has no response yet, render the template
  with the row, call the generation provider (the experiment's LLM config, else the server
  default), store prompt + response (or the provider's error), then rate the response against
  every applicable criterion of the experiment's criterion set. Responses without error that
  lack a rating for some criterion are (re-)rated too, so the same handler serves ``run``,
  ``retry-failed`` (which first deletes the failed responses) and a resume after a crash.
  Rows run concurrently through a pool of workers; every LLM call goes through the engine's
  limiter.
* ``responses``: a response batch: store given messages, or generate when they are empty.
* ``ratings``: a rating batch: rate given responses against their experiment's criteria,
  replacing earlier ratings of those responses.

Every write goes through :meth:`TaskContext.write` (fenced: a replica that lost the task
cannot write). A failure that belongs to one item (its row deleted meanwhile, a response
already stored for its (row, epoch)) is logged on that item and the task goes on.

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
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from elluminate._taskgroup import run_all
from elluminate.schemas import GenerationMetadata

from ..evaluation.generation import (
    Generator,
    Limiter,
    Unavailable,
    generate,
    generator_for,
    prompt_messages,
    prompt_settings,
    response_text,
)
from ..evaluation.judging import Criterion, Judge, applicable, judge_all, judge_for
from ..store import responses as store
from ..store import runs
from ..store.connection import Connection
from ..store.database import loads
from ..store.responses import DuplicateResponse, Outcome
from . import agentic, multiturn
from .planning import criteria_of_set, load_setup, plan_work
from .task_context import TaskContext, TaskFailed, TaskRejected

log = logging.getLogger("elluminate.server.engine.handlers")

#: Consecutive failed generations (with no success at all) after which a task gives up.
ABORT_AFTER = 20


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


async def _log_ratings(ctx: TaskContext, response_id: int, outcomes: Sequence[Outcome]) -> None:
    for o in outcomes:
        if o.rating is None:
            await ctx.log(
                f"response {response_id}: rating for criterion {o.criterion_id} failed: {o.error}"
            )


def _generator(providers: Any, llm_row: Any, params: dict[str, Any] | None = None) -> Generator:
    try:
        return generator_for(providers, llm_row, params)
    except Unavailable as exc:
        raise TaskRejected(str(exc)) from None


def _judge(providers: Any, rating_version: str | None, mode: str) -> Judge:
    try:
        return judge_for(providers, rating_version, mode)
    except Unavailable as exc:
        raise TaskRejected(str(exc)) from None


# ---- the experiment task ---------------------------------------------------------------------


async def experiment_task(ctx: TaskContext) -> None:
    """Generate and rate what an experiment is missing (see the module docstring)."""
    project_id = ctx.state.project_id
    assert ctx.state.experiment_id is not None
    payload = ctx.payload or {}
    async with ctx.db.connect() as conn:
        setup = await load_setup(conn, project_id, ctx.state.experiment_id)
        plan = await plan_work(conn, setup)
    exp = setup.experiment
    gen = None
    if setup.response_column is None:
        gen = _generator(ctx.providers, setup.llm_row, loads(exp["generation_params"]))
    judge = _judge(
        ctx.providers, exp["rating_version"], payload.get("rating_mode") or exp["rating_mode"]
    )
    if ctx.resumed:  # the counters hold what earlier claims did; the plan holds what is left
        await ctx.set_total(
            max(ctx.state.total_responses, ctx.state.completed_responses + len(plan.generate))
        )
    else:
        await ctx.set_total(plan.total)
    values_of = dict(setup.rows)
    verb = "Resuming" if ctx.resumed else "Retrying" if payload.get("retry") else "Generating"
    await ctx.log(
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
        epoch: int,
    ) -> None:
        outcomes = await judge_all(
            ctx, judge, criteria, values_of.get(row_id, {}), prompt, answer, epoch
        )
        async with ctx.write() as conn:
            gone = not await store.response_exists(conn, response_id)
            if not gone:
                await store.store_ratings(conn, project_id, response_id, outcomes)
            await ctx.progress(conn, ratings=1)
        if gone:
            await ctx.log(
                f"response {response_id} was deleted during the run: its ratings are dropped"
            )
            return
        stats.ratings(outcomes)
        await _log_ratings(ctx, response_id, outcomes)

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
                messages, metadata, error = await generate(ctx, gen, prompt, epoch=epoch)
        skipped: str | None = None
        response_id = 0
        try:
            async with ctx.write() as conn:
                if not await store.row_is_live(conn, row_id):
                    raise LookupError("the row was deleted during the run")
                settings = prompt_settings(setup.template_messages, values, setup.columns)
                prompt_id = await store.insert_prompt(
                    conn, project_id, setup.id, setup.template, row_id, prompt, settings
                )
                response_id = await store.insert_response(
                    conn,
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
                await ctx.progress(conn, responses=1, ratings=1 if error else 0)
        except LookupError as exc:  # this item only (DuplicateResponse included): go on
            skipped = str(exc)
        if skipped is not None:
            async with ctx.write() as conn:
                await ctx.progress(conn, responses=1, ratings=1)
            await ctx.log(f"row {row_id} epoch {epoch}: skipped: {skipped}")
            return
        stats.generation(error)
        if error is not None:
            await ctx.log(f"row {row_id} epoch {epoch}: generation failed: {error}")
            return
        criteria = applicable(setup.criteria, row_id)
        if criteria:
            await rate(response_id, row_id, criteria, prompt, response_text(messages), epoch)
        else:
            async with ctx.write() as conn:
                await ctx.progress(conn, ratings=1)

    async def rate_item(item: tuple[int, list[Criterion]]) -> None:
        response_id, criteria = item
        async with ctx.db.connect() as conn:
            row = await store.response_to_rate(conn, response_id)
        if row is None:  # deleted meanwhile
            async with ctx.write() as conn:
                await ctx.progress(conn, ratings=1)
            return
        await rate(
            response_id,
            row["row_id"],
            criteria,
            loads(row["prompt"]),
            response_text(loads(row["messages"])),
            int(row["epoch"] or 1),
        )

    async def work(item: Any) -> None:
        if isinstance(item[1], list):
            await rate_item(item)
        else:
            await generate_item(item)

    if plan.rate and not ctx.resumed:  # their responses exist already
        async with ctx.write() as conn:
            await ctx.progress(conn, responses=len(plan.rate))
    items: deque[Any] = deque([*plan.rate, *plan.generate])
    await _workers(ctx.concurrency, items, work, stop=lambda: stats.dead)
    await ctx.log(
        f"{stats.generated} responses generated, {stats.failed} failed; "
        f"{stats.ratings_ok} ratings, {stats.ratings_failed} failed ratings"
    )
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


async def row_prompt(
    conn: Connection, template: Any, row_id: int, *, strict: bool
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """``(input values, rendered prompt)`` of a row; with ``strict`` a render error raises
    ValueError, else the unrendered template messages are used."""
    row, columns = await store.row_and_columns(conn, row_id)
    if row is None:
        raise ValueError(f"collection entry {row_id} no longer exists")
    values = loads(row["input_values"])
    messages = None if template is None else loads(template["messages"])
    try:
        return values, prompt_messages(messages, values, columns)
    except ValueError:
        if strict:
            raise
        return values, list(messages or [])


async def store_given_response(conn: Connection, project_id: int, item: dict[str, Any]) -> int:
    """Store an externally produced response (in the caller's transaction)."""
    exp, template = await store.experiment_and_template(conn, item["experiment_id"])
    _, prompt = await row_prompt(conn, template, item["template_variables_id"], strict=False)
    prompt_id = await store.insert_prompt(
        conn, project_id, exp["id"], template, item["template_variables_id"], prompt
    )
    return await store.insert_response(
        conn,
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
    limiter: Limiter,
    db: Any,
    providers: Any,
    project_id: int,
    item: dict[str, Any],
    write: Callable[[], Any] | None = None,
) -> tuple[int, str | None]:
    """Generate one response for a batch item / the generate endpoint; ``(id, error)``.

    Raises :class:`~..evaluation.generation.Unavailable` when the item's LLM config cannot be
    used, LookupError when the experiment or the row is gone (DuplicateResponse when the
    (row, epoch) got its response meanwhile). ``write`` opens the storing transaction (a
    task's fenced write), else ``db.begin()``.
    """
    async with db.connect() as conn:
        exp, template = await store.experiment_and_template(conn, item["experiment_id"])
        llm_row = None
        if item.get("llm_config_id") is not None:
            llm_row = await store.llm_config_row(conn, item["llm_config_id"])
        gen = generator_for(providers, llm_row, loads(exp["generation_params"]))
        error: str | None
        messages: list[dict[str, Any]] = []
        metadata: GenerationMetadata | None = None
        settings = None
        try:
            values, prompt = await row_prompt(
                conn, template, item["template_variables_id"], strict=True
            )
        except ValueError as exc:
            prompt, error = [], f"cannot render the prompt: {exc}"
        else:
            error = None
            if template is None:
                _, columns = await store.row_and_columns(conn, item["template_variables_id"])
                settings = prompt_settings(None, values, columns)
    if error is None:
        messages, metadata, error = await generate(
            limiter, gen, prompt, epoch=item.get("epoch") or 1
        )
    opener = write if write is not None else db.begin
    async with opener() as conn:
        if not await store.row_is_live(conn, item["template_variables_id"]):
            raise LookupError(
                f"collection entry {item['template_variables_id']} was deleted while its "
                "response was generated"
            )
        prompt_id = await store.insert_prompt(
            conn, project_id, exp["id"], template, item["template_variables_id"], prompt, settings
        )
        response_id = await store.insert_response(
            conn,
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
    """Store or generate each item of a response batch (payload ``{"items": [...]}``).

    Resumable: an item whose (experiment, row, epoch) has its response already is done.
    """
    project_id = ctx.state.project_id
    items: list[dict[str, Any]] = list((ctx.payload or {}).get("items") or [])
    if not ctx.resumed:
        await ctx.set_total(len(items))
    to_generate = [(i, it) for i, it in enumerate(items) if not it.get("messages")]
    async with ctx.db.connect() as conn:
        for config_id in {it.get("llm_config_id") for _, it in to_generate}:  # reject early
            llm_row = None if config_id is None else await store.llm_config_row(conn, config_id)
            _generator(ctx.providers, llm_row)
        done = {
            index: await store.slot_taken(
                conn, it["experiment_id"], it["template_variables_id"], it.get("epoch") or 1
            )
            for index, it in enumerate(items)
        }
    created: list[int | None] = [done.get(i) for i in range(len(items))]
    given = [i for i, it in enumerate(items) if it.get("messages") and created[i] is None]
    await ctx.log(f"{len(given)} responses to store, {len(to_generate)} to generate")
    async with ctx.write() as conn:
        for index in given:
            try:
                async with conn.savepoint():
                    created[index] = await store_given_response(conn, project_id, items[index])
            except (LookupError, ValueError) as exc:
                await ctx.log(f"item {index}: not stored: {exc}")
        await ctx.progress(conn, responses=len(given))
    stats = Stats()

    async def work(entry: tuple[int, dict[str, Any]]) -> None:
        index, item = entry
        response_id: int | None
        error: str | None
        try:
            response_id, error = await generate_and_store(
                ctx, ctx.db, ctx.providers, project_id, item, write=ctx.write
            )
        except DuplicateResponse as exc:
            response_id, error = None, str(exc)
        except LookupError as exc:
            response_id, error = None, str(exc)
        created[index] = response_id
        stats.generation(error)
        if error is not None:
            await ctx.log(f"item {index}: generation failed: {error}")
        async with ctx.write() as conn:
            await ctx.progress(conn, responses=1)

    pending = deque((i, it) for i, it in to_generate if created[i] is None)
    attempted = len(pending)
    await _workers(ctx.concurrency, pending, work, stop=lambda: stats.dead)
    await ctx.set_result({"response_ids": created})
    if attempted and (stats.dead or not stats.generated):
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
    epoch: int = 1


async def rating_targets(conn: Connection, response_ids: Sequence[int]) -> list[RatingTarget]:
    """Load the responses to rate, in the given order (missing ids are skipped)."""
    rows = await store.rating_target_rows(conn, response_ids)
    targets: list[RatingTarget] = []
    set_cache: dict[int, list[Criterion]] = {}
    for response_id in response_ids:
        row = rows.get(response_id)
        if row is None:
            continue
        set_id = row["criterion_set_id"]
        if set_id not in set_cache:
            set_cache[set_id] = await criteria_of_set(conn, set_id)
        targets.append(
            RatingTarget(
                response_id=row["id"],
                error=row["error"],
                prompt=loads(row["prompt"]),
                answer=response_text(loads(row["messages"])),
                values=loads(row["input_values"]),
                criteria=applicable(set_cache[set_id], row["row_id"]),
                rating_version=row["rating_version"],
                epoch=int(row["epoch"] or 1),
            )
        )
    return targets


async def rate_target(
    limiter: Limiter,
    write: Callable[[], Any],
    project_id: int,
    judge: Judge,
    target: RatingTarget,
    on_stored: Callable[[Connection], Awaitable[None]] | None = None,
) -> list[Outcome]:
    """Rate one response against all its criteria, replacing its earlier ratings;
    ``write()`` opens the storing transaction, ``on_stored(conn)`` runs in it (e.g. to count
    the progress)."""
    outcomes = await judge_all(
        limiter,
        judge,
        target.criteria,
        target.values,
        target.prompt,
        target.answer,
        target.epoch,
    )
    async with write() as conn:
        if not await store.response_exists(conn, target.response_id):  # deleted meanwhile
            outcomes = []
        else:
            await store.store_ratings(
                conn, project_id, target.response_id, outcomes, replace_all=True
            )
        if on_stored is not None:
            await on_stored(conn)
    return outcomes


async def rating_batch_task(ctx: TaskContext) -> None:
    """Rate the payload's ``response_ids`` (``rating_mode``, ``rating_version`` per experiment).

    On a resume the batch rates every response again (ratings are replaced, never added) and
    its counters start over.
    """
    project_id = ctx.state.project_id
    payload = ctx.payload or {}
    ids: list[int] = list(payload.get("response_ids") or [])
    async with ctx.db.connect() as conn:
        targets = await rating_targets(conn, ids)
    await ctx.reset_progress(len(ids))
    async with ctx.write() as conn:
        await ctx.progress(conn, responses=len(ids), ratings=len(ids) - len(targets))
    mode = payload.get("rating_mode") or "detailed"
    judges = {t.rating_version: _judge(ctx.providers, t.rating_version, mode) for t in targets}
    await ctx.log(f"rating {len(targets)} responses")
    stats = Stats()

    async def count(conn: Connection) -> None:
        await ctx.progress(conn, ratings=1)

    async def work(target: RatingTarget) -> None:
        if target.error is not None:
            await ctx.log(f"response {target.response_id}: not rated, its generation failed")
        elif not target.criteria:
            await ctx.log(f"response {target.response_id}: not rated, no criteria apply")
        else:
            judge = judges[target.rating_version]
            # the progress is committed with the ratings it counts (one transaction)
            outcomes = await rate_target(ctx, ctx.write, project_id, judge, target, count)
            stats.ratings(outcomes)
            await _log_ratings(ctx, target.response_id, outcomes)
            return
        async with ctx.write() as conn:
            await ctx.progress(conn, ratings=1)

    await _workers(ctx.concurrency, deque(targets), work)
    if stats.ratings_failed and not stats.ratings_ok:
        raise TaskFailed(
            f"every rating failed ({stats.ratings_failed}); first error: {stats.first_rating_error}"
        )


async def experiment_run(ctx: TaskContext) -> None:
    """The ``experiment`` task: the run of the experiment's evaluation mode (STANDARD: generate
    and rate, :func:`experiment_task`; AGENTIC: rate uploaded trials,
    :func:`.agentic.evaluation_task`; MULTI_TURN: hold and rate conversations,
    :func:`.multiturn.conversation_task`). One task kind for every mode, so the experiment's
    ``generation_task_id``, status, stream, cancel and release work the same for all."""
    assert ctx.state.experiment_id is not None
    async with ctx.db.connect() as conn:
        mode = await runs.evaluation_mode(conn, ctx.state.experiment_id)
    if mode == "AGENTIC":
        await agentic.evaluation_task(ctx)
    elif mode == "MULTI_TURN":
        await multiturn.conversation_task(ctx)
    else:
        await experiment_task(ctx)


HANDLERS: dict[str, Callable[[TaskContext], Awaitable[None]]] = {
    "experiment": experiment_run,
    "responses": response_batch_task,
    "ratings": rating_batch_task,
}
