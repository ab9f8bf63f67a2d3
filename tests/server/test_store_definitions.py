"""Repositories of templates, LLM configs, criteria and criterion sets on SQLite and PostgreSQL.

The HTTP tests (test_server_prompt_templates.py, ...) run on SQLite, which serialises every
write transaction. These tests call the repository functions directly on both databases and
make requests meet where PostgreSQL lets them run side by side: two creates of one name, two
writers of one template or criterion. A :class:`Gate` holds each transaction at a chosen
statement until all have reached it (so they really race); :func:`wait_until_blocked` proves
that a second transaction waits for the first one's lock.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text

from elluminate.schemas import CriterionIn
from elluminate.server.store import criteria, llm_configs, projects, templates
from elluminate.server.store import schema as S
from elluminate.server.store.database import Database, dumps, utcnow
from elluminate.server.store.errors import NameTaken, NotFound


@pytest.fixture(params=["sqlite", "postgres"])
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    """The store on each database (PostgreSQL: a new database, see tests/conftest.py)."""
    if request.param == "sqlite":
        database = Database(tmp_path / "defs.db")
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
    """The default project of the database."""
    async with db.begin() as conn:
        await projects.bootstrap(conn, api_key="test-key-0123456789")
        project_id: int = await conn.fetchval(projects.DEFAULT_PROJECT)
    return project_id


class Gate:
    """Holds each transaction at its first run of ``stmt`` until ``parties`` transactions got
    there (on PostgreSQL; SQLite runs one write transaction at a time, so nothing waits)."""

    def __init__(self, db: Any, stmt: Any, parties: int) -> None:
        self.active = db.dialect_name == "postgresql"
        self.stmt = stmt
        self.barrier = asyncio.Barrier(parties)

    def wrap(self, conn: Any) -> Any:
        return _Gated(conn, self) if self.active else conn


class _Gated:
    def __init__(self, conn: Any, gate: Gate) -> None:
        self._conn = conn
        self._gate = gate
        self._passed = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)

    async def _arrive(self, stmt: Any) -> None:
        if stmt is self._gate.stmt and not self._passed:
            self._passed = True
            await asyncio.wait_for(self._gate.barrier.wait(), 30)

    async def insert(self, stmt: Any, params: Any = None) -> Any:
        await self._arrive(stmt)
        return await self._conn.insert(stmt, params)

    async def execute(self, stmt: Any, params: Any = None) -> int:
        await self._arrive(stmt)
        result: int = await self._conn.execute(stmt, params)
        return result


LOCK_WAITS = text(
    "SELECT count(*) FROM pg_stat_activity "
    "WHERE datname = current_database() AND wait_event_type = 'Lock'"
)


async def wait_until_blocked(db: Any, task: asyncio.Task[Any]) -> None:
    """Return once ``task``'s transaction waits for a lock (SQLite: for the write lock)."""
    if db.dialect_name == "sqlite":
        await asyncio.sleep(0.05)
        assert not task.done(), "the second transaction did not wait"
        return
    for _ in range(1000):
        assert not task.done(), "the second transaction did not wait for the lock"
        async with db.connect() as conn:
            if await conn.fetchval(LOCK_WAITS):
                return
        await asyncio.sleep(0.01)
    raise AssertionError("no transaction waits for a lock")


async def new_template(db: Any, pid: int, name: str = "T", content: str = "x") -> int:
    async with db.begin() as conn:
        template_id, _ = await templates.create_template(
            conn, pid, name, **template_fields(content)
        )
    return template_id


def template_fields(content: str) -> dict[str, Any]:
    return {
        "messages": [{"role": "user", "content": content}],
        "placeholders": [],
        "response_format": None,
        "tools": None,
        "tool_choice": None,
        "content_hash": f"hash of {content}",
        "parent_id": None,
    }


async def count(db: Any, table: Any) -> int:
    async with db.connect() as conn:
        return int(await conn.fetchval(select(func.count()).select_from(table)))


# ---- prompt template versions -----------------------------------------------------------------


async def test_concurrent_creates_of_one_name_get_one_version_each(
    db: Any, pid: int, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, "elluminate.server.store.templates")
    n = 6
    gate = Gate(db, templates.INSERT_TEMPLATE, n)

    async def create(i: int) -> tuple[int, int]:
        async with db.begin() as conn:
            return await templates.create_template(
                gate.wrap(conn), pid, "T", **template_fields(f"content {i}")
            )

    results = await asyncio.gather(*(create(i) for i in range(n)))
    assert sorted(version for _, version in results) == list(range(1, n + 1))
    async with db.connect() as conn:
        rows = await conn.fetchall(select(S.prompt_templates.c.id, S.prompt_templates.c.version))
    assert sorted((r[0], r[1]) for r in rows) == sorted(results)
    if gate.active:  # all met at version 1: every loser counted again
        recounts = [r for r in caplog.records if "counting again" in r.getMessage()]
        assert len(recounts) >= n - 1


async def test_concurrent_creates_of_the_same_content_make_one_version(
    db: Any, pid: int
) -> None:
    n = 4
    gate = Gate(db, templates.INSERT_TEMPLATE, n)

    async def create() -> tuple[int, int] | templates.SameContent:
        try:
            async with db.begin() as conn:
                return await templates.create_template(
                    gate.wrap(conn), pid, "T", **template_fields("same")
                )
        except templates.SameContent as exc:
            return exc

    results = await asyncio.gather(*(create() for _ in range(n)))
    created = [r for r in results if isinstance(r, tuple)]
    refused = [r for r in results if isinstance(r, templates.SameContent)]
    assert len(created) == 1 and len(refused) == n - 1
    ((template_id, version),) = created
    assert version == 1
    assert {(r.template_id, r.version) for r in refused} == {(template_id, 1)}
    assert await count(db, S.prompt_templates) == 1


async def test_versions_keep_counting_past_deleted_ones(db: Any, pid: int) -> None:
    first = await new_template(db, pid, content="a")
    async with db.begin() as conn:
        await templates.delete_template(conn, pid, first)
    with pytest.raises(NotFound):
        async with db.begin() as conn:
            await templates.delete_template(conn, pid, first)
    second = await new_template(db, pid, content="a")  # the same content is free again
    async with db.connect() as conn:
        row = await templates.live_template(conn, pid, second)
    assert row["version"] >= 1 and second != first
    with pytest.raises(NotFound):
        async with db.begin() as conn:
            await templates.create_template(
                conn, pid, "U", **{**template_fields("b"), "parent_id": first}
            )


async def test_listing_filters_on_both_databases(db: Any, pid: int) -> None:
    async with db.begin() as conn:
        a, _ = await templates.create_template(
            conn, pid, "A", **{**template_fields("a"), "placeholders": ["topic"]}
        )
        b, _ = await templates.create_template(
            conn, pid, "B", **{**template_fields("b"), "placeholders": ["topic", "level"]}
        )
        b2, _ = await templates.create_template(
            conn, pid, "B", **{**template_fields("b2"), "placeholders": []}
        )
        set_id = await criteria.create_set(conn, pid, "S", [])
        await criteria.link_template(conn, set_id, a)

    async def ids(**kw: Any) -> tuple[list[int], int]:
        args: dict[str, Any] = {
            "name": None, "version": None, "criterion_set_id": None,
            "compatible_columns": None, "page": 1, "size": 10, **kw,
        }
        async with db.connect() as conn:
            rows, total = await templates.list_templates(conn, pid, **args)
        return [r["id"] for r in rows], total

    assert await ids() == ([a, b, b2], 3)
    assert await ids(name="B") == ([b2, b], 2)
    assert await ids(name="B", version=1) == ([b], 1)
    assert await ids(criterion_set_id=set_id) == ([a], 1)
    assert await ids(compatible_columns=frozenset({"topic"})) == ([a, b2], 2)
    assert await ids(compatible_columns=frozenset({"topic"}), page=2, size=1) == ([b2], 2)
    assert await ids(compatible_columns=frozenset(), page=3, size=1) == ([], 1)
    assert await ids(page=2, size=2) == ([b2], 3)


# ---- names unique among live rows -------------------------------------------------------------


async def _create_llm_config(conn: Any, pid: int, name: str) -> int:
    values: dict[str, Any] = dict.fromkeys(llm_configs.COLUMNS)
    values.update(
        name=name, description="", llm_model_name="m", max_connections=10,
        inference_type="openai", custom_api_config=dumps({"a": 1}), logprobs=1, top_p=0.5,
    )
    return await llm_configs.create_llm_config(conn, pid, values)


async def _create_set(conn: Any, pid: int, name: str) -> int:
    return await criteria.create_set(conn, pid, name, [CriterionIn(criterion_str="c")])


@pytest.mark.parametrize(
    ("create", "insert"),
    [(_create_llm_config, llm_configs.INSERT_CONFIG), (_create_set, criteria.INSERT_SET)],
    ids=["llm_config", "criterion_set"],
)
async def test_a_name_taken_concurrently_names_the_winner(
    db: Any, pid: int, create: Any, insert: Any
) -> None:
    n = 4
    gate = Gate(db, insert, n)

    async def attempt() -> int | NameTaken:
        try:
            async with db.begin() as conn:
                new_id: int = await create(gate.wrap(conn), pid, "N")
                return new_id
        except NameTaken as exc:
            return exc

    results = await asyncio.gather(*(attempt() for _ in range(n)))
    winners = [r for r in results if isinstance(r, int)]
    losers = [r for r in results if isinstance(r, NameTaken)]
    assert len(winners) == 1 and len(losers) == n - 1
    assert {r.existing_id for r in losers} == set(winners)
    async with db.begin() as conn:  # and taken afterwards, before any insert
        with pytest.raises(NameTaken) as taken:
            await create(conn, pid, "N")
    assert taken.value.existing_id == winners[0]


async def test_an_llm_config_is_hidden_while_responses_use_it(db: Any, pid: int) -> None:
    async with db.begin() as conn:
        config_id = await _create_llm_config(conn, pid, "C")
        await llm_configs.delete_llm_config(conn, pid, config_id)
        again = await _create_llm_config(conn, pid, "C")  # a deleted name is free
    with pytest.raises(NotFound):
        async with db.begin() as conn:
            await llm_configs.delete_llm_config(conn, pid, config_id)
    assert again != config_id and await count(db, S.llm_configs) == 1


# ---- criteria, sets and template links ---------------------------------------------------------


async def test_a_template_gets_one_default_set_when_two_requests_add_criteria(
    db: Any, pid: int
) -> None:
    template_id = await new_template(db, pid)

    async def add(conn: Any, text_: str) -> tuple[int, list[int]]:
        template = await templates.lock_template(conn, pid, template_id)
        set_id = await criteria.template_set(conn, pid, template, create=True)
        assert set_id is not None
        return set_id, await criteria.add_criteria(
            conn, pid, set_id, [CriterionIn(criterion_str=text_)], prompt_template_id=template_id
        )

    async def second() -> tuple[int, list[int]]:
        async with db.begin() as conn:
            return await add(conn, "b")

    async with db.begin() as conn:
        first_set, first_ids = await add(conn, "a")
        other = asyncio.create_task(second())
        await wait_until_blocked(db, other)
    second_set, second_ids = await other
    assert second_set == first_set
    assert await count(db, S.criterion_sets) == 1
    async with db.connect() as conn:
        assert await criteria.set_criterion_ids(conn, first_set) == first_ids + second_ids
        rows = await conn.fetchall(select(S.criterion_set_criteria.c.position))
        template = await templates.live_template(conn, pid, template_id)
        assert await criteria.template_criteria_count(conn, template) == 2
    assert sorted(r[0] for r in rows) == [0, 1]
    assert template["criterion_set_id"] == first_set


async def test_concurrent_additions_to_one_set_take_turns(db: Any, pid: int) -> None:
    async with db.begin() as conn:
        set_id = await criteria.create_set(conn, pid, "S", [])

    async def add(text_: str) -> list[int]:
        async with db.begin() as conn:
            await criteria.lock_set(conn, pid, set_id)
            items = [CriterionIn(criterion_str=text_), CriterionIn(criterion_str="x")]
            return await criteria.add_criteria(conn, pid, set_id, items)

    results = await asyncio.gather(*(add(t) for t in ("a", "b", "c")))
    shared = {ids[1] for ids in results}
    assert len(shared) == 1  # "x" was added once and reused
    async with db.connect() as conn:
        positions = [r[0] for r in await conn.fetchall(select(S.criterion_set_criteria.c.position))]
    assert sorted(positions) == [0, 1, 2, 3]


async def test_the_second_edit_of_a_criterion_finds_it_replaced(db: Any, pid: int) -> None:
    async with db.begin() as conn:
        set_id = await criteria.create_set(conn, pid, "S", [CriterionIn(criterion_str="a")])
        (criterion_id,) = await criteria.set_criterion_ids(conn, set_id)

    async def edit(text_: str) -> int:
        async with db.begin() as conn:
            old = await criteria.lock_criterion(conn, pid, criterion_id)
            return await criteria.replace_criterion(conn, pid, old, text_, None)

    async with db.begin() as conn:
        old = await criteria.lock_criterion(conn, pid, criterion_id)
        new_id = await criteria.replace_criterion(conn, pid, old, "a2", "L")
        other = asyncio.create_task(edit("a3"))
        await wait_until_blocked(db, other)
    with pytest.raises(NotFound):
        await other
    async with db.connect() as conn:
        assert await criteria.set_criterion_ids(conn, set_id) == [new_id]
        live = select(S.criteria.c.id, S.criteria.c.previous_version_id).where(
            S.criteria.c.deleted_at.is_(None)
        )
        assert [tuple(r) for r in await conn.fetchall(live)] == [(new_id, criterion_id)]


async def test_a_link_made_twice_at_once_is_stored_once(db: Any, pid: int) -> None:
    template_id = await new_template(db, pid)
    async with db.begin() as conn:
        set_id = await criteria.create_set(conn, pid, "S", [])
    gate = Gate(db, criteria.ADD_LINK, 2)

    async def link() -> None:
        async with db.begin() as conn:
            await criteria.link_template(gate.wrap(conn), set_id, template_id)

    await asyncio.gather(link(), link())
    assert await count(db, S.criterion_set_prompt_templates) == 1
    async with db.connect() as conn:
        template = await templates.live_template(conn, pid, template_id)
    assert template["criterion_set_id"] == set_id


async def test_unlinking_and_deleting_sets_fall_back_to_another_linked_set(
    db: Any, pid: int
) -> None:
    template_id = await new_template(db, pid)
    async with db.begin() as conn:
        a = await criteria.create_set(conn, pid, "A", [CriterionIn(criterion_str="ca")])
        b = await criteria.create_set(conn, pid, "B", [CriterionIn(criterion_str="cb")])
        c = await criteria.create_set(conn, pid, "C", [])
        for set_id in (a, b, c):
            await criteria.lock_link_ends(conn, pid, set_id, template_id)
            await criteria.link_template(conn, set_id, template_id)

    async def default() -> int | None:
        async with db.connect() as conn:
            row = await templates.live_template(conn, pid, template_id)
        return row["criterion_set_id"]  # type: ignore[no-any-return]

    assert await default() == a
    async with db.begin() as conn:
        await criteria.unlink_template(conn, a, template_id)
    assert await default() == b
    async with db.begin() as conn:
        await criteria.delete_set(conn, pid, b)
    assert await default() == c
    async with db.connect() as conn:
        listing = criteria.criteria_listing(True, False)
        rows = await conn.fetchall(listing, {"pid": pid, "template_id": template_id})
        assert rows == []  # "cb" went with its set; "ca" is in A, no longer linked
        rows = await conn.fetchall(
            criteria.criteria_listing(False, True), {"pid": pid, "set_id": a}
        )
        assert [r["criterion_str"] for r in rows] == ["ca"]
    with pytest.raises(NotFound):
        async with db.begin() as conn:
            await criteria.lock_link_ends(conn, pid, b, template_id)


async def test_only_a_live_entry_can_be_held(db: Any, pid: int) -> None:
    moment = utcnow()
    async with db.begin() as conn:
        collection = await conn.insert(
            S.collections.insert()
            .values(project_id=pid, name="K", created_at=moment, updated_at=moment)
            .returning(S.collections.c.id)
        )
        entry = await conn.insert(
            S.template_variables.insert()
            .values(
                collection_id=collection, input_values="{}", identity_hash="h",
                created_at=moment, updated_at=moment,
            )
            .returning(S.template_variables.c.id)
        )
        await criteria.hold_entry(conn, pid, entry)
        with pytest.raises(NotFound, match="collection entry"):
            await criteria.hold_entry(conn, pid, entry + 1)
        await conn.execute(
            S.template_variables.update()
            .where(S.template_variables.c.id == entry)
            .values(deleted_at=moment)
        )
        with pytest.raises(NotFound, match="collection entry"):
            await criteria.hold_entry(conn, pid, entry)
