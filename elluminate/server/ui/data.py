"""The web viewer's only way to the data: one adapter over the store, the task engine and
the API's write paths.

Each function opens what it needs on the async store (``store.connect()`` for a page's reads,
one connection per page part; writes go through the API's own functions, which open their
transactions) and closes it before it returns. The viewer's handlers never see SQL, rows,
connections or the database; they get the dataclasses below, built from the read model's
wire structs (:mod:`elluminate.server.store.views`,
:mod:`~elluminate.server.store.views_experiments`, :mod:`~elluminate.server.store.results`)
and from the viewer's own queries (:mod:`elluminate.server.store.ui_queries`). Live progress
comes from the task engine, whose state is in the database (any replica's runs). A
:class:`Source` is scoped to one project: no function reaches another project's objects
(they answer 404, as in the API).

Connections are never nested: on SQLite a read connection holds the store's one connection
until its block ends, so the engine (which opens its own) is asked after the block.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Generic, TypeVar

from elluminate.schemas import (
    Criterion,
    CriterionSet,
    Experiment,
    Project,
    PromptResponse,
    PromptTemplate,
    TaskStatus,
    TemplateVariablesCollection,
)

from ..api.errors import not_found
from ..api.experiments import cancel_run, retry_failed_run
from ..engine.engine import TaskEngine
from ..engine.task_state import TaskState
from ..store import experiments as experiment_store
from ..store import ui_queries as q
from ..store.connection import Store
from ..store.database import loads
from ..store.errors import NotFound
from ..store.projects import Principal, authenticate
from ..store.ui_queries import TaskSummary, Verdict
from ..store.views import Views
from ..store.views_experiments import ExperimentViews
from . import present
from .compare import RowKey, RowVerdicts, collect, compare_rows

T = TypeVar("T")

#: Shown for an experiment that never ran (it may hold uploaded responses).
NOT_RUN = "NOT RUN"


@dataclass(frozen=True)
class Source:
    """Where the data of one signed-in project comes from."""

    db: Store
    engine: TaskEngine
    project_id: int

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[ExperimentViews]:
        """A read connection and a read model on it (its caches live as long as the block)."""
        async with self.db.connect() as conn:
            yield ExperimentViews(conn, self.project_id, store=self.db)


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of items; ``page`` counts from 1."""

    items: list[T]
    total: int
    page: int
    size: int

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.size))

    @property
    def first_index(self) -> int:
        """1-based position of the first item on this page (0 when empty)."""
        return 0 if not self.items else (self.page - 1) * self.size + 1

    @property
    def last_index(self) -> int:
        return self.first_index + len(self.items) - 1 if self.items else 0


def _offset(page: int, size: int) -> int:
    return (max(1, page) - 1) * size


# ---- sign-in ------------------------------------------------------------------------------


async def authenticate_key(db: Store, key: str) -> Principal | None:
    """The project of an API key, or None: the same check as the API's auth middleware."""
    async with db.connect() as conn:
        return await authenticate(conn, key)


async def project(source: Source) -> Project:
    """The signed-in project (with its organization)."""
    async with source.db.connect() as conn:
        return await Views(conn, source.project_id).project()


# ---- experiments --------------------------------------------------------------------------


@dataclass(frozen=True)
class Status:
    """An experiment's state: a task status (``SUCCESS``, ``STARTED``, ``REVOKED``, ...) of
    its latest run, or :data:`NOT_RUN`."""

    value: str
    error: str | None = None

    @property
    def running(self) -> bool:
        return self.value in (TaskStatus.PENDING.value, TaskStatus.STARTED.value)

    @property
    def css(self) -> str:
        return self.value.lower().replace(" ", "-")


@dataclass(frozen=True)
class ExperimentSummary:
    """One line of the experiment list."""

    experiment: Experiment
    status: Status
    responses: int
    failed: int
    pass_rate: float | None
    progress: Progress | None


@dataclass(frozen=True)
class Progress:
    """A run's live counters and log (what the SSE stream then updates)."""

    task_id: str
    status: str
    completed_responses: int
    completed_ratings: int
    total_responses: int
    logs: str
    error_msg: str | None

    @property
    def fraction(self) -> float:
        return 0.0 if not self.total_responses else self.completed_responses / self.total_responses


async def _live_state(source: Source, experiment: Experiment) -> TaskState | None:
    """The stored state of the experiment's live run (``generation_task_id`` is set while
    its task is PENDING or STARTED, on whichever replica), or None. Asked of the engine
    after the page's read block; the run may have ended in between (a terminal state)."""
    task_id = experiment.generation_task_id
    if task_id is None:
        return None
    return await source.engine.get(source.project_id, task_id)


def _status(live: TaskState | None, latest: TaskSummary | None) -> Status:
    if live is not None:
        return Status(live.status, live.error_msg)
    if latest is not None:
        return Status(latest.status, latest.error_msg)
    return Status(NOT_RUN)


def _progress(live: TaskState | None, experiment: Experiment) -> Progress | None:
    """The live counters of a run that has not ended; its log so far is the experiment's
    ``logs`` (the running task's log, read with the experiment)."""
    if live is None or live.terminal:
        return None
    return Progress(
        task_id=live.id,
        status=live.status,
        completed_responses=live.completed_responses,
        completed_ratings=live.completed_ratings,
        total_responses=live.total_responses,
        logs=experiment.logs or "",
        error_msg=live.error_msg,
    )


def _counts(experiment: Experiment) -> tuple[int, int, float | None]:
    """(responses, failed responses, overall pass rate) from the experiment's results."""
    results = experiment.results
    if results is None:
        return 0, 0, None
    ok = len(results.input_tokens_per_response)
    rated = results.mean_all_ratings.yes + results.mean_all_ratings.no
    return (
        ok + results.num_failed_responses,
        results.num_failed_responses,
        results.mean_all_ratings.yes if rated else None,
    )


@dataclass(frozen=True)
class ExperimentFilters:
    """The filters of the experiment list (all optional)."""

    name: str = ""
    template: str = ""
    collection_id: int | None = None


@dataclass(frozen=True)
class FilterOptions:
    templates: list[str]
    collections: list[tuple[int, str]]


async def experiment_list(
    source: Source, filters: ExperimentFilters, page: int, size: int
) -> tuple[Page[ExperimentSummary], FilterOptions]:
    """A page of the project's experiments (newest first) and the filters' choices."""
    async with source.read() as views:
        found = await q.experiments_page(
            views.conn,
            source.project_id,
            name_search=filters.name or None,
            template_name=filters.template or None,
            collection_id=filters.collection_id,
            offset=_offset(page, size),
            limit=size,
        )
        # no ``results`` here: they read every response of every listed experiment; the
        # list's numbers come from two aggregate queries with the same definitions
        experiments = [await views.experiment_from_row(r, with_results=False) for r in found.rows]
        ids = [e.id for e in experiments]
        latest = await q.latest_tasks(views.conn, ids)
        counts = await q.experiment_counts(views.conn, ids)
        names, collections = await q.experiment_filter_options(views.conn, source.project_id)
    items = []
    for experiment in experiments:
        c = counts[experiment.id]
        live = await _live_state(source, experiment)
        items.append(
            ExperimentSummary(
                experiment=experiment,
                status=_status(live, latest.get(experiment.id)),
                responses=c.responses,
                failed=c.failed,
                pass_rate=c.yes / (c.yes + c.no) if c.yes + c.no else None,
                progress=_progress(live, experiment),
            )
        )
    options = FilterOptions(names, collections)
    return Page(items, found.total, max(1, page), size), options


async def experiment_choices(source: Source) -> list[tuple[int, str]]:
    """(id, name) of every experiment of the project, newest first."""
    async with source.db.connect() as conn:
        return await q.experiment_choices(conn, source.project_id)


@dataclass(frozen=True)
class CriterionResult:
    """One criterion of an experiment with its pass rate (None: no verdict yet)."""

    id: int
    text: str
    label: str | None
    pass_rate: float | None


@dataclass(frozen=True)
class ExperimentDetail:
    experiment: Experiment
    status: Status
    criteria: list[CriterionResult]
    progress: Progress | None
    responses: int
    failed: int
    pass_rate: float | None
    input_tokens: int
    output_tokens: int
    generation_seconds: float

    @property
    def can_cancel(self) -> bool:
        return self.progress is not None

    @property
    def can_retry(self) -> bool:
        return self.progress is None and self.status.value != NOT_RUN


async def _criteria_of(views: ExperimentViews, experiment: Experiment) -> list[Criterion]:
    """The experiment's criteria: its set's, then any other criterion it has verdicts on
    (row-specific or since removed from the set)."""
    criteria = list(experiment.criterion_set.criteria or [])
    known = {c.id for c in criteria}
    rated = sorted(experiment.results.mean_rating_by_criterion_id if experiment.results else {})
    for cid in rated:
        if cid not in known:
            criteria.append(await views.views.criterion(cid, include_deleted=True))
            known.add(cid)
    return criteria


async def _criterion_results(
    views: ExperimentViews, experiment: Experiment
) -> list[CriterionResult]:
    means = experiment.results.mean_rating_by_criterion_id if experiment.results else {}
    out = []
    for c in await _criteria_of(views, experiment):
        mean = means.get(c.id)
        out.append(
            CriterionResult(c.id, c.criterion_str, c.label, None if mean is None else mean.yes)
        )
    return out


async def experiment_detail(source: Source, experiment_id: int) -> ExperimentDetail:
    """One experiment with its results per criterion, totals and live progress (404 if it
    is not in the project)."""
    async with source.read() as views:
        experiment = await views.experiment(experiment_id)
        latest = (await q.latest_tasks(views.conn, [experiment_id])).get(experiment_id)
        criteria = await _criterion_results(views, experiment)
    live = await _live_state(source, experiment)
    responses, failed, rate = _counts(experiment)
    results = experiment.results
    return ExperimentDetail(
        experiment=experiment,
        status=_status(live, latest),
        criteria=criteria,
        progress=_progress(live, experiment),
        responses=responses,
        failed=failed,
        pass_rate=rate,
        input_tokens=sum(results.input_tokens_per_response) if results else 0,
        output_tokens=sum(results.output_tokens_per_response) if results else 0,
        generation_seconds=sum(results.duration_seconds_per_response) if results else 0.0,
    )


async def experiment_exists(source: Source, experiment_id: int) -> None:
    """Nothing if the experiment is in the project; 404 otherwise."""
    async with source.db.connect() as conn:
        await experiment_store.get(conn, source.project_id, experiment_id)


async def cancel_experiment(source: Source, experiment_id: int) -> None:
    """Revoke the experiment's run and wait until it ended (409 if nothing runs)."""
    await cancel_run(source.db, source.engine, source.project_id, experiment_id)


async def retry_failed(source: Source, experiment_id: int) -> str | None:
    """Regenerate failed and missing responses, as the API's retry-failed does (with the
    experiment's rating mode, keeping annotated failed responses: 409 if there are any).
    Returns the new task id, or None when nothing was left to do."""
    async with source.db.connect() as conn:
        experiment = await experiment_store.get(conn, source.project_id, experiment_id)
    return await retry_failed_run(
        source.db,
        source.engine,
        source.project_id,
        experiment_id,
        rating_mode=str(experiment["rating_mode"]),
    )


# ---- responses ----------------------------------------------------------------------------


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


async def _rows(views: ExperimentViews, responses: Sequence[PromptResponse]) -> list[ResponseRow]:
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
            offset=_offset(page, size),
            limit=size,
        )
        rows = await _rows(views, await views.responses(found.rows))
    return Page(rows, found.total, max(1, page), size)


# ---- comparison ---------------------------------------------------------------------------


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
        offset = _offset(page, size)
        chunk = rows.differing[offset : offset + size]
        ids = [d.a_response_id for d in chunk] + [d.b_response_id for d in chunk]
        found = await q.responses_by_ids(views.conn, source.project_id, ids)
        built = {row.id: row for row in await _rows(views, await views.responses(found))}
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


# ---- prompt templates ---------------------------------------------------------------------


@dataclass(frozen=True)
class TemplateName:
    name: str
    versions: int
    latest_id: int
    latest_version: int
    updated_at: datetime


async def template_list(source: Source) -> list[TemplateName]:
    """Each template name of the project with its number of versions."""
    async with source.db.connect() as conn:
        found = await q.template_names(conn, source.project_id)
    return [
        TemplateName(r.name, r.versions, r.latest_id, r.latest_version, r.updated_at) for r in found
    ]


@dataclass(frozen=True)
class TemplateDetail:
    template: PromptTemplate
    versions: list[PromptTemplate]
    criterion_set: CriterionSet | None
    experiments: list[tuple[int, str]]
    diff_from: PromptTemplate | None
    diff_to: PromptTemplate | None
    diff: list[present.DiffLine]


async def template_detail(
    source: Source, template_id: int, diff_from: int | None, diff_to: int | None
) -> TemplateDetail:
    """A template version with all versions of its name, the experiments that use it, and
    the text difference between two of its versions (404 outside the project)."""
    async with source.db.connect() as conn:
        views = Views(conn, source.project_id)
        template = await views.prompt_template(template_id, include_deleted=True)
        versions = [
            views.prompt_template_row(r)
            for r in await q.template_versions(conn, source.project_id, template.name)
        ]
        criterion_set = None
        if template.criterion_set_id is not None:
            try:
                criterion_set = await views.criterion_set(template.criterion_set_id)
            except NotFound:  # a deleted set is not shown
                criterion_set = None
        used = await q.experiments_using(conn, source.project_id, "prompt_template_id", template.id)
    by_id = {v.id: v for v in versions}
    old = new = None
    diff: list[present.DiffLine] = []
    if diff_from is not None or diff_to is not None:
        for ident in (diff_from, diff_to):
            if ident is not None and ident not in by_id:
                raise not_found(f"version of prompt template {template.name!r}", ident)
        old = by_id[diff_from] if diff_from is not None else template
        new = by_id[diff_to] if diff_to is not None else template
        diff = present.text_diff(
            present.template_text(old.messages), present.template_text(new.messages)
        )
    return TemplateDetail(
        template=template,
        versions=versions,
        criterion_set=criterion_set,
        experiments=used,
        diff_from=old,
        diff_to=new,
        diff=diff,
    )


# ---- collections --------------------------------------------------------------------------


async def collection_list(source: Source) -> list[TemplateVariablesCollection]:
    """The project's collections (with their entry counts and columns)."""
    async with source.db.connect() as conn:
        views = Views(conn, source.project_id)
        return [await views.collection_row(r) for r in await q.collections(conn, source.project_id)]


@dataclass(frozen=True)
class Entry:
    id: int
    values: list[tuple[str, str]]


@dataclass(frozen=True)
class CollectionDetail:
    collection: TemplateVariablesCollection
    columns: list[str]
    entries: Page[Entry]
    experiments: list[tuple[int, str]]


async def collection_detail(
    source: Source, collection_id: int, page: int, size: int
) -> CollectionDetail:
    """A collection with one page of its entries (404 outside the project)."""
    async with source.db.connect() as conn:
        collection = await Views(conn, source.project_id).collection(
            collection_id, include_deleted=True
        )
        found = await q.collection_entries_page(
            conn, source.project_id, collection_id, offset=_offset(page, size), limit=size
        )
        used = await q.experiments_using(conn, source.project_id, "collection_id", collection_id)
    entries = [Entry(r["id"], present.variables(loads(r["input_values"]))) for r in found.rows]
    declared = [c.name for c in collection.columns or [] if c.name is not None]
    return CollectionDetail(
        collection=collection,
        columns=present.column_names([e.values for e in entries], declared),
        entries=Page(entries, found.total, max(1, page), size),
        experiments=used,
    )


# ---- criterion sets -----------------------------------------------------------------------


async def criterion_set_list(source: Source) -> list[CriterionSet]:
    """The project's criterion sets with their criteria."""
    async with source.db.connect() as conn:
        views = Views(conn, source.project_id)
        return [
            await views.criterion_set_row(r)
            for r in await q.criterion_sets(conn, source.project_id)
        ]


@dataclass(frozen=True)
class CriterionSetDetail:
    criterion_set: CriterionSet
    experiments: list[tuple[int, str]]


async def criterion_set_detail(source: Source, set_id: int) -> CriterionSetDetail:
    """A criterion set with its criteria and linked templates (404 outside the project)."""
    async with source.db.connect() as conn:
        cset = await Views(conn, source.project_id).criterion_set(set_id, include_deleted=True)
        used = await q.experiments_using(conn, source.project_id, "criterion_set_id", set_id)
    return CriterionSetDetail(cset, used)


__all__ = [
    "NOT_RUN",
    "Comparison",
    "CriterionResult",
    "ExperimentDetail",
    "ExperimentFilters",
    "ExperimentSummary",
    "Page",
    "Progress",
    "ResponseFilters",
    "ResponseRow",
    "Source",
    "Status",
    "authenticate_key",
]
