"""CONVERSATION cells hold conversation envelopes (``elluminate.uce/1``, CONTRACT.md 7.18):
every write checks them (400 naming the column, nothing stored), and an experiment without a
template takes its prompt, tools, tool choice and response format from the envelope."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from elluminate.schemas import UCEPayloadV1

P = "/api/v0/projects/1"
CHAT = [{"name": "chat", "column_type": "conversation"}, {"name": "note"}]
TOOLS = [{"type": "function", "function": {"name": "weather", "parameters": {}}}]


def envelope(text: str = "Weather in Bonn?", **extra: Any) -> dict[str, Any]:
    return UCEPayloadV1.from_openai(
        [{"role": "system", "content": "Be brief"}, {"role": "user", "content": text}], **extra
    ).to_uce_dict()


BAD = [
    ("a string", "hello", "conversation envelope"),
    ("a list of messages", [{"role": "user", "content": "hi"}], "conversation envelope"),
    ("no schema_version", {"input": {"messages": [{"role": "user", "content": "x"}]}}, "None"),
    (
        "another version",
        {"schema_version": "elluminate.uce/2", "input": {"messages": []}},
        "uce/2",
    ),
    ("input not an object", {"schema_version": "elluminate.uce/1", "input": []}, "valid"),
    (
        "a bad role",
        {"schema_version": "elluminate.uce/1", "input": {"messages": [{"role": "robot"}]}},
        "robot",
    ),
    (
        "no messages",
        {"schema_version": "elluminate.uce/1", "input": {"messages": []}},
        "no messages",
    ),
]


async def collection_count(client: Any) -> int:
    return int((await client.ok("GET", f"{P}/collections"))["count"])


async def test_envelopes_are_checked_on_every_write(client: Any) -> None:
    for label, value, hint in BAD:
        detail = await client.err(
            "POST",
            f"{P}/collections",
            400,
            json={"name": "Chats", "columns": CHAT, "variables": [{"chat": value}]},
        )
        assert "'chat'" in detail and hint in detail, (label, detail)
    assert await collection_count(client) == 0
    made = await client.ok(
        "POST",
        f"{P}/collections",
        json={
            "name": "Chats",
            "columns": CHAT,
            "variables": [{"chat": envelope(), "note": "a"}, {"note": "empty cell"}],
        },
    )
    assert made["variables"][0]["input_values"]["chat"] == envelope()
    assert made["variables"][1]["input_values"]["chat"] == ""
    entries = f"{P}/collections/{made['id']}/entries"
    for _, value, _hint in BAD:
        await client.err("POST", entries, 400, json={"input_values": {"chat": value}})
    row = made["variables"][0]["id"]
    detail = await client.err("PUT", f"{entries}/{row}", 400, json={"input_values": {"chat": 5}})
    assert "'chat'" in detail
    lines = [{"chat": envelope("one")}, {"chat": "not an envelope"}]
    jsonl = "\n".join(json.dumps(x) for x in lines)
    detail = await client.err(
        "POST",
        f"{entries}/batches",
        400,
        data=jsonl.encode(),
        headers={"Content-Type": "application/x-ndjson"},
    )
    assert "row 2" in detail and "'chat'" in detail
    got = await client.ok("GET", f"{P}/collections/{made['id']}")
    assert [v["input_values"]["chat"] for v in got["variables"]] == [envelope(), ""]
    # a column that becomes a CONVERSATION column: its values must be envelopes
    columns = [
        {"id": c["id"], "name": c["name"], "column_type": c["column_type"]}
        for c in got["columns"]
    ]
    columns[1]["column_type"] = "conversation"
    detail = await client.err(
        "PUT", f"{P}/collections/{made['id']}", 400, json={"name": "Chats", "columns": columns}
    )
    assert "'note'" in detail
    again = await client.ok("GET", f"{P}/collections/{made['id']}")
    assert [c["column_type"] for c in again["columns"]] == ["conversation", "text"]


async def test_an_envelope_is_the_prompt_of_an_experiment_without_template(client: Any) -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}}}
    collection = await client.ok(
        "POST",
        f"{P}/collections",
        json={
            "name": "Chats",
            "columns": CHAT,
            "variables": [
                {
                    "chat": envelope(
                        tools=TOOLS,
                        tool_choice="auto",
                        response_format={
                            "type": "json_schema",
                            "json_schema": {"name": "w", "schema": schema},
                        },
                    )
                }
            ],
        },
    )
    criteria = [{"criterion_str": "Is it brief?"}]
    cset = await client.ok("POST", f"{P}/criterion_sets", json={"name": "C", "criteria": criteria})
    exp = await client.ok(
        "POST",
        f"{P}/experiments",
        json={
            "name": "Replay",
            "collection_id": collection["id"],
            "criterion_set_id": cset["id"],
            "generate": True,
        },
    )
    path = f"{P}/experiments/{exp['id']}/generation/{exp['generation_task_id']}"
    for _ in range(500):
        status = await client.ok("GET", path)
        if status["status"] not in ("PENDING", "STARTED"):
            break
        await asyncio.sleep(0.02)
    assert status["status"] == "SUCCESS", status
    body = await client.ok("GET", f"{P}/responses", params={"experiment_id": exp["id"]})
    (response,) = body["items"]
    assert response["messages"] == [{"role": "assistant", "content": "Echo: Weather in Bonn?"}]
    prompt = response["prompt"]
    assert prompt["messages"] == envelope()["input"]["messages"]
    assert prompt["resolved_tools"] == TOOLS and prompt["resolved_tool_choice"] == "auto"
    assert prompt["resolved_response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "response", "schema": schema},
    }
