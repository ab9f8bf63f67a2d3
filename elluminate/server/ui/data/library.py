"""The pages of what experiments are built from: prompt templates (with their versions and
the difference between two), test-case collections (with a page of entries) and criterion
sets, each with the experiments that use it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from elluminate.schemas import CriterionSet, PromptTemplate, TemplateVariablesCollection

from ...api.errors import not_found
from ...store import ui_queries as q
from ...store.database import loads
from ...store.errors import NotFound
from ...store.views import Views
from .. import present
from .source import Page, Source, page_offset

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
            conn, source.project_id, collection_id, offset=page_offset(page, size), limit=size
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
