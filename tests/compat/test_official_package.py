"""The official ``elluminate`` package, installed in its own virtualenv, works against our server.

Set ``ELLUMINATE_OFFICIAL_PYTHON`` to that virtualenv's python (``.ci/run`` and the ``compat``
tox env do); without it these tests are skipped with that reason.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

OFFICIAL_PYTHON = os.environ.get("ELLUMINATE_OFFICIAL_PYTHON")
FLOW = Path(__file__).with_name("official_flow.py")

pytestmark = pytest.mark.skipif(
    not OFFICIAL_PYTHON,
    reason="set ELLUMINATE_OFFICIAL_PYTHON to a python with the official elluminate package",
)


def run_flow(server, stage: str, tmp_path: Path) -> str:
    proc = subprocess.run(
        [str(OFFICIAL_PYTHON), str(FLOW), server.base_url, server.api_key, stage],
        cwd=tmp_path,  # never import this repository's package by accident
        env={k: v for k, v in os.environ.items() if not k.startswith("ELLUMINATE_")},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    line = proc.stdout.strip().splitlines()[-1]
    assert line.startswith(f"OK {stage}"), proc.stdout
    return line


def test_official_package_is_really_the_official_one(tmp_path):
    out = subprocess.run(
        [str(OFFICIAL_PYTHON), "-c", "import elluminate, sys; print(elluminate.__file__)"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    location = Path(out.strip()).resolve()
    assert "site-packages" in location.parts
    assert Path(sys.prefix).resolve() not in location.parents


def test_templates_and_collections(server, tmp_path):
    run_flow(server, "basic", tmp_path)


def test_readme_flow_criteria_experiment_ratings(server, tmp_path):
    line = run_flow(server, "full", tmp_path)
    assert "criteria=" in line and "pass_rate=" in line


def test_projects_resource(server, tmp_path):
    line = run_flow(server, "projects", tmp_path)
    assert "created=" in line


def test_views_samples_comparison_stats_map(server, tmp_path):
    line = run_flow(server, "views", tmp_path)
    assert "improved=2" in line and "requests=4" in line


def test_scenario_sets(server, tmp_path):
    line = run_flow(server, "scenario_sets", tmp_path)
    assert "scenarios=2" in line


def test_agent_results_and_the_agentic_wait(server, tmp_path):
    line = run_flow(server, "agent_results", tmp_path)
    assert "responses=4" in line


def test_agentic_stream_and_waits(server, tmp_path):
    line = run_flow(server, "agent_stream", tmp_path)
    assert "events=" in line


def test_multi_turn_experiments_and_conversation_cells(server, tmp_path):
    line = run_flow(server, "multi_turn", tmp_path)
    assert "conversations=4" in line
