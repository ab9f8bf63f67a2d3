"""Collections of test cases and their entries (mixed into ``AsyncClient``)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, TypeVar

import msgspec

from .. import schemas
from .._arguments import check_name_or_id, id_of
from .._defaults import CollectionDefaults
from .._transport import encode_multipart
from ..exceptions import ConflictError, NotFoundError
from ..schemas import CollectionType
from ._http import decoder_for
from .models import TemplateVariablesCollection, TemplateVariablesCollectionWithEntries, bind

if TYPE_CHECKING:
    from ._http import AsyncHTTP

logger = logging.getLogger("elluminate")
T = TypeVar("T")

_COLLECTION_DEFAULT_KEYS = frozenset(
    {"description", "variables", "columns", "read_only", "collection_type", "environment_config"}
)


def _column_arg(column: str | schemas.CollectionColumn | dict[str, Any]) -> dict[str, Any]:
    if isinstance(column, str):
        return {"name": column, "default_value": "", "column_position": 0}
    if isinstance(column, schemas.CollectionColumn):
        data = msgspec.structs.asdict(column)
    elif isinstance(column, dict):
        data = dict(column)
    else:
        raise ValueError("a column is a name, a CollectionColumn or a dict")
    data.setdefault("default_value", "")
    data.setdefault("column_position", 0)
    return {
        k: (v.value if hasattr(v, "value") else v)
        for k, v in data.items()
        if v is not None or k in ("default_value", "column_position")
    }


_ROW_ENCODER = msgspec.json.Encoder()


def _check_rows(rows: Any) -> None:
    if not isinstance(rows, list):
        raise ValueError("variables must be a list of dicts (one dict per test case)")
    for index, row in enumerate(rows):
        if not isinstance(row, dict):
            raise ValueError(
                f"entry {index} is a {type(row).__name__}, not a dict of column name -> value"
            )
        for key in row:
            if not isinstance(key, str) or not key:
                raise ValueError(f"entry {index} has a non-string or empty column name {key!r}")


class CollectionsMixin:
    """Collection methods of the client and the operations behind the collection models."""

    _http: AsyncHTTP

    if TYPE_CHECKING:  # provided by the client class

        async def _prefix(self) -> str: ...

        async def _create(self, resource: str, type_: type[T], body: Any, kind: str) -> T: ...

    async def create_collection(
        self,
        name: str,
        description: str = "",
        variables: list[dict[str, Any]] | None = None,
        columns: list[str | schemas.CollectionColumn | dict[str, Any]] | None = None,
        read_only: bool = False,
        collection_type: str | CollectionType = CollectionType.STANDARD,
        environment_config: dict[str, Any] | None = None,
    ) -> TemplateVariablesCollectionWithEntries:
        """Create a collection of test cases, optionally with columns and first entries."""
        if variables is not None:
            _check_rows(variables)
        body = schemas.CreateCollectionRequest(
            name=name,
            description=description,
            read_only=read_only,
            collection_type=CollectionType(collection_type),
            variables=variables,
            columns=[_column_arg(c) for c in columns] if columns is not None else None,
            environment_config=environment_config,
        )
        return await self._create(
            "collections", TemplateVariablesCollectionWithEntries, body, "collection"
        )

    async def get_collection(
        self, *, name: str | None = None, id: int | None = None
    ) -> TemplateVariablesCollectionWithEntries:
        """A collection with all its entries, by name or id."""
        check_name_or_id(name, id)
        prefix = await self._prefix()
        if id is None:
            page = await self._http.get_page(
                f"{prefix}/collections", TemplateVariablesCollection, {"name": name}
            )
            if not page.items:
                raise NotFoundError(f"no collection named {name!r}")
            id = page.items[0].id
        found = await self._http.get(
            f"{prefix}/collections/{id}", TemplateVariablesCollectionWithEntries
        )
        return bind(found, self)  # type: ignore[no-any-return]

    async def get_or_create_collection(
        self, name: str, defaults: CollectionDefaults | None = None
    ) -> tuple[TemplateVariablesCollectionWithEntries, bool]:
        """``(collection, created)``; ``defaults`` (create arguments) apply only to create."""
        given: dict[str, Any] = dict(defaults or {})
        unknown = set(given) - _COLLECTION_DEFAULT_KEYS
        if unknown:
            raise ValueError(
                f"unknown defaults {sorted(unknown)}; allowed: {sorted(_COLLECTION_DEFAULT_KEYS)}"
            )
        try:
            return await self.create_collection(name, **given), True
        except ConflictError:
            pass
        existing = await self.get_collection(name=name)
        if given:
            logger.info(
                "collection %r exists; defaults %s were not applied", name, sorted(given)
            )
        return existing, False

    async def list_collections(
        self, compatible_prompt_template: schemas.PromptTemplate | None = None
    ) -> list[TemplateVariablesCollection]:
        """All collections (without entries), optionally only those fitting a template."""
        prefix = await self._prefix()
        params = {
            "compatible_prompt_template_id": compatible_prompt_template.id
            if compatible_prompt_template is not None
            else None
        }
        items = await self._http.paginate(
            f"{prefix}/collections", TemplateVariablesCollection, params
        )
        return bind(items, self)  # type: ignore[no-any-return]

    async def delete_collection(
        self, collection: schemas.TemplateVariablesCollection | int
    ) -> None:
        """Delete a collection and its entries."""
        prefix = await self._prefix()
        await self._http.request(
            "DELETE", f"{prefix}/collections/{id_of(collection, 'collection')}"
        )

    async def _add_entries(
        self,
        collection: TemplateVariablesCollectionWithEntries,
        variables: list[dict[str, Any]],
        skip_existing: bool,
    ) -> list[schemas.TemplateVariables]:
        _check_rows(variables)
        if not variables:
            return []
        payload = b"\n".join(_ROW_ENCODER.encode(row) for row in variables)
        body, content_type = encode_multipart(
            "file", "variables.jsonl", "application/jsonl", payload
        )
        prefix = await self._prefix()
        resp = await self._http.request(
            "POST",
            f"{prefix}/collections/{collection.id}/entries/batches",
            params={"skip_existing": skip_existing},
            content=body,
            content_type=content_type,
        )
        added: list[schemas.TemplateVariables] = decoder_for(
            list[schemas.TemplateVariables]
        ).decode(resp.content)
        collection.variables.extend(added)
        collection.variables_count = len(collection.variables)
        return added

    async def _clear_collection(
        self, collection: TemplateVariablesCollectionWithEntries
    ) -> TemplateVariablesCollectionWithEntries:
        prefix = await self._prefix()
        await self._http.request("DELETE", f"{prefix}/collections/{collection.id}/entries")
        return await self.get_collection(id=collection.id)

    async def _generate_entry(
        self,
        collection: TemplateVariablesCollectionWithEntries,
        prompt_template: schemas.PromptTemplate,
    ) -> schemas.TemplateVariables:
        prefix = await self._prefix()
        body = schemas.CreateEntryRequest(input_values=None, prompt_template_id=prompt_template.id)
        entry: schemas.TemplateVariables = await self._http.send_json(
            "POST", f"{prefix}/collections/{collection.id}/entries", schemas.TemplateVariables, body
        )
        collection.variables.append(entry)
        collection.variables_count = len(collection.variables)
        return entry

    async def _get_entry(
        self, collection: schemas.TemplateVariablesCollection, entry_id: int
    ) -> schemas.TemplateVariables:
        prefix = await self._prefix()
        return await self._http.get(
            f"{prefix}/collections/{collection.id}/entries/{entry_id}", schemas.TemplateVariables
        )

    async def _update_entry(
        self,
        collection: schemas.TemplateVariablesCollection,
        entry: schemas.TemplateVariables | int,
        input_values: dict[str, Any],
    ) -> schemas.TemplateVariables:
        _check_rows([input_values])
        prefix = await self._prefix()
        entry_id = id_of(entry, "entry")
        updated: schemas.TemplateVariables = await self._http.send_json(
            "PUT",
            f"{prefix}/collections/{collection.id}/entries/{entry_id}",
            schemas.TemplateVariables,
            schemas.UpdateEntryRequest(input_values=input_values),
        )
        if isinstance(collection, schemas.TemplateVariablesCollectionWithEntries):
            collection.variables = [
                updated if v.id == entry_id else v for v in collection.variables
            ]
        return updated

    async def _delete_entry(
        self,
        collection: schemas.TemplateVariablesCollection,
        entry: schemas.TemplateVariables | int,
    ) -> None:
        prefix = await self._prefix()
        entry_id = id_of(entry, "entry")
        await self._http.request(
            "DELETE", f"{prefix}/collections/{collection.id}/entries/{entry_id}"
        )
        if isinstance(collection, schemas.TemplateVariablesCollectionWithEntries):
            collection.variables = [v for v in collection.variables if v.id != entry_id]
            collection.variables_count = len(collection.variables)
