"""Security checks (issue 6, item 5).

Routes are enumerated from the running app's router, so a new route is covered without
editing this file: it needs a key (401 without), and with an id in its path it must answer
404 for another project's object. Also: keys stored hashed and compared in constant time,
LLM config secrets never returned nor logged, 127.0.0.1 by default, request bodies limited.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import json
import logging
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from aiohttp import web
from aiohttp.test_utils import TestServer

from elluminate import AsyncClient, Client
from elluminate.exceptions import APIError, ElluminateError
from elluminate.server import LocalServer, ServerConfig, cli
from elluminate.server.api import auth
from elluminate.server.api.openapi import iter_routes
from elluminate.server.store import projects as key_store

PUBLIC = {("GET", "/"), ("HEAD", "/"), ("GET", "/openapi.json"), ("HEAD", "/openapi.json"),
          ("POST", "/api/v0/version/compatible")}
ID_PARAMS = {"project_id", "template_id", "collection_id", "entry_id", "criterion_id", "set_id",
             "config_id", "experiment_id", "response_id", "task_id", "scenario_set_id",
             "field_id", "scenario_id"}


def all_routes(app: web.Application) -> list[tuple[str, str]]:
    """Every (method, canonical path) of the router, HEAD included."""
    return sorted({(r.method, r.resource.canonical) for r in app.router.routes()})


def fill(path: str, ids: dict[str, Any]) -> str:
    names = re.findall(r"{(\w+)}", path)
    unknown = set(names) - ID_PARAMS
    assert not unknown, f"{path}: teach test_security.py how to fill {unknown}"
    return path.format(**{name: ids[name] for name in names})


def path_ids(seeded: dict[str, Any], pid: int) -> dict[str, Any]:
    return {
        "project_id": pid, "template_id": seeded["template_id"],
        "collection_id": seeded["collection_id"], "entry_id": seeded["entry_id"],
        "criterion_id": seeded["criterion_id"], "set_id": seeded["set_id"],
        "config_id": seeded["config_id"], "experiment_id": seeded["experiment_id"],
        "response_id": seeded["response_id"], "task_id": seeded["task_id"],
        "scenario_set_id": seeded["scenario_set_id"], "field_id": seeded["field_id"],
        "scenario_id": seeded["scenario_id"],
    }


@pytest.fixture
def seeded(server: LocalServer, api_factory: Any, seed: Any) -> Iterator[tuple[Any, dict]]:
    api = api_factory(server.base_url, server.api_key)
    yield api, seed(api)
    api.close()


# ---- authentication ------------------------------------------------------------------------


def test_every_route_but_the_public_ones_requires_a_key(
    server: LocalServer, seeded: tuple[Any, dict[str, Any]]
) -> None:
    api, ids = seeded
    assert server.app is not None
    routes = all_routes(server.app)
    public = {(m, p) for m, p in routes if auth.PUBLIC_ROUTES & {(m, p), ("*", p)}}
    assert public == PUBLIC
    checked = viewer = 0
    for method, path in routes:
        if auth.is_viewer_path(path):  # the web viewer: a session, not a key (below)
            viewer += check_viewer_route(server, method, path, ids, api.pid)
            continue
        url = server.base_url + fill(path, path_ids(ids, api.pid))
        if (method, path) in PUBLIC:
            resp = requests.request(method, url, timeout=30)
            assert resp.status_code < 300, (method, path, resp.status_code)
            continue
        for headers in ({}, {"X-API-Key": "wrong"}, {"Authorization": "Bearer wrong"},
                        {"X-API-Key": ""}, {"Authorization": f"Basic {server.api_key}"}):
            resp = requests.request(method, url, headers=headers, json={}, timeout=30)
            assert resp.status_code == 401, (method, path, headers, resp.status_code)
            if method != "HEAD":
                assert "API key" in resp.json()["detail"]
        checked += 1
    print(f"\n401 without a valid key: {checked} routes (5 header variants each)")
    assert checked >= 80  # 58 operations + their HEAD twins
    assert viewer >= 20


#: Viewer routes served without a session: the redirect to it, its sign-in form, its assets.
VIEWER_PUBLIC = {"/ui", "/ui/login", "/ui/assets"}


def check_viewer_route(
    server: LocalServer, method: str, path: str, ids: dict[str, Any], pid: int
) -> int:
    """A viewer route without a session: its pages send the browser to the sign-in (an API
    key in a header is no session), its forms refuse a POST without a CSRF token."""
    url = server.base_url + fill(path.replace("{tail}", "anything"), path_ids(ids, pid))
    key = server.api_key
    variants = [({}, m) for m in (["GET", "POST"] if method == "*" else [method])]
    variants += [({"X-API-Key": key}, m) for _, m in variants]
    variants += [({"Authorization": f"Bearer {key}"}, m) for _, m in variants[: len(variants) // 2]]
    for headers, sent in variants:
        resp = requests.request(
            sent, url, headers=headers, data={}, allow_redirects=False, timeout=30
        )
        if path == "/ui":
            assert resp.status_code == 302 and resp.headers["Location"] == "/ui/"
        elif path == "/ui/login" and method == "POST":
            assert resp.status_code == 403, resp.text  # no CSRF token: no sign-in
        elif path == "/ui/login":
            assert resp.status_code == 200
        elif path == "/ui/assets":
            assert resp.status_code in (403, 404)  # a folder is never listed
        else:
            assert resp.status_code == 303, (sent, path, headers, resp.status_code)
            assert resp.headers["Location"].startswith("/ui/login")
    return 1


def test_bearer_and_header_keys_both_work(server: LocalServer) -> None:
    for headers in ({"X-API-Key": server.api_key},
                    {"Authorization": f"Bearer {server.api_key}"}):
        resp = requests.get(server.base_url + "/api/v0/projects", headers=headers, timeout=30)
        assert resp.status_code == 200


def _file_bytes(db_path: Path) -> bytes:
    data = b""
    for suffix in ("", "-wal", "-shm", "-journal"):
        candidate = Path(str(db_path) + suffix)
        if candidate.exists():
            data += candidate.read_bytes()
    return data


async def _all_rows_as_text(conn: Any) -> bytes:
    tables = [r[0] for r in await conn.fetch(
        "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")]
    rows = [r[0] for t in tables for r in await conn.fetch(f'SELECT t::text FROM "{t}" t')]
    return "\n".join(rows).encode()


def test_keys_are_stored_only_as_hashes(
    server: LocalServer, api_factory: Any, postgres_runner: Any
) -> None:
    api = api_factory(server.base_url, server.api_key)
    created = api.call("POST", "/api/v0/projects", json={"name": "second"})
    api.close()
    assert server.db_path is not None
    if str(server.db_path).startswith("postgresql://"):
        content = postgres_runner(server.db_path)(_all_rows_as_text)
    else:
        content = _file_bytes(server.db_path)
    for key in (server.api_key, created["api_key"]):
        assert key.encode() not in content
        assert key[4:].encode() not in content  # not even without its prefix
        assert hashlib.sha256(key.encode()).hexdigest().encode() in content


def test_keys_are_compared_in_constant_time() -> None:
    source = inspect.getsource(key_store.authenticate)
    assert "hmac.compare_digest(" in source
    assert not re.search(r"key_hash\W*(==|!=)", source)
    assert "hmac.compare_digest(" in inspect.getsource(key_store.bootstrap)


# ---- project isolation ---------------------------------------------------------------------

BODIES: dict[tuple[str, str], Any] = {
    ("PUT", "/collections/{collection_id}"): {"name": "hijack"},
    ("PUT", "/collections/{collection_id}/entries/{entry_id}"): {"input_values": {"topic": "x"}},
    ("POST", "/collections/{collection_id}/entries"): {"input_values": {"topic": "x"}},
    ("PUT", "/criteria/{criterion_id}"): {"criterion_str": "hijacked?"},
    ("PATCH", "/responses/{response_id}"): {"annotation": "hijacked"},
    ("PUT", "/scenario-sets/{scenario_set_id}"): {"name": "hijack"},
    ("POST", "/scenario-sets/{scenario_set_id}/fields"): {"name": "hijack", "default_value": ""},
    ("PUT", "/scenario-sets/{scenario_set_id}/fields/{field_id}"): {"name": "hijack"},
    ("POST", "/scenario-sets/{scenario_set_id}/scenarios"): {
        "goal": "hijack", "expected_conversation_outcome": "x"},
    ("PUT", "/scenario-sets/{scenario_set_id}/scenarios/{scenario_id}"): {
        "goal": "hijack", "expected_conversation_outcome": "x"},
    ("POST", "/scenario-sets/{scenario_set_id}/scenarios/batch"): {
        "scenarios": [{"goal": "hijack", "expected_conversation_outcome": "x"}]},
    ("POST", "/experiments/{experiment_id}/agent-results/preview"): {"results": []},
    ("POST", "/experiments/{experiment_id}/agent-results"): {"results": [{"task_id": 1}]},
}


def _body_for(method: str, path: str) -> dict[str, Any]:
    suffix = path.removeprefix("/api/v0/projects/{project_id}")
    kwargs: dict[str, Any] = {}
    if (method, suffix) in BODIES:
        kwargs["json"] = BODIES[(method, suffix)]
    elif suffix.endswith("/entries/batches"):
        kwargs["files"] = {"file": ("rows.jsonl", '{"topic": "x"}', "application/jsonl")}
    elif method in ("POST", "PUT", "PATCH"):
        kwargs["json"] = {}
    return kwargs


def _stream_text(resp: requests.Response) -> str:
    return resp.content.decode()


def test_a_key_gets_404_for_every_object_of_another_project(
    server: LocalServer, api_factory: Any, seed: Any, row_counts: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from elluminate.server.api import sse as tasks_sse

    monkeypatch.setattr(tasks_sse, "UNKNOWN_STREAM_SECONDS", 0.3)
    a = api_factory(server.base_url, server.api_key)
    a_ids = seed(a, "-a")
    created = a.call("POST", "/api/v0/projects", json={"name": "B"})
    b = api_factory(server.base_url, created["api_key"], pid=created["id"])
    b_ids = seed(b, "-b")
    batch = b.call("POST", f"{b.P}/responses/batches", json={"prompt_response_ins": [{
        "experiment_id": b_ids["experiment_id"], "template_variables_id": b_ids["entry_id"],
        "epoch": 2, "messages": "from B"}]})  # epoch 1 of the entry has its response
    b.wait_task(f"{b.P}/responses/batches/{batch}")
    before = row_counts(server.db_path)
    assert server.app is not None

    unknown_task = str(uuid.uuid4())
    checked = {"404": 0, "task-like-unknown": 0, "other-project-prefix": 0}
    for route in iter_routes(server.app):
        method, path = route.method, route.path
        if "project_id" not in route.path_params:
            continue
        # 1. B's project in the path, A's key: 404 before any handler runs
        foreign = fill(path, path_ids(b_ids, b.pid))
        resp = a.request(method, foreign, timeout=30, **_body_for(method, path))
        assert resp.status_code == 404, (method, foreign, resp.status_code, resp.text[:200])
        assert f"project {b.pid} not found" in resp.json()["detail"]
        checked["other-project-prefix"] += 1
        if set(route.path_params) == {"project_id"}:
            continue
        # 2. A's project in the path, B's object ids: 404 (a task id: same as an unknown one)
        ids = path_ids(b_ids, a.pid)
        if "/responses/batches/" in path:
            ids["task_id"] = batch
        elif "/ratings/batches/" in path:
            ids["task_id"] = b_ids["rating_task_id"]
        url = fill(path, ids)
        resp = a.request(method, url, timeout=30, **_body_for(method, path))
        if set(route.path_params) == {"project_id", "task_id"}:
            twin = a.request(method, fill(path, {**ids, "task_id": unknown_task}), timeout=30)
            assert resp.status_code == twin.status_code == 200, (method, url)
            if path.endswith("/stream"):
                assert _stream_text(resp) == _stream_text(twin)
                assert '"PENDING"' in _stream_text(resp)
            else:
                assert resp.json() == twin.json() == {"status": "PENDING"}, (url, resp.text)
            checked["task-like-unknown"] += 1
            continue
        assert resp.status_code == 404, (method, url, resp.status_code, resp.text[:200])
        assert "not found" in resp.json()["detail"]
        checked["404"] += 1

    # 3. B's ids inside request bodies
    p = a.P
    body_refs = [
        ("POST", f"{p}/experiments", {
            "name": "x", "prompt_template_id": b_ids["template_id"],
            "collection_id": a_ids["collection_id"], "criterion_set_id": a_ids["set_id"]}),
        ("POST", f"{p}/experiments", {
            "name": "x", "prompt_template_id": a_ids["template_id"],
            "collection_id": b_ids["collection_id"], "criterion_set_id": a_ids["set_id"]}),
        ("POST", f"{p}/experiments", {
            "name": "x", "prompt_template_id": a_ids["template_id"],
            "collection_id": a_ids["collection_id"], "criterion_set_id": b_ids["set_id"]}),
        ("POST", f"{p}/experiments", {
            "name": "x", "prompt_template_id": a_ids["template_id"],
            "collection_id": a_ids["collection_id"], "criterion_set_id": a_ids["set_id"],
            "llm_config_id": b_ids["config_id"]}),
        ("POST", f"{p}/criteria", {"prompt_template_id": b_ids["template_id"],
                                   "criteria": [{"criterion_str": "x"}]}),
        ("POST", f"{p}/criteria", {"criterion_set_id": b_ids["set_id"],
                                   "criteria": [{"criterion_str": "x"}]}),
        ("POST", f"{p}/prompt_templates", {
            "name": "x", "messages": [{"role": "user", "content": "hi"}],
            "parent_prompt_template_id": b_ids["template_id"]}),
        ("POST", f"{p}/collections/{a_ids['collection_id']}/entries",
         {"prompt_template_id": b_ids["template_id"]}),
        ("POST", f"{p}/responses", {"experiment_id": b_ids["experiment_id"],
                                    "template_variables_id": b_ids["entry_id"],
                                    "messages": "x"}),
        ("POST", f"{p}/responses", {"experiment_id": a_ids["experiment_id"],
                                    "template_variables_id": b_ids["entry_id"],
                                    "messages": "x"}),
        ("POST", f"{p}/responses/generate", {"experiment_id": b_ids["experiment_id"],
                                             "template_variables_id": b_ids["entry_id"]}),
        ("POST", f"{p}/responses/batches", {"prompt_response_ins": [{
            "experiment_id": b_ids["experiment_id"],
            "template_variables_id": b_ids["entry_id"], "messages": "x"}]}),
        ("POST", f"{p}/ratings", {"prompt_response_id": b_ids["response_id"]}),
        ("POST", f"{p}/ratings/batches", {"prompt_response_ids": [b_ids["response_id"]]}),
        ("PUT", f"{p}/criterion_sets/{a_ids['set_id']}/prompt_templates/{b_ids['template_id']}",
         None),
        ("PUT", f"{p}/criterion_sets/{b_ids['set_id']}/prompt_templates/{a_ids['template_id']}",
         None),
    ]
    for method, url, body in body_refs:
        resp = a.request(method, url, json=body, timeout=30)
        assert resp.status_code == 404, (method, url, body, resp.status_code, resp.text[:200])
        checked["404"] += 1

    # 4. filters naming B's objects find nothing (or 404), lists show only A's objects
    for path, params in (
        ("/responses", {"experiment_id": b_ids["experiment_id"]}),
        ("/responses", {"response_ids": b_ids["response_ids"]}),
        ("/ratings", {"prompt_response_id": b_ids["response_id"]}),
        ("/experiments", {"collection_id": b_ids["collection_id"]}),
    ):
        assert a.call("GET", p + path, params=params) == {"items": [], "count": 0}
    for path in ("/criteria", "/prompt_templates", "/collections"):
        key = {"/criteria": "criterion_set_id", "/prompt_templates": "criterion_set_id",
               "/collections": "compatible_prompt_template_id"}[path]
        value = b_ids["template_id"] if key.startswith("compatible") else b_ids["set_id"]
        resp = a.request("GET", p + path, params={key: value})
        assert resp.status_code == 404 or resp.json()["count"] == 0, (path, resp.text)
    for path in ("/prompt_templates", "/collections", "/criterion_sets", "/llm_configs",
                 "/experiments", "/responses", "/ratings", "/criteria"):
        names = {str(item.get("name", item.get("id"))) for item in
                 a.call("GET", p + path)["items"]}
        assert not any(n.endswith("-b") for n in names), (path, names)
    assert a.call("GET", "/api/v0/projects")["items"] == [a.call("GET", p)]

    assert row_counts(server.db_path) == before, "a refused cross-project request wrote data"
    print(f"\ncross-project: {checked}")
    a.close()
    b.close()


# ---- secrets -------------------------------------------------------------------------------

SECRET = "sk-test-Secr3tValue-" + "x" * 24


@pytest.fixture
async def fake_llm() -> Any:
    """An OpenAI-compatible endpoint: /ok answers, /fail answers 401 quoting the key."""
    seen: list[str] = []

    async def ok(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Authorization", ""))
        return web.json_response({
            "choices": [{"message": {"role": "assistant", "content": "fine"},
                         "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 1},
        })

    async def fail(request: web.Request) -> web.Response:
        key = request.headers.get("Authorization", "").removeprefix("Bearer ")
        seen.append(key)
        return web.json_response(
            {"error": {"message": f"Incorrect API key provided: {key}"}}, status=401
        )

    app = web.Application()
    app.router.add_post("/ok/v1/chat/completions", ok)
    app.router.add_post("/fail/v1/chat/completions", fail)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield server, seen
    finally:
        await server.close()


async def test_llm_config_secrets_are_never_returned_nor_logged(
    server: LocalServer, fake_llm: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    fake, seen = fake_llm
    base = str(fake.make_url("")).rstrip("/")
    answers: list[str] = []
    async with AsyncClient(base_url=server.base_url, api_key=server.api_key) as client:
        good = await client.create_llm_config(
            name="good", llm_model_name="m", api_key=SECRET, llm_base_url=f"{base}/ok/v1",
            max_retries=0)
        bad = await client.create_llm_config(
            name="bad", llm_model_name="m", api_key=SECRET, llm_base_url=f"{base}/fail/v1",
            max_retries=0)
        assert good.api_key is not None and good.api_key.endswith(SECRET[-4:])
        assert SECRET not in repr(good)
        template = await client.create_prompt_template(name="T", template="Say {{x}}")
        collection = await client.create_collection(name="C", variables=[{"x": "a"}])
        cset = await client.create_criterion_set(name="S", criteria=["ok?"])
        done = await client.run_experiment(
            name="good run", prompt_template=template, collection=collection,
            llm_config=good, criterion_set=cset, rating_version="mock", timeout=60)
        assert [r.response_str for r in done.rated_responses] == ["fine"]
        try:
            await client.run_experiment(
                name="bad run", prompt_template=template, collection=collection,
                llm_config=bad, criterion_set=cset, rating_version="mock", timeout=60)
        except ElluminateError as exc:  # the run may end FAILURE: all generations failed
            answers.append(str(exc))
        await client.get_llm_config(id=good.id)
        await client.get_llm_config(name="bad")
        await client.list_llm_configs()
        assert client.current_project is not None
        p = f"/api/v0/projects/{client.current_project.id}"
    headers = {"X-API-Key": server.api_key}

    def get(path: str) -> str:
        return requests.get(server.base_url + p + path, headers=headers, timeout=30).text

    for path in ("/llm_configs", f"/llm_configs/{good.id}", "/experiments", "/responses",
                 "/ratings", f"/experiments/{done.id}"):
        answers.append(await asyncio.to_thread(get, path))
    assert f"Bearer {SECRET}" in seen and SECRET in seen  # the key was really used
    failed = json.loads(await asyncio.to_thread(get, "/responses"))
    assert any(r["error"] for r in failed["items"]), "the failing endpoint stored no error"
    for text in answers:
        assert SECRET not in text
        assert SECRET[8:-4] not in text
    logged = caplog.text + "\n".join(str(r.args) for r in caplog.records)
    assert SECRET not in logged and SECRET[8:-4] not in logged
    assert server.api_key not in logged
    assert caplog.records, "nothing was logged: the check would prove nothing"


# ---- network and size limits ----------------------------------------------------------------


def test_server_binds_localhost_unless_told_otherwise() -> None:
    assert ServerConfig().host == "127.0.0.1"
    assert cli.config_from_args([], environ={}).host == "127.0.0.1"
    assert cli.config_from_args(["--host", "0.0.0.0"], environ={}).host == "0.0.0.0"
    assert cli.config_from_args([], environ={"ELLUMINATE_SERVER_HOST": "::1"}).host == "::1"
    assert LocalServer().host == "127.0.0.1"
    assert inspect.signature(LocalServer).parameters["host"].default == "127.0.0.1"


def test_request_bodies_are_size_limited(tmp_path: Path, row_counts: Any) -> None:
    limit = 64 * 1024
    with LocalServer(db_path=tmp_path / "small.db", llm="echo", client_max_size=limit) as srv:
        headers = {"X-API-Key": srv.api_key}
        p = srv.base_url + "/api/v0/projects/1"
        coll = requests.post(p + "/collections", headers=headers, timeout=30, json={
            "name": "C", "description": "", "read_only": False,
            "collection_type": "STANDARD"}).json()
        before = row_counts(srv.db_path)
        big = "x" * (limit + 1)
        for kwargs, url in (
            ({"json": {"name": "T", "messages": [{"role": "user", "content": big}]}},
             p + "/prompt_templates"),
            ({"files": {"file": ("rows.jsonl", json.dumps({"topic": big}), "application/jsonl")}},
             p + f"/collections/{coll['id']}/entries/batches"),
            ({"data": big.encode(), "headers": {"Content-Type": "application/jsonl"}},
             p + f"/collections/{coll['id']}/entries/batches"),
        ):
            resp = requests.post(url, headers={**headers, **kwargs.pop("headers", {})},
                                 timeout=30, **kwargs)
            assert resp.status_code == 413, (url, resp.status_code, resp.text[:200])
            assert str(limit) in resp.json()["detail"]
        with Client(base_url=srv.base_url, api_key=srv.api_key) as client:
            with pytest.raises(APIError) as info:
                client.create_prompt_template(name="T", template=big)
            assert info.value.status_code == 413
        assert row_counts(srv.db_path) == before
