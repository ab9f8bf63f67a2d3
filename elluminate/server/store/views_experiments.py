"""Wire structs for experiments, prompt responses and ratings, built in bulk.

Response pages are the hot path (``GET @/responses?experiment_id=``): :meth:`ExperimentViews.
responses` builds a whole page with a constant number of queries (the page's rows with their
prompts, then rows / templates / ratings / criteria loaded by ``IN (...)``), reuses the nested
collection / template / criterion structs through one :class:`~.views.Views` cache, and passes
stored JSON (messages, metadata) through as :class:`msgspec.Raw` without decoding it.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable, Sequence
from typing import Any

import msgspec
from sqlalchemy import bindparam, select

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

from . import schema as S
from . import tasks as task_store
from .connection import Connection
from .database import loads, ts
from .errors import NotFound
from .experiments import get as experiment_row
from .results import ResultsCache, compute_results, compute_results_many, results_cache
from .serializers import raw
from .views import Views

_R, _P, _G = S.responses, S.prompts, S.ratings
_IDS: Any = bindparam("ids", expanding=True)
#: The columns of a response page (responses joined with their prompt).
RESPONSE_COLUMNS = (
    _R.c.id,
    _R.c.experiment_id,
    _R.c.epoch,
    _R.c.messages,
    _R.c.generation_metadata,
    _R.c.error,
    _R.c.termination_reason,
    _R.c.trajectory,
    _R.c.annotation,
    _R.c.created_at,
    _R.c.prompt_id,
    _P.c.prompt_template_id.label("p_template_id"),
    _P.c.template_variables_id.label("p_tv_id"),
    _P.c.messages.label("p_messages"),
    _P.c.created_at.label("p_created_at"),
    _P.c.resolved_tools.label("p_tools"),
    _P.c.resolved_tool_choice.label("p_tool_choice"),
    _P.c.resolved_response_format.label("p_response_format"),
)
RESPONSES_BY_IDS = (
    select(*RESPONSE_COLUMNS)
    .join(_P, _P.c.id == _R.c.prompt_id)
    .where(_R.c.id.in_(_IDS))
    .order_by(_R.c.id)
)
RESPONSE_OF_PROJECT = (
    select(*RESPONSE_COLUMNS)
    .join(_P, _P.c.id == _R.c.prompt_id)
    .where(_R.c.id == bindparam("id"), _R.c.project_id == bindparam("pid"))
)
# ``response_id, id`` is the order of the ix_ratings_response index: no sort step.
RATINGS_OF = (
    select(
        _G.c.id,
        _G.c.response_id,
        _G.c.criterion_id,
        _G.c.rating,
        _G.c.reasoning,
        _G.c.generation_metadata,
        _G.c.created_at,
    )
    .where(_G.c.response_id.in_(_IDS), _G.c.rating.is_not(None))
    .order_by(_G.c.response_id, _G.c.id)
)
_BY_IDS = {
    name: select(S.metadata.tables[name]).where(S.metadata.tables[name].c.id.in_(_IDS))
    for name in ("template_variables", "prompt_templates", "criteria")
}
_EMPTY_LIST: Any = msgspec.Raw(b"[]")
_COMPUTE: Any = object()
_YES, _NO = RatingValue.YES, RatingValue.NO


class _Unchanged:
    """Structs that every request may share until the database next changes."""

    def __init__(self) -> None:
        self.marker: Any = None
        self.structs: dict[tuple[Any, ...], Any] = {}


_UNCHANGED: weakref.WeakKeyDictionary[Any, _Unchanged] = weakref.WeakKeyDictionary()


def unchanged_structs(conn: Connection, owner: Any) -> dict[tuple[Any, ...], Any]:
    """A cache of nested structs valid while the database is unchanged.

    A client reads an experiment page after page, and every item of every page embeds the
    same collection (with its live entry count), template and criteria: they are built once
    per database state instead of once per page (the connection's change marker, see
    :meth:`~.database.SQLiteConnection.change_marker`). Where the state cannot be known
    (PostgreSQL: other replicas write), nothing is shared beyond the request.
    """
    marker = conn.change_marker()
    if marker is None:
        return {}
    entry = _UNCHANGED.get(owner)
    if entry is None:
        entry = _UNCHANGED[owner] = _Unchanged()
    if entry.marker != marker:
        entry.marker, entry.structs = marker, {}
    return entry.structs


def _chunks(ids: Sequence[int], size: int = 500) -> Iterable[Sequence[int]]:
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


async def fetch_by_ids(conn: Connection, table: str, ids: Iterable[int]) -> list[Any]:
    """All rows of ``table`` with the given ids (chunked ``IN`` queries)."""
    unique = sorted(set(ids))
    rows: list[Any] = []
    for chunk in _chunks(unique):
        rows.extend(await conn.fetchall(_BY_IDS[table], {"ids": list(chunk)}))
    return rows


class ExperimentViews:
    """Experiments, responses and ratings of one project (caches for one request).

    ``store`` (the database object) keys the cache of structs shared across requests.
    """

    def __init__(
        self, conn: Connection, project_id: int, views: Views | None = None, store: Any = None
    ) -> None:
        self.conn = conn
        self.project_id = project_id
        self.views = views or Views(conn, project_id)
        self.store = store
        #: computed results kept across requests, per experiment version (with a store)
        self._results = None if store is None else results_cache(store)

    # -- experiments ----------------------------------------------------------------------

    async def experiment(
        self,
        experiment_id: int,
        *,
        categorical_filters: dict[str, list[Any]] | None = None,
        generation_task_id: str | None = None,
    ) -> Experiment:
        """One experiment (404 if not in this project)."""
        return await self.experiment_from_row(
            await experiment_row(self.conn, self.project_id, experiment_id),
            categorical_filters=categorical_filters,
            generation_task_id=generation_task_id,
        )

    async def experiment_from_row(
        self,
        row: Any,
        *,
        categorical_filters: dict[str, list[Any]] | None = None,
        generation_task_id: str | None = None,
        with_results: bool = True,
        results: Any = _COMPUTE,
    ) -> Experiment:
        """Build an experiment; ``generation_task_id`` overrides the stored one (a task that
        was rejected at once is reported in the answer but never stored as running).
        ``results`` are computed here unless given (see :meth:`experiments_from_rows`).
        While it runs, ``logs`` is the running task's log so far."""
        v = self.views
        template_id = row["prompt_template_id"]
        llm_id = row["llm_config_id"]
        params = loads(row["generation_params"])
        logs = row["logs"]
        running = row["generation_task_id"]
        if running is not None:
            logs, _ = await task_store.lines_after(self.conn, running, 0)
        if with_results and results is _COMPUTE:
            results = await compute_results(
                self.conn, row, categorical_filters=categorical_filters, cache=self._results
            )
        return Experiment(
            id=row["id"],
            name=row["name"],
            description=row["description"],
            prompt_template=(
                None
                if template_id is None
                else await v.prompt_template(template_id, include_deleted=True)
            ),
            collection=await v.collection(row["collection_id"], include_deleted=True),
            criterion_set=await v.criterion_set(row["criterion_set_id"], include_deleted=True),
            llm_config=(
                None if llm_id is None else await v.llm_config(llm_id, include_deleted=True)
            ),
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
            results=None if not with_results else results,
            logs=logs,
            evaluation_mode=EvaluationMode(row["evaluation_mode"]),
            agent_config=loads(row["agent_config"]),
            evaluation_agent_config=loads(row["evaluation_agent_config"]),
            dropped_trajectories=row["dropped_trajectories"],
        )

    async def experiments_from_rows(self, rows: Sequence[Any]) -> list[Experiment]:
        """Several experiments, their results computed together (a list page).

        While the database is unchanged (see :func:`unchanged_structs`) an experiment that is
        not running is built once, not once per request."""
        shared = unchanged_structs(self.conn, self.store if self.store is not None else self)
        built: dict[int, Experiment] = {}
        todo = []
        for row in rows:
            found = shared.get(("experiment", row["id"]))
            if found is not None:
                built[row["id"]] = found
            else:
                todo.append(row)
        results = await compute_results_many(self.conn, todo, cache=self._results)
        for row in todo:
            experiment = await self.experiment_from_row(row, results=results[row["id"]])
            built[row["id"]] = experiment
            if ResultsCache.version(row) is not None:  # not running: nothing depends on now
                shared[("experiment", row["id"])] = experiment
        return [built[row["id"]] for row in rows]

    # -- responses ------------------------------------------------------------------------

    async def response(self, response_id: int) -> PromptResponse:
        """One response of this project (404 if missing)."""
        rows = await self.conn.fetchall(
            RESPONSE_OF_PROJECT, {"id": response_id, "pid": self.project_id}
        )
        if not rows:
            raise NotFound("response", response_id)
        return (await self.responses(rows))[0]

    async def responses_by_ids(self, ids: Sequence[int]) -> list[PromptResponse]:
        """The responses with these ids (a page), in id order."""
        if not ids:
            return []
        return await self.responses(await self.conn.fetchall(RESPONSES_BY_IDS, {"ids": list(ids)}))

    async def responses(self, rows: Sequence[Any]) -> list[PromptResponse]:
        """Build responses from rows selected with :data:`RESPONSE_COLUMNS` (batch loads)."""
        if not rows:
            return []
        v, pid = self.views, self.project_id
        shared = unchanged_structs(self.conn, self.store if self.store is not None else self)

        async def collection(collection_id: int) -> Any:
            key = ("collection", pid, collection_id)
            found = shared.get(key)
            if found is None:
                found = shared[key] = await v.collection(collection_id, include_deleted=True)
            return found

        # Each response usually has its own collection entry: build them here, passing the
        # stored JSON through (no decode / re-encode of input values), sharing the collection.
        entries: dict[int, TemplateVariables] = {}
        for tv in await fetch_by_ids(self.conn, "template_variables", {r["p_tv_id"] for r in rows}):
            entries[tv["id"]] = TemplateVariables(
                id=tv["id"],
                input_values=raw(tv["input_values"]),
                collection=await collection(tv["collection_id"]),
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
        for t_row in await fetch_by_ids(self.conn, "prompt_templates", missing):
            built = v.prompt_template_row(t_row)
            templates[t_row["id"]] = shared[("template", pid, t_row["id"])] = built
        ratings = await self.ratings_of([r["id"] for r in rows])
        out: list[PromptResponse] = []
        append = out.append
        for r in rows:
            tv_id = r["p_tv_id"]
            entry = entries.get(tv_id) or await v.template_variables(tv_id, include_deleted=True)
            template_id = r["p_template_id"]
            template = templates.get(template_id)
            if template is None and template_id is not None:
                template = await v.prompt_template(template_id, include_deleted=True)
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

    async def ratings_of(self, response_ids: Sequence[int]) -> dict[int, list[Rating]]:
        """Successful ratings of the given responses, by response id (rating id order)."""
        rows: list[Any] = []
        for chunk in _chunks(list(response_ids)):
            rows.extend(await self.conn.fetchall(RATINGS_OF, {"ids": list(chunk)}))
        criteria = await self._criteria_of({r[2] for r in rows})
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

    async def rating_structs(self, rows: Sequence[Any]) -> list[Rating]:
        """Rating structs for ``ratings`` rows with a verdict (criteria batch-loaded)."""
        criteria = await self._criteria_of({r["criterion_id"] for r in rows})
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

    async def _criteria_of(self, ids: Iterable[int]) -> dict[int, Any]:
        """Criterion structs by id (batch-loaded, shared while the database is unchanged)."""
        v, pid = self.views, self.project_id
        shared = unchanged_structs(self.conn, self.store if self.store is not None else self)
        criteria = {cid: shared.get(("criterion", pid, cid)) for cid in ids}
        missing = {cid for cid, found in criteria.items() if found is None} - set(v._criteria)
        for c_row in await fetch_by_ids(self.conn, "criteria", missing):
            await v.criterion_row(c_row)
        for cid, found in criteria.items():
            if found is None:
                criteria[cid] = shared[("criterion", pid, cid)] = await v.criterion(
                    cid, include_deleted=True
                )
        return criteria
