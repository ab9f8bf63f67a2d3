# DO NOT EDIT: generated from elluminate/_async/local.py by scripts/unasync.py; edit the _async original.
"""``alocal_client()``: a connected client with no setup, for scripts and notebooks."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from .client import Client


@contextmanager
def local_client(llm: str = "echo", **server_options: Any) -> Iterator[Client]:
    """A client for ``ELLUMINATE_BASE_URL`` if it is set, else for an embedded local server.

    The embedded server (``elluminate.server.LocalServer``: own thread, free port, temporary
    SQLite file) uses the ``llm`` provider (``"echo"``, ``"local"`` or ``"openai"``) and is
    stopped on exit; ``server_options`` go to LocalServer.
    """
    if os.environ.get("ELLUMINATE_BASE_URL"):
        with Client() as client:
            yield client
        return
    from ..server import LocalServer

    with LocalServer(llm=llm, **server_options) as server:  # type: ignore[arg-type]
        with Client(base_url=server.base_url, api_key=server.api_key) as client:
            yield client
