"""Collections and entries, incl. the multipart JSONL upload and row generation."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest

OFFICIAL_CREATE = {
    "name": "C",
    "description": "",
    "variables": [{"topic": "AI"}],
    "columns": [
        {"name": "topic", "default_value": "", "column_position": 0},
        {"name": "cat", "column_type": "category", "default_value": "", "column_position": 0,
         "categorical_values": ["a"]},
    ],
    "read_only": False,
    "collection_type": "STANDARD",
}


def jsonl_form(rows: list[Any] | str) -> aiohttp.FormData:
    text = rows if isinstance(rows, str) else "\n".join(json.dumps(r) for r in rows)
    form = aiohttp.FormData()
    form.add_field("file", text.encode(), filename="variables.jsonl",
                   content_type="application/jsonl")
    return form


async def make(client: Any, **body: Any) -> dict[str, Any]:
    result: dict[str, Any] = await client.ok("POST", f"{client.P}/collections", 201, json=body)
    return result


async def test_create_official_body(client: Any) -> None:
    coll = await client.ok("POST", f"{client.P}/collections", 201, json=OFFICIAL_CREATE)
    assert [c["name"] for c in coll["columns"]] == ["topic", "cat"]
    assert [c["column_type"] for c in coll["columns"]] == ["text", "category"]
    assert [c["column_position"] for c in coll["columns"]] == [0, 1]
    assert coll["columns"][1]["categorical_values"] == ["a"]
    assert coll["variables_count"] == 1 and len(coll["variables"]) == 1
    row = coll["variables"][0]
    assert row["input_values"] == {"topic": "AI", "cat": ""}
    assert row["collection"]["id"] == coll["id"] and "variables" not in row["collection"]
    assert row["collection"]["variables_count"] == 1
    full = await client.ok("GET", f"{client.P}/collections/{coll['id']}")
    assert full == coll


async def test_minimal_body_inferred_columns_and_conflict(client: Any) -> None:
    coll = await make(client, name="K", variables=[{"b": 1, "a": "x"}, {"c": True}])
    assert [c["name"] for c in coll["columns"]] == ["b", "a", "c"]
    assert [r["input_values"] for r in coll["variables"]] == [
        {"b": "1", "a": "x", "c": ""}, {"b": "", "a": "", "c": "true"}]
    detail = await client.err("POST", f"{client.P}/collections", 409, json={"name": "K"})
    assert "already exists" in detail
    assert client.last_error_body["collection_id"] == coll["id"]
    bare = await make(client, name="S", columns=["x", "y"])
    assert [c["name"] for c in bare["columns"]] == ["x", "y"] and bare["variables"] == []


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"name": ""}, "name"),
        ({"name": "x", "columns": [{"name": ""}]}, "columns[0].name"),
        ({"name": "x", "columns": ["a", "a"]}, "duplicate"),
        ({"name": "x", "columns": [{"name": "a", "column_type": "blob"}]}, "column_type"),
        ({"name": "x", "variables": [1]}, "variables"),
        ({"name": "x", "collection_type": "WEIRD"}, "collection_type"),
        ({"name": "x", "read_only": "yes"}, "read_only"),
    ],
)
async def test_invalid_collections(client: Any, snapshot: Any, body: Any, needle: str) -> None:
    before = snapshot()
    assert needle in await client.err("POST", f"{client.P}/collections", 422, json=body)
    assert snapshot() == before


async def test_list_filters(client: Any) -> None:
    a = await make(client, name="A", columns=["topic"])
    b = await make(client, name="B", columns=["topic", "level"])
    await make(client, name="Z", columns=["other"])
    pt = await client.ok("POST", f"{client.P}/prompt_templates", json={
        "name": "T", "messages": [{"role": "user", "content": "{{topic}} at {{level}}"}]})
    url = f"{client.P}/collections"
    assert (await client.ok("GET", url))["count"] == 3
    by_name = await client.ok("GET", f"{url}?name=A")
    assert [c["id"] for c in by_name["items"]] == [a["id"]]
    assert "variables" not in by_name["items"][0]
    compatible = await client.ok("GET", f"{url}?compatible_prompt_template_id={pt['id']}&page=1")
    assert [c["id"] for c in compatible["items"]] == [b["id"]]
    # unparsable dict reprs from the private SDK list are ignored
    listing = await client.ok("GET", f"{url}?filters={{'name': None}}&sort_options={{}}&page=1")
    assert listing["count"] == 3
    await client.err("GET", f"{url}?compatible_prompt_template_id=999", 404)


async def test_update_collection(client: Any) -> None:
    coll = await make(client, name="K", columns=["a", "b"], variables=[{"a": "1", "b": "2"}])
    url = f"{client.P}/collections/{coll['id']}"
    col_a, col_b = coll["columns"]
    updated = await client.ok("PUT", url, json={
        "name": "K2", "description": "d", "environment_config": {"image": "x"},
        "columns": [{"id": col_b["id"], "name": "bee"}, {"name": "new"}, {"name": "a"}]})
    assert updated["name"] == "K2" and updated["description"] == "d"
    assert updated["environment_config"] == {"image": "x"}
    assert [c["name"] for c in updated["columns"]] == ["bee", "new", "a"]
    assert updated["columns"][0]["id"] == col_b["id"] and updated["columns"][2]["id"] == col_a["id"]
    full = await client.ok("GET", url)
    assert full["variables"][0]["input_values"] == {"bee": "2", "new": "", "a": "1"}
    # only name: the rest stays; explicit null clears the environment
    again = await client.ok("PUT", url, json={"name": "K2", "environment_config": None})
    assert again["description"] == "d" and again["environment_config"] is None
    assert [c["name"] for c in again["columns"]] == ["bee", "new", "a"]
    # drop a column
    dropped = await client.ok("PUT", url, json={"name": "K2", "columns": ["a"]})
    assert [c["name"] for c in dropped["columns"]] == ["a"]
    assert (await client.ok("GET", url))["variables"][0]["input_values"] == {"a": "1"}
    await make(client, name="taken")
    await client.err("PUT", url, 409, json={"name": "taken"})
    await client.err("PUT", url, 422, json={"name": ""})
    await client.err("PUT", url, 422, json={"name": "K2", "columns": [{"id": 9999, "name": "q"}]})
    await client.err("PUT", f"{client.P}/collections/9999", 404, json={"name": "x"})


async def test_entries_crud(client: Any) -> None:
    coll = await make(client, name="K", columns=["topic"])
    url = f"{client.P}/collections/{coll['id']}/entries"
    row = await client.ok("POST", url, 201, json={"input_values": {"topic": "AI"},
                                                 "prompt_template_id": None,
                                                 "environment_config": None})
    assert row["input_values"] == {"topic": "AI"} and row["collection"]["variables_count"] == 1
    assert await client.ok("GET", f"{url}/{row['id']}") == row
    # a new key adds a TEXT column
    row2 = await client.ok("POST", url, json={"input_values": {"topic": "ML", "extra": 5}})
    assert row2["input_values"] == {"topic": "ML", "extra": "5"}
    assert [c["name"] for c in row2["collection"]["columns"]] == ["topic", "extra"]
    updated = await client.ok(
        "PUT", f"{url}/{row['id']}",
        json={"input_values": {"topic": "AI2"}, "environment_config": {"e": 1}},
    )
    assert updated["input_values"] == {"topic": "AI2", "extra": ""}
    assert updated["environment_config"] == {"e": 1}
    listing = await client.ok("GET", f"{url}?page=1")
    assert listing["count"] == 2 and [r["id"] for r in listing["items"]] == [row["id"], row2["id"]]
    await client.ok("DELETE", f"{url}/{row['id']}", 204)
    await client.err("GET", f"{url}/{row['id']}", 404)
    await client.err("DELETE", f"{url}/{row['id']}", 404)
    # dual mode: exactly one of input_values / prompt_template_id
    await client.err("POST", url, 422, json={"input_values": None, "prompt_template_id": None})
    await client.err("POST", url, 422, json={"input_values": {"a": 1}, "prompt_template_id": 1})
    await client.err("POST", url, 422, json={"input_values": [1]})
    # another collection's entry is not reachable through this one
    other = await make(client, name="O", variables=[{"x": "1"}])
    await client.err("GET", f"{url}/{other['variables'][0]['id']}", 404)
    await client.ok("DELETE", url, 204)
    assert (await client.ok("GET", f"{client.P}/collections/{coll['id']}"))["variables"] == []


async def test_batch_upload_skip_existing(client: Any) -> None:
    coll = await make(client, name="K", columns=["topic"], variables=[{"topic": "AI"}])
    url = f"{client.P}/collections/{coll['id']}/entries/batches"
    rows = [{"topic": "ML"}, {"topic": 3}, {"topic": "AI"}, {"topic": "ML"}]
    new = await client.ok("POST", f"{url}?skip_existing=true", data=jsonl_form(rows))
    assert [r["input_values"]["topic"] for r in new] == ["ML", "3"]
    assert new[-1]["collection"]["variables_count"] == 3
    again = await client.ok("POST", f"{url}?skip_existing=true",
                            data=jsonl_form([{"topic": "3"}, {"topic": "new", "lang": "de"}]))
    assert [r["input_values"] for r in again] == [{"topic": "new", "lang": "de"}]
    # without skip_existing everything is added
    dup = await client.ok("POST", f"{url}?skip_existing=false", data=jsonl_form(rows))
    assert len(dup) == 4
    full = await client.ok("GET", f"{client.P}/collections/{coll['id']}")
    assert full["variables_count"] == 8
    assert all(set(r["input_values"]) == {"topic", "lang"} for r in full["variables"])
    # empty upload, blank lines, CRLF and raw JSONL bodies are fine
    assert await client.ok("POST", f"{url}?skip_existing=true", data=jsonl_form("")) == []
    raw = await client.ok("POST", f"{url}?skip_existing=true", data=b'\r\n{"topic": "raw"}\r\n\n',
                          headers={"Content-Type": "application/jsonl"})
    assert len(raw) == 1


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ('{"topic": "ok"}\n[1, 2]', "line 2"),
        ('{"topic": "ok"}\n\n{"topic": ', "line 3"),
        ('"just a string"', "line 1"),
    ],
)
async def test_batch_upload_bad_lines_write_nothing(
    client: Any, snapshot: Any, text: str, needle: str
) -> None:
    coll = await make(client, name="K", columns=["topic"])
    before = snapshot()
    url = f"{client.P}/collections/{coll['id']}/entries/batches?skip_existing=false"
    detail = await client.err("POST", url, 422, data=jsonl_form(text))
    assert needle in detail and "nothing" in detail
    assert snapshot() == before


async def test_batch_upload_errors(client: Any) -> None:
    coll = await make(client, name="K")
    url = f"{client.P}/collections/{coll['id']}/entries/batches"
    await client.err("POST", f"{url}?skip_existing=maybe", 422, data=jsonl_form([{"a": 1}]))
    form = aiohttp.FormData()
    form.add_field("other", b"{}", filename="x.jsonl")
    assert "file" in await client.err("POST", url, 422, data=form)
    bad = aiohttp.FormData()
    bad.add_field("file", b"\xff\xfe{", filename="variables.jsonl")
    assert "UTF-8" in await client.err("POST", url, 422, data=bad)
    await client.err("POST", f"{client.P}/collections/999/entries/batches", 404,
                     data=jsonl_form([{"a": 1}]))


async def test_read_only_collection(client: Any) -> None:
    coll = await make(client, name="K", read_only=True, variables=[{"a": "1"}])
    assert coll["read_only"] is True and coll["variables_count"] == 1
    url = f"{client.P}/collections/{coll['id']}/entries"
    assert "read-only" in await client.err("POST", url, 400, json={"input_values": {"a": "2"}})
    await client.err("POST", f"{url}/batches", 400, data=jsonl_form([{"a": 1}]))
    await client.err("DELETE", url, 400)
    await client.ok("PUT", f"{client.P}/collections/{coll['id']}",
                    json={"name": "K", "read_only": False})
    await client.ok("POST", url, json={"input_values": {"a": "2"}})


async def test_generate_entry_with_echo(client: Any) -> None:
    coll = await make(client, name="K")
    pt = await client.ok("POST", f"{client.P}/prompt_templates", json={
        "name": "T", "messages": [{"role": "user", "content": "Explain {{topic}} to {{who}}"}]})
    url = f"{client.P}/collections/{coll['id']}/entries"
    body = {"input_values": None, "prompt_template_id": pt["id"], "environment_config": None}
    row = await client.ok("POST", url, 201, json=body)
    assert set(row["input_values"]) == {"topic", "who"}
    assert all(isinstance(v, str) and v for v in row["input_values"].values())
    assert [c["name"] for c in row["collection"]["columns"]] == ["topic", "who"]
    second = await client.ok("POST", url, 201, json=body)
    assert second["id"] != row["id"]
    await client.err("POST", url, 404, json={"prompt_template_id": 9999})
    plain = await client.ok("POST", f"{client.P}/prompt_templates", json={
        "name": "P", "messages": [{"role": "user", "content": "no placeholders"}]})
    assert "placeholders" in await client.err("POST", url, 422,
                                              json={"prompt_template_id": plain["id"]})


async def test_generation_failure_writes_nothing(client: Any, snapshot: Any) -> None:
    coll = await make(client, name="K")
    pt = await client.ok("POST", f"{client.P}/prompt_templates", json={
        "name": "T", "messages": [{"role": "user", "content": "ECHO_FAIL {{topic}}"}]})
    before = snapshot()
    detail = await client.err("POST", f"{client.P}/collections/{coll['id']}/entries", 502,
                              json={"prompt_template_id": pt["id"]})
    assert "generation failed" in detail
    assert snapshot() == before


async def test_delete_collection(client: Any) -> None:
    coll = await make(client, name="K", variables=[{"a": "1"}])
    url = f"{client.P}/collections/{coll['id']}"
    await client.ok("DELETE", url, 204)
    await client.err("GET", url, 404)
    await client.err("GET", f"{url}/entries", 404)
    await client.err("DELETE", url, 404)
    await make(client, name="K")  # the name is free again


async def test_other_project_collections(client: Any, other: Any) -> None:
    other_pid, headers = other
    coll = await make(client, name="K", variables=[{"a": "1"}])
    base = f"/api/v0/projects/{other_pid}/collections"
    await client.err("GET", f"{base}/{coll['id']}", 404, headers=headers)
    await client.err("GET", f"{base}/{coll['id']}/entries", 404, headers=headers)
    await client.err("POST", f"{base}/{coll['id']}/entries/batches", 404, headers=headers,
                     data=jsonl_form([{"a": 1}]))
    entry = coll["variables"][0]["id"]
    await client.err("GET", f"{base}/{coll['id']}/entries/{entry}", 404, headers=headers)
    # same name in the other project is fine
    await client.ok("POST", base, headers=headers, json={"name": "K"})
