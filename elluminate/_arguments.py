"""Checks of arguments shared by the client's resource methods (pure)."""

from __future__ import annotations

from typing import Any


def id_of(obj: Any, kind: str) -> int:
    """The id of ``obj``, given as an object with an integer ``id`` or as the int itself."""
    if isinstance(obj, int) and not isinstance(obj, bool):
        return obj
    ident = getattr(obj, "id", None)
    if not isinstance(ident, int):
        article = "an" if kind[:1] in "aeiou" else "a"
        raise ValueError(f"expected {article} {kind} or its integer id, got {type(obj).__name__}")
    return ident


def check_name_or_id(name: str | None, id: int | None) -> None:
    """ValueError unless exactly one of ``name`` and ``id`` is given."""
    if (name is None) == (id is None):
        raise ValueError("pass exactly one of name= or id=")
