"""The web viewer's queries (``store/ui_queries.py``) and its adapter (``ui/data/``) on
SQLite and PostgreSQL.

The viewer's HTTP and browser tests run on SQLite (the embedded server); these call the
query functions directly on both databases with data written through the repositories: an
experiment with YES, NO, failed and missing ratings and a failed generation, a second
experiment, LIKE searches with ``%`` and ``_``, another project's objects that must stay
invisible. Expected answers are computed in Python from what was written.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from elluminate.schemas import CriterionIn
from elluminate.server.store import (
    collections,
    criteria,
    entries,
    projects,
    responses,
    tasks,
    templates,
)
from elluminate.server.store import experiments as experiment_store
from elluminate.server.store import ui_queries as q
from elluminate.server.store.columns import ColumnSpec
from elluminate.server.store.database import Database, utcnow
from elluminate.server.store.errors import NotFound
from elluminate.server.store.responses import Outcome


@pytest.fixture(params=["sqlite", "postgres"])
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    """The store on each database (PostgreSQL: a new database, see tests/conftest.py)."""
    if request.param == "sqlite":
        database = Database(tmp_path / "ui.db")
        database.open()
        yield database
        database.close()
        return
    from elluminate.server.store.postgres import PostgresDatabase

    pg = PostgresDatabase(request.getfixturevalue("postgres_url"))
    await pg.open()
    yield pg
    await pg.close()


#: Each row's verdicts on criteria (clear?, short?): "YES", "NO", None (failed rating) or
#: missing (not rated); ``"error"`` is a failed generation (no ratings).
ROWS: list[Any] = [
    ("YES", "YES"),
    ("YES", "NO"),
    ("NO", None),
    ("YES",),
    (),
    "error",
    ("NO", "NO"),
]


@dataclass
class World:
    pid: int
    other_pid: int
    template_ids: list[int]  # versions 1 and 2 of "Explain"
    collection_id: int
    set_id: int
    criterion_ids: list[int]
    experiment_ids: dict[str, int] = field(default_factory=dict)
    response_ids: list[int] = field(default_factory=list)  # of "main", in row order
    entry_ids: list[int] = field(default_factory=list)
    other_response: int = 0


def _template_fields(content: str) -> dict[str, Any]:
    return {
        "messages": [{"role": "user", "content": content}],
        "placeholders": ["topic"],
        "response_format": None,
        "tools": None,
        "tool_choice": None,
        "content_hash": f"hash of {content}",
        "parent_id": None,
    }


async def _experiment(conn: Any, pid: int, name: str, template_id: int, w: World) -> int:
    return await experiment_store.add(
        conn,
        pid,
        name=name,
        description="",
        prompt_template_id=template_id,
        collection_id=w.collection_id,
        criterion_set_id=w.set_id,
        llm_config_id=None,
        rating_version=None,
        rating_mode="detailed",
        n_epochs=1,
        generation_params=None,
        response_column_id=None,
        evaluation_mode="STANDARD",
        agent_config=None,
        evaluation_agent_config=None,
    )


async def _answer(
    conn: Any, pid: int, experiment_id: int, template: Any, entry_id: int, row: Any, w: World
) -> int:
    prompt = await responses.insert_prompt(
        conn, pid, experiment_id, template, entry_id, [{"role": "user", "content": "q"}]
    )
    response_id = await responses.insert_response(
        conn,
        pid,
        experiment_id,
        prompt,
        row_id=entry_id,
        epoch=1,
        messages=[{"role": "assistant", "content": "a"}],
        metadata=None,
        error="generation failed" if row == "error" else None,
        llm_config_id=None,
    )
    if row != "error":
        outcomes = [
            Outcome(cid, rating=verdict, error=None if verdict else "judge broke", raw_text="?")
            for cid, verdict in zip(w.criterion_ids, row, strict=False)
        ]
        await responses.store_ratings(conn, pid, response_id, outcomes)
    return response_id


@pytest.fixture
async def world(db: Any) -> World:
    async with db.begin() as conn:
        await projects.bootstrap(conn, api_key="test-key-0123456789")
        pid: int = await conn.fetchval(projects.DEFAULT_PROJECT)
        org = (
            await conn.fetchone(
                projects.PRINCIPAL, {"hash": projects.hash_key("test-key-0123456789")}
            )
        )["organization_id"]
        other_pid = await projects.create_project(conn, org, "other", "", False)
        v1, _ = await templates.create_template(conn, pid, "Explain", **_template_fields("a"))
        v2, _ = await templates.create_template(conn, pid, "Explain", **_template_fields("b"))
        await templates.create_template(conn, pid, "Unused", **_template_fields("c"))
        collection_id = await collections.create_collection(
            conn,
            pid,
            name="Topics",
            description="",
            read_only=False,
            collection_type="STANDARD",
            environment_config=None,
            columns=[ColumnSpec("topic")],
        )
        collection = await collections.collection_row(conn, pid, collection_id, lock=True)
        entry_ids = await entries.insert_entries(
            conn, collection, [({"topic": f"t{i}"}, None) for i in range(len(ROWS) + 1)]
        )
        set_id = await criteria.create_set(
            conn,
            pid,
            "Quality",
            [CriterionIn(criterion_str="clear?"), CriterionIn(criterion_str="short?")],
        )
        criterion_ids = await criteria.set_criterion_ids(conn, set_id)
        w = World(pid, other_pid, [v1, v2], collection_id, set_id, criterion_ids)
        w.entry_ids = entry_ids
        for name, template_id in (("main", v1), ("50% off", v2), ("a_b", v2), ("axb", v1)):
            w.experiment_ids[name] = await _experiment(conn, pid, name, template_id, w)
        template = await templates.live_template(conn, pid, v1)
        for entry_id, row in zip(entry_ids, ROWS, strict=False):
            w.response_ids.append(
                await _answer(conn, pid, w.experiment_ids["main"], template, entry_id, row, w)
            )
        # the second experiment answers the first row only, all YES
        await _answer(
            conn, pid, w.experiment_ids["50% off"], template, entry_ids[0], ("YES", "YES"), w
        )
        # another project's experiment (same ids space): never visible from ``pid``
        other_collection = await collections.create_collection(
            conn,
            other_pid,
            name="Topics",
            description="",
            read_only=False,
            collection_type="STANDARD",
            environment_config=None,
            columns=[ColumnSpec("topic")],
        )
        locked = await collections.collection_row(conn, other_pid, other_collection, lock=True)
        (other_entry,) = await entries.insert_entries(conn, locked, [({"topic": "x"}, None)])
        other_set = await criteria.create_set(
            conn, other_pid, "Q", [CriterionIn(criterion_str="ok?")]
        )
        other_exp = await experiment_store.add(
            conn,
            other_pid,
            name="main",
            description="",
            prompt_template_id=None,
            collection_id=other_collection,
            criterion_set_id=other_set,
            llm_config_id=None,
            rating_version=None,
            rating_mode="detailed",
            n_epochs=1,
            generation_params=None,
            response_column_id=None,
            evaluation_mode="STANDARD",
            agent_config=None,
            evaluation_agent_config=None,
        )
        prompt = await responses.insert_prompt(conn, other_pid, other_exp, None, other_entry, [])
        w.other_response = await responses.insert_response(
            conn,
            other_pid,
            other_exp,
            prompt,
            row_id=other_entry,
            epoch=1,
            messages=[],
            metadata=None,
            error=None,
            llm_config_id=None,
        )
    return w


# ---- experiments ----------------------------------------------------------------------------


async def test_experiment_list_filters_and_pages(db: Any, world: World) -> None:
    e = world.experiment_ids
    newest_first = [e["axb"], e["a_b"], e["50% off"], e["main"]]
    async with db.connect() as conn:
        page = await q.experiments_page(conn, world.pid, limit=2)
        assert [r["id"] for r in page.rows] == newest_first[:2] and page.total == 4
        page = await q.experiments_page(conn, world.pid, offset=2, limit=2)
        assert [r["id"] for r in page.rows] == newest_first[2:]
        # LIKE wildcards match themselves: "a_b" is not "axb", "%" is not "anything"
        # and the search ignores case on both databases
        for search, expected in (
            ("_", ["a_b"]),
            ("%", ["50% off"]),
            ("A_B", ["a_b"]),
            ("X", ["axb"]),
        ):
            page = await q.experiments_page(conn, world.pid, name_search=search)
            assert [r["name"] for r in page.rows] == expected, search
        page = await q.experiments_page(conn, world.pid, template_name="Explain")
        assert page.total == 4  # every version of the template
        page = await q.experiments_page(conn, world.pid, template_name="Unused")
        assert page.total == 0 and page.rows == []
        page = await q.experiments_page(
            conn, world.pid, collection_id=world.collection_id, name_search="b"
        )
        assert [r["name"] for r in page.rows] == ["axb", "a_b"]
        assert (await q.experiments_page(conn, world.other_pid)).total == 1
        names, used = await q.experiment_filter_options(conn, world.pid)
        assert names == ["Explain"] and used == [(world.collection_id, "Topics")]
        choices = await q.experiment_choices(conn, world.pid)
        assert [c[0] for c in choices] == newest_first
        using = await q.experiments_using(
            conn, world.pid, "prompt_template_id", world.template_ids[1]
        )
        assert using == [(e["a_b"], "a_b"), (e["50% off"], "50% off")]
        assert (
            await q.experiments_using(conn, world.other_pid, "collection_id", world.collection_id)
            == []
        )
        assert (
            len(await q.experiments_using(conn, world.pid, "criterion_set_id", world.set_id)) == 4
        )


async def test_counts_follow_the_results_definitions(db: Any, world: World) -> None:
    e = world.experiment_ids
    yes = sum(row.count("YES") for row in ROWS if row != "error")
    no = sum(row.count("NO") for row in ROWS if row != "error")
    async with db.connect() as conn:
        counts = await q.experiment_counts(conn, [e["main"], e["50% off"], e["a_b"]])
    assert counts[e["main"]] == q.ExperimentCounts(len(ROWS), 1, yes, no)
    assert counts[e["50% off"]] == q.ExperimentCounts(1, 0, 2, 0)
    assert counts[e["a_b"]] == q.ExperimentCounts()


async def test_latest_task_of_each_experiment(db: Any, world: World) -> None:
    e = world.experiment_ids
    moment = utcnow()
    async with db.begin() as conn:
        for task_id, experiment_id, status, kind, offset in (
            ("t-old", e["main"], "FAILURE", "experiment", 0),
            ("t-new", e["main"], "SUCCESS", "experiment", 1),
            ("t-batch", e["main"], "STARTED", "rating_batch", 2),  # another kind: not a run
            ("t-other", e["a_b"], "REVOKED", "experiment", 0),
        ):
            await tasks.add_task(
                conn,
                task_id=task_id,
                kind=kind,
                project_id=world.pid,
                experiment_id=experiment_id,
                status=status,
                error_msg=f"{task_id} message",
                payload=None,
                created_at=moment + timedelta(seconds=offset),
                finished_at=None,
            )
    async with db.connect() as conn:
        latest = await q.latest_tasks(conn, [e["main"], e["a_b"], e["axb"]])
        assert await q.latest_tasks(conn, []) == {}
    assert latest == {
        e["main"]: q.TaskSummary("t-new", "SUCCESS", "t-new message"),
        e["a_b"]: q.TaskSummary("t-other", "REVOKED", "t-other message"),
    }


# ---- responses ------------------------------------------------------------------------------


def _expected(criterion: int | None, verdict: q.Verdict | None, failed_only: bool) -> list[int]:
    """The rows (indexes into ROWS) a response filter keeps, computed from ROWS."""
    out = []
    for i, row in enumerate(ROWS):
        verdicts = [] if row == "error" else list(row)
        if criterion is not None:
            verdicts = verdicts[criterion : criterion + 1]
        wanted = {"yes": "YES", "no": "NO", "failed": None}
        if verdict == "unrated":
            keep = not verdicts
        elif verdict is not None:
            keep = wanted[verdict] in verdicts
        else:
            keep = criterion is None or bool(verdicts)
        if keep and (not failed_only or row == "error"):
            out.append(i)
    return out


@pytest.mark.parametrize("failed_only", [False, True])
async def test_response_filters_match_the_stored_verdicts(
    db: Any, world: World, failed_only: bool
) -> None:
    main = world.experiment_ids["main"]
    async with db.connect() as conn:
        for criterion in (None, 0, 1):
            for verdict in (None, *q.VERDICTS):
                page = await q.response_page(
                    conn,
                    world.pid,
                    main,
                    criterion_id=None if criterion is None else world.criterion_ids[criterion],
                    verdict=verdict,
                    failed_only=failed_only,
                    limit=100,
                )
                expected = [
                    world.response_ids[i] for i in _expected(criterion, verdict, failed_only)
                ]
                assert [r["id"] for r in page.rows] == expected, (criterion, verdict)
                assert page.total == len(expected)
        # pages in id order, the total over all pages; another project sees nothing
        page = await q.response_page(conn, world.pid, main, offset=2, limit=3)
        assert [r["id"] for r in page.rows] == world.response_ids[2:5] and page.total == len(ROWS)
        assert page.rows[0]["p_tv_id"] == world.entry_ids[2]
        assert (await q.response_page(conn, world.other_pid, main)).total == 0


async def test_responses_by_id_failed_ratings_and_verdict_rows(db: Any, world: World) -> None:
    main = world.experiment_ids["main"]
    ids = world.response_ids
    async with db.connect() as conn:
        found = await q.responses_by_ids(conn, world.pid, [ids[3], ids[0], world.other_response])
        assert [r["id"] for r in found] == [ids[0], ids[3]]  # id order, own project only
        assert await q.responses_by_ids(conn, world.pid, []) == []
        failed = await q.failed_ratings_of(conn, ids)
        assert failed == [q.FailedRating(ids[2], world.criterion_ids[1], "judge broke", "?")]
        rows = [tuple(r) for r in await q.verdict_rows(conn, world.pid, main)]
        assert await q.verdict_rows(conn, world.other_pid, main) == []
    expected = []
    for i, row in enumerate(ROWS):
        verdicts = [] if row == "error" else list(row)
        if not verdicts:
            expected.append((ids[i], world.entry_ids[i], 1, row == "error", None, None))
        for cid, verdict in zip(world.criterion_ids, verdicts, strict=False):
            expected.append((ids[i], world.entry_ids[i], 1, False, cid, verdict))
    assert [(r[0], r[1], r[2], bool(r[3]), r[4], r[5]) for r in rows] == expected


# ---- templates, collections, criterion sets -----------------------------------------------


async def test_templates_collections_and_sets(db: Any, world: World) -> None:
    async with db.connect() as conn:
        names = await q.template_names(conn, world.pid)
        versions = await q.template_versions(conn, world.pid, "Explain")
        sets = await q.criterion_sets(conn, world.pid)
        listed = await q.collections(conn, world.pid)
        assert await q.template_names(conn, world.other_pid) == []
    assert [(n.name, n.versions, n.latest_version) for n in names] == [
        ("Explain", 2, 2),
        ("Unused", 1, 1),
    ]
    assert names[0].latest_id == world.template_ids[1]
    assert names[0].updated_at.tzinfo is not None
    assert [v["id"] for v in versions] == world.template_ids
    assert [s["name"] for s in sets] == ["Quality"]
    assert [c["id"] for c in listed] == [world.collection_id]
    async with db.begin() as conn:
        await entries.delete_entry(conn, world.entry_ids[1])
    async with db.connect() as conn:
        page = await q.collection_entries_page(conn, world.pid, world.collection_id, limit=3)
        live = [i for i in world.entry_ids if i != world.entry_ids[1]]
        assert [r["id"] for r in page.rows] == live[:3] and page.total == len(live)
        page = await q.collection_entries_page(
            conn, world.pid, world.collection_id, offset=3, limit=100
        )
        assert [r["id"] for r in page.rows] == live[3:]
        other = await q.collection_entries_page(conn, world.other_pid, world.collection_id)
        assert other.total == 0 and other.rows == []


# ---- the viewer's adapter on both databases ---------------------------------------------


async def test_the_viewer_adapter_builds_every_page_on_both_databases(
    db: Any, world: World, tmp_path: Path
) -> None:
    """``ui/data/`` over the read model, the queries and the (not started) engine: what
    the pages show, on each database."""
    from elluminate.server import ServerConfig
    from elluminate.server.engine.engine import TaskEngine
    from elluminate.server.ui import data

    engine = TaskEngine(db, ServerConfig(db_path=tmp_path / "unused.db"), handlers={})
    source = data.Source(db, engine, world.pid)
    e = world.experiment_ids
    rated = [v for row in ROWS if row != "error" for v in row if v is not None]
    assert (await data.project(source)).name == "Default project"
    assert await data.authenticate_key(db, "test-key-0123456789") is not None
    assert await data.authenticate_key(db, "wrong") is None

    detail = await data.experiment_detail(source, e["main"])
    assert (detail.responses, detail.failed) == (len(ROWS), 1)
    assert detail.pass_rate == pytest.approx(rated.count("YES") / len(rated))
    assert [c.id for c in detail.criteria] == world.criterion_ids
    assert detail.status.value == data.NOT_RUN and detail.progress is None
    page = await data.response_page(source, e["main"], data.ResponseFilters(), 1, 50)
    assert [r.id for r in page.items] == world.response_ids and page.total == len(ROWS)
    cells = page.items[2].ratings  # ("NO", failed rating)
    assert [cells[cid].verdict for cid in world.criterion_ids] == ["no", "failed"]
    assert cells[world.criterion_ids[1]].error == "judge broke"
    assert page.items[5].error == "generation failed" and page.items[4].ratings == {}

    # a run in progress: its state and log come from the database
    async with db.begin() as conn:
        await tasks.add_task(
            conn,
            task_id="live-1",
            kind="experiment",
            project_id=world.pid,
            experiment_id=e["a_b"],
            status="STARTED",
            error_msg=None,
            payload=None,
            created_at=utcnow(),
            finished_at=None,
        )
        await tasks.set_total(conn, "live-1", 8)
        await tasks.add_progress(conn, "live-1", 3, 5)
        await tasks.append_line(conn, "live-1", "[00:00:00] generating\n")
        await experiment_store.start_run(conn, e["a_b"], "live-1")
    running = await data.experiment_detail(source, e["a_b"])
    assert running.status.value == "STARTED" and running.can_cancel and not running.can_retry
    assert running.progress is not None
    assert (running.progress.completed_responses, running.progress.total_responses) == (3, 8)
    assert running.progress.completed_ratings == 5
    assert running.progress.logs == "[00:00:00] generating\n"
    listed, options = await data.experiment_list(source, data.ExperimentFilters(), 1, 25)
    by_id = {item.experiment.id: item for item in listed.items}
    assert listed.total == 4 and by_id[e["a_b"]].progress is not None
    assert by_id[e["main"]].responses == len(ROWS) and by_id[e["main"]].failed == 1
    assert by_id[e["main"]].pass_rate == pytest.approx(detail.pass_rate)
    assert options.templates == ["Explain"]
    found, _ = await data.experiment_list(source, data.ExperimentFilters(name="50%"), 1, 25)
    assert [i.experiment.name for i in found.items] == ["50% off"]

    comparison = await data.compare(source, e["main"], e["50% off"], 1, 20)
    assert (comparison.matched, comparison.only_a, comparison.only_b) == (1, len(ROWS) - 1, 0)
    assert comparison.rows.total == 0  # row 0 is YES/YES in both
    comparison = await data.compare(source, e["main"], e["main"], 1, 20)
    assert comparison.matched == len(ROWS) and comparison.rows.total == 0

    names = await data.template_list(source)
    assert [(t.name, t.versions) for t in names] == [("Explain", 2), ("Unused", 1)]
    template = await data.template_detail(
        source, world.template_ids[1], world.template_ids[0], world.template_ids[1]
    )
    assert [v.version for v in template.versions] == [1, 2]
    changed = [(line.kind, line.text) for line in template.diff if line.kind in ("remove", "add")]
    assert changed == [("remove", "a"), ("add", "b")]
    assert {name for _, name in template.experiments} == {"50% off", "a_b"}
    collection = await data.collection_detail(source, world.collection_id, 1, 50)
    assert collection.columns == ["topic"] and collection.entries.total == len(ROWS) + 1
    assert [c.name for c in await data.collection_list(source)] == ["Topics"]
    sets = await data.criterion_set_list(source)
    assert [s.name for s in sets] == ["Quality"]
    cset = await data.criterion_set_detail(source, world.set_id)
    assert len(cset.experiments) == 4
    assert await data.experiment_choices(source) == [
        (e[n], n) for n in ("axb", "a_b", "50% off", "main")
    ]
    # another project's objects are not found
    other = data.Source(db, engine, world.other_pid)
    for call in (
        data.experiment_detail(other, e["main"]),
        data.response_page(other, e["main"], data.ResponseFilters(), 1, 50),
        data.collection_detail(other, world.collection_id, 1, 50),
        data.template_detail(other, world.template_ids[0], None, None),
        data.criterion_set_detail(other, world.set_id),
        data.experiment_exists(other, e["main"]),
    ):
        with pytest.raises(NotFound):
            await call
