"""The fast read paths keep their answers: response pages (index-only page ids, structs shared
while the database is unchanged), list pages with batched results, batched rating loads."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from elluminate.server import ServerConfig, create_app

P = "/api/v0/projects/1"
API_KEY = "test-key-0123456789"


async def ran(client: Any, h: Any, **fixture: Any) -> tuple[Any, dict[str, Any]]:
    fx = await h.make_fixture(client, **fixture)
    exp = await h.create_experiment(client, fx, generate=True)
    assert (await h.run_to_end(client, exp))["status"] == "SUCCESS"
    return fx, exp


async def test_pages_of_an_experiment_cover_it_once_in_id_order(
    aiohttp_client: Any, tmp_path: Path, tasks_helpers: Any
) -> None:
    config = ServerConfig(db_path=tmp_path / "p.db", api_key=API_KEY, llm="echo", page_size=3)
    client = await aiohttp_client(create_app(config), headers={"X-API-Key": API_KEY})
    _, exp = await ran(client, tasks_helpers, rows=[{"topic": str(i)} for i in range(7)])
    await ran(client, tasks_helpers)  # another experiment's responses interleave with none
    seen: list[int] = []
    for page in (1, 2, 3, 4):
        body = await client.ok(
            "GET", f"{P}/responses", params={"experiment_id": exp["id"], "page": page}
        )
        assert body["count"] == 7
        seen += [r["id"] for r in body["items"]]
        for response in body["items"]:
            assert len(response["ratings"]) == 2
            assert [r["id"] for r in response["ratings"]] == sorted(
                r["id"] for r in response["ratings"]
            )
    assert seen == sorted(seen) and len(set(seen)) == 7
    # combined filters still work on the same path
    epoch = await client.ok(
        "GET", f"{P}/responses", params={"experiment_id": exp["id"], "epoch": 1, "page": 3}
    )
    assert epoch["count"] == 7 and [r["id"] for r in epoch["items"]] == seen[6:]


async def test_another_projects_experiment_lists_nothing(
    client: Any, other: Any, tasks_helpers: Any
) -> None:
    _, exp = await ran(client, tasks_helpers)
    other_pid, headers = other
    body = await client.ok(
        "GET",
        f"/api/v0/projects/{other_pid}/responses",
        params={"experiment_id": exp["id"]},
        headers=headers,
    )
    assert body == {"items": [], "count": 0}
    missing = await client.ok("GET", f"{P}/responses", params={"experiment_id": 999999})
    assert missing == {"items": [], "count": 0}
    await client.err("GET", f"{P}/responses", 422, params={"experiment_id": 1, "page": "x"})


async def test_shared_structs_follow_every_write(
    client: Any, db_path: Path, tasks_helpers: Any
) -> None:
    fx, exp = await ran(client, tasks_helpers)

    async def first() -> dict[str, Any]:
        body = await client.ok("GET", f"{P}/responses", params={"experiment_id": exp["id"]})
        return body["items"][0]  # type: ignore[no-any-return]

    before = await first()
    collection = before["prompt"]["template_variables"]["collection"]
    assert collection["variables_count"] == 2
    # a write through the server: the collection's entry count in the page follows
    await client.ok(
        "POST", f"{P}/collections/{fx.collection_id}/entries", json={"input_values": {"topic": "x"}}
    )
    assert (await first())["prompt"]["template_variables"]["collection"]["variables_count"] == 3
    # a write by another connection to the same file (PRAGMA data_version)
    conn = sqlite3.connect(db_path)
    with conn:
        conn.execute(
            "UPDATE collections SET name = 'renamed elsewhere' WHERE id = ?", (fx.collection_id,)
        )
        conn.execute("UPDATE criteria SET label = 'L' WHERE id = ?", (fx.criterion_ids[0],))
    conn.close()
    after = await first()
    assert after["prompt"]["template_variables"]["collection"]["name"] == "renamed elsewhere"
    labels = {r["criterion"]["id"]: r["criterion"]["label"] for r in after["ratings"]}
    assert labels[fx.criterion_ids[0]] == "L"


async def test_list_page_results_equal_single_experiment_results(
    client: Any, tasks_helpers: Any
) -> None:
    fx, first = await ran(client, tasks_helpers, rows=[{"topic": "a"}, {"topic": "ECHO_NO"}])
    second = await tasks_helpers.create_experiment(client, fx, generate=True)
    await tasks_helpers.run_to_end(client, second)
    untouched = await tasks_helpers.create_experiment(client, fx)  # never run: no results
    listed = await client.ok("GET", f"{P}/experiments", params={"collection_id": fx.collection_id})
    assert [e["id"] for e in listed["items"]] == [first["id"], second["id"], untouched["id"]]
    for item in listed["items"]:
        single = await client.ok("GET", f"{P}/experiments/{item['id']}")
        for key in ("experiment_duration_seconds",):  # wall clock, differs between reads
            if item["results"] is not None:
                item["results"].pop(key)
                single["results"].pop(key)
        assert item["results"] == single["results"]
    assert listed["items"][2]["results"] is None
    results = listed["items"][0]["results"]
    assert results["num_rated_responses"] == 2
    assert 0 < results["mean_all_ratings"]["yes"] < 1


async def test_rating_batch_counts_every_response(client: Any, tasks_helpers: Any) -> None:
    _, exp = await ran(client, tasks_helpers, rows=[{"topic": str(i)} for i in range(5)])
    ids = [r["id"] for r in await tasks_helpers.all_responses(client, exp["id"])]
    task_id = await client.ok(  # a repeated id is rated once
        "POST",
        f"{P}/ratings/batches",
        json={"prompt_response_ids": [ids[3], *ids], "rating_mode": "detailed"},
    )
    final = await tasks_helpers.poll(client, f"{P}/ratings/batches/{task_id}")
    assert final["status"] == "SUCCESS"
    assert final["completed_ratings"] == final["total_responses"] == 5
    again = await tasks_helpers.all_responses(client, exp["id"])
    assert all(len(r["ratings"]) == 2 for r in again)
