"""The sample, comparison, map and stats repositories on SQLite and PostgreSQL.

The rows are written directly (timestamps, metadata, trajectories and failed ratings that the
API cannot set freely), and every expected figure is worked out by hand in the comments.

Data (criteria c1, c2; collection rows r1..r4 with column ``cat`` = a, b, a, b):

====  =====================================  ==========================================
row   experiment A (epoch 1, LLM config L)   experiment B (no LLM config)
====  =====================================  ==========================================
r1    c1 YES, c2 YES; 10/5 tokens, 1.0 s     e1: c1 YES, c2 NO; e2: c1 YES, c2 YES
r2    c1 YES, c2 NO;  20/8 tokens, 2.0 s     e1: YES, YES; e2: YES, YES (trajectory)
r3    generation error (no metadata)         e1: c1 YES, c2 failed rating
r4    c1 NO,  c2 NO;  30/3 tokens, 0.5 s,    (no response)
      annotated
====  =====================================  ==========================================
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert

from elluminate.schemas import ResponsesSampleSortBy
from elluminate.server.store import experiment_map, projects, samples, stats
from elluminate.server.store import schema as S
from elluminate.server.store.database import Database, dumps, utcnow
from elluminate.server.store.experiments import get as experiment_row

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=timezone.utc)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)


@pytest.fixture(params=["sqlite", "postgres"])
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    """The store on each database (PostgreSQL: a new database, see tests/conftest.py)."""
    if request.param == "sqlite":
        database = Database(tmp_path / "views.db")
        database.open()
        yield database
        database.close()
        return
    from elluminate.server.store.postgres import PostgresDatabase

    pg = PostgresDatabase(request.getfixturevalue("postgres_url"))
    await pg.open()
    yield pg
    await pg.close()


class Builder:
    """Inserts rows with the columns the views read (everything else: minimal values)."""

    def __init__(self, conn: Any, pid: int) -> None:
        self.conn = conn
        self.pid = pid

    async def add(self, table: Any, **values: Any) -> int:
        new_id: int = await self.conn.insert(insert(table).values(**values).returning(table.c.id))
        return new_id

    async def response(
        self,
        experiment_id: int,
        row_id: int,
        *,
        epoch: int = 1,
        ratings: tuple[tuple[int, str | None], ...] = (),
        tokens: tuple[int, int] | None = None,
        duration: float | None = None,
        error: str | None = None,
        created_at: datetime | None = None,
        llm_config_id: int | None = None,
        annotation: str = "",
        trajectory: Any = None,
        pid: int | None = None,
    ) -> int:
        moment = created_at or utcnow()
        pid = self.pid if pid is None else pid
        prompt = await self.add(
            S.prompts, project_id=pid, experiment_id=experiment_id,
            template_variables_id=row_id, messages="[]", created_at=moment,
        )
        response = await self.add(
            S.responses, project_id=pid, experiment_id=experiment_id, prompt_id=prompt,
            template_variables_id=row_id, epoch=epoch, messages="[]", error=error,
            llm_config_id=llm_config_id, annotation=annotation,
            input_tokens=None if tokens is None else tokens[0],
            output_tokens=None if tokens is None else tokens[1],
            duration_seconds=duration, trajectory=dumps(trajectory),
            created_at=moment, updated_at=moment,
        )
        for criterion_id, verdict in ratings:
            await self.add(
                S.ratings, project_id=pid, response_id=response, criterion_id=criterion_id,
                rating=verdict, error=None if verdict else "judge failed", created_at=moment,
            )
        return response


@pytest.fixture
async def data(db: Any) -> dict[str, Any]:
    """The rows of the module docstring; returns their ids."""
    async with db.begin() as conn:
        await projects.bootstrap(conn, api_key="test-key-0123456789")
        pid: int = await conn.fetchval(projects.DEFAULT_PROJECT)
        b = Builder(conn, pid)
        now = utcnow()
        org = await conn.fetchval(projects.FIRST_ORGANIZATION)
        other = await projects.create_project(conn, org, "other", "", False)
        coll = await b.add(S.collections, project_id=pid, name="C", created_at=now, updated_at=now)
        await b.add(S.collection_columns, collection_id=coll, name="cat", column_type="category")
        rows = [
            await b.add(
                S.template_variables, collection_id=coll, input_values=dumps({"cat": cat}),
                identity_hash=cat + str(i), created_at=now, updated_at=now,
            )
            for i, cat in enumerate("abab")
        ]
        cset = await b.add(S.criterion_sets, project_id=pid, name="S", created_at=now,
                           updated_at=now)
        c1, c2 = [
            await b.add(S.criteria, project_id=pid, criterion_str=text, created_at=now)
            for text in ("c1", "c2")
        ]
        llm = await b.add(
            S.llm_configs, project_id=pid, name="L", llm_model_name="m",
            input_price_per_mtok=2.0, output_price_per_mtok=10.0, created_at=now, updated_at=now,
        )
        exp = {}
        for name in ("A", "B"):
            exp[name] = await b.add(
                S.experiments, project_id=pid, name=name, collection_id=coll,
                criterion_set_id=cset, created_at=now, updated_at=now,
            )
        r1, r2, r3, r4 = rows
        a, bb = exp["A"], exp["B"]
        ids = {
            "a1": await b.response(a, r1, ratings=((c1, "YES"), (c2, "YES")), tokens=(10, 5),
                                   duration=1.0, llm_config_id=llm,
                                   created_at=at("2026-03-10T08:00:00")),
            "a2": await b.response(a, r2, ratings=((c1, "YES"), (c2, "NO")), tokens=(20, 8),
                                   duration=2.0, llm_config_id=llm,
                                   created_at=at("2026-03-09T23:59:59")),
            "a3": await b.response(a, r3, error="provider failed", llm_config_id=llm,
                                   created_at=at("2026-03-04T00:00:00")),
            "a4": await b.response(a, r4, ratings=((c1, "NO"), (c2, "NO")), tokens=(30, 3),
                                   duration=0.5, llm_config_id=llm, annotation="check this",
                                   created_at=at("2026-03-03T23:59:59.999999")),
            "b1e1": await b.response(bb, r1, ratings=((c1, "YES"), (c2, "NO")), tokens=(1, 1),
                                     duration=3.0, created_at=at("2026-03-08T10:00:00")),
            "b1e2": await b.response(bb, r1, epoch=2, ratings=((c1, "YES"), (c2, "YES")),
                                     tokens=(2, 2), duration=4.0,
                                     created_at=at("2026-03-08T11:00:00")),
            "b2e1": await b.response(bb, r2, ratings=((c1, "YES"), (c2, "YES")),
                                     created_at=at("2026-03-08T12:00:00")),
            "b2e2": await b.response(
                bb, r2, epoch=2, ratings=((c1, "YES"), (c2, "YES")),
                trajectory={"steps": [{}, {}, {"metrics": {"cost_usd": 0.25}}],
                            "final_metrics": {"total_steps": 3}},
                created_at=at("2026-03-08T13:00:00"),
            ),
            "b3e1": await b.response(bb, r3, ratings=((c1, "YES"), (c2, None)),
                                     created_at=at("2026-03-08T14:00:00")),
        }
        # another project's response without a config, inside the window: never counted
        other_coll = await b.add(S.collections, project_id=other, name="C", created_at=now,
                                 updated_at=now)
        other_row = await b.add(S.template_variables, collection_id=other_coll,
                                input_values="{}", identity_hash="x", created_at=now,
                                updated_at=now)
        other_set = await b.add(S.criterion_sets, project_id=other, name="S", created_at=now,
                                updated_at=now)
        other_exp = await b.add(S.experiments, project_id=other, name="X",
                                collection_id=other_coll, criterion_set_id=other_set,
                                created_at=now, updated_at=now)
        await b.response(other_exp, other_row, tokens=(100, 100), duration=9.0, pid=other,
                         created_at=at("2026-03-09T00:00:00"))
    return {"pid": pid, "A": a, "B": bb, "rows": rows, "c1": c1, "c2": c2, "llm": llm,
            "other": other, **ids}


def ids_of(found: list[Any]) -> list[tuple[int, int, list[int]]]:
    return [(s.experiment_id, s.template_variables_id, s.prompt_response_ids) for s in found]


def row_order(found: list[Any], rows: list[int]) -> list[str]:
    return [f"r{rows.index(s.template_variables_id) + 1}" for s in found]


async def test_response_samples_filters_and_sorting(db: Any, data: dict[str, Any]) -> None:
    d, rows = data, data["rows"]

    async def run(experiment: str = "A", **kw: Any) -> list[Any]:
        async with db.connect() as conn:
            return await samples.response_samples(conn, d[experiment], samples.SampleFilters(**kw))

    everything = await run()
    assert ids_of(everything) == [
        (d["A"], rows[0], [d["a1"]]), (d["A"], rows[1], [d["a2"]]),
        (d["A"], rows[2], [d["a3"]]), (d["A"], rows[3], [d["a4"]]),
    ]
    assert row_order(await run(exclude_perfect=True), rows) == ["r2", "r3", "r4"]  # r1 perfect
    assert row_order(await run(annotated_only=True), rows) == ["r4"]
    assert row_order(await run(verdicts={d["c1"]: "YES"}), rows) == ["r1", "r2"]
    assert row_order(await run(verdicts={d["c1"]: "YES", d["c2"]: "NO"}), rows) == ["r2"]
    assert row_order(await run(verdicts={d["c2"]: "NO"}), rows) == ["r2", "r4"]
    # the error response r3 has no metadata: a bound excludes it
    assert row_order(await run(ranges={"input_tokens_min": 15}), rows) == ["r2", "r4"]
    assert row_order(await run(ranges={"duration_seconds_max": 1.0}), rows) == ["r1", "r4"]
    assert row_order(
        await run(ranges={"output_tokens_min": 4, "output_tokens_max": 7}), rows
    ) == ["r1"]
    # pass rates r1 1.0, r2 0.5, r3 none (last), r4 0.0
    by = ResponsesSampleSortBy
    assert row_order(await run(sort_by=by.RATING_DESC), rows) == ["r1", "r2", "r4", "r3"]
    assert row_order(await run(sort_by=by.RATING_ASC), rows) == ["r4", "r2", "r1", "r3"]
    assert row_order(await run(sort_by=by.INPUT_TOKENS_DESC), rows) == ["r4", "r2", "r1", "r3"]
    assert row_order(await run(sort_by=by.OUTPUT_TOKENS_ASC), rows) == ["r4", "r1", "r2", "r3"]
    assert row_order(await run(sort_by=by.DURATION_ASC), rows) == ["r4", "r1", "r2", "r3"]
    assert row_order(await run(sort_by=by.DURATION_DESC), rows) == ["r2", "r1", "r4", "r3"]
    # B: epochs in order; r2 is perfect (both epochs all YES), r3 has a failed rating
    b_all = await run("B")
    assert ids_of(b_all) == [
        (d["B"], rows[0], [d["b1e1"], d["b1e2"]]),
        (d["B"], rows[1], [d["b2e1"], d["b2e2"]]),
        (d["B"], rows[2], [d["b3e1"]]),
    ]
    assert row_order(await run("B", exclude_perfect=True), rows) == ["r1", "r3"]
    # only the responses that match stay in a row
    assert ids_of(await run("B", verdicts={d["c2"]: "NO"})) == [(d["B"], rows[0], [d["b1e1"]])]
    # r1 of B: mean input tokens 1.5 (1, 2); r2 and r3 have none
    assert row_order(await run("B", sort_by=by.INPUT_TOKENS_ASC), rows) == ["r1", "r2", "r3"]
    # pass rates of B: r1 3/4, r2 4/4, r3 1/1 (the failed rating is no verdict): ties by row
    assert row_order(await run("B", sort_by=by.RATING_DESC), rows) == ["r2", "r3", "r1"]


async def test_comparison_samples(db: Any, data: dict[str, Any]) -> None:
    d, rows = data, data["rows"]

    async def run(a: str = "A", b: str = "B", **kw: Any) -> list[Any]:
        async with db.connect() as conn:
            return await samples.comparison_samples(conn, d[a], d[b], **kw)

    # rows both answered: r1..r3 (B has no r4), A's sample then B's
    assert ids_of(await run()) == [
        (d["A"], rows[0], [d["a1"]]), (d["B"], rows[0], [d["b1e1"], d["b1e2"]]),
        (d["A"], rows[1], [d["a2"]]), (d["B"], rows[1], [d["b2e1"], d["b2e2"]]),
        (d["A"], rows[2], [d["a3"]]), (d["B"], rows[2], [d["b3e1"]]),
    ]
    # criteria passed per response: r1 A 2 vs B 3/2, r2 A 1 vs B 2, r3 A 0 (error) vs B 1
    assert row_order(await run(filter_samples_by="improved"), rows) == ["r2", "r2", "r3", "r3"]
    assert row_order(await run(filter_samples_by="regressed"), rows) == ["r1", "r1"]
    # swapped: the other way round
    assert row_order(await run("B", "A", filter_samples_by="regressed"), rows) == [
        "r2", "r2", "r3", "r3"
    ]
    # only c2: r1 A 1 vs B 1/2 (regressed), r2 A 0 vs B 1 (improved), r3 0 vs 0 (failed)
    c2 = [d["c2"]]
    assert row_order(await run(filter_samples_by="improved", criterion_ids=c2), rows) == [
        "r2", "r2"
    ]
    assert row_order(await run(filter_samples_by="regressed", criterion_ids=c2), rows) == [
        "r1", "r1"
    ]
    assert len(await run(criterion_ids=c2)) == 6  # no filter_samples_by: every common row
    assert await run(filter_samples_by="improved", criterion_ids=[]) == []  # nothing counts
    # categorical: cat a is r1 and r3; OR within a column
    only_a = {"cat": ["a"]}
    assert row_order(await run(categorical_filters=only_a), rows) == ["r1", "r1", "r3", "r3"]
    assert row_order(await run(filter_samples_by="improved", categorical_filters=only_a),
                     rows) == ["r3", "r3"]
    assert len(await run(categorical_filters={"cat": ["a", "b"]})) == 6
    assert await run(categorical_filters={"cat": []}) == []
    assert await run(categorical_filters={"cat": ["c"]}) == []
    # one experiment with itself: one sample per row, never better or worse
    assert ids_of(await run("B", "B")) == [
        (d["B"], rows[0], [d["b1e1"], d["b1e2"]]),
        (d["B"], rows[1], [d["b2e1"], d["b2e2"]]),
        (d["B"], rows[2], [d["b3e1"]]),
    ]
    assert await run("B", "B", filter_samples_by="improved") == []
    async with db.connect() as conn:
        unknown = await samples.unknown_criteria(conn, d["pid"], [d["c1"], 999, d["c2"], 998])
        assert unknown == [998, 999]
        assert await samples.unknown_criteria(conn, d["other"], [d["c1"]]) == [d["c1"]]


async def test_experiment_map(db: Any, data: dict[str, Any]) -> None:
    d, rows = data, data["rows"]

    async def run(name: str, page: int, limit: int) -> Any:
        async with db.connect() as conn:
            experiment = await experiment_row(conn, d["pid"], d[name])
            return await experiment_map.experiment_map(conn, experiment, page=page, limit=limit)

    first = await run("B", 1, 2)
    assert (first.experiment_id, first.name, first.num_samples, first.num_responses) == (
        d["B"], "B", 3, 5
    )
    assert [s.template_variables_id for s in first.samples] == rows[:2]
    assert all(s.persona is None for s in first.samples)
    r1, r2 = first.samples
    assert [(r.response_id, r.epoch) for r in r1.responses] == [(d["b1e1"], 1), (d["b1e2"], 2)]
    assert [(r.num_criteria_passed, r.num_criteria_failed) for r in r1.responses] == [
        (1, 1), (2, 0)
    ]
    traced = r2.responses[1]
    assert (traced.has_trajectory, traced.total_steps, traced.total_cost_usd) == (True, 3, 0.25)
    assert (r2.responses[0].has_trajectory, r2.responses[0].total_steps) == (False, None)
    assert r2.responses[0].total_cost_usd is None  # no LLM config, no trajectory
    second = await run("B", 2, 2)
    [r3] = second.samples
    assert r3.template_variables_id == rows[2]
    # c1 YES, c2 failed: one passed, none failed
    assert [(r.num_criteria_passed, r.num_criteria_failed) for r in r3.responses] == [(1, 0)]
    assert (await run("B", 3, 2)).samples == []
    a = await run("A", 1, 50)
    assert (a.num_samples, a.num_responses) == (4, 4)
    flags = [(r.has_error, r.num_criteria_passed, r.task_name) for s in a.samples
             for r in s.responses]
    assert flags == [(False, 2, None), (False, 1, None), (True, None, None), (False, 0, None)]
    # tokens at L's prices: r1 (10 * 2.0 + 5 * 10.0) / 1e6; the error response has none
    costs = [r.total_cost_usd for s in a.samples for r in s.responses]
    assert costs == [pytest.approx(70e-6), pytest.approx(120e-6), None, pytest.approx(90e-6)]


async def test_response_stats(db: Any, data: dict[str, Any]) -> None:
    d = data

    async def run(config: int | None, days: int) -> Any:
        async with db.connect() as conn:
            return await stats.response_stats(
                conn, d["pid"], llm_config_id=config, days=days, now=NOW
            )

    # 7 days ending 2026-03-10: from 03-04 00:00 UTC; a4 (03-03 23:59:59.999999) is out
    week = await run(d["llm"], 7)
    assert week.total_responses == 3  # a1, a2, a3 (the failed one counts as a request)
    assert (week.average_duration_seconds, week.min_duration_seconds,
            week.max_duration_seconds) == (1.5, 1.0, 2.0)
    assert (week.total_input_tokens, week.total_output_tokens) == (30, 13)
    assert (week.average_input_tokens, week.average_output_tokens) == (15.0, 6.5)
    assert week.average_rating == 0.75  # YES, YES, YES, NO
    usage = [(u.date.isoformat(), u.requests, u.input_tokens, u.output_tokens)
             for u in week.daily_usage]
    assert usage == [
        ("2026-03-04", 1, 0, 0), ("2026-03-05", 0, 0, 0), ("2026-03-06", 0, 0, 0),
        ("2026-03-07", 0, 0, 0), ("2026-03-08", 0, 0, 0), ("2026-03-09", 1, 20, 8),
        ("2026-03-10", 1, 10, 5),
    ]
    today = await run(d["llm"], 1)
    assert (today.total_responses, today.total_input_tokens, today.average_rating) == (1, 10, 1.0)
    assert [u.date.isoformat() for u in today.daily_usage] == ["2026-03-10"]
    month = await run(d["llm"], 30)
    assert (month.total_responses, month.total_input_tokens, month.total_output_tokens) == (
        4, 60, 16
    )
    assert month.average_duration_seconds == pytest.approx(3.5 / 3)
    assert month.average_rating == pytest.approx(3 / 6)
    assert len(month.daily_usage) == 30 and month.daily_usage[0].date.isoformat() == "2026-02-09"
    # no config: B's five responses (the other project's is not counted), all on 03-08
    default = await run(None, 7)
    assert default.total_responses == 5
    assert (default.total_input_tokens, default.total_output_tokens) == (3, 3)
    assert (default.average_input_tokens, default.average_output_tokens) == (1.5, 1.5)
    assert (default.min_duration_seconds, default.max_duration_seconds) == (3.0, 4.0)
    assert default.average_rating == pytest.approx(8 / 9)  # the failed rating is no verdict
    assert [u.requests for u in default.daily_usage] == [0, 0, 0, 0, 5, 0, 0]
    # nothing in the window
    empty = await run(None, 1)
    assert (empty.total_responses, empty.total_input_tokens, empty.average_input_tokens) == (
        0, 0, 0.0
    )
    assert (empty.average_duration_seconds, empty.min_duration_seconds,
            empty.average_rating) == (None, None, None)
    assert [(u.requests, u.input_tokens) for u in empty.daily_usage] == [(0, 0)]
    assert type(week.average_duration_seconds) is float  # not Decimal (PostgreSQL)
    async with db.connect() as conn:
        assert await stats.llm_config_exists(conn, d["pid"], d["llm"])
        assert not await stats.llm_config_exists(conn, d["other"], d["llm"])
        with pytest.raises(ValueError, match="days"):
            await stats.response_stats(conn, d["pid"], llm_config_id=None, days=91)
