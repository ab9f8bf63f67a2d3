"""Experiment results kept per results version: every write to an experiment's responses or
ratings shows in the next read, on SQLite and PostgreSQL, through the list and the detail."""

from __future__ import annotations

from typing import Any

from elluminate.server.store.results import ResultsCache

P = "/api/v0/projects/1"


async def _results(client: Any, experiment: dict[str, Any], collection_id: int) -> list[Any]:
    """The experiment's results as the list and as the detail show them (both warm)."""
    listed = await client.ok("GET", f"{P}/experiments?collection_id={collection_id}")
    one = [e for e in listed["items"] if e["id"] == experiment["id"]][0]["results"]
    detail = (await client.ok("GET", f"{P}/experiments/{experiment['id']}"))["results"]
    assert one == detail
    return [one, detail]


async def test_every_write_to_responses_and_ratings_shows_in_the_results(
    client: Any, tasks_helpers: Any
) -> None:
    h = tasks_helpers
    fx = await h.make_fixture(client, rows=[{"topic": "AI"}, {"topic": "tea"}])
    exp = await h.create_experiment(client, fx, generate=True)
    assert (await h.run_to_end(client, exp))["status"] == "SUCCESS"
    for _ in range(2):  # the second read is served from what the first kept
        results, _ = await _results(client, exp, fx.collection_id)
        assert results["num_rated_responses"] == 2 and results["mean_all_ratings"]["yes"] == 1.0

    added = await client.ok("POST", f"{P}/responses", json={
        "experiment_id": exp["id"], "template_variables_id": fx.row_ids[0], "epoch": 2,
        "messages": [{"role": "assistant", "content": "ECHO_NO"}],
    })
    results, _ = await _results(client, exp, fx.collection_id)
    assert len(results["input_tokens_per_response"]) == 3 and results["num_rated_responses"] == 2

    await client.ok("POST", f"{P}/ratings", json={"prompt_response_id": added["id"]})
    results, _ = await _results(client, exp, fx.collection_id)
    assert results["num_rated_responses"] == 3
    assert results["mean_all_ratings"] == {"yes": 4 / 6, "no": 2 / 6}

    await client.ok("DELETE", f"{P}/responses/{added['id']}")
    results, _ = await _results(client, exp, fx.collection_id)
    assert results["num_rated_responses"] == 2 and results["mean_all_ratings"]["yes"] == 1.0

    responses = await h.all_responses(client, exp["id"])
    task = await client.ok("POST", f"{P}/ratings/batches", json={
        "prompt_response_ids": [r["id"] for r in responses], "rating_mode": "fast"})
    await h.poll(client, f"{P}/ratings/batches/{task}")
    results, _ = await _results(client, exp, fx.collection_id)
    assert results["num_rated_responses"] == 2

    other = await h.create_experiment(client, fx, generate=True, n_epochs=2)
    assert (await h.run_to_end(client, other))["status"] == "SUCCESS"
    results, _ = await _results(client, other, fx.collection_id)
    assert results["completed_epochs"] == 2 and len(results["input_tokens_per_response"]) == 4
    results, _ = await _results(client, exp, fx.collection_id)
    assert results["completed_epochs"] == 1 and len(results["input_tokens_per_response"]) == 2


def test_a_running_experiment_has_no_kept_results() -> None:
    cache = ResultsCache()
    row = {"id": 1, "results_version": 3, "started_at": "t0", "finished_at": None,
           "generation_task_id": "task", "llm_config_id": None}
    cache.put(row, None)
    assert cache.get(row) == (False, None)  # its duration runs with the clock
    done = {**row, "finished_at": "t1", "generation_task_id": None}
    cache.put(done, None)
    assert cache.get(done) == (True, None)
    assert cache.get({**done, "results_version": 4}) == (False, None)
