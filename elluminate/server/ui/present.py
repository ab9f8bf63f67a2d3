"""Pure presentation helpers of the web viewer: stored JSON to display text, number formats,
text differences. No I/O; the Jinja2 filters are these functions."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import msgspec

_encoder = msgspec.json.Encoder(order="sorted")


def decode(value: Any) -> Any:
    """A value of a wire struct with stored JSON passed through (:class:`msgspec.Raw`)
    decoded; anything else unchanged."""
    if isinstance(value, msgspec.Raw):
        return msgspec.json.decode(value) if len(value) else None
    return value


def json_text(value: Any) -> str:
    """Compact JSON of a value (sorted keys)."""
    return _encoder.encode(value).decode()


def as_text(value: Any) -> str:
    """A variable or field value as display text (strings as they are, else JSON)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json_text(value)


def content_text(content: Any) -> str:
    """The text of a chat message's ``content``: a string, or the text parts of a list
    (other parts shown by their type, e.g. ``[image_url]``)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, Mapping):
                if isinstance(part.get("text"), str):
                    parts.append(part["text"])
                else:
                    parts.append(f"[{part.get('type', 'part')}]")
            else:
                parts.append(as_text(part))
        return "\n".join(parts)
    return as_text(content)


@dataclass(frozen=True)
class Message:
    """One chat message for display."""

    role: str
    text: str


def messages(value: Any) -> list[Message]:
    """Chat messages (a list of ``{"role", "content", ...}``; stored JSON accepted) for
    display; tool calls are shown as JSON after the content."""
    decoded = decode(value) or []
    out: list[Message] = []
    if not isinstance(decoded, list):
        return [Message("?", as_text(decoded))]
    for message in decoded:
        if not isinstance(message, Mapping):
            out.append(Message("?", as_text(message)))
            continue
        text = content_text(message.get("content"))
        calls = message.get("tool_calls")
        if calls:
            text = (text + "\n" if text else "") + "tool calls: " + json_text(calls)
        out.append(Message(str(message.get("role", "?")), text))
    return out


def response_text(value: Any) -> str:
    """The content of the last assistant message ("" if there is none), as
    ``PromptResponse.response_str`` defines it."""
    for message in reversed(messages(value)):
        if message.role == "assistant":
            return message.text
    return ""


def variables(value: Any) -> list[tuple[str, str]]:
    """A collection entry's input values as (name, text) pairs, in stored order."""
    decoded = decode(value)
    if not isinstance(decoded, Mapping):
        return [] if decoded is None else [("value", as_text(decoded))]
    return [(str(k), as_text(v)) for k, v in decoded.items()]


def percent(value: float | None) -> str:
    """``0.6667`` -> ``66.7%``; ``None`` -> an en dash. The viewer shows every pass rate so."""
    if value is None:
        return "\u2013"
    return f"{value:.1%}"


def signed_points(value: float | None) -> str:
    """A difference of two pass rates in percentage points: ``+12.5 pp``, ``-3.0 pp``."""
    if value is None:
        return "\u2013"
    return f"{value * 100:+.1f} pp"


def seconds(value: float | None) -> str:
    """A duration: ``0.42 s``, ``12.3 s``, ``4 min 05 s``, ``2 h 03 min``."""
    if value is None:
        return "\u2013"
    if value < 10:
        return f"{value:.2f} s"
    if value < 60:
        return f"{value:.1f} s"
    minutes, secs = divmod(int(round(value)), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def integer(value: int | None) -> str:
    """``12345`` -> ``12,345``."""
    return "\u2013" if value is None else f"{value:,}"


def template_text(messages_value: Any) -> str:
    """A prompt template's messages as plain text (``role:`` lines), for differences."""
    return "\n\n".join(f"[{m.role}]\n{m.text}" for m in messages(messages_value))


@dataclass(frozen=True)
class DiffLine:
    """One line of a unified difference: ``kind`` is ``add``, ``remove``, ``context`` or
    ``hunk`` (an ``@@`` line)."""

    kind: Literal["add", "remove", "context", "hunk"]
    text: str


def text_diff(old: str, new: str, *, context: int = 3) -> list[DiffLine]:
    """The unified difference of two texts, line by line (empty when they are equal)."""
    lines: list[DiffLine] = []
    diff = difflib.unified_diff(old.splitlines(), new.splitlines(), lineterm="", n=context)
    for line in diff:
        if line.startswith(("---", "+++")):
            continue
        if line.startswith("@@"):
            lines.append(DiffLine("hunk", line))
        elif line.startswith("+"):
            lines.append(DiffLine("add", line[1:]))
        elif line.startswith("-"):
            lines.append(DiffLine("remove", line[1:]))
        else:
            lines.append(DiffLine("context", line[1:]))
    return lines


def truncate(text: str, length: int = 60) -> str:
    """``text`` cut to ``length`` characters with an ellipsis."""
    return text if len(text) <= length else text[: length - 1] + "\u2026"


def page_numbers(page: int, pages: int, *, around: int = 2) -> list[int | None]:
    """Page links to show: the first, the last and ``around`` on each side of ``page``;
    ``None`` marks a gap."""
    wanted = {1, pages, *range(page - around, page + around + 1)}
    shown = sorted(p for p in wanted if 1 <= p <= pages)
    out: list[int | None] = []
    for p in shown:
        if out and out[-1] is not None and p - out[-1] > 1:  # type: ignore[operator]
            out.append(None)
        out.append(p)
    return out


def join(values: Iterable[Any], sep: str = ", ") -> str:
    return sep.join(str(v) for v in values)


def column_names(
    entries: Sequence[Sequence[tuple[str, str]]], declared: Sequence[str]
) -> list[str]:
    """Table columns for collection entries: the declared columns, then any other keys."""
    names = list(declared)
    seen = set(names)
    for entry in entries:
        for name, _ in entry:
            if name not in seen:
                seen.add(name)
                names.append(name)
    return names
