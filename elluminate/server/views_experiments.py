"""Wire structs for experiments, prompt responses and ratings, built in bulk.

Response pages are the hot path (``GET @/responses?experiment_id=``): :meth:`ExperimentViews.
responses` builds a whole page with a constant number of queries (the page's rows with their
prompts, then rows / templates / ratings / criteria loaded by ``IN (...)``), reuses the nested
collection / template / criterion structs through one :class:`~elluminate.server.views.Views`
cache, and passes stored JSON (messages, metadata) through as :class:`msgspec.Raw` without
decoding it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any

import msgspec

from elluminate.schemas import (
    EvaluationMode,
    Experiment,
    GenerationParams,
    Prompt,
    PromptResponse,
    Rating,
    RatingValue,
)

from .db import Database, loads
from .errors import not_found
from .results import compute_results
from .tasks import TaskEngine
from .views import Views, ts

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
_EMPTY_LIST: Any = msgspec.Raw(b"[]")
_YES, _NO = RatingValue.YES, RatingValue.NO


def raw(text: str | None) -> Any:
    """Stored JSON text passed through to the encoder unchanged (``None`` for SQL NULL)."""
    return None if text is None else msgspec.Raw(text.encode())


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
        views: Views | None = None,
        engine: TaskEngine | None = None,
    ) -> None:
        self.db = db
        self.project_id = project_id
        self.views = views or Views(db, project_id)
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
    ) -> Experiment:
        """Build an experiment; ``generation_task_id`` overrides the stored one (a task that
        was rejected at once is reported in the answer but never stored as running)."""
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
                compute_results(self.db, row, categorical_filters=categorical_filters)
                if with_results
                else None
            ),
            logs=logs,
            evaluation_mode=EvaluationMode(row["evaluation_mode"]),
            agent_config=loads(row["agent_config"]),
            evaluation_agent_config=loads(row["evaluation_agent_config"]),
            dropped_trajectories=row["dropped_trajectories"],
        )

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
        v = self.views
        for tv_row in fetch_by_ids(self.db, "template_variables", (r["p_tv_id"] for r in rows)):
            v.template_variables_row(tv_row, include_deleted=True)
        template_ids = [r["p_template_id"] for r in rows if r["p_template_id"] is not None]
        for t_row in fetch_by_ids(self.db, "prompt_templates", template_ids):
            v.prompt_template_row(t_row)
        ratings = self.ratings_of([r["id"] for r in rows])
        out: list[PromptResponse] = []
        for r in rows:
            template_id = r["p_template_id"]
            prompt = Prompt(
                id=r["prompt_id"],
                prompt_template=(
                    None
                    if template_id is None
                    else v.prompt_template(template_id, include_deleted=True)
                ),
                template_variables=v.template_variables(r["p_tv_id"], include_deleted=True),
                messages=raw(r["p_messages"]) or _EMPTY_LIST,
                created_at=ts(r["p_created_at"]),
                resolved_tools=raw(r["p_tools"]),
                resolved_tool_choice=raw(r["p_tool_choice"]),
                resolved_response_format=raw(r["p_response_format"]),
            )
            out.append(
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
        rows: list[sqlite3.Row] = []
        for chunk in _chunks(list(response_ids)):
            marks = ",".join("?" * len(chunk))
            rows.extend(
                self.db.fetchall(
                    f"SELECT * FROM ratings WHERE response_id IN ({marks}) "
                    "AND rating IS NOT NULL ORDER BY id",
                    chunk,
                )
            )
        out: dict[int, list[Rating]] = {}
        for row, rating in zip(rows, self.rating_structs(rows), strict=True):
            out.setdefault(row["response_id"], []).append(rating)
        return out

    def rating_structs(self, rows: Sequence[sqlite3.Row]) -> list[Rating]:
        """Rating structs for ``ratings`` rows with a verdict (criteria batch-loaded)."""
        v = self.views
        missing = {r["criterion_id"] for r in rows} - set(v._criteria)
        for c_row in fetch_by_ids(self.db, "criteria", missing):
            v.criterion_row(c_row)
        return [
            Rating(
                id=r["id"],
                criterion=v.criterion(r["criterion_id"], include_deleted=True),
                rating=_YES if r["rating"] == "YES" else _NO,
                reasoning=r["reasoning"],
                generation_metadata=raw(r["generation_metadata"]),
                created_at=ts(r["created_at"]),
            )
            for r in rows
        ]
