"""The read-only sample views (CONTRACT.md 4.9, 7.15): response samples of one experiment and
comparison samples of two (the experiment map, built on the same summaries, is in
:mod:`.experiment_map`).

A *sample* is one input row (collection entry) of an experiment with its responses (one per
epoch). Each view reads one summary per response (:func:`summary_statement`: the stored
generation metadata and the response's rating counts, as correlated counts on the ratings
index), filtered in SQL, and groups, scores and sorts the rows in Python. Definitions:

* a response's verdicts are its successful ratings (YES / NO); a failed rating (judge error)
  is neither, and a response whose generation failed (``error``) has none;
* a *perfect* response has no error, at least one rating, and only YES ratings; a perfect row
  has only perfect responses;
* a row's *pass rate* is its YES ratings over its YES and NO ratings (None when unrated); its
  token counts and duration are the means over its responses that have them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from sqlalchemy import Select, and_, bindparam, exists, false, func, select

from elluminate.schemas import ResponsesSample, ResponsesSampleSortBy

from . import schema as S
from .connection import Connection
from .responses import LIST_RANGES
from .results import categorical_condition, categorical_params

_R, _G, _TV, _E = S.responses, S.ratings, S.template_variables, S.experiments
_IDS: Any = bindparam("ids", expanding=True)
_CRITERIA: Any = bindparam("criterion_ids", expanding=True)

#: The range filters of the samples view: query key -> (column, operator), as for
#: ``GET @/responses`` (bounds on the stored generation metadata).
RANGES = {key: (column, op) for key, column, op in LIST_RANGES}
FILTER_SAMPLES_BY = ("improved", "regressed")


# ---- the per-response summary ----------------------------------------------------------------


def _count(*conditions: Any, criteria: bool) -> Any:
    """Correlated count of the response's ratings matching ``conditions``."""
    where = [_G.c.response_id == _R.c.id, *conditions]
    if criteria:
        where.append(_G.c.criterion_id.in_(_CRITERIA))
    return select(func.count()).select_from(_G).where(*where).correlate(_R).scalar_subquery()


@lru_cache(maxsize=256)
def summary_statement(
    scope: str,
    *,
    ranges: tuple[str, ...] = (),
    annotated: bool = False,
    verdicts: int = 0,
    criteria: bool = False,
    categorical: int | None = None,
) -> Select[Any]:
    """One row per response: metadata and rating counts (``yes``, ``no``, ``rated``: all rating
    rows, failed ones included), in (row, epoch, id) order; memoised per shape.

    ``scope``: ``"experiment"`` (``:experiment_id``), ``"experiments"`` (``:ids``) or
    ``"rows"`` (``:experiment_id`` and its rows ``:ids``). Filters: ``ranges`` names keys of
    :data:`RANGES` (parameters of the same names); ``annotated`` keeps annotated responses;
    ``verdicts`` pairs ``:verdict_criterion_k`` / ``:verdict_value_k`` that the response's
    rating must match (all of them); ``criteria`` counts only the ratings of
    ``:criterion_ids``; ``categorical`` columns filter the rows
    (:func:`~.results.categorical_condition`).
    """
    source: Any = _R
    where: list[Any] = []
    if scope == "experiment":
        where.append(_R.c.experiment_id == bindparam("experiment_id"))
    elif scope == "experiments":
        where.append(_R.c.experiment_id.in_(_IDS))
    elif scope == "rows":
        where += [
            _R.c.experiment_id == bindparam("experiment_id"),
            _R.c.template_variables_id.in_(_IDS),
        ]
    else:  # pragma: no cover - a programming error
        raise ValueError(f"unknown scope {scope!r}")
    for key in ranges:
        column, op = RANGES[key]
        col = _R.c[column]
        where.append(col >= bindparam(key) if op == ">=" else col <= bindparam(key))
    if annotated:
        where.append(_R.c.annotation != "")
    g = _G.alias("verdict")
    for k in range(verdicts):
        where.append(
            exists().where(
                g.c.response_id == _R.c.id,
                g.c.criterion_id == bindparam(f"verdict_criterion_{k}"),
                g.c.rating == bindparam(f"verdict_value_{k}"),
            )
        )
    if categorical is not None:
        source = _R.join(_TV, _TV.c.id == _R.c.template_variables_id)
        where.append(categorical_condition(categorical) if categorical else false())
    return (
        select(
            _R.c.id,
            _R.c.experiment_id,
            _R.c.template_variables_id.label("row_id"),
            _R.c.epoch,
            _R.c.error.is_not(None).label("has_error"),
            _R.c.trajectory.is_not(None).label("has_trajectory"),
            _R.c.llm_config_id,
            _R.c.input_tokens,
            _R.c.output_tokens,
            _R.c.duration_seconds,
            _count(_G.c.rating == "YES", criteria=criteria).label("yes"),
            _count(_G.c.rating == "NO", criteria=criteria).label("no"),
            _count(criteria=criteria).label("rated"),
        )
        .select_from(source)
        .where(and_(*where))
        .order_by(_R.c.template_variables_id, _R.c.epoch, _R.c.id)
    )


@dataclass(frozen=True, slots=True)
class Summary:
    """One response as the views see it."""

    id: int
    experiment_id: int
    row_id: int
    epoch: int
    has_error: bool
    has_trajectory: bool
    llm_config_id: int | None
    input_tokens: int | None
    output_tokens: int | None
    duration_seconds: float | None
    yes: int
    no: int
    rated: int

    @property
    def perfect(self) -> bool:
        return not self.has_error and self.rated > 0 and self.yes == self.rated


def _summary(row: Any) -> Summary:
    return Summary(
        id=int(row["id"]),
        experiment_id=int(row["experiment_id"]),
        row_id=int(row["row_id"]),
        epoch=int(row["epoch"]),
        has_error=bool(row["has_error"]),
        has_trajectory=bool(row["has_trajectory"]),
        llm_config_id=row["llm_config_id"],
        input_tokens=None if row["input_tokens"] is None else int(row["input_tokens"]),
        output_tokens=None if row["output_tokens"] is None else int(row["output_tokens"]),
        duration_seconds=(
            None if row["duration_seconds"] is None else float(row["duration_seconds"])
        ),
        yes=int(row["yes"]),
        no=int(row["no"]),
        rated=int(row["rated"]),
    )


async def summaries_of(
    conn: Connection, stmt: Select[Any], params: dict[str, Any]
) -> list[Summary]:
    """The summaries a :func:`summary_statement` selects."""
    return [_summary(row) for row in await conn.fetchall(stmt, params)]


@dataclass
class Row:
    """One input row of one experiment with its responses (in epoch order)."""

    experiment_id: int
    row_id: int
    responses: list[Summary] = field(default_factory=list)

    def sample(self) -> ResponsesSample:
        return ResponsesSample(
            experiment_id=self.experiment_id,
            template_variables_id=self.row_id,
            prompt_response_ids=[r.id for r in self.responses],
        )

    @property
    def perfect(self) -> bool:
        return all(r.perfect for r in self.responses)

    @property
    def pass_rate(self) -> float | None:
        yes = sum(r.yes for r in self.responses)
        verdicts = yes + sum(r.no for r in self.responses)
        return yes / verdicts if verdicts else None

    def mean(self, attribute: str) -> float | None:
        values = [v for r in self.responses if (v := getattr(r, attribute)) is not None]
        return sum(values) / len(values) if values else None


def group_rows(summaries: Sequence[Summary]) -> dict[tuple[int, int], Row]:
    """Responses grouped by (experiment, row), in the summaries' order."""
    rows: dict[tuple[int, int], Row] = {}
    for s in summaries:
        key = (s.experiment_id, s.row_id)
        row = rows.get(key)
        if row is None:
            row = rows[key] = Row(s.experiment_id, s.row_id)
        row.responses.append(s)
    return rows


# ---- response samples ------------------------------------------------------------------------

#: sort_by -> (what a row is sorted by, descending)
SORT_KEYS: dict[ResponsesSampleSortBy, tuple[str, bool]] = {
    ResponsesSampleSortBy.RATING_ASC: ("pass_rate", False),
    ResponsesSampleSortBy.RATING_DESC: ("pass_rate", True),
    ResponsesSampleSortBy.INPUT_TOKENS_ASC: ("input_tokens", False),
    ResponsesSampleSortBy.INPUT_TOKENS_DESC: ("input_tokens", True),
    ResponsesSampleSortBy.OUTPUT_TOKENS_ASC: ("output_tokens", False),
    ResponsesSampleSortBy.OUTPUT_TOKENS_DESC: ("output_tokens", True),
    ResponsesSampleSortBy.DURATION_ASC: ("duration_seconds", False),
    ResponsesSampleSortBy.DURATION_DESC: ("duration_seconds", True),
}


@dataclass(frozen=True)
class SampleFilters:
    """What ``GET @/responses/samples`` asks for (already validated).

    ``ranges``: bounds by :data:`RANGES` key; ``verdicts``: criterion id -> ``"YES"``/``"NO"``
    that the response's rating must be; ``annotated_only``: responses with an annotation;
    ``exclude_perfect``: drop perfect rows; ``sort_by``: the order of the rows (default: by
    row id).
    """

    ranges: dict[str, float | int] = field(default_factory=dict)
    verdicts: dict[int, str] = field(default_factory=dict)
    annotated_only: bool = False
    exclude_perfect: bool = False
    sort_by: ResponsesSampleSortBy | None = None


def _row_value(row: Row, what: str) -> float | None:
    return row.pass_rate if what == "pass_rate" else row.mean(what)


def sort_rows(rows: list[Row], sort_by: ResponsesSampleSortBy | None) -> list[Row]:
    """Rows in ``sort_by`` order; rows without a value last, ties by row id."""
    rows = sorted(rows, key=lambda r: r.row_id)
    if sort_by is None:
        return rows
    what, descending = SORT_KEYS[sort_by]
    valued = [(v, r) for r in rows if (v := _row_value(r, what)) is not None]
    valued.sort(key=lambda pair: pair[0], reverse=descending)  # stable: ties keep row order
    return [r for _, r in valued] + [r for r in rows if _row_value(r, what) is None]


async def response_samples(
    conn: Connection, experiment_id: int, filters: SampleFilters
) -> list[ResponsesSample]:
    """The samples of an experiment: its rows with the responses that pass the filters
    (rows left without responses are dropped), in the order asked for."""
    ranges = tuple(sorted(filters.ranges))
    verdicts = sorted(filters.verdicts.items())
    stmt = summary_statement(
        "experiment", ranges=ranges, annotated=filters.annotated_only, verdicts=len(verdicts)
    )
    params: dict[str, Any] = {"experiment_id": experiment_id, **filters.ranges}
    for k, (criterion_id, value) in enumerate(verdicts):
        params[f"verdict_criterion_{k}"] = criterion_id
        params[f"verdict_value_{k}"] = value
    rows = list(group_rows(await summaries_of(conn, stmt, params)).values())
    if filters.exclude_perfect:
        rows = [r for r in rows if not r.perfect]
    return [r.sample() for r in sort_rows(rows, filters.sort_by)]


# ---- comparison samples ----------------------------------------------------------------------


def compare(a: Row, b: Row) -> int:
    """+1 if B passes more criteria per response on the row than A, -1 if fewer, else 0."""
    # yes_b / n_b against yes_a / n_a, in integers
    left = sum(r.yes for r in b.responses) * len(a.responses)
    right = sum(r.yes for r in a.responses) * len(b.responses)
    return (left > right) - (left < right)


async def comparison_samples(
    conn: Connection,
    experiment_a_id: int,
    experiment_b_id: int,
    *,
    filter_samples_by: str | None = None,
    criterion_ids: Sequence[int] | None = None,
    categorical_filters: dict[str, list[str]] | None = None,
) -> list[ResponsesSample]:
    """The rows both experiments answered, each as A's sample then B's (one sample when A is
    B), by row id.

    ``filter_samples_by``: ``"improved"`` keeps rows where B passes more criteria per response
    than A (the mean number of YES ratings over the row's responses; a failed response passes
    none), ``"regressed"`` fewer. ``criterion_ids`` counts only those criteria;
    ``categorical_filters`` keeps rows whose values are among the allowed ones (OR within a
    column, AND across columns).
    """
    if filter_samples_by is not None and filter_samples_by not in FILTER_SAMPLES_BY:
        raise ValueError(f"filter_samples_by must be one of {FILTER_SAMPLES_BY}")
    columns, params = categorical_params(categorical_filters)
    stmt = summary_statement(
        "experiments", criteria=criterion_ids is not None, categorical=columns
    )
    params["ids"] = sorted({experiment_a_id, experiment_b_id})
    if criterion_ids is not None:
        params["criterion_ids"] = list(criterion_ids) or [0]  # no criterion: count nothing
    rows = group_rows(await summaries_of(conn, stmt, params))
    out: list[ResponsesSample] = []
    for row_id in sorted({r for e, r in rows if e == experiment_a_id}):
        a, b = rows.get((experiment_a_id, row_id)), rows.get((experiment_b_id, row_id))
        if a is None or b is None:
            continue
        if filter_samples_by is not None:
            wanted = 1 if filter_samples_by == "improved" else -1
            if compare(a, b) != wanted:
                continue
        out.append(a.sample())
        if b is not a:
            out.append(b.sample())
    return out


CRITERIA_OF_PROJECT = select(S.criteria.c.id).where(
    S.criteria.c.id.in_(_IDS), S.criteria.c.project_id == bindparam("pid")
)


async def unknown_criteria(conn: Connection, project_id: int, ids: Sequence[int]) -> list[int]:
    """The ids among ``ids`` that are no criterion of the project (deleted ones count)."""
    wanted = sorted(set(ids))
    found: set[int] = set()
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        params = {"ids": chunk, "pid": project_id}
        found.update(int(r[0]) for r in await conn.fetchall(CRITERIA_OF_PROJECT, params))
    return [i for i in wanted if i not in found]
