"""MULTI_TURN experiments over HTTP (CONTRACT.md 4.7, issue 14): the create rules (400 with
nothing stored), conversations between the user simulator and the model on the echo provider
(deterministic: the exact messages are known), the judge over the conversation with criteria
rendered from the scenario, termination reasons, failures and retry-failed."""

from __future__ import annotations

import asyncio
import json
from typing import Any

P = "/api/v0/projects/1"
TERMINAL = {"SUCCESS", "FAILURE", "REVOKED", "REJECTED", "TIMEOUT"}
OPENING = "Write your first message to the assistant. Your goal: "


async def wait(client: Any, experiment_id: int, task_id: str) -> dict[str, Any]:
    path = f"{P}/experiments/{experiment_id}/generation/{task_id}"
    logs = []
    for _ in range(1000):
        payload = await client.ok("GET", path, params={"connection_uuid": f"w-{task_id}"})
        logs.append(payload.get("logs_delta") or "")
        if payload["status"] in TERMINAL:
            return {**payload, "logs_delta": "".join(logs)}
        await asyncio.sleep(0.02)
    raise AssertionError(f"task {task_id} did not end")


async def responses_of(client: Any, experiment_id: int) -> list[dict[str, Any]]:
    body = await client.ok("GET", f"{P}/responses", params={"experiment_id": experiment_id})
    return sorted(body["items"], key=lambda r: r["id"])


async def setup(
    client: Any, goals: tuple[str, ...] = ("Get a refund", "Change the address"), tag: str = ""
) -> dict[str, Any]:
    sset = await client.ok(
        "POST",
        f"{P}/scenario-sets",
        json={"name": f"Support{tag}", "description": "", "fields": ["tone"]},
    )
    await client.ok(
        "POST",
        f"{P}/scenario-sets/{sset['id']}/scenarios/batch",
        json={
            "scenarios": [
                {
                    "goal": goal,
                    "expected_conversation_outcome": f"{goal} done",
                    "field_values": {"tone": "polite"},
                }
                for goal in goals
            ]
        },
    )
    personas = await client.ok(
        "POST",
        f"{P}/collections",
        json={
            "name": f"Personas{tag}",
            "collection_type": "PERSONA",
            "variables": [
                {"name": "Ann", "style": "impatient"},
                {"name": "Bob", "style": "chatty"},
            ],
        },
    )
    cset = await client.ok(
        "POST",
        f"{P}/criterion_sets",
        json={
            "name": f"Chat criteria{tag}",
            "criteria": [
                {"criterion_str": "Was the outcome '{{expected_conversation_outcome}}' reached?"},
                {"criterion_str": "Did the assistant stay {{tone}} about {{goal}}?"},
            ],
        },
    )
    return {"set": sset, "personas": personas, "criteria": cset}


def body(made: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "name": "Chat",
        "scenario_set_id": made["set"]["id"],
        "persona_group_id": made["personas"]["id"],
        "criterion_set_id": made["criteria"]["id"],
        "evaluation_mode": "MULTI_TURN",
        **extra,
    }


async def test_conversations_are_held_stored_and_rated(client: Any) -> None:
    made = await setup(client)
    exp = await client.ok(
        "POST",
        f"{P}/experiments",
        json=body(made, generate=True, agent_config={"max_turns": 2}),
    )
    assert exp["evaluation_mode"] == "MULTI_TURN" and exp["agent_config"] == {"max_turns": 2}
    assert exp["collection"]["read_only"] is True  # the set's scenarios, read-only
    final = await wait(client, exp["id"], exp["generation_task_id"])
    assert final["status"] == "SUCCESS", final
    assert "4 conversations" in final["logs_delta"] and "at most 2 turns" in final["logs_delta"]
    stored = await responses_of(client, exp["id"])
    assert len(stored) == 4  # 2 scenarios x 2 personas
    goals = sorted(r["prompt"]["template_variables"]["input_values"]["goal"] for r in stored)
    assert goals == ["Change the address"] * 2 + ["Get a refund"] * 2
    for response in stored:
        goal = response["prompt"]["template_variables"]["input_values"]["goal"]
        first = "Echo: " + OPENING + goal
        # the simulator echoes its cue, the model echoes the user; the simulator then echoes
        # the model's answer (its user turn)
        assert response["messages"] == [
            {"role": "user", "content": first},
            {"role": "assistant", "content": "Echo: " + first},
            {"role": "user", "content": "Echo: Echo: " + first},
            {"role": "assistant", "content": "Echo: Echo: Echo: " + first},
        ]
        assert response["termination_reason"] == "max_turns" and response["error"] is None
        assert len(response["ratings"]) == 2
        assert all(r["rating"] == "YES" for r in response["ratings"])
    got = await client.ok("GET", f"{P}/experiments/{exp['id']}")
    assert got["results"]["mean_all_ratings"]["yes"] == 1.0
    # the same inputs give the same conversations (echo is deterministic)
    again = await client.ok(
        "POST",
        f"{P}/experiments",
        json=body(made, name="Chat again", generate=True, agent_config={"max_turns": 2}),
    )
    await wait(client, again["id"], again["generation_task_id"])
    def conversations(responses: list[dict[str, Any]]) -> list[str]:
        return sorted(json.dumps(r["messages"]) for r in responses)

    assert conversations(await responses_of(client, again["id"])) == conversations(stored)


async def test_the_judge_sees_criteria_rendered_with_the_scenario(client: Any) -> None:
    made = await setup(client, goals=("Say ECHO_NO please",))
    exp = await client.ok(
        "POST", f"{P}/experiments", json=body(made, generate=True, agent_config={"max_turns": 1})
    )
    await wait(client, exp["id"], exp["generation_task_id"])
    stored = await responses_of(client, exp["id"])
    assert len(stored) == 2 and all(len(r["messages"]) == 2 for r in stored)
    for response in stored:  # the conversation contains ECHO_NO: the echo judge says NO
        assert {r["rating"] for r in response["ratings"]} == {"NO"}
        criteria = sorted(r["criterion"]["criterion_str"] for r in response["ratings"])
        assert "{{" in criteria[0]  # the stored criteria keep their placeholders


async def test_a_simulated_user_ends_the_conversation_with_the_marker(client: Any) -> None:
    made = await setup(client, goals=("Nothing to do [END]",))
    exp = await client.ok("POST", f"{P}/experiments", json=body(made, generate=True))
    final = await wait(client, exp["id"], exp["generation_task_id"])
    assert final["status"] == "SUCCESS"
    for response in await responses_of(client, exp["id"]):
        assert response["messages"] == [] and response["termination_reason"] == "user_ended"


async def test_failed_conversations_and_retry_failed(client: Any) -> None:
    made = await setup(client, goals=("ECHO_FAIL now", "Fine goal"))
    exp = await client.ok("POST", f"{P}/experiments", json=body(made, generate=True))
    final = await wait(client, exp["id"], exp["generation_task_id"])
    assert final["status"] == "SUCCESS"  # two of four conversations worked
    stored = await responses_of(client, exp["id"])
    failed = [r for r in stored if r["error"]]
    assert len(failed) == 2 and all("user simulator failed" in r["error"] for r in failed)
    assert all(r["termination_reason"] == "error" for r in failed)
    retried = await client.ok("POST", f"{P}/experiments/{exp['id']}/retry-failed", json={})
    again = await wait(client, exp["id"], retried["generation_task_id"])
    assert again["status"] == "FAILURE" and "every conversation failed" in again["error_msg"]
    assert len(await responses_of(client, exp["id"])) == 4  # the failed ones, held again


async def test_a_collection_of_scenarios(client: Any) -> None:
    made = await setup(client)
    scenarios = await client.ok(
        "POST",
        f"{P}/collections",
        json={
            "name": "Chats",
            "variables": [{"goal": "Book a table", "expected_conversation_outcome": "Booked"}],
        },
    )
    template = await client.ok(
        "POST",
        f"{P}/prompt_templates",
        json={
            "name": "Waiter",
            "messages": [{"role": "system", "content": "You take bookings: {{goal}}"}],
        },
    )
    req = body(made, generate=True, prompt_template_id=template["id"])
    del req["scenario_set_id"]
    exp = await client.ok(
        "POST", f"{P}/experiments", json={**req, "collection_id": scenarios["id"]}
    )
    assert (await wait(client, exp["id"], exp["generation_task_id"]))["status"] == "SUCCESS"
    stored = await responses_of(client, exp["id"])
    assert len(stored) == 2 and all(len(r["messages"]) == 6 for r in stored)  # 3 turns
    assert stored[0]["prompt"]["messages"] == [
        {"role": "system", "content": "You take bookings: Book a table"}
    ]


async def test_create_rules_answer_400_and_store_nothing(client: Any) -> None:
    made = await setup(client)
    post = f"{P}/experiments"
    standard = await client.ok(
        "POST", f"{P}/collections", json={"name": "Plain", "variables": [{"q": "x"}]}
    )
    empty_personas = await client.ok(
        "POST", f"{P}/collections", json={"name": "Nobody", "collection_type": "PERSONA"}
    )
    cases = [
        ({"persona_group_id": None}, "persona_group_id is required"),
        ({"collection_id": standard["id"]}, "exactly one of scenario_set_id or collection_id"),
        ({"persona_group_id": standard["id"]}, "use a PERSONA collection"),
        ({"agent_config": {"max_turns": 0}}, "max_turns"),
        ({"agent_config": {"max_turns": "3"}}, "max_turns must be an integer"),
        ({"evaluation_mode": "STANDARD"}, "only for MULTI_TURN"),
    ]
    for change, hint in cases:
        detail = await client.err("POST", post, 400, json={**body(made), **change})
        assert hint in detail, (change, detail)
    no_goal = body(made, collection_id=standard["id"])
    del no_goal["scenario_set_id"]
    assert "'goal'" in await client.err("POST", post, 400, json=no_goal)
    assert "has no personas" in await client.err(
        "POST", post, 422, json=body(made, persona_group_id=empty_personas["id"], generate=True)
    )
    listed = await client.ok("GET", f"{P}/experiments")
    assert listed["count"] == 0
    # created without generate, it runs later with POST .../run
    exp = await client.ok("POST", post, json=body(made))
    assert exp["generation_task_id"] is None
    run = await client.ok("POST", f"{P}/experiments/{exp['id']}/run", json={})
    assert (await wait(client, exp["id"], run["generation_task_id"]))["status"] == "SUCCESS"


async def test_responses_of_multi_turn_experiments_come_only_from_the_run(client: Any) -> None:
    made = await setup(client)
    exp = await client.ok("POST", f"{P}/experiments", json=body(made))
    sset = await client.ok("GET", f"{P}/scenario-sets/{made['set']['id']}/scenarios")
    item = {
        "experiment_id": exp["id"],
        "template_variables_id": sset["items"][0]["id"],
        "messages": [{"role": "assistant", "content": "x"}],
    }
    assert "MULTI_TURN" in await client.err("POST", f"{P}/responses", 400, json=item)
    assert await responses_of(client, exp["id"]) == []


async def test_deleting_the_sources_of_a_run_keeps_its_conversations(client: Any) -> None:
    made = await setup(client)
    exp = await client.ok("POST", f"{P}/experiments", json=body(made, generate=True))
    await wait(client, exp["id"], exp["generation_task_id"])
    await client.ok("DELETE", f"{P}/collections/{made['personas']['id']}")
    await client.ok("DELETE", f"{P}/scenario-sets/{made['set']['id']}")
    got = await client.ok("GET", f"{P}/experiments/{exp['id']}")
    assert got["results"]["mean_all_ratings"]["yes"] == 1.0
    assert len(await responses_of(client, exp["id"])) == 4
    retried = await client.ok("POST", f"{P}/experiments/{exp['id']}/retry-failed", json={})
    assert retried["generation_task_id"] is None  # nothing failed, nothing missing


async def test_the_map_has_a_sample_per_scenario_and_persona(client: Any) -> None:
    made = await setup(client)
    exp = await client.ok(
        "POST", f"{P}/experiments", json=body(made, generate=True, agent_config={"max_turns": 1})
    )
    await wait(client, exp["id"], exp["generation_task_id"])
    mapped = await client.ok("GET", f"{P}/experiments/{exp['id']}/map", params={"limit": 1})
    assert (mapped["num_samples"], mapped["num_responses"]) == (4, 4)
    samples = mapped["samples"]  # the page's one row, once per persona
    assert len({s["template_variables_id"] for s in samples}) == 1
    assert [s["persona"]["name"] for s in samples] == ["Ann", "Bob"]
    assert all(s["persona"]["version"] == 1 for s in samples)
    for sample in samples:
        (response,) = sample["responses"]
        assert response["num_criteria_passed"] == 2 and response["has_trajectory"] is False
