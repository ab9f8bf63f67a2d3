"""An experiment's responses for display: each with its variables, prompt, answer and
verdicts (judge failures included), and the filtered pages of the experiment page's table."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from elluminate.schemas import PromptResponse

from ...store import experiments as experiment_store
from ...store import ui_queries as q
from ...store.ui_queries import Verdict
from ...store.views_experiments import ExperimentViews
from .. import present
from .source import Page, Source, page_offset


@dataclass(frozen=True)
class RatingCell:
    """A response's verdict on one criterion (``failed``: the judge failed, with ``error``)."""

    criterion_id: int
    criterion_text: str
    verdict: str  # "yes", "no" or "failed"
    reasoning: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class ResponseRow:
    """One response for display."""

    id: int
    epoch: int
    entry_id: int
    variables: list[tuple[str, str]]
    prompt: list[present.Message]
    response: str
    error: str | None
    annotation: str
    ratings: dict[int, RatingCell] = field(default_factory=dict)

    def by_text(self) -> dict[str, RatingCell]:
        """The verdicts keyed by criterion text (how comparisons match criteria)."""
        return {cell.criterion_text: cell for cell in self.ratings.values()}


async def response_rows(
    views: ExperimentViews, responses: Sequence[PromptResponse]
) -> list[ResponseRow]:
    """``responses`` for display, in their order, with their verdicts and judge failures."""
    failed = await q.failed_ratings_of(views.conn, [r.id for r in responses])
    failed_of: dict[int, list[tuple[int, str | None]]] = {}
    for rating in failed:
        failed_of.setdefault(rating.response_id, []).append((rating.criterion_id, rating.error))
    out = []
    for response in responses:
        cells: dict[int, RatingCell] = {}
        for criterion_id, error in failed_of.get(response.id, []):
            criterion = await views.views.criterion(criterion_id, include_deleted=True)
            cells[criterion_id] = RatingCell(
                criterion_id, criterion.criterion_str, "failed", error=error or "judge failed"
            )
        for verdict in response.ratings:
            cells[verdict.criterion.id] = RatingCell(
                verdict.criterion.id,
                verdict.criterion.criterion_str,
                verdict.rating.value.lower(),
                reasoning=verdict.reasoning,
            )
        entry = response.prompt.template_variables
        out.append(
            ResponseRow(
                id=response.id,
                epoch=response.epoch,
                entry_id=entry.id,
                variables=present.variables(entry.input_values),
                prompt=present.messages(response.prompt.messages),
                response=present.response_text(response.messages),
                error=response.error,
                annotation=response.annotation,
                ratings=cells,
            )
        )
    return out


@dataclass(frozen=True)
class ResponseFilters:
    """Filters of an experiment's response table (see ``ui_queries.response_page``)."""

    criterion_id: int | None = None
    verdict: Verdict | None = None
    failed_only: bool = False


async def response_page(
    source: Source, experiment_id: int, filters: ResponseFilters, page: int, size: int
) -> Page[ResponseRow]:
    """One page of an experiment's responses (only that page is loaded)."""
    async with source.read() as views:
        # 404 for another project's experiment
        await experiment_store.get(views.conn, source.project_id, experiment_id)
        found = await q.response_page(
            views.conn,
            source.project_id,
            experiment_id,
            criterion_id=filters.criterion_id,
            verdict=filters.verdict,
            failed_only=filters.failed_only,
            offset=page_offset(page, size),
            limit=size,
        )
        rows = await response_rows(views, await views.responses(found.rows))
    return Page(rows, found.total, max(1, page), size)
