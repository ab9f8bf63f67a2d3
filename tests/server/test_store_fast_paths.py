"""Writes that let a constraint answer instead of a lookup first (on SQLite and PostgreSQL):
ratings for a deleted response, and a second trial-0 response for one (row, epoch)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from elluminate.server.api.http import DB_KEY
from elluminate.server.store import responses as store
from elluminate.server.store.connection import ForeignKeyViolation
from elluminate.server.store.responses import DuplicateResponse, Outcome

P = "/api/v0/projects/1"


async def finished_experiment(client: Any, h: Any) -> tuple[Any, dict[str, Any], list[Any]]:
    fx = await h.make_fixture(client, rows=[{"topic": "a"}, {"topic": "b"}])
    exp = await h.create_experiment(client, fx, generate=True)
    final = await h.run_to_end(client, exp)
    assert final["status"] == "SUCCESS", final
    return fx, exp, await h.all_responses(client, exp["id"])


def outcome(criterion_id: int) -> Outcome:
    return Outcome(criterion_id=criterion_id, rating="YES", reasoning="seen", metadata=None,
                   error=None, raw_text=None, from_cache=False)


async def ratings_of(client: Any, response_id: int) -> list[Any]:
    got = await client.ok("GET", f"{P}/responses/{response_id}")
    return list(got["ratings"])


async def test_ratings_for_a_deleted_response_are_refused_by_its_key(
    client: Any, tasks_helpers: Any
) -> None:
    fx, _, responses = await finished_experiment(client, tasks_helpers)
    db = client.server.app[DB_KEY]
    kept, deleted = responses[0]["id"], responses[1]["id"]
    await client.ok("DELETE", f"{P}/responses/{deleted}", status=204)
    async with db.begin() as conn:
        assert not await store.store_ratings_if_response_exists(
            conn, 1, deleted, [outcome(fx.criterion_ids[0])]
        )
        # the transaction goes on: a later write in it is kept
        assert await store.store_ratings_if_response_exists(
            conn, 1, kept, [outcome(c) for c in fx.criterion_ids]
        )
    assert len(await ratings_of(client, kept)) == len(fx.criterion_ids)
    async with db.connect() as conn:
        assert not await store.response_exists(conn, deleted)


async def test_another_broken_reference_is_not_taken_for_a_deleted_response(
    client: Any, tasks_helpers: Any
) -> None:
    _, _, responses = await finished_experiment(client, tasks_helpers)
    db = client.server.app[DB_KEY]
    with pytest.raises(ForeignKeyViolation):
        async with db.begin() as conn:
            await store.store_ratings_if_response_exists(
                conn, 1, responses[0]["id"], [outcome(10**6)]  # no such criterion
            )


async def test_a_second_trial_0_response_is_refused_by_the_unique_key(
    client: Any, tasks_helpers: Any
) -> None:
    fx, exp, responses = await finished_experiment(client, tasks_helpers)
    db = client.server.app[DB_KEY]
    taken = responses[0]
    row_id = taken["prompt"]["template_variables"]["id"]
    async with db.begin() as conn:
        prompt_id = await store.insert_prompt(conn, 1, exp["id"], None, row_id, [])
        for any_trial in (True, False):  # with the lookup, and with the key alone
            with pytest.raises(DuplicateResponse):
                await store.insert_response(
                    conn, 1, exp["id"], prompt_id, row_id=row_id, epoch=taken["epoch"],
                    messages=[], metadata=None, error=None, llm_config_id=None,
                    any_trial=any_trial,
                )
        fresh = await store.insert_response(
            conn, 1, exp["id"], prompt_id, row_id=row_id, epoch=taken["epoch"] + 1,
            messages=[], metadata=None, error=None, llm_config_id=None, any_trial=False,
        )
    assert fresh > max(r["id"] for r in responses)
    assert len(await tasks_helpers.all_responses(client, exp["id"])) == len(responses) + 1


async def test_a_response_deleted_while_it_is_rated_is_skipped_and_the_run_goes_on(
    aiohttp_client: Any, config: Any, tasks_helpers: Any
) -> None:
    import dataclasses

    from elluminate.server.app import create_app

    h = tasks_helpers
    app = create_app(dataclasses.replace(config, echo_latency=0.4))
    client = await aiohttp_client(app, headers={"X-API-Key": config.api_key})
    fx = await h.make_fixture(client, rows=[{"topic": "kept"}, {"topic": "deleted"}])
    exp = await h.create_experiment(client, fx, generate=True)
    victim = None
    for _ in range(200):  # the responses exist; their ratings are being judged (0.4 s)
        found = await h.all_responses(client, exp["id"])
        if len(found) == 2:
            victim = found[1]["id"]
            break
        await asyncio.sleep(0.02)
    assert victim is not None
    await client.ok("DELETE", f"{P}/responses/{victim}", status=204)
    final = await h.run_to_end(client, exp)
    assert final["status"] == "SUCCESS", final
    got = await client.ok("GET", f"{P}/experiments/{exp['id']}")
    assert f"response {victim} was deleted during the run" in got["logs"]
    [left] = await h.all_responses(client, exp["id"])
    assert len(left["ratings"]) == len(fx.criterion_ids)
