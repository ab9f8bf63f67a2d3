"""``alocal_client()``: a connected client with no setup, for scripts and notebooks."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from .client import AsyncClient


@asynccontextmanager
async def alocal_client(llm: str = "echo", **server_options: Any) -> AsyncIterator[AsyncClient]:
    """A client for ``ELLUMINATE_BASE_URL`` if it is set, else for an embedded local server.

    The embedded server (``elluminate.server.LocalServer``: own thread, free port, temporary
    SQLite file) uses the ``llm`` provider (``"echo"``, ``"local"`` or ``"openai"``) and is
    stopped on exit; ``server_options`` go to LocalServer.
    """
    if os.environ.get("ELLUMINATE_BASE_URL"):
        async with AsyncClient() as client:
            yield client
        return
    from ..server import LocalServer

    async with LocalServer(llm=llm, **server_options) as server:  # type: ignore[arg-type]
        async with AsyncClient(base_url=server.base_url, api_key=server.api_key) as client:
            yield client
