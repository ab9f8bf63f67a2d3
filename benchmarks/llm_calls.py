"""LLM calls of the server, side by side in one run: the call cache, adaptive concurrency
against a rate-limited endpoint, LLM calls per rated response, and the read paths.

    python benchmarks/llm_calls.py                       # everything (a few minutes)
    python benchmarks/llm_calls.py --quick               # small sizes
    python benchmarks/llm_calls.py --sections cache limit --rate 100

Every server is ``python -m elluminate.server`` in its own process on a new SQLite file. The
LLM is a fake OpenAI-compatible endpoint served by this process (``--llm openai`` pointed at
it), which counts every request it gets: that count is the number of provider calls.

* **cache**: an experiment (``--rows`` rows x 3 criteria) on a server with ``--llm-cache``,
  then an identical one under a new name: provider calls of each (the re-run's must be 0).
* **calls**: provider calls per rated response for each rating mode (no cache): an experiment
  run, and a rating batch over its responses.
* **limit**: the fake endpoint allows ``--rate`` requests per second (a token bucket with a
  tenth of a second of burst) and answers ``429`` with ``Retry-After`` and ``retry-after-ms``
  beyond it; a ``--limit-rows``-row experiment with one criterion at ``--max-concurrency 64``
  on the code before this change (``--baseline``, a git worktree: a fixed 64 calls in flight,
  the provider retrying 429s itself) and on this tree (adaptive). Failed responses and
  ratings, wasted calls (429 answers), and throughput (successful calls per second of the
  run) against ``--rate``.
* **list**: ``GET .../experiments`` (20 experiments of 10 rows x 3 criteria) and ``GET
  .../prompt_templates``: 3,000 requests from 50 concurrent connections, on the baseline and
  on this tree, repetitions interleaved; the echo provider makes the data.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiohttp
from _harness import TreeServer, free_port
from aiohttp import web

ROOT = Path(__file__).resolve().parents[1]
KEY = "bench-key-0123456789"
P = "/api/v0/projects/1"
CRITERIA = ["Is it relevant?", "Is it clear?", "Is it short?"]
BASELINE = "875b762"  # the commit this work started from


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ---- the fake OpenAI-compatible endpoint ------------------------------------------------------


class FakeOpenAI:
    """Chat completions at ``latency`` seconds each; at most ``rate`` per second (None: no
    limit), a 429 with ``Retry-After`` beyond. Counts what it answers."""

    def __init__(self, *, rate: float | None = None, latency: float = 0.01) -> None:
        self.rate = rate
        self.latency = latency
        self.burst = 1.0 if rate is None else max(1.0, rate / 10)
        self.tokens = self.burst
        self.refilled = time.monotonic()
        self.reset()

    def reset(self) -> None:
        self.ok = self.limited = 0
        self.generations = self.judgements = 0
        self.first: float | None = None
        self.last: float | None = None

    def _take(self) -> float:
        """0.0 if the call may go now, else the seconds until it may."""
        if self.rate is None:
            return 0.0
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.refilled) * self.rate)
        self.refilled = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        wait = self._take()
        if wait > 0:
            self.limited += 1
            return web.json_response(
                {"error": {"message": "Rate limit reached", "type": "requests"}},
                status=429,
                headers={
                    "Retry-After": str(math.ceil(wait)),
                    "retry-after-ms": f"{wait * 1000:.0f}",
                },
            )
        await asyncio.sleep(self.latency)
        now = time.monotonic()
        self.first = now if self.first is None else self.first
        self.last = now
        self.ok += 1
        if body.get("response_format"):
            self.judgements += 1
            schema = body["response_format"]["json_schema"]["schema"]
            answer: dict[str, str] = {"rating": "yes"}
            if "reasoning" in schema.get("properties", {}):
                answer = {"reasoning": "It is.", "rating": "yes"}
            text = json.dumps(answer)
        else:
            self.generations += 1
            text = "An answer of a few words."
        return web.json_response(
            {
                "model": body.get("model", "fake"),
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text}}],
                "usage": {"prompt_tokens": 20, "completion_tokens": 6},
            }
        )

    @contextlib.asynccontextmanager
    async def serve(self) -> Any:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self.handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        port = free_port()
        site = web.TCPSite(runner, "127.0.0.1", port)
        await site.start()
        try:
            yield f"http://127.0.0.1:{port}/v1"
        finally:
            await runner.cleanup()


# ---- servers -----------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def running(tree: Path, workdir: Path, *options: str) -> Any:
    server = TreeServer(tree, KEY, *options, log_dir=workdir)
    try:
        await server.ready()
        connector = aiohttp.TCPConnector(limit=100)
        async with aiohttp.ClientSession(
            base_url=server.url, connector=connector, headers={"X-API-Key": KEY}
        ) as session:
            yield Api(session)
    finally:
        server.stop()


class Api:
    def __init__(self, session: aiohttp.ClientSession) -> None:
        self.session = session

    async def call(self, method: str, path: str, body: Any = None) -> Any:
        async with self.session.request(method, path, json=body) as resp:
            text = await resp.text()
            if resp.status >= 300:
                raise RuntimeError(f"{method} {path} -> {resp.status}: {text[:300]}")
            return json.loads(text) if text else None

    async def setup(self, rows: int, tag: str, criteria: Sequence[str]) -> tuple[int, int, int]:
        template = await self.call("POST", f"{P}/prompt_templates", {
            "name": f"T {tag}", "messages": [{"role": "user", "content": "Explain {{topic}}"}]})
        collection = await self.call("POST", f"{P}/collections", {
            "name": f"C {tag}", "variables": [{"topic": f"topic {i}"} for i in range(rows)]})
        cset = await self.call("POST", f"{P}/criterion_sets", {
            "name": f"S {tag}", "criteria": [{"criterion_str": c} for c in criteria]})
        return template["id"], collection["id"], cset["id"]

    async def experiment(
        self, name: str, ids: tuple[int, int, int], *, mode: str = "detailed"
    ) -> dict[str, Any]:
        """Create and run an experiment to its end; the experiment with its results."""
        body = {"name": name, "description": "", "prompt_template_id": ids[0],
                "collection_id": ids[1], "criterion_set_id": ids[2], "llm_config_id": None,
                "generate": True, "rating_mode": mode, "n_epochs": 1,
                "generation_params": None, "rating_version": None, "response_column_id": None,
                "evaluation_mode": "STANDARD", "agent_config": None,
                "evaluation_agent_config": None, "persona_group_id": None,
                "scenario_set_id": None}
        created = await self.call("POST", f"{P}/experiments", body)
        while True:
            got = await self.call("GET", f"{P}/experiments/{created['id']}")
            if not got["generation_task_id"]:
                return got  # type: ignore[no-any-return]
            await asyncio.sleep(0.05)

    async def response_ids(self, experiment_id: int) -> list[int]:
        ids: list[int] = []
        page = 1
        while True:
            path = f"{P}/responses?experiment_id={experiment_id}&page={page}"
            body = await self.call("GET", path)
            ids += [r["id"] for r in body["items"]]
            if len(ids) >= body["count"] or not body["items"]:
                return ids
            page += 1

    async def rate(self, response_ids: list[int], mode: str) -> None:
        task = await self.call("POST", f"{P}/ratings/batches",
                               {"prompt_response_ids": response_ids, "rating_mode": mode})
        while True:
            status = await self.call("GET", f"{P}/ratings/batches/{task}?connection_uuid=b")
            if status["status"] not in ("PENDING", "STARTED"):
                return
            await asyncio.sleep(0.05)


def openai_options(url: str, *extra: str) -> list[str]:
    return ["--llm", "openai", "--llm-base-url", url, "--llm-model", "fake", *extra]


def table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    line = "| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |"
    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    body = ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |"
            for r in rows]
    return "\n".join([line, rule, *body])


# ---- sections ---------------------------------------------------------------------------------


async def cache_section(args: argparse.Namespace, workdir: Path) -> str:
    fake = FakeOpenAI()
    async with fake.serve() as url, running(
        ROOT, workdir, *openai_options(url, "--llm-cache")
    ) as api:
        ids = await api.setup(args.rows, "cache", CRITERIA)
        rows = []
        for name in ("first run", "identical re-run (new name)"):
            fake.reset()
            start = time.perf_counter()
            exp = await api.experiment(name, ids)
            took = time.perf_counter() - start
            results = exp["results"]
            rows.append([name, str(fake.ok + fake.limited), str(fake.generations),
                         str(fake.judgements), str(results["num_cached_responses"]),
                         str(results["num_cached_ratings"]), f"{took:.2f} s"])
    return (f"LLM call cache: {args.rows} rows x {len(CRITERIA)} criteria, --llm-cache\n\n"
            + table(["run", "provider calls", "generations", "judge calls", "cached responses",
                     "cached ratings", "wall time"], rows))


async def calls_section(args: argparse.Namespace, workdir: Path) -> str:
    fake = FakeOpenAI()
    rows = []
    async with fake.serve() as url, running(ROOT, workdir, *openai_options(url)) as api:
        for mode in ("detailed", "fast"):
            ids = await api.setup(args.rows, f"calls {mode}", CRITERIA)
            fake.reset()
            exp = await api.experiment(f"calls {mode}", ids, mode=mode)
            rated = exp["results"]["num_rated_responses"]
            run_calls = fake.ok
            response_ids = await api.response_ids(exp["id"])
            fake.reset()
            await api.rate(response_ids, mode)
            rows.append([mode, f"{run_calls / rated:.2f}", f"1 + {len(CRITERIA)}",
                         f"{fake.ok / len(response_ids):.2f}", str(len(CRITERIA))])
    return (f"LLM calls per rated response ({args.rows} rows x {len(CRITERIA)} criteria, "
            "no cache, every answer well-formed)\n\n"
            + table(["rating mode", "experiment run", "needed", "rating batch", "needed"], rows))


async def limit_run(tree: Path, args: argparse.Namespace, workdir: Path) -> dict[str, float]:
    fake = FakeOpenAI(rate=args.rate, latency=args.latency)
    async with fake.serve() as url, running(
        tree, workdir, *openai_options(url, "--max-concurrency", "64")
    ) as api:
        ids = await api.setup(args.limit_rows, "limit", CRITERIA[:1])
        await asyncio.sleep(0.5)  # a full bucket to start with
        fake.reset()
        start = time.perf_counter()
        exp = await api.experiment("limit", ids)
        took = time.perf_counter() - start
        results = exp["results"] or {}
        responses = args.limit_rows
        failed_responses = int(results.get("num_failed_responses", responses))
        rated = int(results.get("num_rated_responses", 0))
        return {
            "failed responses": failed_responses,
            "failed ratings": responses - failed_responses - rated,
            "calls": fake.ok + fake.limited,
            "wasted": fake.limited,
            "ok": fake.ok,
            "seconds": took,
            "throughput": fake.ok / took,
        }


async def limit_section(args: argparse.Namespace, workdir: Path, baseline: Path | None) -> str:
    sides: list[tuple[str, Path]] = []
    if baseline is not None:
        sides.append((f"fixed 64 ({args.baseline}, before)", baseline))
    sides.append(("adaptive, up to 64 (this tree)", ROOT))
    rows = []
    for label, tree in sides:
        log(f"limit: {label}")
        got = await limit_run(tree, args, workdir)
        wasted = f"{got['wasted']:.0f} ({got['wasted'] / got['calls']:.0%})"
        rows.append([label, f"{got['failed responses']:.0f}", f"{got['failed ratings']:.0f}",
                     f"{got['calls']:.0f}", wasted,
                     f"{got['seconds']:.1f} s", f"{got['throughput']:.1f}/s",
                     f"{got['throughput'] / args.rate:.2f}"])
    return (f"Rate-limited endpoint: R = {args.rate:g} requests/s, {args.latency * 1000:g} ms "
            f"per call; {args.limit_rows} rows x 1 criterion (2 calls per row), "
            "--max-concurrency 64\n\n"
            + table(["side", "failed responses", "failed ratings", "provider calls",
                     "wasted (429)", "wall time", "throughput", "throughput / R"], rows))


async def list_rate(api: Api, path: str, requests: int, clients: int) -> float:
    left = requests

    async def client() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            async with api.session.get(path) as resp:
                await resp.read()
                assert resp.status == 200, resp.status

    start = time.perf_counter()
    await asyncio.gather(*[client() for _ in range(clients)])
    return requests / (time.perf_counter() - start)


async def list_section(args: argparse.Namespace, workdir: Path, baseline: Path | None) -> str:
    sides: list[tuple[str, Path]] = []
    if baseline is not None:
        sides.append((f"before ({args.baseline})", baseline))
    sides.append(("after (this tree)", ROOT))
    async with contextlib.AsyncExitStack() as stack:
        apis: list[tuple[str, Api, int]] = []
        for label, tree in sides:
            api = await stack.enter_async_context(running(tree, workdir, "--llm", "echo"))
            ids = await api.setup(10, "list", CRITERIA)
            for i in range(args.list_experiments):
                await api.experiment(f"list {i}", ids)
            apis.append((label, api, ids[1]))
        figures: dict[tuple[str, str], list[float]] = {}
        for _ in range(args.repeat):  # interleaved: before, after, before, after ...
            for label, api, collection_id in apis:
                for what, path in (
                    ("experiments", f"{P}/experiments?collection_id={collection_id}"),
                    ("prompt templates", f"{P}/prompt_templates"),
                ):
                    rate = await list_rate(api, path, args.list_requests, 50)
                    figures.setdefault((label, what), []).append(rate)
    rows = []
    for label, _ in sides:
        experiments = statistics.median(figures[(label, "experiments")])
        templates = statistics.median(figures[(label, "prompt templates")])
        rows.append([label, f"{experiments:,.0f}", f"{templates:,.0f}",
                     f"{templates / experiments:.2f}x"])
    return (f"List endpoints: {args.list_requests:,} GETs from 50 concurrent connections, "
            f"median of {args.repeat}; {args.list_experiments} experiments of 10 rows x 3 "
            "criteria in the list\n\n"
            + table(["side", "list experiments req/s", "list prompt templates req/s",
                     "templates / experiments"], rows))


def baseline_tree(revision: str, workdir: Path) -> Path:
    tree = workdir / f"tree-{revision}"
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree), revision],
                   check=True, capture_output=True)
    return tree


def remove_tree(tree: Path) -> None:
    subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)],
                   capture_output=True)


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sections", nargs="+", default=["cache", "calls", "limit", "list"],
                        choices=["cache", "calls", "limit", "list"])
    parser.add_argument("--baseline", default=BASELINE,
                        help="git revision of the 'before' side (empty: leave it out)")
    parser.add_argument("--rows", type=int, default=100)
    parser.add_argument("--rate", type=float, default=100.0, help="R, requests per second")
    parser.add_argument("--latency", type=float, default=0.05, help="seconds per fake call")
    parser.add_argument("--limit-rows", type=int, default=500)
    parser.add_argument("--list-experiments", type=int, default=20)
    parser.add_argument("--list-requests", type=int, default=3000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="small sizes, one repetition")
    args = parser.parse_args()
    if args.quick:
        args.rows, args.limit_rows, args.list_requests, args.repeat = 20, 100, 300, 1
    with tempfile.TemporaryDirectory(prefix="ellu-llm-bench-") as tmp:
        workdir = Path(tmp)
        baseline = None
        needs_baseline = {"limit", "list"} & set(args.sections)
        if args.baseline and needs_baseline:
            baseline = baseline_tree(args.baseline, workdir)
        try:
            out: list[str] = []
            for section in args.sections:
                log(f"section {section} ...")
                if section == "cache":
                    out.append(await cache_section(args, workdir))
                elif section == "calls":
                    out.append(await calls_section(args, workdir))
                elif section == "limit":
                    out.append(await limit_section(args, workdir, baseline))
                else:
                    out.append(await list_section(args, workdir, baseline))
                print("\n" + out[-1] + "\n", flush=True)
        finally:
            if baseline is not None:
                remove_tree(baseline)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
