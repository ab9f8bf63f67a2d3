# DO NOT EDIT: generated from elluminate/_async/client.py by scripts/unasync.py; edit the _async original.
"""``AsyncClient``: the whole SDK surface, written once (``Client`` is generated from it)."""

from __future__ import annotations

import logging
import os
from typing import Any

import msgspec

from .. import schemas
from .._compat import Lock, eager_init
from .._defaults import CollectionDefaults, CriterionSetDefaults, LLMConfigDefaults
from .._retry import RetryConfig
from .._transport import encode_multipart
from .._version import API_VERSION
from ..exceptions import ConfigurationError, ConflictError, NotFoundError
from ..schemas import CollectionType, CriterionIn, InferenceType
from ._http import HTTP, decoder_for
from .agent_results import AgentResultsMixin
from .experiments import ExperimentsMixin
from .models import (
    CriterionSet,
    LLMConfig,
    PromptTemplate,
    TemplateVariablesCollection,
    TemplateVariablesCollectionWithEntries,
    bind,
)
from .projects import ProjectsResource
from .scenarios import ScenarioSetsMixin
from .views import ViewsMixin

logger = logging.getLogger("elluminate")

DEFAULT_BASE_URL = "https://app.elluminate.de"
_COLLECTION_DEFAULT_KEYS = frozenset(
    {"description", "variables", "columns", "read_only", "collection_type", "environment_config"}
)


def _key_prefix(key: str | None) -> str:
    return f"{key[:4]}..." if key else "none"


def _messages_arg(
    messages: str | list[dict[str, Any]] | None, template: str | None
) -> list[dict[str, Any]]:
    """Messages from the official ``messages=`` or the ``template=`` shorthand."""
    if messages is not None and template is not None:
        raise ValueError("pass either messages= or template=, not both")
    value = template if messages is None else messages
    if value is None:
        raise ValueError("a prompt template needs messages= (a list or a string) or template=")
    if isinstance(value, str):
        return [{"role": "user", "content": value}]
    if not isinstance(value, list) or not all(isinstance(m, dict) for m in value):
        raise ValueError("messages must be a string or a list of {'role', 'content'} dicts")
    return [dict(m) for m in value]


def _response_format_arg(response_format: Any) -> dict[str, Any] | None:
    """The wire JSON schema for ``response_format`` (a dict, a pydantic model or msgspec type)."""
    if response_format is None or isinstance(response_format, dict):
        return response_format
    if isinstance(response_format, type):
        if hasattr(response_format, "model_json_schema"):
            schema = dict(response_format.model_json_schema())
        else:
            schema = dict(msgspec.json.schema(response_format))
        schema.setdefault("additionalProperties", False)
        return {
            "type": "json_schema",
            "json_schema": {
                "name": response_format.__name__.lower(),
                "schema": schema,
                "strict": True,
            },
        }
    raise ValueError(
        "response_format must be a dict, a pydantic model class or a msgspec Struct type"
    )


def _tools_arg(tools: list[Any] | None) -> list[dict[str, Any]] | None:
    if tools is None:
        return None
    out: list[dict[str, Any]] = []
    for tool in tools:
        if hasattr(tool, "model_dump"):
            tool = tool.model_dump()
        if not isinstance(tool, dict):
            raise ValueError(
                "each tool must be a dict like {'type': 'function', 'function': {...}}"
            )
        out.append(tool)
    return out


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


def _criterion_arg(criterion: str | CriterionIn | dict[str, Any]) -> CriterionIn:
    if isinstance(criterion, str):
        return CriterionIn(criterion_str=criterion)
    if isinstance(criterion, CriterionIn):
        return criterion
    if isinstance(criterion, dict):
        return CriterionIn(criterion_str=criterion["criterion_str"], label=criterion.get("label"))
    raise ValueError("a criterion is a string or a CriterionIn")


def _id_of(obj: Any, kind: str) -> int:
    if isinstance(obj, int) and not isinstance(obj, bool):
        return obj
    ident = getattr(obj, "id", None)
    if not isinstance(ident, int):
        raise ValueError(f"expected a {kind} or its integer id, got {type(obj).__name__}")
    return ident


def _one_of(name: str | None, id: int | None) -> None:
    if (name is None) == (id is None):
        raise ValueError("pass exactly one of name= or id=")


class Client(ExperimentsMixin, ViewsMixin, ScenarioSetsMixin, AgentResultsMixin):
    """Client of the elluminate API for asyncio code.

    Credentials come from the arguments or, if neither ``api_key`` nor ``token`` is given,
    from ``ELLUMINATE_API_KEY`` / ``ELLUMINATE_OAUTH_TOKEN``. Use ``async with`` (or
    ``await client.close()``) to release connections.
    """

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        token: str | None = None,
        project_id: int | None = None,
        api_key_env: str = "ELLUMINATE_API_KEY",
        token_env: str = "ELLUMINATE_OAUTH_TOKEN",
        base_url_env: str = "ELLUMINATE_BASE_URL",
        timeout: float = 120.0,
        proxy: str | None = None,
        skip_version_check: bool = False,
        fallback_to_newest: bool = False,
        retry_config: RetryConfig | None = None,
    ) -> None:
        self.base_url = (base_url or os.environ.get(base_url_env) or DEFAULT_BASE_URL).rstrip("/")
        if api_key is None and token is None:
            api_key = os.environ.get(api_key_env) or None
            token = os.environ.get(token_env) or None
        if api_key is None and token is None:
            raise ConfigurationError(
                f"no credentials: pass api_key= or token=, or set {api_key_env} or {token_env}"
            )
        if timeout <= 0:
            raise ValueError("timeout must be a positive number of seconds")
        self.api_key = api_key
        self.token = token
        self.timeout = timeout
        self.proxy = proxy
        self.project_id = project_id
        self.skip_version_check = skip_version_check
        self.fallback_to_newest = fallback_to_newest
        self.retry_config = retry_config or RetryConfig()
        headers = {"SDK-Version": API_VERSION, "Accept": "*/*"}
        if api_key is not None:
            headers["X-API-Key"] = api_key
        else:
            headers["Authorization"] = f"Bearer {token}"
        self._http = HTTP(
            base_url=self.base_url,
            headers=headers,
            timeout=timeout,
            proxy=proxy,
            retry_config=self.retry_config,
        )
        self.current_project: schemas.Project | None = None
        self.project_route_prefix: str | None = None
        self.projects = ProjectsResource(self)
        self._init_lock = Lock()
        logger.debug("client for %s with key %s", self.base_url, _key_prefix(api_key or token))
        eager_init(self._initialize, self.close)

    def __repr__(self) -> str:
        project = self.current_project.id if self.current_project else None
        return f"{type(self).__name__}(base_url={self.base_url!r}, project={project})"

    # ---- lifecycle -------------------------------------------------------------------------

    def __enter__(self) -> Client:
        try:
            self._initialize()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the client's connections (idempotent)."""
        self._http.close()

    def get_info(self) -> str:
        """A one-line description of the connection, for debugging."""
        project = self.current_project
        return (
            f"elluminate client: {self.base_url}, project "
            f"{project.id if project else '?'} ({project.name if project else 'not resolved'}), "
            f"key {_key_prefix(self.api_key or self.token)}"
        )

    def _initialize(self) -> None:
        if self.project_route_prefix is not None:
            return
        with self._init_lock:
            if self.project_route_prefix is not None:
                return
            if not self.skip_version_check:
                self.check_version()
            self.projects.load_project(
                self.project_id, fallback_to_newest=self.fallback_to_newest
            )

    def _prefix(self) -> str:
        if self.project_route_prefix is None:
            self._initialize()
        assert self.project_route_prefix is not None
        return self.project_route_prefix

    def check_version(self) -> None:
        """Ask the server whether this SDK's API revision is supported (logs if not)."""
        resp = self._http.request(
            "POST",
            "/api/v0/version/compatible",
            json={"current_sdk_version": API_VERSION},
            retry=False,
        )
        answer = decoder_for(schemas.VersionCheckResponse).decode(resp.content)
        if not answer.is_compatible:
            logger.warning(
                "the server requires SDK API version %s; this client speaks %s",
                answer.required_sdk_version,
                API_VERSION,
            )

    # ---- prompt templates -----------------------------------------------------------------

    def create_prompt_template(
        self,
        name: str,
        messages: str | list[dict[str, Any]] | None = None,
        response_format: Any = None,
        tools: list[Any] | None = None,
        tool_choice: Any = None,
        template: str | None = None,
    ) -> PromptTemplate:
        """Create a prompt template (``messages=[...]`` or the ``template="..."`` shorthand).

        An existing name with different content becomes its next version; identical
        content raises ConflictError.
        """
        body = self._template_request(name, messages, response_format, tools, tool_choice, template)
        return self._create("prompt_templates", PromptTemplate, body, "prompt template")

    def _template_request(
        self,
        name: str,
        messages: str | list[dict[str, Any]] | None,
        response_format: Any,
        tools: list[Any] | None,
        tool_choice: Any,
        template: str | None,
        parent_id: int | None = None,
    ) -> schemas.CreatePromptTemplateRequest:
        if tool_choice is not None and not tools:
            raise ValueError("tool_choice needs tools")
        return schemas.CreatePromptTemplateRequest(
            name=name,
            messages=_messages_arg(messages, template),
            response_format_json_schema=_response_format_arg(response_format),
            tools=_tools_arg(tools),
            tool_choice=tool_choice,
            parent_prompt_template_id=parent_id,
        )

    def get_prompt_template(
        self, *, name: str | None = None, id: int | None = None, version: int | None = None
    ) -> PromptTemplate:
        """A prompt template by id, or by name (latest version unless ``version`` is given)."""
        _one_of(name, id)
        prefix = self._prefix()
        if id is not None:
            found = self._http.get(f"{prefix}/prompt_templates/{id}", PromptTemplate)
            return bind(found, self)  # type: ignore[no-any-return]
        page = self._http.get_page(
            f"{prefix}/prompt_templates", PromptTemplate, {"name": name, "version": version}
        )
        if not page.items:
            suffix = f" version {version}" if version is not None else ""
            raise NotFoundError(f"no prompt template named {name!r}{suffix}")
        return bind(page.items[0], self)  # type: ignore[no-any-return]

    def get_or_create_prompt_template(
        self,
        name: str,
        messages: str | list[dict[str, Any]] | None = None,
        *,
        response_format: Any = None,
        tools: list[Any] | None = None,
        tool_choice: Any = None,
        template: str | None = None,
    ) -> tuple[PromptTemplate, bool]:
        """``(template, created)``: the identical existing version, or a newly created one."""
        body = self._template_request(name, messages, response_format, tools, tool_choice, template)
        prefix = self._prefix()
        try:
            created = self._http.send_json(
                "POST", f"{prefix}/prompt_templates", PromptTemplate, body
            )
            return bind(created, self), True
        except ConflictError as exc:
            existing_id = exc.resource_id
            if existing_id is None:
                raise ValueError(
                    f"prompt template {name!r} exists but the server did not say which one"
                ) from exc
        return self.get_prompt_template(id=existing_id), False

    def list_prompt_templates(self, name: str | None = None) -> list[PromptTemplate]:
        """All prompt templates (every version), optionally only those named ``name``."""
        prefix = self._prefix()
        items = self._http.paginate(
            f"{prefix}/prompt_templates", PromptTemplate, {"name": name, "sort_options": "{}"}
        )
        return bind(items, self)  # type: ignore[no-any-return]

    def delete_prompt_template(self, prompt_template: schemas.PromptTemplate | int) -> None:
        """Delete a prompt template version."""
        prefix = self._prefix()
        ident = _id_of(prompt_template, "prompt template")
        self._http.request("DELETE", f"{prefix}/prompt_templates/{ident}")

    def _new_template_version(
        self,
        source: schemas.PromptTemplate,
        messages: str | list[dict[str, Any]] | None,
        response_format: Any,
        tools: list[Any] | None,
        tool_choice: Any,
        template: str | None,
    ) -> PromptTemplate:
        if messages is None and template is None:
            messages = source.messages
        body = self._template_request(
            source.name,
            messages,
            source.response_format_json_schema if response_format is None else response_format,
            source.tools if tools is None else tools,
            source.tool_choice if tool_choice is None else tool_choice,
            template,
            parent_id=source.id,
        )
        prefix = self._prefix()
        created = self._http.send_json(
            "POST", f"{prefix}/prompt_templates", PromptTemplate, body
        )
        return bind(created, self)  # type: ignore[no-any-return]

    # ---- collections ----------------------------------------------------------------------

    def create_collection(
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
        return self._create(
            "collections", TemplateVariablesCollectionWithEntries, body, "collection"
        )

    def get_collection(
        self, *, name: str | None = None, id: int | None = None
    ) -> TemplateVariablesCollectionWithEntries:
        """A collection with all its entries, by name or id."""
        _one_of(name, id)
        prefix = self._prefix()
        if id is None:
            page = self._http.get_page(
                f"{prefix}/collections", TemplateVariablesCollection, {"name": name}
            )
            if not page.items:
                raise NotFoundError(f"no collection named {name!r}")
            id = page.items[0].id
        found = self._http.get(
            f"{prefix}/collections/{id}", TemplateVariablesCollectionWithEntries
        )
        return bind(found, self)  # type: ignore[no-any-return]

    def get_or_create_collection(
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
            return self.create_collection(name, **given), True
        except ConflictError:
            pass
        existing = self.get_collection(name=name)
        if given:
            logger.info(
                "collection %r exists; defaults %s were not applied", name, sorted(given)
            )
        return existing, False

    def list_collections(
        self, compatible_prompt_template: schemas.PromptTemplate | None = None
    ) -> list[TemplateVariablesCollection]:
        """All collections (without entries), optionally only those fitting a template."""
        prefix = self._prefix()
        params = {
            "compatible_prompt_template_id": compatible_prompt_template.id
            if compatible_prompt_template is not None
            else None
        }
        items = self._http.paginate(
            f"{prefix}/collections", TemplateVariablesCollection, params
        )
        return bind(items, self)  # type: ignore[no-any-return]

    def delete_collection(
        self, collection: schemas.TemplateVariablesCollection | int
    ) -> None:
        """Delete a collection and its entries."""
        prefix = self._prefix()
        self._http.request(
            "DELETE", f"{prefix}/collections/{_id_of(collection, 'collection')}"
        )

    def _add_entries(
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
        prefix = self._prefix()
        resp = self._http.request(
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

    def _clear_collection(
        self, collection: TemplateVariablesCollectionWithEntries
    ) -> TemplateVariablesCollectionWithEntries:
        prefix = self._prefix()
        self._http.request("DELETE", f"{prefix}/collections/{collection.id}/entries")
        return self.get_collection(id=collection.id)

    def _generate_entry(
        self,
        collection: TemplateVariablesCollectionWithEntries,
        prompt_template: schemas.PromptTemplate,
    ) -> schemas.TemplateVariables:
        prefix = self._prefix()
        body = schemas.CreateEntryRequest(input_values=None, prompt_template_id=prompt_template.id)
        entry: schemas.TemplateVariables = self._http.send_json(
            "POST", f"{prefix}/collections/{collection.id}/entries", schemas.TemplateVariables, body
        )
        collection.variables.append(entry)
        collection.variables_count = len(collection.variables)
        return entry

    def _get_entry(
        self, collection: schemas.TemplateVariablesCollection, entry_id: int
    ) -> schemas.TemplateVariables:
        prefix = self._prefix()
        return self._http.get(
            f"{prefix}/collections/{collection.id}/entries/{entry_id}", schemas.TemplateVariables
        )

    def _update_entry(
        self,
        collection: schemas.TemplateVariablesCollection,
        entry: schemas.TemplateVariables | int,
        input_values: dict[str, Any],
    ) -> schemas.TemplateVariables:
        _check_rows([input_values])
        prefix = self._prefix()
        entry_id = _id_of(entry, "entry")
        updated: schemas.TemplateVariables = self._http.send_json(
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

    def _delete_entry(
        self,
        collection: schemas.TemplateVariablesCollection,
        entry: schemas.TemplateVariables | int,
    ) -> None:
        prefix = self._prefix()
        entry_id = _id_of(entry, "entry")
        self._http.request(
            "DELETE", f"{prefix}/collections/{collection.id}/entries/{entry_id}"
        )
        if isinstance(collection, schemas.TemplateVariablesCollectionWithEntries):
            collection.variables = [v for v in collection.variables if v.id != entry_id]
            collection.variables_count = len(collection.variables)

    # ---- criteria and criterion sets ------------------------------------------------------

    def create_criterion_set(
        self, name: str, criteria: list[str | CriterionIn] | None = None
    ) -> CriterionSet:
        """Create a criterion set, optionally with its first criteria."""
        body = schemas.CreateCriterionSetRequest(
            name=name, criteria=[_criterion_arg(c) for c in criteria] if criteria else None
        )
        return self._create("criterion_sets", CriterionSet, body, "criterion set")

    def get_criterion_set(
        self, *, name: str | None = None, id: int | None = None
    ) -> CriterionSet:
        """A criterion set by name or id."""
        _one_of(name, id)
        prefix = self._prefix()
        if id is not None:
            found = self._http.get(f"{prefix}/criterion_sets/{id}", CriterionSet)
            return bind(found, self)  # type: ignore[no-any-return]
        page = self._http.get_page(f"{prefix}/criterion_sets", CriterionSet, {"name": name})
        if not page.items:
            raise NotFoundError(f"no criterion set named {name!r}")
        return bind(page.items[0], self)  # type: ignore[no-any-return]

    def get_or_create_criterion_set(
        self, name: str, defaults: CriterionSetDefaults | None = None
    ) -> tuple[CriterionSet, bool]:
        """``(criterion_set, created)``; ``defaults={"criteria": [...]}`` is used only to create."""
        given: dict[str, Any] = dict(defaults or {})
        unknown = set(given) - {"criteria"}
        if unknown:
            raise ValueError(f"unknown defaults {sorted(unknown)}; allowed: ['criteria']")
        try:
            return self.get_criterion_set(name=name), False
        except NotFoundError:
            pass
        try:
            return self.create_criterion_set(name, criteria=given.get("criteria")), True
        except ConflictError:  # created concurrently by someone else
            return self.get_criterion_set(name=name), False

    def list_criterion_sets(self) -> list[CriterionSet]:
        """All criterion sets of the project."""
        prefix = self._prefix()
        return bind(self._http.paginate(f"{prefix}/criterion_sets", CriterionSet), self)  # type: ignore[no-any-return]

    def delete_criterion_set(self, criterion_set: schemas.CriterionSet | int) -> None:
        """Delete a criterion set and its criteria."""
        prefix = self._prefix()
        self._http.request(
            "DELETE", f"{prefix}/criterion_sets/{_id_of(criterion_set, 'criterion set')}"
        )

    def list_criteria(
        self,
        prompt_template: schemas.PromptTemplate | None = None,
        criterion_set: schemas.CriterionSet | None = None,
    ) -> list[schemas.Criterion]:
        """Criteria of a template (through its criterion sets) or of one set, or all."""
        return self._list_criteria(
            prompt_template_id=prompt_template.id if prompt_template is not None else None,
            criterion_set_id=criterion_set.id if criterion_set is not None else None,
        )

    def edit_criterion(
        self,
        criterion: schemas.Criterion | int,
        criterion_str: str | None = None,
        label: str | None = None,
    ) -> schemas.Criterion:
        """Change a criterion; the server keeps the old version for past ratings (new id)."""
        prefix = self._prefix()
        edited: schemas.Criterion = self._http.send_json(
            "PUT",
            f"{prefix}/criteria/{_id_of(criterion, 'criterion')}",
            schemas.Criterion,
            schemas.UpdateCriterionRequest(criterion_str=criterion_str, label=label),
        )
        return edited

    def delete_criterion(self, criterion: schemas.Criterion | int) -> None:
        """Delete a criterion."""
        prefix = self._prefix()
        self._http.request("DELETE", f"{prefix}/criteria/{_id_of(criterion, 'criterion')}")

    def _list_criteria(
        self, prompt_template_id: int | None = None, criterion_set_id: int | None = None
    ) -> list[schemas.Criterion]:
        prefix = self._prefix()
        return self._http.paginate(
            f"{prefix}/criteria",
            schemas.Criterion,
            {"prompt_template_id": prompt_template_id, "criterion_set_id": criterion_set_id},
        )

    def _post_criteria(self, body: schemas.CreateCriteriaRequest) -> list[schemas.Criterion]:
        prefix = self._prefix()
        created: list[schemas.Criterion] = self._http.send_json(
            "POST", f"{prefix}/criteria", list[schemas.Criterion], body
        )
        return created

    def _generate_criteria(
        self, template: schemas.PromptTemplate, delete_existing: bool
    ) -> list[schemas.Criterion]:
        criteria = self._post_criteria(
            schemas.CreateCriteriaRequest(
                prompt_template_id=template.id, criteria=None, delete_existing=delete_existing
            )
        )
        self._refresh_template_link(template)
        return criteria

    def _get_or_generate_criteria(
        self, template: schemas.PromptTemplate
    ) -> tuple[list[schemas.Criterion], bool]:
        try:
            return self._generate_criteria(template, False), True
        except ConflictError:
            return self._list_criteria(prompt_template_id=template.id), False

    def _refresh_template_link(self, template: schemas.PromptTemplate) -> None:
        if template.criterion_set_id is None:
            fresh = self.get_prompt_template(id=template.id)
            template.criterion_set_id = fresh.criterion_set_id

    def _add_criteria(
        self, criterion_set: CriterionSet, criteria: list[str | CriterionIn]
    ) -> list[schemas.Criterion]:
        if isinstance(criteria, (str, CriterionIn)):
            raise ValueError("aadd_criteria takes a list; use aadd_criterion for one criterion")
        added = self._post_criteria(
            schemas.CreateCriteriaRequest(
                criterion_set_id=criterion_set.id, criteria=[_criterion_arg(c) for c in criteria]
            )
        )
        known = {c.id for c in criterion_set.criteria or []}
        criterion_set.criteria = list(criterion_set.criteria or []) + [
            c for c in added if c.id not in known
        ]
        return added

    def _clear_criteria(self, criterion_set: CriterionSet) -> None:
        self._post_criteria(
            schemas.CreateCriteriaRequest(
                criterion_set_id=criterion_set.id, criteria=[], delete_existing=True
            )
        )
        criterion_set.criteria = []

    def _link_template(
        self, criterion_set: CriterionSet, template: schemas.PromptTemplate
    ) -> CriterionSet:
        prefix = self._prefix()
        linked = self._http.send_json(
            "PUT",
            f"{prefix}/criterion_sets/{criterion_set.id}/prompt_templates/{template.id}",
            CriterionSet,
        )
        if template.criterion_set_id is None:
            template.criterion_set_id = criterion_set.id
        return bind(linked, self)  # type: ignore[no-any-return]

    def _unlink_template(
        self, criterion_set: CriterionSet, template: schemas.PromptTemplate
    ) -> None:
        prefix = self._prefix()
        self._http.request(
            "DELETE", f"{prefix}/criterion_sets/{criterion_set.id}/prompt_templates/{template.id}"
        )
        if template.criterion_set_id == criterion_set.id:
            template.criterion_set_id = None

    # ---- LLM configs ----------------------------------------------------------------------

    def create_llm_config(
        self,
        name: str,
        llm_model_name: str,
        api_key: str | None = None,
        description: str = "",
        llm_base_url: str | None = None,
        api_version: str | None = None,
        max_connections: int = 10,
        max_retries: int | None = None,
        timeout: int | None = None,
        system_message: str | None = None,
        max_tokens: int | None = None,
        top_p: float | None = None,
        temperature: float | None = None,
        best_of: int | None = None,
        top_k: int | None = None,
        logprobs: bool | None = None,
        top_logprobs: int | None = None,
        reasoning_effort: str | None = None,
        verbosity: str | None = None,
        inference_type: str | InferenceType = InferenceType.OPENAI,
        custom_api_config: dict[str, Any] | None = None,
        custom_response_parser: str | None = None,
    ) -> LLMConfig:
        """Register a model endpoint and its sampling settings (``api_key`` is stored masked)."""
        try:
            body = msgspec.convert(
                {
                    "name": name,
                    "description": description,
                    "llm_model_name": llm_model_name,
                    "llm_base_url": llm_base_url,
                    "api_key": api_key,
                    "api_version": api_version,
                    "max_connections": max_connections,
                    "inference_type": str(InferenceType(inference_type)),
                    "max_retries": max_retries,
                    "timeout": timeout,
                    "system_message": system_message,
                    "max_tokens": max_tokens,
                    "top_p": top_p,
                    "temperature": temperature,
                    "best_of": best_of,
                    "top_k": top_k,
                    "logprobs": logprobs,
                    "top_logprobs": top_logprobs,
                    "reasoning_effort": reasoning_effort,
                    "verbosity": verbosity,
                    "custom_api_config": custom_api_config,
                    "custom_response_parser": custom_response_parser,
                },
                schemas.CreateLLMConfigRequest,
            )
        except msgspec.ValidationError as exc:
            raise ValueError(f"invalid LLM config: {exc}") from None
        return self._create("llm_configs", LLMConfig, body, "LLM config")

    def get_llm_config(self, *, name: str | None = None, id: int | None = None) -> LLMConfig:
        """An LLM config by name or id."""
        _one_of(name, id)
        prefix = self._prefix()
        if id is not None:
            return bind(self._http.get(f"{prefix}/llm_configs/{id}", LLMConfig), self)  # type: ignore[no-any-return]
        page = self._http.get_page(f"{prefix}/llm_configs", LLMConfig, {"name": name})
        if not page.items:
            raise NotFoundError(f"no LLM config named {name!r}")
        return bind(page.items[0], self)  # type: ignore[no-any-return]

    def get_or_create_llm_config(
        self, name: str, defaults: LLMConfigDefaults | None = None
    ) -> tuple[LLMConfig, bool]:
        """``(config, created)``; ``defaults`` (create arguments) apply only to create."""
        given: dict[str, Any] = dict(defaults or {})
        try:
            return self.get_llm_config(name=name), False
        except NotFoundError:
            pass
        if "llm_model_name" not in given:
            raise ValueError("creating an LLM config needs defaults={'llm_model_name': ...}")
        try:
            return self.create_llm_config(name, **given), True
        except ConflictError:
            return self.get_llm_config(name=name), False

    def list_llm_configs(self) -> list[LLMConfig]:
        """All LLM configs of the project."""
        prefix = self._prefix()
        return bind(self._http.paginate(f"{prefix}/llm_configs", LLMConfig), self)  # type: ignore[no-any-return]

    def delete_llm_config(self, llm_config: schemas.LLMConfig | int) -> None:
        """Delete an LLM config."""
        prefix = self._prefix()
        self._http.request(
            "DELETE", f"{prefix}/llm_configs/{_id_of(llm_config, 'LLM config')}"
        )


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
