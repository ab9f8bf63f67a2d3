"""The pytest plugin's fixtures, as a user's test suite would use them (run in a subprocess)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

USER_TESTS = '''
import pytest

def test_sync(elluminate_client):
    t = elluminate_client.create_prompt_template(name="t", template="Hi {{name}}")
    c = elluminate_client.create_collection(name="c", variables=[{"name": "Ada"}])
    e = elluminate_client.run_experiment(name="e", prompt_template=t, collection=c,
                                         criteria=["Is it a greeting?"])
    assert e.rated_responses[0].response_str == "Echo: Hi Ada"

@pytest.mark.asyncio
async def test_async(elluminate_async_client):
    t = await elluminate_async_client.create_prompt_template(name="t", template="{{x}}")
    assert t.placeholders == {"x"}

@pytest.fixture
def elluminate_server_options():
    return {"llm": "echo", "echo_latency": 0.0}

def test_options_override(elluminate_server):
    assert elluminate_server.base_url.startswith("http://127.0.0.1:")
'''


def test_plugin_fixtures_in_a_user_suite(tmp_path):
    (tmp_path / "test_user.py").write_text(textwrap.dedent(USER_TESTS))
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o",
         "asyncio_mode=strict", str(tmp_path)],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "3 passed" in proc.stdout
