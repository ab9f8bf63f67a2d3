"""Plumbing of ``benchmarks/run.py``: the server process, the side subprocesses, the tables."""

from __future__ import annotations

import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
SIDE_SCRIPT = BENCH_DIR / "side.py"
OFFICIAL_VERSION = "1.5.2"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class TreeServer:
    """``python -m elluminate.server`` of a code tree (this one or a git worktree of another
    revision) as a subprocess on a free local port, its output in ``log_dir``.

    ``db`` is the ``--db`` (a new SQLite file in ``log_dir`` when None); ``options`` are more
    command-line flags (``--llm`` ... ). Wait for it with :meth:`wait_ready` (or ``await``
    :meth:`ready` inside an event loop), end it with :meth:`stop`.
    """

    def __init__(
        self, tree: Path, api_key: str, *options: str, log_dir: Path, db: str | None = None
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        db = db or str(log_dir / f"bench-{self.port}.db")
        command = [sys.executable, "-m", "elluminate.server", "--host", "127.0.0.1",
                   "--port", str(self.port), "--db", db, "--api-key", api_key,
                   "--log-level", "WARNING", *options]  # fmt: skip
        env = {k: v for k, v in os.environ.items() if not k.startswith("ELLUMINATE_")}
        env["PYTHONPATH"] = str(tree)
        self.log = open(log_dir / f"server-{self.port}.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(command, cwd=tree, env=env, stdout=self.log,
                                     stderr=subprocess.STDOUT)  # fmt: skip
        self._deadline = time.monotonic() + 90

    def _listening(self) -> bool:
        if self.proc.poll() is not None:
            raise RuntimeError(f"server exited: see {self.log.name}")
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                return True
        except OSError:
            if time.monotonic() > self._deadline:
                raise RuntimeError("server did not start") from None
            return False

    def wait_ready(self) -> None:
        """Block until the server accepts connections (90 s at most)."""
        while not self._listening():
            time.sleep(0.05)

    async def ready(self) -> None:
        """:meth:`wait_ready` without blocking the event loop (in a thread)."""
        import asyncio

        await asyncio.to_thread(self.wait_ready)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


class ServerProcess:
    """``python -m elluminate.server --llm echo`` as a subprocess on a free local port."""

    def __init__(self, workdir: Path, *, echo_latency: float = 0.0, name: str = "server") -> None:
        self.api_key = "bench-" + os.urandom(12).hex()
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.db = workdir / f"{name}.db"
        self.echo_latency = echo_latency
        self.project_id = 0
        self._log = workdir / f"{name}.log"
        self._proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> ServerProcess:
        cmd = [
            sys.executable, "-m", "elluminate.server", "--llm", "echo", "--db", str(self.db),
            "--api-key", self.api_key, "--port", str(self.port), "--host", "127.0.0.1",
            "--echo-latency", str(self.echo_latency), "--log-level", "WARNING",
        ]  # fmt: skip
        env = {k: v for k, v in os.environ.items() if not k.startswith("ELLUMINATE_")}
        env["PYTHONPATH"] = str(REPO)
        with open(self._log, "wb") as out:
            self._proc = subprocess.Popen(cmd, cwd=self.db.parent, env=env, stdout=out, stderr=out)
        deadline = time.monotonic() + 60
        while True:
            if self._proc.poll() is not None:
                raise RuntimeError(f"the server exited: {self._log.read_text()[-2000:]}")
            try:
                body = self.get("/api/v0/projects")
                self.project_id = int(body["items"][0]["id"])
                return self
            except OSError:
                if time.monotonic() > deadline:
                    self.__exit__()
                    raise RuntimeError("the server did not start within 60 s") from None
                time.sleep(0.1)

    def get(self, path: str) -> Any:
        request = urllib.request.Request(self.base_url + path, headers={"X-API-Key": self.api_key})
        with urllib.request.urlopen(request, timeout=10) as resp:
            return json.loads(resp.read())

    def __exit__(self, *exc_info: object) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


# ---- sides -----------------------------------------------------------------------------------


@dataclass
class Side:
    """One measured contender: a name and the interpreter that runs it (None: unavailable)."""

    name: str
    python: str | None
    official: bool = False


@dataclass
class Results:
    """The results of every repetition of every side of one section."""

    runs: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    def median(self, side: str, key: str = "seconds") -> float | None:
        values = [r[key] for r in self.runs.get(side, []) if key in r]
        return statistics.median(values) if values else None

    def spread(self, side: str, key: str = "seconds") -> tuple[float, float] | None:
        values = [r[key] for r in self.runs.get(side, []) if key in r]
        return (min(values), max(values)) if values else None

    def first(self, side: str, key: str) -> Any:
        runs = self.runs.get(side) or [{}]
        return runs[0].get(key)


def run_side(side: Side, spec: dict[str, Any], workdir: Path, timeout: float) -> dict[str, Any]:
    """Run ``side.py`` once in a fresh interpreter; returns its RESULT dict."""
    assert side.python is not None
    env = {k: v for k, v in os.environ.items() if not k.startswith("ELLUMINATE_")}
    env.pop("PYTHONPATH", None)
    if not side.official:
        env["PYTHONPATH"] = str(REPO)  # this repository's package, installed or not
    # The script is copied outside the repository and run from there, so the official
    # interpreter can never import this repository's package by accident.
    script = workdir / "side.py"
    if not script.exists():
        shutil.copyfile(SIDE_SCRIPT, script)
    proc = subprocess.run(
        [side.python, str(script), json.dumps(spec)],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("RESULT "):
            return dict(json.loads(line[len("RESULT ") :]))
    raise RuntimeError(
        f"{side.name} exited {proc.returncode}: {(proc.stderr or proc.stdout)[-1500:]}"
    )


def measure(
    sides: Sequence[Side],
    spec: dict[str, Any],
    workdir: Path,
    repeat: int,
    *,
    per_side: dict[str, dict[str, Any]] | None = None,
    timeout: float = 600,
) -> Results:
    """Every side ``repeat`` times, interleaved (A, B, C, A, B, C, ...)."""
    results = Results()
    for rep in range(repeat):
        for side in sides:
            if side.python is None or side.name in results.errors:
                continue
            side_spec = {**spec, **(per_side or {}).get(side.name, {}), "side": side.name}
            try:
                result = run_side(side, side_spec, workdir, timeout)
            except (RuntimeError, subprocess.TimeoutExpired) as exc:
                results.errors[side.name] = str(exc)
                log(f"  {spec['section']} / {side.name}: FAILED: {exc}")
                continue
            if "skipped" in result:
                results.errors[side.name] = f"skipped: {result['skipped']}"
                log(f"  {spec['section']} / {side.name}: skipped ({result['skipped']})")
                continue
            results.runs.setdefault(side.name, []).append(result)
            log(
                f"  {spec['section']} / {side.name} rep {rep + 1}: "
                f"{result.get('seconds', 0):.3f} s, {result['peak_rss_mib']:.0f} MiB"
            )
    return results


# ---- official package ----------------------------------------------------------------------


def official_python(workdir: Path, given: str | None) -> str | None:
    """The official package's interpreter: ``given`` / ELLUMINATE_OFFICIAL_PYTHON, or a
    virtualenv created under ``workdir`` (None if it cannot be had)."""
    given = given or os.environ.get("ELLUMINATE_OFFICIAL_PYTHON")
    if given:
        return given
    venv = workdir / "official-venv"
    log(f"creating a virtualenv with elluminate=={OFFICIAL_VERSION} (set "
        "ELLUMINATE_OFFICIAL_PYTHON to reuse one) ...")  # fmt: skip
    base = getattr(sys, "_base_executable", sys.executable)
    try:
        subprocess.run([base, "-m", "venv", str(venv)], check=True, capture_output=True)
        python = venv / "bin" / "python"
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", f"elluminate=={OFFICIAL_VERSION}"],
            check=True,
            capture_output=True,
            cwd=workdir,
        )
    except subprocess.CalledProcessError as exc:
        log(f"could not install the official package: {(exc.stderr or b'')[-500:]!r}")
        return None
    return str(python)


# ---- reporting --------------------------------------------------------------------------------


def machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{os.cpu_count()} CPUs ({model}), Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}"
    )


def fmt_seconds(value: float | None, unit: str = "s") -> str:
    if value is None:
        return "n/a"
    if unit == "us":
        return f"{value * 1e6:,.0f} us"
    if unit == "ms":
        return f"{value * 1e3:,.1f} ms"
    return f"{value:.3f} s" if value < 10 else f"{value:.2f} s"


def fmt_ratio(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}x"


def ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b == 0 else a / b


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A Markdown table, padded so that it also reads well in a terminal."""
    widths = [max(len(str(c)) for c in col) for col in zip(headers, *rows, strict=False)]
    line = "| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |"
    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    body = [
        "| " + " | ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)) + " |"
        for row in rows
    ]
    return "\n".join([line, sep, *body])


@dataclass
class Target:
    """One target of the issue: ``value`` compared with ``limit`` (``<=`` or ``>=``)."""

    name: str
    value: float | None
    limit: float
    op: str
    unit: str = "x"

    @property
    def status(self) -> str:
        if self.value is None:
            return "not measured"
        ok = self.value <= self.limit if self.op == "<=" else self.value >= self.limit
        return "met" if ok else "MISSED"

    def row(self) -> list[str]:
        shown = "n/a" if self.value is None else f"{self.value:.2f}{self.unit}"
        return [self.name, shown, f"{self.op} {self.limit:.3g}{self.unit}", self.status]
