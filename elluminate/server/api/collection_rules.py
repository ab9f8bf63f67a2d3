"""Rules the collection handlers apply for the Advanced features (issue 14), kept out of
:mod:`.collections` so that module only calls them:

* :func:`check_collection_name`: collections and scenario sets share one name space; a name
  held by a live scenario set answers 400 (a clash with another collection stays the 409
  that ``get_or_create_collection`` relies on).
"""

from __future__ import annotations

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
