"""Server write costs: task log appends at a growing log size, and SQLite durability.

    python benchmarks/server_writes.py [--lines 10000] [--rows 200] [--repeat 3]

1. Log appends: one task's log grows to ``--lines`` lines through the engine's own
   ``TaskContext.log`` (one committed transaction per line, as in a run); prints the cost per line
   for the first and the last thousand lines and their ratio (1.0 = constant per line).
2. Durability: the same experiment (``--rows`` rows x 3 criteria, echo at zero latency) run
   in-process with ``--durability normal`` and ``full``, interleaved, median of ``--repeat``;
   prints wall time, commits per second, and the ratio full / normal.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from elluminate.server import ServerConfig, create_app
from elluminate.server.api.http import DB_KEY, ENGINE_KEY
from elluminate.server.engine import task_context

LINE = "response 12345: rating for criterion 67 failed: provider answered 503 (retrying)"


async def log_append_costs(lines: int, folder: Path) -> tuple[float, float, float]:
    """(seconds per line for the first 1,000, for the last 1,000, total seconds)."""
    from aiohttp.test_utils import TestClient, TestServer

    task_context.MAX_LOG_CHARS = max(task_context.MAX_LOG_CHARS, 64 * 1024 * 1024)
    app = create_app(ServerConfig(db_path=folder / "logs.db", api_key="bench-key", llm="echo"))
    async with TestClient(TestServer(app)) as client:
        engine = client.app[ENGINE_KEY]
        running: list[Any] = []
        started, release = asyncio.Event(), asyncio.Event()

        async def idle(ctx: Any) -> None:
            running.append(ctx)
            started.set()
            await release.wait()

        engine.register("idle", idle)
        async with client.app[DB_KEY].begin() as conn:
            await engine.submit(conn, "idle", 1, None, None)
        await started.wait()
        [ctx] = running
        chunk = 1000
        marks: list[float] = [time.perf_counter()]
        for i in range(lines):
            await ctx.log(f"{LINE} #{i}")  # the engine's own append: one transaction per line
            if (i + 1) % chunk == 0:
                marks.append(time.perf_counter())
        release.set()
    return (
        (marks[1] - marks[0]) / chunk,
        (marks[-1] - marks[-2]) / chunk,
        marks[-1] - marks[0],
    )


async def run_experiment(durability: str, rows: int, folder: Path) -> tuple[float, int]:
    """(wall seconds of one experiment run, transactions committed during it)."""
    from aiohttp.test_utils import TestClient, TestServer

    path = folder / f"exp-{durability}-{time.monotonic_ns()}.db"
    config = ServerConfig(db_path=path, api_key="bench-key", llm="echo", durability=durability)
    app = create_app(config)
    async with TestClient(TestServer(app), headers={"X-API-Key": "bench-key"}) as client:
        p = "/api/v0/projects/1"

        async def post(path: str, body: Any) -> Any:
            resp = await client.post(p + path, json=body)
            assert resp.status < 300, await resp.text()
            return await resp.json()

        template = await post("/prompt_templates", {
            "name": "T", "messages": [{"role": "user", "content": "Explain {{topic}}"}]})
        collection = await post("/collections", {
            "name": "C", "variables": [{"topic": f"topic {i}"} for i in range(rows)]})
        cset = await post("/criterion_sets", {"name": "S", "criteria": [
            {"criterion_str": c} for c in ("Is it clear?", "Is it short?", "Is it right?")]})
        conn = app[DB_KEY].conn
        commits = 0

        def count(statement: str) -> None:
            nonlocal commits
            if statement == "COMMIT":
                commits += 1

        conn.set_trace_callback(count)
        start = time.perf_counter()
        exp = await post("/experiments", {
            "name": "E", "prompt_template_id": template["id"],
            "collection_id": collection["id"], "criterion_set_id": cset["id"],
            "generate": True})
        while True:
            got = await (await client.get(f"{p}/experiments/{exp['id']}")).json()
            if not got["generation_task_id"]:
                break
            await asyncio.sleep(0.005)
        elapsed = time.perf_counter() - start
        conn.set_trace_callback(None)
    return elapsed, commits


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lines", type=int, default=10_000)
    parser.add_argument("--rows", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--sections", nargs="+", choices=("logs", "durability"), default=["logs", "durability"]
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        if "logs" in args.sections:
            await print_log_costs(args.lines, folder)
        if "durability" in args.sections:
            await print_durability(args.rows, args.repeat, folder)


async def print_log_costs(lines: int, folder: Path) -> None:
    first, last, total = await log_append_costs(lines, folder)
    print(f"### Task log: {lines:,} appended lines (one transaction each)\n")
    print("| lines | per line | last / first |")
    print("|---|---|---|")
    print(f"| first 1,000 | {first * 1e6:.0f} us | |")
    print(f"| last 1,000 | {last * 1e6:.0f} us | {last / first:.2f}x |")
    print(f"| all {lines:,} | {total:.2f} s | |\n")


async def print_durability(rows: int, repeat: int, folder: Path) -> None:
    times: dict[str, list[float]] = {"normal": [], "full": []}
    commits: dict[str, int] = {}
    for _ in range(repeat):
        for durability in ("normal", "full"):
            elapsed, n = await run_experiment(durability, rows, folder)
            times[durability].append(elapsed)
            commits[durability] = n
    print(f"### Durability: one experiment, {rows} rows x 3 criteria, echo provider\n")
    print("| durability | wall time (median) | commits | commits/s | vs normal |")
    print("|---|---|---|---|---|")
    base = statistics.median(times["normal"])
    for durability in ("normal", "full"):
        median = statistics.median(times[durability])
        print(
            f"| {durability} | {median:.3f} s | {commits[durability]} | "
            f"{commits[durability] / median:,.0f} | {median / base:.2f}x |"
        )


if __name__ == "__main__":
    asyncio.run(main())
