"""The CLI (as a subprocess and its argument handling) and LocalServer (sync and async)."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

import elluminate.server
from elluminate.server import LocalServer, ServerConfig
from elluminate.server.cli import config_from_args

REPO = Path(elluminate.server.__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def http(method: str, url: str, key: str | None = None, body: Any = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    if key:
        request.add_header("X-API-Key", key)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            text = resp.read()
            return resp.status, json.loads(text) if text else None
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def run_cli(db: Path, *extra: str) -> tuple[str, str, int]:
    """Start the CLI, wait for GET /, run checks, stop it; returns (stdout, stderr, port)."""
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    env.pop("ELLUMINATE_SERVER_API_KEY", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "elluminate.server", "--port", str(port), "--db", str(db),
         "--llm", "echo", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=str(db.parent),
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                status, body = http("GET", f"http://127.0.0.1:{port}/")
                assert status == 200 and body["status"] == "ok"
                break
            except (urllib.error.URLError, ConnectionError):
                if proc.poll() is not None or time.monotonic() > deadline:
                    out, err = proc.communicate(timeout=5)
                    raise AssertionError(f"server did not start:\n{out}\n{err}") from None
                time.sleep(0.05)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        try:
            out, err = proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
    return out, err, port


def test_cli_generates_and_prints_a_key_once(tmp_path: Path) -> None:
    db = tmp_path / "cli.db"
    out, err, _ = run_cli(db)
    match = re.search(r"ELLUMINATE_API_KEY=(\S+)", out)
    assert match, out + err
    key = match.group(1)
    assert key not in err  # logs show at most a short prefix
    assert "default LLM provider: echo" in err

    # second start on the same database: no new key; the printed one still works
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "elluminate.server", "--port", str(port), "--db", str(db),
         "--llm", "echo"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                status, body = http("GET", f"http://127.0.0.1:{port}/api/v0/projects", key)
                break
            except (urllib.error.URLError, ConnectionError):
                assert proc.poll() is None and time.monotonic() < deadline
                time.sleep(0.05)
        assert status == 200 and body["items"][0]["id"] == 1
        assert http("GET", f"http://127.0.0.1:{port}/api/v0/projects", "wrong")[0] == 401
    finally:
        proc.send_signal(signal.SIGINT)
        out2, err2 = proc.communicate(timeout=15)
    assert "ELLUMINATE_API_KEY" not in out2
    assert proc.returncode == 0, err2


def test_cli_with_fixed_key(tmp_path: Path) -> None:
    out, _, _ = run_cli(tmp_path / "fixed.db", "--api-key", "my-fixed-key-1234")
    assert "ELLUMINATE_API_KEY" not in out
    assert "listening on http://127.0.0.1:" in out


def test_cli_flags_env_and_defaults() -> None:
    config = config_from_args([], {})
    assert (config.host, config.port, str(config.db_path)) == ("127.0.0.1", 8000, "./elluminate.db")
    assert config.page_size == 100 and config.task_timeout == 36000.0
    assert config.llm in ("echo", "local")
    env = {"ELLUMINATE_SERVER_PORT": "7000", "ELLUMINATE_SERVER_PAGE_SIZE": "5",
           "ELLUMINATE_SERVER_LLM": "openai", "ELLUMINATE_SERVER_LLM_MODEL": "m",
           "ELLUMINATE_SERVER_API_KEY": "envkey", "ELLUMINATE_SERVER_ECHO_LATENCY": "0.5",
           "ELLUMINATE_SERVER_LOG_LEVEL": "debug"}
    config = config_from_args(["--port", "9000", "--max-concurrency", "3"], env)
    assert config.port == 9000  # the flag wins
    assert config.page_size == 5 and config.llm == "openai" and config.llm_model == "m"
    assert config.api_key == "envkey" and config.echo_latency == 0.5
    assert config.max_concurrency == 3 and config.log_level == "DEBUG"
    with pytest.raises(SystemExit):
        config_from_args(["--llm", "magic"], {})
    with pytest.raises(SystemExit):
        config_from_args([], {"ELLUMINATE_SERVER_PORT": "eighty"})
    with pytest.raises(SystemExit):
        config_from_args(["--page-size", "0"], {})


def test_local_server_sync(tmp_path: Path) -> None:
    threads_before = set(threading.enumerate())
    started = time.perf_counter()
    with LocalServer() as srv:
        assert time.perf_counter() - started < 2.0
        assert srv.start() is srv  # idempotent
        assert srv.base_url.startswith("http://127.0.0.1:")
        db_path = srv.db_path
        assert db_path is not None and db_path.exists()
        status, body = http("GET", f"{srv.base_url}/api/v0/projects", srv.api_key)
        assert status == 200 and body["count"] == 1
        status, body = http("POST", f"{srv.base_url}/api/v0/projects/1/prompt_templates",
                            srv.api_key, {"name": "T", "messages": [{"role": "user",
                                                                     "content": "{{x}}"}]})
        assert status == 201
    assert not db_path.parent.exists()  # temp dir removed
    srv.stop()  # idempotent
    assert set(threading.enumerate()) <= threads_before
    with pytest.raises(RuntimeError):
        srv.base_url  # noqa: B018

    # a given db path is kept, and a restart finds the data again
    path = tmp_path / "kept.db"
    with LocalServer(db_path=path, api_key="fixed-key-5678", page_size=7) as srv:
        assert srv.api_key == "fixed-key-5678" and srv.db_path == path
        http("POST", f"{srv.base_url}/api/v0/projects/1/collections", srv.api_key, {"name": "K"})
    assert path.exists()
    with LocalServer(db_path=path, api_key="fixed-key-5678") as srv:
        status, body = http("GET", f"{srv.base_url}/api/v0/projects/1/collections?name=K",
                            srv.api_key)
        assert body["count"] == 1


async def test_local_server_async() -> None:
    async with LocalServer(llm="echo") as srv:
        import aiohttp

        async with aiohttp.ClientSession(headers={"X-API-Key": srv.api_key}) as session:
            async with session.get(f"{srv.base_url}/api/v0/projects") as resp:
                assert resp.status == 200
    assert not srv.running


def test_local_server_rejects_unknown_options() -> None:
    with pytest.raises(TypeError):
        LocalServer(no_such_option=1)
    assert "llm_api_key" in {f for f in ServerConfig.__dataclass_fields__}
