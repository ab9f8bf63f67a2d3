"""Wire structs for experiments, prompt responses and ratings, built in bulk.

Response pages are the hot path (``GET @/responses?experiment_id=``): :meth:`ExperimentViews.
responses` builds a whole page with a constant number of queries (the page's rows with their
prompts, then rows / templates / ratings / criteria loaded by ``IN (...)``), reuses the nested
collection / template / criterion structs through one :class:`~.views_sync.SyncViews`
cache, and passes stored JSON (messages, metadata) through as :class:`msgspec.Raw` without
decoding it.
"""

from __future__ import annotations

import sqlite3
import weakref
from collections.abc import Iterable, Sequence
from typing import Any

import msgspec

from elluminate.schemas import (
    EvaluationMode,
    Experiment,
    GenerationParams,
    Prompt,
    PromptResponse,
    PromptTemplate,
    Rating,
    RatingValue,
    TemplateVariables,
)

from ..api.errors import not_found
from ..engine.engine import TaskEngine
from .database import Database, loads, ts
from .results import compute_results, compute_results_many
from .views_sync import SyncViews

#: The columns of a response page query (responses ``r`` joined with their prompt ``p``).
RESPONSE_COLUMNS = (
    "r.id, r.experiment_id, r.epoch, r.messages, r.generation_metadata, r.error, "
    "r.termination_reason, r.trajectory, r.annotation, r.created_at, r.prompt_id, "
    "p.prompt_template_id AS p_template_id, p.template_variables_id AS p_tv_id, "
    "p.messages AS p_messages, p.created_at AS p_created_at, "
    "p.resolved_tools AS p_tools, p.resolved_tool_choice AS p_tool_choice, "
    "p.resolved_response_format AS p_response_format"
)
RESPONSE_FROM = "FROM responses r JOIN prompts p ON p.id = r.prompt_id"
_RATING_COLUMNS = (
    "id, response_id, criterion_id, rating, reasoning, generation_metadata, created_at"
)
_EMPTY_LIST: Any = msgspec.Raw(b"[]")
_COMPUTE: Any = object()
_YES, _NO = RatingValue.YES, RatingValue.NO


def raw(text: str | None) -> Any:
    """Stored JSON text passed through to the encoder unchanged (``None`` for SQL NULL)."""
    return None if text is None else msgspec.Raw(text)


class _Unchanged:
    """Structs that every request may share until the database next changes."""

    def __init__(self) -> None:
        self.state: tuple[int, int] | None = None
        self.structs: dict[tuple[Any, ...], Any] = {}


_UNCHANGED: weakref.WeakKeyDictionary[Database, _Unchanged] = weakref.WeakKeyDictionary()


def unchanged_structs(db: Database) -> dict[tuple[Any, ...], Any]:
    """A cache of nested structs valid while the database is unchanged.

    A client reads an experiment page after page, and every item of every page embeds the
    same collection (with its live entry count), template and criteria: they are built once
    per database state instead of once per page. The state is the connection's
    ``total_changes`` (every row the server writes, through its one connection) plus
    ``PRAGMA data_version`` (commits by any other connection to the file), so any write
    drops the cache.
    """
    conn = db.conn
    state = (conn.total_changes, conn.execute("PRAGMA data_version").fetchone()[0])
    entry = _UNCHANGED.get(db)
    if entry is None:
        entry = _UNCHANGED[db] = _Unchanged()
    if entry.state != state:
        entry.state, entry.structs = state, {}
    return entry.structs


def _chunks(ids: Sequence[int], size: int = 900) -> Iterable[Sequence[int]]:
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


def fetch_by_ids(db: Database, table: str, ids: Iterable[int]) -> list[sqlite3.Row]:
    """All rows of ``table`` with the given ids (chunked ``IN`` queries)."""
    unique = sorted(set(ids))
    rows: list[sqlite3.Row] = []
    for chunk in _chunks(unique):
        marks = ",".join("?" * len(chunk))
        rows.extend(db.fetchall(f"SELECT * FROM {table} WHERE id IN ({marks})", chunk))
    return rows


class ExperimentViews:
    """Experiments, responses and ratings of one project (caches for one request)."""

    def __init__(
        self,
        db: Database,
        project_id: int,
        views: SyncViews | None = None,
        engine: TaskEngine | None = None,
    ) -> None:
        self.db = db
        self.project_id = project_id
        self.views = views or SyncViews(db, project_id)
        self.engine = engine  # to show the live log of a running experiment

    # -- experiments ----------------------------------------------------------------------

    def experiment_row_of(self, experiment_id: int) -> sqlite3.Row:
        """The experiment row of this project, or 404."""
        row = self.db.fetchone(
            "SELECT * FROM experiments WHERE id = ? AND project_id = ?",
            (experiment_id, self.project_id),
        )
        if row is None:
            raise not_found("experiment", experiment_id)
        return row

    def experiment(
        self,
        experiment_id: int,
        *,
        categorical_filters: dict[str, list[Any]] | None = None,
        generation_task_id: str | None = None,
    ) -> Experiment:
        """One experiment (404 if not in this project)."""
        return self.experiment_from_row(
            self.experiment_row_of(experiment_id),
            categorical_filters=categorical_filters,
            generation_task_id=generation_task_id,
        )

    def experiment_from_row(
        self,
        row: sqlite3.Row,
        *,
        categorical_filters: dict[str, list[Any]] | None = None,
        generation_task_id: str | None = None,
        with_results: bool = True,
        results: Any = _COMPUTE,
    ) -> Experiment:
        """Build an experiment; ``generation_task_id`` overrides the stored one (a task that
        was rejected at once is reported in the answer but never stored as running).
        ``results`` are computed here unless given (see :meth:`experiments_from_rows`)."""
        v = self.views
        template_id = row["prompt_template_id"]
        llm_id = row["llm_config_id"]
        params = loads(row["generation_params"])
        logs = row["logs"]
        running = row["generation_task_id"]
        if self.engine is not None and running is not None and self.engine.is_running(running):
            live = self.engine.get(self.project_id, running)
            logs = logs if live is None else live.logs
        return Experiment(
            id=row["id"],
            name=row["name"],
            description=row["description"],
            prompt_template=(
                None
                if template_id is None
                else v.prompt_template(template_id, include_deleted=True)
            ),
            collection=v.collection(row["collection_id"], include_deleted=True),
            criterion_set=v.criterion_set(row["criterion_set_id"], include_deleted=True),
            llm_config=None if llm_id is None else v.llm_config(llm_id, include_deleted=True),
            rating_version=row["rating_version"],
            rated_responses=[],
            created_at=ts(row["created_at"]),
            updated_at=ts(row["updated_at"]),
            generation_task_id=generation_task_id or row["generation_task_id"],
            has_internal_error=bool(row["has_internal_error"]),
            generation_params=(
                None if params is None else msgspec.convert(params, GenerationParams)
            ),
            n_epochs=row["n_epochs"],
            response_column_id=row["response_column_id"],
            results=(
                None
                if not with_results
                else compute_results(self.db, row, categorical_filters=categorical_filters)
                if results is _COMPUTE
                else results
            ),
            logs=logs,
            evaluation_mode=EvaluationMode(row["evaluation_mode"]),
            agent_config=loads(row["agent_config"]),
            evaluation_agent_config=loads(row["evaluation_agent_config"]),
            dropped_trajectories=row["dropped_trajectories"],
        )

    def experiments_from_rows(self, rows: Sequence[sqlite3.Row]) -> list[Experiment]:
        """Several experiments, their results computed together (a list page)."""
        results = compute_results_many(self.db, rows)
        return [self.experiment_from_row(r, results=results[r["id"]]) for r in rows]

    # -- responses ------------------------------------------------------------------------

    def response(self, response_id: int) -> PromptResponse:
        """One response of this project (404 if missing)."""
        rows = self.db.fetchall(
            f"SELECT {RESPONSE_COLUMNS} {RESPONSE_FROM} WHERE r.id = ? AND r.project_id = ?",
            (response_id, self.project_id),
        )
        if not rows:
            raise not_found("response", response_id)
        return self.responses(rows)[0]

    def responses(self, rows: Sequence[sqlite3.Row]) -> list[PromptResponse]:
        """Build responses from rows selected with :data:`RESPONSE_COLUMNS` (batch loads)."""
        if not rows:
            return []
        v, pid = self.views, self.project_id
        shared = unchanged_structs(self.db)

        def collection(collection_id: int) -> Any:
            key = ("collection", pid, collection_id)
            found = shared.get(key)
            if found is None:
                found = shared[key] = v.collection(collection_id, include_deleted=True)
            return found

        # Each response usually has its own collection entry: build them here, passing the
        # stored JSON through (no decode / re-encode of input values), sharing the collection.
        entries: dict[int, TemplateVariables] = {}
        for tv in fetch_by_ids(self.db, "template_variables", {r["p_tv_id"] for r in rows}):
            entries[tv["id"]] = TemplateVariables(
                id=tv["id"],
                input_values=raw(tv["input_values"]),
                collection=collection(tv["collection_id"]),
                created_at=ts(tv["created_at"]),
                environment_config=raw(tv["environment_config"]),
            )
        templates: dict[int | None, PromptTemplate | None] = {None: None}
        missing: set[int] = set()
        for template_id in {r["p_template_id"] for r in rows} - {None}:
            found = shared.get(("template", pid, template_id))
            if found is None:
                missing.add(template_id)
            templates[template_id] = found
        for t_row in fetch_by_ids(self.db, "prompt_templates", missing):
            built = v.prompt_template_row(t_row)
            templates[t_row["id"]] = shared[("template", pid, t_row["id"])] = built
        ratings = self.ratings_of([r["id"] for r in rows])
        out: list[PromptResponse] = []
        append = out.append
        for r in rows:
            tv_id = r["p_tv_id"]
            entry = entries.get(tv_id) or v.template_variables(tv_id, include_deleted=True)
            template_id = r["p_template_id"]
            template = templates.get(template_id)
            if template is None and template_id is not None:
                template = v.prompt_template(template_id, include_deleted=True)
            prompt = Prompt(
                id=r["prompt_id"],
                prompt_template=template,
                template_variables=entry,
                messages=raw(r["p_messages"]) or _EMPTY_LIST,
                created_at=ts(r["p_created_at"]),
                resolved_tools=raw(r["p_tools"]),
                resolved_tool_choice=raw(r["p_tool_choice"]),
                resolved_response_format=raw(r["p_response_format"]),
            )
            append(
                PromptResponse(
                    id=r["id"],
                    prompt=prompt,
                    messages=raw(r["messages"]) or _EMPTY_LIST,
                    generation_metadata=raw(r["generation_metadata"]),
                    error=r["error"],
                    epoch=r["epoch"],
                    termination_reason=r["termination_reason"],
                    ratings=ratings.get(r["id"], []),
                    trajectory=raw(r["trajectory"]),
                    annotation=r["annotation"],
                    created_at=ts(r["created_at"]),
                )
            )
        return out

    # -- ratings --------------------------------------------------------------------------

    def ratings_of(self, response_ids: Sequence[int]) -> dict[int, list[Rating]]:
        """Successful ratings of the given responses, by response id (rating id order)."""
        rows: list[tuple[Any, ...]] = []
        cursor = self.db.conn.cursor()
        cursor.row_factory = None  # plain tuples: this runs for every rating of a page
        for chunk in _chunks(list(response_ids)):
            marks = ",".join("?" * len(chunk))
            # ``response_id, id`` is the order of the ix_ratings_response index: no sort step.
            rows.extend(
                cursor.execute(
                    f"SELECT {_RATING_COLUMNS} FROM ratings WHERE response_id IN ({marks}) "
                    "AND rating IS NOT NULL ORDER BY response_id, id",
                    chunk,
                ).fetchall()
            )
        cursor.close()
        criteria = self._criteria_of({r[2] for r in rows})
        out: dict[int, list[Rating]] = {}
        for rid, response_id, cid, verdict, reasoning, metadata, created_at in rows:
            rating = Rating(
                id=rid,
                criterion=criteria[cid],
                rating=_YES if verdict == "YES" else _NO,
                reasoning=reasoning,
                generation_metadata=raw(metadata),
                created_at=ts(created_at),
            )
            found = out.get(response_id)
            if found is None:
                out[response_id] = [rating]
            else:
                found.append(rating)
        return out

    def rating_structs(self, rows: Sequence[sqlite3.Row]) -> list[Rating]:
        """Rating structs for ``ratings`` rows with a verdict (criteria batch-loaded)."""
        criteria = self._criteria_of({r["criterion_id"] for r in rows})
        return [
            Rating(
                id=r["id"],
                criterion=criteria[r["criterion_id"]],
                rating=_YES if r["rating"] == "YES" else _NO,
                reasoning=r["reasoning"],
                generation_metadata=raw(r["generation_metadata"]),
                created_at=ts(r["created_at"]),
            )
            for r in rows
        ]

    def _criteria_of(self, ids: Iterable[int]) -> dict[int, Any]:
        """Criterion structs by id (batch-loaded, shared while the database is unchanged)."""
        v, pid = self.views, self.project_id
        shared = unchanged_structs(self.db)
        criteria = {cid: shared.get(("criterion", pid, cid)) for cid in ids}
        missing = {cid for cid, found in criteria.items() if found is None} - set(v._criteria)
        for c_row in fetch_by_ids(self.db, "criteria", missing):
            v.criterion_row(c_row)
        for cid, found in criteria.items():
            if found is None:
                criteria[cid] = shared[("criterion", pid, cid)] = v.criterion(
                    cid, include_deleted=True
                )
        return criteria
