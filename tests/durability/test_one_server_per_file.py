"""One server per SQLite file: a second server on a held file refuses to start and touches
nothing, while the first one's running task goes on; after a SIGKILL of the first, a new
server starts at once (the operating system released the lock)."""

from __future__ import annotations

import hashlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from elluminate import Client

KEY = "one-server-key"

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="needs SIGKILL")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_command(db: Path, port: int) -> list[str]:
    return [sys.executable, "-m", "elluminate.server", "--host", "127.0.0.1", "--port",
            str(port), "--db", str(db), "--api-key", KEY, "--llm", "echo",
            "--echo-latency", "0.05", "--max-concurrency", "2"]


def start_server(db: Path, port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(server_command(db, port), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("server did not start")


def digest(*paths: Path) -> str:
    h = hashlib.sha256()
    for path in paths:
        h.update(path.read_bytes() if path.exists() else b"-")
    return h.hexdigest()


def test_a_second_server_on_a_held_file_refuses_and_touches_nothing(tmp_path: Path) -> None:
    db, port = tmp_path / "shared.db", free_port()
    first = start_server(db, port)
    try:
        with Client(base_url=f"http://127.0.0.1:{port}", api_key=KEY) as client:
            template = client.create_prompt_template(name="T", template="Explain {{topic}}.")
            collection = client.create_collection(
                name="C", variables=[{"topic": f"t{i}"} for i in range(30)]
            )
            criterion_set = client.create_criterion_set(name="S", criteria=["Is it clear?"])
            exp = client.create_experiment(
                name="E", prompt_template=template, collection=collection,
                criterion_set=criterion_set,
            )
            client._http.request(
                "POST", f"{client.project_route_prefix}/experiments/{exp.id}/run",
                json={"rating_mode": "detailed", "n_epochs": 1},
            )
            time.sleep(0.3)  # the run is in flight
            second = subprocess.run(
                server_command(db, free_port()), capture_output=True, text=True, timeout=60
            )
            assert second.returncode != 0
            assert str(db) in second.stderr
            assert "in use by another elluminate server" in second.stderr
            assert f"process {first.pid}" in second.stderr
            assert "Traceback" not in second.stderr
            # the first server's run was not "recovered" by the second: it finishes normally
            finished = client.get_experiment(id=exp.id)
            deadline = time.monotonic() + 30
            while finished.generation_task_id and time.monotonic() < deadline:
                time.sleep(0.1)
                finished = client.get_experiment(id=exp.id)
            assert not finished.has_internal_error
            assert len(finished.rated_responses) == 30
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    # SIGKILL released the lock: a new server starts at once on the same file
    port = free_port()
    third = start_server(db, port)
    try:
        with Client(base_url=f"http://127.0.0.1:{port}", api_key=KEY) as client:
            assert client.get_experiment(name="E").name == "E"
    finally:
        third.terminate()
        third.wait(timeout=10)
    assert os.path.exists(str(db) + ".lock")


def test_the_refusal_leaves_the_file_unchanged(tmp_path: Path) -> None:
    db, port = tmp_path / "idle.db", free_port()
    first = start_server(db, port)
    try:
        time.sleep(0.3)
        files = [db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")]
        before = digest(*files)
        second = subprocess.run(
            server_command(db, free_port()), capture_output=True, text=True, timeout=60
        )
        assert second.returncode == 1, second.stderr
        assert digest(*files) == before  # the idle first server writes nothing either
    finally:
        first.terminate()
        first.wait(timeout=10)
