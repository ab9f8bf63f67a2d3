"""The server's OpenAPI 3.1 document, generated from the app's router and the wire structs.

``GET /openapi.json`` (no key) serves it. Nothing is listed twice: the paths, methods, path
parameters, summaries (handler docstrings), tags (route module) and security (the auth
middleware's public routes) come from the running application's router; the request and
response bodies are the :mod:`elluminate.schemas` msgspec structs the handlers decode and
encode, turned into JSON Schema by :func:`msgspec.json.schema_components`.

What the router cannot tell (which struct a handler reads and answers, success status,
pagination, query parameters, extra error statuses) is an :class:`Op`, found for a route

1. on the handler, put there by the :func:`operation` decorator (route modules may use it
   next to ``@routes.get(...)``), or else
2. in :data:`~.operations.OPERATIONS` (:mod:`.operations`), keyed by ``(method, path)``
   with the path as the router's canonical form
   (``/api/v0/projects/{project_id}/collections``). Every route is in the table (one place
   to review) except those of the modules that use the decorator.

:func:`undocumented_routes` lists routes that have neither, :func:`stale_operations` table
entries that match no route; the test suite fails on both, so a new route cannot go
undocumented. ``HEAD`` routes are the implicit twins of ``GET`` routes and are not listed.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import msgspec
from aiohttp import web

from elluminate import schemas as s

from .auth import PUBLIC_ROUTES, is_viewer_path
from .operations import OP_ATTRIBUTE, OPERATIONS, Op, PageNumber, operation
from .projects import server_version

OPENAPI_PATH = "/openapi.json"
OPENAPI_VERSION = "3.1.0"


# ---- routes -----------------------------------------------------------------------------


@dataclass(frozen=True)
class RouteInfo:
    """One documented route of the router."""

    method: str
    path: str  # canonical: /api/v0/projects/{project_id}/collections
    handler: Any
    path_params: dict[str, str]  # name -> regex


_GROUP = re.compile(r"\(\?P<(\w+)>((?:[^()]|\([^()]*\))*)\)")


def _path_params(resource: web.AbstractResource) -> dict[str, str]:
    info = resource.get_info()
    pattern = info.get("pattern")
    if pattern is None:
        return {}
    return {m.group(1): m.group(2) for m in _GROUP.finditer(pattern.pattern)}


def iter_routes(app: web.Application) -> Iterator[RouteInfo]:
    """Every (method, path) of the API the app serves, without the implicit ``HEAD`` twins of
    GETs and without the web viewer's HTML pages (``/ui``, not part of the API)."""
    seen: set[tuple[str, str]] = set()
    all_routes = [(r.method.upper(), r.resource) for r in app.router.routes()]
    gets = {res.canonical for method, res in all_routes if method == "GET" and res is not None}
    for route in app.router.routes():
        resource = route.resource
        if resource is None:  # pragma: no cover - only for sub-apps
            continue
        if is_viewer_path(resource.canonical):
            continue
        method = route.method.upper()
        if method == "HEAD" and resource.canonical in gets:
            continue
        key = (method, resource.canonical)
        if key in seen:
            continue
        seen.add(key)
        yield RouteInfo(method, resource.canonical, route.handler, _path_params(resource))


def op_for(route: RouteInfo) -> Op | None:
    """The route's :class:`Op`: from the handler's decorator, else from the table."""
    op = getattr(route.handler, OP_ATTRIBUTE, None)
    if isinstance(op, Op):
        return op
    return OPERATIONS.get((route.method, route.path))


def undocumented_routes(app: web.Application) -> list[tuple[str, str]]:
    """Routes of the app without an :class:`Op` (decorator or table entry)."""
    return [(r.method, r.path) for r in iter_routes(app) if op_for(r) is None]


def stale_operations(app: web.Application) -> list[tuple[str, str]]:
    """Table entries that no route of the app matches."""
    served = {(r.method, r.path) for r in iter_routes(app)}
    return sorted(key for key in OPERATIONS if key not in served)


def is_public(method: str, path: str) -> bool:
    """True for routes the auth middleware lets through without a key."""
    return (method, path) in PUBLIC_ROUTES or ("*", path) in PUBLIC_ROUTES


# ---- the document -----------------------------------------------------------------------


class _Schemas:
    """Collects the types to turn into schemas; all are generated in one call at the end."""

    def __init__(self) -> None:
        self.types: list[Any] = []
        self.slots: list[tuple[dict[str, Any], str, int]] = []

    def ref(self, target: dict[str, Any], key: str, type_: Any) -> None:
        """Set ``target[key]`` to the schema of ``type_`` (filled in by :meth:`resolve`)."""
        self.slots.append((target, key, len(self.types)))
        self.types.append(type_)
        target[key] = {}

    def resolve(self) -> dict[str, Any]:
        generated, components = msgspec.json.schema_components(
            self.types, ref_template="#/components/schemas/{name}"
        )
        for target, key, index in self.slots:
            target[key] = generated[index]
        return dict(sorted(components.items()))


_PAGE: Any = s.Page  # subscripted with a runtime type below

_STATUS_TEXT = {
    200: "OK",
    201: "Created",
    202: "Accepted: the body is the id of the started task",
    204: "No Content",
    400: "The request conflicts with the object's state (e.g. a read-only collection)",
    401: "Missing or invalid API key",
    404: "Not found in the key's project",
    409: "Conflict: the object exists already or is in the wrong state; the body may carry "
    "the existing object's id",
    413: "Request body too large",
    422: "Invalid input; `detail` says what to fix",
    429: "Too many queued background tasks",
    502: "The LLM provider failed",
    503: "The server's LLM provider is not available",
}


def _param_schema(spec: Any, schemas: _Schemas, target: dict[str, Any]) -> None:
    type_, description = spec if isinstance(spec, tuple) else (spec, None)
    schemas.ref(target, "schema", type_)
    if description:
        target["description"] = description
    if getattr(type_, "__origin__", None) is list:
        target["style"] = "form"
        target["explode"] = True


def _path_param(name: str, regex: str) -> dict[str, Any]:
    schema: dict[str, Any]
    if regex == r"\d+":
        schema = {"type": "integer", "minimum": 1}
    else:
        schema = {"type": "string", "pattern": f"^{regex}$"}
    return {"name": name, "in": "path", "required": True, "schema": schema}


def _summary(handler: Any, op: Op) -> tuple[str, str | None]:
    doc = (getattr(handler, "__doc__", None) or "").strip()
    first, _, rest = doc.partition("\n\n")
    summary = op.summary or " ".join(first.split()) or handler.__name__.replace("_", " ")
    description = op.description or (" ".join(rest.split()) if rest.strip() else None)
    return summary, description


def _tag(handler: Any) -> str:
    """The handler's module name (or its ``OPENAPI_TAG``: the runs are "experiments" too)."""
    module = getattr(handler, "__module__", "") or ""
    package, _, leaf = module.rpartition(".")
    if package != __package__ or leaf == "openapi":
        return "server"
    return str(getattr(sys.modules.get(module), "OPENAPI_TAG", leaf))


def _operation(route: RouteInfo, op: Op, schemas: _Schemas) -> dict[str, Any]:
    summary, description = _summary(route.handler, op)
    tag = _tag(route.handler)
    doc: dict[str, Any] = {
        "operationId": f"{tag}_{route.handler.__name__}",
        "summary": summary,
        "tags": [tag],
    }
    if description:
        doc["description"] = description
    params: list[dict[str, Any]] = [
        _path_param(name, regex) for name, regex in route.path_params.items()
    ]
    query = dict(op.query)
    if op.paginated:
        query = {"page": (PageNumber, "1-based page number (default 1)"), **query}
    for name, spec in query.items():
        param: dict[str, Any] = {"name": name, "in": "query", "required": False}
        _param_schema(spec, schemas, param)
        params.append(param)
    if params:
        doc["parameters"] = params

    has_body = op.request is not None or op.upload
    if op.request is not None:
        media: dict[str, Any] = {}
        schemas.ref(media, "schema", op.request)
        doc["requestBody"] = {
            "required": op.request_required,
            "content": {"application/json": media},
        }
    elif op.upload:
        doc["requestBody"] = {
            "required": True,
            "description": "JSON Lines, one row object per line (a JSON array of objects "
            "is accepted too): as the multipart part `file`, or as the raw body",
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": {"file": {"type": "string", "format": "binary"}},
                        "required": ["file"],
                    }
                },
                "application/jsonl": {"schema": {"type": "string"}},
            },
        }

    responses: dict[str, Any] = {}
    ok: dict[str, Any] = {"description": _STATUS_TEXT.get(op.status, "OK")}
    if op.stream:
        ok["description"] = (
            "Server-Sent Events: each `data:` line is a TaskStatusPayload; exactly one "
            "terminal event ends the stream"
        )
        ok["content"] = {"text/event-stream": {"schema": {"type": "string"}}}
    elif op.response is not None and op.status != 204:
        media = {}
        schemas.ref(media, "schema", _PAGE[op.response] if op.paginated else op.response)
        ok["content"] = {"application/json": media}
    responses[str(op.status)] = ok
    for status, (type_, text) in op.extra_responses.items():
        extra: dict[str, Any] = {"description": text}
        media = {}
        schemas.ref(media, "schema", type_)
        extra["content"] = {"application/json": media}
        responses[str(status)] = extra

    errors = set(op.errors)
    public = is_public(route.method, route.path)
    if not public:
        errors.add(401)
    if route.path_params:
        errors.add(404)
    if has_body:
        errors.update((413, 422))
    if query:
        errors.add(422)
    for status in sorted(errors):
        responses[str(status)] = {
            "description": _STATUS_TEXT.get(status, "Error"),
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}},
        }
    doc["responses"] = responses
    if public:
        doc["security"] = []
    return doc


def build_openapi(app: web.Application, *, version: str | None = None) -> dict[str, Any]:
    """The OpenAPI 3.1 document of every route of ``app`` (undocumented routes raise)."""
    missing = undocumented_routes(app)
    if missing:
        listed = ", ".join(f"{m} {p}" for m, p in missing)
        raise LookupError(
            f"routes without OpenAPI metadata: {listed}; add an entry to "
            "elluminate.server.api.openapi.OPERATIONS or decorate the handler with @operation(...)"
        )
    schemas = _Schemas()
    paths: dict[str, dict[str, Any]] = {}
    for route in sorted(iter_routes(app), key=lambda r: r.path):
        op = op_for(route)
        assert op is not None
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route, op, schemas)
    error_slot: dict[str, Any] = {}
    schemas.ref(error_slot, "schema", s.ErrorBody)
    components = schemas.resolve()
    components.setdefault("ErrorBody", error_slot["schema"])
    if version is None:
        version = server_version()
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "elluminate local server",
            "version": version,
            "description": "The self-hosted elluminate server: the platform's REST API "
            "(/api/v0) over SQLite. Send the API key as `X-API-Key: <key>` or "
            "`Authorization: Bearer <key>`. Errors are `{\"detail\": \"...\"}`.",
        },
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "ApiKeyHeader": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
                "BearerKey": {"type": "http", "scheme": "bearer"},
            },
        },
        "security": [{"ApiKeyHeader": []}, {"BearerKey": []}],
    }


# ---- serving ----------------------------------------------------------------------------

_CACHE_KEY: web.AppKey[dict[str, bytes]] = web.AppKey("elluminate_openapi_cache", dict)


@operation(response=dict[str, Any], summary="This OpenAPI 3.1 document")
async def openapi_json(request: web.Request) -> web.Response:
    """The OpenAPI document of this server (no key needed)."""
    cache = request.app[_CACHE_KEY]
    body = cache.get("json")
    if body is None:
        body = cache["json"] = msgspec.json.encode(build_openapi(request.app))
    return web.Response(body=body, content_type="application/json")


def setup(app: web.Application) -> None:
    """Serve :func:`openapi_json` at :data:`OPENAPI_PATH` (built on first request)."""
    app[_CACHE_KEY] = {}
    app.router.add_get(OPENAPI_PATH, openapi_json)


__all__ = [
    "OPENAPI_PATH",
    "OPERATIONS",
    "Op",
    "RouteInfo",
    "build_openapi",
    "is_public",
    "iter_routes",
    "op_for",
    "operation",
    "setup",
    "stale_operations",
    "undocumented_routes",
]
