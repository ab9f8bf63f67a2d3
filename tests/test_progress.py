"""The blocking-run progress bar: on only interactively, off in CI and without a TTY."""

from __future__ import annotations

import io
import sys

from elluminate._progress import TaskProgress, progress_enabled


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_explicit_choice_wins(monkeypatch):
    monkeypatch.setenv("CI", "true")
    assert progress_enabled(True) is True
    assert progress_enabled(False) is False


def test_off_in_ci_and_without_a_tty(monkeypatch):
    monkeypatch.setattr(sys, "stderr", _Tty())
    monkeypatch.setenv("CI", "true")
    assert progress_enabled(None) is False
    monkeypatch.delenv("CI")
    assert progress_enabled(None) is True
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert progress_enabled(None) is False


def test_bar_follows_rated_responses(monkeypatch):
    out = _Tty()
    monkeypatch.setattr(sys, "stderr", out)
    bar = TaskProgress("exp", enabled=True)
    bar.update({"status": "STARTED", "completed_ratings": 1, "total_responses": 4})
    bar.update({"status": "STARTED", "completed_ratings": 0, "total_responses": 4})  # no regress
    bar.update({"status": "SUCCESS", "completed_ratings": 4, "total_responses": 4})
    assert bar._bar.n == 4 and bar._bar.total == 4
    bar.close()
    TaskProgress("off", enabled=False).update({"completed_ratings": 3})  # a no-op


def test_run_experiment_with_progress(server, capsys):
    from elluminate import Client

    with Client(base_url=server.base_url, api_key=server.api_key) as client:
        t = client.create_prompt_template(name="T", template="{{x}}")
        c = client.create_collection(name="C", variables=[{"x": "1"}, {"x": "2"}])
        exp = client.run_experiment(
            name="E", prompt_template=t, collection=c, criteria=["ok?"], show_progress=True
        )
    assert len(exp.rated_responses) == 2
    assert "E" in capsys.readouterr().err
