"""SQL expressions the two databases spell differently, as SQLAlchemy constructs."""

from __future__ import annotations

from typing import Any

from sqlalchemy import String
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import ColumnElement


class json_text_field(ColumnElement[str]):  # noqa: N801 - an SQL function's name
    """The text value at top-level key ``key`` of a JSON text column (NULL if absent):
    ``json_extract(col, '$."key"')`` on SQLite, ``(col::json ->> key)`` on PostgreSQL."""

    type = String()
    inherit_cache = True

    def __init__(self, column: Any, key: Any) -> None:
        self.column = column
        self.key = key


@compiles(json_text_field, "sqlite")
def _sqlite(element: json_text_field, compiler: Any, **kw: Any) -> str:
    column = compiler.process(element.column, **kw)
    key = compiler.process(element.key, **kw)
    return f"json_extract({column}, '$.' || json_quote({key}))"


@compiles(json_text_field, "postgresql")
def _postgresql(element: json_text_field, compiler: Any, **kw: Any) -> str:
    column = compiler.process(element.column, **kw)
    key = compiler.process(element.key, **kw)
    return f"(CAST({column} AS JSON) ->> {key})"
