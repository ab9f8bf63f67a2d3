"""The conversation envelope: the value of a CONVERSATION column cell (CONTRACT.md 7.18).
The official package's import path.

``UCEPayloadV1.from_openai(messages, tools=..., response_format=...)`` builds it from an
OpenAI chat-completions request; ``to_uce_dict()`` is the JSON to store in the cell::

    {"schema_version": "elluminate.uce/1",
     "input": {"messages": [...], "tools"?, "tool_choice"?, "response_format"?,
               "attachments"?, "metadata"?}}
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from ._checks import check_choice, check_list, check_mapping, check_messages, coerce
from ._wire import Wire

_UCE_SCHEMA_VERSION = "elluminate.uce/1"
_TOOL_CHOICES = ("none", "auto", "required")
_HINTS = ("json_object", "text")


class ResponseFormat(Wire, kw_only=True):
    """The structured-output wish of a conversation: a JSON schema (on the wire
    ``json_schema``) or a ``hint`` (``json_object`` or ``text``)."""

    response_schema: dict[str, Any] | None = msgspec.field(default=None, name="json_schema")
    hint: Literal["json_object", "text"] | None = None

    def __post_init__(self) -> None:
        check_mapping("ResponseFormat", "response_schema", self.response_schema)
        if self.hint is not None:
            check_choice("ResponseFormat", "hint", self.hint, _HINTS)

    @classmethod
    def from_openai(cls, response_format: ResponseFormat | dict[str, Any]) -> ResponseFormat:
        """From an OpenAI ``response_format``: ``{"type": "json_schema", "json_schema":
        {"schema": ...}}`` keeps the inner schema; ``{"type": "json_object"}`` and
        ``{"type": "text"}`` become hints."""
        if isinstance(response_format, ResponseFormat):
            return response_format
        if not isinstance(response_format, dict):
            raise ValueError(
                "response_format must be a ResponseFormat or an OpenAI response_format dict, "
                f"not {type(response_format).__name__}"
            )
        kind = response_format.get("type")
        if kind == "json_schema":
            spec = response_format.get("json_schema")
            schema = spec.get("schema") if isinstance(spec, dict) else None
            if not isinstance(schema, dict):
                raise ValueError(
                    "an OpenAI response_format of type 'json_schema' needs "
                    "{'json_schema': {'name': ..., 'schema': {...}}}: the schema is missing"
                )
            return cls(response_schema=schema)
        if kind in _HINTS:
            return cls(hint=kind)
        raise ValueError(
            f"response_format type must be 'json_schema', 'json_object' or 'text', not {kind!r}"
        )


class UCEInput(Wire, kw_only=True):
    """The request part of the envelope."""

    messages: list[dict[str, Any]] = []
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    response_format: ResponseFormat | None = None
    attachments: list[dict[str, Any]] | None = None
    metadata: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        self.response_format = coerce(
            "UCEInput", "response_format", self.response_format, ResponseFormat | None
        )
        check_list("UCEInput", "messages", self.messages)
        check_list("UCEInput", "tools", self.tools)
        check_list("UCEInput", "attachments", self.attachments)
        check_mapping("UCEInput", "metadata", self.metadata)


class UCEPayloadV1(Wire, kw_only=True):
    """A conversation envelope, version ``elluminate.uce/1``."""

    schema_version: Literal["elluminate.uce/1"] = "elluminate.uce/1"
    input: UCEInput

    def __post_init__(self) -> None:
        check_choice("UCEPayloadV1", "schema_version", self.schema_version, [_UCE_SCHEMA_VERSION])
        self.input = coerce("UCEPayloadV1", "input", self.input, UCEInput)

    @classmethod
    def from_openai(
        cls,
        messages: list[dict[str, Any]],
        *,
        tools: list[dict[str, Any]] | None = None,
        tool_choice: str | dict[str, Any] | None = None,
        response_format: ResponseFormat | dict[str, Any] | None = None,
        attachments: list[dict[str, Any]] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> UCEPayloadV1:
        """The envelope of an OpenAI chat-completions request (at least one message)."""
        checked = check_messages("from_openai", "messages", messages)
        if not checked:
            raise ValueError("messages must hold at least one message to build a conversation")
        return cls(
            input=UCEInput(
                messages=checked,
                tools=_check_tools(tools),
                tool_choice=_check_tool_choice(tool_choice),
                response_format=None
                if response_format is None
                else ResponseFormat.from_openai(response_format),
                attachments=None if attachments is None else list(attachments),
                metadata=None if metadata is None else dict(metadata),
            )
        )

    def to_uce_dict(self) -> dict[str, Any]:
        """The JSON value to store in a CONVERSATION cell (unset keys left out)."""
        data: dict[str, Any] = msgspec.to_builtins(self)
        body = {k: v for k, v in data["input"].items() if v is not None}
        if "response_format" in body:
            body["response_format"] = {
                k: v for k, v in body["response_format"].items() if v is not None
            }
        return {"schema_version": data["schema_version"], "input": body}


class ResolvedPromptContext(Wire, kw_only=True):
    """The messages, tools, tool choice and response format a prompt resolved to."""

    messages: list[dict[str, Any]] = []
    tools: list[dict[str, Any]] | None = None
    tool_choice: dict[str, Any] | str | None = None
    response_format: dict[str, Any] | None = None


def _check_tools(tools: Any) -> list[dict[str, Any]] | None:
    if tools is None:
        return None
    if not isinstance(tools, (list, tuple)):
        raise ValueError(f"tools must be a list of tool definitions, not {type(tools).__name__}")
    out = []
    for index, tool in enumerate(tools):
        function = tool.get("function") if isinstance(tool, dict) else None
        if (
            not isinstance(tool, dict)
            or tool.get("type") != "function"
            or not isinstance(function, dict)
            or not isinstance(function.get("name"), str)
        ):
            raise ValueError(
                f"tools[{index}] must look like {{'type': 'function', 'function': "
                f"{{'name': ..., 'parameters': {{...}}}}}}, not {tool!r}"
            )
        out.append(tool)
    return out


def _check_tool_choice(tool_choice: Any) -> str | dict[str, Any] | None:
    if tool_choice is None or tool_choice in _TOOL_CHOICES:
        return tool_choice  # type: ignore[no-any-return]
    if isinstance(tool_choice, dict) and isinstance(tool_choice.get("type"), str):
        return tool_choice
    raise ValueError(
        "tool_choice must be 'none', 'auto', 'required' or a dict like "
        f"{{'type': 'function', 'function': {{'name': ...}}}}, not {tool_choice!r}"
    )


__all__ = ["ResolvedPromptContext", "ResponseFormat", "UCEInput", "UCEPayloadV1"]
