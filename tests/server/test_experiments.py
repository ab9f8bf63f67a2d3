"""Experiments on the server: create, run, results, lookups, validation, retry, replay."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from elluminate.server import ServerConfig, create_app
from elluminate.server.evaluation.providers import echo_verdict

P = "/api/v0/projects/1"
API_KEY = "test-key-0123456789"

GOLDEN_DIR = Path(__file__).resolve().parents[1] / "golden"  # tests/golden, see its README


def expected_verdict(criterion: str, response: str) -> str:
    return echo_verdict(criterion, response)[0].upper()


async def test_run_end_to_end(client: Any, tasks_helpers: Any) -> None:
    h = tasks_helpers
    rows = [{"topic": "AI"}, {"topic": "cats ECHO_NO"}, {"topic": "tea"}]
    criteria = ["Is it clear?", "Is it short?", "Is it ECHO_NO proof?"]
    fx = await h.make_fixture(client, rows=rows, criteria=criteria)
    exp = await h.create_experiment(client, fx)
    assert exp["generation_task_id"] is None and exp["results"] is None
    assert exp["criterion_set"]["id"] == fx.set_id and exp["llm_config"] is None
    assert exp["rated_responses"] == [] and exp["rating_version"] == "v1"
    body = {
        "rating_mode": "detailed",
        "n_epochs": 2,
        "generation_params": {
            "temperature": 0.3,
            "reasoning_effort": None,
            "verbosity": None,
            "top_p": None,
            "max_tokens": None,
            "max_connections": 10,
        },
    }
    started = await client.ok("POST", f"{P}/experiments/{exp['id']}/run", json=body)
    assert started["generation_task_id"] and started["n_epochs"] == 2
    assert started["generation_params"]["temperature"] == 0.3
    final = await h.run_to_end(client, started)
    assert final["status"] == "SUCCESS", final
    assert final["completed_responses"] == final["total_responses"] == 6
    assert final["completed_ratings"] == 6
    assert final["generation_task_id"] is None and final["has_internal_error"] is False

    responses = await h.all_responses(client, exp["id"])
    assert len(responses) == len(rows) * 2
    assert [r["id"] for r in responses] == sorted(r["id"] for r in responses)
    yes = no = 0
    per: dict[int, list[int]] = {}
    for response in responses:
        assert response["error"] is None
        topic = response["prompt"]["template_variables"]["input_values"]["topic"]
        assert response["prompt"]["messages"] == [{"role": "user", "content": f"Explain {topic}"}]
        text = response["messages"][-1]["content"]
        assert text == f"Echo: Explain {topic}"
        assert response["epoch"] in (1, 2)
        assert len(response["ratings"]) == len(criteria)
        for rating in response["ratings"]:
            verdict = expected_verdict(rating["criterion"]["criterion_str"], text)
            assert rating["rating"] == verdict
            assert rating["reasoning"]
            bucket = per.setdefault(rating["criterion"]["id"], [0, 0])
            if verdict == "YES":
                yes += 1
                bucket[0] += 1
            else:
                no += 1
                bucket[1] += 1
    got = await client.ok("GET", f"{P}/experiments/{exp['id']}")
    results = got["results"]
    assert got["generation_task_id"] is None and got["has_internal_error"] is False
    assert "finished" in got["logs"]
    assert results["mean_all_ratings"] == {"yes": yes / (yes + no), "no": no / (yes + no)}
    for cid, (y, n) in per.items():
        assert results["mean_rating_by_criterion_id"][str(cid)] == {
            "yes": y / (y + n),
            "no": n / (y + n),
        }
    assert results["num_rated_responses"] == 6 and results["num_failed_responses"] == 0
    assert results["completed_epochs"] == 2
    assert len(results["input_tokens_per_response"]) == 6
    assert len(results["duration_seconds_per_response"]) == 6
    assert results["experiment_duration_seconds"] is not None
    assert results["estimated_total_cost_usd"] == 0.0

    # an experiment runs once
    detail = await client.err(
        "POST",
        f"{P}/experiments/{exp['id']}/run",
        409,
        json={"rating_mode": "detailed", "n_epochs": 1},
    )
    assert "already run" in detail
    detail = await client.err("POST", f"{P}/experiments/{exp['id']}/cancel", 409)
    assert "no running task" in detail


async def test_generate_on_create_and_fast_mode_mock_judge(client: Any, tasks_helpers: Any) -> None:
    h = tasks_helpers
    fx = await h.make_fixture(client, rows=[{"topic": "x"}], criteria=["ok?"])
    exp = await h.create_experiment(
        client, fx, generate=True, rating_mode="fast", rating_version="mock"
    )
    assert exp["rating_version"] == "mock"
    assert (await h.run_to_end(client, exp))["status"] == "SUCCESS"
    [response] = await h.all_responses(client, exp["id"])
    [rating] = response["ratings"]
    assert rating["rating"] == "YES" and rating["reasoning"] is None
    assert rating["generation_metadata"] is None  # no LLM call for the mock judge
    other = await h.create_experiment(client, fx, rating_version="v9")
    assert other["rating_version"] == "v1"  # unknown versions fall back to the default


async def test_llm_config_prices_and_metadata(client: Any, tasks_helpers: Any) -> None:
    """An experiment without LLM config uses the server default; costs need prices."""
    h = tasks_helpers
    fx = await h.make_fixture(client, rows=[{"topic": "one two"}], criteria=["a?"])
    exp = await h.create_experiment(client, fx, generate=True)
    await h.run_to_end(client, exp)
    got = await client.ok("GET", f"{P}/experiments/{exp['id']}")
    assert got["results"]["input_tokens_per_response"] == [3]  # "Explain one two"
    assert got["results"]["estimated_input_cost_usd"] == 0.0


async def test_name_lookup_list_filters_and_pages(
    aiohttp_client: Any, tmp_path: Path, tasks_helpers: Any
) -> None:
    h = tasks_helpers
    config = ServerConfig(db_path=tmp_path / "x.db", api_key=API_KEY, llm="echo", page_size=2)
    client = await aiohttp_client(create_app(config), headers={"X-API-Key": API_KEY})
    fx1 = await h.make_fixture(client)
    fx2 = await h.make_fixture(client)
    llm = await client.ok(
        "POST",
        f"{P}/llm_configs",
        json={
            "name": "L",
            "llm_model_name": "m",
            "api_key": "k",
            "llm_base_url": "http://127.0.0.1:9",
        },
    )
    a = await h.create_experiment(client, fx1, "A")
    b = await h.create_experiment(client, fx1, "B", llm_config_id=llm["id"])
    c = await h.create_experiment(client, fx2, "C")
    page1 = await client.ok("GET", f"{P}/experiments", params={"page": 1})
    page2 = await client.ok("GET", f"{P}/experiments", params={"page": 2})
    assert page1["count"] == page2["count"] == 3
    assert [e["id"] for e in page1["items"] + page2["items"]] == [a["id"], b["id"], c["id"]]
    found = await client.ok("GET", f"{P}/experiments", params={"experiment_name": "B"})
    assert found["count"] == 1
    item = found["items"][0]
    assert item["id"] == b["id"] and item["llm_config"]["id"] == llm["id"]
    assert item["llm_config"]["api_key"] == "****"
    for key in (
        "collection",
        "criterion_set",
        "created_at",
        "updated_at",
        "results",
        "rated_responses",
        "generation_task_id",
        "has_internal_error",
    ):
        assert key in item
    missing = await client.ok("GET", f"{P}/experiments", params={"experiment_name": "nope"})
    assert missing == {"items": [], "count": 0}
    by_template = await client.ok(
        "GET",
        f"{P}/experiments",
        params={
            "prompt_template_id": fx1.template_id,
            "collection_id": fx1.collection_id,
            "page": 1,
        },
    )
    assert by_template["count"] == 2
    by_llm = await client.ok("GET", f"{P}/experiments", params={"llm_config_id": llm["id"]})
    assert [e["id"] for e in by_llm["items"]] == [b["id"]]
    by_coll = await client.ok(
        "GET", f"{P}/experiments", params={"collection_id": fx2.collection_id}
    )
    assert [e["id"] for e in by_coll["items"]] == [c["id"]]


async def test_categorical_filters_restrict_results(client: Any, tasks_helpers: Any) -> None:
    h = tasks_helpers
    fx = await h.make_fixture(
        client,
        rows=[
            {"topic": "a", "cat": "x"},
            {"topic": "ECHO_NO", "cat": "y"},
            {"topic": "b", "cat": "x"},
        ],
        criteria=["fine?"],
    )
    exp = await h.create_experiment(client, fx, generate=True)
    await h.run_to_end(client, exp)
    full = await client.ok("GET", f"{P}/experiments/{exp['id']}")
    assert full["results"]["mean_all_ratings"] == {"yes": 2 / 3, "no": 1 / 3}
    only_x = await client.ok(
        "GET",
        f"{P}/experiments/{exp['id']}",
        params={"categorical_filters": json.dumps({"cat": ["x"]})},
    )
    assert only_x["results"]["mean_all_ratings"] == {"yes": 1.0, "no": 0.0}
    assert len(only_x["results"]["input_tokens_per_response"]) == 2
    both = await client.ok(
        "GET",
        f"{P}/experiments/{exp['id']}",
        params={"categorical_filters": json.dumps({"cat": ["x", "y"]})},
    )
    assert both["results"]["mean_all_ratings"] == full["results"]["mean_all_ratings"]
    none = await client.ok(
        "GET",
        f"{P}/experiments/{exp['id']}",
        params={"categorical_filters": json.dumps({"cat": ["z"]})},
    )
    assert none["results"] is None
    detail = await client.err(
        "GET", f"{P}/experiments/{exp['id']}", 422, params={"categorical_filters": "{cat"}
    )
    assert "categorical_filters" in detail


async def test_bad_inputs_are_refused_and_write_nothing(
    client: Any, tasks_helpers: Any, snapshot: Any, other: Any
) -> None:
    h = tasks_helpers
    fx = await h.make_fixture(client)
    unlinked = await h.make_fixture(client, link=False)
    wrong = await h.make_fixture(client, template="Say {{greeting}} to {{name}}")
    await h.create_experiment(client, fx, "taken")
    other_pid, other_headers = other
    foreign = await client.ok(
        "POST",
        f"/api/v0/projects/{other_pid}/prompt_templates",
        headers=other_headers,
        json={"name": "F", "messages": [{"role": "user", "content": "x"}]},
    )
    empty = await client.ok("POST", f"{P}/criterion_sets", json={"name": "empty"})
    before = snapshot()
    post = f"{P}/experiments"
    detail = await client.err("POST", post, 409, json=h.experiment_body(fx, "taken"))
    assert "taken" in detail and "already exists" in detail
    assert (
        await client.err("POST", post, 404, json=h.experiment_body(fx, prompt_template_id=99999))
    ) == "prompt template 99999 not found in this project"
    detail = await client.err(
        "POST", post, 404, json=h.experiment_body(fx, prompt_template_id=foreign["id"])
    )
    assert "prompt template" in detail
    assert "collection" in await client.err(
        "POST", post, 404, json=h.experiment_body(fx, collection_id=99999)
    )
    assert "criterion set" in await client.err(
        "POST", post, 404, json=h.experiment_body(fx, criterion_set_id=99999)
    )
    assert "LLM config" in await client.err(
        "POST", post, 404, json=h.experiment_body(fx, llm_config_id=99999)
    )
    detail = await client.err(
        "POST", post, 422, json=h.experiment_body(unlinked, criterion_set_id=None)
    )
    assert "criterion_set" in detail and "link" in detail
    detail = await client.err(
        "POST", post, 422, json=h.experiment_body(fx, prompt_template_id=wrong.template_id)
    )
    assert "greeting" in detail and "name" in detail
    assert client.last_error_body["missing_placeholders"] == ["greeting", "name"]
    assert "n_epochs" in await client.err("POST", post, 422, json=h.experiment_body(fx, n_epochs=0))
    assert "AGENTIC collection" in await client.err(
        "POST", post, 400, json=h.experiment_body(fx, evaluation_mode="AGENTIC")
    )
    assert "evaluation_mode" in await client.err(
        "POST", post, 422, json=h.experiment_body(fx, evaluation_mode="agentic")
    )
    assert "collection_id" in await client.err(
        "POST", post, 422, json=h.experiment_body(fx, collection_id=None)
    )
    assert "name" in await client.err("POST", post, 422, json=h.experiment_body(fx, name="  "))
    await client.err("POST", post, 422, json={"name": "x"})  # collection_id missing
    await client.err("POST", post, 422, data=b"not json")
    detail = await client.err(
        "POST", post, 422, json=h.experiment_body(fx, criterion_set_id=empty["id"], generate=True)
    )
    assert "no criteria" in detail
    assert snapshot() == before
    # /run validation
    exp = await h.create_experiment(client, fx)
    before = snapshot()
    detail = await client.err(
        "POST",
        f"{P}/experiments/{exp['id']}/run",
        422,
        json={"rating_mode": "detailed", "n_epochs": 0},
    )
    assert "n_epochs" in detail
    detail = await client.err(
        "POST",
        f"{P}/experiments/{exp['id']}/retry-failed",
        409,
        json={"rating_mode": "detailed", "discard_annotations": False},
    )
    assert "not run yet" in detail
    await client.err("POST", f"{P}/experiments/99999/run", 404, json={})
    await client.err("GET", f"{P}/experiments/99999", 404)
    await client.err(
        "GET", f"/api/v0/projects/{other_pid}/experiments/{exp['id']}", 404, headers=other_headers
    )
    assert snapshot() == before


async def test_retry_failed_regenerates_only_failed_rows(client: Any, tasks_helpers: Any) -> None:
    h = tasks_helpers
    fx = await h.make_fixture(
        client,
        rows=[{"topic": "AI"}, {"topic": "ECHO_FAIL now"}, {"topic": "tea"}],
        criteria=["a?", "b?"],
    )
    exp = await h.create_experiment(client, fx, generate=True)
    final = await h.run_to_end(client, exp)
    assert final["status"] == "SUCCESS"  # one failed row does not fail the run
    first = await h.all_responses(client, exp["id"])
    failed = [r for r in first if r["error"]]
    assert len(failed) == 1 and "ECHO_FAIL" in failed[0]["error"] and failed[0]["ratings"] == []
    got = await client.ok("GET", f"{P}/experiments/{exp['id']}")
    assert got["results"]["num_failed_responses"] == 1
    assert got["results"]["num_rated_responses"] == 2
    assert "generation failed" in got["logs"]

    retry_body = {"rating_mode": "detailed", "discard_annotations": False}
    retried = await client.ok("POST", f"{P}/experiments/{exp['id']}/retry-failed", json=retry_body)
    assert retried["generation_task_id"]
    final = await h.run_to_end(client, retried)
    assert final["total_responses"] == 1, final  # only the failed row was retried
    second = await h.all_responses(client, exp["id"])
    kept = {r["id"]: r for r in first if not r["error"]}
    assert {r["id"]: r for r in second if not r["error"]} == kept  # ids, content, ratings
    [again] = [r for r in second if r["error"]]
    assert again["id"] != failed[0]["id"]

    # fix the data, retry again: now every row succeeded
    row_id = fx.row_ids[1]
    await client.ok(
        "PUT",
        f"{P}/collections/{fx.collection_id}/entries/{row_id}",
        json={"input_values": {"topic": "fixed"}},
    )
    await client.ok("PATCH", f"{P}/responses/{again['id']}", json={"annotation": "keep me"})
    detail = await client.err(
        "POST", f"{P}/experiments/{exp['id']}/retry-failed", 409, json=retry_body
    )
    assert "discard_annotations" in detail
    retried = await client.ok(
        "POST",
        f"{P}/experiments/{exp['id']}/retry-failed",
        json={"rating_mode": "detailed", "discard_annotations": True},
    )
    assert (await h.run_to_end(client, retried))["status"] == "SUCCESS"
    third = await h.all_responses(client, exp["id"])
    assert not any(r["error"] for r in third) and len(third) == 3
    got = await client.ok("GET", f"{P}/experiments/{exp['id']}")
    assert got["results"]["num_failed_responses"] == 0
    assert got["results"]["num_rated_responses"] == 3
    assert got["has_internal_error"] is False
    # nothing failed: no task
    nothing = await client.ok("POST", f"{P}/experiments/{exp['id']}/retry-failed", json=retry_body)
    assert nothing["generation_task_id"] is None
    # an empty body is accepted too
    nothing = await client.ok("POST", f"{P}/experiments/{exp['id']}/retry-failed")
    assert nothing["generation_task_id"] is None


async def test_delete_experiment_removes_its_responses(
    client: Any, tasks_helpers: Any, db_path: Path
) -> None:
    h = tasks_helpers
    fx = await h.make_fixture(client)
    exp = await h.create_experiment(client, fx, generate=True)
    await h.run_to_end(client, exp)
    assert len(await h.all_responses(client, exp["id"])) == 2
    await client.ok("DELETE", f"{P}/experiments/{exp['id']}")
    await client.err("GET", f"{P}/experiments/{exp['id']}", 404)
    await client.err("DELETE", f"{P}/experiments/{exp['id']}", 404)
    conn = sqlite3.connect(db_path)
    try:
        for table in ("responses", "ratings", "prompts"):
            assert conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0] == 0
    finally:
        conn.close()
    # the objects it used are still there and usable
    again = await h.create_experiment(client, fx, exp["name"])
    assert again["name"] == exp["name"]


async def test_response_column_experiment_rates_existing_answers(
    client: Any, tasks_helpers: Any
) -> None:
    h = tasks_helpers
    fx = await h.make_fixture(
        client,
        rows=[{"topic": "a", "answer": "fine"}, {"topic": "b", "answer": "ECHO_NO bad"}],
        criteria=["good?"],
    )
    coll = await client.ok("GET", f"{P}/collections/{fx.collection_id}")
    column = next(c for c in coll["columns"] if c["name"] == "answer")
    exp = await h.create_experiment(
        client, fx, generate=True, response_column_id=column["id"], n_epochs=3
    )
    assert exp["n_epochs"] == 1
    await h.run_to_end(client, exp)
    responses = await h.all_responses(client, exp["id"])  # rows run concurrently: any order
    responses.sort(key=lambda r: r["prompt"]["template_variables"]["id"])
    assert [r["messages"][0]["content"] for r in responses] == ["fine", "ECHO_NO bad"]
    assert [r["ratings"][0]["rating"] for r in responses] == ["YES", "NO"]
    bad = await client.ok("GET", f"{P}/collections/{fx.collection_id}")
    topic = next(c for c in bad["columns"] if c["name"] == "topic")
    await client.ok(
        "POST", f"{P}/experiments", json=h.experiment_body(fx, response_column_id=topic["id"])
    )
    assert "response_column_id" in await client.err(
        "POST", f"{P}/experiments", 422, json=h.experiment_body(fx, response_column_id=99999)
    )


# ---- the official SDK's requests -------------------------------------------------------------

MINE = ("experiments", "responses", "ratings")
NOT_MINE = ("/samples", "/stats", "/comparison/", "/map")


def _mine(path: str) -> bool:
    parts = path.split("/")
    return len(parts) > 5 and parts[5] in MINE and not any(s in path for s in NOT_MINE)


async def test_replay_official_requests(client: Any, tasks_helpers: Any) -> None:
    """Every captured request to experiments / responses / ratings is accepted (2xx)."""
    h = tasks_helpers
    golden = [
        json.loads(line)
        for line in (GOLDEN_DIR / "official-requests.jsonl").read_text().splitlines()
        if line.strip()
    ]
    fx = await h.make_fixture(client, rows=[{"topic": "AI", "cat": "a"}], criteria=["a", "b"])
    closed = _closed_port()
    llm = await client.ok(
        "POST",
        f"{P}/llm_configs",
        json={
            "name": "L",
            "llm_model_name": "gpt",
            "api_key": "sk",
            "llm_base_url": f"http://127.0.0.1:{closed}/v1",
            "max_retries": 0,
            "timeout": 5,
        },
    )
    ids = {
        "11": fx.template_id,
        "21": fx.collection_id,
        "31": fx.set_id,
        "61": llm["id"],
        "41": fx.row_ids[0],
    }
    state: dict[str, Any] = {"experiment": None, "task": None, "batch": None, "rate": None}

    async def response_91() -> int:
        items = await h.all_responses(client, state["experiment"])
        ok_items = [r for r in items if not r["error"]]
        if ok_items:
            return int(ok_items[0]["id"])
        seed = await client.ok(
            "POST",
            f"{P}/responses",
            json={
                "template_variables_id": fx.row_ids[0],
                "experiment_id": state["experiment"],
                "messages": "seeded",
            },
        )
        return int(seed["id"])

    async def rewrite(value: Any, key: str | None = None) -> Any:
        if isinstance(value, dict):
            return {k: await rewrite(v, k) for k, v in value.items()}
        if isinstance(value, list):
            return [await rewrite(v, key) for v in value]
        if (
            key
            in (
                "prompt_template_id",
                "collection_id",
                "criterion_set_id",
                "llm_config_id",
                "template_variables_id",
            )
            and value is not None
        ):
            return type(value)(ids[str(value)])
        if key == "experiment_id" and value is not None:
            return type(value)(state["experiment"])
        if key in ("prompt_response_ids", "response_ids", "prompt_response_id"):
            return type(value)(await response_91())
        return value

    async def wait_idle() -> None:
        if state["experiment"] is None:
            return
        exp = await client.ok("GET", f"{P}/experiments/{state['experiment']}")
        if exp["generation_task_id"]:
            await h.run_to_end(client, exp)

    replayed = 0
    for request in golden:
        path = request["path"]
        if not _mine(path):
            continue
        parts = path.split("/")
        parts[4] = "1"
        for i, part in enumerate(parts):
            if part == "101":
                parts[i] = str(state["experiment"])
            elif part == "91":
                parts[i] = str(await response_91())
            elif part in ("task-run", "task-abc"):
                parts[i] = state["task"]
            elif part == "batch-task-1":
                parts[i] = state["batch"]
            elif part == "rate-task-1":
                parts[i] = state["rate"]
        url = "/".join(parts)
        if url.endswith(("/run", "/retry-failed")):
            await wait_idle()
        query = [(k, await rewrite(v, k)) for k, vs in request["query"].items() for v in vs]
        body = await rewrite(request["body"])
        headers = {k: v for k, v in request["headers"].items() if k != "X-API-Key"}
        kwargs: dict[str, Any] = {"headers": headers, "params": query}
        if url.endswith("/responses/batches") and request["method"] == "POST":
            # The capture adds two responses for one entry and epoch: the server keeps one
            # response per (experiment, entry, epoch), so that body is refused whole (409,
            # nothing stored); the same request for two fresh entries is accepted.
            kwargs["data"] = json.dumps(body).encode()
            refused = await client.request(request["method"], url, **kwargs)
            assert refused.status == 409, await refused.text()
            assert "one response per entry and epoch" in (await refused.json())["detail"]
            fresh = [
                await client.ok(
                    "POST",
                    f"{P}/collections/{fx.collection_id}/entries",
                    json={"input_values": {"topic": f"fresh {i}", "cat": "a"}},
                )
                for i in range(2)
            ]
            for item, entry in zip(body["prompt_response_ins"], fresh, strict=True):
                item["template_variables_id"] = entry["id"]
        if body is not None:
            kwargs["data"] = json.dumps(body).encode()
        resp = await client.request(request["method"], url, **kwargs)
        text = await resp.text()
        assert 200 <= resp.status < 300, (
            f"{request['method']} {url} {query} -> {resp.status}: {text}"
        )
        if url.endswith("/stream"):
            assert resp.headers["Content-Type"].startswith("text/event-stream")
            assert '"status":"SUCCESS"' in text or '"status":"FAILURE"' in text, text
        answer = json.loads(text) if text and not url.endswith("/stream") else None
        if request["method"] == "POST" and url.endswith("/experiments"):
            state["experiment"] = answer["id"]
            state["task"] = answer["generation_task_id"] or state["task"]
        elif url.endswith(("/run", "/retry-failed")):
            state["task"] = answer["generation_task_id"] or state["task"]
        elif url.endswith("/responses/batches"):
            state["batch"] = answer
            await h.poll(client, f"{P}/responses/batches/{answer}")
        elif url.endswith("/ratings/batches"):
            state["rate"] = answer
        replayed += 1
    assert replayed >= 35
    await wait_idle()


def _closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _missing_keys(example: Any, actual: Any, where: str = "$") -> list[str]:
    missing: list[str] = []
    if isinstance(example, dict):
        assert isinstance(actual, dict), f"{where}: expected an object, got {actual!r}"
        for key, value in example.items():
            if key not in actual:
                missing.append(f"{where}.{key}")
            elif key == "mean_rating_by_criterion_id":  # a map keyed by criterion id
                continue
            elif actual[key] is not None and value is not None:
                missing += _missing_keys(value, actual[key], f"{where}.{key}")
    elif isinstance(example, list) and isinstance(actual, list) and example and actual:
        missing += _missing_keys(example[0], actual[0], f"{where}[0]")
    return missing


async def test_answers_have_every_key_of_the_examples(client: Any, tasks_helpers: Any) -> None:
    examples = json.loads((GOLDEN_DIR / "response-examples.json").read_text())
    h = tasks_helpers
    fx = await h.make_fixture(client)
    exp = await h.create_experiment(client, fx, generate=True)
    await h.run_to_end(client, exp)
    got = await client.ok("GET", f"{P}/experiments/{exp['id']}")
    listed = await client.ok("GET", f"{P}/experiments", params={"experiment_name": exp["name"]})
    [response, _] = await h.all_responses(client, exp["id"])
    answers = {
        "EXP": got,
        "RESULTS": got["results"],
        "RESP": response,
        "PROMPT": response["prompt"],
        "RATING": response["ratings"][0],
    }
    for name, actual in answers.items():
        assert not _missing_keys(examples[name], actual), (name, actual)
    assert not _missing_keys(examples["EXP"], listed["items"][0])
