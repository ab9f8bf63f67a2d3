"""``UNSET``: the default of arguments whose omission means "keep the current value".

Used where ``None`` is itself a meaningful value (e.g. ``clone(rating_version=None)`` asks
for the project's default judge, while leaving it out keeps the source's).
"""

from __future__ import annotations

from typing import Final


class _Unset:
    """The type of :data:`UNSET` (a single, falsy instance)."""

    _instance: _Unset | None = None

    def __new__(cls) -> _Unset:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNSET"

    def __bool__(self) -> bool:
        return False

    def __reduce__(self) -> str:
        return "UNSET"


UNSET: Final = _Unset()
