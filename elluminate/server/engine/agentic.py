"""The evaluation task of an AGENTIC experiment: the judge rates uploaded trials.

It runs as the experiment's ``experiment`` task (so ``generation_task_id`` names it while it
runs, the engine clears it and sets ``has_internal_error`` when it ends, and cancel, lease and
resume work as for any run). Its payload names the responses to evaluate
(``response_ids``); the work left is recomputed from the stored ratings (a response's
criteria of its frozen task without a successful rating), so a resumed task rates only what is
missing. The judge reads the task's prompt and the trial's messages and trajectory
(:func:`..evaluation.transcripts.render_trial`) against the criterion as the definition
rendered it.

Hand-off: an upload made while the task runs starts a newer task that takes over the
unfinished responses. Every write checks, with the experiment row locked against uploads, that
this task is still the experiment's; once it is not, the task stops and ends SUCCESS (a
waiter following ``generation_task_id`` moves to the newer one), and nothing it rated after
the hand-off is stored twice: the newer task rates what has no rating.

Outcomes: FAILURE when every rating failed; otherwise SUCCESS (failed ratings are logged and
stored as failed ratings, which ``retry-failed`` rates again).
"""

from __future__ import annotations

from collections import deque
from typing import Any

from ..evaluation.judging import Criterion, judge_all
from ..evaluation.transcripts import render_trial
from ..store import agent_results as store
from ..store import responses as responses_store
from ..store import runs
from .task_context import TaskContext, TaskFailed, TaskRejected
from .work import Stats, judge_or_reject, log_failed_ratings, run_workers


async def evaluation_task(ctx: TaskContext) -> None:
    """Rate the criteria the uploaded trials of the payload still lack."""
    project_id = ctx.state.project_id
    experiment_id = ctx.state.experiment_id
    assert experiment_id is not None
    payload = ctx.payload or {}
    async with ctx.db.connect() as conn:
        exp = await runs.experiment(conn, project_id, experiment_id)
        if exp is None:
            raise TaskRejected(f"experiment {experiment_id} no longer exists")
        definition = store.definition_of(exp)
        todo = await store.pending(
            conn, experiment_id, definition, payload.get("response_ids") or []
        )
    judge = judge_or_reject(
        ctx.providers, exp["rating_version"], payload.get("rating_mode") or exp["rating_mode"]
    )
    if ctx.resumed:
        await ctx.set_total(max(ctx.state.total_responses, ctx.state.completed_ratings + len(todo)))
    else:
        await ctx.set_total(len(todo))
        async with ctx.write() as conn:
            await ctx.progress(conn, responses=len(todo))
    earlier = payload.get("handed_over_from")
    await ctx.log(
        f"{'Resuming' if ctx.resumed else 'Evaluating'}: {len(todo)} agent result(s), "
        f"{sum(len(p.criteria) for p in todo)} rating(s) to make"
        + (f" (taking over from task {earlier})" if earlier else "")
    )
    stats = Stats()
    state: dict[str, Any] = {"superseded": None}

    async def still_current() -> bool:
        if state["superseded"]:
            return False
        async with ctx.db.connect() as conn:
            current = await conn.fetchval(store.CURRENT_TASK, {"id": experiment_id})
        if current != ctx.task_id:
            state["superseded"] = current or "none"
            return False
        return True

    async def work(item: store.PendingResponse) -> None:
        if not await still_current():
            return
        criteria = [
            Criterion(c["criterion_id"], c["rendered_criterion_str"], None) for c in item.criteria
        ]
        answer = render_trial(item.messages, item.trajectory)
        outcomes = await judge_all(ctx, judge, criteria, {}, item.prompt, answer)
        async with ctx.write() as conn:
            if not await store.is_current_task(conn, experiment_id, ctx.task_id):
                state["superseded"] = state["superseded"] or "another task"
                return
            if await responses_store.response_exists(conn, item.response_id):
                done = await store.rated_criteria(conn, item.response_id)
                outcomes = [o for o in outcomes if o.criterion_id not in done]
                await responses_store.store_ratings(conn, project_id, item.response_id, outcomes)
            else:
                outcomes = []
            await ctx.progress(conn, ratings=1)
        stats.ratings(outcomes)
        await log_failed_ratings(ctx, item.response_id, outcomes)

    await run_workers(
        ctx.concurrency, deque(todo), work, stop=lambda: bool(state["superseded"])
    )
    if state["superseded"]:
        await ctx.log(
            f"handed over to task {state['superseded']} (a newer upload): it rates the rest"
        )
        return
    await ctx.log(f"{stats.ratings_ok} ratings, {stats.ratings_failed} failed ratings")
    if stats.ratings_failed and not stats.ratings_ok:
        raise TaskFailed(
            f"every rating failed ({stats.ratings_failed}); first error: {stats.first_rating_error}"
        )
