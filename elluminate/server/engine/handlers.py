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
* ``responses`` and ``ratings``: the batch tasks, in :mod:`.batches`.

The ``experiment`` task runs the experiment's evaluation mode: STANDARD here, AGENTIC in
:mod:`.agentic`, MULTI_TURN in :mod:`.multiturn`; the worker pool and the outcome counts they
share are in :mod:`.work`.

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
or every rating failed; after :data:`.work.ABORT_AFTER` failures in a row without any success
the task stops early (a dead provider), leaving the rest for ``retry-failed``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from elluminate.schemas import GenerationMetadata

from ..evaluation.generation import (
    generate,
    prompt_messages,
    prompt_settings,
    response_text,
)
from ..evaluation.judging import Criterion, applicable, judge_all
from ..store import responses as store
from ..store import runs
from ..store.database import loads
from . import agentic, multiturn
from .batches import rating_batch_task, response_batch_task
from .planning import load_setup, plan_work
from .task_context import TaskContext, TaskFailed
from .work import Stats, generator_or_reject, judge_or_reject, log_failed_ratings, run_workers

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
        gen = generator_or_reject(ctx.providers, setup.llm_row, loads(exp["generation_params"]))
    judge = judge_or_reject(
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
            gone = not await store.store_ratings_if_response_exists(
                conn, project_id, response_id, outcomes
            )
            await ctx.progress(conn, ratings=1)
        if gone:
            await ctx.log(
                f"response {response_id} was deleted during the run: its ratings are dropped"
            )
            return
        stats.ratings(outcomes)
        await log_failed_ratings(ctx, response_id, outcomes)

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
                    any_trial=False,  # STANDARD: every response is trial 0
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
    await run_workers(ctx.concurrency, items, work, stop=lambda: stats.dead)
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
