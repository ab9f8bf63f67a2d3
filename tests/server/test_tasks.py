"""The task engine, for real: every terminal state, SSE streams, restart, shutdown, load."""

from __future__ import annotations

import asyncio
import socket
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from elluminate.server import ServerConfig, create_app
from elluminate.server.api import sse as tasks_sse
from elluminate.server.api.http import PROVIDERS_KEY
from elluminate.server.engine.engine import DEFAULT_CONCURRENCY, effective_concurrency

P = "/api/v0/projects/1"
API_KEY = "test-key-0123456789"
TERMINAL = {"SUCCESS", "FAILURE", "REVOKED", "REJECTED", "TIMEOUT"}


async def make_client(aiohttp_client: Any, tmp_path: Path, **overrides: Any) -> Any:
    config = ServerConfig(db_path=tmp_path / "tasks.db", api_key=API_KEY, llm="echo", **overrides)
    return await aiohttp_client(create_app(config), headers={"X-API-Key": API_KEY})


def generation(exp: dict[str, Any], task_id: str | None = None) -> str:
    return f"{P}/experiments/{exp['id']}/generation/{task_id or exp['generation_task_id']}"


def check_stream(events: list[dict[str, Any]], raw: bytes) -> dict[str, Any]:
    """Exactly one terminal event, the last one; progress never goes backwards."""
    assert events, raw
    terminal = [e for e in events if e["status"] in TERMINAL]
    assert len(terminal) == 1 and events[-1] is terminal[0], events
    last = (0, 0)
    for event in events:
        if event.get("completed_responses") is None:
            continue
        now = (event["completed_responses"], event["completed_ratings"])
        assert now[0] >= last[0] and now[1] >= last[1], events
        last = now
    for block in raw.split(b"\n\n"):
        assert not block or block.startswith((b"data: ", b": keepalive")), raw
    return terminal[0]


def db_rows(path: Path, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


# ---- terminal states --------------------------------------------------------------------------


async def test_success_stream_and_polls(client: Any, tasks_helpers: Any) -> None:
    h = tasks_helpers
    fx = await h.make_fixture(client, rows=[{"topic": str(i)} for i in range(5)])
    exp = await h.create_experiment(client, fx, generate=True)
    events, raw = await h.read_sse(client, generation(exp) + "/stream")
    final = check_stream(events, raw)
    assert final["status"] == "SUCCESS" and final["completed_responses"] == 5
    assert final["total_responses"] == 5 and final["completed_ratings"] == 5
    logs = "".join(e.get("logs_delta") or "" for e in events)
    assert "Generating" in logs and "finished" in logs
    # the stream of a finished task: one terminal event at once
    events, raw = await h.read_sse(client, generation(exp) + "/stream")
    assert [e["status"] for e in events] == ["SUCCESS"]
    # per-consumer logs: each uuid gets the full log once, then only news
    first = await client.ok("GET", generation(exp), params={"connection_uuid": "u1"})
    again = await client.ok("GET", generation(exp), params={"connection_uuid": "u1"})
    other = await client.ok("GET", generation(exp), params={"connection_uuid": "u2"})
    assert "finished" in first["logs_delta"] and again["logs_delta"] == ""
    assert other["logs_delta"] == first["logs_delta"]
    plain = await client.ok("GET", generation(exp))  # no uuid: the whole log
    assert plain["logs_delta"] == first["logs_delta"]
    assert plain["generation_task_id"] is None and plain["has_internal_error"] is False


async def test_failure_when_every_row_fails(client: Any, tasks_helpers: Any) -> None:
    h = tasks_helpers
    fx = await h.make_fixture(client, rows=[{"topic": "ECHO_FAIL a"}, {"topic": "ECHO_FAIL b"}])
    exp = await h.create_experiment(client, fx, generate=True)
    events, raw = await h.read_sse(client, generation(exp) + "/stream")
    final = check_stream(events, raw)
    assert final["status"] == "FAILURE"
    assert "every generation failed" in final["error_msg"] and "ECHO_FAIL" in final["error_msg"]
    got = await client.ok("GET", f"{P}/experiments/{exp['id']}")
    assert got["generation_task_id"] is None and got["has_internal_error"] is True
    assert got["results"]["num_failed_responses"] == 2
    assert "FAILURE" in got["logs"]
    plain = await client.ok("GET", generation(exp))
    assert plain["status"] == "FAILURE" and plain["has_internal_error"] is True


async def test_failure_when_the_llm_endpoint_is_down(client: Any, tasks_helpers: Any) -> None:
    h = tasks_helpers
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    llm = await client.ok(
        "POST",
        f"{P}/llm_configs",
        json={
            "name": "down",
            "llm_model_name": "m",
            "api_key": "secret-key-123456",
            "llm_base_url": f"http://127.0.0.1:{port}/v1",
            "max_retries": 0,
            "timeout": 5,
        },
    )
    fx = await h.make_fixture(client)
    exp = await h.create_experiment(client, fx, generate=True, llm_config_id=llm["id"])
    final = await h.run_to_end(client, exp)
    assert final["status"] == "FAILURE", final
    assert "every generation failed" in final["error_msg"]
    assert "secret-key-123456" not in final["error_msg"] + final["logs_delta"]


async def test_rejected_for_an_unsupported_llm_config(client: Any, tasks_helpers: Any) -> None:
    h = tasks_helpers
    llm = await client.ok(
        "POST",
        f"{P}/llm_configs",
        json={"name": "bot", "llm_model_name": "m", "api_key": "k", "inference_type": "botario"},
    )
    fx = await h.make_fixture(client)
    exp = await h.create_experiment(client, fx, generate=True, llm_config_id=llm["id"])
    events, raw = await h.read_sse(client, generation(exp) + "/stream")
    final = check_stream(events, raw)
    assert final["status"] == "REJECTED" and "botario" in final["error_msg"]
    # blocking waits of the official SDK only understand SUCCESS/FAILURE
    plain = await client.ok("GET", generation(exp))
    assert plain["status"] == "FAILURE" and plain["task_status"] == "REJECTED"
    assert plain["error_msg"].startswith("REJECTED: ")
    assert (await client.ok("GET", f"{P}/experiments/{exp['id']}"))["has_internal_error"]


async def test_rejected_when_the_queue_is_full(
    aiohttp_client: Any, tmp_path: Path, tasks_helpers: Any
) -> None:
    h = tasks_helpers
    client = await make_client(aiohttp_client, tmp_path, max_queued_tasks=1, echo_latency=0.05)
    fx = await h.make_fixture(client, rows=[{"topic": str(i)} for i in range(4)])
    first = await h.create_experiment(client, fx, generate=True)
    second = await h.create_experiment(client, fx, generate=True)
    assert (
        second["generation_task_id"] and second["generation_task_id"] != first["generation_task_id"]
    )
    events, raw = await h.read_sse(client, generation(second) + "/stream")
    final = check_stream(events, raw)
    assert final == {**final, "status": "REJECTED", "error_msg": "queue full (1 tasks)"}
    got = await client.ok("GET", f"{P}/experiments/{second['id']}")
    assert got["generation_task_id"] is None and got["has_internal_error"] is True
    batch = await client.ok(
        "POST", f"{P}/ratings/batches", json={"prompt_response_ids": [], "rating_mode": "detailed"}
    )
    assert batch is None
    assert (await h.run_to_end(client, first))["status"] == "SUCCESS"
    # a rejected run never ran: it can be started now
    started = await client.ok(
        "POST",
        f"{P}/experiments/{second['id']}/run",
        json={"rating_mode": "detailed", "n_epochs": 1},
    )
    assert (await h.run_to_end(client, started))["status"] == "SUCCESS"


async def test_timeout(aiohttp_client: Any, tmp_path: Path, tasks_helpers: Any) -> None:
    h = tasks_helpers
    client = await make_client(
        aiohttp_client, tmp_path, task_timeout=0.3, echo_latency=0.1, max_concurrency=1
    )
    fx = await h.make_fixture(client, rows=[{"topic": str(i)} for i in range(10)])
    exp = await h.create_experiment(client, fx, generate=True)
    events, raw = await h.read_sse(client, generation(exp) + "/stream")
    final = check_stream(events, raw)
    assert final["status"] == "TIMEOUT" and "task_timeout" in final["error_msg"]
    assert final["completed_responses"] < 10
    plain = await client.ok("GET", generation(exp))
    assert plain["status"] == "FAILURE" and plain["task_status"] == "TIMEOUT"
    got = await client.ok("GET", f"{P}/experiments/{exp['id']}")
    assert got["generation_task_id"] is None and got["has_internal_error"] is True


async def test_cancel_revokes_and_keeps_rows_consistent(
    aiohttp_client: Any, tmp_path: Path, tasks_helpers: Any
) -> None:
    h = tasks_helpers
    client = await make_client(aiohttp_client, tmp_path, echo_latency=0.05, max_concurrency=1)
    fx = await h.make_fixture(client, rows=[{"topic": str(i)} for i in range(20)])
    exp = await h.create_experiment(client, fx, generate=True)
    stream = asyncio.create_task(h.read_sse(client, generation(exp) + "/stream"))
    while True:
        status = await client.ok("GET", generation(exp), params={"connection_uuid": "x"})
        if status["completed_responses"] >= 2:
            break
        await asyncio.sleep(0.02)
    running = await client.ok("GET", f"{P}/experiments/{exp['id']}")
    assert running["generation_task_id"] == exp["generation_task_id"]
    assert "Generating" in running["logs"]  # the live log of the running task
    cancelled = await client.ok("POST", f"{P}/experiments/{exp['id']}/cancel")
    assert cancelled["generation_task_id"] is None and cancelled["has_internal_error"] is True
    final = check_stream(*await stream)
    assert final["status"] == "REVOKED" and final["error_msg"] == "cancelled by the user"
    await client.err("POST", f"{P}/experiments/{exp['id']}/cancel", 409)
    responses = await h.all_responses(client, exp["id"])
    assert 2 <= len(responses) < 20
    assert len(responses) == final["completed_responses"]
    for response in responses:  # every stored response is complete: no half-written rows
        assert response["ratings"] == [] or len(response["ratings"]) == 2
    # retry-failed completes what the cancelled run left
    retried = await client.ok("POST", f"{P}/experiments/{exp['id']}/retry-failed", json={})
    assert (await h.run_to_end(client, retried, timeout=30))["status"] == "SUCCESS"
    responses = await h.all_responses(client, exp["id"])
    assert len(responses) == 20 and all(len(r["ratings"]) == 2 for r in responses)


async def test_delete_running_experiment_revokes_its_task(
    aiohttp_client: Any, tmp_path: Path, tasks_helpers: Any
) -> None:
    h = tasks_helpers
    client = await make_client(aiohttp_client, tmp_path, echo_latency=0.05, max_concurrency=1)
    fx = await h.make_fixture(client, rows=[{"topic": str(i)} for i in range(20)])
    exp = await h.create_experiment(client, fx, generate=True)
    await asyncio.sleep(0.1)
    await client.ok("DELETE", f"{P}/experiments/{exp['id']}")
    rows = db_rows(tmp_path / "tasks.db", "SELECT status, error_msg, experiment_id FROM tasks")
    assert rows == [("REVOKED", "the experiment was deleted", None)]


# ---- restart, shutdown ------------------------------------------------------------------------


async def test_restart_resumes_interrupted_tasks(
    aiohttp_client: Any, tmp_path: Path, tasks_helpers: Any
) -> None:
    """A task left STARTED by a server that died (one server per SQLite file: nobody else
    runs it) is resumed by the next start and finishes; no FAILURE, no retry needed."""
    h = tasks_helpers
    first = await make_client(aiohttp_client, tmp_path)
    fx = await h.make_fixture(first)
    exp = await h.create_experiment(first, fx)
    await first.close()
    db = tmp_path / "tasks.db"
    conn = sqlite3.connect(db)
    with conn:
        conn.execute(
            "INSERT INTO tasks (id, kind, project_id, experiment_id, status, created_at, "
            "started_at, owner, fence, lease_expires_at, payload) VALUES ('crashed', "
            "'experiment', 1, ?, 'STARTED', '2024-01-01T00:00:00.000000Z', "
            "'2024-01-01T00:00:00.000000Z', 'dead-server', 1, '2999-01-01T00:00:00.000000Z', "
            "'{\"rating_mode\": \"detailed\"}')",
            (exp["id"],),
        )
        conn.execute(
            "UPDATE experiments SET generation_task_id = 'crashed', has_run = 1 WHERE id = ?",
            (exp["id"],),
        )
    conn.close()
    second = await make_client(aiohttp_client, tmp_path, task_timeout=3600 * 24 * 365 * 10)
    final = await h.poll(second, generation(exp, "crashed"))
    assert final["status"] == "SUCCESS", final
    got = await second.ok("GET", f"{P}/experiments/{exp['id']}")
    assert got["generation_task_id"] is None and got["has_internal_error"] is False
    assert "Resuming" in got["logs"]
    responses = await h.all_responses(second, exp["id"])
    assert len(responses) == 2 and all(len(r["ratings"]) == 2 for r in responses)
    assert db_rows(db, "SELECT fence, owner FROM tasks WHERE id = 'crashed'") == [(2, None)]


async def test_shutdown_releases_running_tasks_and_the_next_start_resumes_them(
    aiohttp_client: Any, tmp_path: Path, tasks_helpers: Any
) -> None:
    h = tasks_helpers
    client = await make_client(aiohttp_client, tmp_path, echo_latency=0.05, max_concurrency=1)
    fx = await h.make_fixture(client, rows=[{"topic": str(i)} for i in range(30)])
    exp = await h.create_experiment(client, fx, generate=True)
    await asyncio.sleep(0.3)
    await client.server.close()  # the app shuts down: its task is given back, not ended
    await client.close()
    rows = db_rows(tmp_path / "tasks.db", "SELECT status, owner, error_msg FROM tasks")
    assert rows == [("STARTED", None, None)]
    done = db_rows(tmp_path / "tasks.db", "SELECT COUNT(*) FROM responses")[0][0]
    assert 0 < done < 30
    again = await make_client(aiohttp_client, tmp_path)
    final = await h.run_to_end(again, exp)
    assert final["status"] == "SUCCESS", final
    responses = await h.all_responses(again, exp["id"])
    rows_seen = [r["prompt"]["template_variables"]["id"] for r in responses]
    assert sorted(rows_seen) == sorted(fx.row_ids)  # one response per row, none twice
    assert all(len(r["ratings"]) == 2 for r in responses)


# ---- concurrency --------------------------------------------------------------------------------


async def test_twenty_concurrent_experiments(client: Any, tasks_helpers: Any) -> None:
    h = tasks_helpers
    fx = await h.make_fixture(client, rows=[{"topic": str(i)} for i in range(3)])
    created = await asyncio.gather(
        *(h.create_experiment(client, fx, f"par-{i}", generate=True) for i in range(20))
    )
    assert len({e["id"] for e in created}) == 20
    assert len({e["generation_task_id"] for e in created}) == 20
    finals = await asyncio.gather(*(h.run_to_end(client, e, timeout=60) for e in created))
    assert {f["status"] for f in finals} == {"SUCCESS"}
    for exp in created:
        responses = await h.all_responses(client, exp["id"])
        assert len(responses) == 3 and all(len(r["ratings"]) == 2 for r in responses)


async def test_one_semaphore_bounds_all_llm_calls(
    aiohttp_client: Any, tmp_path: Path, tasks_helpers: Any
) -> None:
    h = tasks_helpers
    client = await make_client(aiohttp_client, tmp_path, max_concurrency=3)
    provider = client.server.app[PROVIDERS_KEY].default()
    active = peak = 0
    original = provider.chat

    async def counting_chat(*args: Any, **kwargs: Any) -> Any:
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        try:
            await asyncio.sleep(0.01)
            return await original(*args, **kwargs)
        finally:
            active -= 1

    provider.chat = counting_chat
    fx = await h.make_fixture(client, rows=[{"topic": str(i)} for i in range(6)])
    created = [await h.create_experiment(client, fx, generate=True) for _ in range(4)]
    finals = await asyncio.gather(*(h.run_to_end(client, e) for e in created))
    assert {f["status"] for f in finals} == {"SUCCESS"}
    assert peak == 3


def test_default_concurrency_by_provider(tmp_path: Path) -> None:
    assert DEFAULT_CONCURRENCY == {"local": 1, "openai": 8, "echo": 256}
    assert effective_concurrency(ServerConfig(db_path=tmp_path / "c.db", llm="echo")) == 256
    assert effective_concurrency(ServerConfig(db_path=tmp_path / "c.db", llm="local")) == 1
    config = ServerConfig(db_path=tmp_path / "c.db", llm="echo", max_concurrency=5)
    assert effective_concurrency(config) == 5


# ---- SSE details ---------------------------------------------------------------------------------


async def test_stream_ends_fast_after_the_task(
    aiohttp_client: Any, tmp_path: Path, tasks_helpers: Any
) -> None:
    """With a 10 s interval the terminal event still comes right after the task ends."""
    h = tasks_helpers
    client = await make_client(aiohttp_client, tmp_path, echo_latency=0.05)
    fx = await h.make_fixture(client, rows=[{"topic": "a"}])
    exp = await h.create_experiment(client, fx, generate=True)
    start = time.monotonic()
    events, raw = await h.read_sse(client, generation(exp) + "/stream", interval="10")
    assert time.monotonic() - start < 2.0
    assert check_stream(events, raw)["status"] == "SUCCESS"


async def test_stream_keepalive_and_unknown_task(
    aiohttp_client: Any, tmp_path: Path, tasks_helpers: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = tasks_helpers
    monkeypatch.setattr(tasks_sse, "KEEPALIVE_SECONDS", 0.1)
    monkeypatch.setattr(tasks_sse, "UNKNOWN_STREAM_SECONDS", 0.5)
    client = await make_client(aiohttp_client, tmp_path, echo_latency=0.2, max_concurrency=1)
    fx = await h.make_fixture(client, rows=[{"topic": "a"}, {"topic": "b"}])
    exp = await h.create_experiment(client, fx, generate=True)
    events, raw = await h.read_sse(client, generation(exp) + "/stream", interval="10")
    assert b": keepalive\n\n" in raw
    check_stream(events, raw)
    # unknown task: PENDING per interval for a bounded time, then the stream ends
    events, raw = await h.read_sse(client, generation(exp, "no-such-task") + "/stream")
    assert events and {e["status"] for e in events} == {"PENDING"}
    assert await client.ok("GET", generation(exp, "no-such-task")) == {
        "status": "PENDING",
        "generation_task_id": None,
        "has_internal_error": False,
    }
    assert await client.ok("GET", f"{P}/ratings/batches/no-such-task") == {"status": "PENDING"}
    assert await client.ok("GET", f"{P}/responses/batches/no-such-task") == {"status": "PENDING"}


async def test_stream_polling_interval_is_validated(client: Any, tasks_helpers: Any) -> None:
    h = tasks_helpers
    fx = await h.make_fixture(client)
    exp = await h.create_experiment(client, fx, generate=True)
    for bad in ("0.01", "11", "x"):
        detail = await client.err(
            "GET", generation(exp) + "/stream", 422, params={"polling_interval": bad}
        )
        assert "polling_interval" in detail
    await h.run_to_end(client, exp)


async def test_task_of_another_project_is_unknown(
    client: Any, tasks_helpers: Any, other: Any
) -> None:
    h = tasks_helpers
    fx = await h.make_fixture(client)
    exp = await h.create_experiment(client, fx, generate=True)
    await h.run_to_end(client, exp)
    other_pid, headers = other
    status = await client.ok(
        "GET",
        f"/api/v0/projects/{other_pid}/ratings/batches/{exp['generation_task_id']}",
        headers=headers,
    )
    assert status == {"status": "PENDING"}
    # a task of another kind is unknown on the wrong endpoint
    assert await client.ok("GET", f"{P}/ratings/batches/{exp['generation_task_id']}") == {
        "status": "PENDING"
    }
