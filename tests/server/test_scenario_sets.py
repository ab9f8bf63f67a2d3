"""Scenario sets over HTTP (CONTRACT.md 4.11, 7.16): the 14 endpoints, their rules (names
shared with collections, field names, implicit fields, unknown field keys, empty goals) with
the documented statuses and nothing stored on a refusal, and what the answers hold."""

from __future__ import annotations

from typing import Any

SET_KEYS = {
    "id",
    "name",
    "description",
    "fields",
    "scenarios_count",
    "version",
    "read_only",
    "is_platform_builtin",
    "created_at",
    "updated_at",
}
SCENARIO_KEYS = {"id", "goal", "expected_conversation_outcome", "field_values", "created_at"}


def sets(client: Any) -> str:
    return f"{client.P}/scenario-sets"


async def make_set(client: Any, name: str = "Support", fields: list[str] | None = None) -> Any:
    body = {
        "name": name,
        "description": "chats",
        "fields": ["persona"] if fields is None else fields,
    }
    return await client.ok("POST", sets(client), json=body)


async def test_create_get_list_update_delete(client: Any) -> None:
    created = await make_set(client)
    assert set(created) == SET_KEYS
    assert created["name"] == "Support" and created["description"] == "chats"
    assert [(f["name"], f["field_type"], f["default_value"]) for f in created["fields"]] == [
        ("persona", "text", "")
    ]
    assert created["scenarios_count"] == 0 and created["read_only"] is False
    assert created["is_platform_builtin"] is False and created["version"] is None
    one = f"{sets(client)}/{created['id']}"
    assert await client.ok("GET", one) == created
    unnamed = await client.ok("POST", sets(client), json={"description": "", "fields": []})
    assert unnamed["name"] and unnamed["name"] != "Support" and unnamed["fields"] == []
    listed = await client.ok("GET", sets(client))
    assert listed["count"] == 2 and [s["id"] for s in listed["items"]] == [
        created["id"],
        unnamed["id"],
    ]
    found = await client.ok("GET", sets(client), params={"name_search": "supp"})
    assert [s["id"] for s in found["items"]] == [created["id"]] and found["count"] == 1
    assert (await client.ok("GET", sets(client), params={"name_search": "%"}))["count"] == 0
    renamed = await client.ok("PUT", one, json={"name": "Support 2"})
    assert renamed["name"] == "Support 2" and renamed["description"] == "chats"
    described = await client.ok("PUT", one, json={"description": ""})
    assert described["name"] == "Support 2" and described["description"] == ""
    await client.ok("DELETE", one)
    await client.err("GET", one, 404)
    assert (await client.ok("GET", sets(client)))["count"] == 1


async def test_pages_keep_a_constant_size(aiohttp_client: Any, tmp_path: Any) -> None:
    from elluminate.server import ServerConfig, create_app

    config = ServerConfig(db_path=tmp_path / "p.db", api_key="test-key-0123456789", page_size=2)
    client = await aiohttp_client(create_app(config), headers={"X-API-Key": config.api_key})
    for i in range(5):
        await make_set(client, f"S{i}")
    first = await client.ok("GET", sets(client))
    third = await client.ok("GET", sets(client), params={"page": "3"})
    assert first["count"] == 5 and len(first["items"]) == 2
    assert [s["name"] for s in third["items"]] == ["S4"]
    one = (await make_set(client, "Rows"))["id"]
    rows = [{"goal": f"g{i}", "expected_conversation_outcome": "o"} for i in range(3)]
    await client.ok("POST", f"{sets(client)}/{one}/scenarios/batch", json={"scenarios": rows})
    page = await client.ok("GET", f"{sets(client)}/{one}/scenarios", params={"page": "2"})
    assert page["count"] == 3 and [s["goal"] for s in page["items"]] == ["g2"]


async def test_names_are_shared_with_collections(client: Any, snapshot: Any) -> None:
    await make_set(client)
    await client.ok("POST", f"{client.P}/collections", json={"name": "Topics"})
    before = snapshot()
    detail = await client.err("POST", sets(client), 400, json={"name": "Support", "fields": []})
    assert "scenario set named 'Support'" in detail
    detail = await client.err("POST", sets(client), 400, json={"name": " Topics ", "fields": []})
    assert "collection named 'Topics'" in detail and "name space" in detail
    detail = await client.err("POST", f"{client.P}/collections", 400, json={"name": "Support"})
    assert "scenario set named 'Support'" in detail
    collection = (await client.ok("GET", f"{client.P}/collections"))["items"][0]
    await client.err(
        "PUT", f"{client.P}/collections/{collection['id']}", 400, json={"name": "Support"}
    )
    other = await make_set(client, "Other")
    assert snapshot() != before  # the set above; now nothing more may change
    before = snapshot()
    await client.err("PUT", f"{sets(client)}/{other['id']}", 400, json={"name": "Topics"})
    await client.err("PUT", f"{sets(client)}/{other['id']}", 400, json={"name": "Support"})
    await client.err("POST", sets(client), 422, json={"name": "  ", "fields": []})
    assert snapshot() == before
    # a collection with the same name is still a 409 (get_or_create_collection needs it)
    await client.err("POST", f"{client.P}/collections", 409, json={"name": "Topics"})
    # the set's own name is no clash with itself
    assert await client.ok("PUT", f"{sets(client)}/{other['id']}", json={"name": "Other"})


async def test_field_name_rules_and_nothing_stored(client: Any, snapshot: Any) -> None:
    created = await make_set(client)
    fields = f"{sets(client)}/{created['id']}/fields"
    before = snapshot()
    cases = {
        "1st": "not start with a digit",
        "with space": "letters, digits and underscores",
        "goal": "implicit field",
        "expected_conversation_outcome": "implicit field",
        "x" * 101: "at most 100",
        "persona": "already",
    }
    for name, hint in cases.items():
        detail = await client.err("POST", fields, 400, json={"name": name, "default_value": ""})
        assert hint in detail, (name, detail)
    for bad in (["a", "a"], ["goal"], ["9x"]):
        await client.err("POST", sets(client), 400, json={"name": "New", "fields": bad})
    await client.err("POST", fields, 422, json={"default_value": ""})
    await client.err("POST", fields, 422, json={"name": 3})
    assert snapshot() == before
    ok = await client.ok("POST", fields, json={"name": "_x" + "y" * 98, "default_value": ""})
    assert len(ok["name"]) == 100


async def test_fields_add_rename_delete_rewrite_the_scenarios(client: Any) -> None:
    created = await make_set(client)
    one = f"{sets(client)}/{created['id']}"
    first = await client.ok(
        "POST",
        f"{one}/scenarios",
        json={
            "goal": "Refund",
            "expected_conversation_outcome": "Done",
            "field_values": {"persona": "calm"},
        },
    )
    locale = await client.ok(
        "POST", f"{one}/fields", json={"name": "locale", "default_value": "de"}
    )
    assert set(locale) == {"id", "name", "field_type", "default_value"}
    assert (locale["name"], locale["field_type"], locale["default_value"]) == (
        "locale",
        "text",
        "de",
    )
    got = await client.ok("GET", f"{one}/scenarios/{first['id']}")
    assert got["field_values"] == {"persona": "calm", "locale": "de"}
    renamed = await client.ok("PUT", f"{one}/fields/{locale['id']}", json={"name": "language"})
    assert renamed["id"] == locale["id"] and renamed["name"] == "language"
    got = await client.ok("GET", f"{one}/scenarios/{first['id']}")
    assert got["field_values"] == {"persona": "calm", "language": "de"}
    await client.err("PUT", f"{one}/fields/{locale['id']}", 400, json={"name": "persona"})
    await client.err("PUT", f"{one}/fields/{locale['id']}", 400, json={"name": "goal"})
    await client.ok("DELETE", f"{one}/fields/{locale['id']}")
    got = await client.ok("GET", f"{one}/scenarios/{first['id']}")
    assert got["field_values"] == {"persona": "calm"}
    assert [f["name"] for f in (await client.ok("GET", one))["fields"]] == ["persona"]
    await client.err("DELETE", f"{one}/fields/{locale['id']}", 404)
    await client.err("PUT", f"{one}/fields/99999", 404, json={"name": "x"})


async def test_implicit_fields_cannot_be_renamed_or_deleted(client: Any) -> None:
    created = await make_set(client)
    one = f"{sets(client)}/{created['id']}"
    persona = created["fields"][0]["id"]
    # the implicit columns come right before the declared ones
    for implicit_id in (persona - 2, persona - 1):
        detail = await client.err("PUT", f"{one}/fields/{implicit_id}", 400, json={"name": "x"})
        assert "implicit field" in detail
        await client.err("DELETE", f"{one}/fields/{implicit_id}", 400)


async def test_scenarios_add_get_replace_delete(client: Any, snapshot: Any) -> None:
    created = await make_set(client, fields=["persona", "locale"])
    one = f"{sets(client)}/{created['id']}"
    scenario = await client.ok(
        "POST",
        f"{one}/scenarios",
        json={
            "goal": "  Get a refund ",
            "expected_conversation_outcome": " Refund issued",
            "field_values": {"persona": "calm"},
        },
    )
    assert set(scenario) == SCENARIO_KEYS
    assert scenario["goal"] == "Get a refund"
    assert scenario["expected_conversation_outcome"] == "Refund issued"
    assert scenario["field_values"] == {"persona": "calm", "locale": ""}
    bare = await client.ok(
        "POST", f"{one}/scenarios", json={"goal": "a", "expected_conversation_outcome": "b"}
    )
    assert bare["field_values"] == {"persona": "", "locale": ""}
    assert (await client.ok("GET", one))["scenarios_count"] == 2
    before = snapshot()
    await client.err(
        "POST", f"{one}/scenarios", 422, json={"goal": "  ", "expected_conversation_outcome": "b"}
    )
    await client.err(
        "POST", f"{one}/scenarios", 422, json={"goal": "a", "expected_conversation_outcome": ""}
    )
    await client.err("POST", f"{one}/scenarios", 422, json={"goal": "a"})
    detail = await client.err(
        "POST",
        f"{one}/scenarios",
        400,
        json={"goal": "a", "expected_conversation_outcome": "b", "field_values": {"mood": "x"}},
    )
    assert "'mood'" in detail and "persona, locale" in detail
    detail = await client.err(
        "POST",
        f"{one}/scenarios",
        400,
        json={"goal": "a", "expected_conversation_outcome": "b", "field_values": {"goal": "x"}},
    )
    assert "implicit" in detail
    assert snapshot() == before
    replaced = await client.ok(
        "PUT",
        f"{one}/scenarios/{scenario['id']}",
        json={
            "goal": "Get money back",
            "expected_conversation_outcome": "Paid",
            "field_values": {"locale": "de"},
        },
    )
    assert replaced["id"] == scenario["id"] and replaced["goal"] == "Get money back"
    assert replaced["field_values"] == {"persona": "", "locale": "de"}  # persona reset
    listed = await client.ok("GET", f"{one}/scenarios")
    assert listed["count"] == 2 and [s["id"] for s in listed["items"]] == [
        scenario["id"],
        bare["id"],
    ]
    await client.ok("DELETE", f"{one}/scenarios/{scenario['id']}")
    await client.err("GET", f"{one}/scenarios/{scenario['id']}", 404)
    await client.err("DELETE", f"{one}/scenarios/{scenario['id']}", 404)
    assert (await client.ok("GET", one))["scenarios_count"] == 1


async def test_batch_checks_every_item_first_and_skips_existing(client: Any, snapshot: Any) -> None:
    created = await make_set(client)
    batch = f"{sets(client)}/{created['id']}/scenarios/batch"
    assert await client.ok("POST", batch, json={"scenarios": [], "skip_existing": True}) == []
    rows = [
        {"goal": "A", "expected_conversation_outcome": "a", "field_values": {"persona": "x"}},
        {"goal": " B ", "expected_conversation_outcome": "b"},
    ]
    added = await client.ok("POST", batch, json={"scenarios": rows, "skip_existing": False})
    assert [s["goal"] for s in added] == ["A", "B"] and all(set(s) == SCENARIO_KEYS for s in added)
    before = snapshot()
    bad = [*rows, {"goal": "C", "expected_conversation_outcome": "c", "field_values": {"nope": 1}}]
    detail = await client.err("POST", batch, 400, json={"scenarios": bad})
    assert (
        detail.startswith("scenarios[2]:") and "'nope'" in detail and "nothing was stored" in detail
    )
    detail = await client.err(
        "POST",
        batch,
        422,
        json={"scenarios": [rows[0], {"goal": "", "expected_conversation_outcome": "c"}]},
    )
    assert "scenarios[1]" in detail
    assert snapshot() == before
    again = [
        rows[0],
        {
            "goal": "B",
            "expected_conversation_outcome": "b",
            "field_values": {"persona": ""},
        },  # = row 2
        {"goal": "C", "expected_conversation_outcome": "c"},
        {"goal": "C", "expected_conversation_outcome": "c"},  # a duplicate within the batch
    ]
    new = await client.ok("POST", batch, json={"scenarios": again, "skip_existing": True})
    assert [s["goal"] for s in new] == ["C"]
    assert (await client.ok("GET", f"{sets(client)}/{created['id']}"))["scenarios_count"] == 3
    dup = await client.ok("POST", batch, json={"scenarios": [rows[0]], "skip_existing": False})
    assert len(dup) == 1 and dup[0]["goal"] == "A"


async def test_other_projects_see_nothing(client: Any, other: Any) -> None:
    created = await make_set(client)
    one = f"{sets(client)}/{created['id']}"
    scenario = await client.ok(
        "POST", f"{one}/scenarios", json={"goal": "a", "expected_conversation_outcome": "b"}
    )
    other_pid, headers = other
    theirs = f"/api/v0/projects/{other_pid}/scenario-sets"
    assert (await client.ok("GET", theirs, headers=headers))["count"] == 0
    mine = f"{theirs}/{created['id']}"
    await client.err("GET", mine, 404, headers=headers)
    await client.err("PUT", mine, 404, headers=headers, json={"name": "x"})
    await client.err("DELETE", mine, 404, headers=headers)
    await client.err("GET", f"{mine}/scenarios", 404, headers=headers)
    await client.err("GET", f"{mine}/scenarios/{scenario['id']}", 404, headers=headers)
    await client.err(
        "POST", f"{mine}/fields", 404, headers=headers, json={"name": "x", "default_value": ""}
    )
    # the same name is free in another project
    await client.ok("POST", theirs, headers=headers, json={"name": "Support", "fields": []})
    # a scenario of one set is not found through another set
    second = await make_set(client, "Second")
    await client.err("GET", f"{sets(client)}/{second['id']}/scenarios/{scenario['id']}", 404)


async def test_the_backing_collection_stays_hidden(client: Any) -> None:
    created = await make_set(client)
    assert (await client.ok("GET", f"{client.P}/collections"))["count"] == 0
    listed = await client.ok("GET", f"{client.P}/collections", params={"name": "Support"})
    assert listed["items"] == []
    # and its name stays taken only through the set: deleting the set frees it
    await client.ok("DELETE", f"{sets(client)}/{created['id']}")
    await client.ok("POST", f"{client.P}/collections", json={"name": "Support"})
