"""Rules the collection handlers apply for the Advanced features (issue 14), kept out of
:mod:`.collections` so that module only calls them:

* :func:`check_collection_name`: collections and scenario sets share one name space; a name
  held by a live scenario set answers 400 (a clash with another collection stays the 409
  that ``get_or_create_collection`` relies on).
* :func:`check_collection_rows`: an AGENTIC collection names its tasks in a TEXT column
  ``task`` with non-empty, unique values (an inferred ``instruction`` column is its RAW_INPUT,
  see :func:`..store.columns.default_type`). Called after a write, in its transaction: a
  violation answers 400 and the write is rolled back.
* :func:`cell_rules`: a row value that does not fit its column (a CONVERSATION cell that is
  not a conversation envelope, see :func:`..store.columns.conversation_envelope`) answers
  400; raised inside the write's transaction, so nothing is stored.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from ..store.agent_results import check_task_rules
from ..store.collections import collection_row
from ..store.columns import InvalidCell
from ..store.connection import Connection
from ..store.namespace import lock_names, scenario_set_named
from .errors import bad_request


async def check_collection_name(
    conn: Connection, pid: int, name: str, *, current: str | None = None
) -> None:
    """400 when a live scenario set of the project is called ``name`` (not checked when the
    collection keeps its ``current`` name). Locks the project's name space for the rest of
    the transaction (see :mod:`..store.namespace`)."""
    if current is not None and name == current:
        return
    await lock_names(conn, pid)
    holder = await scenario_set_named(conn, pid, name)
    if holder is not None:
        raise bad_request(
            f"a scenario set named {name!r} exists (id {holder}); collections and scenario "
            "sets share one name space: choose another name"
        )


async def check_collection_rows(conn: Connection, pid: int, collection_id: int) -> None:
    """400 when the (just written) collection breaks the rules of its type; nothing of the
    write is kept then (the caller's transaction rolls back)."""
    problem = await check_task_rules(conn, await collection_row(conn, pid, collection_id))
    if problem is not None:
        raise bad_request(f"{problem}; nothing was stored")


@asynccontextmanager
async def cell_rules() -> AsyncIterator[None]:
    """Turn a row value that does not fit its column into a 400 (inside the transaction)."""
    try:
        yield
    except InvalidCell as exc:
        raise bad_request(f"{exc}; nothing was stored") from None
