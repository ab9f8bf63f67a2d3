"""The experiment map (``GET @/experiments/{id}/map``, CONTRACT.md 4.8, 7.15): one page of the
rows an experiment answered, with per-response metadata and no messages, from the per-response
summaries of :mod:`.samples`."""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, distinct, func, select

from elluminate.schemas import (
    ExperimentMap,
    ExperimentMapResponse,
    ExperimentMapSample,
    PersonaMinimal,
)

from . import schema as S
from .connection import Connection
from .database import loads
from .samples import Summary, group_rows, summaries_of, summary_statement

_R, _TV = S.responses, S.template_variables
_IDS: Any = bindparam("ids", expanding=True)

MAP_COUNTS = select(
    func.count(distinct(_R.c.template_variables_id)), func.count()
).where(_R.c.experiment_id == bindparam("experiment_id"))
MAP_ROWS = (
    select(_R.c.template_variables_id)
    .where(_R.c.experiment_id == bindparam("experiment_id"))
    .group_by(_R.c.template_variables_id)
    .order_by(_R.c.template_variables_id)
    .limit(bindparam("limit"))
    .offset(bindparam("offset"))
)
TRAJECTORIES = select(_R.c.id, _R.c.trajectory).where(_R.c.id.in_(_IDS))
#: What an agent upload reported and the persona of a conversation, per response.
REPORTED = select(_R.c.id, _R.c.steps, _R.c.cost_usd, _R.c.persona_id).where(_R.c.id.in_(_IDS))
_PAIRS = (
    select(_R.c.template_variables_id, _R.c.persona_id)
    .where(_R.c.experiment_id == bindparam("experiment_id"))
    .distinct()
    .subquery()
)
PERSONA_SAMPLES = select(func.count()).select_from(_PAIRS)
ROW_VALUES = select(_TV.c.id, _TV.c.input_values).where(_TV.c.id.in_(_IDS))
COLLECTION_TYPE = select(S.collections.c.collection_type).where(
    S.collections.c.id == bindparam("id")
)
PRICES = select(
    S.llm_configs.c.id, S.llm_configs.c.input_price_per_mtok, S.llm_configs.c.output_price_per_mtok
).where(S.llm_configs.c.id.in_(_IDS))
#: The column that names an AGENTIC collection's task (CONTRACT.md 10.4).
TASK_COLUMN = "task"


def _trajectory_figures(trajectory: Any) -> tuple[int | None, float | None]:
    """(total steps, total cost in USD) of an ATIF trajectory: its ``final_metrics`` where
    given, else the number of steps and the sum of the steps' costs (None without any)."""
    if not isinstance(trajectory, dict):
        return None, None
    final = trajectory.get("final_metrics")
    final = final if isinstance(final, dict) else {}
    steps = trajectory.get("steps")
    steps = steps if isinstance(steps, list) else []
    total_steps = final.get("total_steps")
    if not isinstance(total_steps, int) or isinstance(total_steps, bool):
        total_steps = len(steps)
    cost = final.get("total_cost_usd")
    if not isinstance(cost, (int, float)) or isinstance(cost, bool):
        costs = [
            c
            for s in steps
            if isinstance(s, dict) and isinstance(s.get("metrics"), dict)
            for c in [s["metrics"].get("cost_usd")]
            if isinstance(c, (int, float)) and not isinstance(c, bool)
        ]
        cost = sum(costs) if costs else None
    return total_steps, None if cost is None else float(cost)


def _token_cost(summary: Summary, prices: Any) -> float | None:
    """Tokens times the LLM config's prices per million (None without prices or tokens)."""
    if prices is None or (
        prices["input_price_per_mtok"] is None and prices["output_price_per_mtok"] is None
    ):
        return None
    if summary.input_tokens is None and summary.output_tokens is None:
        return None
    return (
        (summary.input_tokens or 0) * float(prices["input_price_per_mtok"] or 0.0)
        + (summary.output_tokens or 0) * float(prices["output_price_per_mtok"] or 0.0)
    ) / 1e6


async def experiment_map(
    conn: Connection, experiment: Any, *, page: int, limit: int
) -> ExperimentMap:
    """Page ``page`` (``limit`` rows each, by row id) of the rows an experiment answered, with
    per-response metadata; ``experiment`` is its ``experiments`` row.

    ``num_samples`` / ``num_responses`` count the whole experiment. Per response:
    ``num_criteria_passed`` / ``_failed`` are its YES / NO ratings (None when it has no rating
    at all); ``total_steps`` and ``total_cost_usd`` are what an agent upload reported, else
    come from its trajectory, else the cost is its tokens at its LLM config's prices (None
    when unknown); ``task_name`` is the task's name in an AGENTIC experiment's frozen
    definition (the row's ``task`` value otherwise). In a MULTI_TURN experiment a row gives one
    sample per persona (``persona``: its id, its ``name`` value, version 1) and
    ``num_samples`` counts (row, persona) pairs; pages still count rows.
    """
    experiment_id = experiment["id"]
    counts = await conn.fetchone(MAP_COUNTS, {"experiment_id": experiment_id})
    num_samples, num_responses = (int(counts[0] or 0), int(counts[1] or 0)) if counts else (0, 0)
    row_ids = [
        int(r[0])
        for r in await conn.fetchall(
            MAP_ROWS,
            {"experiment_id": experiment_id, "limit": limit, "offset": (page - 1) * limit},
        )
    ]
    summaries: list[Summary] = []
    if row_ids:
        summaries = await summaries_of(
            conn, summary_statement("rows"), {"experiment_id": experiment_id, "ids": row_ids}
        )
    figures: dict[int, tuple[int | None, float | None]] = {}
    with_trajectory = [s.id for s in summaries if s.has_trajectory]
    for start in range(0, len(with_trajectory), 100):
        chunk = with_trajectory[start : start + 100]
        for r in await conn.fetchall(TRAJECTORIES, {"ids": chunk}):
            figures[int(r["id"])] = _trajectory_figures(loads(r["trajectory"]))
    reported: dict[int, Any] = {}
    ids = [s.id for s in summaries]
    for start in range(0, len(ids), 500):
        for r in await conn.fetchall(REPORTED, {"ids": ids[start : start + 500]}):
            reported[int(r["id"])] = r
    tasks: dict[int, str | None] = {}
    kind = await conn.fetchval(COLLECTION_TYPE, {"id": experiment["collection_id"]})
    if kind == "AGENTIC" and row_ids:
        for r in await conn.fetchall(ROW_VALUES, {"ids": row_ids}):
            value = (loads(r["input_values"]) or {}).get(TASK_COLUMN)
            tasks[int(r["id"])] = None if value is None else str(value)
    frozen = loads(experiment["definition"]) if experiment["definition"] else None
    if isinstance(frozen, dict):  # an AGENTIC experiment names its tasks as created
        for task in frozen.get("tasks") or []:
            tasks[int(task["task_id"])] = str(task["task_name"])
    multi_turn = experiment["evaluation_mode"] == "MULTI_TURN"
    personas: dict[int, PersonaMinimal] = {}
    persona_ids = sorted({int(r["persona_id"]) for r in reported.values() if r["persona_id"]})
    if multi_turn and persona_ids:
        num_samples = int(
            await conn.fetchval(PERSONA_SAMPLES, {"experiment_id": experiment_id}) or 0
        )
        for r in await conn.fetchall(ROW_VALUES, {"ids": persona_ids}):
            name = (loads(r["input_values"]) or {}).get("name")
            shown = name if isinstance(name, str) and name.strip() else f"persona {r['id']}"
            personas[int(r["id"])] = PersonaMinimal(id=int(r["id"]), name=shown, version=1)
    config_ids = sorted({s.llm_config_id for s in summaries if s.llm_config_id is not None})
    prices: dict[int, Any] = {}
    if config_ids:
        prices = {int(r["id"]): r for r in await conn.fetchall(PRICES, {"ids": config_ids})}

    def response(s: Summary) -> ExperimentMapResponse:
        steps, cost = figures.get(s.id, (None, None))
        given = reported.get(s.id)
        if given is not None and given["steps"] is not None:  # what the agent reported
            steps = int(given["steps"])
        if given is not None and given["cost_usd"] is not None:
            cost = float(given["cost_usd"])
        if cost is None and s.llm_config_id is not None:
            cost = _token_cost(s, prices.get(s.llm_config_id))
        return ExperimentMapResponse(
            response_id=s.id,
            epoch=s.epoch,
            task_name=tasks.get(s.row_id),
            has_trajectory=s.has_trajectory,
            total_steps=steps,
            total_cost_usd=cost,
            has_error=s.has_error,
            num_criteria_passed=s.yes if s.rated else None,
            num_criteria_failed=s.no if s.rated else None,
        )

    def _samples(row_id: int, responses: list[Summary]) -> list[ExperimentMapSample]:
        """One sample per row; in a MULTI_TURN experiment one per row and persona."""
        if not multi_turn:
            return [
                ExperimentMapSample(
                    template_variables_id=row_id,
                    persona=None,
                    responses=[response(s) for s in responses],
                )
            ]
        by_persona: dict[int | None, list[Summary]] = {}
        for s in responses:
            persona_id = reported[s.id]["persona_id"] if s.id in reported else None
            by_persona.setdefault(persona_id, []).append(s)
        return [
            ExperimentMapSample(
                template_variables_id=row_id,
                persona=personas.get(persona_id) if persona_id is not None else None,
                responses=[response(s) for s in group],
            )
            for persona_id, group in sorted(by_persona.items(), key=lambda kv: kv[0] or 0)
        ]

    rows = group_rows(summaries)
    return ExperimentMap(
        experiment_id=experiment_id,
        name=experiment["name"],
        num_samples=num_samples,
        num_responses=num_responses,
        samples=[
            sample
            for row_id in row_ids
            for sample in _samples(row_id, rows[(experiment_id, row_id)].responses)
        ],
    )
