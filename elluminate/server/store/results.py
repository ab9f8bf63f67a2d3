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
* estimated costs: token totals times the LLM config's ``*_price_per_mtok`` (0.0 without),
  over the generations that called the provider (a cached one cost nothing).
* ``num_cached_responses`` / ``num_cached_ratings``: responses and successful ratings whose
  answer came from the server's LLM call cache (``--llm-cache``) instead of a provider call.
* ``results`` is ``None`` while the experiment has no response at all.

Computed results are kept (:class:`ResultsCache`, one per database) under the experiment's
``results_version``, which triggers raise in the transaction of every write to its responses
or ratings (see ``schema.RESULTS_TRIGGERS``), with the run state the duration depends on; a
list page then computes only the experiments that changed. Results with categorical filters,
and those of a running experiment (their duration is "until now"), are always computed.
"""

from __future__ import annotations

import weakref
from collections import OrderedDict
from collections.abc import Sequence
from datetime import datetime, timezone
from functools import lru_cache
from typing import Any

from sqlalchemy import Select, String, and_, bindparam, exists, false, func, select

from elluminate.schemas import ExperimentResults, MeanRating

from . import schema as S
from .connection import Connection
from .database import ts_or_none
from .sqlfuncs import json_text_field

_R, _G, _TV, _P = S.responses, S.ratings, S.template_variables, S.prompts
_IDS: Any = bindparam("ids", expanding=True)


def _mean(values: list[float] | list[int]) -> float | None:
    return (sum(values) / len(values)) if values else None


def _fractions(yes: int, no: int) -> MeanRating:
    total = yes + no
    if total == 0:
        return MeanRating(yes=0.0, no=0.0)
    return MeanRating(yes=yes / total, no=no / total)


def categorical_condition(columns: int) -> Any:
    """The categorical condition on ``template_variables``: per column ``k`` the value at
    JSON key ``:cat_key_k`` is one of ``:cat_values_k`` (OR within a column, AND across)."""
    return and_(
        *(
            json_text_field(_TV.c.input_values, bindparam(f"cat_key_{k}", type_=String())).in_(
                bindparam(f"cat_values_{k}", expanding=True)
            )
            for k in range(columns)
        )
    )


@lru_cache(maxsize=64)
def _statements(columns: int | None) -> tuple[Select[Any], Select[Any], Select[Any]]:
    """(responses, rating counts, rated responses) of ``:ids`` experiments, filtered by
    ``columns`` categorical columns (None: no filter; the entries need no join then)."""
    source: Any = _R
    if columns is not None:
        source = _R.join(_TV, _TV.c.id == _R.c.template_variables_id)
    cond: Any = _R.c.experiment_id.in_(_IDS)
    if columns is not None:
        cond = and_(cond, categorical_condition(columns)) if columns else and_(cond, false())
    responses = (
        select(
            _R.c.experiment_id,
            _R.c.id,
            _R.c.error,
            _R.c.epoch,
            _R.c.input_tokens,
            _R.c.output_tokens,
            _R.c.duration_seconds,
            _R.c.from_cache,
            _R.c.template_variables_id.label("tv_id"),
        )
        .select_from(source)
        .where(cond)
        .order_by(_R.c.id)
    )
    counts = (
        select(
            _R.c.experiment_id,
            _G.c.criterion_id,
            _G.c.rating,
            _G.c.from_cache,
            func.count().label("n"),
        )
        .select_from(source.join(_G, _G.c.response_id == _R.c.id))
        .where(cond, _G.c.rating.is_not(None))
        .group_by(_R.c.experiment_id, _G.c.criterion_id, _G.c.rating, _G.c.from_cache)
    )
    g2 = _G.alias("g2")
    rated = (
        select(_R.c.experiment_id, func.count())
        .select_from(source)
        .where(
            cond,
            _R.c.error.is_(None),
            exists().where(_G.c.response_id == _R.c.id),
            ~exists().where(g2.c.response_id == _R.c.id, g2.c.rating.is_(None)),
        )
        .group_by(_R.c.experiment_id)
    )
    return responses, counts, rated


PRICES = select(
    S.llm_configs.c.id, S.llm_configs.c.input_price_per_mtok, S.llm_configs.c.output_price_per_mtok
).where(S.llm_configs.c.id.in_(_IDS))


def categorical_params(
    filters: dict[str, list[Any]] | None,
) -> tuple[int | None, dict[str, Any]]:
    """The parameters of :func:`categorical_condition` for ``filters`` (column -> allowed
    values) and its number of columns: None without filters, 0 when a column allows nothing
    (then nothing matches)."""
    if filters is None or not filters:
        return None, {}
    if not all(filters.values()):  # a column that allows nothing matches nothing
        return 0, {}
    params: dict[str, Any] = {}
    for k, (column, allowed) in enumerate(filters.items()):
        params[f"cat_key_{k}"] = str(column)
        params[f"cat_values_{k}"] = [str(v) for v in allowed]
    return len(filters), params


async def compute_results(
    conn: Connection,
    experiment: Any,
    *,
    categorical_filters: dict[str, list[Any]] | None = None,
    cache: ResultsCache | None = None,
) -> ExperimentResults | None:
    """Results of one experiment (``experiment`` is its ``experiments`` row)."""
    found = await compute_results_many(
        conn, [experiment], categorical_filters=categorical_filters, cache=cache
    )
    return found[experiment["id"]]


class ResultsCache:
    """Computed results by experiment id, each under the version it was computed for."""

    #: experiments kept per database (least recently used first out)
    MAX_ENTRIES = 4096

    def __init__(self) -> None:
        self._entries: OrderedDict[int, tuple[tuple[Any, ...], ExperimentResults | None]] = (
            OrderedDict()
        )

    @staticmethod
    def version(experiment: Any) -> tuple[Any, ...] | None:
        """What the stored results of ``experiment`` (its row) depend on, or None when they
        depend on the clock (a run that has not ended)."""
        started, finished = experiment["started_at"], experiment["finished_at"]
        running = experiment["generation_task_id"] is not None
        if started is not None and (finished is None or running):
            return None
        return (experiment["results_version"], started, finished, experiment["llm_config_id"])

    def get(self, experiment: Any) -> tuple[bool, ExperimentResults | None]:
        """``(found, results)``."""
        key = self.version(experiment)
        entry = self._entries.get(experiment["id"])
        if key is None or entry is None or entry[0] != key:
            return False, None
        self._entries.move_to_end(experiment["id"])
        return True, entry[1]

    def put(self, experiment: Any, results: ExperimentResults | None) -> None:
        key = self.version(experiment)
        if key is None:
            return
        self._entries[experiment["id"]] = (key, results)
        self._entries.move_to_end(experiment["id"])
        while len(self._entries) > self.MAX_ENTRIES:
            self._entries.popitem(last=False)


_CACHES: weakref.WeakKeyDictionary[Any, ResultsCache] = weakref.WeakKeyDictionary()


def results_cache(store: Any) -> ResultsCache:
    """The results cache of a database object (created on first use)."""
    cache = _CACHES.get(store)
    if cache is None:
        cache = _CACHES[store] = ResultsCache()
    return cache


async def compute_results_many(
    conn: Connection,
    experiments: Sequence[Any],
    *,
    categorical_filters: dict[str, list[Any]] | None = None,
    cache: ResultsCache | None = None,
) -> dict[int, ExperimentResults | None]:
    """Results of several experiments (their ``experiments`` rows), by experiment id.

    A constant number of queries whatever the number of experiments (a list page computes
    the results of all its experiments at once); with ``cache``, only of those whose results
    changed since they were last computed.
    """
    out: dict[int, ExperimentResults | None] = {}
    if cache is not None and not categorical_filters:
        missing = []
        for experiment in experiments:
            found, results = cache.get(experiment)
            if found:
                out[experiment["id"]] = results
            else:
                missing.append(experiment)
    else:
        cache, missing = None, list(experiments)
    for start in range(0, len(missing), 500):
        chunk = missing[start : start + 500]
        computed = await _results_of_chunk(conn, chunk, categorical_filters)
        out.update(computed)
        if cache is not None:
            for experiment in chunk:
                cache.put(experiment, computed[experiment["id"]])
    return out


async def _results_of_chunk(
    conn: Connection,
    experiments: Sequence[Any],
    categorical_filters: dict[str, list[Any]] | None,
) -> dict[int, ExperimentResults | None]:
    ids = [e["id"] for e in experiments]
    columns, filter_params = categorical_params(categorical_filters)
    responses_stmt, counts_stmt, rated_stmt = _statements(columns)
    responses_of: dict[int, list[Any]] = {i: [] for i in ids}
    for r in await conn.fetchall(responses_stmt, {"ids": ids, **filter_params}):
        responses_of[r["experiment_id"]].append(r)
    answered = [i for i in ids if responses_of[i]]
    if not answered:  # nothing generated yet (e.g. just created): no results at all
        return dict.fromkeys(ids)
    params = {"ids": answered, **filter_params}
    counts_of: dict[int, list[Any]] = {i: [] for i in ids}
    for row in await conn.fetchall(counts_stmt, params):
        counts_of[row["experiment_id"]].append(row)
    rated_of: dict[int, int] = {
        row[0]: int(row[1]) for row in await conn.fetchall(rated_stmt, params)
    }
    config_ids = sorted({e["llm_config_id"] for e in experiments} - {None})
    prices: dict[int, Any] = {}
    if config_ids:
        prices = {row["id"]: row for row in await conn.fetchall(PRICES, {"ids": config_ids})}
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
    yes_all = no_all = cached_ratings = 0
    for row in counts:
        n = int(row["n"])
        if row["from_cache"]:
            cached_ratings += n
        bucket = per_criterion.setdefault(row["criterion_id"], [0, 0])
        if row["rating"] == "YES":
            bucket[0] += n
            yes_all += n
        else:
            bucket[1] += n
            no_all += n

    rows_seen = {r["tv_id"] for r in responses}
    by_epoch: dict[int, set[int]] = {}
    for r in responses:
        by_epoch.setdefault(r["epoch"], set()).add(r["tv_id"])
    completed_epochs = sum(1 for tvs in by_epoch.values() if tvs >= rows_seen)

    started = ts_or_none(experiment["started_at"])
    finished = ts_or_none(experiment["finished_at"])
    duration: float | None = None
    if started is not None:
        end = (
            finished if finished is not None and experiment["generation_task_id"] is None else None
        )
        end = end or datetime.now(timezone.utc)
        duration = max(0.0, (end - started).total_seconds())

    input_cost = output_cost = 0.0
    if prices is not None:  # a cached generation cost nothing
        paid = [r for r in ok if not r["from_cache"]]
        paid_in = sum(int(r["input_tokens"] or 0) for r in paid)
        paid_out = sum(int(r["output_tokens"] or 0) for r in paid)
        input_cost = paid_in * float(prices["input_price_per_mtok"] or 0.0) / 1e6
        output_cost = paid_out * float(prices["output_price_per_mtok"] or 0.0) / 1e6

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
        num_cached_responses=sum(1 for r in ok if r["from_cache"]),
        num_cached_ratings=cached_ratings,
    )
