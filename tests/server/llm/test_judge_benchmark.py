"""The labelled judge set and ``benchmarks/judge.py`` (quick mode with the echo judge)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from types import ModuleType

import pytest

BENCHMARKS = Path(__file__).resolve().parents[3] / "benchmarks"
CLEAN_ENV = {k: v for k, v in os.environ.items() if not k.startswith("ELLUMINATE_")}


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("judge_benchmark", BENCHMARKS / "judge.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_the_set_is_large_balanced_and_split(bench: ModuleType) -> None:
    items = bench.load_items()
    assert len(items) >= 200
    gold = Counter(it.gold for it in items)
    assert abs(gold["yes"] - gold["no"]) <= 2
    kinds = {it.kind for it in items}
    assert kinds >= {
        "language",
        "topic",
        "numbers",
        "format",
        "questions",
        "tone",
        "factual",
        "refusal",
        "name",
    }
    for kind in kinds:  # both answers of every kind in both splits
        for split in ("dev", "heldout"):
            assert {it.gold for it in items if it.kind == kind and it.split == split} == {
                "yes",
                "no",
            }, (kind, split)
    prompts_of = {split: {it.prompt for it in items if it.split == split} for split in bench.SPLITS}
    assert not prompts_of["dev"] & prompts_of["heldout"]  # no prompt in both splits
    assert not any("{{" in it.prompt + it.criterion for it in items)  # variables rendered
    assert any(it.kind == "name" and "Amira" in it.criterion for it in items)


def test_the_unseen_set_is_balanced_and_new(bench: ModuleType) -> None:
    written = bench.load_items()
    unseen = bench.load_items(bench.UNSEEN)
    assert len(unseen) >= 120
    assert {it.split for it in unseen} == {"unseen"}
    gold = Counter(it.gold for it in unseen)
    assert gold["yes"] == gold["no"]
    # nothing of it repeats the first set: no criterion, no prompt, no item id
    assert not {it.criterion for it in unseen} & {it.criterion for it in written}
    assert not {it.prompt for it in unseen} & {it.prompt for it in written}
    assert not {it.id for it in unseen} & {it.id for it in written}
    assert not any("{{" in it.prompt + it.criterion for it in unseen)
    # kinds of its own, including ones no deterministic check could claim
    assert {"persuasion", "metaphor", "humour"} <= {it.kind for it in unseen}


def test_balanced_accuracy_scores_a_constant_answer_at_half(bench: ModuleType) -> None:
    golds = ["yes", "yes", "yes", "no"]
    assert bench.balanced_accuracy(golds, ["yes"] * 4) == 0.5
    assert bench.balanced_accuracy(golds, ["no"] * 4) == 0.5
    assert bench.balanced_accuracy(golds, golds) == 1.0
    assert bench.balanced_accuracy(golds, ["yes", "no", "yes", "no"]) == pytest.approx(5 / 6)
    table = bench.Confusion()
    table.add("yes", None)  # a failed rating counts against the gold answer
    table.add("no", None)
    assert (table.failed, table.agreement, table.balanced_accuracy) == (2, 0.0, 0.0)


def test_quick_run_with_echo_prints_the_table(tmp_path: Path) -> None:
    out = tmp_path / "figures.json"
    proc = subprocess.run(
        [
            sys.executable,
            str(BENCHMARKS / "judge.py"),
            "--quick",
            "--llm",
            "echo",
            "--json",
            str(out),
        ],
        cwd=tmp_path,
        env=CLEAN_ENV,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "bal.acc" in proc.stdout and "per kind" in proc.stdout
    for kind in ("language", "refusal", "name"):
        assert f"   {kind}" in proc.stdout
    (run,) = json.loads(out.read_text())
    # 2 items per kind and split, of both sets
    assert run["provider"] == "echo" and run["ratings"] == 2 * (9 * 2 + 15)
    # echo answers yes to every non-empty response: the chance baseline
    assert run["per_split"]["all"]["balanced_accuracy"] == 0.5
    assert run["per_split"]["all"]["yes_rate"] == 1.0
    assert run["per_split"]["all"]["failed"] == 0


def test_threshold_fit_and_its_cross_validation(bench: ModuleType) -> None:
    def item(i: int, gold: str) -> object:
        return bench.Item(f"k-{i:02d}a", "k", "dev", "p", "r", "c", gold)

    # a score that separates the answers at 0.3: fitting finds it, and it holds out of fold
    separable = [item(i, "yes" if i % 2 else "no") for i in range(20)]
    scores = {
        it.id: (0.35 if it.gold == "yes" else 0.25) + i / 1000 for i, it in enumerate(separable)
    }
    threshold = bench.best_threshold(scores, separable)
    assert 0.27 < threshold < 0.35
    assert bench.cross_validated(scores, separable) == 1.0
    # a score unrelated to the answers: fitting looks good in-sample, not out of fold
    noise = {it.id: ((i * 7919) % 20) / 20 for i, it in enumerate(separable)}
    fitted = bench.best_threshold(noise, separable)
    in_sample = bench.balanced_accuracy(
        [it.gold for it in separable],
        ["yes" if noise[it.id] >= fitted else "no" for it in separable],
    )
    assert in_sample > bench.cross_validated(noise, separable)
