"""Fixtures for the server tests: an in-process app on a temporary SQLite file.

Test modules get everything through fixtures (the suite runs with --import-mode=importlib,
so there is no importable helper module): ``client`` is an :class:`Api` test client that
sends the bootstrap key and offers ``ok``/``err`` helpers; ``snapshot`` dumps the database.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from elluminate.server import ServerConfig, create_app

API_KEY = "test-key-0123456789"
PID = 1  # the default project of a fresh database


class Api(TestClient):  # type: ignore[type-arg]
    """A test client with the project prefix and assertion helpers."""

    key = API_KEY
    pid = PID
    P = f"/api/v0/projects/{PID}"

    async def ok(
        self, method: str, path: str, status: int | tuple[int, ...] = (200, 201, 204), **kw: Any
    ) -> Any:
        """Send a request, assert the status, return the JSON body (None for no body)."""
        resp = await self.request(method, path, **kw)
        text = await resp.text()
        statuses = (status,) if isinstance(status, int) else status
        assert resp.status in statuses, f"{method} {path} -> {resp.status}: {text}"
        return await resp.json() if text else None

    async def err(self, method: str, path: str, status: int, **kw: Any) -> str:
        """Send a request, assert an error status with a ``{"detail": str}`` body."""
        resp = await self.request(method, path, **kw)
        text = await resp.text()
        assert resp.status == status, f"{method} {path} -> {resp.status}: {text}"
        assert resp.content_type == "application/json", text
        body = await resp.json()
        assert isinstance(body.get("detail"), str) and body["detail"], body
        self.last_error_body = body
        return str(body["detail"])


ClientFactory = Callable[..., Awaitable[Api]]


@pytest.fixture
def aiohttp_client_cls() -> type[Api]:
    return Api


@pytest.fixture
def db_path(db_target: Path | str) -> Path:
    """The server's SQLite file (a test asking for it runs on SQLite only)."""
    assert isinstance(db_target, Path)
    return db_target


@pytest.fixture
def config(db_target: Path | str) -> ServerConfig:
    return ServerConfig(db_path=db_target, api_key=API_KEY, llm="echo", page_size=100)


@pytest.fixture
async def client(aiohttp_client: ClientFactory, config: ServerConfig) -> Api:
    """A test client that sends the bootstrap key with every request."""
    return await aiohttp_client(create_app(config), headers={"X-API-Key": API_KEY})


@pytest.fixture
async def other(client: Api) -> tuple[int, dict[str, str]]:
    """A second project in the same organization: (project id, headers with its key)."""
    body = await client.ok("POST", "/api/v0/projects", json={"name": "other"})
    return body["id"], {"X-API-Key": body["api_key"]}


#: A replica's heartbeat time, permits and demand change on their own (every heartbeat, and
#: when an LLM call waits for a permit): a snapshot compares who the replicas are.
_STABLE_COLUMNS = {"replicas": "id, host, pid, started_at"}


@pytest.fixture
def snapshot(db_target: Path | str) -> Callable[[], dict[str, list[tuple[Any, ...]]]]:
    """A function returning every row of every table (to prove nothing was written)."""

    def take_sqlite(path: Path) -> dict[str, list[tuple[Any, ...]]]:
        conn = sqlite3.connect(path)
        try:
            tables = [
                r[0]
                for r in conn.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table' "
                    "AND name NOT LIKE 'sqlite_%'"
                )
            ]
            return {t: conn.execute(f"SELECT * FROM {t} ORDER BY 1").fetchall() for t in tables}
        finally:
            conn.close()

    def take_postgres(url: str) -> dict[str, list[tuple[Any, ...]]]:
        import asyncio
        import threading

        import asyncpg

        from elluminate.server.store.postgres import dsn

        async def dump() -> dict[str, list[tuple[Any, ...]]]:
            conn = await asyncpg.connect(dsn(url))
            try:
                tables = [
                    r[0]
                    for r in await conn.fetch(
                        "SELECT table_name FROM information_schema.tables "
                        "WHERE table_schema = current_schema() ORDER BY 1"
                    )
                ]
                return {
                    t: [
                        tuple(r)
                        for r in await conn.fetch(
                            f'SELECT {_STABLE_COLUMNS.get(t, "*")} FROM "{t}" ORDER BY 1'
                        )
                    ]
                    for t in tables
                }
            finally:
                await conn.close()

        result: dict[str, list[tuple[Any, ...]]] = {}

        def run() -> None:  # a thread of its own: the test's event loop is running
            result.update(asyncio.run(dump()))

        thread = threading.Thread(target=run)
        thread.start()
        thread.join()
        return result

    def take() -> dict[str, list[tuple[Any, ...]]]:
        tables = take_sqlite(db_target) if isinstance(db_target, Path) else take_postgres(db_target)
        # the server's own heartbeat (a row per replica, refreshed every few seconds whatever
        # the requests do) is not something a request wrote
        tables.pop("replicas", None)
        return tables

    return take


# ---- appended for the experiment / task tests (helpers live in conftest_tasks.py) ----------


@pytest.fixture(scope="session")
def tasks_helpers() -> Any:
    """The helpers module ``conftest_tasks.py``, loaded by path (no importable test modules)."""
    import importlib.util
    import sys

    name = "elluminate_server_tests_conftest_tasks"
    if name in sys.modules:
        return sys.modules[name]
    path = Path(__file__).with_name("conftest_tasks.py")
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
