"""Reliability round 2 on the server (issue 10): structured task workers, item-level
failures, row-specific criteria, one response per (row, epoch), delete vs retry, task logs,
durability, the echo fallback notice and the migrations."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from elluminate._taskgroup import run_all
from elluminate.server import ServerConfig, create_app
from elluminate.server.api.http import DB_KEY, ENGINE_KEY, PROVIDERS_KEY
from elluminate.server.evaluation.providers import ChatParams, Completion, EchoProvider
from elluminate.server.store import legacy
from elluminate.server.store.database import Database
from elluminate.server.store.file_lock import DatabaseInUseError
from elluminate.server.store.migrate import HEAD

P = "/api/v0/projects/1"
API_KEY = "test-key-0123456789"
LEGACY_DB = Path(__file__).resolve().parents[1] / "golden" / "legacy-v1.db"


class ExplodingProvider:
    """Echo with latency whose ``explode_at``-th generation raises a non-provider error
    (a bug, not a model failure): the task must stop every worker before it ends."""

    name = "exploding"
    model = "exploding"

    def __init__(self, explode_at: int, latency: float = 0.02) -> None:
        self.explode_at = explode_at
        self.generations = 0
        self.calls_after_failure = 0
        self.failed = False
        self._echo = EchoProvider(latency=latency)

    async def chat(
        self,
        messages: list[dict[str, Any]],
        *,
        json_schema: dict[str, Any] | None = None,
        params: ChatParams | None = None,
    ) -> Completion:
        if self.failed:
            self.calls_after_failure += 1
        if json_schema is None:
            self.generations += 1
            if self.generations == self.explode_at:
                self.failed = True
                raise RuntimeError("a bug in the provider")
        return await self._echo.chat(messages, json_schema=json_schema, params=params)

    async def aclose(self) -> None:
        await self._echo.aclose()


async def _client(aiohttp_client: Any, db_path: Path, **config: Any) -> Any:
    cfg = ServerConfig(db_path=db_path, api_key=API_KEY, llm="echo", **config)
    return await aiohttp_client(create_app(cfg), headers={"X-API-Key": API_KEY})


def _count(db_path: Path, sql: str, params: tuple[Any, ...] = ()) -> int:
    conn = sqlite3.connect(db_path)
    try:
        return int(conn.execute(sql, params).fetchone()[0])
    finally:
        conn.close()


# ---- 1. structured workers ------------------------------------------------------------


async def test_an_unexpected_worker_error_stops_every_sibling_before_the_task_ends(
    aiohttp_client: Any, tasks_helpers: Any, tmp_path: Path
) -> None:
    h = tasks_helpers
    db_path = tmp_path / "workers.db"
    client = await _client(aiohttp_client, db_path, max_concurrency=8)
    provider = ExplodingProvider(explode_at=10)
    client.app[PROVIDERS_KEY].default = lambda: provider
    fx = await h.make_fixture(client, rows=[{"topic": f"t{i}"} for i in range(60)])
    exp = await h.create_experiment(client, fx, generate=True)
    final = await h.run_to_end(client, exp)
    assert final["status"] == "FAILURE"
    assert "internal error: RuntimeError: a bug in the provider" in final["error_msg"]
    stored = _count(db_path, "SELECT COUNT(*) FROM responses WHERE experiment_id = ?", (exp["id"],))
    await asyncio.sleep(0.5)  # siblings of a plain gather would go on generating meanwhile
    assert stored < 60
    assert _count(
        db_path, "SELECT COUNT(*) FROM responses WHERE experiment_id = ?", (exp["id"],)
    ) == stored
    assert provider.calls_after_failure <= 8  # calls already in flight when it failed
    calls = provider.generations
    await asyncio.sleep(0.2)
    assert provider.generations == calls
    live = [t for t in asyncio.all_tasks() if t.get_name().startswith("task-")]
    assert live == []
    got = await client.ok("GET", f"{P}/experiments/{exp['id']}")
    assert got["generation_task_id"] is None


async def test_run_all_cancels_siblings_and_waits_for_them() -> None:
    finished: list[str] = []
    cancelled: list[str] = []

    async def slow(name: str) -> str:
        try:
            await asyncio.sleep(1)
        except asyncio.CancelledError:
            await asyncio.sleep(0.01)  # cleanup that takes a moment
            cancelled.append(name)
            raise
        finished.append(name)
        return name

    async def boom() -> str:
        await asyncio.sleep(0.01)
        raise ValueError("first error")

    with pytest.raises(ValueError, match="first error"):
        await run_all([slow("a"), boom(), slow("b")])
    assert sorted(cancelled) == ["a", "b"] and finished == []  # all stopped before the raise
    assert await run_all([asyncio.sleep(0, result=i) for i in range(3)]) == [0, 1, 2]
    assert await run_all([]) == []


async def test_cancelling_run_all_cancels_and_awaits_every_child() -> None:
    stopped: list[int] = []

    async def child(i: int) -> None:
        try:
            await asyncio.sleep(10)
        finally:
            stopped.append(i)

    outer = asyncio.ensure_future(run_all([child(i) for i in range(3)]))
    await asyncio.sleep(0.01)
    outer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await outer
    assert sorted(stopped) == [0, 1, 2]


async def test_a_row_deleted_during_the_run_is_skipped_and_the_task_goes_on(
    aiohttp_client: Any, tmp_path: Path, tasks_helpers: Any
) -> None:
    h = tasks_helpers
    client = await _client(aiohttp_client, tmp_path / "s.db", echo_latency=0.3)
    fx = await h.make_fixture(client, rows=[{"topic": "kept"}, {"topic": "deleted"}])
    exp = await h.create_experiment(client, fx, generate=True)
    await asyncio.sleep(0.1)  # both generations are in flight
    await client.ok(
        "DELETE", f"{P}/collections/{fx.collection_id}/entries/{fx.row_ids[1]}", status=204
    )
    final = await h.run_to_end(client, exp)
    assert final["status"] == "SUCCESS", final
    got = await client.ok("GET", f"{P}/experiments/{exp['id']}")
    assert "skipped: the row was deleted during the run" in got["logs"]
    responses = await h.all_responses(client, exp["id"])
    assert [r["prompt"]["template_variables"]["id"] for r in responses] == [fx.row_ids[0]]
    assert len(responses[0]["ratings"]) == 2


# ---- 2. row-specific criteria ---------------------------------------------------------


async def _row_criterion(client: Any, fx: Any, row_id: int, text: str) -> int:
    made = await client.ok(
        "POST",
        f"{P}/criteria",
        json={
            "criterion_set_id": fx.set_id,
            "template_variables_id": row_id,
            "criteria": [{"criterion_str": text, "label": None}],
        },
    )
    return int(made[0]["id"])


@pytest.mark.parametrize("how", ["entry", "all entries", "collection"])
async def test_deleting_a_row_removes_the_criteria_that_belong_only_to_it(
    client: Any, tasks_helpers: Any, how: str
) -> None:
    h = tasks_helpers
    fx = await h.make_fixture(client, rows=[{"topic": "a"}, {"topic": "b"}], criteria=["shared?"])
    own = await _row_criterion(client, fx, fx.row_ids[0], "only about a?")
    coll = f"{P}/collections/{fx.collection_id}"
    if how == "entry":
        await client.ok("DELETE", f"{coll}/entries/{fx.row_ids[0]}", status=204)
    elif how == "all entries":
        await client.ok("DELETE", f"{coll}/entries", status=204)
    else:
        await client.ok("DELETE", coll, status=204)
    cset = await client.ok("GET", f"{P}/criterion_sets/{fx.set_id}")
    assert [c["criterion_str"] for c in cset["criteria"]] == ["shared?"]
    await client.err("GET", f"{P}/criteria/{own}", 404)
    if how == "entry":  # the other row is rated against the shared criterion only
        exp = await h.create_experiment(client, fx, generate=True)
        assert (await h.run_to_end(client, exp))["status"] == "SUCCESS"
        [response] = await h.all_responses(client, exp["id"])
        assert [r["criterion"]["criterion_str"] for r in response["ratings"]] == ["shared?"]


async def test_a_used_row_criterion_is_hidden_with_its_row_and_keeps_old_ratings(
    client: Any, tasks_helpers: Any
) -> None:
    h = tasks_helpers
    fx = await h.make_fixture(client, rows=[{"topic": "a"}, {"topic": "b"}], criteria=["shared?"])
    own = await _row_criterion(client, fx, fx.row_ids[0], "only about a?")
    first = await h.create_experiment(client, fx, generate=True)
    await h.run_to_end(client, first)
    await client.ok(
        "DELETE", f"{P}/collections/{fx.collection_id}/entries/{fx.row_ids[0]}", status=204
    )
    old = {r["prompt"]["template_variables"]["id"]: r for r in await h.all_responses(
        client, first["id"])}
    assert own in [g["criterion"]["id"] for g in old[fx.row_ids[0]]["ratings"]]
    second = await h.create_experiment(client, fx, generate=True)
    await h.run_to_end(client, second)
    [response] = await h.all_responses(client, second["id"])
    assert [g["criterion"]["criterion_str"] for g in response["ratings"]] == ["shared?"]


# ---- 3. one server per file, one response per (row, epoch) ------------------------------


def test_a_second_database_on_a_held_file_refuses_before_touching_it(tmp_path: Path) -> None:
    path = tmp_path / "one.db"
    first = Database(path)
    first.open()
    try:
        second = Database(path)
        with pytest.raises(DatabaseInUseError) as info:
            second.open()
        message = str(info.value)
        assert str(path) in message and "in use by another elluminate server" in message
        assert second._conn is None
    finally:
        first.close()
    again = Database(path)  # released on close
    again.open()
    again.close()


def test_the_unique_key_refuses_a_second_response_for_one_row_and_epoch(tmp_path: Path) -> None:
    db = Database(tmp_path / "u.db")
    db.open()
    db.close()
    conn = sqlite3.connect(tmp_path / "u.db")
    conn.execute("PRAGMA foreign_keys = ON")
    try:
        with conn:
            conn.execute(
                "INSERT INTO organizations (name, created_at, updated_at) VALUES ('o', 'x', 'x')"
            )
            conn.execute(
                "INSERT INTO projects (organization_id, name, created_at, updated_at) "
                "VALUES (1, 'p', 'x', 'x')"
            )
            conn.execute(
                "INSERT INTO collections (project_id, name, created_at, updated_at) "
                "VALUES (1, 'c', 'x', 'x')"
            )
            conn.execute(
                "INSERT INTO template_variables (collection_id, input_values, identity_hash, "
                "created_at, updated_at) VALUES (1, '{}', 'h', 'x', 'x')"
            )
            conn.execute(
                "INSERT INTO criterion_sets (project_id, name, created_at, updated_at) "
                "VALUES (1, 's', 'x', 'x')"
            )
            conn.execute(
                "INSERT INTO experiments (project_id, name, collection_id, criterion_set_id, "
                "created_at, updated_at) VALUES (1, 'e', 1, 1, 'x', 'x')"
            )
            for _ in range(2):
                conn.execute(
                    "INSERT INTO prompts (project_id, experiment_id, template_variables_id, "
                    "messages, created_at) VALUES (1, 1, 1, '[]', 'x')"
                )
        insert = (
            "INSERT INTO responses (project_id, experiment_id, prompt_id, template_variables_id, "
            "epoch, messages, created_at, updated_at) VALUES (1, 1, ?, 1, 1, '[]', 'x', 'x')"
        )
        with conn:
            conn.execute(insert, (1,))
        with pytest.raises(sqlite3.IntegrityError, match="UNIQUE"), conn:
            conn.execute(insert, (2,))
    finally:
        conn.close()


async def test_add_responses_refuses_a_taken_row_and_epoch_and_stores_nothing(
    client: Any, tasks_helpers: Any, snapshot: Any
) -> None:
    h = tasks_helpers
    fx = await h.make_fixture(client)
    exp = await h.create_experiment(client, fx, generate=True)
    await h.run_to_end(client, exp)
    before = snapshot()
    item = {"experiment_id": exp["id"], "template_variables_id": fx.row_ids[0], "epoch": 1,
            "messages": "again"}
    detail = await client.err("POST", f"{P}/responses", 409, json=item)
    assert "already has a response" in detail and "epoch 1" in detail
    detail = await client.err(
        "POST", f"{P}/responses/batches", 409,
        json={"prompt_response_ins": [{**item, "epoch": 2}, {**item, "epoch": 2}]},
    )
    assert "prompt_response_ins[1]" in detail and "second response" in detail
    assert snapshot() == before
    await client.ok("POST", f"{P}/responses", json={**item, "epoch": 2})


# ---- 4. delete vs retry -----------------------------------------------------------------


async def test_delete_and_retry_raced_many_times_leave_no_task_and_no_500(
    aiohttp_client: Any, tmp_path: Path, tasks_helpers: Any
) -> None:
    h = tasks_helpers
    client = await _client(aiohttp_client, tmp_path / "race.db", echo_latency=0.02)
    engine = client.app[ENGINE_KEY]
    cancel = engine.cancel

    async def slow_cancel(*args: Any, **kwargs: Any) -> bool:
        stopped = await cancel(*args, **kwargs)
        await asyncio.sleep(0.02)  # widen the window between the run's end and the delete
        return stopped

    engine.cancel = slow_cancel
    submit = engine.submit
    started: list[int | None] = []  # experiments whose task started after their delete began
    deleting: set[int] = set()

    async def watched_submit(
        conn: Any, kind: str, project_id: int, experiment_id: int | None, payload: Any
    ) -> Any:
        if experiment_id in deleting:
            started.append(experiment_id)
        return await submit(conn, kind, project_id, experiment_id, payload)

    engine.submit = watched_submit
    fx = await h.make_fixture(client, rows=[{"topic": f"t{i}"} for i in range(20)])
    statuses: dict[str, list[int]] = {"delete": [], "retry": []}
    for _ in range(30):
        exp = await h.create_experiment(client, fx, generate=True)  # running
        url = f"{P}/experiments/{exp['id']}"
        deleted = asyncio.Event()

        async def retry_until_deleted(url: str = url, deleted: asyncio.Event = deleted) -> None:
            while not deleted.is_set():  # lands before, during and after the delete's cancel
                resp = await client.post(url + "/retry-failed", json={})
                statuses["retry"].append(resp.status)

        spammers = [asyncio.ensure_future(retry_until_deleted()) for _ in range(3)]
        await asyncio.sleep(0.01)
        deleting.add(exp["id"])
        resp = await client.delete(url)
        statuses["delete"].append(resp.status)
        deleted.set()
        await asyncio.gather(*spammers)
        assert (await client.get(url)).status == 404, (resp.status, await resp.text())
        await asyncio.sleep(0.05)
        running = [live.state for live in engine.leases.held.values()]
        assert all(s.experiment_id != exp["id"] for s in running), running
    assert started == []  # no run started on an experiment that was being deleted
    assert set(statuses["delete"]) == {204}
    assert set(statuses["retry"]) <= {200, 404, 409}, statuses["retry"]
    assert not engine.leases.held


# ---- 8. task logs -------------------------------------------------------------------------


async def test_a_log_line_is_one_insert_and_polls_page_by_cursor(
    client: Any, db_path: Path
) -> None:
    engine = client.app[ENGINE_KEY]
    db = client.app[DB_KEY]
    running: list[Any] = []
    release = asyncio.Event()

    async def noop(ctx: Any) -> None:
        running.append(ctx)
        await release.wait()

    engine.register("noop", noop)
    async with db.begin() as conn:
        state = await engine.submit(conn, "noop", 1, None, None)
    for _ in range(200):
        if running:
            break
        await asyncio.sleep(0.01)
    [ctx] = running
    for i in range(300):
        await ctx.log(f"line {i}")
    statements: list[str] = []
    db.conn.set_trace_callback(statements.append)
    try:
        await ctx.log("one more line")
    finally:
        db.conn.set_trace_callback(None)
    writes = [s for s in statements if not s.startswith(("BEGIN", "COMMIT", "SELECT"))]
    assert len(writes) == 1 and writes[0].startswith("INSERT INTO task_logs"), statements
    assert "one more line" not in " ".join(s for s in statements if "UPDATE" in s)
    first = await engine.logs_delta(state, "reader")
    assert first.count("\n") == 301
    await ctx.log("after the cursor")
    assert (await engine.logs_delta(state, "reader")).endswith("after the cursor\n")
    assert await engine.logs_delta(state, "reader") == ""
    await engine.cancel(state.id)
    stored = _count(db_path, "SELECT COUNT(*) FROM task_logs WHERE task_id = ?", (state.id,))
    assert stored == 303  # 302 lines + the REVOKED line
    assert (await engine.logs(state.id)).count("\n") == 303


# ---- 9. migrations, echo notice ----------------------------------------------------------


def test_migration_steps_are_one_statement_each() -> None:
    """No script is split on semicolons: legacy steps are single statements (sqlite3 runs one
    per call) and schema changes are Alembic revisions."""
    for step in legacy.SCHEMA_2:
        assert sqlite3.complete_statement(step + ";") and ";" not in step, step


async def test_a_version_1_database_migrates_with_its_data(
    aiohttp_client: Any, tmp_path: Path
) -> None:
    path = tmp_path / "legacy.db"
    shutil.copy(LEGACY_DB, path)
    client = await aiohttp_client(
        create_app(ServerConfig(db_path=path, llm="echo")),
        headers={"X-API-Key": "legacy-key-0123456789"},
    )
    listed = await (await client.get(f"{P}/experiments")).json()
    [exp] = listed["items"]
    assert exp["name"] == "First run"
    assert exp["results"]["mean_all_ratings"] is not None
    assert "finished" in exp["logs"]
    # the duplicate (row 1, epoch 1) left by the old version is gone, the first one kept
    assert _count(
        path,
        "SELECT COUNT(*) FROM (SELECT 1 FROM responses GROUP BY experiment_id, "
        "template_variables_id, epoch HAVING COUNT(*) > 1)",
    ) == 0
    assert _count(path, "SELECT COUNT(*) FROM responses") == 6
    assert _count(path, "SELECT COUNT(*) FROM task_logs") > 0
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [(HEAD,)]
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
        assert "schema_version" not in tables
    finally:
        conn.close()


def test_no_llm_and_no_local_model_says_so_at_start_and_in_health(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from elluminate.server import cli

    monkeypatch.setattr(cli, "default_llm_kind", lambda: "echo")
    config = cli.config_from_args([], environ={})
    assert config.llm == "echo" and config.llm_notice and "echo provider" in config.llm_notice
    assert cli.config_from_args(["--llm", "echo"], environ={}).llm_notice is None


async def test_health_shows_the_echo_fallback_notice(
    aiohttp_client: Any, tmp_path: Path
) -> None:
    cfg = ServerConfig(db_path=tmp_path / "h.db", llm="echo", llm_notice="no model: echo")
    client = await aiohttp_client(create_app(cfg))
    body = await (await client.get("/")).json()
    assert body["llm"] == "echo" and body["llm_notice"] == "no model: echo"
    plain = await aiohttp_client(create_app(ServerConfig(db_path=tmp_path / "p.db", llm="echo")))
    assert "llm_notice" not in await (await plain.get("/")).json()


# ---- 10. durability -------------------------------------------------------------------------


@pytest.mark.parametrize(("durability", "pragma"), [("normal", 1), ("full", 2)])
def test_durability_sets_the_synchronous_pragma(
    tmp_path: Path, durability: str, pragma: int
) -> None:
    from elluminate.server import cli

    config = cli.config_from_args(
        ["--durability", durability, "--db", str(tmp_path / "d.db")], environ={}
    )
    db = Database(config.db_path, durability=config.durability)
    db.open()
    try:
        assert db.conn.execute("PRAGMA synchronous").fetchone()[0] == pragma
    finally:
        db.close()
    with pytest.raises(ValueError, match="durability"):
        ServerConfig(durability="sometimes")
