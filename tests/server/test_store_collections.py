"""The collection repositories on SQLite and PostgreSQL: bulk inserts with their new ids,
concurrent writers (name conflicts, new columns, skip_existing), the compatible-template
filter, column reshapes and deletes of rows that experiments still use."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, insert, select, text

from elluminate.server.store import collections as store
from elluminate.server.store import entries, projects
from elluminate.server.store import schema as S
from elluminate.server.store.columns import ColumnSpec, InvalidColumns, load_columns
from elluminate.server.store.database import Database, loads, utcnow
from elluminate.server.store.pages import fetch_page


@pytest.fixture(params=["sqlite", "postgres"])
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    """The store on each database (PostgreSQL: a new database, see tests/conftest.py)."""
    if request.param == "sqlite":
        database = Database(tmp_path / "collections.db")
        database.open()
        yield database
        database.close()
        return
    from elluminate.server.store.postgres import PostgresDatabase

    pg = PostgresDatabase(request.getfixturevalue("postgres_url"))
    await pg.open()
    yield pg
    await pg.close()


@pytest.fixture
async def pid(db: Any) -> int:
    """The default project."""
    async with db.begin() as conn:
        await projects.bootstrap(conn, api_key="test-key-0123456789")
        project: int = await conn.fetchval(projects.DEFAULT_PROJECT)
    return project


async def new_collection(db: Any, pid: int, name: str, columns: Sequence[str] = ()) -> int:
    async with db.begin() as conn:
        return await store.create_collection(
            conn,
            pid,
            name=name,
            description="",
            read_only=False,
            collection_type="STANDARD",
            environment_config=None,
            columns=[ColumnSpec(c) for c in columns],
        )


async def add_rows(
    db: Any, pid: int, collection_id: int, rows: Sequence[Mapping[str, Any]], **kw: Any
) -> list[int]:
    async with db.begin() as conn:
        collection = await store.collection_row(conn, pid, collection_id, lock=True)
        return await entries.insert_entries(conn, collection, [(r, None) for r in rows], **kw)


class CountingConnection:
    """A connection that counts the statements run through it."""

    def __init__(self, conn: Any) -> None:
        self._conn = conn
        self.dialect_name = conn.dialect_name
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._conn, name)
        if name in ("fetchall", "fetchone", "fetchval", "execute", "executemany", "insert"):
            self.calls.append(name)
        return method


# ---- bulk inserts -------------------------------------------------------------------------


async def test_a_bulk_insert_returns_the_new_ids_in_row_order(db: Any, pid: int) -> None:
    collection_id = await new_collection(db, pid, "bulk", ["topic"])
    rows = [{"topic": f"t{i}"} for i in range(1500)] + [{"topic": 7, "lang": "de"}]
    ids = await add_rows(db, pid, collection_id, rows)
    assert len(ids) == len(rows) and ids == sorted(set(ids))
    async with db.connect() as conn:
        stored = await entries.entries_by_ids(conn, collection_id, ids)
        assert [r["id"] for r in stored] == ids
        values = [loads(r["input_values"]) for r in stored]
        assert values[0] == {"topic": "t0", "lang": ""}  # the new column reached old rows
        assert values[-1] == {"topic": "7", "lang": "de"}
        assert [c["name"] for c in await load_columns(conn, collection_id)] == ["topic", "lang"]
        assert await entries.live_row_ids(conn, collection_id) == ids
    more = [*rows[:10], {"topic": "new"}]
    again = await add_rows(db, pid, collection_id, more, skip_existing=True)
    assert len(again) == 1 and again[0] > ids[-1]
    # another collection's inserts get their own ids, never these
    other = await new_collection(db, pid, "other")
    assert set(await add_rows(db, pid, other, rows[:5])).isdisjoint(ids)


async def test_a_bulk_insert_of_more_rows_than_a_statement_may_have_parameters(
    db: Any, pid: int
) -> None:
    collection_id = await new_collection(db, pid, "big", ["n"])
    n = 33_000  # PostgreSQL allows 32,767 parameters per statement
    ids = await add_rows(db, pid, collection_id, [{"n": str(i)} for i in range(n)])
    assert len(ids) == n and ids == sorted(set(ids))
    async with db.connect() as conn:
        stored = await entries.entries_by_ids(conn, collection_id, ids)
    assert [loads(r["input_values"])["n"] for r in stored] == [str(i) for i in range(n)]


async def test_a_bulk_insert_runs_the_same_few_statements_for_any_number_of_rows(
    db: Any, pid: int
) -> None:
    counts = []
    for n in (10, 3000):
        collection_id = await new_collection(db, pid, f"n{n}", ["topic"])
        async with db.begin() as raw:
            conn = CountingConnection(raw)
            collection = await store.collection_row(conn, pid, collection_id, lock=True)
            rows = [({"topic": f"t{i}"}, None) for i in range(n)]
            ids = await entries.insert_entries(conn, collection, rows, skip_existing=True)
        assert len(ids) == n
        counts.append(conn.calls)
    assert counts[0] == counts[1] and len(counts[1]) <= 7, counts[1]


async def test_one_entry_updated_and_deleted(db: Any, pid: int) -> None:
    collection_id = await new_collection(db, pid, "one", ["topic"])
    rows = [{"topic": str(i)} for i in range(3)]
    first, second, third = await add_rows(db, pid, collection_id, rows)
    async with db.begin() as conn:
        collection = await store.collection_row(conn, pid, collection_id, lock=True)
        values = {"topic": 2.5, "extra": True}
        await entries.update_entry(conn, collection, second, values, {"e": 1})
    async with db.connect() as conn:
        row = await entries.live_entry(conn, collection_id, second)
        assert loads(row["input_values"]) == {"topic": "2.5", "extra": "true"}
        assert loads(row["environment_config"]) == {"e": 1}
        assert await entries.recent_input_values(conn, collection_id, 2) == [
            {"topic": "2.5", "extra": "true"}, {"topic": "2", "extra": ""}]
    async with db.begin() as conn:
        await entries.delete_entry(conn, first)
    async with db.connect() as conn:
        assert await entries.live_entry(conn, collection_id, first) is None
        assert await entries.live_row_ids(conn, collection_id) == [second, third]


# ---- concurrent writers ---------------------------------------------------------------------


async def _wait_until_blocked(db: Any) -> None:
    """PostgreSQL: until another session waits for a lock; SQLite: a moment (its blocks are
    exclusive, the waiter cannot even start)."""
    if db.dialect_name != "postgresql":
        await asyncio.sleep(0.05)
        return
    waiting = text(
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    for _ in range(500):
        async with db.connect() as conn:
            if await conn.fetchval(waiting):
                return
        await asyncio.sleep(0.01)
    raise AssertionError("the second writer never waited for the first")


@contextlib.asynccontextmanager
async def first_writer(db: Any) -> AsyncIterator[Any]:
    """A transaction that stays open until the second writer is blocked behind it."""
    async with db.begin() as conn:
        yield conn
        await _wait_until_blocked(db)


async def test_two_creates_of_one_name_make_one_collection_and_one_name_taken(
    db: Any, pid: int
) -> None:
    results: dict[str, Any] = {}
    wrote = asyncio.Event()

    async def first() -> None:
        async with first_writer(db) as conn:
            results["first"] = await store.create_collection(
                conn, pid, name="same", description="", read_only=False,
                collection_type="STANDARD", environment_config=None, columns=[ColumnSpec("a")],
            )
            wrote.set()

    async def second() -> None:
        await wrote.wait()
        with pytest.raises(store.NameTaken) as info:
            await new_collection(db, pid, "same", ["b"])
        results["taken"] = info.value.existing_id

    await asyncio.gather(first(), second())
    assert results["taken"] == results["first"]
    async with db.connect() as conn:
        assert await store.collection_named(conn, pid, "same") == results["first"]
        assert [c["name"] for c in await load_columns(conn, results["first"])] == ["a"]
        same = select(func.count()).where(S.collections.c.name == "same")
        assert await conn.fetchval(same) == 1


async def test_a_rename_racing_a_create_of_that_name_is_refused(db: Any, pid: int) -> None:
    renamed = await new_collection(db, pid, "old")
    results: dict[str, Any] = {}
    wrote = asyncio.Event()

    async def create() -> None:
        async with first_writer(db) as conn:
            results["created"] = await store.create_collection(
                conn, pid, name="wanted", description="", read_only=False,
                collection_type="STANDARD", environment_config=None, columns=[],
            )
            wrote.set()

    async def rename() -> None:
        await wrote.wait()
        with pytest.raises(store.NameTaken) as info:
            async with db.begin() as conn:
                collection = await store.collection_row(conn, pid, renamed, lock=True)
                await store.update_collection(
                    conn, collection, name="wanted", description=None, read_only=None,
                    set_environment=False, environment_config=None, columns=None,
                )
        results["taken"] = info.value.existing_id

    await asyncio.gather(create(), rename())
    assert results["taken"] == results["created"]
    async with db.connect() as conn:
        assert (await store.collection_row(conn, pid, renamed))["name"] == "old"


async def test_concurrent_uploads_to_one_collection_take_turns(db: Any, pid: int) -> None:
    collection_id = await new_collection(db, pid, "shared", ["topic"])
    rows = [{"topic": f"t{i}", "lang": "de"} for i in range(200)]
    added: list[list[int]] = []
    wrote = asyncio.Event()

    async def upload(hold: bool) -> None:
        async with db.begin() as conn:
            collection = await store.collection_row(conn, pid, collection_id, lock=True)
            added.append(
                await entries.insert_entries(
                    conn, collection, [(r, None) for r in rows], skip_existing=True
                )
            )
            wrote.set()
            if hold:  # keep the lock while the other upload starts
                await _wait_until_blocked(db)

    async def later() -> None:
        await wrote.wait()
        await upload(False)

    await asyncio.gather(upload(True), later())
    assert sorted(len(a) for a in added) == [0, 200]
    async with db.connect() as conn:
        assert [c["name"] for c in await load_columns(conn, collection_id)] == ["topic", "lang"]
        assert len(await entries.live_row_ids(conn, collection_id)) == 200


# ---- reads and reshapes -------------------------------------------------------------------


async def test_the_compatible_template_filter(db: Any, pid: int) -> None:
    a = await new_collection(db, pid, "A", ["topic"])
    b = await new_collection(db, pid, "B", ["topic", "level"])
    z = await new_collection(db, pid, "Z", ["other"])
    e = await new_collection(db, pid, "E")

    async def listed(**filters: Any) -> tuple[list[int], int]:
        stmt, params = store.list_parameters(pid, **filters)
        async with db.connect() as conn:
            rows, count = await fetch_page(conn, stmt, params, page=1, size=100)
        return [r["id"] for r in rows], count

    assert await listed(placeholders=["topic", "level"]) == ([b], 1)
    assert await listed(placeholders=["level", "topic", "topic"]) == ([b], 1)
    assert await listed(placeholders=["topic"]) == ([a, b], 2)
    assert await listed(placeholders=[]) == ([a, b, z, e], 4)
    assert await listed(placeholders=["missing"]) == ([], 0)
    assert await listed(name="A", placeholders=["topic"]) == ([a], 1)
    assert await listed(name="B") == ([b], 1)
    assert await listed() == ([a, b, z, e], 4)


async def test_reshaping_swaps_renames_and_drops_columns(db: Any, pid: int) -> None:
    collection_id = await new_collection(db, pid, "K", ["a", "b", "c"])
    (row,) = await add_rows(db, pid, collection_id, [{"a": "1", "b": "2", "c": "3"}])
    async with db.connect() as conn:
        col_a, col_b, _ = await load_columns(conn, collection_id)
    async with db.begin() as conn:
        collection = await store.collection_row(conn, pid, collection_id, lock=True)
        specs = [ColumnSpec("a", id=col_b["id"]), ColumnSpec("b", id=col_a["id"]), ColumnSpec("d")]
        await store.update_collection(
            conn, collection, name="K", description="d", read_only=True,
            set_environment=True, environment_config={"image": "x"}, columns=specs,
        )
    async with db.connect() as conn:
        columns = await load_columns(conn, collection_id)
        assert [(c["id"], c["name"]) for c in columns][:2] == [
            (col_b["id"], "a"), (col_a["id"], "b")]
        assert [c["name"] for c in columns] == ["a", "b", "d"]
        (stored,) = await entries.entries_by_ids(conn, collection_id, [row])
        assert loads(stored["input_values"]) == {"a": "2", "b": "1", "d": ""}
        updated = await store.collection_row(conn, pid, collection_id)
        assert bool(updated["read_only"]) and updated["description"] == "d"
        assert loads(updated["environment_config"]) == {"image": "x"}
    with pytest.raises(InvalidColumns, match="not a column"):
        async with db.begin() as conn:
            collection = await store.collection_row(conn, pid, collection_id, lock=True)
            await store.update_collection(
                conn, collection, name="renamed", description=None, read_only=None,
                set_environment=False, environment_config=None,
                columns=[ColumnSpec("q", id=10**6)],
            )
    async with db.connect() as conn:  # nothing of the refused update stayed
        assert (await store.collection_row(conn, pid, collection_id))["name"] == "K"


# ---- deletes ------------------------------------------------------------------------------


async def test_deletes_hide_rows_in_use_and_retire_their_criteria(db: Any, pid: int) -> None:
    collection_id = await new_collection(db, pid, "K", ["a"])
    ids = await add_rows(db, pid, collection_id, [{"a": str(i)} for i in range(3)])
    moment = utcnow()
    async with db.begin() as conn:
        await conn.execute(  # an experiment's prompt still uses the middle row
            insert(S.prompts).values(
                project_id=pid, template_variables_id=ids[1], messages="[]", created_at=moment
            )
        )
        for row_id in ids[:2]:
            await conn.execute(
                insert(S.criteria).values(
                    project_id=pid, criterion_str="ok?", template_variables_id=row_id,
                    created_at=moment,
                )
            )
    async with db.begin() as conn:
        await entries.delete_all_entries(conn, collection_id)
    live_criteria = select(S.criteria.c.id).where(S.criteria.c.deleted_at.is_(None))
    every_row = select(S.template_variables.c.id, S.template_variables.c.deleted_at)
    async with db.connect() as conn:
        assert await entries.live_row_ids(conn, collection_id) == []
        remaining = await conn.fetchall(every_row)
        assert [(r[0], r[1] is not None) for r in remaining] == [(ids[1], True)]
        assert await conn.fetchall(live_criteria) == []
    async with db.begin() as conn:
        await store.delete_collection(conn, collection_id)
    async with db.connect() as conn:  # its hidden row is still referenced: hidden too
        by_id = select(S.collections).where(S.collections.c.id == collection_id)
        hidden = await conn.fetchone(by_id)
        assert hidden["deleted_at"] is not None
        assert await store.collection_named(conn, pid, "K") is None
    assert await new_collection(db, pid, "K") != collection_id  # the name is free again
