"""Checks that the wire structs of the Advanced features run when they are built.

msgspec checks types when it decodes, not when a struct is constructed in code; these structs
also check their rules in ``__post_init__`` (which runs in both cases), so bad input fails
where it is written, with a message that names the field and says what is allowed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

import msgspec

MAX_TOKEN_COUNT = 2**31 - 1
MAX_COST_USD = 1e9
MAX_DURATION_SECONDS = 1e10

# Roles of OpenAI chat-completions messages (CONTRACT.md 7.14) and the keys each one needs.
MESSAGE_ROLES: dict[str, tuple[str, ...]] = {
    "developer": ("content",),
    "system": ("content",),
    "user": ("content",),
    "assistant": (),
    "tool": ("content", "tool_call_id"),
    "function": ("content", "name"),
}


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _num(value: float | None) -> str:
    return str(int(value)) if value is not None and value == int(value) else str(value)


def check_number(
    owner: str,
    name: str,
    value: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    integer: bool = False,
) -> None:
    """ValueError unless ``value`` is None or a number (an int if ``integer``) in range."""
    if value is None:
        return
    kind = "an integer" if integer else "a number"
    ok_type = _is_int(value) if integer else (_is_int(value) or isinstance(value, float))
    if not ok_type:
        raise ValueError(f"{owner}.{name} must be {kind}, not {value!r}")
    if (low is not None and value < low) or (high is not None and value > high):
        bounds = (
            f"between {_num(low)} and {_num(high)}"
            if low is not None and high is not None
            else f"at least {_num(low)}"
            if low is not None
            else f"at most {_num(high)}"
        )
        raise ValueError(f"{owner}.{name} must be {bounds}, not {value!r}")


def check_count(owner: str, name: str, value: Any) -> None:
    """ValueError unless ``value`` is None or an integer from 0 to MAX_TOKEN_COUNT."""
    check_number(owner, name, value, low=0, high=MAX_TOKEN_COUNT, integer=True)


def check_text(
    owner: str, name: str, value: Any, *, max_length: int | None = None, optional: bool = True
) -> None:
    """ValueError unless ``value`` is a string (or None if ``optional``) of at most
    ``max_length`` characters."""
    if value is None and optional:
        return
    if not isinstance(value, str):
        raise ValueError(f"{owner}.{name} must be a string, not {value!r}")
    if max_length is not None and len(value) > max_length:
        raise ValueError(
            f"{owner}.{name} must be at most {max_length} characters, not {len(value)}"
        )


def check_choice(owner: str, name: str, value: Any, choices: Iterable[str]) -> None:
    allowed = tuple(choices)
    if value not in allowed:
        listed = ", ".join(repr(c) for c in allowed)
        raise ValueError(f"{owner}.{name} must be one of {listed}, not {value!r}")


def check_mapping(owner: str, name: str, value: Any) -> None:
    """ValueError unless ``value`` is None or a dict with string keys."""
    if value is None:
        return
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise ValueError(f"{owner}.{name} must be a dict with string keys, not {value!r}")


def check_list(owner: str, name: str, value: Any, *, max_items: int | None = None) -> None:
    if value is None:
        return
    if not isinstance(value, list):
        raise ValueError(f"{owner}.{name} must be a list, not {type(value).__name__}")
    if max_items is not None and len(value) > max_items:
        raise ValueError(f"{owner}.{name} may hold at most {max_items} items, not {len(value)}")


def coerce(owner: str, name: str, value: Any, type_: Any) -> Any:
    """``value`` as ``type_`` (dicts become structs, structs pass through); ValueError with
    the place of the problem if it does not fit."""
    if value is None:
        return None
    try:
        return msgspec.convert(value, type_, from_attributes=True)
    except msgspec.ValidationError as exc:
        raise ValueError(f"{owner}.{name}: {exc}") from None


def check_messages(owner: str, name: str, messages: Any) -> list[dict[str, Any]]:
    """``messages`` as a list of OpenAI chat message dicts; ValueError names the first bad one.

    Objects with ``model_dump`` (pydantic / openai message objects) become dicts.
    """
    if not isinstance(messages, (list, tuple)):
        raise ValueError(
            f"{owner}.{name} must be a list of chat messages like "
            f"{{'role': 'user', 'content': '...'}}, not {type(messages).__name__}"
        )
    out: list[dict[str, Any]] = []
    for index, message in enumerate(messages):
        if hasattr(message, "model_dump") and not isinstance(message, dict):
            message = message.model_dump(exclude_none=True)
        if not isinstance(message, dict):
            raise ValueError(
                f"{owner}.{name}[{index}] must be a dict like "
                f"{{'role': 'user', 'content': '...'}}, not {type(message).__name__}"
            )
        role = message.get("role")
        if role not in MESSAGE_ROLES:
            roles = ", ".join(MESSAGE_ROLES)
            raise ValueError(f"{owner}.{name}[{index}] has role {role!r}; allowed: {roles}")
        missing = [key for key in MESSAGE_ROLES[role] if key not in message]
        if missing:
            raise ValueError(
                f"{owner}.{name}[{index}] ({role}) lacks {', '.join(repr(k) for k in missing)}"
            )
        content = message.get("content")
        if content is not None and not isinstance(content, (str, list)):
            raise ValueError(
                f"{owner}.{name}[{index}].content must be a string or a list of content "
                f"parts, not {type(content).__name__}"
            )
        if content is None and role != "assistant" and "content" in message:
            raise ValueError(f"{owner}.{name}[{index}] ({role}) has no content")
        out.append(message)
    return out


# ---- scenario fields (CONTRACT.md 4.11) -------------------------------------------------------

IMPLICIT_FIELDS = ("goal", "expected_conversation_outcome")
MAX_FIELD_NAME_LENGTH = 100
_FIELD_NAME = re.compile(r"[^\W\d]\w*")


def check_field_name(name: Any) -> str:
    """``name`` if it can name a scenario field, else ValueError saying why.

    A field name is usable as a ``{{placeholder}}``: letters, digits and underscores, not
    starting with a digit, at most 100 characters, and not one of the implicit fields.
    """
    if not isinstance(name, str):
        raise ValueError(f"a scenario field name is a string, not {type(name).__name__}")
    if name in IMPLICIT_FIELDS:
        raise ValueError(
            f"{name!r} is an implicit field of every scenario set; it cannot be declared, "
            "renamed or deleted"
        )
    if len(name) > MAX_FIELD_NAME_LENGTH:
        raise ValueError(
            f"scenario field name {name[:20]!r}... is {len(name)} characters long; "
            f"at most {MAX_FIELD_NAME_LENGTH} are allowed"
        )
    if not _FIELD_NAME.fullmatch(name):
        raise ValueError(
            f"scenario field name {name!r} must consist of letters, digits and underscores "
            "and not start with a digit (it is used as a {{placeholder}})"
        )
    return name


def check_field_names(names: Any) -> list[str]:
    """The declared field names of a new scenario set, each checked, without duplicates."""
    if names is None:
        return []
    if isinstance(names, str) or not isinstance(names, (list, tuple)):
        raise ValueError("fields must be a list of field names, e.g. ['persona', 'locale']")
    checked = [check_field_name(n) for n in names]
    duplicates = sorted({n for n in checked if checked.count(n) > 1})
    if duplicates:
        raise ValueError(f"field names must be unique; repeated: {duplicates}")
    return checked
