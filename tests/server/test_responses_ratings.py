"""Responses and ratings endpoints: list/get/add/generate/batches/delete/annotate, rating."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from elluminate.server import ServerConfig, create_app

P = "/api/v0/projects/1"
API_KEY = "test-key-0123456789"
TERMINAL = {"SUCCESS", "FAILURE", "REVOKED", "REJECTED", "TIMEOUT"}


async def ran(client: Any, h: Any, **fixture: Any) -> tuple[Any, dict[str, Any]]:
    """A fixture and a finished experiment on it."""
    fx = await h.make_fixture(client, **fixture)
    exp = await h.create_experiment(client, fx, generate=True)
    assert (await h.run_to_end(client, exp))["status"] == "SUCCESS"
    return fx, exp


def item(fx: Any, exp: dict[str, Any], messages: Any, row: int = 0, **extra: Any) -> dict[str, Any]:
    body = {
        "template_variables_id": fx.row_ids[row],
        "experiment_id": exp["id"],
        "epoch": 1,
        "llm_config_id": None,
        "messages": messages,
        "metadata": None,
    }
    body.update(extra)
    return body


async def test_list_filters_and_pages(
    aiohttp_client: Any, tmp_path: Path, tasks_helpers: Any
) -> None:
    h = tasks_helpers
    config = ServerConfig(db_path=tmp_path / "p.db", api_key=API_KEY, llm="echo", page_size=2)
    client = await aiohttp_client(create_app(config), headers={"X-API-Key": API_KEY})
    fx, exp = await ran(client, h, rows=[{"topic": str(i)} for i in range(5)])
    _, other_exp = await ran(client, h)
    page1 = await client.ok("GET", f"{P}/responses", params={"experiment_id": exp["id"], "page": 1})
    assert page1["count"] == 5 and len(page1["items"]) == 2
    everything = await h.all_responses(client, exp["id"])
    ids = [r["id"] for r in everything]
    assert ids == sorted(ids) and len(ids) == 5
    chosen = await client.ok(
        "GET", f"{P}/responses", params=[("response_ids", ids[1]), ("response_ids", ids[3])]
    )
    assert [r["id"] for r in chosen["items"]] == [ids[1], ids[3]] and chosen["count"] == 2
    by_row = await client.ok(
        "GET", f"{P}/responses", params={"template_variables_id": fx.row_ids[2]}
    )
    assert [r["id"] for r in by_row["items"]] == [ids[2]]
    by_template = await client.ok(
        "GET", f"{P}/responses", params={"prompt_template_id": fx.template_id}
    )
    assert by_template["count"] == 5
    by_collection = await client.ok(
        "GET", f"{P}/responses", params={"collection_id": fx.collection_id}
    )
    assert by_collection["count"] == 5
    assert (await client.ok("GET", f"{P}/responses"))["count"] == 7
    assert (await client.ok("GET", f"{P}/responses", params={"epoch": 2}))["count"] == 0
    tokens = await client.ok(
        "GET",
        f"{P}/responses",
        params={"experiment_id": other_exp["id"], "input_tokens_min": 2, "output_tokens_max": 3},
    )
    assert tokens["count"] == 2
    assert (await client.ok("GET", f"{P}/responses", params={"input_tokens_min": 99}))["count"] == 0
    await client.err("GET", f"{P}/responses", 422, params={"duration_seconds_min": "abc"})
    # numbers a column cannot hold answer 422, not a database error (found by the fuzz run)
    for key, value in (
        ("output_tokens_min", "7.26e123"),
        ("input_tokens_max", "-1e19"),
        ("output_tokens_max", "inf"),
        ("duration_seconds_min", "nan"),
        ("duration_seconds_max", "-inf"),
    ):
        await client.err("GET", f"{P}/responses", 422, params={key: value})
    await client.err("GET", f"{P}/responses", 422, params={"response_ids": "x"})
    one = await client.ok("GET", f"{P}/responses/{ids[0]}")
    assert one == everything[0]
    await client.err("GET", f"{P}/responses/999999", 404)


async def test_other_projects_responses_are_invisible(
    client: Any, tasks_helpers: Any, other: Any
) -> None:
    h = tasks_helpers
    _, exp = await ran(client, h)
    [first, _] = await h.all_responses(client, exp["id"])
    other_pid, headers = other
    base = f"/api/v0/projects/{other_pid}"
    await client.err("GET", f"{base}/responses/{first['id']}", 404, headers=headers)
    listed = await client.ok(
        "GET", f"{base}/responses", headers=headers, params={"experiment_id": exp["id"]}
    )
    assert listed == {"items": [], "count": 0}
    await client.err(
        "PATCH", f"{base}/responses/{first['id']}", 404, headers=headers, json={"annotation": "x"}
    )
    await client.err("DELETE", f"{base}/responses/{first['id']}", 404, headers=headers)
    await client.err(
        "POST",
        f"{base}/ratings",
        404,
        headers=headers,
        json={"prompt_response_id": first["id"], "rating_mode": "detailed"},
    )


async def test_add_generate_annotate_delete(client: Any, tasks_helpers: Any) -> None:
    h = tasks_helpers
    fx = await h.make_fixture(client)
    exp = await h.create_experiment(client, fx)
    added = await client.ok("POST", f"{P}/responses", json=item(fx, exp, "plain text", epoch=2))
    assert added["messages"] == [{"role": "assistant", "content": "plain text"}]
    assert added["epoch"] == 2 and added["error"] is None and added["ratings"] == []
    assert added["prompt"]["messages"] == [{"role": "user", "content": "Explain AI"}]
    sdk_message = {
        "content": "hello",
        "refusal": None,
        "role": "assistant",
        "annotations": None,
        "audio": None,
        "function_call": None,
        "tool_calls": [],
    }
    meta = {"duration_seconds": 1.5, "input_tokens": 4, "output_tokens": 2}
    added2 = await client.ok(
        "POST", f"{P}/responses", json=item(fx, exp, [sdk_message], row=1, metadata=meta)
    )
    assert added2["messages"] == [sdk_message]
    assert added2["generation_metadata"]["input_tokens"] == 4
    generated = await client.ok("POST", f"{P}/responses/generate", json=item(fx, exp, []))
    assert generated["messages"] == [{"role": "assistant", "content": "Echo: Explain AI"}]
    assert generated["generation_metadata"]["output_tokens"] == 3
    annotated = await client.ok("PATCH", f"{P}/responses/{added['id']}", json={"annotation": "n"})
    assert annotated["annotation"] == "n"
    cleared = await client.ok("PATCH", f"{P}/responses/{added['id']}", json={"annotation": ""})
    assert cleared["annotation"] == ""
    await client.err("PATCH", f"{P}/responses/{added['id']}", 422, json={"annotation": 3})
    await client.ok("DELETE", f"{P}/responses/{added['id']}")
    await client.err("GET", f"{P}/responses/{added['id']}", 404)
    got = await client.ok("GET", f"{P}/experiments/{exp['id']}")
    assert got["results"]["input_tokens_per_response"] == [4, 2]


async def test_bad_response_inputs_write_nothing(
    client: Any, tasks_helpers: Any, snapshot: Any
) -> None:
    h = tasks_helpers
    fx = await h.make_fixture(client)
    other_fx = await h.make_fixture(client)
    exp = await h.create_experiment(client, fx)
    before = snapshot()
    url = f"{P}/responses"
    assert "must not be empty" in await client.err("POST", url, 422, json=item(fx, exp, []))
    detail = await client.err(
        "POST", url, 422, json=item(fx, exp, [{"role": "developer", "content": "x"}])
    )
    assert "role" in detail
    detail = await client.err(
        "POST", url, 422, json=item(fx, exp, [{"role": "user", "content": "x"}])
    )
    assert "assistant or tool" in detail
    detail = await client.err(
        "POST", url, 404, json={**item(fx, exp, "x"), "template_variables_id": other_fx.row_ids[0]}
    )
    assert "collection entry" in detail
    assert "experiment" in await client.err(
        "POST", url, 404, json={**item(fx, exp, "x"), "experiment_id": 99999}
    )
    assert "LLM config" in await client.err(
        "POST", url, 404, json=item(fx, exp, "x", llm_config_id=99999)
    )
    assert "epoch" in await client.err("POST", url, 422, json=item(fx, exp, "x", epoch=0))
    batch = {
        "prompt_response_ins": [
            item(fx, exp, "fine"),
            item(fx, exp, [{"role": "user", "content": "only a user"}]),
        ]
    }
    detail = await client.err("POST", f"{url}/batches", 422, json=batch)
    assert "prompt_response_ins[1]" in detail
    await client.err("POST", f"{url}/batches", 422, json={"prompt_response_ins": "x"})
    assert snapshot() == before


async def test_response_batches_add_and_generate(client: Any, tasks_helpers: Any) -> None:
    h = tasks_helpers
    fx = await h.make_fixture(client, rows=[{"topic": "a"}, {"topic": "ECHO_FAIL"}])
    exp = await h.create_experiment(client, fx)
    empty = await client.ok("POST", f"{P}/responses/batches", json={"prompt_response_ins": []})
    assert empty is None
    task_id = await client.ok(
        "POST",
        f"{P}/responses/batches",
        json={
            "prompt_response_ins": [  # one response per (entry, epoch)
                item(fx, exp, "given"),
                item(fx, exp, [], epoch=2),
                item(fx, exp, [], row=1),
            ]
        },
    )
    assert isinstance(task_id, str)
    final = await h.poll(client, f"{P}/responses/batches/{task_id}")
    assert final["status"] == "SUCCESS" and final["completed_responses"] == 3
    # by (row, epoch): the batch generates concurrently, so ids come in any order
    responses = sorted(
        await h.all_responses(client, exp["id"]),
        key=lambda r: (fx.row_ids.index(r["prompt"]["template_variables"]["id"]), r["epoch"]),
    )
    assert [r["messages"][0]["content"] if r["messages"] else None for r in responses] == [
        "given",
        "Echo: Explain a",
        None,
    ]
    assert "ECHO_FAIL" in responses[2]["error"]
    # only failures: FAILURE (the blocking SDK raises on it)
    task_id = await client.ok(
        "POST",
        f"{P}/responses/batches",
        json={"prompt_response_ins": [item(fx, exp, [], row=1, epoch=2)]},
    )
    final = await h.poll(client, f"{P}/responses/batches/{task_id}")
    assert final["status"] == "FAILURE" and "ECHO_FAIL" in final["error_msg"]


async def test_rate_one_and_rerate_replaces(client: Any, tasks_helpers: Any) -> None:
    h = tasks_helpers
    fx, exp = await ran(client, h, criteria=["clear?", "ECHO_NO strict?"])
    [first, second] = await h.all_responses(client, exp["id"])
    old_ids = {r["id"] for r in first["ratings"]}
    ratings = await client.ok(
        "POST", f"{P}/ratings", json={"prompt_response_id": first["id"], "rating_mode": "detailed"}
    )
    assert [r["rating"] for r in ratings] == ["YES", "NO"]
    assert [r["criterion"]["id"] for r in ratings] == fx.criterion_ids
    assert not old_ids & {r["id"] for r in ratings}
    listed = await client.ok("GET", f"{P}/ratings", params={"prompt_response_id": first["id"]})
    assert listed["items"] == ratings and listed["count"] == 2
    assert (await client.ok("GET", f"{P}/ratings"))["count"] == 4
    fast = await client.ok(
        "POST", f"{P}/ratings", json={"prompt_response_id": second["id"], "rating_mode": "fast"}
    )
    assert all(r["reasoning"] is None for r in fast)
    await client.err("POST", f"{P}/ratings", 404, json={"prompt_response_id": 99999})
    got = await client.ok("GET", f"{P}/experiments/{exp['id']}")
    assert got["results"]["mean_all_ratings"] == {"yes": 0.5, "no": 0.5}


async def test_rating_batches_poll_and_stream(client: Any, tasks_helpers: Any) -> None:
    h = tasks_helpers
    _, exp = await ran(client, h, rows=[{"topic": str(i)} for i in range(4)])
    responses = await h.all_responses(client, exp["id"])
    ids = [r["id"] for r in responses]
    before = {r["id"]: [x["id"] for x in r["ratings"]] for r in responses}
    task_id = await client.ok(
        "POST", f"{P}/ratings/batches", json={"prompt_response_ids": ids, "rating_mode": "detailed"}
    )
    assert isinstance(task_id, str)
    events, raw = await h.read_sse(client, f"{P}/ratings/batches/{task_id}/stream")
    terminal = [e for e in events if e["status"] in TERMINAL]
    assert len(terminal) == 1 and events[-1]["status"] == "SUCCESS"
    assert raw.endswith(b"\n\n")
    status = await client.ok("GET", f"{P}/ratings/batches/{task_id}")
    assert status["status"] == "SUCCESS" and status["completed_ratings"] == 4
    rerated = await client.ok("GET", f"{P}/responses", params=[("response_ids", i) for i in ids])
    for response in rerated["items"]:
        assert len(response["ratings"]) == 2
        assert not set(before[response["id"]]) & {r["id"] for r in response["ratings"]}
    assert (await client.ok("GET", f"{P}/ratings"))["count"] == 8


async def test_rating_refusals_write_nothing(
    client: Any, tasks_helpers: Any, snapshot: Any
) -> None:
    h = tasks_helpers
    fx = await h.make_fixture(client, rows=[{"topic": "a"}, {"topic": "ECHO_FAIL"}])
    exp = await h.create_experiment(client, fx, generate=True)
    await h.run_to_end(client, exp)
    # the two rows run concurrently: either may hold the lower id
    responses = await h.all_responses(client, exp["id"])
    good, bad = sorted(responses, key=lambda r: r["error"] is not None)
    assert good["error"] is None and bad["error"] is not None
    empty = await client.ok("POST", f"{P}/criterion_sets", json={"name": "nothing"})
    unrated = await h.create_experiment(client, fx, criterion_set_id=empty["id"])
    lonely = await client.ok("POST", f"{P}/responses", json=item(fx, unrated, "x"))
    before = snapshot()
    detail = await client.err(
        "POST",
        f"{P}/ratings",
        422,
        json={"prompt_response_id": bad["id"], "rating_mode": "detailed"},
    )
    assert "generation failed" in detail
    detail = await client.err(
        "POST",
        f"{P}/ratings",
        422,
        json={"prompt_response_id": lonely["id"], "rating_mode": "detailed"},
    )
    assert "no criteria" in detail
    detail = await client.err(
        "POST",
        f"{P}/ratings/batches",
        404,
        json={"prompt_response_ids": [good["id"], 99999, 99998], "rating_mode": "detailed"},
    )
    assert "99999, 99998" in detail
    detail = await client.err(
        "POST",
        f"{P}/ratings/batches",
        422,
        json={"prompt_response_ids": [good["id"], lonely["id"]], "rating_mode": "detailed"},
    )
    assert "no criteria" in detail
    await client.err("POST", f"{P}/ratings/batches", 422, json={"prompt_response_ids": "x"})
    assert snapshot() == before


async def test_judge_failures_are_recorded_not_guessed(client: Any, tasks_helpers: Any) -> None:
    """A criterion the judge cannot handle: failed ratings, never YES/NO, logged."""
    h = tasks_helpers
    fx = await h.make_fixture(
        client, rows=[{"topic": "a"}, {"topic": "b"}], criteria=["fine?", "ECHO_FAIL judge"]
    )
    exp = await h.create_experiment(client, fx, generate=True)
    final = await h.run_to_end(client, exp)
    assert final["status"] == "SUCCESS"
    got = await client.ok("GET", f"{P}/experiments/{exp['id']}")
    results = got["results"]
    assert results["num_rated_responses"] == 0  # each response has a failed rating
    assert list(results["mean_rating_by_criterion_id"]) == [str(fx.criterion_ids[0])]
    assert results["mean_all_ratings"] == {"yes": 1.0, "no": 0.0}
    assert "rating for criterion" in got["logs"] and "failed" in got["logs"]
    for response in await h.all_responses(client, exp["id"]):
        assert [r["criterion"]["id"] for r in response["ratings"]] == [fx.criterion_ids[0]]
    # rating one: 502 naming the failure, the good rating is stored
    [first, _] = await h.all_responses(client, exp["id"])
    detail = await client.err(
        "POST",
        f"{P}/ratings",
        502,
        json={"prompt_response_id": first["id"], "rating_mode": "detailed"},
    )
    assert "ECHO_FAIL" in detail
    # every rating fails: the batch task fails
    only_bad = await h.make_fixture(client, criteria=["ECHO_FAIL only"])
    exp2 = await h.create_experiment(client, only_bad, generate=True)
    final = await h.run_to_end(client, exp2)
    assert final["status"] == "FAILURE" and "every rating failed" in final["error_msg"]
    ids = [r["id"] for r in await h.all_responses(client, exp2["id"])]
    task_id = await client.ok(
        "POST", f"{P}/ratings/batches", json={"prompt_response_ids": ids, "rating_mode": "detailed"}
    )
    final = await h.poll(client, f"{P}/ratings/batches/{task_id}")
    assert final["status"] == "FAILURE" and "every rating failed" in final["error_msg"]
    # retry-failed rates the responses whose ratings failed (still failing here)
    retried = await client.ok("POST", f"{P}/experiments/{exp['id']}/retry-failed", json={})
    final = await h.run_to_end(client, retried)
    assert final["total_responses"] == 2  # the two responses with a failed rating
