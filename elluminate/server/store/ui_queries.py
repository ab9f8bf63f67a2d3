"""Read queries of the web viewer (``elluminate.server.ui``) that the API does not need.

Each function is one small, project-scoped read on the current :class:`Database` API; the
rows they answer are turned into wire structs by the read model
(:class:`~elluminate.server.store.views.Views`,
:class:`~elluminate.server.store.views_experiments.ExperimentViews`). The viewer reaches them
only through its adapter ``elluminate.server.ui.data``.

Verdicts are stored as ``ratings.rating``: ``'YES'``, ``'NO'``, or NULL for a failed rating
(the judge's error in ``ratings.error``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from .database import Database, dumps
from .views_experiments import RESPONSE_COLUMNS, RESPONSE_FROM

#: Response filters by verdict: a YES / NO rating, a failed rating (judge error), no rating.
Verdict = Literal["yes", "no", "failed", "unrated"]
VERDICTS: tuple[Verdict, ...] = ("yes", "no", "failed", "unrated")


@dataclass(frozen=True)
class Page:
    """One page of rows and the number of rows over all pages."""

    rows: list[sqlite3.Row]
    total: int


def _like(text: str) -> str:
    """A ``LIKE ... ESCAPE '\\'`` pattern matching ``text`` anywhere."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _page(
    db: Database,
    select: str,
    where: str,
    params: Sequence[Any],
    order: str,
    offset: int,
    limit: int,
) -> Page:
    from_part = select[select.upper().index(" FROM ") :]
    total = int(db.fetchval(f"SELECT COUNT(*) {from_part} WHERE {where}", params) or 0)
    rows = db.fetchall(
        f"{select} WHERE {where} ORDER BY {order} LIMIT ? OFFSET ?", (*params, limit, offset)
    )
    return Page(rows, total)


# ---- experiments --------------------------------------------------------------------------


def experiments_page(
    db: Database,
    project_id: int,
    *,
    name_search: str | None = None,
    template_name: str | None = None,
    collection_id: int | None = None,
    offset: int = 0,
    limit: int = 25,
) -> Page:
    """The project's experiments, newest first; ``name_search`` is a substring of the name,
    ``template_name`` matches every version of a template, ``collection_id`` one collection."""
    where = ["e.project_id = ?"]
    params: list[Any] = [project_id]
    if name_search:
        where.append("e.name LIKE ? ESCAPE '\\'")
        params.append(_like(name_search))
    if template_name:
        where.append(
            "e.prompt_template_id IN (SELECT id FROM prompt_templates WHERE project_id = ? "
            "AND name = ?)"
        )
        params += [project_id, template_name]
    if collection_id is not None:
        where.append("e.collection_id = ?")
        params.append(collection_id)
    return _page(
        db,
        "SELECT e.* FROM experiments e",
        " AND ".join(where),
        params,
        "e.created_at DESC, e.id DESC",
        offset,
        limit,
    )


def experiment_filter_options(db: Database, project_id: int) -> tuple[list[str], list[sqlite3.Row]]:
    """The template names and the collections (``id``, ``name``) the project's experiments
    use, for the filters of the experiment list."""
    names = [
        r[0]
        for r in db.fetchall(
            "SELECT DISTINCT t.name FROM prompt_templates t JOIN experiments e "
            "ON e.prompt_template_id = t.id WHERE e.project_id = ? ORDER BY t.name",
            (project_id,),
        )
    ]
    collections = db.fetchall(
        "SELECT DISTINCT c.id, c.name FROM collections c JOIN experiments e "
        "ON e.collection_id = c.id WHERE e.project_id = ? ORDER BY c.name, c.id",
        (project_id,),
    )
    return names, collections


def experiment_choices(db: Database, project_id: int) -> list[sqlite3.Row]:
    """``id`` and ``name`` of every experiment of the project, newest first (for pickers)."""
    return db.fetchall(
        "SELECT id, name FROM experiments WHERE project_id = ? ORDER BY created_at DESC, id DESC",
        (project_id,),
    )


def latest_tasks(db: Database, experiment_ids: Sequence[int]) -> dict[int, sqlite3.Row]:
    """The most recent ``experiment`` task (``id``, ``status``, ``error_msg``) of each
    experiment that has one, by experiment id."""
    if not experiment_ids:
        return {}
    rows = db.fetchall(
        "SELECT t.experiment_id, t.id, t.status, t.error_msg FROM tasks t "
        "WHERE t.kind = 'experiment' AND t.experiment_id IN (SELECT value FROM json_each(?)) "
        "ORDER BY t.created_at, t.rowid",
        (dumps(list(experiment_ids)),),
    )
    return {r["experiment_id"]: r for r in rows}  # the last one of each wins


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


def experiment_counts(db: Database, experiment_ids: Sequence[int]) -> dict[int, ExperimentCounts]:
    """:class:`ExperimentCounts` of several experiments in two aggregate queries (a list
    page of large experiments stays cheap: no response row is read into Python)."""
    if not experiment_ids:
        return {}
    ids = dumps(list(experiment_ids))
    counts = {
        r[0]: (int(r[1]), int(r[2] or 0))
        for r in db.fetchall(
            "SELECT experiment_id, COUNT(*), SUM(error IS NOT NULL) FROM responses "
            "WHERE experiment_id IN (SELECT value FROM json_each(?)) GROUP BY experiment_id",
            (ids,),
        )
    }
    verdicts = {
        r[0]: (int(r[1] or 0), int(r[2] or 0))
        for r in db.fetchall(
            "SELECT r.experiment_id, SUM(g.rating = 'YES'), SUM(g.rating = 'NO') FROM ratings g "
            "JOIN responses r ON r.id = g.response_id "
            "WHERE r.experiment_id IN (SELECT value FROM json_each(?)) GROUP BY r.experiment_id",
            (ids,),
        )
    }
    return {
        eid: ExperimentCounts(*counts.get(eid, (0, 0)), *verdicts.get(eid, (0, 0)))
        for eid in experiment_ids
    }


# ---- responses ----------------------------------------------------------------------------


def _verdict_condition(
    experiment_id: int, criterion_id: int | None, verdict: Verdict | None
) -> tuple[str, list[Any]]:
    """The response filter as ``r.id [NOT] IN (ratings of the experiment ...)``.

    Not a correlated ``EXISTS``: with a criterion in it, SQLite without statistics (a
    database before its first ``ANALYZE``) drives that through the criterion index for every
    response, which is quadratic (a minute for 10,000 responses); this form reads the
    experiment's ratings once, whatever the plan.
    """
    sub = (
        "SELECT g.response_id FROM ratings g JOIN responses x ON x.id = g.response_id "
        "WHERE x.experiment_id = ?"
    )
    params: list[Any] = [experiment_id]
    if criterion_id is not None:
        sub += " AND g.criterion_id = ?"
        params.append(criterion_id)
    if verdict in ("yes", "no"):
        return f"r.id IN ({sub} AND g.rating = ?)", [*params, verdict.upper()]
    if verdict == "failed":
        return f"r.id IN ({sub} AND g.rating IS NULL)", params
    if verdict == "unrated":
        return f"r.id NOT IN ({sub})", params
    if criterion_id is not None:
        return f"r.id IN ({sub})", params
    return "", []


def response_page(
    db: Database,
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
    where = ["r.experiment_id = ?", "r.project_id = ?"]
    params: list[Any] = [experiment_id, project_id]
    condition, cparams = _verdict_condition(experiment_id, criterion_id, verdict)
    if condition:
        where.append(condition)
        params += cparams
    if failed_only:
        where.append("r.error IS NOT NULL")
    return _page(
        db,
        f"SELECT {RESPONSE_COLUMNS} {RESPONSE_FROM}",
        " AND ".join(where),
        params,
        "r.id",
        offset,
        limit,
    )


def responses_by_ids(
    db: Database, project_id: int, response_ids: Sequence[int]
) -> list[sqlite3.Row]:
    """Responses of the project by id (RESPONSE_COLUMNS), in id order."""
    if not response_ids:
        return []
    return db.fetchall(
        f"SELECT {RESPONSE_COLUMNS} {RESPONSE_FROM} WHERE r.project_id = ? "
        "AND r.id IN (SELECT value FROM json_each(?)) ORDER BY r.id",
        (project_id, dumps(list(response_ids))),
    )


def failed_ratings_of(db: Database, response_ids: Sequence[int]) -> list[sqlite3.Row]:
    """The failed ratings (``response_id``, ``criterion_id``, ``error``, ``raw_text``) of the
    given responses; the read model leaves them out of ``PromptResponse.ratings``."""
    if not response_ids:
        return []
    return db.fetchall(
        "SELECT response_id, criterion_id, error, raw_text FROM ratings "
        "WHERE response_id IN (SELECT value FROM json_each(?)) AND rating IS NULL "
        "ORDER BY response_id, id",
        (dumps(list(response_ids)),),
    )


def verdict_rows(
    db: Database, project_id: int, experiment_id: int
) -> list[tuple[int, int | None, int, int, int | None, str | None]]:
    """Every response of an experiment with each of its ratings, as plain tuples
    ``(response_id, entry_id, epoch, failed, criterion_id, rating)``: ``failed`` is 1 when
    generation failed, ``rating`` NULL for a failed rating, and a response without ratings
    comes once with ``criterion_id`` NULL. Response order. Small columns only: comparing two
    experiments of 10,000 rows reads 2 x 30,000 of these."""
    cursor = db.conn.cursor()
    cursor.row_factory = None  # tuples: this runs for every rating of two experiments
    try:
        return cursor.execute(
            "SELECT r.id, r.template_variables_id, r.epoch, r.error IS NOT NULL, "
            "g.criterion_id, g.rating FROM responses r "
            "LEFT JOIN ratings g ON g.response_id = r.id "
            "WHERE r.experiment_id = ? AND r.project_id = ? ORDER BY r.id, g.id",
            (experiment_id, project_id),
        ).fetchall()
    finally:
        cursor.close()


# ---- templates, collections, criterion sets ------------------------------------------------


def template_names(db: Database, project_id: int) -> list[sqlite3.Row]:
    """One row per template name of the project: ``name``, ``versions`` (live versions),
    ``latest_id``, ``latest_version``, ``updated_at`` (of the latest version)."""
    return db.fetchall(
        "SELECT t.name, COUNT(*) AS versions, MAX(t.version) AS latest_version, "
        "(SELECT l.id FROM prompt_templates l WHERE l.project_id = t.project_id "
        " AND l.name = t.name AND l.deleted_at IS NULL ORDER BY l.version DESC LIMIT 1) "
        "AS latest_id, MAX(t.updated_at) AS updated_at "
        "FROM prompt_templates t WHERE t.project_id = ? AND t.deleted_at IS NULL "
        "GROUP BY t.name ORDER BY t.name",
        (project_id,),
    )


def template_versions(db: Database, project_id: int, name: str) -> list[sqlite3.Row]:
    """Every live version of the template ``name``, oldest first (full rows)."""
    return db.fetchall(
        "SELECT * FROM prompt_templates WHERE project_id = ? AND name = ? "
        "AND deleted_at IS NULL ORDER BY version",
        (project_id, name),
    )


def template_name_of(db: Database, project_id: int, template_id: int) -> str | None:
    """The name of a template version of the project (deleted ones included), or None."""
    name = db.fetchval(
        "SELECT name FROM prompt_templates WHERE id = ? AND project_id = ?",
        (template_id, project_id),
    )
    return None if name is None else str(name)


def collections(db: Database, project_id: int) -> list[sqlite3.Row]:
    """The project's live collections (full rows), by name."""
    return db.fetchall(
        "SELECT * FROM collections WHERE project_id = ? AND deleted_at IS NULL ORDER BY name, id",
        (project_id,),
    )


def collection_entries_page(
    db: Database, project_id: int, collection_id: int, *, offset: int = 0, limit: int = 50
) -> Page:
    """One page of a collection's live entries (full ``template_variables`` rows), id order."""
    return _page(
        db,
        "SELECT tv.* FROM template_variables tv",
        "tv.collection_id = ? AND tv.deleted_at IS NULL AND tv.collection_id IN "
        "(SELECT id FROM collections WHERE project_id = ?)",
        (collection_id, project_id),
        "tv.id",
        offset,
        limit,
    )


def criterion_sets(db: Database, project_id: int) -> list[sqlite3.Row]:
    """The project's live criterion sets (full rows), by name."""
    return db.fetchall(
        "SELECT * FROM criterion_sets WHERE project_id = ? AND deleted_at IS NULL "
        "ORDER BY name, id",
        (project_id,),
    )


def experiments_using(
    db: Database,
    project_id: int,
    column: Literal["prompt_template_id", "collection_id", "criterion_set_id"],
    ident: int,
) -> list[sqlite3.Row]:
    """``id`` and ``name`` of the experiments that use a template version, a collection or a
    criterion set, newest first."""
    return db.fetchall(
        f"SELECT id, name FROM experiments WHERE project_id = ? AND {column} = ? "
        "ORDER BY created_at DESC, id DESC",
        (project_id, ident),
    )
