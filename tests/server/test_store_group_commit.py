"""Group commit on SQLite (``Database.begin``): the write blocks of one loop turn share one
COMMIT, each block still commits all of its writes or none, a block returns only once its
writes are in the file, and no read sees writes that are not committed."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import bindparam, insert, select

from elluminate.server.store import schema as S
from elluminate.server.store.connection import ForeignKeyViolation
from elluminate.server.store.database import Database, utcnow

ADD_PROJECT = insert(S.projects).values(
    organization_id=1, name=bindparam("name"), description="", created_at=bindparam("ts"),
    updated_at=bindparam("ts"),
).returning(S.projects.c.id)
NAMES = select(S.projects.c.name).order_by(S.projects.c.id)


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(tmp_path / "group.db")
    await database.start()
    database.conn.execute(
        "INSERT INTO organizations (id, name, created_at, updated_at) VALUES (1, 'org', '', '')"
    )
    yield database
    await database.stop()


def on_disk(db: Database) -> list[str]:
    """The project names another connection sees in the file: what is committed."""
    other = sqlite3.connect(db.path)
    try:
        return [r[0] for r in other.execute("SELECT name FROM projects ORDER BY id")]
    finally:
        other.close()


def commits(db: Database) -> list[str]:
    traced: list[str] = []
    db.conn.set_trace_callback(traced.append)
    return traced


async def add(db: Database, name: str) -> None:
    async with db.begin() as conn:
        await conn.insert(ADD_PROJECT, {"name": name, "ts": utcnow()})


async def test_blocks_of_one_turn_share_one_commit_and_each_returns_committed(
    db: Database,
) -> None:
    before = on_disk(db)
    traced = commits(db)
    seen_after_return: list[bool] = []

    async def add_and_check(name: str) -> None:
        await add(db, name)
        seen_after_return.append(name in on_disk(db))

    await asyncio.gather(*(add_and_check(f"p{i}") for i in range(20)))
    db.conn.set_trace_callback(None)
    assert on_disk(db) == before + [f"p{i}" for i in range(20)]
    assert seen_after_return == [True] * 20  # no block returned before its commit
    assert traced.count("COMMIT") == 1
    assert traced.count("BEGIN IMMEDIATE") == 1


async def test_a_block_that_raises_undoes_only_its_own_writes(db: Database) -> None:
    before = on_disk(db)

    async def failing() -> None:
        async with db.begin() as conn:
            await conn.insert(ADD_PROJECT, {"name": "half", "ts": utcnow()})
            await conn.insert(ADD_PROJECT, {"name": "written", "ts": utcnow()})
            raise RuntimeError("the block fails after two writes")

    results = await asyncio.gather(
        add(db, "a"), failing(), add(db, "b"), return_exceptions=True
    )
    assert [type(r).__name__ for r in results] == ["NoneType", "RuntimeError", "NoneType"]
    assert on_disk(db) == before + ["a", "b"]


async def test_a_first_block_that_raises_leaves_no_transaction_behind(db: Database) -> None:
    before = on_disk(db)
    with pytest.raises(RuntimeError):
        async with db.begin() as conn:
            await conn.insert(ADD_PROJECT, {"name": "gone", "ts": utcnow()})
            raise RuntimeError("first block of its group")
    assert not db.conn.in_transaction
    await add(db, "next")
    assert on_disk(db) == before + ["next"]


async def test_a_read_never_sees_writes_that_are_not_committed(db: Database) -> None:
    observed: list[tuple[list[str], list[str]]] = []

    async def read() -> None:
        async with db.connect() as conn:
            names = [r[0] for r in await conn.fetchall(NAMES)]
            observed.append((names, on_disk(db)))

    # a write and a read in the same loop turn: the read commits the open group first
    await asyncio.gather(add(db, "w1"), read(), add(db, "w2"), read())
    for names, committed in observed:
        assert names == committed
    assert "w1" in observed[0][0]


async def test_a_block_that_awaits_inside_its_transaction_delays_the_commit(
    db: Database,
) -> None:
    order: list[str] = []

    async def slow() -> None:
        async with db.begin() as conn:
            await conn.insert(ADD_PROJECT, {"name": "slow", "ts": utcnow()})
            await asyncio.sleep(0.05)  # the commit of the group must wait for this block
            order.append("slow block done")
        order.append("slow returned")

    async def quick() -> None:
        await add(db, "quick")
        order.append("quick returned")

    await asyncio.gather(quick(), slow())
    assert "quick" in on_disk(db) and "slow" in on_disk(db)
    assert order.index("slow block done") < order.index("quick returned")


async def test_a_failed_commit_reaches_every_block_of_the_group(db: Database) -> None:
    before = on_disk(db)

    async def dangling() -> None:
        async with db.begin() as conn:
            db.conn.execute("PRAGMA defer_foreign_keys = ON")  # checked at COMMIT
            db.conn.execute(
                "INSERT INTO api_keys (key_hash, prefix, project_id, created_at) "
                "VALUES ('x', 'x', 987654, '2026-01-01T00:00:00Z')"
            )
            await conn.insert(ADD_PROJECT, {"name": "lost 1", "ts": utcnow()})

    results = await asyncio.gather(dangling(), add(db, "lost 2"), return_exceptions=True)
    assert all(isinstance(r, ForeignKeyViolation) for r in results), results
    assert on_disk(db) == before
    assert not db.conn.in_transaction
    await add(db, "after")
    assert on_disk(db) == before + ["after"]


async def test_a_cancelled_waiter_does_not_cancel_the_others(db: Database) -> None:
    first = asyncio.ensure_future(add(db, "cancelled caller"))
    second = asyncio.ensure_future(add(db, "patient caller"))
    await asyncio.sleep(0)  # both blocks ran; the commit is due next turn
    first.cancel()
    await asyncio.gather(first, second, return_exceptions=True)
    assert second.done() and second.exception() is None
    # the cancelled caller's writes were already in the group: they are committed
    assert {"cancelled caller", "patient caller"} <= set(on_disk(db))


async def test_closing_commits_an_open_group(tmp_path: Path) -> None:
    db = Database(tmp_path / "close.db")
    await db.start()
    db.conn.execute(
        "INSERT INTO organizations (id, name, created_at, updated_at) VALUES (1, 'org', '', '')"
    )
    task = asyncio.ensure_future(add(db, "at close"))
    await asyncio.sleep(0)  # the block ran, its commit is due next turn
    db.close()
    check = sqlite3.connect(tmp_path / "close.db")
    assert ("at close",) in check.execute("SELECT name FROM projects").fetchall()
    check.close()
    await task


async def test_closing_undoes_a_block_in_the_middle_of_its_transaction(tmp_path: Path) -> None:
    db = Database(tmp_path / "mid.db")
    await db.start()
    db.conn.execute(
        "INSERT INTO organizations (id, name, created_at, updated_at) VALUES (1, 'org', '', '')"
    )
    inside = asyncio.Event()

    async def finished() -> None:
        await add(db, "complete block")

    async def unfinished() -> None:
        async with db.begin() as conn:
            await conn.insert(ADD_PROJECT, {"name": "half a block", "ts": utcnow()})
            inside.set()
            await asyncio.sleep(10)  # still inside its transaction when the store closes

    # both in one loop turn: the second block joins the first one's commit group
    done = asyncio.ensure_future(finished())
    stuck = asyncio.ensure_future(unfinished())
    await inside.wait()
    assert db._joined
    db.close()
    check = sqlite3.connect(tmp_path / "mid.db")
    names = [r[0] for r in check.execute("SELECT name FROM projects")]
    check.close()
    assert names == ["complete block"]  # all of the finished block, nothing of the other
    await done
    stuck.cancel()
    await asyncio.gather(stuck, return_exceptions=True)
