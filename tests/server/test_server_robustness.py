"""Junk input never yields a 500, and a failed request never writes anything."""

from __future__ import annotations

from typing import Any

import pytest

JUNK_BODIES: list[bytes] = [
    b"null", b"[]", b'"text"', b"123", b"{}", b'{"name": null}', b'{"name": {"a": 1}}',
    b'{"name": "x", "messages": {"role": "user"}}', b'{"name": "x", "criteria": "abc"}',
    b'{"name": "x", "columns": [1, 2]}', b'{"name": "x", "variables": {"a": 1}}',
    b'{"input_values": "x"}', b'{"criteria": [{"criterion_str": 5}]}',
    b'{"name": "x", "llm_model_name": 5}', b"\xff\xfe", b"{" * 5000, b'{"a": 1e999999}',
]


async def objects(client: Any) -> dict[str, int]:
    p = client.P
    pt = await client.ok("POST", f"{p}/prompt_templates", json={
        "name": "T", "messages": [{"role": "user", "content": "{{topic}}"}]})
    coll = await client.ok("POST", f"{p}/collections", json={"name": "C",
                                                              "variables": [{"topic": "a"}]})
    cs = await client.ok("POST", f"{p}/criterion_sets", json={"name": "S", "criteria": [
        {"criterion_str": "ok?", "label": None}]})
    llm = await client.ok("POST", f"{p}/llm_configs", json={"name": "L", "llm_model_name": "m"})
    return {"pt": pt["id"], "coll": coll["id"], "row": coll["variables"][0]["id"],
            "cs": cs["id"], "crit": cs["criteria"][0]["id"], "llm": llm["id"]}


def write_endpoints(p: str, ids: dict[str, int]) -> list[tuple[str, str]]:
    return [
        ("POST", "/api/v0/projects"),
        ("POST", f"{p}/prompt_templates"),
        ("POST", f"{p}/collections"),
        ("PUT", f"{p}/collections/{ids['coll']}"),
        ("POST", f"{p}/collections/{ids['coll']}/entries"),
        ("PUT", f"{p}/collections/{ids['coll']}/entries/{ids['row']}"),
        ("POST", f"{p}/collections/{ids['coll']}/entries/batches?skip_existing=true"),
        ("POST", f"{p}/criteria"),
        ("PUT", f"{p}/criteria/{ids['crit']}"),
        ("POST", f"{p}/criterion_sets"),
        ("POST", f"{p}/llm_configs"),
    ]


async def test_junk_bodies_are_never_500(client: Any) -> None:
    ids = await objects(client)
    for method, url in write_endpoints(client.P, ids):
        for body in JUNK_BODIES:
            resp = await client.request(
                method, url, data=body, headers={"Content-Type": "application/json"}
            )
            text = await resp.text()
            assert resp.status < 500, f"{method} {url} {body[:40]!r}: {resp.status} {text}"
            if resp.status >= 400:
                assert (await resp.json())["detail"]


async def test_invalid_bodies_are_4xx_and_write_nothing(client: Any, snapshot: Any) -> None:
    ids = await objects(client)
    before = snapshot()
    for method, url in write_endpoints(client.P, ids):
        for body in (b"null", b"[]", b'"text"', b"123", b"\xff\xfe", b"{" * 5000,
                     b'{"a": 1e999999'):
            if body == b"[]" and url.endswith("skip_existing=true"):
                continue  # an empty JSON array is a valid (empty) upload
            resp = await client.request(
                method, url, data=body, headers={"Content-Type": "application/json"}
            )
            text = await resp.text()
            assert 400 <= resp.status < 500, f"{method} {url} {body[:40]!r}: {resp.status} {text}"
            assert (await resp.json())["detail"]
    assert snapshot() == before


@pytest.mark.parametrize(
    "query",
    ["page=abc", "page=0", "name=", "version=abc", "criterion_set_id=x",
     "compatible_collection_id=-1", "compatible_prompt_template_id=1.5", "prompt_template_id=x",
     "page=99999999999999999999999", "name=%00", "sort_options=%7B'a'%7D"],
)
async def test_junk_queries_are_never_500(client: Any, query: str) -> None:
    ids = await objects(client)
    for path in ("prompt_templates", "collections", f"collections/{ids['coll']}/entries",
                 "criteria", "criterion_sets", "llm_configs"):
        resp = await client.get(f"{client.P}/{path}?{query}")
        assert resp.status in (200, 404, 422), f"{path}?{query}: {await resp.text()}"


async def test_malformed_multipart(client: Any) -> None:
    ids = await objects(client)
    url = f"{client.P}/collections/{ids['coll']}/entries/batches?skip_existing=true"
    for content_type, data in (
        ("multipart/form-data", b"garbage"),
        ("multipart/form-data; boundary=abc", b"garbage"),
    ):
        detail = await client.err("POST", url, 422, data=data,
                                  headers={"Content-Type": content_type})
        assert "multipart" in detail
