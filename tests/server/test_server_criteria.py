"""Criteria (add / generate / clear / edit / delete) and criterion sets (+ template links)."""

from __future__ import annotations

from typing import Any


def crit(*texts: str) -> list[dict[str, Any]]:
    return [{"criterion_str": t, "label": None} for t in texts]


def body(**kw: Any) -> dict[str, Any]:
    base = {"prompt_template_id": None, "criterion_set_id": None, "template_variables_id": None,
            "criteria": None, "delete_existing": False}
    return {**base, **kw}


async def template(client: Any, name: str = "T", content: str = "Explain {{topic}}") -> Any:
    return await client.ok("POST", f"{client.P}/prompt_templates", json={
        "name": name, "messages": [{"role": "user", "content": content}]})


async def test_criterion_set_crud(client: Any) -> None:
    url = f"{client.P}/criterion_sets"
    cs = await client.ok("POST", url, 201, json={
        "name": "CS", "criteria": [{"criterion_str": "a", "label": None},
                                   {"criterion_str": " b ", "label": "B"},
                                   {"criterion_str": "a", "label": None}]})
    assert cs["name"] == "CS" and cs["linked_prompt_templates"] == []
    assert [(c["criterion_str"], c["label"]) for c in cs["criteria"]] == [("a", None), ("b", "B")]
    assert await client.ok("GET", f"{url}/{cs['id']}") == cs
    detail = await client.err("POST", url, 409, json={"name": "CS", "criteria": None})
    assert "already exists" in detail and client.last_error_body["criterion_set_id"] == cs["id"]
    empty = await client.ok("POST", url, json={"name": "E", "criteria": None})
    assert empty["criteria"] == []
    by_name = await client.ok("GET", f"{url}?name=CS")
    assert [s["id"] for s in by_name["items"]] == [cs["id"]]
    assert (await client.ok("GET", f"{url}?name=MISSING"))["items"] == []
    assert (await client.ok("GET", f"{url}?page=1"))["count"] == 2
    await client.err("POST", url, 422, json={"name": "", "criteria": None})
    await client.err("POST", url, 422, json={"name": "X", "criteria": crit(" ")})
    await client.ok("DELETE", f"{url}/{cs['id']}", 204)
    await client.err("GET", f"{url}/{cs['id']}", 404)
    # its criteria went with it
    assert (await client.ok("GET", f"{client.P}/criteria"))["count"] == 0


async def test_link_unlink_template(client: Any) -> None:
    pt = await template(client)
    a = await client.ok("POST", f"{client.P}/criterion_sets", json={"name": "A", "criteria": None})
    b = await client.ok("POST", f"{client.P}/criterion_sets", json={"name": "B", "criteria": None})
    link_a = f"{client.P}/criterion_sets/{a['id']}/prompt_templates/{pt['id']}"
    link_b = f"{client.P}/criterion_sets/{b['id']}/prompt_templates/{pt['id']}"
    linked = await client.ok("PUT", link_a)  # no body, like the SDK
    assert [t["id"] for t in linked["linked_prompt_templates"]] == [pt["id"]]
    assert linked["linked_prompt_templates"][0]["criterion_set_id"] == a["id"]
    await client.ok("PUT", link_a)  # idempotent
    await client.ok("PUT", link_b)
    got = await client.ok("GET", f"{client.P}/prompt_templates/{pt['id']}")
    assert got["criterion_set_id"] == a["id"]  # the first link stays the default
    await client.ok("DELETE", link_a, 204)
    got = await client.ok("GET", f"{client.P}/prompt_templates/{pt['id']}")
    assert got["criterion_set_id"] == b["id"]  # falls back to the remaining link
    await client.ok("DELETE", link_b, 204)
    got = await client.ok("GET", f"{client.P}/prompt_templates/{pt['id']}")
    assert got["criterion_set_id"] is None
    await client.err("PUT", f"{client.P}/criterion_sets/999/prompt_templates/{pt['id']}", 404)
    await client.err("PUT", f"{client.P}/criterion_sets/{a['id']}/prompt_templates/999", 404)


async def test_add_reuse_and_clear(client: Any) -> None:
    cs = await client.ok("POST", f"{client.P}/criterion_sets", json={
        "name": "CS", "criteria": crit("a")})
    url = f"{client.P}/criteria"
    added = await client.ok("POST", url, 201, json=body(criterion_set_id=cs["id"],
                                                        criteria=crit("c", "a", "c")))
    assert [c["criterion_str"] for c in added] == ["c", "a"]
    assert added[1]["id"] == cs["criteria"][0]["id"]  # reused, not duplicated
    listing = await client.ok("GET", f"{url}?criterion_set_id={cs['id']}")
    assert [c["criterion_str"] for c in listing["items"]] == ["a", "c"]
    cleared = await client.ok("POST", url, json=body(criterion_set_id=cs["id"], criteria=[],
                                                     delete_existing=True))
    assert cleared == []
    assert (await client.ok("GET", f"{client.P}/criterion_sets/{cs['id']}"))["criteria"] == []
    # replace in one go
    replaced = await client.ok("POST", url, json=body(criterion_set_id=cs["id"],
                                                      criteria=crit("x"), delete_existing=True))
    assert [c["criterion_str"] for c in replaced] == ["x"]
    await client.err("POST", url, 422, json=body(criteria=crit("x")))
    await client.err("POST", url, 422, json=body(prompt_template_id=1, criterion_set_id=cs["id"],
                                                 criteria=crit("x")))
    await client.err("POST", url, 404, json=body(criterion_set_id=999, criteria=crit("x")))
    await client.err("POST", url, 422, json=body(criterion_set_id=cs["id"], criteria=crit("")))
    await client.err("POST", url, 422,
                     json=body(criterion_set_id=cs["id"], criteria=None))  # nothing to generate


async def test_add_for_template_creates_its_set(client: Any) -> None:
    pt = await template(client)
    added = await client.ok("POST", f"{client.P}/criteria",
                            json=body(prompt_template_id=pt["id"], criteria=crit("q1", "q2")))
    assert len(added) == 2
    got = await client.ok("GET", f"{client.P}/prompt_templates/{pt['id']}")
    cs = await client.ok("GET", f"{client.P}/criterion_sets/{got['criterion_set_id']}")
    assert cs["name"] == "T" and [c["id"] for c in cs["criteria"]] == [c["id"] for c in added]
    listing = await client.ok("GET", f"{client.P}/criteria?prompt_template_id={pt['id']}&page=1")
    assert [c["id"] for c in listing["items"]] == [c["id"] for c in added]


async def test_generate_conflict_and_delete_existing(client: Any, snapshot: Any) -> None:
    pt = await template(client, content="Explain {{topic}} to {{audience}}")
    url = f"{client.P}/criteria"
    generated = await client.ok("POST", url, 201, json=body(prompt_template_id=pt["id"]))
    assert len(generated) >= 1 and all(c["criterion_str"] for c in generated)
    got = await client.ok("GET", f"{client.P}/prompt_templates/{pt['id']}")
    assert got["criterion_set_id"] is not None
    cs = await client.ok("GET", f"{client.P}/criterion_sets/{got['criterion_set_id']}")
    assert cs["name"] == "T" and [t["id"] for t in cs["linked_prompt_templates"]] == [pt["id"]]

    before = snapshot()
    detail = await client.err("POST", url, 409, json=body(prompt_template_id=pt["id"]))
    assert "delete_existing" in detail and client.last_error_body["prompt_template_id"] == pt["id"]
    assert snapshot() == before

    listing = await client.ok("GET", f"{url}?prompt_template_id={pt['id']}&page=1")
    assert [c["id"] for c in listing["items"]] == [c["id"] for c in generated]

    fresh = await client.ok("POST", url, json=body(prompt_template_id=pt["id"],
                                                   delete_existing=True))
    assert {c["id"] for c in fresh}.isdisjoint({c["id"] for c in generated})
    cs = await client.ok("GET", f"{client.P}/criterion_sets/{cs['id']}")
    assert [c["id"] for c in cs["criteria"]] == [c["id"] for c in fresh]


async def test_generation_failure_writes_nothing(client: Any, snapshot: Any) -> None:
    pt = await template(client, content="ECHO_FAIL {{topic}}")
    before = snapshot()
    detail = await client.err("POST", f"{client.P}/criteria", 502,
                              json=body(prompt_template_id=pt["id"]))
    assert detail.startswith("criteria generation failed")
    assert snapshot() == before


async def test_second_template_version_gets_its_own_set(client: Any) -> None:
    v1 = await template(client)
    v2 = await template(client, content="Describe {{topic}}")
    url = f"{client.P}/criteria"
    await client.ok("POST", url, json=body(prompt_template_id=v1["id"]))
    await client.ok("POST", url, json=body(prompt_template_id=v2["id"]))
    sets = await client.ok("GET", f"{client.P}/criterion_sets")
    assert [s["name"] for s in sets["items"]] == ["T", "T v2"]


async def test_edit_creates_version_and_delete(client: Any) -> None:
    cs = await client.ok("POST", f"{client.P}/criterion_sets",
                         json={"name": "CS", "criteria": crit("a", "b")})
    first, second = cs["criteria"]
    url = f"{client.P}/criteria"
    same = await client.ok("PUT", f"{url}/{first['id']}", json={"criterion_str": "a"})
    assert same["id"] == first["id"]
    edited = await client.ok("PUT", f"{url}/{first['id']}", json={"criterion_str": "a2",
                                                                 "label": "L"})
    assert edited["id"] != first["id"] and edited["criterion_str"] == "a2"
    assert edited["label"] == "L"
    cs = await client.ok("GET", f"{client.P}/criterion_sets/{cs['id']}")
    assert [c["id"] for c in cs["criteria"]] == [edited["id"], second["id"]]  # same position
    await client.err("GET", f"{url}/{first['id']}", 404)  # old version hidden
    relabel = await client.ok("PUT", f"{url}/{edited['id']}", json={"label": "M"})
    assert relabel["criterion_str"] == "a2" and relabel["label"] == "M"
    await client.err("PUT", f"{url}/{second['id']}", 422, json={"criterion_str": " "})
    await client.ok("DELETE", f"{url}/{second['id']}", 204)
    await client.err("GET", f"{url}/{second['id']}", 404)
    await client.err("DELETE", f"{url}/{second['id']}", 404)
    cs = await client.ok("GET", f"{client.P}/criterion_sets/{cs['id']}")
    assert [c["id"] for c in cs["criteria"]] == [relabel["id"]]
    assert await client.ok("GET", f"{url}/{relabel['id']}") == relabel


async def test_criteria_pagination_and_scoping(client: Any, other: Any) -> None:
    from elluminate.server.api.http import CONFIG_KEY

    client.server.app[CONFIG_KEY].page_size = 2
    cs = await client.ok("POST", f"{client.P}/criterion_sets",
                         json={"name": "CS", "criteria": crit("a", "b", "c")})
    page1 = await client.ok("GET", f"{client.P}/criteria?page=1")
    page2 = await client.ok("GET", f"{client.P}/criteria?page=2")
    assert page1["count"] == page2["count"] == 3
    assert [c["criterion_str"] for c in page1["items"] + page2["items"]] == ["a", "b", "c"]
    other_pid, headers = other
    base = f"/api/v0/projects/{other_pid}"
    await client.err("GET", f"{base}/criteria/{cs['criteria'][0]['id']}", 404, headers=headers)
    await client.err("GET", f"{base}/criterion_sets/{cs['id']}", 404, headers=headers)
    await client.err("POST", f"{base}/criteria", 404, headers=headers,
                     json=body(criterion_set_id=cs["id"], criteria=crit("x")))
    await client.err("GET", f"{base}/criteria?criterion_set_id={cs['id']}", 404, headers=headers)
