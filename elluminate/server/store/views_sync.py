"""Database rows -> wire structs (``elluminate.schemas``), built once per request.

Use one :class:`SyncViews` per request (after the request's writes): it caches every object it
builds, so nested objects (the collection inside every row, the criterion inside every
rating, ...) are loaded once. Lookups are scoped by project and skip soft-deleted rows unless
``include_deleted=True`` (experiments keep pointing at deleted templates/sets/configs).
"""

from __future__ import annotations

import sqlite3
from typing import Any

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

from ..api.errors import not_found
from .database import Database, dumps, loads, ts
from .serializers import (
    column_from_row,
    llm_config_from_row,
    organization_from_row,
    prompt_template_from_row,
)


def _deleted_clause(include_deleted: bool, alias: str = "") -> str:
    return "" if include_deleted else f" AND {alias}deleted_at IS NULL"


class SyncViews:
    """Builds wire structs for one project, caching each object for the request's lifetime."""

    def __init__(self, db: Database, project_id: int) -> None:
        self.db = db
        self.project_id = project_id
        self._templates: dict[int, PromptTemplate] = {}
        self._collections: dict[int, TemplateVariablesCollection] = {}
        self._rows: dict[int, TemplateVariables] = {}
        self._criteria: dict[int, Criterion] = {}
        self._sets: dict[int, CriterionSet] = {}
        self._llm_configs: dict[int, LLMConfig] = {}

    # -- projects ---------------------------------------------------------------------------

    def project(self, project_id: int | None = None) -> Project:
        """A project with its organization (404 if missing)."""
        pid = self.project_id if project_id is None else project_id
        row = self.db.fetchone("SELECT * FROM projects WHERE id = ?", (pid,))
        if row is None:
            raise not_found("project", pid)
        org = self.db.fetchone(
            "SELECT * FROM organizations WHERE id = ?", (row["organization_id"],)
        )
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

    def prompt_template(self, template_id: int, *, include_deleted: bool = False) -> PromptTemplate:
        """A prompt template of this project (404 if missing or deleted)."""
        cached = self._templates.get(template_id)
        if cached is not None:
            return cached
        row = self.db.fetchone(
            "SELECT * FROM prompt_templates WHERE id = ? AND project_id = ?"
            + _deleted_clause(include_deleted),
            (template_id, self.project_id),
        )
        if row is None:
            raise not_found("prompt template", template_id)
        return self.prompt_template_row(row)

    def prompt_template_row(self, row: sqlite3.Row) -> PromptTemplate:
        """Build (and cache) a template from a ``prompt_templates`` row."""
        template = self._templates.get(row["id"])
        if template is None:
            template = self._templates[row["id"]] = prompt_template_from_row(row)
        return template

    # -- collections and rows ---------------------------------------------------------------

    def collection(
        self, collection_id: int, *, include_deleted: bool = False
    ) -> TemplateVariablesCollection:
        """A collection without its rows (404 if missing or deleted)."""
        cached = self._collections.get(collection_id)
        if cached is not None:
            return cached
        row = self.db.fetchone(
            "SELECT * FROM collections WHERE id = ? AND project_id = ?"
            + _deleted_clause(include_deleted),
            (collection_id, self.project_id),
        )
        if row is None:
            raise not_found("collection", collection_id)
        return self.collection_row(row)

    def collection_row(self, row: sqlite3.Row) -> TemplateVariablesCollection:
        """Build (and cache) a collection from a ``collections`` row."""
        cached = self._collections.get(row["id"])
        if cached is not None:
            return cached
        columns = [
            column_from_row(c)
            for c in self.db.fetchall(
                "SELECT * FROM collection_columns WHERE collection_id = ? "
                "ORDER BY column_position, id",
                (row["id"],),
            )
        ]
        count = self.db.fetchval(
            "SELECT COUNT(*) FROM template_variables WHERE collection_id = ? "
            "AND deleted_at IS NULL",
            (row["id"],),
        )
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

    def collection_with_entries(self, collection_id: int) -> TemplateVariablesCollectionWithEntries:
        """A collection with all its (non-deleted) rows inline."""
        base = self.collection(collection_id)
        rows = self.db.fetchall(
            "SELECT * FROM template_variables WHERE collection_id = ? AND deleted_at IS NULL "
            "ORDER BY id",
            (collection_id,),
        )
        fields = {name: getattr(base, name) for name in base.__struct_fields__}
        return TemplateVariablesCollectionWithEntries(
            **fields, variables=[self.template_variables_row(r) for r in rows]
        )

    def template_variables(
        self, row_id: int, *, collection_id: int | None = None, include_deleted: bool = False
    ) -> TemplateVariables:
        """One collection row (404 if missing, deleted, or not in ``collection_id``)."""
        cached = self._rows.get(row_id)
        if cached is not None and (collection_id is None or cached.collection.id == collection_id):
            return cached
        sql = (
            "SELECT tv.* FROM template_variables tv JOIN collections c ON c.id = tv.collection_id "
            "WHERE tv.id = ? AND c.project_id = ?"
        )
        params: list[Any] = [row_id, self.project_id]
        if collection_id is not None:
            sql += " AND tv.collection_id = ?"
            params.append(collection_id)
        if not include_deleted:
            sql += " AND tv.deleted_at IS NULL AND c.deleted_at IS NULL"
        row = self.db.fetchone(sql, params)
        if row is None:
            raise not_found("collection entry", row_id)
        return self.template_variables_row(row, include_deleted=include_deleted)

    def template_variables_many(self, row_ids: list[int]) -> list[TemplateVariables]:
        """Several rows of this project in one query, in the order of ``row_ids``."""
        if not row_ids:
            return []
        rows = self.db.fetchall(
            "SELECT tv.* FROM template_variables tv JOIN collections c ON c.id = tv.collection_id "
            "WHERE tv.id IN (SELECT value FROM json_each(?)) AND c.project_id = ?",
            (dumps(row_ids), self.project_id),
        )
        by_id = {r["id"]: self.template_variables_row(r) for r in rows}
        return [by_id[i] for i in row_ids if i in by_id]

    def template_variables_row(
        self, row: sqlite3.Row, *, include_deleted: bool = True
    ) -> TemplateVariables:
        """Build (and cache) a row from a ``template_variables`` row (embeds its collection)."""
        cached = self._rows.get(row["id"])
        if cached is not None:
            return cached
        tv = TemplateVariables(
            id=row["id"],
            input_values=loads(row["input_values"]),
            collection=self.collection(row["collection_id"], include_deleted=include_deleted),
            created_at=ts(row["created_at"]),
            environment_config=loads(row["environment_config"]),
        )
        self._rows[row["id"]] = tv
        return tv

    # -- criteria ---------------------------------------------------------------------------

    def criterion(self, criterion_id: int, *, include_deleted: bool = False) -> Criterion:
        """A criterion (404 if missing or deleted, unless ``include_deleted``)."""
        cached = self._criteria.get(criterion_id)
        if cached is not None:
            return cached
        row = self.db.fetchone(
            "SELECT * FROM criteria WHERE id = ? AND project_id = ?"
            + _deleted_clause(include_deleted),
            (criterion_id, self.project_id),
        )
        if row is None:
            raise not_found("criterion", criterion_id)
        return self.criterion_row(row)

    def criterion_row(self, row: sqlite3.Row) -> Criterion:
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
                None if tv_id is None else self.template_variables(tv_id, include_deleted=True)
            ),
            created_at=ts(row["created_at"]),
        )
        self._criteria[row["id"]] = criterion
        return criterion

    def criteria_of_set(self, set_id: int) -> list[Criterion]:
        """The criteria of a set, in set order."""
        rows = self.db.fetchall(
            "SELECT c.* FROM criteria c JOIN criterion_set_criteria l ON l.criterion_id = c.id "
            "WHERE l.criterion_set_id = ? ORDER BY l.position, c.id",
            (set_id,),
        )
        return [self.criterion_row(r) for r in rows]

    def criterion_set(self, set_id: int, *, include_deleted: bool = False) -> CriterionSet:
        """A criterion set with its linked templates and criteria."""
        cached = self._sets.get(set_id)
        if cached is not None:
            return cached
        row = self.db.fetchone(
            "SELECT * FROM criterion_sets WHERE id = ? AND project_id = ?"
            + _deleted_clause(include_deleted),
            (set_id, self.project_id),
        )
        if row is None:
            raise not_found("criterion set", set_id)
        return self.criterion_set_row(row)

    def criterion_set_row(self, row: sqlite3.Row) -> CriterionSet:
        """Build (and cache) a criterion set from a ``criterion_sets`` row."""
        cached = self._sets.get(row["id"])
        if cached is not None:
            return cached
        templates = self.db.fetchall(
            "SELECT t.* FROM prompt_templates t JOIN criterion_set_prompt_templates l "
            "ON l.prompt_template_id = t.id WHERE l.criterion_set_id = ? "
            "AND t.deleted_at IS NULL ORDER BY t.id",
            (row["id"],),
        )
        cset = CriterionSet(
            id=row["id"],
            name=row["name"],
            linked_prompt_templates=[self.prompt_template_row(t) for t in templates],
            criteria=self.criteria_of_set(row["id"]),
        )
        self._sets[row["id"]] = cset
        return cset

    # -- LLM configs ------------------------------------------------------------------------

    def llm_config(self, config_id: int, *, include_deleted: bool = False) -> LLMConfig:
        """An LLM config with a masked ``api_key`` (404 if missing or deleted)."""
        cached = self._llm_configs.get(config_id)
        if cached is not None:
            return cached
        row = self.db.fetchone(
            "SELECT * FROM llm_configs WHERE id = ? AND project_id = ?"
            + _deleted_clause(include_deleted),
            (config_id, self.project_id),
        )
        if row is None:
            raise not_found("LLM config", config_id)
        return self.llm_config_row(row)

    def llm_config_row(self, row: sqlite3.Row) -> LLMConfig:
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
