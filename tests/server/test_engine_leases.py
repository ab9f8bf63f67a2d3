"""Lease renewal: the heartbeat judges only the tasks it renewed, and renews only the tasks
this replica runs (on SQLite and PostgreSQL, through the served app's engine)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from elluminate.server.api.http import DB_KEY, ENGINE_KEY
from elluminate.server.store import tasks as task_store


async def _running_task(engine: Any, db: Any, kind: str) -> tuple[Any, asyncio.Event]:
    """Submit a task of ``kind`` that runs until its event is set; wait until it runs."""
    started, release = asyncio.Event(), asyncio.Event()

    async def hold(ctx: Any) -> None:
        started.set()
        await release.wait()

    engine.register(kind, hold)
    async with db.begin() as conn:
        state = await engine.submit(conn, kind, 1, None, None)
    await asyncio.wait_for(started.wait(), 10)
    return state, release


async def _status(db: Any, task_id: str) -> Any:
    async with db.connect() as conn:
        return await conn.fetchone(task_store.TASK, {"id": task_id})


async def test_a_task_claimed_while_the_leases_are_renewed_is_not_lost(
    client: Any, monkeypatch: Any, backend: str
) -> None:
    if backend == "sqlite":
        pytest.skip("SQLite has one writer: no claim commits while the leases are renewed")
    engine, db = client.app[ENGINE_KEY], client.app[DB_KEY]
    first, release_first = await _running_task(engine, db, "first")
    renew = task_store.renew_leases
    second: list[Any] = []

    async def renew_then_claim(*args: Any, **kwargs: Any) -> Any:
        held = await renew(*args, **kwargs)  # the renewal has run without the second task ...
        if not second:
            second.append(await _running_task(engine, db, "second"))  # ... claimed now
        return held

    monkeypatch.setattr(task_store, "renew_leases", renew_then_claim)
    await engine.leases.beat()
    monkeypatch.setattr(task_store, "renew_leases", renew)
    [(late, release_late)] = second
    await asyncio.sleep(0.05)
    assert late.id in engine.leases.held and engine.leases.held[late.id].stop_reason is None
    release_first.set()
    release_late.set()
    for state in (first, late):
        for _ in range(200):
            if (await _status(db, state.id))["status"] == "SUCCESS":
                break
            await asyncio.sleep(0.02)
        assert (await _status(db, state.id))["status"] == "SUCCESS"


async def test_a_claim_this_replica_no_longer_runs_is_left_to_expire(client: Any) -> None:
    engine, db = client.app[ENGINE_KEY], client.app[DB_KEY]
    live, release_live = await _running_task(engine, db, "live")
    orphan, _ = await _running_task(engine, db, "orphan")
    item = engine.leases.held[orphan.id]  # its runner stops as after a lost lease: no release
    item.stop_reason = "lost"
    item.task.cancel()
    await item.done.wait()
    assert orphan.id not in engine.leases.held
    leases = {s.id: (await _status(db, s.id))["lease_expires_at"] for s in (live, orphan)}
    await asyncio.sleep(0.01)
    await engine.leases.beat()
    after = {s.id: await _status(db, s.id) for s in (live, orphan)}
    assert after[live.id]["lease_expires_at"] != leases[live.id]  # renewed
    # not renewed: once it runs out, a replica (this one too) claims and resumes the task
    assert after[orphan.id]["owner"] == engine.replica_id
    assert after[orphan.id]["lease_expires_at"] == leases[orphan.id]
    release_live.set()
