"""The shape-indexed route lookup (``server/api/routing.py``) finds what aiohttp's own
dispatcher finds, for every route of the API, every method, and paths that match nothing."""

from __future__ import annotations

import re
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from aiohttp.web_urldispatcher import UrlDispatcher

from elluminate.server.api import PROJECT_PREFIX, RESOURCES
from elluminate.server.api.routing import ShapeIndexedResources, add_routes

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def plain_dispatcher() -> UrlDispatcher:
    router = UrlDispatcher()
    for module in RESOURCES:
        router.add_routes(module.routes)
    router.freeze()
    return router


def indexed_app() -> web.Application:
    app = web.Application()
    add_routes(app, PROJECT_PREFIX, (module.routes for module in RESOURCES))
    app.router.freeze()
    return app


def concrete(canonical: str) -> str:
    return re.sub(r"\{[^}]+\}", "7", canonical)


def sample_paths() -> list[str]:
    paths = {concrete(r.canonical) for r in plain_dispatcher().resources()}
    # near misses: unknown names, extra and missing segments, trailing slashes, non-digits
    paths |= {p + "/" for p in list(paths)} | {p + "/extra" for p in list(paths)}
    paths |= {
        "/api/v0/projects/1/nothing_here",
        "/api/v0/projects/x/prompt_templates",
        "/api/v0/projects/1/prompt_templates/abc",
        "/api/v0/projects/1",
        "/api/v0/projects/",
        "/api/v0/projects",
        "/api/v0/projects/1/experiments/2/agent-results/definition/x",
        "/api/v0/projects/1/%2Fprompt_templates",
        "/",
    }
    return sorted(paths)


def outcome(match: Any) -> tuple[Any, ...]:
    if match.http_exception is not None:
        exc = match.http_exception
        return ("error", exc.status, exc.headers.get("Allow"))
    return ("match", match.route.resource.canonical, match.route.method, match.handler,
            dict(match))


@pytest.mark.parametrize("method", METHODS)
async def test_every_path_resolves_as_aiohttp_alone_resolves_it(method: str) -> None:
    plain, app = plain_dispatcher(), indexed_app()
    differences = []
    for path in sample_paths():
        request = make_mocked_request(method, path, app=app)
        got = outcome(await app.router.resolve(request))
        want = outcome(await plain.resolve(request))
        if got != want:
            differences.append((path, got, want))
    assert differences == []


def test_every_project_route_sits_in_a_small_bucket() -> None:
    app = indexed_app()
    [indexed] = [r for r in app.router.resources() if isinstance(r, ShapeIndexedResources)]
    routes = list(indexed)
    assert len(routes) > 60  # the routes are served through the index, not beside it
    assert {r.resource.canonical for r in routes} >= {
        "/api/v0/projects/{project_id}/prompt_templates",
        "/api/v0/projects/{project_id}/experiments/{experiment_id}",
    }
    largest = max(len(bucket) for bucket in indexed._index.values())
    assert largest <= 6, "a lookup tries at most a handful of regular expressions"


async def test_a_variable_that_may_span_segments_is_tried_for_every_request() -> None:
    routes = web.RouteTableDef()

    @routes.get("/api/v0/projects/{project_id}/files/{path:.*}")
    async def files(request: web.Request) -> web.Response:
        return web.Response()

    @routes.get("/api/v0/projects/{project_id}/prompt_templates")
    async def templates(request: web.Request) -> web.Response:
        return web.Response()

    app = web.Application()
    add_routes(app, PROJECT_PREFIX, [routes])
    app.router.freeze()

    async def resolved(path: str) -> Any:
        match = await app.router.resolve(make_mocked_request("GET", path, app=app))
        return match.handler if match.http_exception is None else match.http_exception.status

    assert await resolved("/api/v0/projects/1/files/a/b/c.txt") is files
    assert await resolved("/api/v0/projects/1/prompt_templates") is templates
    assert await resolved("/api/v0/projects/1/other") == 404


async def test_the_openapi_document_lists_the_indexed_routes(client: Any) -> None:
    resp = await client.get("/openapi.json")
    assert resp.status == 200
    paths = (await resp.json())["paths"]
    assert "/api/v0/projects/{project_id}/prompt_templates" in paths
    assert "/api/v0/projects/{project_id}/experiments/{experiment_id}" in paths
