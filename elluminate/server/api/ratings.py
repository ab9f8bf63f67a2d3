"""Ratings (CONTRACT.md 4.10): list, rate one (synchronous), batches with polling and SSE.

A response is rated against the applicable criteria of its experiment's criterion set, with
the experiment's ``rating_version`` (``mock``: the no-LLM judge). Re-rating replaces the
response's earlier ratings. Failed judge calls are stored as failed ratings and never listed
(see :mod:`elluminate.server.engine.handlers`).
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web

from elluminate.schemas import BatchRateRequest, CreateRatingRequest

from ..engine.batches import rate_target, rating_targets
from ..evaluation.generation import Unavailable
from ..evaluation.judging import judge_for
from ..store import experiments as experiment_store
from ..store import responses as store
from ..store.views_experiments import ExperimentViews
from .errors import HTTPError, unprocessable
from .http import (
    get_db,
    get_providers,
    json_response,
    page_response,
    project_id,
    query_int,
    read_json,
)
from .sse import get_engine, status_payload, stream_task

log = logging.getLogger("elluminate.server.api.ratings")

routes = web.RouteTableDef()

BASE = r"/api/v0/projects/{project_id:\d+}/ratings"
BATCH = BASE + r"/batches/{task_id}"


@routes.get(BASE)
async def list_ratings(request: web.Request) -> web.Response:
    """Paginated successful ratings (optionally of one ``prompt_response_id``), by id."""
    db, pid = get_db(request), project_id(request)
    params: dict[str, Any] = {"pid": pid}
    response_id = query_int(request, "prompt_response_id")
    if response_id is not None:
        params["response_id"] = response_id
    stmt = store.RATINGS if response_id is None else store.RATINGS_OF_RESPONSE
    async with db.connect() as conn:
        views = ExperimentViews(conn, pid, store=db)
        return await page_response(request, conn, stmt, params, views.rating_structs)


@routes.post(BASE)
async def rate_response(request: web.Request) -> web.Response:
    """Rate one response now; answers its ratings (one per applicable criterion)."""
    body, _ = await read_json(request, CreateRatingRequest)
    db, pid = get_db(request), project_id(request)
    async with db.connect() as conn:
        owned = await store.owned(conn, pid, body.prompt_response_id)
        targets = await rating_targets(conn, [body.prompt_response_id]) if owned else []
    if not targets:
        raise HTTPError(404, f"response {body.prompt_response_id} not found in this project")
    target = targets[0]
    if target.error is not None:
        raise unprocessable(
            f"response {target.response_id} cannot be rated: its generation failed ({target.error})"
        )
    if not target.criteria:
        raise unprocessable(
            f"response {target.response_id} has no criteria to be rated against: add criteria "
            "to its experiment's criterion set"
        )
    try:
        judge = judge_for(get_providers(request), target.rating_version, body.rating_mode.value)
    except Unavailable as exc:
        raise HTTPError(503, str(exc)) from None
    outcomes = await rate_target(get_engine(request), db.begin, pid, judge, target)
    failed = [o for o in outcomes if o.rating is None]
    if failed:
        raise HTTPError(
            502,
            f"{len(failed)} of {len(outcomes)} ratings of response {target.response_id} failed "
            f"(criterion {failed[0].criterion_id}: {failed[0].error}); the successful ones are "
            "stored, try again to rate the rest",
        )
    async with db.connect() as conn:
        ratings = await ExperimentViews(conn, pid, store=db).ratings_of([target.response_id])
    return json_response(ratings.get(target.response_id, []), status=201)


@routes.post(BASE + "/batches")
async def create_batch(request: web.Request) -> web.Response:
    """Start a rating batch task: a bare JSON string task id, or ``null`` when empty."""
    body, _ = await read_json(request, BatchRateRequest)
    ids = list(dict.fromkeys(body.prompt_response_ids))
    if not ids:
        return json_response(None)
    db, pid, engine = get_db(request), project_id(request), get_engine(request)
    async with db.begin() as conn:
        rows = await store.batch_responses(conn, pid, ids)
        found = {r["id"] for r in rows}
        missing = [i for i in ids if i not in found]
        if missing:
            shown = ", ".join(map(str, missing[:20])) + (" ..." if len(missing) > 20 else "")
            raise HTTPError(404, f"responses not found in this project: {shown}")
        checked: set[int] = set()
        for row in rows:
            if row["criterion_set_id"] in checked:
                continue
            checked.add(row["criterion_set_id"])
            if not await experiment_store.has_live_criteria(conn, row["criterion_set_id"]):
                raise unprocessable(
                    f"response {row['id']} cannot be rated: the criterion set of experiment "
                    f"{row['name']!r} has no criteria"
                )
        experiments = {r["experiment_id"] for r in rows}
        state = await engine.submit(
            conn,
            "ratings",
            pid,
            experiments.pop() if len(experiments) == 1 else None,
            {"response_ids": ids, "rating_mode": body.rating_mode.value},
        )
    log.info("rating batch %s: %d responses (%s)", state.id, len(ids), state.status)
    return json_response(state.id)


@routes.get(BATCH)
async def batch_status(request: web.Request) -> web.Response:
    return json_response(await status_payload(request, request.match_info["task_id"], "ratings"))


@routes.get(BATCH + "/stream")
async def batch_stream(request: web.Request) -> web.StreamResponse:
    """SSE progress of a rating batch (CONTRACT.md 5.5)."""
    return await stream_task(request, request.match_info["task_id"], "ratings")
