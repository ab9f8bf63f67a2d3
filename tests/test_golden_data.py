"""The golden wire data lives inside ``tests/``: the tests that use it run from a clean copy.

They used to look for it in a folder above the repository and skip when it was missing, so a
fresh clone silently skipped them.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent
GOLDEN = TESTS / "golden"
USERS = [
    "tests/server/test_server_replay.py",
    "tests/server/test_experiments.py::test_replay_official_requests",
    "tests/server/test_experiments.py::test_answers_have_every_key_of_the_examples",
    "tests/test_advanced_schemas.py::test_responses_parse_like_the_official_examples",
]


def test_golden_files_are_complete() -> None:
    lines = (GOLDEN / "official-requests.jsonl").read_text().splitlines()
    requests = [json.loads(line) for line in lines if line.strip()]
    assert len(requests) == 92
    assert all({"method", "path", "query", "headers", "body"} <= r.keys() for r in requests)
    examples = json.loads((GOLDEN / "response-examples.json").read_text())
    assert {"EXP", "RESULTS", "RESP", "PROMPT", "RATING"} <= examples.keys()
    advanced = json.loads((GOLDEN / "official-advanced.json").read_text())
    assert advanced["package"] == "1.5.2" and len(advanced["calls"]) >= 70
    for call in advanced["calls"].values():
        assert ("returned" in call) != ("raised" in call), call["call"]
        assert all(
            {"method", "path", "query", "body", "answer"} <= r.keys() for r in call["requests"]
        )


def test_golden_tests_run_from_a_copy_of_the_tests(tmp_path: Path) -> None:
    clone = tmp_path / "clone"
    shutil.copytree(TESTS, clone / "tests", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(TESTS.parent / "setup.cfg", clone / "setup.cfg")
    result = subprocess.run(
        # One backend is enough here: the question is where the data lives, not the database.
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider",
         "-k", "not postgres", *USERS],
        cwd=clone,
        capture_output=True,
        text=True,
        timeout=600,
    )
    report = result.stdout + result.stderr
    assert result.returncode == 0, report
    assert "skipped" not in report and "5 passed" in report, report
