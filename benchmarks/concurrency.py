"""Concurrency headline: N experiments x 5 cases, sequential sync vs asyncio.gather async.

    python benchmarks/concurrency.py [--n 3 10] [--latency 0.2] [--repeat 3]

Runs the local server (echo provider with a fixed latency per LLM call) and measures, in one
run and side by side, the wall time of N ``Client.run_experiment`` calls one after another and
of N ``AsyncClient.run_experiment`` calls under ``asyncio.gather``. Prints the medians and the
speed-up ratio (sequential / gathered); the ideal is N.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from elluminate import AsyncClient, Client
from elluminate.server import LocalServer

CASES = [{"topic": f"topic {i}"} for i in range(5)]
CRITERIA = ["Is it relevant?", "Is it clear?"]


def setup(client: Client, tag: str) -> tuple[object, object, object]:
    template = client.create_prompt_template(name=f"T {tag}", template="Explain {{topic}}.")
    collection = client.create_collection(name=f"C {tag}", variables=CASES)
    criterion_set = client.create_criterion_set(name=f"S {tag}", criteria=CRITERIA)
    return template, collection, criterion_set


def run_sequential(server: LocalServer, n: int, tag: str) -> float:
    with Client(base_url=server.base_url, api_key=server.api_key) as client:
        template, collection, criterion_set = setup(client, tag)
        start = time.perf_counter()
        for i in range(n):
            client.run_experiment(
                name=f"seq {tag} {i}",
                prompt_template=template,
                collection=collection,
                criterion_set=criterion_set,
            )
        return time.perf_counter() - start


async def run_gathered(server: LocalServer, n: int, tag: str) -> float:
    with Client(base_url=server.base_url, api_key=server.api_key) as sync_client:
        template, collection, criterion_set = setup(sync_client, tag)
    async with AsyncClient(base_url=server.base_url, api_key=server.api_key) as client:
        start = time.perf_counter()
        await asyncio.gather(
            *[
                client.run_experiment(
                    name=f"async {tag} {i}",
                    prompt_template=template,
                    collection=collection,
                    criterion_set=criterion_set,
                )
                for i in range(n)
            ]
        )
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, nargs="+", default=[3, 10])
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory() as tmp,
        LocalServer(
            db_path=Path(tmp) / "bench.db", llm="echo", echo_latency=args.latency
        ) as server,
    ):
        print(
            f"echo latency {args.latency} s per LLM call, {len(CASES)} cases x "
            f"{len(CRITERIA)} criteria per experiment, median of {args.repeat}"
        )
        print(f"{'N':>4} {'sequential sync':>16} {'gathered async':>15} {'ratio':>7} {'ideal':>6}")
        for n in args.n:
            seq, gat = [], []
            for r in range(args.repeat):
                seq.append(run_sequential(server, n, f"s{n}-{r}"))
                gat.append(asyncio.run(run_gathered(server, n, f"a{n}-{r}")))
            s, g = statistics.median(seq), statistics.median(gat)
            print(f"{n:>4} {s:>15.2f}s {g:>14.2f}s {s / g:>6.2f}x {n:>5}x")


if __name__ == "__main__":
    main()
