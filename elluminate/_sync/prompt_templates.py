# DO NOT EDIT: generated from elluminate/_async/prompt_templates.py by scripts/unasync.py; edit the _async original.
"""Prompt templates and their versions (mixed into ``AsyncClient``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

import msgspec

from .. import schemas
from .._arguments import check_name_or_id, id_of
from ..exceptions import ConflictError, NotFoundError
from .models import PromptTemplate, bind

if TYPE_CHECKING:
    from ._http import HTTP

T = TypeVar("T")


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


class PromptTemplatesMixin:
    """Prompt-template methods of the client and the operations behind ``PromptTemplate``."""

    _http: HTTP

    if TYPE_CHECKING:  # provided by the client class

        def _prefix(self) -> str: ...

        def _create(self, resource: str, type_: type[T], body: Any, kind: str) -> T: ...

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
        check_name_or_id(name, id)
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
        ident = id_of(prompt_template, "prompt template")
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
