"""A/B test two prompt variants concurrently, with live progress, on the local server.

    python examples/ab_test.py              # embedded server + bundled SmolLM2 model (CPU)
    python examples/ab_test.py --llm echo   # deterministic dry run, no model needed
    python examples/ab_test.py --serve      # then keep the server: look at it in the browser

With ELLUMINATE_BASE_URL and ELLUMINATE_API_KEY set, it runs against that server instead.
It ends with the addresses of both experiments and of their comparison in the server's web
viewer (``/ui/``), which a server that keeps running serves.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import sys
import time
from typing import Any

from elluminate import TaskStatus, alocal_client
from elluminate.schemas import Experiment

CRITERIA = [
    "Is the answer helpful?",
    "Is it accurate?",
    "Does it mention the topic by name?",
]
TOPICS = [{"topic": "photosynthesis"}, {"topic": "gravity"}, {"topic": "the internet"}]
VARIANTS = {
    "A (brief)": "Explain {{topic}} briefly, in two sentences.",
    "B (examples)": "Explain {{topic}} with one everyday example, in two sentences.",
}


async def run_variant(client, label, template, collection, criterion_set, progress) -> Experiment:
    """Run one variant as a stream, recording its progress for the status line."""
    async for event in client.stream_experiment(
        name=f"A/B {label} {time.strftime('%H:%M:%S')}",
        prompt_template=template,
        collection=collection,
        criterion_set=criterion_set,
        polling_interval=0.5,
    ):
        if event.progress:
            progress[label] = event.progress.percent_complete
        if event.logs_delta:
            for line in event.logs_delta.strip().splitlines():
                print(f"  [{label}] {line}", file=sys.stderr)
        if event.status == TaskStatus.SUCCESS:
            progress[label] = 100.0
            assert event.result is not None
            return event.result
        if event.is_failure:
            raise RuntimeError(f"variant {label} ended {event.status}: {event.error_msg}")
    raise RuntimeError(f"variant {label}: the stream ended without a result")


async def show_progress(progress: dict[str, float]) -> None:
    while True:
        line = "  ".join(f"{label}: {pct:5.1f}%" for label, pct in progress.items())
        print(f"progress  {line}", file=sys.stderr)
        await asyncio.sleep(2.0)


def print_viewer_links(base_url: str, experiments: list[Experiment]) -> None:
    """The experiments' pages in the server's web viewer."""
    viewer = f"{base_url}/ui"
    print("open the results in the web viewer (sign in with the project's API key):")
    for label, experiment in zip(VARIANTS, experiments, strict=True):
        print(f"  {label:14s} {viewer}/experiments/{experiment.id}")
    a, b = experiments
    print(f"  {'side by side':14s} {viewer}/compare?a={a.id}&b={b.id}")


async def main(llm: str | None, serve: bool) -> None:
    started = time.perf_counter()
    embedded = not os.environ.get("ELLUMINATE_BASE_URL")
    serve_key = "ell_demo_" + secrets.token_urlsafe(16) if serve and embedded else None
    options = {"api_key": serve_key} if serve_key else {}
    async with alocal_client(llm=llm, **options) as client:
        suffix = time.strftime("%Y%m%d-%H%M%S")
        criterion_set = await client.create_criterion_set(name=f"Quality {suffix}")
        await criterion_set.aadd_criteria(CRITERIA)
        collection = await client.create_collection(name=f"Topics {suffix}")
        await collection.aadd_many(variables=TOPICS)
        templates = {
            label: await client.create_prompt_template(
                name=f"Style {label} {suffix}", template=text
            )
            for label, text in VARIANTS.items()
        }
        progress = {label: 0.0 for label in VARIANTS}
        ticker = asyncio.create_task(show_progress(progress))
        try:
            results = await asyncio.gather(
                *[
                    run_variant(client, label, template, collection, criterion_set, progress)
                    for label, template in templates.items()
                ]
            )
        finally:
            ticker.cancel()
        report(criterion_set, results, started)
        print()
        if embedded and not serve:
            print("(the embedded server stops with this script: run it with --serve to keep it")
            print(" and look at the experiments in the web viewer)")
            return
        print_viewer_links(client.base_url, results)
        if serve_key:
            print(f"API key of this server: {serve_key}")
            print("serving until Ctrl-C")
            await asyncio.Event().wait()


def report(criterion_set: Any, results: list[Experiment], started: float) -> None:
    print()
    for label, experiment in zip(VARIANTS, results, strict=True):
        assert experiment.results is not None
        print(f"{label:14s} pass rate {experiment.results.mean_all_ratings.yes:6.1%}")
    print()
    names = {c.id: c.criterion_str for c in criterion_set.criteria or []}
    header = "criterion".ljust(40) + "".join(label.rjust(16) for label in VARIANTS)
    print(header)
    print("-" * len(header))
    for cid, text in names.items():
        cells = []
        for experiment in results:
            assert experiment.results is not None
            mean = experiment.results.mean_rating_by_criterion_id.get(cid)
            cells.append(f"{mean.yes:.1%}".rjust(16) if mean else "-".rjust(16))
        print(text[:39].ljust(40) + "".join(cells))
    print()
    example = results[0].rated_responses[0]
    print(f"example answer of {list(VARIANTS)[0]}: {example.response_str[:200]!r}")
    print(f"done in {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--llm",
        choices=["local", "echo"],
        help="the embedded server's provider (default: local); not for ELLUMINATE_BASE_URL",
    )
    parser.add_argument(
        "--serve",
        action="store_true",
        help="keep the embedded server running after the run (Ctrl-C stops it) and print "
        "where to see the results in the web viewer",
    )
    args = parser.parse_args()
    chosen = args.llm
    if chosen is None and not os.environ.get("ELLUMINATE_BASE_URL"):
        chosen = "local"
    try:
        asyncio.run(main(chosen, args.serve))
    except KeyboardInterrupt:
        print("stopped")
