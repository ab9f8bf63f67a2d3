"""The experiment pages' data: the list, one experiment's results and live progress, and
the two actions on a run (cancel, retry the failed responses)."""

from __future__ import annotations

from dataclasses import dataclass

from elluminate.schemas import Criterion, Experiment, TaskStatus

from ...api.experiment_runs import cancel_run, retry_failed_run
from ...engine.task_state import TaskState
from ...store import experiments as experiment_store
from ...store import ui_queries as q
from ...store.ui_queries import TaskSummary
from ...store.views_experiments import ExperimentViews
from .source import Page, Source, page_offset

#: Shown for an experiment that never ran (it may hold uploaded responses).
NOT_RUN = "NOT RUN"


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
            offset=page_offset(page, size),
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
