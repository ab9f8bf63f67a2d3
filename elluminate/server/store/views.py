"""The read model: database rows -> wire structs (``elluminate.schemas``), one per request.

Use one :class:`Views` per request (after the request's writes), on a connection from
``store.connect()`` or the request's transaction: it caches every object it builds, so nested
objects (the collection inside every row, the criterion inside every rating, ...) are loaded
once. Lookups are scoped by project and skip soft-deleted rows unless ``include_deleted=True``
(experiments keep pointing at deleted templates, sets and configs). A missing object raises
:class:`~.errors.NotFound` (HTTP 404).
"""

from __future__ import annotations

from functools import cache
from typing import Any

from sqlalchemy import Select, and_, bindparam, func, select

from elluminate.schemas import (
    CollectionType,
    Criterion,
    CriterionSet,
    LLMConfig,
    Project,
    PromptTemplate,
    TemplateVariables,
    TemplateVariablesCollection,
    TemplateVariablesCollectionWithEntries,
)

from . import schema as S
from .connection import Connection
from .database import loads, ts
from .errors import NotFound
from .serializers import (
    column_from_row,
    llm_config_from_row,
    organization_from_row,
    prompt_template_from_row,
)

_ID: Any = bindparam("id")
_PID: Any = bindparam("pid")
_IDS: Any = bindparam("ids", expanding=True)

PROJECT = select(S.projects).where(S.projects.c.id == _ID)
ORGANIZATION = select(S.organizations).where(S.organizations.c.id == _ID)
COLUMNS_OF = (
    select(S.collection_columns)
    .where(S.collection_columns.c.collection_id == _ID)
    .order_by(S.collection_columns.c.column_position, S.collection_columns.c.id)
)
LIVE_ROW_COUNT = select(func.count()).where(
    S.template_variables.c.collection_id == _ID, S.template_variables.c.deleted_at.is_(None)
)
LIVE_ROWS_OF = (
    select(S.template_variables)
    .where(S.template_variables.c.collection_id == _ID, S.template_variables.c.deleted_at.is_(None))
    .order_by(S.template_variables.c.id)
)
_TV, _C = S.template_variables, S.collections
ROWS_BY_IDS = (
    select(_TV)
    .join(_C, _C.c.id == _TV.c.collection_id)
    .where(_TV.c.id.in_(_IDS), _C.c.project_id == _PID)
)
CRITERIA_OF_SET = (
    select(S.criteria)
    .join(S.criterion_set_criteria, S.criterion_set_criteria.c.criterion_id == S.criteria.c.id)
    .where(S.criterion_set_criteria.c.criterion_set_id == _ID)
    .order_by(S.criterion_set_criteria.c.position, S.criteria.c.id)
)
_PT, _L = S.prompt_templates, S.criterion_set_prompt_templates
TEMPLATES_OF_SET = (
    select(_PT)
    .join(_L, _L.c.prompt_template_id == _PT.c.id)
    .where(_L.c.criterion_set_id == _ID, _PT.c.deleted_at.is_(None))
    .order_by(_PT.c.id)
)


@cache
def by_id(table: str, include_deleted: bool) -> Select[Any]:
    """``SELECT * FROM table WHERE id = :id AND project_id = :pid`` (+ not deleted)."""
    t = S.metadata.tables[table]
    stmt = select(t).where(t.c.id == _ID, t.c.project_id == _PID)
    if not include_deleted:
        stmt = stmt.where(t.c.deleted_at.is_(None))
    return stmt


@cache
def _row_stmt(with_collection: bool, include_deleted: bool) -> Select[Any]:
    stmt = select(_TV).join(_C, _C.c.id == _TV.c.collection_id)
    stmt = stmt.where(_TV.c.id == _ID, _C.c.project_id == _PID)
    if with_collection:
        stmt = stmt.where(_TV.c.collection_id == bindparam("collection_id"))
    if not include_deleted:
        stmt = stmt.where(and_(_TV.c.deleted_at.is_(None), _C.c.deleted_at.is_(None)))
    return stmt


class Views:
    """Builds wire structs for one project, caching each object for the request's lifetime."""

    def __init__(self, conn: Connection, project_id: int) -> None:
        self.conn = conn
        self.project_id = project_id
        self._templates: dict[int, PromptTemplate] = {}
        self._collections: dict[int, TemplateVariablesCollection] = {}
        self._rows: dict[int, TemplateVariables] = {}
        self._criteria: dict[int, Criterion] = {}
        self._sets: dict[int, CriterionSet] = {}
        self._llm_configs: dict[int, LLMConfig] = {}

    async def _one(self, table: str, kind: str, ident: int, include_deleted: bool) -> Any:
        row = await self.conn.fetchone(
            by_id(table, include_deleted), {"id": ident, "pid": self.project_id}
        )
        if row is None:
            raise NotFound(kind, ident)
        return row

    # -- projects ---------------------------------------------------------------------------

    async def project(self, project_id: int | None = None) -> Project:
        """A project with its organization (404 if missing)."""
        pid = self.project_id if project_id is None else project_id
        row = await self.conn.fetchone(PROJECT, {"id": pid})
        if row is None:
            raise NotFound("project", pid)
        org = await self.conn.fetchone(ORGANIZATION, {"id": row["organization_id"]})
        assert org is not None
        return Project(
            id=row["id"],
            name=row["name"],
            description=row["description"],
            organization=organization_from_row(org),
            public_in_org=bool(row["public_in_org"]),
            created_at=ts(row["created_at"]),
            updated_at=ts(row["updated_at"]),
        )

    # -- prompt templates -------------------------------------------------------------------

    async def prompt_template(
        self, template_id: int, *, include_deleted: bool = False
    ) -> PromptTemplate:
        """A prompt template of this project (404 if missing or deleted)."""
        cached = self._templates.get(template_id)
        if cached is not None:
            return cached
        row = await self._one("prompt_templates", "prompt template", template_id, include_deleted)
        return self.prompt_template_row(row)

    def prompt_template_row(self, row: Any) -> PromptTemplate:
        """Build (and cache) a template from a ``prompt_templates`` row."""
        template = self._templates.get(row["id"])
        if template is None:
            template = self._templates[row["id"]] = prompt_template_from_row(row)
        return template

    # -- collections and rows ---------------------------------------------------------------

    async def collection(
        self, collection_id: int, *, include_deleted: bool = False
    ) -> TemplateVariablesCollection:
        """A collection without its rows (404 if missing or deleted)."""
        cached = self._collections.get(collection_id)
        if cached is not None:
            return cached
        row = await self._one("collections", "collection", collection_id, include_deleted)
        return await self.collection_row(row)

    async def collection_row(self, row: Any) -> TemplateVariablesCollection:
        """Build (and cache) a collection from a ``collections`` row."""
        cached = self._collections.get(row["id"])
        if cached is not None:
            return cached
        column_rows = await self.conn.fetchall(COLUMNS_OF, {"id": row["id"]})
        columns = [column_from_row(c) for c in column_rows]
        count = await self.conn.fetchval(LIVE_ROW_COUNT, {"id": row["id"]})
        collection = TemplateVariablesCollection(
            id=row["id"],
            name=row["name"],
            description=row["description"],
            columns=columns,
            variables_count=int(count),
            read_only=bool(row["read_only"]),
            created_at=ts(row["created_at"]),
            updated_at=ts(row["updated_at"]),
            version=row["version"],
            collection_type=CollectionType(row["collection_type"]),
            environment_config=loads(row["environment_config"]),
        )
        self._collections[row["id"]] = collection
        return collection

    async def collection_with_entries(
        self, collection_id: int
    ) -> TemplateVariablesCollectionWithEntries:
        """A collection with all its (non-deleted) rows inline."""
        base = await self.collection(collection_id)
        rows = await self.conn.fetchall(LIVE_ROWS_OF, {"id": collection_id})
        fields = {name: getattr(base, name) for name in base.__struct_fields__}
        return TemplateVariablesCollectionWithEntries(
            **fields, variables=[await self.template_variables_row(r) for r in rows]
        )

    async def template_variables(
        self, row_id: int, *, collection_id: int | None = None, include_deleted: bool = False
    ) -> TemplateVariables:
        """One collection row (404 if missing, deleted, or not in ``collection_id``)."""
        cached = self._rows.get(row_id)
        if cached is not None and (collection_id is None or cached.collection.id == collection_id):
            return cached
        params: dict[str, Any] = {"id": row_id, "pid": self.project_id}
        if collection_id is not None:
            params["collection_id"] = collection_id
        stmt = _row_stmt(collection_id is not None, include_deleted)
        row = await self.conn.fetchone(stmt, params)
        if row is None:
            raise NotFound("collection entry", row_id)
        return await self.template_variables_row(row, include_deleted=include_deleted)

    async def template_variables_many(self, row_ids: list[int]) -> list[TemplateVariables]:
        """Several rows of this project in one query, in the order of ``row_ids``."""
        if not row_ids:
            return []
        rows = await self.conn.fetchall(ROWS_BY_IDS, {"ids": row_ids, "pid": self.project_id})
        by_id_ = {r["id"]: await self.template_variables_row(r) for r in rows}
        return [by_id_[i] for i in row_ids if i in by_id_]

    async def template_variables_row(
        self, row: Any, *, include_deleted: bool = True
    ) -> TemplateVariables:
        """Build (and cache) a row from a ``template_variables`` row (embeds its collection)."""
        cached = self._rows.get(row["id"])
        if cached is not None:
            return cached
        tv = TemplateVariables(
            id=row["id"],
            input_values=loads(row["input_values"]),
            collection=await self.collection(row["collection_id"], include_deleted=include_deleted),
            created_at=ts(row["created_at"]),
            environment_config=loads(row["environment_config"]),
        )
        self._rows[row["id"]] = tv
        return tv

    # -- criteria ---------------------------------------------------------------------------

    async def criterion(self, criterion_id: int, *, include_deleted: bool = False) -> Criterion:
        """A criterion (404 if missing or deleted, unless ``include_deleted``)."""
        cached = self._criteria.get(criterion_id)
        if cached is not None:
            return cached
        row = await self._one("criteria", "criterion", criterion_id, include_deleted)
        return await self.criterion_row(row)

    async def criterion_row(self, row: Any) -> Criterion:
        """Build (and cache) a criterion from a ``criteria`` row."""
        cached = self._criteria.get(row["id"])
        if cached is not None:
            return cached
        tv_id = row["template_variables_id"]
        criterion = Criterion(
            id=row["id"],
            criterion_str=row["criterion_str"],
            label=row["label"],
            prompt_template=None,
            template_variables=(
                None
                if tv_id is None
                else await self.template_variables(tv_id, include_deleted=True)
            ),
            created_at=ts(row["created_at"]),
        )
        self._criteria[row["id"]] = criterion
        return criterion

    async def criteria_of_set(self, set_id: int) -> list[Criterion]:
        """The criteria of a set, in set order."""
        rows = await self.conn.fetchall(CRITERIA_OF_SET, {"id": set_id})
        return [await self.criterion_row(r) for r in rows]

    async def criterion_set(self, set_id: int, *, include_deleted: bool = False) -> CriterionSet:
        """A criterion set with its linked templates and criteria."""
        cached = self._sets.get(set_id)
        if cached is not None:
            return cached
        row = await self._one("criterion_sets", "criterion set", set_id, include_deleted)
        return await self.criterion_set_row(row)

    async def criterion_set_row(self, row: Any) -> CriterionSet:
        """Build (and cache) a criterion set from a ``criterion_sets`` row."""
        cached = self._sets.get(row["id"])
        if cached is not None:
            return cached
        templates = await self.conn.fetchall(TEMPLATES_OF_SET, {"id": row["id"]})
        cset = CriterionSet(
            id=row["id"],
            name=row["name"],
            linked_prompt_templates=[self.prompt_template_row(t) for t in templates],
            criteria=await self.criteria_of_set(row["id"]),
        )
        self._sets[row["id"]] = cset
        return cset

    # -- LLM configs ------------------------------------------------------------------------

    async def llm_config(self, config_id: int, *, include_deleted: bool = False) -> LLMConfig:
        """An LLM config with a masked ``api_key`` (404 if missing or deleted)."""
        cached = self._llm_configs.get(config_id)
        if cached is not None:
            return cached
        row = await self._one("llm_configs", "LLM config", config_id, include_deleted)
        return self.llm_config_row(row)

    def llm_config_row(self, row: Any) -> LLMConfig:
        cached = self._llm_configs.get(row["id"])
        if cached is None:
            cached = self._llm_configs[row["id"]] = llm_config_from_row(row)
        return cached

    def forget(self) -> None:
        """Drop all cached objects (after writes inside the same request)."""
        self._templates.clear()
        self._collections.clear()
        self._rows.clear()
        self._criteria.clear()
        self._sets.clear()
        self._llm_configs.clear()
