"""Prompt templates: create, versions, 409, filters, validation, delete."""

from __future__ import annotations

from typing import Any

import pytest


def tpl(name: str, content: str = "Explain {{topic}}", **extra: Any) -> dict[str, Any]:
    return {"name": name, "messages": [{"role": "user", "content": content}], **extra}


async def test_create_get_and_placeholders(client: Any) -> None:
    url = f"{client.P}/prompt_templates"
    body = tpl("T", "Explain {{ topic }} to {{audience}}; again {{topic}}")
    pt = await client.ok("POST", url, 201, json=body)
    assert pt["name"] == "T" and pt["version"] == 1
    assert pt["placeholders"] == ["topic", "audience"]
    assert pt["criterion_set_id"] is None and pt["tools"] is None
    assert await client.ok("GET", f"{url}/{pt['id']}") == pt
    await client.err("GET", f"{url}/{pt['id'] + 100}", 404)


async def test_versions_and_conflict(client: Any) -> None:
    url = f"{client.P}/prompt_templates"
    v1 = await client.ok("POST", url, json=tpl("T"))
    detail = await client.err("POST", url, 409, json=tpl("T"))
    assert "already" in detail
    assert client.last_error_body["prompt_template_id"] == v1["id"]
    v2 = await client.ok("POST", url, json=tpl("T", "Describe {{topic}}",
                                                parent_prompt_template_id=v1["id"]))
    assert v2["version"] == 2
    # same content as v1 again -> 409 pointing at v1
    await client.err("POST", url, 409, json=tpl("T"))
    assert client.last_error_body["prompt_template_id"] == v1["id"]
    # a different response format is different content
    v3 = await client.ok("POST", url, json=tpl("T", response_format_json_schema={"type": "json"}))
    assert v3["version"] == 3

    by_name = await client.ok("GET", f"{url}?name=T")
    assert [t["version"] for t in by_name["items"]] == [3, 2, 1] and by_name["count"] == 3
    for none in ("None", "null", ""):
        latest = await client.ok("GET", f"{url}?name=T&version={none}")
        assert latest["items"][0]["id"] == v3["id"]
    exact = await client.ok("GET", f"{url}?name=T&version=2")
    assert [t["id"] for t in exact["items"]] == [v2["id"]]
    assert (await client.ok("GET", f"{url}?name=nope"))["items"] == []
    await client.err("GET", f"{url}?name=T&version=two", 422)
    # unparsable dict reprs are ignored
    listing = await client.ok("GET", f"{url}?sort_options={{}}&page=1&filters={{'a': None}}")
    assert listing["count"] == 3
    await client.err("POST", url, 404, json=tpl("U", parent_prompt_template_id=99999))


async def test_tools_and_tool_choice(client: Any) -> None:
    url = f"{client.P}/prompt_templates"
    tools = [{"type": "function", "function": {"name": "f", "description": None,
                                               "parameters": {"type": "object"}, "strict": None}}]
    pt = await client.ok("POST", url, json=tpl("T", tools=tools, tool_choice="auto"))
    assert pt["tools"] == tools and pt["tool_choice"] == "auto"
    choice = {"type": "function", "function": {"name": "f"}}
    pt2 = await client.ok("POST", url, json=tpl("T", tools=tools, tool_choice=choice))
    assert pt2["tool_choice"] == choice
    assert "tools" in await client.err("POST", url, 422, json=tpl("X", tool_choice="auto"))
    assert "not in tools" in await client.err(
        "POST", url, 422,
        json=tpl("X", tools=tools, tool_choice={"type": "function", "function": {"name": "g"}}),
    )
    await client.err("POST", url, 422, json=tpl("X", tools=tools, tool_choice="sometimes"))
    await client.err("POST", url, 422, json=tpl("X", tools=[{"type": "function"}]))


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (tpl(""), "name"),
        (tpl("   "), "name"),
        (tpl("x" * 256), "255"),
        ({"name": "T", "messages": []}, "non-empty"),
        ({"name": "T", "messages": [{"role": "robot", "content": "x"}]}, "role"),
        ({"name": "T", "messages": [{"role": "user", "content": 5}]}, "content"),
        ({"name": "T", "messages": [{"role": "user"}]}, "content"),
        ({"name": "T", "messages": "Explain"}, "messages"),
        (tpl("T", "Explain {{topic"), "unclosed"),
        (tpl("T", "Explain {{to pic}}"), "placeholder"),
    ],
)
async def test_invalid_templates(client: Any, snapshot: Any, body: Any, needle: str) -> None:
    before = snapshot()
    detail = await client.err("POST", f"{client.P}/prompt_templates", 422, json=body)
    assert needle in detail
    assert snapshot() == before


async def test_content_parts_are_checked(client: Any) -> None:
    url = f"{client.P}/prompt_templates"
    parts = [{"type": "text", "text": "Look at {{thing}}"}, {"type": "image_url", "image_url": {}}]
    pt = await client.ok("POST", url, json={"name": "P", "messages": [
        {"role": "system", "content": "be nice"}, {"role": "user", "content": parts}]})
    assert pt["placeholders"] == ["thing"]
    bad = [{"type": "text", "text": "Look at {{thing"}]
    assert "messages[0]" in await client.err(
        "POST", url, 422, json={"name": "P", "messages": [{"role": "user", "content": bad}]})


async def test_filters_compatible_collection_and_criterion_set(client: Any) -> None:
    url = f"{client.P}/prompt_templates"
    a = await client.ok("POST", url, json=tpl("A", "{{topic}}"))
    b = await client.ok("POST", url, json=tpl("B", "{{topic}} {{level}}"))
    c = await client.ok("POST", url, json=tpl("C", "no placeholders"))
    coll = await client.ok(
        "POST", f"{client.P}/collections", json={"name": "K", "columns": ["topic"]}
    )
    compatible = await client.ok("GET", f"{url}?compatible_collection_id={coll['id']}&page=1")
    assert {t["id"] for t in compatible["items"]} == {a["id"], c["id"]}
    await client.err("GET", f"{url}?compatible_collection_id=9999", 404)
    cs = await client.ok("POST", f"{client.P}/criterion_sets", json={"name": "S", "criteria": None})
    await client.ok("PUT", f"{client.P}/criterion_sets/{cs['id']}/prompt_templates/{b['id']}")
    linked = await client.ok("GET", f"{url}?criterion_set_id={cs['id']}")
    assert [t["id"] for t in linked["items"]] == [b["id"]]


async def test_pagination_counts(aiohttp_client: Any, db_path: Any) -> None:
    from elluminate.server import ServerConfig, create_app

    config = ServerConfig(db_path=db_path, api_key="k" * 12, page_size=3)
    client = await aiohttp_client(create_app(config), headers={"X-API-Key": "k" * 12})
    url = f"{client.P}/prompt_templates"
    for i in range(7):
        await client.ok("POST", url, json=tpl(f"T{i}"))
    seen = []
    for page in (1, 2, 3):
        body = await client.ok("GET", f"{url}?page={page}")
        assert body["count"] == 7
        assert len(body["items"]) == (3 if page < 3 else 1)
        seen += [t["name"] for t in body["items"]]
    assert seen == [f"T{i}" for i in range(7)]
    assert (await client.ok("GET", f"{url}?page=9"))["items"] == []
    assert len((await client.ok("GET", url))["items"]) == 3


async def test_delete(client: Any) -> None:
    url = f"{client.P}/prompt_templates"
    pt = await client.ok("POST", url, json=tpl("T"))
    await client.ok("DELETE", f"{url}/{pt['id']}", 204)
    await client.err("GET", f"{url}/{pt['id']}", 404)
    await client.err("DELETE", f"{url}/{pt['id']}", 404)
    # the name can be used again; the version keeps counting
    again = await client.ok("POST", url, json=tpl("T"))
    assert again["version"] == 1 or again["version"] == 2
    assert (await client.ok("GET", f"{url}?name=T"))["count"] == 1


async def test_a_create_that_keeps_losing_its_version_number_answers_503(
    client: Any, snapshot: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # only concurrent creates of one name on PostgreSQL get here; zero attempts stand in
    from elluminate.server.store import templates

    monkeypatch.setattr(templates, "MAX_VERSION_ATTEMPTS", 0)
    before = snapshot()
    detail = await client.err("POST", f"{client.P}/prompt_templates", 503, json=tpl("T"))
    assert "concurrently" in detail and "try again" in detail
    assert snapshot() == before
