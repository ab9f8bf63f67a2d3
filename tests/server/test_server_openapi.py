"""GET /openapi.json: served without a key, and in sync with the app's router.

The sync test enumerates the router itself: a new route without metadata (a table entry in
``elluminate.server.api.openapi.OPERATIONS`` or an ``@operation`` decorator) fails here with its
method and path, and so does a table entry that no longer matches a route.
"""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from aiohttp import web

from elluminate import schemas
from elluminate.server import ServerConfig, create_app
from elluminate.server.api.openapi import (
    OPERATIONS,
    Op,
    build_openapi,
    is_public,
    iter_routes,
    op_for,
    operation,
    stale_operations,
    undocumented_routes,
)

METHODS = {"get", "put", "post", "delete", "patch", "head", "options"}


@pytest.fixture
def app(tmp_path: Any) -> web.Application:
    return create_app(ServerConfig(db_path=tmp_path / "x.db", llm="echo"))


def router_operations(app: web.Application) -> set[tuple[str, str]]:
    """(METHOD, path) of every API route, HEAD twins of GET routes and the web viewer's
    pages (``/ui``) left out."""
    found = set()
    gets = {r.resource.canonical for r in app.router.routes() if r.method == "GET"}
    for route in app.router.routes():
        if route.method == "HEAD" and route.resource.canonical in gets:
            continue
        if route.resource.canonical == "/ui" or route.resource.canonical.startswith("/ui/"):
            continue
        found.add((route.method, route.resource.canonical))
    return found


def test_the_viewer_pages_are_served_but_not_in_the_api_document(app: web.Application) -> None:
    viewer = {
        r.resource.canonical
        for r in app.router.routes()
        if r.resource.canonical == "/ui" or r.resource.canonical.startswith("/ui/")
    }
    assert {"/ui", "/ui/", "/ui/login", "/ui/experiments/{experiment_id}"} <= viewer
    paths = build_openapi(app)["paths"]
    assert not [p for p in paths if p == "/ui" or p.startswith("/ui/")]


def document_operations(doc: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (method.upper(), path)
        for path, item in doc["paths"].items()
        for method in item
        if method in METHODS
    }


def test_every_route_has_metadata_and_no_entry_is_stale(app: web.Application) -> None:
    missing = undocumented_routes(app)
    assert not missing, (
        "routes without OpenAPI metadata (add them to OPERATIONS in "
        f"elluminate/server/openapi.py or decorate the handler with @operation): {missing}"
    )
    stale = stale_operations(app)
    assert not stale, f"OPERATIONS entries that match no route (remove or fix them): {stale}"


def test_document_lists_exactly_the_routers_operations(app: web.Application) -> None:
    doc = build_openapi(app)
    served, documented = router_operations(app), document_operations(doc)
    assert served - documented == set(), f"served but not documented: {served - documented}"
    assert documented - served == set(), f"documented but not served: {documented - served}"
    assert len(documented) >= 59  # 58 API operations + /openapi.json when written


def test_a_new_route_without_metadata_is_reported(app: web.Application) -> None:
    async def secret_handler(request: web.Request) -> web.Response:
        return web.Response()

    app.router.add_get("/api/v0/projects/{project_id}/brand_new", secret_handler)
    assert undocumented_routes(app) == [("GET", "/api/v0/projects/{project_id}/brand_new")]
    with pytest.raises(LookupError, match="brand_new"):
        build_openapi(app)


def test_the_decorator_documents_a_route(app: web.Application) -> None:
    @operation(response=schemas.Project, summary="decorated")
    async def decorated(request: web.Request) -> web.Response:
        return web.Response()

    app.router.add_get("/api/v0/projects/{project_id}/decorated", decorated)
    assert undocumented_routes(app) == []
    doc = build_openapi(app)
    op = doc["paths"]["/api/v0/projects/{project_id}/decorated"]["get"]
    assert op["summary"] == "decorated"
    assert op["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Project"
    }


def test_operations_are_complete_and_well_formed(app: web.Application) -> None:
    doc = build_openapi(app, version="1.2.3")
    assert doc["openapi"] == "3.1.0"
    assert doc["info"]["version"] == "1.2.3"
    components = doc["components"]["schemas"]
    ids = set()
    for path, item in doc["paths"].items():
        for method, op in item.items():
            assert op["operationId"] not in ids, op["operationId"]
            ids.add(op["operationId"])
            assert op["summary"], (method, path)
            declared = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
            assert declared == set(_path_names(path)), (method, path)
            assert any(code.startswith("2") for code in op["responses"]), (method, path)
            public = is_public(method.upper(), path)
            assert ("401" in op["responses"]) != public, (method, path)
            assert (op.get("security") == []) == public, (method, path)
    # every $ref resolves
    for ref in _refs(doc):
        name = ref.removeprefix("#/components/schemas/")
        assert name in components, ref


def _path_names(path: str) -> list[str]:
    import re

    return re.findall(r"{(\w+)}", path)


def _refs(value: Any) -> list[str]:
    found: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "$ref" and isinstance(item, str):
                found.append(item)
            else:
                found.extend(_refs(item))
    elif isinstance(value, list):
        for item in value:
            found.extend(_refs(item))
    return found


def test_bodies_are_the_handlers_msgspec_structs(app: web.Application) -> None:
    """Request/response schemas are msgspec's schemas of the structs named in the table."""
    doc = build_openapi(app)
    components = doc["components"]["schemas"]
    _, expected = msgspec.json.schema_components(
        [schemas.CreatePromptTemplateRequest, schemas.Page[schemas.PromptTemplate]],
        ref_template="#/components/schemas/{name}",
    )
    for name in ("CreatePromptTemplateRequest", "PromptTemplate", "Page_PromptTemplate_"):
        assert components[name] == expected[name]
    create = doc["paths"]["/api/v0/projects/{project_id}/prompt_templates"]["post"]
    assert create["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/CreatePromptTemplateRequest"
    }
    assert "201" in create["responses"] and "409" in create["responses"]
    listing = doc["paths"]["/api/v0/projects/{project_id}/prompt_templates"]["get"]
    assert "page" in {p["name"] for p in listing["parameters"]}
    assert listing["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Page_PromptTemplate_"
    }


def test_every_operation_names_its_metadata(app: web.Application) -> None:
    for route in iter_routes(app):
        op = op_for(route)
        assert isinstance(op, Op), route
        if op.paginated:
            assert op.response is not None, route
    assert len(OPERATIONS) >= 58


async def test_served_without_a_key_and_cached(aiohttp_client: Any, app: web.Application) -> None:
    client = await aiohttp_client(app)
    resp = await client.get("/openapi.json")
    assert resp.status == 200, await resp.text()
    assert resp.content_type == "application/json"
    doc = await resp.json()
    assert document_operations(doc) == router_operations(app)
    assert ("GET", "/openapi.json") in document_operations(doc)
    again = await client.get("/openapi.json")
    assert await again.json() == doc
    # a wrong key does not matter for a public route
    with_key = await client.get("/openapi.json", headers={"X-API-Key": "wrong"})
    assert with_key.status == 200


def test_schemathesis_loads_the_document(app: web.Application) -> None:
    schemathesis = pytest.importorskip("schemathesis")
    doc = build_openapi(app)
    loaded = schemathesis.openapi.from_dict(doc)
    operations = [result.ok() for result in loaded.get_all_operations()]
    assert len(operations) == len(document_operations(doc))
