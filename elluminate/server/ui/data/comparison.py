"""The comparison page's data: two experiments' pass rates per criterion side by side and
the rows whose verdicts differ (the rules are in :mod:`elluminate.server.ui.compare`)."""

from __future__ import annotations

from dataclasses import dataclass

from ...store import ui_queries as q
from ..compare import RowKey, RowVerdicts, collect, compare_rows
from .experiments import ExperimentDetail, experiment_detail
from .responses import ResponseRow, response_rows
from .source import Page, Source, page_offset


@dataclass(frozen=True)
class CriterionComparison:
    """A criterion's pass rate in A and B and the difference B - A (None where missing)."""

    text: str
    a: float | None
    b: float | None

    @property
    def difference(self) -> float | None:
        return None if self.a is None or self.b is None else self.b - self.a


@dataclass(frozen=True)
class RowPair:
    """A row whose verdicts differ: both responses and the criteria that differ."""

    a: ResponseRow
    b: ResponseRow
    criteria: frozenset[str]
    generation: bool


@dataclass(frozen=True)
class Comparison:
    a: ExperimentDetail
    b: ExperimentDetail
    criteria: list[CriterionComparison]
    common: list[str]  # criterion texts both experiments rate (the rows are compared on)
    matched: int
    only_a: int
    only_b: int
    rows: Page[RowPair]

    @property
    def overall(self) -> CriterionComparison:
        return CriterionComparison("all criteria", self.a.pass_rate, self.b.pass_rate)


async def compare(source: Source, a_id: int, b_id: int, page: int, size: int) -> Comparison:
    """Experiments A and B side by side: pass rates per criterion and a page of the rows
    whose verdicts differ (see :mod:`elluminate.server.ui.compare` for the rules)."""
    a = await experiment_detail(source, a_id)
    b = await experiment_detail(source, b_id)
    a_rates = {c.text: c.pass_rate for c in a.criteria}
    b_rates = {c.text: c.pass_rate for c in b.criteria}
    texts = list(dict.fromkeys([*a_rates, *b_rates]))
    criteria = [CriterionComparison(t, a_rates.get(t), b_rates.get(t)) for t in texts]
    common = [t for t in texts if t in a_rates and t in b_rates]
    text_by_id = {c.id: c.text for c in [*a.criteria, *b.criteria]}

    async with source.read() as views:

        async def verdicts(experiment_id: int) -> dict[RowKey, RowVerdicts]:
            rows = await q.verdict_rows(views.conn, source.project_id, experiment_id)
            # criteria with only failed ratings are not among the results' criteria
            for cid in {r[4] for r in rows} - {None} - text_by_id.keys():
                assert cid is not None
                criterion = await views.views.criterion(cid, include_deleted=True)
                text_by_id[cid] = criterion.criterion_str
            return collect(rows, text_by_id.__getitem__)

        rows = compare_rows(await verdicts(a_id), await verdicts(b_id), common)
        offset = page_offset(page, size)
        chunk = rows.differing[offset : offset + size]
        ids = [d.a_response_id for d in chunk] + [d.b_response_id for d in chunk]
        found = await q.responses_by_ids(views.conn, source.project_id, ids)
        built = {row.id: row for row in await response_rows(views, await views.responses(found))}
    pairs = [
        RowPair(built[d.a_response_id], built[d.b_response_id], d.criteria, d.generation)
        for d in chunk
        if d.a_response_id in built and d.b_response_id in built
    ]
    return Comparison(
        a=a,
        b=b,
        criteria=criteria,
        common=common,
        matched=rows.matched,
        only_a=rows.only_a,
        only_b=rows.only_b,
        rows=Page(pairs, len(rows.differing), max(1, page), size),
    )
