"""Pages of list queries: ``{"items", "count"}`` from any SELECT, on both databases."""

from __future__ import annotations

from functools import cache
from typing import Any

from sqlalchemy import Select, bindparam, func, select

from .connection import Connection


@cache
def _count_of(stmt: Select[Any]) -> Select[Any]:
    return select(func.count()).select_from(stmt.order_by(None).subquery())


@cache
def _limited(stmt: Select[Any]) -> Select[Any]:
    return stmt.limit(bindparam("page_limit")).offset(bindparam("page_offset"))


async def fetch_page(
    conn: Connection,
    stmt: Select[Any],
    params: dict[str, Any] | None = None,
    *,
    page: int,
    size: int,
) -> tuple[list[Any], int]:
    """The rows of page ``page`` (1-based, ``size`` rows each) of ``stmt`` and the total count.

    ``stmt`` must be built once (a module constant or a memoised variant): the count and
    limited statements derived from it are memoised by statement.
    """
    params = dict(params or {})
    count = await conn.fetchval(_count_of(stmt), params)
    params["page_limit"] = size
    params["page_offset"] = (page - 1) * size
    rows = await conn.fetchall(_limited(stmt), params)
    return rows, int(count or 0)
