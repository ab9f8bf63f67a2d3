"""Agent results over HTTP (CONTRACT.md 4.12, 5.7): AGENTIC collections' task rules, AGENTIC
experiments and their frozen definition, the matching preview, uploads (verbatim trajectories,
dropped ones, appends, given ratings, the 400 answers with nothing stored) and the judge's
evaluation task with its wait semantics (status keys, hand-off, internal errors, the stream)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from elluminate.server import ServerConfig, create_app

API_KEY = "test-key-0123456789"
P = "/api/v0/projects/1"
TERMINAL = {"SUCCESS", "FAILURE", "REVOKED", "REJECTED", "TIMEOUT"}
TASKS = [
    {"task": "fix-bug", "instruction": "Fix the failing test in {{task}}"},
    {"task": "add-docs", "instruction": "Document the module"},
]


def trajectory(steps: int = 2) -> dict[str, Any]:
    return {
        "schema_version": "ATIF-v1.4",
        "session_id": "s-1",
        "agent": {"name": "coder", "version": "2.1", "model_name": "gpt-x"},
        "steps": [
            {"step_id": i + 1, "source": "agent" if i else "user", "message": f"step {i}"}
            for i in range(steps)
        ],
        "final_metrics": {"total_steps": steps, "total_cost_usd": 0.25},
        "extra": {"kept": [1, None, 2.5]},
    }


async def agentic_setup(
    client: Any, criteria: list[dict[str, Any]] | None = None, name: str = "Agent run", **extra: Any
) -> dict[str, Any]:
    """An AGENTIC collection (two tasks), a criterion set and an AGENTIC experiment."""
    collection = await client.ok(
        "POST",
        f"{P}/collections",
        json={"name": f"Tasks of {name}", "collection_type": "AGENTIC", "variables": TASKS},
    )
    cset = await client.ok(
        "POST",
        f"{P}/criterion_sets",
        json={
            "name": f"Criteria of {name}",
            "criteria": criteria
            or [
                {"criterion_str": "Did {{task}} get done?", "label": "done"},
                {"criterion_str": "Is the code clean?", "label": None},
            ],
        },
    )
    experiment = await client.ok(
        "POST",
        f"{P}/experiments",
        json={
            "name": name,
            "collection_id": collection["id"],
            "criterion_set_id": cset["id"],
            "evaluation_mode": "AGENTIC",
            "agent_config": {"image": "agent:1", "max_steps": 30},
            "evaluation_agent_config": {"judge": "trace"},
            **extra,
        },
    )
    return {"collection": collection, "set": cset, "experiment": experiment}


def results_path(experiment: dict[str, Any], tail: str = "") -> str:
    return f"{P}/experiments/{experiment['id']}/agent-results{tail}"


async def wait(client: Any, experiment: dict[str, Any], task_id: str) -> dict[str, Any]:
    """Poll until the task ends; the final payload's ``logs_delta`` holds the whole log."""
    path = f"{P}/experiments/{experiment['id']}/generation/{task_id}"
    logs = []
    for _ in range(1000):
        payload = await client.ok("GET", path, params={"connection_uuid": f"w-{task_id}"})
        logs.append(payload.get("logs_delta") or "")
        if payload["status"] in TERMINAL:
            return {**payload, "logs_delta": "".join(logs)}
        await asyncio.sleep(0.02)
    raise AssertionError(f"task {task_id} did not end")


async def responses_of(client: Any, experiment: dict[str, Any]) -> list[dict[str, Any]]:
    body = await client.ok("GET", f"{P}/responses", params={"experiment_id": experiment["id"]})
    return body["items"]  # type: ignore[no-any-return]


# ---- AGENTIC collections ----------------------------------------------------------------------


async def test_agentic_collections_need_unique_non_empty_tasks(client: Any, snapshot: Any) -> None:
    made = await client.ok(
        "POST",
        f"{P}/collections",
        json={"name": "Tasks", "collection_type": "AGENTIC", "variables": TASKS},
    )
    types = {c["name"]: c["column_type"] for c in made["columns"]}
    assert types == {"task": "text", "instruction": "raw_input"}  # instruction is inferred
    one = f"{P}/collections/{made['id']}"
    before = snapshot()
    bad_creates = [
        ({"variables": [{"task": "a"}, {"task": "a"}]}, "unique"),
        ({"variables": [{"task": "  "}]}, "non-empty 'task'"),
        ({"variables": [{"instruction": "x"}]}, "TEXT column named 'task'"),
        ({"columns": ["instruction"]}, "TEXT column named 'task'"),
        ({"columns": [{"name": "task", "column_type": "json"}]}, "TEXT column"),
    ]
    for body, hint in bad_creates:
        detail = await client.err(
            "POST",
            f"{P}/collections",
            400,
            json={"name": "Bad", "collection_type": "AGENTIC", **body},
        )
        assert hint in detail and "nothing was stored" in detail, detail
    row = made["variables"][0]
    await client.err("POST", f"{one}/entries", 400, json={"input_values": {"task": "add-docs"}})
    await client.err("PUT", f"{one}/entries/{row['id']}", 400, json={"input_values": {"task": ""}})
    await client.err(
        "PUT", f"{one}/entries/{row['id']}", 400, json={"input_values": {"task": "add-docs"}}
    )
    upload = '{"task": "new"}\n{"task": "new"}'
    resp = await client.post(
        f"{one}/entries/batches", params={"skip_existing": "false"}, data=upload.encode()
    )
    assert resp.status == 400, await resp.text()
    await client.err("PUT", one, 400, json={"name": "Tasks", "columns": ["instruction"]})
    assert snapshot() == before
    # an empty AGENTIC collection is fine; its first rows bring the task column
    empty = await client.ok(
        "POST", f"{P}/collections", json={"name": "Empty", "collection_type": "AGENTIC"}
    )
    await client.ok(
        "POST", f"{P}/collections/{empty['id']}/entries", json={"input_values": {"task": "t1"}}
    )
    # a STANDARD collection has no such rule
    await client.ok(
        "POST",
        f"{P}/collections",
        json={"name": "Plain", "variables": [{"task": ""}, {"task": ""}]},
    )


# ---- AGENTIC experiments and the definition -----------------------------------------------------


async def test_agentic_experiment_and_its_frozen_definition(client: Any) -> None:
    made = await agentic_setup(client)
    exp = made["experiment"]
    assert exp["evaluation_mode"] == "AGENTIC" and exp["prompt_template"] is None
    assert exp["agent_config"] == {"image": "agent:1", "max_steps": 30}
    assert exp["evaluation_agent_config"] == {"judge": "trace"}
    assert exp["generation_task_id"] is None and exp["dropped_trajectories"] == 0
    got = await client.ok("GET", f"{P}/experiments/{exp['id']}")
    assert got["agent_config"] == exp["agent_config"]
    definition = await client.ok("GET", results_path(exp, "/definition"))
    assert definition["version"] == 1 and definition["task_name_column"] == "task"
    rows = made["collection"]["variables"]
    criteria = made["set"]["criteria"]
    assert [(t["task_id"], t["task_name"]) for t in definition["tasks"]] == [
        (rows[0]["id"], "fix-bug"),
        (rows[1]["id"], "add-docs"),
    ]
    first = definition["tasks"][0]
    assert first["row_exists"] is True and first["current_task_name"] is None
    assert first["criteria"] == [
        {
            "criterion_id": criteria[0]["id"],
            "label": "done",
            "scope": "shared",
            "rendered_criterion_str": "Did fix-bug get done?",
        },
        {
            "criterion_id": criteria[1]["id"],
            "label": f"criterion {criteria[1]['id']}",
            "scope": "shared",
            "rendered_criterion_str": "Is the code clean?",
        },
    ]
    # frozen: a renamed row shows its new name, a deleted one is gone, the tasks stay
    collection = f"{P}/collections/{made['collection']['id']}"
    await client.ok(
        "PUT", f"{collection}/entries/{rows[0]['id']}", json={"input_values": {"task": "fix-bug-2"}}
    )
    await client.ok("DELETE", f"{collection}/entries/{rows[1]['id']}")
    later = await client.ok("GET", results_path(exp, "/definition"))
    assert [t["task_name"] for t in later["tasks"]] == ["fix-bug", "add-docs"]
    assert later["tasks"][0]["current_task_name"] == "fix-bug-2"
    assert later["tasks"][1]["row_exists"] is False


async def test_row_specific_criteria_have_the_task_scope(client: Any) -> None:
    made = await agentic_setup(client)
    row = made["collection"]["variables"][1]
    await client.ok(
        "POST",
        f"{P}/criteria",
        json={
            "criterion_set_id": made["set"]["id"],
            "template_variables_id": row["id"],
            "criteria": [{"criterion_str": "Are the docs in English?", "label": "english"}],
            "prompt_template_id": None,
            "delete_existing": False,
        },
    )
    again = await agentic_setup(client, name="Second")  # other collection: no task criterion
    exp = await client.ok(
        "POST",
        f"{P}/experiments",
        json={
            "name": "Third",
            "collection_id": made["collection"]["id"],
            "criterion_set_id": made["set"]["id"],
            "evaluation_mode": "AGENTIC",
        },
    )
    definition = await client.ok("GET", results_path(exp, "/definition"))
    scopes = [[(c["label"], c["scope"]) for c in t["criteria"]] for t in definition["tasks"]]
    assert scopes[0] == [("done", "shared"), (scopes[0][1][0], "shared")]
    assert scopes[1][-1] == ("english", "task")
    assert again["experiment"]["id"] != exp["id"]


async def test_agentic_create_rules(client: Any, snapshot: Any) -> None:
    made = await agentic_setup(client)
    plain = await client.ok(
        "POST", f"{P}/collections", json={"name": "Plain", "variables": [{"a": "1"}]}
    )
    base = {
        "name": "New",
        "collection_id": made["collection"]["id"],
        "criterion_set_id": made["set"]["id"],
        "evaluation_mode": "AGENTIC",
    }
    before = snapshot()
    cases = [
        ({"collection_id": plain["id"]}, 400, "AGENTIC collection"),
        ({"generate": True}, 400, "from agent-result uploads"),
        ({"persona_group_id": 1}, 400, "only for MULTI_TURN"),
        ({"scenario_set_id": 1}, 400, "only for MULTI_TURN"),
        ({"collection_id": None}, 422, "collection_id is required"),
        ({"evaluation_mode": "SOMETHING"}, 422, "evaluation_mode"),
        ({"collection_id": 999}, 404, "collection 999"),
    ]
    for change, status, hint in cases:
        detail = await client.err("POST", f"{P}/experiments", status, json={**base, **change})
        assert hint in detail, (change, detail)
    empty = await client.ok(
        "POST", f"{P}/collections", json={"name": "No tasks", "collection_type": "AGENTIC"}
    )
    detail = await client.err(
        "POST", f"{P}/experiments", 400, json={**base, "collection_id": empty["id"]}
    )
    assert "no tasks" in detail
    snapshot_after = snapshot()
    assert snapshot_after["experiments"] == before["experiments"]
    exp = made["experiment"]
    detail = await client.err("POST", f"{P}/experiments/{exp['id']}/run", 400, json={})
    assert "agent-results" in detail
    # the agent-result endpoints are for AGENTIC experiments only
    fixture = await client.ok(
        "POST",
        f"{P}/prompt_templates",
        json={"name": "T", "messages": [{"role": "user", "content": "{{a}}"}]},
    )
    standard = await client.ok(
        "POST",
        f"{P}/experiments",
        json={
            "name": "Std",
            "prompt_template_id": fixture["id"],
            "collection_id": plain["id"],
            "criterion_set_id": made["set"]["id"],
        },
    )
    for method, tail, body in (
        ("GET", "/definition", None),
        ("POST", "/preview", {"results": []}),
        ("POST", "", {"results": [{"task_id": 1}]}),
    ):
        detail = await client.err(method, results_path(standard, tail), 400, json=body)
        assert "AGENTIC" in detail


async def test_other_projects_get_404(client: Any, other: Any) -> None:
    made = await agentic_setup(client)
    other_pid, headers = other
    path = f"/api/v0/projects/{other_pid}/experiments/{made['experiment']['id']}/agent-results"
    await client.err("GET", path + "/definition", 404, headers=headers)
    await client.err("POST", path + "/preview", 404, headers=headers, json={"results": []})
    await client.err("POST", path, 404, headers=headers, json={"results": [{"task_id": 1}]})


# ---- preview --------------------------------------------------------------------------------


async def test_preview_matches_by_id_or_frozen_name(client: Any, snapshot: Any) -> None:
    made = await agentic_setup(client)
    exp, rows = made["experiment"], made["collection"]["variables"]
    before = snapshot()
    refs = [
        {"task_id": rows[0]["id"], "task_name": None},
        {"task_id": None, "task_name": "add-docs"},
        {"task_id": rows[0]["id"], "task_name": "fix-bug"},
        {"task_id": rows[0]["id"], "task_name": "add-docs"},
        {"task_id": 9999, "task_name": None},
        {"task_id": None, "task_name": "nope"},
    ]
    preview = await client.ok("POST", results_path(exp, "/preview"), json={"results": refs})
    assert preview["task_name_column"] == "task"
    assert (preview["matched"], preview["unmatched"]) == (3, 3)
    got = preview["results"]
    assert [r["index"] for r in got] == list(range(6))
    assert got[1] == {"index": 1, "task_id": rows[1]["id"], "task_name": "add-docs", "reason": None}
    assert got[0]["task_name"] == "fix-bug" and got[0]["reason"] is None
    assert "is the task 'fix-bug', not 'add-docs'" in got[3]["reason"]
    assert "no task with id 9999" in got[4]["reason"] and got[4]["task_id"] == 9999
    assert "no task named 'nope'" in got[5]["reason"]
    assert snapshot() == before
    await client.err("POST", results_path(exp, "/preview"), 422, json={"results": [{}]})
    await client.err("POST", results_path(exp, "/preview"), 422, json={"results": [{"task_id": 0}]})


# ---- uploads --------------------------------------------------------------------------------


async def test_upload_stores_trials_verbatim_and_appends(client: Any) -> None:
    made = await agentic_setup(client)
    exp, rows, criteria = (
        made["experiment"],
        made["collection"]["variables"],
        made["set"]["criteria"],
    )
    raw_trajectory = (
        '{"schema_version":"ATIF-v1.4","agent":{"name":"coder","version":"2.1"},'
        '"steps":[{"step_id":1,"source":"user","message":"Fix it"}],"extra":{"n":1.50}}'
    )
    body = (
        '{"results":[{"task_id":null,"task_name":"fix-bug",'
        '"messages":[{"role":"developer","content":"be brief"},{"role":"user","content":"Fix it"},'
        '{"role":"assistant","content":"Done"}],'
        '"reward":0.5,"steps":2,"cost_usd":0.01,"duration_seconds":12.5,"input_tokens":10,'
        '"output_tokens":5,"cached_tokens":3,"error":null,"metadata":{"run":"r1"},'
        f'"trajectory":{raw_trajectory},'
        '"criterion_ratings":[{"criterion_id":' + str(criteria[0]["id"]) + ',"label":null,'
        '"description":"","rating":"YES","reasoning":"all green"}]}],'
        '"epoch":1,"evaluate":false}'
    )
    answer = await client.ok(
        "POST", results_path(exp), data=body.encode(), headers={"Content-Type": "application/json"}
    )
    assert answer == {
        "created_responses": 1,
        "created_ratings": 1,
        "errors": [],
        "pending_evaluations": 0,
        "evaluation_task_id": None,
    }
    (stored,) = await responses_of(client, exp)
    assert stored["epoch"] == 1 and stored["error"] is None
    assert stored["messages"][0] == {"role": "system", "content": "be brief"}
    assert stored["messages"][-1] == {"role": "assistant", "content": "Done"}
    meta = stored["generation_metadata"]
    assert (meta["duration_seconds"], meta["input_tokens"], meta["output_tokens"]) == (12.5, 10, 5)
    assert meta["cached_tokens"] == 3 and meta["trajectory_ingest_error"] is None
    assert stored["trajectory"] == json.loads(raw_trajectory)
    raw = await client.get(f"{P}/responses/{stored['id']}")
    assert raw_trajectory.encode() in await raw.read()  # stored and served verbatim
    assert stored["prompt"]["template_variables"]["id"] == rows[0]["id"]
    assert stored["prompt"]["messages"] == [
        {"role": "user", "content": "Fix the failing test in {{task}}"}
    ]
    (rating,) = stored["ratings"]
    assert rating["criterion"]["id"] == criteria[0]["id"] and rating["rating"] == "YES"
    assert rating["reasoning"] == "all green"
    # uploads append: the same task and epoch again is a second trial
    again = await client.ok(
        "POST",
        results_path(exp),
        json={"results": [{"task_id": rows[0]["id"]}, {"task_name": "fix-bug"}], "epoch": 1},
    )
    assert again["created_responses"] == 2
    second = await client.ok(
        "POST", results_path(exp), json={"results": [{"task_name": "fix-bug"}], "epoch": 2}
    )
    assert second["created_responses"] == 1
    stored = await responses_of(client, exp)
    assert sorted(r["epoch"] for r in stored) == [1, 1, 1, 2]
    got = await client.ok("GET", f"{P}/experiments/{exp['id']}")
    assert got["results"]["mean_all_ratings"]["yes"] > 0  # the uploaded rating counts


async def test_upload_problems_of_single_results(client: Any, monkeypatch: Any) -> None:
    from elluminate.server.api import agent_results

    made = await agentic_setup(client)
    exp, criteria = made["experiment"], made["set"]["criteria"]
    too_long = trajectory(steps=10_001)
    monkeypatch.setattr(agent_results, "MAX_TRAJECTORY_BYTES", 2000)
    big = trajectory(steps=40)
    results = [
        {
            "task_name": "fix-bug",
            "trajectory": trajectory(),
            "criterion_ratings": [
                {"label": "done", "rating": "NO"},
                {"criterion_id": criteria[0]["id"], "rating": "YES"},
                {"label": "style", "rating": "NO"},
                {"criterion_id": 99999, "rating": "YES"},
            ],
        },
        {"task_name": "add-docs", "trajectory": too_long},
        {"task_name": "nope"},
        {
            "task_name": "add-docs",
            "trajectory": {**trajectory(), "schema_version": "ATIF-v2.0"},
        },
        {"task_name": "add-docs", "trajectory": big},
    ]
    answer = await client.ok(
        "POST", results_path(exp), json={"results": results, "evaluate": False}
    )
    assert answer["created_responses"] == 4 and answer["created_ratings"] == 1
    errors = answer["errors"]
    assert any(e.startswith("result 1: criterion 'done'") and "rated twice" in e for e in errors)
    assert "result 1: unknown criterion label 'style'" in errors
    assert any(e.startswith("result 1: unknown criterion id 99999") for e in errors)
    assert any(e.startswith("result 2: trajectory dropped:") and "10000" in e for e in errors)
    assert "result 3: no task named 'nope' in this experiment" in errors
    assert any(e.startswith("result 4: trajectory dropped:") and "ATIF-v1" in e for e in errors)
    assert any(e.startswith("result 5: trajectory dropped:") and "bytes" in e for e in errors)
    got = await client.ok("GET", f"{P}/experiments/{exp['id']}")
    assert got["dropped_trajectories"] == 3
    stored = await responses_of(client, exp)
    kept = [r for r in stored if r["trajectory"] is not None]
    assert len(kept) == 1 and kept[0]["generation_metadata"]["trajectory_ingest_error"] is None
    dropped = [r for r in stored if r["trajectory"] is None]
    assert all(r["generation_metadata"]["trajectory_ingest_error"] for r in dropped)
    first = next(
        r for r in stored if r["prompt"]["template_variables"]["input_values"]["task"] == "fix-bug"
    )
    assert [x["rating"] for x in first["ratings"]] == ["NO"]  # the first of the repeated ones


async def test_refused_uploads_store_nothing(client: Any, snapshot: Any) -> None:
    made = await agentic_setup(client)
    exp = made["experiment"]
    before = snapshot()
    await client.err("POST", results_path(exp), 422, json={"results": [{"task_id": 1}], "epoch": 0})
    await client.err(
        "POST", results_path(exp), 422, json={"results": [{"reward": 2.0, "task_id": 1}]}
    )
    await client.err(
        "POST",
        results_path(exp),
        422,
        json={"results": [{"task_id": 1, "messages": [{"role": "robot", "content": "x"}]}]},
    )
    await client.err("POST", results_path(exp), 422, json={"results": [{"messages": []}]})
    detail = await client.err(
        "POST", results_path(exp), 400, json={"results": [{"task_name": "nope"}, {"task_id": 777}]}
    )
    body = client.last_error_body
    assert body["kind"] == "unmatched_tasks" and "task_id" in detail
    assert body["accepted_tasks"] == [
        {"task_id": t["id"], "task_name": t["input_values"]["task"]}
        for t in made["collection"]["variables"]
    ]
    assert body["accepted_tasks_total"] == 2
    assert [r["reason"] is not None for r in body["results"]] == [True, True]
    assert snapshot() == before
    # a task whose row was deleted cannot take responses: nothing_stored
    row = made["collection"]["variables"][1]
    await client.ok("DELETE", f"{P}/collections/{made['collection']['id']}/entries/{row['id']}")
    before = snapshot()
    await client.err("POST", results_path(exp), 400, json={"results": [{"task_name": "add-docs"}]})
    body = client.last_error_body
    assert body["kind"] == "nothing_stored" and body["accepted_tasks_total"] == 2
    assert "was deleted" in body["detail"]
    assert snapshot() == before


async def test_accepted_tasks_list_at_most_ten(client: Any) -> None:
    rows = [{"task": f"t{i}"} for i in range(12)]
    collection = await client.ok(
        "POST",
        f"{P}/collections",
        json={"name": "Many", "collection_type": "AGENTIC", "variables": rows},
    )
    cset = await client.ok(
        "POST", f"{P}/criterion_sets", json={"name": "C", "criteria": [{"criterion_str": "ok?"}]}
    )
    exp = await client.ok(
        "POST",
        f"{P}/experiments",
        json={
            "name": "Many",
            "collection_id": collection["id"],
            "criterion_set_id": cset["id"],
            "evaluation_mode": "AGENTIC",
        },
    )
    await client.err("POST", results_path(exp), 400, json={"results": [{"task_name": "x"}]})
    body = client.last_error_body
    assert len(body["accepted_tasks"]) == 10 and body["accepted_tasks_total"] == 12


# ---- the evaluation task ----------------------------------------------------------------------


async def test_evaluation_rates_what_uploads_leave_open(client: Any) -> None:
    made = await agentic_setup(client)
    exp, criteria = made["experiment"], made["set"]["criteria"]
    answer = await client.ok(
        "POST",
        results_path(exp),
        json={
            "results": [
                {
                    "task_name": "fix-bug",
                    "messages": [{"role": "assistant", "content": "Fixed"}],
                    "criterion_ratings": [{"criterion_id": criteria[0]["id"], "rating": "NO"}],
                },
                {"task_name": "add-docs", "trajectory": trajectory()},
                {"task_name": "add-docs", "error": "agent crashed"},
            ]
        },
    )
    assert answer["created_responses"] == 3 and answer["created_ratings"] == 1
    assert answer["pending_evaluations"] == 3  # 1 + 2 criteria; the failed trial is not rated
    task = answer["evaluation_task_id"]
    assert task
    final = await wait(client, exp, task)
    assert final["status"] == "SUCCESS" and final["error_msg"] is None
    assert final["generation_task_id"] == task  # the experiment's latest task, ended
    assert final["has_internal_error"] is False
    assert final["total_responses"] == 2 and final["completed_ratings"] == 2
    assert "Evaluating" in final["logs_delta"]
    stored = {r["id"]: r for r in await responses_of(client, exp)}
    ratings = sorted((len(r["ratings"]), r["error"] is not None) for r in stored.values())
    assert ratings == [(0, True), (2, False), (2, False)]
    fixed = next(r for r in stored.values() if r["messages"])
    by_criterion = {x["criterion"]["id"]: x["rating"] for x in fixed["ratings"]}
    assert by_criterion[criteria[0]["id"]] == "NO"  # the uploaded rating is kept
    got = await client.ok("GET", f"{P}/experiments/{exp['id']}")
    assert got["generation_task_id"] is None and got["has_internal_error"] is False
    assert got["results"]["num_failed_responses"] == 1
    # a task id the experiment never had: PENDING, and no current task to follow
    unknown = await client.ok("GET", f"{P}/experiments/{exp['id']}/generation/nope")
    assert unknown == {"status": "PENDING", "generation_task_id": None, "has_internal_error": False}
    # nothing left to rate: no task
    nothing = await client.ok(
        "POST",
        results_path(exp),
        json={
            "results": [
                {
                    "task_name": "fix-bug",
                    "criterion_ratings": [
                        {"criterion_id": c["id"], "rating": "YES"} for c in criteria
                    ],
                }
            ]
        },
    )
    assert nothing["evaluation_task_id"] is None and nothing["pending_evaluations"] == 0


async def test_an_evaluation_whose_ratings_all_fail_is_an_internal_error(client: Any) -> None:
    made = await agentic_setup(
        client, criteria=[{"criterion_str": "ECHO_FAIL always", "label": "x"}]
    )
    exp = made["experiment"]
    answer = await client.ok(
        "POST", results_path(exp), json={"results": [{"task_name": "fix-bug", "messages": []}]}
    )
    final = await wait(client, exp, answer["evaluation_task_id"])
    assert final["status"] == "FAILURE" and "every rating failed" in final["error_msg"]
    assert final["has_internal_error"] is True
    got = await client.ok("GET", f"{P}/experiments/{exp['id']}")
    assert got["generation_task_id"] is None and got["has_internal_error"] is True
    # retry-failed queues the judge again (nothing is deleted)
    retried = await client.ok("POST", f"{P}/experiments/{exp['id']}/retry-failed", json={})
    assert (
        retried["generation_task_id"]
        and retried["generation_task_id"] != answer["evaluation_task_id"]
    )
    await wait(client, exp, retried["generation_task_id"])
    assert len(await responses_of(client, exp)) == 1


async def test_retry_failed_rates_uploads_made_without_evaluation(client: Any) -> None:
    made = await agentic_setup(client)
    exp = made["experiment"]
    await client.ok(
        "POST",
        results_path(exp),
        json={
            "results": [
                {"task_name": "fix-bug", "messages": [{"role": "assistant", "content": "x"}]}
            ],
            "evaluate": False,
        },
    )
    retried = await client.ok("POST", f"{P}/experiments/{exp['id']}/retry-failed", json={})
    final = await wait(client, exp, retried["generation_task_id"])
    assert final["status"] == "SUCCESS"
    (stored,) = await responses_of(client, exp)
    assert len(stored["ratings"]) == 2
    again = await client.ok("POST", f"{P}/experiments/{exp['id']}/retry-failed", json={})
    assert again["generation_task_id"] is None


@pytest.fixture
async def slow_client(aiohttp_client: Any, tmp_path: Path) -> Any:
    config = ServerConfig(
        db_path=tmp_path / "slow.db",
        api_key=API_KEY,
        llm="echo",
        echo_latency=0.2,
        max_concurrency=1,
    )
    return await aiohttp_client(create_app(config), headers={"X-API-Key": API_KEY})


async def test_a_newer_upload_takes_over_the_evaluation(slow_client: Any) -> None:
    from elluminate._sse import SSEParser

    client = slow_client
    made = await agentic_setup(client)
    exp = made["experiment"]
    trials = [
        {"task_name": "fix-bug", "messages": [{"role": "assistant", "content": f"v{i}"}]}
        for i in range(4)
    ]
    first = await client.ok("POST", results_path(exp), json={"results": trials})
    t1 = first["evaluation_task_id"]
    stream = await client.get(
        f"{P}/experiments/{exp['id']}/generation/{t1}/stream", params={"polling_interval": "0.1"}
    )
    parser, events = SSEParser(), []
    line = await stream.content.readline()
    while line and not events:
        event = parser.feed(line)
        if event is not None:
            events.append(event)
        else:
            line = await stream.content.readline()
    assert events[0]["generation_task_id"] == t1 and "has_internal_error" in events[0]
    second = await client.ok("POST", results_path(exp), json={"results": trials[:1]})
    t2 = second["evaluation_task_id"]
    assert t2 and t2 != t1
    running = await client.ok("GET", f"{P}/experiments/{exp['id']}")
    assert running["generation_task_id"] == t2
    while True:  # the first task's stream ends with one event naming the new task
        line = await stream.content.readline()
        if not line:
            break
        event = parser.feed(line)
        if event is not None:
            events.append(event)
    assert events[-1]["generation_task_id"] == t2
    old = await wait(client, exp, t1)
    assert old["status"] == "SUCCESS" and "handed over to task" in old["logs_delta"]
    assert old["generation_task_id"] == t2
    final = await wait(client, exp, t2)
    assert final["status"] == "SUCCESS" and final["generation_task_id"] == t2
    stored = await responses_of(client, exp)
    assert len(stored) == 5
    for response in stored:  # every criterion rated exactly once
        ids = [r["criterion"]["id"] for r in response["ratings"]]
        assert sorted(ids) == sorted({c["id"] for c in made["set"]["criteria"]}), response[
            "ratings"
        ]
    # once nothing runs, the older task reports the newest one
    old = await client.ok("GET", f"{P}/experiments/{exp['id']}/generation/{t1}")
    assert old["generation_task_id"] == t2


async def test_responses_of_agentic_experiments_come_only_from_uploads(client: Any) -> None:
    made = await agentic_setup(client)
    exp, row = made["experiment"], made["collection"]["variables"][0]
    item = {
        "experiment_id": exp["id"],
        "template_variables_id": row["id"],
        "messages": [{"role": "assistant", "content": "x"}],
    }
    for path in (f"{P}/responses", f"{P}/responses/batches"):
        body = item if path.endswith("responses") else {"prompt_response_ins": [item]}
        assert "agent-results" in await client.err("POST", path, 400, json=body)
    assert await responses_of(client, exp) == []


async def test_the_map_shows_what_uploads_reported(client: Any) -> None:
    made = await agentic_setup(client)
    exp = made["experiment"]
    await client.ok(
        "POST",
        results_path(exp),
        json={
            "results": [
                {"task_name": "fix-bug", "trajectory": trajectory(3)},
                {"task_name": "add-docs", "steps": 7, "cost_usd": 1.5, "trajectory": trajectory()},
            ],
            "evaluate": False,
        },
    )
    rows = made["collection"]["variables"]
    await client.ok(  # renamed later: the map keeps the frozen name
        "PUT",
        f"{P}/collections/{made['collection']['id']}/entries/{rows[0]['id']}",
        json={"input_values": {**rows[0]["input_values"], "task": "fix-bug-2"}},
    )
    mapped = await client.ok("GET", f"{P}/experiments/{exp['id']}/map")
    got = {
        r["task_name"]: (r["has_trajectory"], r["total_steps"], r["total_cost_usd"])
        for s in mapped["samples"]
        for r in s["responses"]
    }
    # from the trajectory's final_metrics, else what the upload reported
    assert got == {"fix-bug": (True, 3, 0.25), "add-docs": (True, 7, 1.5)}
    assert all(s["persona"] is None for s in mapped["samples"])
