"""Concurrent writes through the real server (issue 6, item 3).

50 concurrent ``create_*`` with one name -> exactly one object, 49 ConflictError;
50 concurrent ``get_or_create_*`` -> one object id for all; 20 experiment runs while 20,000
entries are uploaded -> every call succeeds, no ``database is locked`` anywhere.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from elluminate import AsyncClient
from elluminate.exceptions import ConflictError
from elluminate.server import LocalServer

N = 50


@pytest.fixture
async def client(server: LocalServer) -> Any:
    async with AsyncClient(base_url=server.base_url, api_key=server.api_key) as c:
        yield c


async def race(make: Callable[[int], Awaitable[Any]], n: int = N) -> tuple[list[Any], list[Any]]:
    """Run ``make(i)`` n times at once; returns (successes, exceptions)."""
    results = await asyncio.gather(*(make(i) for i in range(n)), return_exceptions=True)
    ok = [r for r in results if not isinstance(r, BaseException)]
    errors = [r for r in results if isinstance(r, BaseException)]
    return ok, errors


def report(what: str, ok: list[Any], errors: list[Any], seconds: float) -> None:
    print(f"\n{what}: {len(ok)} created, {len(errors)} ConflictError, {seconds:.2f} s")


@pytest.mark.parametrize("kind", ["prompt_template", "collection", "criterion_set", "llm_config"])
async def test_50_concurrent_creates_with_one_name_create_exactly_one(
    client: AsyncClient, server: LocalServer, row_counts: Any, kind: str
) -> None:
    calls: dict[str, Callable[[int], Awaitable[Any]]] = {
        "prompt_template": lambda i: client.create_prompt_template(
            name="same", messages=[{"role": "user", "content": "Explain {{topic}}"}]
        ),
        "collection": lambda i: client.create_collection(
            name="same", variables=[{"topic": f"t{i}"}]
        ),
        "criterion_set": lambda i: client.create_criterion_set(
            name="same", criteria=[f"criterion {i}"]
        ),
        "llm_config": lambda i: client.create_llm_config(
            name="same", llm_model_name=f"model-{i}", api_key=f"sk-{i}"
        ),
    }
    table = {"prompt_template": "prompt_templates", "collection": "collections",
             "criterion_set": "criterion_sets", "llm_config": "llm_configs"}[kind]
    before = row_counts(server.db_path)
    start = time.perf_counter()
    ok, errors = await race(calls[kind])
    report(f"create_{kind} x{N}", ok, errors, time.perf_counter() - start)
    assert len(ok) == 1, errors[:3]
    assert len(errors) == N - 1
    assert all(isinstance(e, ConflictError) for e in errors), {type(e) for e in errors}
    assert all(e.status_code == 409 for e in errors)
    assert row_counts(server.db_path)[table] == before[table] + 1
    if kind == "collection":  # the winner's single row went in, the losers' did not
        assert row_counts(server.db_path)["template_variables"] == 1


@pytest.mark.parametrize("kind", ["prompt_template", "collection", "criterion_set", "llm_config"])
async def test_50_concurrent_get_or_create_return_one_object(
    client: AsyncClient, server: LocalServer, kind: str
) -> None:
    calls: dict[str, Callable[[int], Awaitable[Any]]] = {
        "prompt_template": lambda i: client.get_or_create_prompt_template(
            name="shared", messages=[{"role": "user", "content": "Explain {{topic}}"}]
        ),
        "collection": lambda i: client.get_or_create_collection(
            name="shared", defaults={"variables": [{"topic": "x"}]}
        ),
        "criterion_set": lambda i: client.get_or_create_criterion_set(
            name="shared", defaults={"criteria": ["Is it short?"]}
        ),
        "llm_config": lambda i: client.get_or_create_llm_config(
            name="shared", defaults={"llm_model_name": "m", "api_key": "sk-shared"}
        ),
    }
    start = time.perf_counter()
    ok, errors = await race(calls[kind])
    elapsed = time.perf_counter() - start
    assert errors == []
    ids = {obj.id for obj, _ in ok}
    created = [flag for _, flag in ok if flag]
    print(f"\nget_or_create_{kind} x{N}: {len(ids)} id, {len(created)} created, {elapsed:.2f} s")
    assert len(ids) == 1
    assert len(created) == 1


async def test_20_experiments_and_20000_uploaded_entries_at_once(
    client: AsyncClient, server: LocalServer, caplog: pytest.LogCaptureFixture, row_counts: Any
) -> None:
    caplog.set_level(logging.DEBUG, logger="elluminate")
    template = await client.create_prompt_template(name="T", template="Explain {{topic}}")
    rows = await client.create_collection(
        name="rows", variables=[{"topic": f"topic {i}"} for i in range(5)]
    )
    cset = await client.create_criterion_set(name="S", criteria=["Is it short?", "Is it kind?"])
    big = await client.create_collection(name="big")
    chunked = await client.create_collection(name="chunked")

    async def experiment(i: int) -> Any:
        return await client.run_experiment(
            name=f"run-{i}", prompt_template=template, collection=rows, criterion_set=cset,
            rating_version="mock", timeout=120,
        )

    async def upload_one() -> Any:
        return await big.aadd_many([{"topic": f"big {i}", "n": str(i)} for i in range(10_000)])

    async def upload_chunk(k: int) -> Any:
        return await chunked.aadd_many(
            [{"topic": f"chunk {k} row {i}"} for i in range(1_000)]
        )

    start = time.perf_counter()
    results = await asyncio.gather(
        *(experiment(i) for i in range(20)),
        upload_one(),
        *(upload_chunk(k) for k in range(10)),
        return_exceptions=True,
    )
    elapsed = time.perf_counter() - start
    failures = [r for r in results if isinstance(r, BaseException)]
    assert failures == [], failures[:3]
    experiments, uploads = results[:20], results[20:]
    print(f"\n20 experiments + 20,000 entries uploaded concurrently: {elapsed:.2f} s")
    for exp in experiments:
        assert len(exp.rated_responses) == 5
        assert exp.results is not None and exp.results.num_rated_responses == 5
    assert len(uploads[0]) == 10_000
    assert all(len(u) == 1_000 for u in uploads[1:])
    counts = row_counts(server.db_path)
    assert counts["template_variables"] == 5 + 20_000
    assert counts["responses"] == 100
    assert counts["ratings"] == 200
    assert counts["experiments"] == 20
    messages = [r.getMessage() for r in caplog.records]
    assert not [m for m in messages if "locked" in m.lower()]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], [
        r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR
    ]
