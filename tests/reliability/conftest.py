"""Shared fixtures of the reliability tests (concurrency, bad input, fuzzing, security).

The suite runs with ``--import-mode=importlib``, so helpers are fixtures, not imports:
``row_counts`` snapshots the row count of every table of a server's database, ``seed``
creates one object of every kind (template, collection with rows, criterion set, LLM config,
an experiment that ran, so responses, ratings and a finished task exist) through raw HTTP.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from elluminate.server import LocalServer

RowCounts = dict[str, int]


def on_postgres(db: Path | str) -> Any:
    """Run ``work(conn)`` (a coroutine function of an asyncpg connection) on the PostgreSQL
    database ``db`` from synchronous test code, in a thread of its own (the test's event loop
    may be running)."""
    import asyncpg

    def run(work: Callable[[Any], Any]) -> Any:
        result: list[Any] = []
        failure: list[BaseException] = []

        async def main() -> None:
            conn = await asyncpg.connect(str(db))
            try:
                result.append(await work(conn))
            finally:
                await conn.close()

        def target() -> None:
            try:
                asyncio.run(main())
            except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
                failure.append(exc)

        thread = threading.Thread(target=target)
        thread.start()
        thread.join()
        if failure:
            raise failure[0]
        return result[0]

    return run


def is_postgres(db: Path | str) -> bool:
    return str(db).startswith(("postgresql://", "postgres://"))


async def _pg_counts(conn: Any) -> RowCounts:
    tables = [r[0] for r in await conn.fetch(
        "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")]
    return {t: await conn.fetchval(f'SELECT COUNT(*) FROM "{t}"') for t in tables}


def _counts(db_path: Path) -> RowCounts:
    if is_postgres(db_path):
        counts: RowCounts = on_postgres(db_path)(_pg_counts)
        return counts
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
        ]
        return {t: conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in tables}
    finally:
        conn.close()


@pytest.fixture(scope="session")
def postgres_runner() -> Callable[[Path | str], Any]:
    """``postgres_runner(url)(work)``: run ``await work(asyncpg_connection)`` on ``url``."""
    return on_postgres


@pytest.fixture(scope="session")
def row_counts() -> Callable[[Path], RowCounts]:
    """``row_counts(db_path)``: ``{table: number of rows}`` for every table."""
    return _counts


class Api:
    """A tiny raw-HTTP helper bound to one server and key (requests, no SDK)."""

    def __init__(self, base_url: str, key: str, pid: int | None = None) -> None:
        self.base_url = base_url
        self.session = requests.Session()
        self.session.headers["X-API-Key"] = key
        if pid is None:
            pid = self.call("GET", "/api/v0/projects")["items"][0]["id"]
        self.pid = pid
        self.P = f"/api/v0/projects/{self.pid}"

    def request(self, method: str, path: str, **kw: Any) -> requests.Response:
        kw.setdefault("timeout", 60)
        return self.session.request(method, self.base_url + path, **kw)

    def call(self, method: str, path: str, status: int | tuple[int, ...] = (200, 201, 202, 204),
             **kw: Any) -> Any:
        resp = self.request(method, path, **kw)
        statuses = (status,) if isinstance(status, int) else status
        assert resp.status_code in statuses, f"{method} {path} -> {resp.status_code}: {resp.text}"
        return resp.json() if resp.content else None

    def wait_task(self, path: str, timeout: float = 30.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            body: dict[str, Any] = self.call("GET", path, params={"connection_uuid": "t"})
            if body["status"] not in ("PENDING", "STARTED"):
                return body
            assert time.monotonic() < deadline, f"task {path} did not finish: {body}"
            time.sleep(0.05)

    def close(self) -> None:
        self.session.close()


@pytest.fixture(scope="session")
def api_factory() -> type[Api]:
    """The :class:`Api` class (``api_factory(base_url, key)``)."""
    return Api


def seed_objects(api: Api, tag: str = "") -> dict[str, Any]:
    """One object of every kind in ``api``'s project; returns their ids."""
    p = api.P
    template = api.call("POST", f"{p}/prompt_templates", json={
        "name": f"T{tag}", "messages": [{"role": "user", "content": "Explain {{topic}}"}]})
    collection = api.call("POST", f"{p}/collections", json={
        "name": f"C{tag}", "description": "", "read_only": False,
        "collection_type": "STANDARD", "variables": [{"topic": "AI"}, {"topic": "ML"}]})
    cset = api.call("POST", f"{p}/criterion_sets", json={
        "name": f"S{tag}", "criteria": [{"criterion_str": "Is it short?"}]})
    api.call("PUT", f"{p}/criterion_sets/{cset['id']}/prompt_templates/{template['id']}")
    llm = api.call("POST", f"{p}/llm_configs", json={
        "name": f"L{tag}", "llm_model_name": "m", "api_key": "sk-seed-secret-0123456789"})
    experiment = api.call("POST", f"{p}/experiments", json={
        "name": f"E{tag}", "prompt_template_id": template["id"],
        "collection_id": collection["id"], "criterion_set_id": cset["id"],
        "generate": True, "rating_version": "mock"})
    task_id = experiment["generation_task_id"]
    api.wait_task(f"{p}/experiments/{experiment['id']}/generation/{task_id}")
    responses = api.call("GET", f"{p}/responses", params={"experiment_id": experiment["id"]})
    assert responses["count"] == 2, responses
    response_ids = [r["id"] for r in responses["items"]]
    rating_task = api.call("POST", f"{p}/ratings/batches",
                           json={"prompt_response_ids": response_ids[:1]})
    api.wait_task(f"{p}/ratings/batches/{rating_task}")
    ratings = api.call("GET", f"{p}/ratings")["items"]
    scenario_set = api.call("POST", f"{p}/scenario-sets", json={
        "name": f"Scenarios{tag}", "description": "", "fields": ["persona"]})
    scenario = api.call("POST", f"{p}/scenario-sets/{scenario_set['id']}/scenarios", json={
        "goal": "Get a refund", "expected_conversation_outcome": "Refund issued",
        "field_values": {"persona": "calm"}})
    tasks = api.call("POST", f"{p}/collections", json={
        "name": f"Tasks{tag}", "collection_type": "AGENTIC",
        "variables": [{"task": "fix-bug", "instruction": "Fix the bug"}]})
    agentic = api.call("POST", f"{p}/experiments", json={
        "name": f"Agentic{tag}", "collection_id": tasks["id"], "criterion_set_id": cset["id"],
        "evaluation_mode": "AGENTIC", "rating_version": "mock"})
    return {
        "template_id": template["id"],
        "collection_id": collection["id"],
        "entry_id": collection["variables"][0]["id"],
        "set_id": cset["id"],
        "criterion_id": cset["criteria"][0]["id"],
        "config_id": llm["id"],
        "experiment_id": experiment["id"],
        "task_id": task_id,
        "response_id": response_ids[0],
        "response_ids": response_ids,
        "rating_id": ratings[0]["id"] if ratings else None,
        "rating_task_id": rating_task,
        "scenario_set_id": scenario_set["id"],
        "scenario_set_name": scenario_set["name"],
        "field_id": scenario_set["fields"][0]["id"],
        "scenario_id": scenario["id"],
        "agentic_experiment_id": agentic["id"],
        "task_row_id": tasks["variables"][0]["id"],
    }


@pytest.fixture(scope="session")
def seed() -> Callable[..., dict[str, Any]]:
    """``seed(api, tag="")``: create one object of every kind, return their ids."""
    return seed_objects


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def module_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
    postgres_database: Any,
) -> Iterator[LocalServer]:
    """One server for a whole module (for tests that never change what others see), once on
    SQLite and once on PostgreSQL."""
    limit = 16 * 1024 * 1024
    if request.param == "postgres":
        with postgres_database() as url, LocalServer(
            db_path=url, llm="echo", client_max_size=limit
        ) as srv:
            yield srv
        return
    path = tmp_path_factory.mktemp("reliability") / "elluminate.db"
    with LocalServer(db_path=path, llm="echo", client_max_size=limit) as srv:
        yield srv
