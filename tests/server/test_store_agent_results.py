"""The agent-result repository on SQLite and PostgreSQL: the frozen definition, trial numbers
under the (experiment, row, epoch, trial) key, two uploads of one task taking turns, what the
judge still has to rate, and the current-task check of the evaluation."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from elluminate.schemas import GenerationMetadata
from elluminate.server.store import agent_results as store
from elluminate.server.store import collections, entries, experiments, projects
from elluminate.server.store import responses as responses_store
from elluminate.server.store.columns import ColumnSpec
from elluminate.server.store.connection import UniqueViolation
from elluminate.server.store.criteria import add_criteria
from elluminate.server.store.criteria import create_set as create_criterion_set
from elluminate.server.store.database import Database
from elluminate.server.store.responses import Outcome


@pytest.fixture(params=["sqlite", "postgres"])
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    if request.param == "sqlite":
        database = Database(tmp_path / "agents.db")
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
async def setup(db: Any) -> dict[str, Any]:
    """An AGENTIC collection with two tasks, a criterion set and an AGENTIC experiment."""
    from elluminate.schemas import CriterionIn

    async with db.begin() as conn:
        await projects.bootstrap(conn, api_key="test-key-0123456789")
        pid: int = await conn.fetchval(projects.DEFAULT_PROJECT)
        cid = await collections.create_collection(
            conn,
            pid,
            name="Tasks",
            description="",
            read_only=False,
            collection_type="AGENTIC",
            environment_config=None,
            columns=[ColumnSpec("task")],
        )
        collection = await collections.collection_row(conn, pid, cid)
        rows = await entries.insert_entries(
            conn, collection, [({"task": "a"}, None), ({"task": "b"}, None)]
        )
        set_id = await create_criterion_set(conn, pid, "C", [])
        await add_criteria(
            conn,
            pid,
            set_id,
            [
                CriterionIn(criterion_str="Is {{task}} done?", label="done"),
                CriterionIn(criterion_str="Clean?"),
            ],
        )
        exp_id = await experiments.add(
            conn,
            pid,
            name="E",
            description="",
            prompt_template_id=None,
            collection_id=cid,
            criterion_set_id=set_id,
            llm_config_id=None,
            rating_version="mock",
            rating_mode="detailed",
            n_epochs=1,
            generation_params=None,
            response_column_id=None,
            evaluation_mode="AGENTIC",
            agent_config=None,
            evaluation_agent_config=None,
        )
        definition = await store.freeze_definition(conn, exp_id, cid, set_id)
    return {"pid": pid, "rows": rows, "experiment": exp_id, "definition": definition}


async def _trial(conn: Any, setup: dict[str, Any], row: int, trial: int) -> int:
    prompt = await responses_store.insert_prompt(
        conn, setup["pid"], setup["experiment"], None, row, []
    )
    return await store.insert_trial(
        conn,
        setup["pid"],
        setup["experiment"],
        store.StoredTrial(
            row_id=row,
            epoch=1,
            trial=trial,
            prompt_id=prompt,
            messages=[{"role": "assistant", "content": "done"}],
            error=None,
            metadata=GenerationMetadata(input_tokens=3),
            trajectory='{"schema_version": "ATIF-v1.4"}',
            reward=1.0,
            steps=4,
            cost_usd=0.5,
            result_metadata={"k": "v"},
        ),
    )


async def test_the_definition_is_frozen_with_rendered_criteria(
    db: Any, setup: dict[str, Any]
) -> None:
    definition = setup["definition"]
    assert [t["task_name"] for t in definition["tasks"]] == ["a", "b"]
    first = definition["tasks"][0]["criteria"]
    assert [c["rendered_criterion_str"] for c in first] == ["Is a done?", "Clean?"]
    assert [c["label"] for c in first][0] == "done"
    async with db.connect() as conn:
        exp = await experiments.get(conn, setup["pid"], setup["experiment"])
        assert store.definition_of(exp) == definition


async def test_trials_append_and_the_key_holds(db: Any, setup: dict[str, Any]) -> None:
    row = setup["rows"][0]
    async with db.begin() as conn:
        trials = await store.next_trials(conn, setup["experiment"], 1, [row])
        assert trials == {row: 0}
        await _trial(conn, setup, row, 0)
        await _trial(conn, setup, row, 1)
        assert await store.next_trials(conn, setup["experiment"], 1, [row]) == {row: 2}
        assert await store.next_trials(conn, setup["experiment"], 2, [row]) == {row: 0}
    with pytest.raises(UniqueViolation):
        async with db.begin() as conn:
            await _trial(conn, setup, row, 1)


async def test_two_uploads_of_one_task_take_turns(db: Any, setup: dict[str, Any]) -> None:
    row = setup["rows"][0]
    numbers: list[int] = []
    first_in = asyncio.Event()

    async def upload(first: bool) -> None:
        if not first:
            await first_in.wait()
        async with db.begin() as conn:
            await experiments.get(conn, setup["pid"], setup["experiment"], lock=True)
            if first:
                first_in.set()
                await asyncio.sleep(0.1)
            trial = (await store.next_trials(conn, setup["experiment"], 1, [row]))[row]
            await _trial(conn, setup, row, trial)
            numbers.append(trial)

    await asyncio.gather(upload(True), upload(False))
    assert numbers == [0, 1]


async def test_pending_lists_what_the_judge_still_rates(db: Any, setup: dict[str, Any]) -> None:
    rows = setup["rows"]
    async with db.begin() as conn:
        rated = await _trial(conn, setup, rows[0], 0)
        other = await _trial(conn, setup, rows[1], 0)
        done_id = setup["definition"]["tasks"][0]["criteria"][0]["criterion_id"]
        await responses_store.store_ratings(conn, setup["pid"], rated, [Outcome(done_id, "YES")])
    async with db.connect() as conn:
        todo = await store.pending(conn, setup["experiment"], setup["definition"], [rated, other])
        assert [(p.response_id, len(p.criteria)) for p in todo] == [(rated, 1), (other, 2)]
        assert todo[0].trajectory == {"schema_version": "ATIF-v1.4"}
        assert await store.rated_criteria(conn, rated) == {done_id}
        assert await store.response_ids(conn, setup["experiment"]) == [rated, other]


async def test_the_current_task_check(db: Any, setup: dict[str, Any]) -> None:
    async with db.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO tasks (id, kind, project_id, experiment_id, created_at) "
                "VALUES ('t1', 'experiment', :p, :e, :ts)"
            ),
            {"p": setup["pid"], "e": setup["experiment"], "ts": _now(db)},
        )
        await experiments.start_run(conn, setup["experiment"], "t1")
    async with db.begin() as conn:
        assert await store.is_current_task(conn, setup["experiment"], "t1")
        assert not await store.is_current_task(conn, setup["experiment"], "t2")
        assert await store.latest_task(conn, setup["experiment"]) == "t1"


def _now(db: Any) -> Any:
    from elluminate.server.store.database import to_text, utcnow

    return utcnow() if db.dialect_name == "postgresql" else to_text(utcnow())
