"""``Experiment.results`` (CONTRACT.md 7.13), computed from the database on every read.

Definitions (documented, so clients can rely on them):

* ``mean_all_ratings``: fractions of YES / NO over every successful rating of the experiment;
  ``mean_rating_by_criterion_id`` the same per criterion. Failed ratings (judge errors) are not
  counted as either.
* ``*_per_response`` lists and the ``mean_*`` values: over responses generated without error,
  in response id order.
* ``num_rated_responses``: responses without error that have at least one rating and no failed
  rating; ``num_failed_responses``: responses whose generation failed (``error`` set).
* ``completed_epochs``: epochs in which every input row of the experiment has a response
  (at least 1); ``experiment_duration_seconds``: wall clock from the first start of a run to
  its (last) end, or to now while running.
* estimated costs: token totals times the LLM config's ``*_price_per_mtok`` (0.0 without).
* ``results`` is ``None`` while the experiment has no response at all.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

from elluminate.schemas import ExperimentResults, MeanRating

from .database import Database


def _mean(values: list[float] | list[int]) -> float | None:
    return (sum(values) / len(values)) if values else None


def _fractions(yes: int, no: int) -> MeanRating:
    total = yes + no
    if total == 0:
        return MeanRating(yes=0.0, no=0.0)
    return MeanRating(yes=yes / total, no=no / total)


def _parse_ts(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value.replace("Z", "+00:00"))


def categorical_clause(
    filters: dict[str, list[Any]] | None, alias: str = "tv"
) -> tuple[str, list[Any]]:
    """SQL condition on ``template_variables`` (aliased ``alias``) for categorical filters:
    OR within a column, AND across columns; ``("", [])`` without filters."""
    if not filters:
        return "", []
    parts: list[str] = []
    params: list[Any] = []
    for column, allowed in filters.items():
        path = "$." + json.dumps(str(column))
        if not allowed:
            parts.append("0")
            continue
        marks = ", ".join("?" for _ in allowed)
        parts.append(f"json_extract({alias}.input_values, ?) IN ({marks})")
        params.append(path)
        params.extend(str(v) for v in allowed)
    return " AND ".join(parts), params


def compute_results(
    db: Database,
    experiment: Any,
    *,
    categorical_filters: dict[str, list[Any]] | None = None,
) -> ExperimentResults | None:
    """Results of one experiment (``experiment`` is its ``experiments`` row)."""
    return compute_results_many(db, [experiment], categorical_filters=categorical_filters)[
        experiment["id"]
    ]


def compute_results_many(
    db: Database,
    experiments: Sequence[Any],
    *,
    categorical_filters: dict[str, list[Any]] | None = None,
) -> dict[int, ExperimentResults | None]:
    """Results of several experiments (their ``experiments`` rows), by experiment id.

    A constant number of queries whatever the number of experiments (a list page computes
    the results of all its experiments at once).
    """
    out: dict[int, ExperimentResults | None] = {}
    for start in range(0, len(experiments), 500):
        chunk = experiments[start : start + 500]
        out.update(_results_of_chunk(db, chunk, categorical_filters))
    return out


def _results_of_chunk(
    db: Database,
    experiments: Sequence[Any],
    categorical_filters: dict[str, list[Any]] | None,
) -> dict[int, ExperimentResults | None]:
    ids = [e["id"] for e in experiments]
    cond, cparams = categorical_clause(categorical_filters)
    marks = ",".join("?" * len(ids))
    where = f"r.experiment_id IN ({marks})" + (f" AND {cond}" if cond else "")
    params: list[Any] = [*ids, *cparams]
    # the row filter needs the entries; without one, the prompts (for the row id) suffice
    tv_join = "JOIN template_variables tv ON tv.id = p.template_variables_id" if cond else ""
    join = f"JOIN prompts p ON p.id = r.prompt_id {tv_join}"
    responses_of: dict[int, list[Any]] = {i: [] for i in ids}
    for r in db.fetchall(
        f"SELECT r.experiment_id, r.id, r.error, r.epoch, r.input_tokens, r.output_tokens, "
        f"r.duration_seconds, p.template_variables_id AS tv_id FROM responses r {join} "
        f"WHERE {where} ORDER BY r.id",
        params,
    ):
        responses_of[r["experiment_id"]].append(r)
    answered = [i for i in ids if responses_of[i]]
    if not answered:  # nothing generated yet (e.g. just created): no results at all
        return dict.fromkeys(ids)
    if len(answered) < len(ids):  # the other queries only for experiments with responses
        marks = ",".join("?" * len(answered))
        where = f"r.experiment_id IN ({marks})" + (f" AND {cond}" if cond else "")
        params = [*answered, *cparams]
    counts_of: dict[int, list[Any]] = {i: [] for i in ids}
    for row in db.fetchall(
        f"SELECT r.experiment_id, g.criterion_id, g.rating, COUNT(*) AS n FROM ratings g "
        f"JOIN responses r ON r.id = g.response_id {join if cond else ''} "
        f"WHERE {where} AND g.rating IS NOT NULL "
        "GROUP BY r.experiment_id, g.criterion_id, g.rating",
        params,
    ):
        counts_of[row["experiment_id"]].append(row)
    rated_of: dict[int, int] = {
        row[0]: int(row[1])
        for row in db.fetchall(
            f"SELECT r.experiment_id, COUNT(*) FROM responses r {join if cond else ''} "
            f"WHERE {where} AND r.error IS NULL "
            "AND EXISTS (SELECT 1 FROM ratings g WHERE g.response_id = r.id) "
            "AND NOT EXISTS (SELECT 1 FROM ratings g WHERE g.response_id = r.id "
            "AND g.rating IS NULL) GROUP BY r.experiment_id",
            params,
        )
    }
    config_ids = sorted({e["llm_config_id"] for e in experiments} - {None})
    prices: dict[int, Any] = {}
    if config_ids:
        prices = {
            row["id"]: row
            for row in db.fetchall(
                "SELECT id, input_price_per_mtok, output_price_per_mtok FROM llm_configs "
                f"WHERE id IN ({','.join('?' * len(config_ids))})",
                config_ids,
            )
        }
    return {
        e["id"]: _results(
            e,
            responses_of[e["id"]],
            counts_of[e["id"]],
            rated_of.get(e["id"], 0),
            prices.get(e["llm_config_id"]),
        )
        for e in experiments
    }


def _results(
    experiment: Any, responses: list[Any], counts: list[Any], rated: int, prices: Any
) -> ExperimentResults | None:
    """Assemble one experiment's results from its queried rows (no I/O)."""
    if not responses:
        return None
    ok = [r for r in responses if r["error"] is None]
    input_tokens = [int(r["input_tokens"] or 0) for r in ok]
    output_tokens = [int(r["output_tokens"] or 0) for r in ok]
    durations = [float(r["duration_seconds"] or 0.0) for r in ok]

    per_criterion: dict[int, list[int]] = {}
    yes_all = no_all = 0
    for row in counts:
        bucket = per_criterion.setdefault(row["criterion_id"], [0, 0])
        if row["rating"] == "YES":
            bucket[0] += row["n"]
            yes_all += row["n"]
        else:
            bucket[1] += row["n"]
            no_all += row["n"]

    rows_seen = {r["tv_id"] for r in responses}
    by_epoch: dict[int, set[int]] = {}
    for r in responses:
        by_epoch.setdefault(r["epoch"], set()).add(r["tv_id"])
    completed_epochs = sum(1 for tvs in by_epoch.values() if tvs >= rows_seen)

    started = _parse_ts(experiment["started_at"])
    finished = _parse_ts(experiment["finished_at"])
    duration: float | None = None
    if started is not None:
        end = (
            finished if finished is not None and experiment["generation_task_id"] is None else None
        )
        end = end or datetime.now(timezone.utc)
        duration = max(0.0, (end - started).total_seconds())

    input_cost = output_cost = 0.0
    if prices is not None:
        input_cost = sum(input_tokens) * float(prices["input_price_per_mtok"] or 0.0) / 1e6
        output_cost = sum(output_tokens) * float(prices["output_price_per_mtok"] or 0.0) / 1e6

    return ExperimentResults(
        mean_all_ratings=_fractions(yes_all, no_all),
        std_all_ratings=0.0,
        mean_rating_by_criterion_id={
            cid: _fractions(y, n) for cid, (y, n) in sorted(per_criterion.items())
        },
        mean_duration_seconds=_mean(durations),
        mean_input_tokens=_mean(input_tokens),
        mean_output_tokens=_mean(output_tokens),
        mean_reasoning_tokens=None,
        input_tokens_per_response=input_tokens,
        output_tokens_per_response=output_tokens,
        reasoning_tokens_per_response=[],
        duration_seconds_per_response=durations,
        num_rated_responses=rated,
        num_failed_responses=len(responses) - len(ok),
        completed_epochs=max(1, completed_epochs),
        experiment_duration_seconds=duration,
        estimated_input_cost_usd=input_cost,
        estimated_output_cost_usd=output_cost,
        estimated_total_cost_usd=input_cost + output_cost,
    )
