"""Helpers for the experiment / task / response / rating server tests.

The suite runs with ``--import-mode=importlib`` (no importable helper modules), so the tests
get this module through the ``tasks_helpers`` fixture of ``conftest.py``, which loads it by
path. Every helper takes the ``client`` fixture (an ``Api`` test client).
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from elluminate._sse import SSEParser
from elluminate.schemas import TaskStatus

P = "/api/v0/projects/1"

_counter = itertools.count(1)
TERMINAL = {s.value for s in TaskStatus if s.is_terminal}


def unique(prefix: str) -> str:
    return f"{prefix}-{next(_counter)}"


@dataclass
class Fixture:
    """Ids of a template + collection + criterion set ready for experiments."""

    template_id: int
    collection_id: int
    set_id: int
    row_ids: list[int]
    criterion_ids: list[int]
    rows: list[dict[str, Any]] = field(default_factory=list)
    criteria: list[str] = field(default_factory=list)


async def make_fixture(
    client: Any,
    *,
    rows: Sequence[dict[str, Any]] = ({"topic": "AI"}, {"topic": "cats"}),
    criteria: Sequence[str] = ("Is it clear?", "Is it short?"),
    template: str = "Explain {{topic}}",
    link: bool = True,
) -> Fixture:
    """Create a template, a collection with ``rows`` and a criterion set with ``criteria``."""
    pt = await client.ok(
        "POST",
        f"{P}/prompt_templates",
        json={"name": unique("T"), "messages": [{"role": "user", "content": template}]},
    )
    coll = await client.ok(
        "POST", f"{P}/collections", json={"name": unique("C"), "variables": list(rows)}
    )
    cset = await client.ok(
        "POST",
        f"{P}/criterion_sets",
        json={"name": unique("S"), "criteria": [{"criterion_str": c} for c in criteria]},
    )
    if link:
        await client.ok("PUT", f"{P}/criterion_sets/{cset['id']}/prompt_templates/{pt['id']}")
    return Fixture(
        template_id=pt["id"],
        collection_id=coll["id"],
        set_id=cset["id"],
        row_ids=[v["id"] for v in coll["variables"]],
        criterion_ids=[c["id"] for c in cset["criteria"] or []],
        rows=list(rows),
        criteria=list(criteria),
    )


def experiment_body(fx: Fixture, name: str | None = None, **overrides: Any) -> dict[str, Any]:
    """A complete CreateExperimentRequest body, as the official SDK sends it."""
    body: dict[str, Any] = {
        "name": name or unique("E"),
        "description": "",
        "prompt_template_id": fx.template_id,
        "collection_id": fx.collection_id,
        "criterion_set_id": fx.set_id,
        "llm_config_id": None,
        "generate": False,
        "rating_mode": "detailed",
        "n_epochs": 1,
        "generation_params": None,
        "rating_version": None,
        "response_column_id": None,
        "evaluation_mode": "STANDARD",
        "agent_config": None,
        "evaluation_agent_config": None,
        "persona_group_id": None,
        "scenario_set_id": None,
    }
    body.update(overrides)
    return body


async def create_experiment(
    client: Any, fx: Fixture, name: str | None = None, **overrides: Any
) -> dict[str, Any]:
    body = experiment_body(fx, name, **overrides)
    return await client.ok("POST", f"{P}/experiments", json=body)  # type: ignore[no-any-return]


async def poll(
    client: Any, path: str, *, timeout: float = 20.0, uuid: str = "test-consumer"
) -> dict[str, Any]:
    """Poll a status endpoint (with a connection_uuid) until a terminal state."""
    deadline = time.monotonic() + timeout
    while True:
        payload = await client.ok("GET", path, params={"connection_uuid": uuid})
        if payload["status"] in TERMINAL:
            return payload  # type: ignore[no-any-return]
        assert time.monotonic() < deadline, f"task still {payload} after {timeout} s"
        await asyncio.sleep(0.02)


async def run_to_end(
    client: Any, experiment: dict[str, Any], timeout: float = 20.0
) -> dict[str, Any]:
    """Wait for the experiment's task; return the final status payload."""
    task_id = experiment["generation_task_id"]
    assert task_id, experiment
    return await poll(
        client, f"{P}/experiments/{experiment['id']}/generation/{task_id}", timeout=timeout
    )


async def read_sse(
    client: Any, path: str, *, interval: str = "0.1", timeout: float = 30.0
) -> tuple[list[dict[str, Any]], bytes]:
    """All events of an SSE stream (read to EOF) and the raw bytes."""
    resp = await client.get(path, params={"polling_interval": interval})
    assert resp.status == 200, await resp.text()
    assert resp.headers["Content-Type"].startswith("text/event-stream")
    parser = SSEParser()
    events: list[dict[str, Any]] = []
    raw = b""

    async def consume() -> None:
        nonlocal raw
        while True:
            line = await resp.content.readline()
            if not line:
                return
            raw += line
            event = parser.feed(line)
            if event is not None:
                events.append(event)

    await asyncio.wait_for(consume(), timeout)
    return events, raw


async def all_responses(client: Any, experiment_id: int) -> list[dict[str, Any]]:
    """Every response of an experiment (all pages, SDK algorithm)."""
    items: list[dict[str, Any]] = []
    page = 1
    while True:
        body = await client.ok(
            "GET", f"{P}/responses", params={"experiment_id": experiment_id, "page": page}
        )
        items += body["items"]
        if len(items) >= body["count"] or not body["items"]:
            return items
        page += 1
