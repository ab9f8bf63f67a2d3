"""The scenario-set repository on SQLite and PostgreSQL: the backing collection, field
changes rewriting the scenarios, skip_existing with defaults, deletes of sets in use, and the
name space shared with collections under concurrent writers."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text

from elluminate.server.api.collection_rules import check_collection_name
from elluminate.server.api.errors import HTTPError
from elluminate.server.store import projects
from elluminate.server.store import scenarios as store
from elluminate.server.store import schema as S
from elluminate.server.store.database import Database
from elluminate.server.store.namespace import collection_named


@pytest.fixture(params=["sqlite", "postgres"])
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    if request.param == "sqlite":
        database = Database(tmp_path / "scenarios.db")
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
    async with db.begin() as conn:
        await projects.bootstrap(conn, api_key="test-key-0123456789")
        project: int = await conn.fetchval(projects.DEFAULT_PROJECT)
    return project


async def new_set(
    db: Any, pid: int, name: str = "S", fields: tuple[str, ...] = ("persona",)
) -> Any:
    async with db.begin() as conn:
        await store.check_name_free(conn, pid, name)
        set_id = await store.create_set(conn, pid, name=name, description="", fields=fields)
        return await store.set_row(conn, pid, set_id)


def row(goal: str, outcome: str = "o", **fields: Any) -> dict[str, Any]:
    return {"goal": goal, "expected_conversation_outcome": outcome, **fields}


async def test_scenarios_live_in_a_hidden_backing_collection(db: Any, pid: int) -> None:
    sset = await new_set(db, pid)
    async with db.begin() as conn:
        ids = await store.add_scenarios(conn, sset, [row("a", persona=3), row("b")])
    async with db.connect() as conn:
        backing = await store.backing_collection(conn, sset)
        assert backing["deleted_at"] is not None and bool(backing["read_only"])
        assert await collection_named(conn, pid, "S") is None
        (built,) = await store.set_structs(conn, [sset])
        assert built.scenarios_count == 2 and [f.name for f in built.fields] == ["persona"]
        first = store.scenario_struct(await store.scenario_row(conn, sset, ids[0]))
        assert first.field_values == {"persona": "3"}  # stored as text
        assert store.scenario_struct(await store.scenario_row(conn, sset, ids[1])).field_values == {
            "persona": ""
        }


async def test_field_changes_rewrite_every_scenario(db: Any, pid: int) -> None:
    sset = await new_set(db, pid)
    async with db.begin() as conn:
        (sid,) = await store.add_scenarios(conn, sset, [row("a", persona="calm")])
        locale = await store.add_field(conn, sset, "locale", "de")
        await store.rename_field(conn, sset, locale["id"], "language")
    async with db.connect() as conn:
        got = store.scenario_struct(await store.scenario_row(conn, sset, sid))
        assert got.field_values == {"persona": "calm", "language": "de"}
    async with db.begin() as conn:
        persona = (await store.declared_fields(conn, sset["collection_id"]))[0]
        await store.delete_field(conn, sset, persona["id"])
    async with db.connect() as conn:
        got = store.scenario_struct(await store.scenario_row(conn, sset, sid))
        assert got.field_values == {"language": "de"} and got.goal == "a"


async def test_skip_existing_compares_with_defaults(db: Any, pid: int) -> None:
    sset = await new_set(db, pid)
    async with db.begin() as conn:
        await store.add_scenarios(conn, sset, [row("a")])
        new = await store.add_scenarios(
            conn, sset, [row("a", persona=""), row("b"), row("b")], skip_existing=True
        )
        assert len(new) == 1
        assert await store.scenario_count(conn, sset) == 2


async def test_a_set_used_by_an_experiment_is_hidden_not_deleted(db: Any, pid: int) -> None:
    used, unused = await new_set(db, pid, "Used"), await new_set(db, pid, "Unused")
    from elluminate.server.store import experiments
    from elluminate.server.store.criteria import create_set as create_criterion_set

    async with db.begin() as conn:
        cset = await create_criterion_set(conn, pid, "C", [])
        await experiments.add(
            conn,
            pid,
            name="E",
            description="",
            prompt_template_id=None,
            collection_id=used["collection_id"],
            criterion_set_id=cset,
            llm_config_id=None,
            rating_version="v1",
            rating_mode="detailed",
            n_epochs=1,
            generation_params=None,
            response_column_id=None,
            evaluation_mode="MULTI_TURN",
            agent_config=None,
            evaluation_agent_config=None,
        )
        await conn.execute(
            text("UPDATE experiments SET scenario_set_id = :s WHERE name = 'E'"), {"s": used["id"]}
        )
    async with db.begin() as conn:
        await store.delete_set(conn, await store.set_row(conn, pid, used["id"], lock=True))
        await store.delete_set(conn, await store.set_row(conn, pid, unused["id"], lock=True))
    async with db.connect() as conn:
        left = await conn.fetchall(select(S.scenario_sets.c.id, S.scenario_sets.c.deleted_at))
        assert [(r[0], r[1] is not None) for r in left] == [(used["id"], True)]
        gone = select(S.collections.c.id).where(S.collections.c.id == unused["collection_id"])
        assert await conn.fetchval(gone) is None


async def test_a_collection_racing_a_scenario_set_for_a_name_loses(db: Any, pid: int) -> None:
    made = asyncio.Event()
    outcome: dict[str, Any] = {}

    async def make_set() -> None:
        async with db.begin() as conn:
            await store.check_name_free(conn, pid, "Same")
            await store.create_set(conn, pid, name="Same", description="", fields=[])
            made.set()
            await _wait_until_blocked(db)

    async def make_collection() -> None:
        await made.wait()
        async with db.begin() as conn:
            with pytest.raises(HTTPError) as info:
                await check_collection_name(conn, pid, "Same")
            outcome["status"] = info.value.status

    await asyncio.gather(make_set(), make_collection())
    assert outcome["status"] == 400


async def _wait_until_blocked(db: Any) -> None:
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
