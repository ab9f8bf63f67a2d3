"""Server time of the web viewer's experiment page for a large experiment.

    python benchmarks/ui_pages.py [--rows 10000] [--small 100] [--repeat 30]

Builds, in one temporary database, an experiment with ``--rows`` responses (3 criteria, echo
provider at zero latency, run through the API like any experiment) and one with ``--small``
responses, then asks for each page ``--repeat`` times, interleaved, and prints the median
server time (the page's ``Server-Timing`` header: from the request reaching the viewer to
the rendered HTML) and the median wall time seen by the client (loopback HTTP included),
side by side. The page shows the first 50 responses; a ratio near 1.0 between the large and
the small experiment means the page does not load all responses. The API's
``GET .../experiments/{id}`` (the experiment with its results, which the page computes too)
is measured alongside for reference, and so is the results computation alone
(``store.results.compute_results``, called in the server's process), to show what part of
the page's time is the results of all responses and what part is the page itself.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp.test_utils import TestServer

from elluminate.server import ServerConfig, create_app
from elluminate.server.api.http import DB_KEY
from elluminate.server.store import experiments as experiment_store
from elluminate.server.store.results import compute_results

KEY = "bench-key"
P = "/api/v0/projects/1"
CRITERIA = ["Is it clear?", "Is it short?", "Does it avoid ECHO_NO?"]


async def make_experiment(api: aiohttp.ClientSession, base: str, rows: int, tag: str) -> int:
    """An experiment with ``rows`` responses, run to the end; returns its id."""

    async def post(path: str, body: Any) -> Any:
        async with api.post(base + path, json=body) as resp:
            assert resp.status in (200, 201), await resp.text()
            return await resp.json()

    template = await post(
        f"{P}/prompt_templates",
        {"name": f"T {tag}", "messages": [{"role": "user", "content": "Explain {{topic}}"}]},
    )
    values = [{"topic": f"topic {i}" + (" ECHO_NO" if i % 4 == 0 else "")} for i in range(rows)]
    collection = await post(f"{P}/collections", {"name": f"C {tag}", "variables": values})
    cset = await post(
        f"{P}/criterion_sets",
        {"name": f"S {tag}", "criteria": [{"criterion_str": c} for c in CRITERIA]},
    )
    experiment = await post(
        f"{P}/experiments",
        {
            "name": f"E {tag}",
            "prompt_template_id": template["id"],
            "collection_id": collection["id"],
            "criterion_set_id": cset["id"],
            "generate": True,
        },
    )
    task = experiment["generation_task_id"]
    while True:
        status_path = f"{base}{P}/experiments/{experiment['id']}/generation/{task}"
        async with api.get(status_path, params={"connection_uuid": "bench"}) as resp:
            status = (await resp.json())["status"]
        if status not in ("PENDING", "STARTED"):
            assert status == "SUCCESS", status
            return int(experiment["id"])
        await asyncio.sleep(0.2)


async def sign_in(browser: aiohttp.ClientSession, base: str) -> None:
    async with browser.get(base + "/ui/login") as resp:
        token = re.search(r'name="csrf_token" value="([^"]+)"', await resp.text())
    assert token is not None
    form = {"csrf_token": token.group(1), "api_key": KEY, "next": "/ui/"}
    async with browser.post(base + "/ui/login", data=form, allow_redirects=False) as resp:
        assert resp.status == 303, await resp.text()


async def timed(session: aiohttp.ClientSession, url: str) -> tuple[float, float, int]:
    """(server ms from Server-Timing or nan, wall ms, body bytes) of one GET."""
    started = time.perf_counter()
    async with session.get(url) as resp:
        body = await resp.read()
        assert resp.status == 200, body[:300]
        header = resp.headers.get("Server-Timing", "")
    wall = (time.perf_counter() - started) * 1000
    found = re.search(r"dur=([\d.]+)", header)
    return (float(found.group(1)) if found else float("nan")), wall, len(body)


async def main(rows: int, small: int, repeat: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        config = ServerConfig(
            db_path=Path(folder) / "ui.db", api_key=KEY, llm="echo", page_size=100
        )
        server = TestServer(create_app(config))
        await server.start_server()
        base = str(server.make_url("")).rstrip("/")
        jar = aiohttp.CookieJar(unsafe=True)
        async with (
            aiohttp.ClientSession(headers={"X-API-Key": KEY}) as api,
            aiohttp.ClientSession(cookie_jar=jar) as browser,
        ):
            started = time.perf_counter()
            large = await make_experiment(api, base, rows, "large")
            built = time.perf_counter() - started
            little = await make_experiment(api, base, small, "small")
            await sign_in(browser, base)
            cases = [
                (f"viewer page, {rows:,} responses", browser, f"{base}/ui/experiments/{large}"),
                (f"viewer page, {small:,} responses", browser, f"{base}/ui/experiments/{little}"),
                (
                    f"viewer page, {rows:,}, filtered (criterion 3 = NO)",
                    browser,
                    f"{base}/ui/experiments/{large}?criterion=3&verdict=no",
                ),
                (
                    f"viewer page, {rows:,}, last page",
                    browser,
                    f"{base}/ui/experiments/{large}?page={-(-rows // 50)}",
                ),
                (f"API GET experiment, {rows:,}", api, f"{base}{P}/experiments/{large}"),
            ]
            samples: dict[str, list[tuple[float, float, int]]] = {c[0]: [] for c in cases}
            results_name = f"results computation alone, {rows:,}"
            samples[results_name] = []
            db = server.app[DB_KEY]
            async with db.connect() as conn:
                row = await experiment_store.get(conn, 1, large)  # the default project
            for _name, session, url in cases:  # warm-up: templates compiled, caches filled
                await timed(session, url)
            for _ in range(repeat):
                for name, session, url in cases:
                    samples[name].append(await timed(session, url))
                async with db.connect() as conn:
                    started = time.perf_counter()
                    await compute_results(conn, row)
                    elapsed = (time.perf_counter() - started) * 1000
                samples[results_name].append((elapsed, elapsed, 0))
        await server.close()
        cases.append((results_name, api, ""))

    print(f"{rows:,}-response experiment built in {built:.1f} s; median of {repeat}, interleaved")
    print()
    print(f"| {'what':<50} | server ms | wall ms | KiB page |")
    print(f"|{'-' * 52}|-----------|---------|----------|")
    medians: dict[str, tuple[float, float]] = {}
    for name, _, _ in cases:
        server_ms = statistics.median(s[0] for s in samples[name])
        wall_ms = statistics.median(s[1] for s in samples[name])
        size = samples[name][-1][2] / 1024
        medians[name] = (server_ms, wall_ms)
        shown = "-" if server_ms != server_ms else f"{server_ms:.1f}"  # nan: no header
        kib = f"{size:.0f}" if size else "-"
        print(f"| {name:<50} | {shown:>9} | {wall_ms:>7.1f} | {kib:>8} |")
    big, little_ = medians[cases[0][0]], medians[cases[1][0]]
    print()
    print(
        f"ratio {rows:,} / {small:,} responses: server {big[0] / little_[0]:.2f}x, "
        f"wall {big[1] / little_[1]:.2f}x (rows {rows / small:.0f}x)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--small", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    asyncio.run(main(args.rows, args.small, args.repeat))
