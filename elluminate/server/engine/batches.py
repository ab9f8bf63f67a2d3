"""The batch tasks: ``responses`` (store given messages, or generate when they are empty) and
``ratings`` (rate given responses against their experiment's criteria, replacing earlier
ratings of those responses). Their building blocks also serve the synchronous endpoints
(``POST .../responses``, ``POST .../ratings``). Every write goes through the task's fenced
:meth:`~.task_context.TaskContext.write`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from elluminate.schemas import GenerationMetadata

from ..evaluation.generation import (
    Limiter,
    generate,
    generator_for,
    prompt_messages,
    prompt_settings,
    response_text,
)
from ..evaluation.judging import Criterion, Judge, applicable, judge_all
from ..store import responses as store
from ..store.connection import Connection
from ..store.database import loads
from ..store.responses import DuplicateResponse, Outcome
from .planning import criteria_of_set
from .task_context import TaskContext, TaskFailed
from .work import (
    Stats,
    generator_or_reject,
    judge_or_reject,
    log_failed_ratings,
    run_workers,
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
            generator_or_reject(ctx.providers, llm_row)
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
    await run_workers(ctx.concurrency, pending, work, stop=lambda: stats.dead)
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
    judges = {
        t.rating_version: judge_or_reject(ctx.providers, t.rating_version, mode) for t in targets
    }
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
            await log_failed_ratings(ctx, target.response_id, outcomes)
            return
        async with ctx.write() as conn:
            await ctx.progress(conn, ratings=1)

    await run_workers(ctx.concurrency, deque(targets), work)
    if stats.ratings_failed and not stats.ratings_ok:
        raise TaskFailed(
            f"every rating failed ({stats.ratings_failed}); first error: {stats.first_rating_error}"
        )
