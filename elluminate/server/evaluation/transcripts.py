"""What the judge reads of an agent trial or a conversation: plain text, bounded in size.

The judge prompt (:mod:`.llm_judge`) takes a prompt and one response text. For an uploaded agent
trial that text is its messages followed by its ATIF trajectory's steps (source, message, tool
calls and their results); for a MULTI_TURN conversation it is the conversation, one
``role: text`` line per turn. Texts longer than :data:`MAX_CHARS` keep their beginning and
their end (where an agent's outcome usually is) around a marker saying how much was left out.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from .providers import message_text

#: Longest text the judge gets for one trial (the local model's context is small).
MAX_CHARS = 6000


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, Mapping) and isinstance(part.get("text"), str):
                parts.append(part["text"])
            elif isinstance(part, Mapping) and part.get("type") == "image":
                parts.append("[image]")
        return "\n".join(parts)
    return "" if content is None else json.dumps(content, ensure_ascii=False)


def render_messages(messages: Sequence[Mapping[str, Any]]) -> str:
    """One ``role: text`` line per message (tool calls shown as ``name(arguments)``)."""
    lines = []
    for message in messages:
        role = str(message.get("role", "user"))
        text = message_text(dict(message)).strip()
        calls = message.get("tool_calls") or []
        shown = []
        for call in calls:
            function = call.get("function") if isinstance(call, Mapping) else None
            if isinstance(function, Mapping):
                shown.append(f"{function.get('name', '?')}({function.get('arguments', '')})")
        if shown:
            text = (text + " " if text else "") + "[calls " + ", ".join(shown) + "]"
        lines.append(f"{role}: {text}")
    return "\n".join(lines)


def render_trajectory(trajectory: Any) -> str:
    """The steps of an ATIF trajectory, one block per step ("" without steps)."""
    steps = trajectory.get("steps") if isinstance(trajectory, Mapping) else None
    if not isinstance(steps, list):
        return ""
    lines = []
    for step in steps:
        if not isinstance(step, Mapping):
            continue
        lines.append(
            f"[{step.get('step_id', '?')}] {step.get('source', '?')}: "
            f"{_content_text(step.get('message')).strip()}"
        )
        for call in step.get("tool_calls") or []:
            if isinstance(call, Mapping):
                arguments = json.dumps(call.get("arguments"), ensure_ascii=False)
                lines.append(f"  call {call.get('function_name', '?')}({arguments})")
        observation = step.get("observation")
        results = observation.get("results") if isinstance(observation, Mapping) else None
        for result in results or []:
            if isinstance(result, Mapping):
                lines.append(f"  result: {_content_text(result.get('content')).strip()}")
    return "\n".join(lines)


def bounded(text: str, limit: int = MAX_CHARS) -> str:
    """``text``, or its beginning and end around a marker when it is longer than ``limit``."""
    if len(text) <= limit:
        return text
    head = limit // 3
    tail = limit - head
    left_out = len(text) - head - tail
    return f"{text[:head]}\n[... {left_out} characters left out ...]\n{text[-tail:]}"


def render_trial(messages: Sequence[Mapping[str, Any]], trajectory: Any) -> str:
    """The text the judge rates for an agent trial ("" when it has neither)."""
    parts = []
    if messages:
        parts.append("Messages:\n" + render_messages(messages))
    steps = render_trajectory(trajectory)
    if steps:
        parts.append("Trajectory:\n" + steps)
    return bounded("\n\n".join(parts))


def render_conversation(messages: Sequence[Mapping[str, Any]]) -> str:
    """The text the judge rates for a MULTI_TURN conversation."""
    return bounded(render_messages(messages))


__all__ = [
    "MAX_CHARS",
    "bounded",
    "render_conversation",
    "render_messages",
    "render_trajectory",
    "render_trial",
]
