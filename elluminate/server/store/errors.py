"""Errors the store raises for the layers above it (the API maps them to HTTP answers)."""

from __future__ import annotations

from .connection import ForeignKeyViolation, IntegrityError, UniqueViolation


class NotFound(LookupError):
    """An object does not exist in the caller's project (or is deleted): HTTP 404."""

    def __init__(self, kind: str, ident: object) -> None:
        super().__init__(f"{kind} {ident} not found in this project")
        self.kind = kind
        self.ident = ident


__all__ = ["ForeignKeyViolation", "IntegrityError", "NotFound", "UniqueViolation"]
