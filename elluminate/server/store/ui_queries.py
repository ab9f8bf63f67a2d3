"""Read queries of the web viewer (``elluminate.server.ui``) that the API does not need.

Each function is one small, project-scoped read on a :class:`~.connection.Connection` (the
caller opens it: ``async with store.connect() as conn``); statements are SQLAlchemy Core,
built once (module constants, or memoised per shape where the filters vary), and run on
SQLite and PostgreSQL alike. The rows they answer are turned into wire structs by the read
model (:class:`~elluminate.server.store.views.Views`,
:class:`~elluminate.server.store.views_experiments.ExperimentViews`). The viewer reaches them
only through its adapter ``elluminate.server.ui.data``.

Verdicts are stored as ``ratings.rating``: ``'YES'``, ``'NO'``, or NULL for a failed rating
(the judge's error in ``ratings.error``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any, Literal

from sqlalchemy import Select, bindparam, case, func, select

from . import schema as S
from .common import like_escaped
from .connection import Connection
from .database import ts
from .views_experiments import RESPONSE_COLUMNS

#: Response filters by verdict: a YES / NO rating, a failed rating (judge error), no rating.
Verdict = Literal["yes", "no", "failed", "unrated"]
VERDICTS: tuple[Verdict, ...] = ("yes", "no", "failed", "unrated")

_E, _R, _P, _G, _T = S.experiments, S.responses, S.prompts, S.ratings, S.tasks
_PT, _C, _TV, _CS = S.prompt_templates, S.collections, S.template_variables, S.criterion_sets
_PID: Any = bindparam("pid")
_EID: Any = bindparam("eid")
_IDS: Any = bindparam("ids", expanding=True)
_LIMIT: Any = bindparam("page_limit")
_OFFSET: Any = bindparam("page_offset")


@dataclass(frozen=True)
class Page:
    """One page of rows and the number of rows over all pages."""

    rows: list[Any]
    total: int


async def _page(
    conn: Connection,
    stmts: tuple[Select[Any], Select[Any]],
    params: dict[str, Any],
    offset: int,
    limit: int,
) -> Page:
    """Run a memoised ``(rows with LIMIT/OFFSET, COUNT)`` pair of statements."""
    rows_stmt, count_stmt = stmts
    total = int(await conn.fetchval(count_stmt, params) or 0)
    rows = await conn.fetchall(rows_stmt, {**params, "page_limit": limit, "page_offset": offset})
    return Page(rows, total)


def _paged(stmt: Select[Any], count: Select[Any] | None = None) -> tuple[Select[Any], Select[Any]]:
    """A page of ``stmt`` and its row count (``count``: a cheaper statement counting the
    same rows; by default ``COUNT(*)`` over ``stmt``)."""
    if count is None:
        count = select(func.count()).select_from(stmt.order_by(None).subquery())
    return stmt.limit(_LIMIT).offset(_OFFSET), count


# ---- experiments --------------------------------------------------------------------------


@cache
def _experiments_stmts(
    search: bool, template: bool, collection: bool
) -> tuple[Select[Any], Select[Any]]:
    stmt = select(_E).where(_E.c.project_id == _PID)
    if search:
        # ``lower() LIKE lower()``: case-insensitive on both databases (SQLite's LIKE alone
        # ignores ASCII case, PostgreSQL's does not)
        stmt = stmt.where(_E.c.name.icontains(bindparam("search"), escape="\\"))
    if template:
        stmt = stmt.where(
            _E.c.prompt_template_id.in_(
                select(_PT.c.id).where(
                    _PT.c.project_id == _PID, _PT.c.name == bindparam("template")
                )
            )
        )
    if collection:
        stmt = stmt.where(_E.c.collection_id == bindparam("collection_id"))
    return _paged(stmt.order_by(_E.c.created_at.desc(), _E.c.id.desc()))


async def experiments_page(
    conn: Connection,
    project_id: int,
    *,
    name_search: str | None = None,
    template_name: str | None = None,
    collection_id: int | None = None,
    offset: int = 0,
    limit: int = 25,
) -> Page:
    """The project's experiments (full rows), newest first; ``name_search`` is a substring
    of the name in any case (``%`` and ``_`` match themselves), ``template_name`` matches
    every version of a template, ``collection_id`` one collection."""
    params: dict[str, Any] = {"pid": project_id}
    if name_search:
        params["search"] = like_escaped(name_search)
    if template_name:
        params["template"] = template_name
    if collection_id is not None:
        params["collection_id"] = collection_id
    stmts = _experiments_stmts(bool(name_search), bool(template_name), collection_id is not None)
    return await _page(conn, stmts, params, offset, limit)


TEMPLATE_NAMES_USED = (
    select(_PT.c.name)
    .distinct()
    .join(_E, _E.c.prompt_template_id == _PT.c.id)
    .where(_E.c.project_id == _PID)
    .order_by(_PT.c.name)
)
COLLECTIONS_USED = (
    select(_C.c.id, _C.c.name)
    .distinct()
    .join(_E, _E.c.collection_id == _C.c.id)
    .where(_E.c.project_id == _PID)
    .order_by(_C.c.name, _C.c.id)
)


async def experiment_filter_options(
    conn: Connection, project_id: int
) -> tuple[list[str], list[tuple[int, str]]]:
    """The template names and the collections ``(id, name)`` the project's experiments
    use, for the filters of the experiment list."""
    params = {"pid": project_id}
    names = [str(r[0]) for r in await conn.fetchall(TEMPLATE_NAMES_USED, params)]
    collections = [(int(r[0]), str(r[1])) for r in await conn.fetchall(COLLECTIONS_USED, params)]
    return names, collections


EXPERIMENT_CHOICES = (
    select(_E.c.id, _E.c.name)
    .where(_E.c.project_id == _PID)
    .order_by(_E.c.created_at.desc(), _E.c.id.desc())
)


async def experiment_choices(conn: Connection, project_id: int) -> list[tuple[int, str]]:
    """``(id, name)`` of every experiment of the project, newest first (for pickers)."""
    rows = await conn.fetchall(EXPERIMENT_CHOICES, {"pid": project_id})
    return [(int(r[0]), str(r[1])) for r in rows]


@dataclass(frozen=True)
class TaskSummary:
    """The latest run of an experiment: its task id, status and error message."""

    id: str
    status: str
    error_msg: str | None


EXPERIMENT_TASKS = (
    select(_T.c.experiment_id, _T.c.id, _T.c.status, _T.c.error_msg)
    .where(_T.c.kind == "experiment", _T.c.experiment_id.in_(_IDS))
    .order_by(_T.c.created_at, _T.c.id)
)


async def latest_tasks(conn: Connection, experiment_ids: Sequence[int]) -> dict[int, TaskSummary]:
    """The most recent ``experiment`` task of each experiment that has one, by experiment
    id (a list page: a few dozen ids)."""
    if not experiment_ids:
        return {}
    rows = await conn.fetchall(EXPERIMENT_TASKS, {"ids": list(experiment_ids)})
    # creation order: the last one of each experiment wins
    return {r[0]: TaskSummary(r[1], r[2], r[3]) for r in rows}


@dataclass(frozen=True)
class ExperimentCounts:
    """The list's numbers of one experiment, by the definitions of ``ExperimentResults``
    (:mod:`elluminate.server.store.results`): every response, those whose generation failed,
    and the successful ratings' YES and NO (the pass rate is ``yes / (yes + no)``, which is
    ``mean_all_ratings.yes``)."""

    responses: int = 0
    failed: int = 0
    yes: int = 0
    no: int = 0


RESPONSE_COUNTS = (
    select(_R.c.experiment_id, func.count(), func.count(_R.c.error))  # COUNT(col): non-NULL
    .where(_R.c.experiment_id.in_(_IDS))
    .group_by(_R.c.experiment_id)
)
VERDICT_COUNTS = (
    select(
        _R.c.experiment_id,
        func.count(case((_G.c.rating == "YES", 1))),  # CASE without ELSE: NULL, not counted
        func.count(case((_G.c.rating == "NO", 1))),
    )
    .select_from(_G.join(_R, _R.c.id == _G.c.response_id))
    .where(_R.c.experiment_id.in_(_IDS))
    .group_by(_R.c.experiment_id)
)


async def experiment_counts(
    conn: Connection, experiment_ids: Sequence[int]
) -> dict[int, ExperimentCounts]:
    """:class:`ExperimentCounts` of several experiments in two aggregate queries (a list
    page of large experiments stays cheap: no response row is read into Python)."""
    if not experiment_ids:
        return {}
    params = {"ids": list(experiment_ids)}
    counts = {
        r[0]: (int(r[1]), int(r[2] or 0)) for r in await conn.fetchall(RESPONSE_COUNTS, params)
    }
    verdicts = {
        r[0]: (int(r[1] or 0), int(r[2] or 0)) for r in await conn.fetchall(VERDICT_COUNTS, params)
    }
    return {
        eid: ExperimentCounts(*counts.get(eid, (0, 0)), *verdicts.get(eid, (0, 0)))
        for eid in experiment_ids
    }


# ---- responses ----------------------------------------------------------------------------


def _verdict_condition(criterion: bool, verdict: Verdict | None) -> Any:
    """The response filter as ``responses.id [NOT] IN (ratings of the experiment ...)``
    (parameters ``:eid``, ``:criterion_id``, ``:rating``), or None for no filter.

    Not a correlated ``EXISTS``: with a criterion in it, SQLite without statistics (a
    database before its first ``ANALYZE``) drives that through the criterion index for every
    response, which is quadratic (a minute for 10,000 responses); this form reads the
    experiment's ratings once, whatever the plan.
    """
    x = _R.alias("x")
    sub = (
        select(_G.c.response_id)
        .join(x, x.c.id == _G.c.response_id)
        .where(x.c.experiment_id == _EID)
    )
    if criterion:
        sub = sub.where(_G.c.criterion_id == bindparam("criterion_id"))
    if verdict in ("yes", "no"):
        return _R.c.id.in_(sub.where(_G.c.rating == bindparam("rating")))
    if verdict == "failed":
        return _R.c.id.in_(sub.where(_G.c.rating.is_(None)))
    if verdict == "unrated":
        return _R.c.id.not_in(sub)
    if criterion:
        return _R.c.id.in_(sub)
    return None


@cache
def _response_stmts(
    criterion: bool, verdict: Verdict | None, failed_only: bool
) -> tuple[Select[Any], Select[Any]]:
    conditions = [_R.c.experiment_id == _EID, _R.c.project_id == _PID]
    condition = _verdict_condition(criterion, verdict)
    if condition is not None:
        conditions.append(condition)
    if failed_only:
        conditions.append(_R.c.error.is_not(None))
    stmt = select(*RESPONSE_COLUMNS).join(_P, _P.c.id == _R.c.prompt_id).where(*conditions)
    # every response has its prompt (a NOT NULL foreign key): count without the join
    count = select(func.count()).select_from(_R).where(*conditions)
    return _paged(stmt.order_by(_R.c.id), count)


async def response_page(
    conn: Connection,
    project_id: int,
    experiment_id: int,
    *,
    criterion_id: int | None = None,
    verdict: Verdict | None = None,
    failed_only: bool = False,
    offset: int = 0,
    limit: int = 50,
) -> Page:
    """One page of an experiment's responses in id order, selected with
    :data:`~elluminate.server.store.views_experiments.RESPONSE_COLUMNS` (for
    ``ExperimentViews.responses``).

    ``verdict`` with ``criterion_id``: responses with that verdict on that criterion (``unrated``:
    without a rating of it); without: with that verdict on any criterion (``unrated``: without
    any rating). ``criterion_id`` alone: responses rated (or failed) on that criterion.
    ``failed_only``: responses whose generation failed.
    """
    params: dict[str, Any] = {"eid": experiment_id, "pid": project_id}
    if criterion_id is not None:
        params["criterion_id"] = criterion_id
    if verdict in ("yes", "no"):
        params["rating"] = verdict.upper()
    stmts = _response_stmts(criterion_id is not None, verdict, failed_only)
    return await _page(conn, stmts, params, offset, limit)


RESPONSES_OF_PROJECT = (
    select(*RESPONSE_COLUMNS)
    .join(_P, _P.c.id == _R.c.prompt_id)
    .where(_R.c.project_id == _PID, _R.c.id.in_(_IDS))
    .order_by(_R.c.id)
)


async def responses_by_ids(
    conn: Connection, project_id: int, response_ids: Sequence[int]
) -> list[Any]:
    """Responses of the project by id (RESPONSE_COLUMNS), in id order (a page's worth)."""
    if not response_ids:
        return []
    return await conn.fetchall(
        RESPONSES_OF_PROJECT, {"pid": project_id, "ids": sorted(set(response_ids))}
    )


@dataclass(frozen=True)
class FailedRating:
    """A rating whose judge call failed (no verdict)."""

    response_id: int
    criterion_id: int
    error: str | None
    raw_text: str | None


FAILED_RATINGS = (
    select(_G.c.response_id, _G.c.criterion_id, _G.c.error, _G.c.raw_text)
    .where(_G.c.response_id.in_(_IDS), _G.c.rating.is_(None))
    .order_by(_G.c.response_id, _G.c.id)
)


async def failed_ratings_of(conn: Connection, response_ids: Sequence[int]) -> list[FailedRating]:
    """The failed ratings of the given responses (a page's worth); the read model leaves
    them out of ``PromptResponse.ratings``."""
    if not response_ids:
        return []
    rows = await conn.fetchall(FAILED_RATINGS, {"ids": sorted(set(response_ids))})
    return [FailedRating(r[0], r[1], r[2], r[3]) for r in rows]


#: ``(response_id, entry_id, epoch, failed, criterion_id, rating)``
VerdictRow = tuple[int, int | None, int, bool, int | None, str | None]
VERDICT_ROWS = (
    select(
        _R.c.id,
        _R.c.template_variables_id,
        _R.c.epoch,
        _R.c.error.is_not(None).label("failed"),
        _G.c.criterion_id,
        _G.c.rating,
    )
    .select_from(_R.outerjoin(_G, _G.c.response_id == _R.c.id))
    .where(_R.c.experiment_id == _EID, _R.c.project_id == _PID)
    .order_by(_R.c.id, _G.c.id)
)


async def verdict_rows(conn: Connection, project_id: int, experiment_id: int) -> list[VerdictRow]:
    """Every response of an experiment with each of its ratings, as rows that unpack like
    :data:`VerdictRow` tuples: ``failed`` is true (1 on SQLite) when generation failed,
    ``rating`` NULL for a failed rating, and a response without ratings comes once with
    ``criterion_id`` NULL. Response order. Small columns only: comparing two experiments of
    10,000 rows reads 2 x 30,000 of these."""
    rows: list[VerdictRow] = await conn.fetchall(
        VERDICT_ROWS, {"eid": experiment_id, "pid": project_id}
    )
    return rows


# ---- templates, collections, criterion sets ------------------------------------------------


@dataclass(frozen=True)
class TemplateNameRow:
    """One template name of a project: its live versions, latest version and id, and when
    its latest change was."""

    name: str
    versions: int
    latest_id: int
    latest_version: int
    updated_at: datetime


_latest = _PT.alias("latest")
_LATEST_ID = (
    select(_latest.c.id)
    .where(
        _latest.c.project_id == _PID,
        _latest.c.name == _PT.c.name,  # correlated with the grouped name
        _latest.c.deleted_at.is_(None),
    )
    .order_by(_latest.c.version.desc())
    .limit(1)
    .scalar_subquery()
)
TEMPLATE_NAMES = (
    select(
        _PT.c.name,
        func.count().label("versions"),
        func.max(_PT.c.version).label("latest_version"),
        _LATEST_ID.label("latest_id"),
        func.max(_PT.c.updated_at).label("updated_at"),
    )
    .where(_PT.c.project_id == _PID, _PT.c.deleted_at.is_(None))
    .group_by(_PT.c.name)
    .order_by(_PT.c.name)
)


async def template_names(conn: Connection, project_id: int) -> list[TemplateNameRow]:
    """One row per live template name of the project, by name."""
    return [
        TemplateNameRow(
            name=r["name"],
            versions=int(r["versions"]),
            latest_id=int(r["latest_id"]),
            latest_version=int(r["latest_version"]),
            updated_at=ts(r["updated_at"]),
        )
        for r in await conn.fetchall(TEMPLATE_NAMES, {"pid": project_id})
    ]


TEMPLATE_VERSIONS = (
    select(_PT)
    .where(_PT.c.project_id == _PID, _PT.c.name == bindparam("name"), _PT.c.deleted_at.is_(None))
    .order_by(_PT.c.version)
)


async def template_versions(conn: Connection, project_id: int, name: str) -> list[Any]:
    """Every live version of the template ``name``, oldest first (full rows)."""
    return await conn.fetchall(TEMPLATE_VERSIONS, {"pid": project_id, "name": name})


LIVE_COLLECTIONS = (
    select(_C)
    .where(_C.c.project_id == _PID, _C.c.deleted_at.is_(None))
    .order_by(_C.c.name, _C.c.id)
)


async def collections(conn: Connection, project_id: int) -> list[Any]:
    """The project's live collections (full rows), by name."""
    return await conn.fetchall(LIVE_COLLECTIONS, {"pid": project_id})


ENTRIES = _paged(
    select(_TV)
    .where(
        _TV.c.collection_id == bindparam("collection_id"),
        _TV.c.deleted_at.is_(None),
        _TV.c.collection_id.in_(select(_C.c.id).where(_C.c.project_id == _PID)),
    )
    .order_by(_TV.c.id)
)


async def collection_entries_page(
    conn: Connection, project_id: int, collection_id: int, *, offset: int = 0, limit: int = 50
) -> Page:
    """One page of a collection's live entries (full ``template_variables`` rows), id order."""
    params = {"collection_id": collection_id, "pid": project_id}
    return await _page(conn, ENTRIES, params, offset, limit)


LIVE_CRITERION_SETS = (
    select(_CS)
    .where(_CS.c.project_id == _PID, _CS.c.deleted_at.is_(None))
    .order_by(_CS.c.name, _CS.c.id)
)


async def criterion_sets(conn: Connection, project_id: int) -> list[Any]:
    """The project's live criterion sets (full rows), by name."""
    return await conn.fetchall(LIVE_CRITERION_SETS, {"pid": project_id})


UsedBy = Literal["prompt_template_id", "collection_id", "criterion_set_id"]
EXPERIMENTS_USING: dict[str, Select[Any]] = {
    column: select(_E.c.id, _E.c.name)
    .where(_E.c.project_id == _PID, _E.c[column] == bindparam("ident"))
    .order_by(_E.c.created_at.desc(), _E.c.id.desc())
    for column in ("prompt_template_id", "collection_id", "criterion_set_id")
}


async def experiments_using(
    conn: Connection, project_id: int, column: UsedBy, ident: int
) -> list[tuple[int, str]]:
    """``(id, name)`` of the experiments that use a template version, a collection or a
    criterion set, newest first."""
    rows = await conn.fetchall(EXPERIMENTS_USING[column], {"pid": project_id, "ident": ident})
    return [(int(r[0]), str(r[1])) for r in rows]
