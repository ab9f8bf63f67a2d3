"""The LLM call cache's rows: one validated answer per call key until it expires.

Keys are computed by :mod:`~elluminate.server.evaluation.cache`; this module only stores
them. Reads never return an expired entry; writes replace an entry of the same key (two
replicas that made the same call at once both succeed, the later answer wins).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, func, insert, select, update

from . import schema as S
from .connection import Connection, UniqueViolation

_C = S.llm_cache

GET = select(_C.c.value).where(_C.c.key == bindparam("key"), _C.c.expires_at > bindparam("now"))
ADD = insert(_C).values(
    key=bindparam("key"),
    kind=bindparam("kind"),
    model=bindparam("model"),
    value=bindparam("value"),
    created_at=bindparam("now"),
    expires_at=bindparam("expires"),
)
REPLACE = (
    update(_C)
    .where(_C.c.key == bindparam("key"))
    .values(
        kind=bindparam("kind"),
        model=bindparam("model"),
        value=bindparam("value"),
        created_at=bindparam("now"),
        expires_at=bindparam("expires"),
    )
)
PURGE = delete(_C).where(_C.c.expires_at <= bindparam("now"))
COUNT = select(func.count()).select_from(_C)


async def get(conn: Connection, key: str, now: datetime) -> str | None:
    """The stored value (JSON text) of ``key`` unless it is missing or expired."""
    value: Any = await conn.fetchval(GET, {"key": key, "now": now})
    return None if value is None else str(value)


async def put(
    conn: Connection, key: str, *, kind: str, model: str, value: str, now: datetime,
    expires: datetime,
) -> None:
    """Store (or replace) the value of ``key`` until ``expires`` (in the caller's
    transaction)."""
    params = {
        "key": key, "kind": kind, "model": model, "value": value, "now": now, "expires": expires
    }
    if await conn.execute(REPLACE, params):
        return
    try:
        async with conn.savepoint():
            await conn.execute(ADD, params)
    except UniqueViolation:  # another writer stored it since the update: take ours
        await conn.execute(REPLACE, params)


async def purge_expired(conn: Connection, now: datetime) -> int:
    """Delete the entries that expired by ``now``; how many."""
    return await conn.execute(PURGE, {"now": now})


async def count(conn: Connection) -> int:
    """How many entries are stored (expired ones included until purged)."""
    return int(await conn.fetchval(COUNT) or 0)
