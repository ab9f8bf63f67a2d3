"""Criterion sets and their criteria (mixed into ``AsyncClient``)."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from .. import schemas
from .._arguments import check_name_or_id, id_of
from .._defaults import CriterionSetDefaults
from ..exceptions import ConflictError, ElluminateError, NotFoundError
from ..schemas import CriterionIn
from .models import CriterionSet, PromptTemplate, bind

if TYPE_CHECKING:
    from ._http import AsyncHTTP

logger = logging.getLogger("elluminate")
T = TypeVar("T")


def _criterion_arg(criterion: str | CriterionIn | dict[str, Any]) -> CriterionIn:
    if isinstance(criterion, str):
        return CriterionIn(criterion_str=criterion)
    if isinstance(criterion, CriterionIn):
        return criterion
    if isinstance(criterion, dict):
        return CriterionIn(criterion_str=criterion["criterion_str"], label=criterion.get("label"))
    raise ValueError("a criterion is a string or a CriterionIn")


class CriteriaMixin:
    """Criterion-set and criterion methods of the client and the operations behind
    ``CriterionSet``."""

    _http: AsyncHTTP

    if TYPE_CHECKING:  # provided by the client class

        async def _prefix(self) -> str: ...

        async def _create(self, resource: str, type_: type[T], body: Any, kind: str) -> T: ...

        async def get_prompt_template(
            self, *, name: str | None = None, id: int | None = None, version: int | None = None
        ) -> PromptTemplate: ...

    async def create_criterion_set(
        self, name: str, criteria: list[str | CriterionIn] | None = None
    ) -> CriterionSet:
        """Create a criterion set, optionally with its first criteria."""
        body = schemas.CreateCriterionSetRequest(
            name=name, criteria=[_criterion_arg(c) for c in criteria] if criteria else None
        )
        return await self._create("criterion_sets", CriterionSet, body, "criterion set")

    async def get_criterion_set(
        self, *, name: str | None = None, id: int | None = None
    ) -> CriterionSet:
        """A criterion set by name or id."""
        check_name_or_id(name, id)
        prefix = await self._prefix()
        if id is not None:
            found = await self._http.get(f"{prefix}/criterion_sets/{id}", CriterionSet)
            return bind(found, self)  # type: ignore[no-any-return]
        page = await self._http.get_page(f"{prefix}/criterion_sets", CriterionSet, {"name": name})
        if not page.items:
            raise NotFoundError(f"no criterion set named {name!r}")
        return bind(page.items[0], self)  # type: ignore[no-any-return]

    async def get_or_create_criterion_set(
        self, name: str, defaults: CriterionSetDefaults | None = None
    ) -> tuple[CriterionSet, bool]:
        """``(criterion_set, created)``; ``defaults={"criteria": [...]}`` is used only to create."""
        given: dict[str, Any] = dict(defaults or {})
        unknown = set(given) - {"criteria"}
        if unknown:
            raise ValueError(f"unknown defaults {sorted(unknown)}; allowed: ['criteria']")
        try:
            return await self.get_criterion_set(name=name), False
        except NotFoundError:
            pass
        try:
            return await self.create_criterion_set(name, criteria=given.get("criteria")), True
        except ConflictError:  # created concurrently by someone else
            return await self.get_criterion_set(name=name), False

    async def list_criterion_sets(self) -> list[CriterionSet]:
        """All criterion sets of the project."""
        prefix = await self._prefix()
        return bind(await self._http.paginate(f"{prefix}/criterion_sets", CriterionSet), self)  # type: ignore[no-any-return]

    async def delete_criterion_set(self, criterion_set: schemas.CriterionSet | int) -> None:
        """Delete a criterion set and its criteria."""
        prefix = await self._prefix()
        await self._http.request(
            "DELETE", f"{prefix}/criterion_sets/{id_of(criterion_set, 'criterion set')}"
        )

    async def list_criteria(
        self,
        prompt_template: schemas.PromptTemplate | None = None,
        criterion_set: schemas.CriterionSet | None = None,
    ) -> list[schemas.Criterion]:
        """Criteria of a template (through its criterion sets) or of one set, or all."""
        return await self._list_criteria(
            prompt_template_id=prompt_template.id if prompt_template is not None else None,
            criterion_set_id=criterion_set.id if criterion_set is not None else None,
        )

    async def edit_criterion(
        self,
        criterion: schemas.Criterion | int,
        criterion_str: str | None = None,
        label: str | None = None,
    ) -> schemas.Criterion:
        """Change a criterion; the server keeps the old version for past ratings (new id)."""
        prefix = await self._prefix()
        edited: schemas.Criterion = await self._http.send_json(
            "PUT",
            f"{prefix}/criteria/{id_of(criterion, 'criterion')}",
            schemas.Criterion,
            schemas.UpdateCriterionRequest(criterion_str=criterion_str, label=label),
        )
        return edited

    async def delete_criterion(self, criterion: schemas.Criterion | int) -> None:
        """Delete a criterion."""
        prefix = await self._prefix()
        await self._http.request("DELETE", f"{prefix}/criteria/{id_of(criterion, 'criterion')}")

    async def _list_criteria(
        self, prompt_template_id: int | None = None, criterion_set_id: int | None = None
    ) -> list[schemas.Criterion]:
        prefix = await self._prefix()
        return await self._http.paginate(
            f"{prefix}/criteria",
            schemas.Criterion,
            {"prompt_template_id": prompt_template_id, "criterion_set_id": criterion_set_id},
        )

    async def _post_criteria(self, body: schemas.CreateCriteriaRequest) -> list[schemas.Criterion]:
        prefix = await self._prefix()
        created: list[schemas.Criterion] = await self._http.send_json(
            "POST", f"{prefix}/criteria", list[schemas.Criterion], body
        )
        return created

    async def _generate_criteria(
        self, template: schemas.PromptTemplate, delete_existing: bool
    ) -> list[schemas.Criterion]:
        criteria = await self._post_criteria(
            schemas.CreateCriteriaRequest(
                prompt_template_id=template.id, criteria=None, delete_existing=delete_existing
            )
        )
        await self._refresh_template_link(template)
        return criteria

    async def _get_or_generate_criteria(
        self, template: schemas.PromptTemplate
    ) -> tuple[list[schemas.Criterion], bool]:
        try:
            return await self._generate_criteria(template, False), True
        except ConflictError:
            return await self._list_criteria(prompt_template_id=template.id), False

    async def _refresh_template_link(self, template: schemas.PromptTemplate) -> None:
        if template.criterion_set_id is None:
            fresh = await self.get_prompt_template(id=template.id)
            template.criterion_set_id = fresh.criterion_set_id

    async def _add_criteria(
        self, criterion_set: CriterionSet, criteria: list[str | CriterionIn]
    ) -> list[schemas.Criterion]:
        if isinstance(criteria, (str, CriterionIn)):
            raise ValueError("aadd_criteria takes a list; use aadd_criterion for one criterion")
        added = await self._post_criteria(
            schemas.CreateCriteriaRequest(
                criterion_set_id=criterion_set.id, criteria=[_criterion_arg(c) for c in criteria]
            )
        )
        known = {c.id for c in criterion_set.criteria or []}
        criterion_set.criteria = list(criterion_set.criteria or []) + [
            c for c in added if c.id not in known
        ]
        return added

    async def _clear_criteria(self, criterion_set: CriterionSet) -> None:
        await self._post_criteria(
            schemas.CreateCriteriaRequest(
                criterion_set_id=criterion_set.id, criteria=[], delete_existing=True
            )
        )
        criterion_set.criteria = []

    async def _link_template(
        self, criterion_set: CriterionSet, template: schemas.PromptTemplate
    ) -> CriterionSet:
        prefix = await self._prefix()
        linked = await self._http.send_json(
            "PUT",
            f"{prefix}/criterion_sets/{criterion_set.id}/prompt_templates/{template.id}",
            CriterionSet,
        )
        if template.criterion_set_id is None:
            template.criterion_set_id = criterion_set.id
        return bind(linked, self)  # type: ignore[no-any-return]

    async def _unlink_template(
        self, criterion_set: CriterionSet, template: schemas.PromptTemplate
    ) -> None:
        prefix = await self._prefix()
        await self._http.request(
            "DELETE", f"{prefix}/criterion_sets/{criterion_set.id}/prompt_templates/{template.id}"
        )
        if template.criterion_set_id == criterion_set.id:
            template.criterion_set_id = None

    # ---- criterion sets made for an experiment's criteria= --------------------------------

    async def _criteria_as_set(
        self,
        name: str,
        criterion_set: schemas.CriterionSet | None,
        criteria: list[str | schemas.CriterionIn] | None,
        *,
        allow_empty: bool,
    ) -> schemas.CriterionSet | None:
        if criteria is None:
            return criterion_set
        if criterion_set is not None:
            raise ValueError("pass criterion_set= or criteria=, not both")
        if not criteria:
            if allow_empty:
                return None
            raise ValueError("criteria= must not be empty")
        stamp = datetime.now().strftime("%Y-%m-%d %H:%M")
        created = await self.create_criterion_set(f"{name} Criteria ({stamp})")
        await created.aadd_criteria(list(criteria))
        return created

    async def _discard_criterion_set(self, criterion_set: schemas.CriterionSet) -> None:
        """Delete a criterion set made for an experiment that was refused (best effort)."""
        prefix = await self._prefix()
        try:
            await self._http.request("DELETE", f"{prefix}/criterion_sets/{criterion_set.id}")
        except ElluminateError as exc:
            logger.warning(
                "criterion set %r (id %s) was made for a refused experiment and could not be "
                "deleted: %s",
                criterion_set.name,
                criterion_set.id,
                exc,
            )
