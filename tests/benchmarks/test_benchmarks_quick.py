"""``benchmarks/run.py --quick`` runs end to end (without the official package) and prints
its tables. No timing is asserted: this only keeps the benchmarks runnable."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

RUN = Path(__file__).resolve().parents[2] / "benchmarks" / "run.py"


def test_quick_benchmarks_complete_and_print_tables(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ELLUMINATE_")}
    proc = subprocess.run(
        [sys.executable, str(RUN), "--quick", "--no-official", "--json", str(tmp_path / "r.json")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    for title in (
        "### Import",
        "### 1. Large read",
        "### 2. Small calls",
        "### 3. Concurrent small calls",
        "### 4. Bulk upload",
        "### 5. Concurrency headline",
        "### 6. Server throughput",
        "### 7. Decode only",
        "### Targets",
    ):
        assert title in out, out
    assert "| this SDK, `Client`" in out and "| this SDK, `AsyncClient`" in out
    assert "machine: " in out
    assert (tmp_path / "r.json").stat().st_size > 0


def test_viewer_page_benchmark_runs_and_prints_its_table(tmp_path: Path) -> None:
    script = RUN.with_name("ui_pages.py")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ELLUMINATE_")}
    proc = subprocess.run(
        [sys.executable, str(script), "--rows", "120", "--small", "12", "--repeat", "2"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    for line in ("viewer page, 120 responses", "results computation alone", "ratio 120 / 12"):
        assert line in proc.stdout, proc.stdout


def test_server_write_benchmark_runs_and_prints_its_tables(tmp_path: Path) -> None:
    script = RUN.with_name("server_writes.py")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ELLUMINATE_")}
    proc = subprocess.run(
        [sys.executable, str(script), "--lines", "2000", "--rows", "20", "--repeat", "1"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    for line in ("| last 1,000 |", "| all 2,000 |", "| full |"):
        assert line in proc.stdout, proc.stdout


def test_backend_benchmark_runs_on_sqlite(tmp_path: Path) -> None:
    script = RUN.with_name("server_backends.py")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ELLUMINATE_")}
    proc = subprocess.run(
        [sys.executable, str(script), "--quick", "--baseline", "", "--postgres", ""],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    for line in ("| figure | SQLite, now |", "| experiments/s |", "| list experiments req/s |"):
        assert line in proc.stdout, proc.stdout
