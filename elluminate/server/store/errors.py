"""Errors the store raises for the layers above it (the API maps them to HTTP answers)."""

from __future__ import annotations

from .connection import ForeignKeyViolation, IntegrityError, TextNotStorable, UniqueViolation


class NotFound(LookupError):
    """An object does not exist in the caller's project (or is deleted): HTTP 404."""

    def __init__(self, kind: str, ident: object) -> None:
        super().__init__(f"{kind} {ident} not found in this project")
        self.kind = kind
        self.ident = ident


class NameTaken(Exception):
    """A live object of the project already has this name (the API answers 409 with its id)."""

    def __init__(self, existing_id: int) -> None:
        super().__init__(f"the name is taken by id {existing_id}")
        self.existing_id = existing_id


__all__ = [
    "ForeignKeyViolation",
    "IntegrityError",
    "NameTaken",
    "NotFound",
    "TextNotStorable",
    "UniqueViolation",
]
