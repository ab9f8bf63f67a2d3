"""pytest plugin (auto-registered): fixtures that give your tests a real local server.

    def test_my_prompt(elluminate_client):
        template = elluminate_client.create_prompt_template(name="t", template="Hi {{name}}")
        ...

``elluminate_server`` is a running :class:`elluminate.server.LocalServer` with the
deterministic ``echo`` provider and a temporary database; ``elluminate_client`` and
``elluminate_async_client`` are connected clients. Override ``elluminate_server_options``
(a dict of LocalServer keyword arguments) to change the provider, latency, limits, ...
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from elluminate import AsyncClient, Client
    from elluminate.server import LocalServer

try:  # register the async fixture for pytest-asyncio's strict and auto modes alike
    from pytest_asyncio import fixture as _async_fixture
except ImportError:  # pragma: no cover - without pytest-asyncio there is no async fixture
    _async_fixture = pytest.fixture  # type: ignore[assignment]


@pytest.fixture
def elluminate_server_options() -> dict[str, Any]:
    """Keyword arguments for the test server (override this fixture to change them)."""
    return {"llm": "echo"}


@pytest.fixture
def elluminate_server(
    tmp_path_factory: pytest.TempPathFactory, elluminate_server_options: dict[str, Any]
) -> Iterator[LocalServer]:
    """A running local elluminate server (echo provider, temporary SQLite file)."""
    from elluminate.server import LocalServer

    options = dict(elluminate_server_options)
    options.setdefault("db_path", Path(tmp_path_factory.mktemp("elluminate")) / "test.db")
    with LocalServer(**options) as server:
        yield server


@pytest.fixture
def elluminate_client(elluminate_server: LocalServer) -> Iterator[Client]:
    """A sync ``Client`` connected to ``elluminate_server``."""
    from elluminate import Client

    with Client(base_url=elluminate_server.base_url, api_key=elluminate_server.api_key) as client:
        yield client


@_async_fixture
async def elluminate_async_client(elluminate_server: LocalServer) -> AsyncIterator[AsyncClient]:
    """An ``AsyncClient`` connected to ``elluminate_server``."""
    from elluminate import AsyncClient

    async with AsyncClient(
        base_url=elluminate_server.base_url, api_key=elluminate_server.api_key
    ) as client:
        yield client
