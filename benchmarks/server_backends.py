"""Server throughput on each backend, side by side in one run: SQLite before the storage
redesign (a git revision), SQLite now, PostgreSQL with one replica and with three.

    python benchmarks/server_backends.py --postgres postgresql://USER@HOST:PORT/postgres
    python benchmarks/server_backends.py --baseline 58c6d3b --repeat 3 --quick

Figures (the same as BENCHMARKS.md section 6, echo provider at zero latency, load from bare
aiohttp in this process, servers in their own processes):

* experiments/s: ``--experiments`` experiments of 10 rows x 3 criteria created at once with
  ``generate=true``, until every task has ended;
* ratings/s: one rating batch over ``--batch`` responses x 3 criteria;
* list req/s: 3,000 GETs of ``.../experiments`` and of ``.../prompt_templates`` from 50
  concurrent connections (spread round-robin over the replicas).

Scale-out: the echo provider at 0.2 s per call with ``--max-concurrency`` as the bottleneck:
one large experiment (``--large-rows`` rows x 2 criteria) on one replica with a limit of L, and
on three replicas sharing a limit of 3 L; the ratio of their wall times.

``--postgres`` (or ``ELLUMINATE_TEST_POSTGRES_URL``) names a server whose user may create
databases; a new database is made for every measurement and dropped after it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiohttp
from _harness import TreeServer

ROOT = Path(__file__).resolve().parents[1]
KEY = "bench-key-0123456789"
P = "/api/v0/projects/1"
CRITERIA = ["Is it relevant?", "Is it clear?", "Is it short?"]


def server(tree: Path, db: str, *, latency: float = 0.0, limit: int | None = None,
           log_dir: Path) -> TreeServer:
    """One started server process of a code tree on a database (echo provider)."""
    options = ["--llm", "echo"]
    if latency:
        options += ["--echo-latency", str(latency)]
    if limit is not None:
        options += ["--max-concurrency", str(limit)]
    started = TreeServer(tree, KEY, *options, log_dir=log_dir, db=db)
    started.wait_ready()
    return started


async def admin(server_url: str, sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(server_url)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


class Backend:
    """How to make a fresh database of one kind, and the code tree that serves it."""

    def __init__(self, label: str, tree: Path, postgres: str | None, replicas: int) -> None:
        self.label, self.tree, self.postgres, self.replicas = label, tree, postgres, replicas
        self._made: list[str] = []

    async def database(self, workdir: Path) -> str:
        if self.postgres is None:
            return str(workdir / f"bench-{uuid.uuid4().hex[:8]}.db")
        name = f"ellu_bench_{uuid.uuid4().hex[:10]}"
        await admin(self.postgres, f'CREATE DATABASE "{name}"')
        self._made.append(name)
        return self.postgres.rsplit("/", 1)[0] + f"/{name}"

    async def cleanup(self) -> None:
        for name in self._made:
            await admin(self.postgres or "", f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self._made.clear()

    async def start(self, workdir: Path, **options: Any) -> list[TreeServer]:
        db = await self.database(workdir)
        servers = [server(self.tree, db, log_dir=workdir, **options)]
        for _ in range(self.replicas - 1):  # the first one migrated the schema
            servers.append(server(self.tree, db, log_dir=workdir, **options))
        return servers


class Api:
    """Requests to the servers, spread round-robin."""

    def __init__(self, session: aiohttp.ClientSession, servers: Sequence[TreeServer]) -> None:
        self.session, self.urls, self.turn = session, [s.url for s in servers], 0

    def url(self, path: str) -> str:
        self.turn += 1
        return self.urls[self.turn % len(self.urls)] + path

    async def call(self, method: str, path: str, body: Any = None) -> Any:
        async with self.session.request(method, self.url(path), json=body) as resp:
            text = await resp.text()
            if resp.status >= 300:
                raise RuntimeError(f"{method} {path} -> {resp.status}: {text[:300]}")
            return await resp.json() if text else None


async def setup(
    api: Api, rows: int, tag: str, criteria: Sequence[str] = CRITERIA
) -> tuple[int, int, int]:
    template = await api.call("POST", f"{P}/prompt_templates", {
        "name": f"T {tag}", "messages": [{"role": "user", "content": "Explain {{topic}}"}]})
    collection = await api.call("POST", f"{P}/collections", {
        "name": f"C {tag}", "variables": [{"topic": f"topic {i}"} for i in range(rows)]})
    cset = await api.call("POST", f"{P}/criterion_sets", {
        "name": f"S {tag}", "criteria": [{"criterion_str": c} for c in criteria]})
    return template["id"], collection["id"], cset["id"]


def experiment_body(name: str, ids: tuple[int, int, int], generate: bool) -> dict[str, Any]:
    return {"name": name, "description": "", "prompt_template_id": ids[0],
            "collection_id": ids[1], "criterion_set_id": ids[2], "llm_config_id": None,
            "generate": generate, "rating_mode": "detailed", "n_epochs": 1,
            "generation_params": None, "rating_version": None, "response_column_id": None,
            "evaluation_mode": "STANDARD", "agent_config": None, "evaluation_agent_config": None,
            "persona_group_id": None, "scenario_set_id": None}


async def wait_experiments(api: Api, ids: Sequence[int]) -> None:
    pending = set(ids)
    while pending:
        for experiment_id in list(pending):
            got = await api.call("GET", f"{P}/experiments/{experiment_id}")
            if not got["generation_task_id"]:
                pending.discard(experiment_id)
        if pending:
            await asyncio.sleep(0.02)


async def experiments_per_second(api: Api, n: int, tag: str) -> float:
    ids = await setup(api, 10, f"tp {tag}")
    start = time.perf_counter()
    created = await asyncio.gather(*[
        api.call("POST", f"{P}/experiments", experiment_body(f"tp {tag} {i}", ids, True))
        for i in range(n)])
    await wait_experiments(api, [e["id"] for e in created])
    return n / (time.perf_counter() - start)


async def ratings_per_second(api: Api, responses: int, tag: str) -> float:
    ids = await setup(api, responses, f"rb {tag}")
    exp = await api.call("POST", f"{P}/experiments", experiment_body(f"rb {tag}", ids, True))
    await wait_experiments(api, [exp["id"]])
    response_ids: list[int] = []
    page = 1
    while True:
        body = await api.call("GET", f"{P}/responses?experiment_id={exp['id']}&page={page}")
        response_ids += [r["id"] for r in body["items"]]
        if len(response_ids) >= body["count"] or not body["items"]:
            break
        page += 1
    start = time.perf_counter()
    task = await api.call("POST", f"{P}/ratings/batches",
                          {"prompt_response_ids": response_ids, "rating_mode": "detailed"})
    while True:
        status = await api.call("GET", f"{P}/ratings/batches/{task}?connection_uuid=bench")
        if status["status"] not in ("PENDING", "STARTED"):
            break
        await asyncio.sleep(0.01)
    return len(response_ids) * len(CRITERIA) / (time.perf_counter() - start)


async def list_per_second(api: Api, path: str, requests: int = 3000, clients: int = 50) -> float:
    left = requests

    async def client() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            async with api.session.get(api.url(path)) as resp:
                await resp.read()
                assert resp.status == 200, resp.status

    start = time.perf_counter()
    await asyncio.gather(*[client() for _ in range(clients)])
    return requests / (time.perf_counter() - start)


async def throughput(backend: Backend, args: argparse.Namespace, workdir: Path) -> dict[str, float]:
    servers = await backend.start(workdir)
    try:
        connector = aiohttp.TCPConnector(limit=100)
        async with aiohttp.ClientSession(connector=connector, headers={"X-API-Key": KEY}) as s:
            api = Api(s, servers)
            tag = uuid.uuid4().hex[:6]
            figures = {
                "experiments/s": await experiments_per_second(api, args.experiments, tag),
                "ratings/s": await ratings_per_second(api, args.batch, tag),
            }
            figures["list experiments req/s"] = await list_per_second(api, f"{P}/experiments")
            figures["list prompt templates req/s"] = await list_per_second(
                api, f"{P}/prompt_templates")
            return figures
    finally:
        for started in servers:
            started.stop()
        await backend.cleanup()


async def large_experiment(backend: Backend, args: argparse.Namespace, workdir: Path) -> float:
    limit = args.limit * backend.replicas
    servers = await backend.start(workdir, latency=0.2, limit=limit)
    try:
        async with aiohttp.ClientSession(headers={"X-API-Key": KEY}) as s:
            api = Api(s, servers)
            ids = await setup(api, args.large_rows, "large", CRITERIA[:2])
            start = time.perf_counter()
            exp = await api.call("POST", f"{P}/experiments", experiment_body("large", ids, True))
            await wait_experiments(api, [exp["id"]])
            return time.perf_counter() - start
    finally:
        for started in servers:
            started.stop()
        await backend.cleanup()


def baseline_tree(revision: str, workdir: Path) -> Path:
    tree = workdir / f"tree-{revision}"
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree), revision],
                   check=True, capture_output=True)
    return tree


def remove_trees(trees: Sequence[Path]) -> None:
    for tree in trees:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)],
                       capture_output=True)


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", default=os.environ.get("ELLUMINATE_TEST_POSTGRES_URL"))
    parser.add_argument("--baseline", default="58c6d3b",
                        help="the git revision measured as 'SQLite before' (empty: skip it)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--experiments", type=int, default=50)
    parser.add_argument("--batch", type=int, default=2000)
    parser.add_argument("--large-rows", type=int, default=400)
    parser.add_argument("--limit", type=int, default=16, help="L of the scale-out figure")
    parser.add_argument("--quick", action="store_true", help="small sizes, one repetition")
    args = parser.parse_args()
    if args.quick:
        args.repeat, args.experiments, args.batch, args.large_rows = 1, 10, 200, 60
    workdir = Path(tempfile.mkdtemp(prefix="elluminate-bench-"))
    trees: list[Path] = []
    try:
        backends: list[Backend] = []
        if args.baseline:
            trees.append(baseline_tree(args.baseline, workdir))
            backends.append(Backend(f"SQLite, before ({args.baseline})", trees[-1], None, 1))
        backends.append(Backend("SQLite, now", ROOT, None, 1))
        if args.postgres:
            backends.append(Backend("PostgreSQL, 1 replica", ROOT, args.postgres, 1))
            backends.append(Backend("PostgreSQL, 3 replicas", ROOT, args.postgres, 3))
        else:
            print("(no --postgres: the PostgreSQL figures are left out)", file=sys.stderr)
        results: dict[str, dict[str, list[float]]] = {b.label: {} for b in backends}
        for _ in range(args.repeat):  # interleaved repetitions
            for backend in backends:
                for name, value in (await throughput(backend, args, workdir)).items():
                    results[backend.label].setdefault(name, []).append(value)
        names = list(next(iter(results.values())).keys())
        print(f"### Server throughput by backend (median of {args.repeat}; echo, no latency)\n")
        print("| figure | " + " | ".join(b.label for b in backends) + " |")
        print("|---|" + "---|" * len(backends))
        for name in names:
            cells = [f"{statistics.median(results[b.label][name]):,.0f}" for b in backends]
            print(f"| {name} | " + " | ".join(cells) + " |")
        now_label = "SQLite, now"
        if args.baseline:
            before = backends[0].label
            print("\n| figure | SQLite now / before |\n|---|---|")
            for name in names:
                ratio = (statistics.median(results[now_label][name])
                         / statistics.median(results[before][name]))
                print(f"| {name} | {ratio:.2f}x |")
        if args.postgres:
            one, three = backends[-2], backends[-1]
            times = {one.label: [], three.label: []}
            for _ in range(args.repeat):
                for backend in (one, three):
                    times[backend.label].append(await large_experiment(backend, args, workdir))
            t1, t3 = statistics.median(times[one.label]), statistics.median(times[three.label])
            print(f"\n### Scale-out: one experiment of {args.large_rows} rows x 2 criteria, "
                  f"echo at 0.2 s per call\n")
            print("| replicas | --max-concurrency (across replicas) | wall time | speed-up |")
            print("|---|---|---|---|")
            print(f"| 1 | {args.limit} | {t1:.2f} s | 1.00x |")
            print(f"| 3 | {args.limit * 3} | {t3:.2f} s | {t1 / t3:.2f}x |")
        return 0
    finally:
        remove_trees(trees)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
