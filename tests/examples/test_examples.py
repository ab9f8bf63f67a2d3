"""Every example runs, against an embedded server with the echo provider."""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
CLEAN_ENV = {k: v for k, v in os.environ.items() if not k.startswith("ELLUMINATE_")}

SCRIPTS = {
    "async_basics.py": ["pass rate 100.0%"],
    "ab_test.py": ["pass rate", "criterion", "run it with --serve"],
    "batch_collections.py": ["Experiment 3: 3 responses"],
    "semaphore_limit.py": ["20 experiments"],
    "error_handling.py": ["conflict:", "not found:", "rejected (4"],
    "sync_to_async.py": ["sync pass rate:  100.0%", "async pass rate: 100.0%"],
    "streaming_progress.py": ["done: pass rate 100.0%"],
}


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_example_script_runs(script, tmp_path):
    args = [sys.executable, str(EXAMPLES / script)]
    if script == "ab_test.py":
        args += ["--llm", "echo"]
    proc = subprocess.run(
        args, cwd=tmp_path, env=CLEAN_ENV, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for expected in SCRIPTS[script]:
        assert expected in proc.stdout, proc.stdout


def test_ab_test_serve_ends_with_the_viewer_pages_of_its_experiments(tmp_path):
    """``ab_test.py --serve`` keeps its server and prints where its experiments are in the
    web viewer; those pages open (signed in with the printed key) and show them."""
    import re
    import signal

    proc = subprocess.Popen(
        [sys.executable, str(EXAMPLES / "ab_test.py"), "--llm", "echo", "--serve"],
        cwd=tmp_path,
        env=CLEAN_ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        lines = []
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if "serving until Ctrl-C" in line:
                break
        out = "".join(lines)
        pages = re.findall(r"(http://127\.0\.0\.1:\d+/ui/\S+)", out)
        key = re.search(r"API key of this server: (\S+)", out)
        assert len(pages) == 3 and key, out
        session = requests.Session()
        login = session.get(pages[0])  # redirected to the sign-in form
        token = re.search(r'name="csrf_token" value="([^"]+)"', login.text)
        assert token, login.text
        signed = session.post(
            login.url,
            data={"csrf_token": token.group(1), "api_key": key.group(1), "next": "/ui/"},
        )
        assert signed.status_code == 200 and "Style A (brief)" in signed.text
        for page in pages:
            shown = session.get(page)
            assert shown.status_code == 200, (page, shown.text[:500])
            assert "A/B " in shown.text
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
        if proc.stdout is not None:
            proc.stdout.close()
    assert proc.returncode == 0


def test_notebook_runs_in_a_real_kernel(tmp_path):
    nbformat = pytest.importorskip("nbformat", reason="notebook tests need nbformat")
    nbclient = pytest.importorskip("nbclient", reason="notebook tests need nbclient")
    nb = nbformat.read(EXAMPLES / "notebook.ipynb", as_version=4)
    old = dict(os.environ)
    os.environ.clear()
    os.environ.update(CLEAN_ENV)
    try:
        nbclient.NotebookClient(
            nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
        ).execute()
    finally:
        os.environ.clear()
        os.environ.update(old)
    outputs = "".join(
        o.get("text", "") for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs
    )
    assert "pass rate: 100.0%" in outputs
    assert "experiments: 1" in outputs


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_fastapi_app_answers_a_real_request(server, monkeypatch):
    uvicorn = pytest.importorskip("uvicorn", reason="the FastAPI example test needs uvicorn")
    pytest.importorskip("fastapi", reason="the FastAPI example test needs fastapi")
    monkeypatch.setenv("ELLUMINATE_BASE_URL", server.base_url)
    monkeypatch.setenv("ELLUMINATE_API_KEY", server.api_key)
    spec = importlib.util.spec_from_file_location("fastapi_app", EXAMPLES / "fastapi_app.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    port = _free_port()
    config = uvicorn.Config(module.app, host="127.0.0.1", port=port, log_level="warning")
    app_server = uvicorn.Server(config)
    thread = threading.Thread(target=app_server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not app_server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.02)
        body = {"prompt": "Summarise {{text}} in one line.", "test_case": {"text": "a story"}}
        with requests.Session() as http:
            first = http.post(f"http://127.0.0.1:{port}/evaluate", json=body, timeout=60)
            second = http.post(f"http://127.0.0.1:{port}/evaluate", json=body, timeout=60)
        assert first.status_code == 200, first.text
        assert first.json()["pass_rate"] == 1.0
        assert second.json()["experiment_id"] != first.json()["experiment_id"]
    finally:
        app_server.should_exit = True
        thread.join(timeout=30)
