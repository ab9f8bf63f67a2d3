"""``{{placeholder}}`` parsing and rendering (pure; shared by the SDK and the server)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

PLACEHOLDER = re.compile(r"\{\{\s*(\w+)\s*\}\}")
_OPEN = "{{"


class TemplateSyntaxError(ValueError):
    """A template string is malformed (e.g. an unclosed ``{{``)."""


def check_template_str(text: str) -> None:
    """Raise TemplateSyntaxError if ``text`` has a ``{{`` that is not a valid placeholder."""
    pos = 0
    while True:
        start = text.find(_OPEN, pos)
        if start < 0:
            return
        match = PLACEHOLDER.match(text, start)
        if match is None:
            end = text.find("}}", start)
            snippet = text[start : (end + 2 if end >= 0 else start + 30)]
            if end < 0:
                raise TemplateSyntaxError(
                    f"unclosed placeholder at position {start}: {snippet!r}; write {{{{name}}}}"
                )
            raise TemplateSyntaxError(
                f"invalid placeholder {snippet!r} at position {start}: a placeholder is "
                "{{name}} with letters, digits or underscores"
            )
        pos = match.end()


def placeholders_of(text: str) -> list[str]:
    """Placeholder names in ``text``, in order of first appearance, without duplicates."""
    return list(dict.fromkeys(PLACEHOLDER.findall(text)))


def _string_contents(messages: Iterable[dict[str, Any]]) -> Iterable[str]:
    for message in messages:
        content = message.get("content")
        if isinstance(content, str):
            yield content
        elif isinstance(content, list):
            for part in content:
                if isinstance(part, dict) and isinstance(part.get("text"), str):
                    yield part["text"]


def check_messages(messages: Iterable[dict[str, Any]]) -> None:
    """Check every string content of ``messages`` (see :func:`check_template_str`)."""
    for text in _string_contents(messages):
        check_template_str(text)


def message_placeholders(messages: Iterable[dict[str, Any]]) -> list[str]:
    """Placeholder names used in the string contents of ``messages``."""
    names: dict[str, None] = {}
    for text in _string_contents(messages):
        names.update(dict.fromkeys(PLACEHOLDER.findall(text)))
    return list(names)


def render_str(text: str, values: dict[str, Any]) -> str:
    """Fill placeholders of ``text`` from ``values``; missing names raise ValueError."""
    missing = [name for name in placeholders_of(text) if name not in values]
    if missing:
        raise ValueError(f"missing values for placeholders: {', '.join(missing)}")

    def fill(match: re.Match[str]) -> str:
        value = values[match.group(1)]
        return value if isinstance(value, str) else str(value)

    return PLACEHOLDER.sub(fill, text)


def render_messages(messages: list[dict[str, Any]], values: dict[str, Any]) -> list[dict[str, Any]]:
    """Copy of ``messages`` with placeholders filled; ValueError lists all missing names."""
    missing = [name for name in message_placeholders(messages) if name not in values]
    if missing:
        raise ValueError(f"missing values for placeholders: {', '.join(missing)}")
    rendered: list[dict[str, Any]] = []
    for message in messages:
        copy = dict(message)
        content = message.get("content")
        if isinstance(content, str):
            copy["content"] = render_str(content, values)
        elif isinstance(content, list):
            copy["content"] = [
                {**part, "text": render_str(part["text"], values)}
                if isinstance(part, dict) and isinstance(part.get("text"), str)
                else part
                for part in content
            ]
        rendered.append(copy)
    return rendered
