"""Crash durability: SIGKILL the server mid-run, restart it on the same file, lose nothing.

Every write the server acknowledged before the kill is there after the restart; the
interrupted runs resume on their own and finish with exactly one response per row; SQLite's
integrity check passes.
"""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from elluminate import Client
from elluminate.exceptions import TransportError

KEY = "crash-test-key"
ROWS = 12
CRITERIA = ["Is it relevant?", "Is it clear?"]

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="needs SIGKILL")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(db: Path, port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "elluminate.server", "--host", "127.0.0.1", "--port", str(port),
         "--db", str(db), "--api-key", KEY, "--llm", "echo", "--echo-latency", "0.05",
         "--max-concurrency", "2"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("server did not start")


def test_sigkill_mid_run_loses_no_acknowledged_write(tmp_path):
    db, port = tmp_path / "crash.db", free_port()
    base_url = f"http://127.0.0.1:{port}"
    server = start_server(db, port)
    acknowledged: list[int] = []
    try:
        with Client(base_url=base_url, api_key=KEY) as client:
            template = client.create_prompt_template(name="T", template="Explain {{topic}}.")
            collection = client.create_collection(
                name="C", variables=[{"topic": f"topic {i}"} for i in range(ROWS)]
            )
            criterion_set = client.create_criterion_set(name="S", criteria=CRITERIA)
            prefix = client.project_route_prefix
            experiments = []
            for i in range(3):
                exp = client.create_experiment(
                    name=f"E{i}", prompt_template=template, collection=collection,
                    criterion_set=criterion_set,
                )
                client._http.request(
                    "POST", f"{prefix}/experiments/{exp.id}/run",
                    json={"rating_mode": "detailed", "n_epochs": 1},
                )
                experiments.append(exp)
            # Acknowledged writes while the runs are in flight, until some responses exist.
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                acknowledged.append(
                    client.create_prompt_template(
                        name=f"Ack {len(acknowledged)}", template="{{x}}"
                    ).id
                )
                done = client._http.get(
                    f"{prefix}/responses", dict, {"experiment_id": experiments[0].id, "page": 1}
                )["count"]
                if done >= 2 and len(acknowledged) >= 10:
                    break
        os.kill(server.pid, signal.SIGKILL)
        server.wait(timeout=10)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()

    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        interrupted = conn.execute(
            "SELECT COUNT(*) FROM experiments WHERE generation_task_id IS NOT NULL"
        ).fetchone()[0]
        assert interrupted > 0, "the kill came too late to interrupt a run"

    server = start_server(db, port)
    try:
        with Client(base_url=base_url, api_key=KEY) as client:
            names = {t.id: t.name for t in client.list_prompt_templates()}
            missing = [i for i in acknowledged if i not in names]
            assert not missing, f"acknowledged writes lost: {missing}"
            for exp in experiments:
                # the restarted server resumes the interrupted runs on its own
                fresh = client.get_experiment(id=exp.id)
                deadline = time.monotonic() + 60
                while fresh.generation_task_id is not None and time.monotonic() < deadline:
                    time.sleep(0.2)
                    fresh = client.get_experiment(id=exp.id)
                assert fresh.generation_task_id is None, "the resumed run did not finish"
                assert not fresh.has_internal_error
                assert fresh.logs and "Resuming" in fresh.logs
                assert len(fresh.rated_responses) == ROWS  # one per row: nothing twice
                rows = sorted(r.prompt.template_variables.id for r in fresh.rated_responses)
                assert len(set(rows)) == ROWS
                assert all(
                    r.error is None and len(r.ratings) == len(CRITERIA)
                    for r in fresh.rated_responses
                )
                assert fresh.results is not None and fresh.results.num_rated_responses == ROWS
        print(f"acknowledged before the kill: {len(acknowledged)}, found after: "
              f"{sum(i in names for i in acknowledged)}")
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def test_a_dead_server_is_a_transport_error_not_a_hang(tmp_path):
    port = free_port()
    with pytest.raises(TransportError):
        Client(base_url=f"http://127.0.0.1:{port}", api_key=KEY, timeout=2)
