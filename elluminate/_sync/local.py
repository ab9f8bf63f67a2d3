# DO NOT EDIT: generated from elluminate/_async/local.py by scripts/unasync.py; edit the _async original.
"""``alocal_client()``: a connected client with no setup, for scripts and notebooks."""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from .client import Client

BASE_URL_ENV = "ELLUMINATE_BASE_URL"


@contextmanager
def local_client(
    llm: str | None = None, **server_options: Any
) -> Iterator[Client]:
    """A client for ``ELLUMINATE_BASE_URL`` if it is set, else for an embedded local server.

    The embedded server (``elluminate.server.LocalServer``: own thread, free port, temporary
    SQLite file) uses the ``llm`` provider (``"echo"``, the default, ``"local"`` or
    ``"openai"``) and is stopped on exit; ``server_options`` go to LocalServer. The
    environment variable wins: with it set no server is started, and passing ``llm`` or
    server options warns that they have no effect.
    """
    base_url = os.environ.get(BASE_URL_ENV)
    if base_url:
        ignored = ([f"llm={llm!r}"] if llm is not None else []) + sorted(server_options)
        if ignored:
            verb = "is" if len(ignored) == 1 else "are"
            warnings.warn(
                f"{BASE_URL_ENV} is set ({base_url}), so the client connects there and no "
                f"local server is started: {', '.join(ignored)} {verb} ignored; unset "
                f"{BASE_URL_ENV} to use an embedded server",
                UserWarning,
                stacklevel=3,
            )
        with Client() as client:
            yield client
        return
    from ..server import LocalServer

    with LocalServer(llm=llm or "echo", **server_options) as server:  # type: ignore[arg-type]
        with Client(base_url=server.base_url, api_key=server.api_key) as client:
            yield client
