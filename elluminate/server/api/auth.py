"""The auth middleware: every route but the public ones needs a project's API key.

A key is bound to exactly one project (keys are stored hashed, see
:mod:`elluminate.server.store.projects`); a project-scoped path with another project's id
answers 404.
"""

from __future__ import annotations

import logging
from typing import Any, cast

from aiohttp import web

from ..store.projects import Principal, authenticate
from .errors import HTTPError

log = logging.getLogger("elluminate.server.api.auth")

#: Routes that need no key: (method or "*", path).
PUBLIC_ROUTES: frozenset[tuple[str, str]] = frozenset(
    {
        ("GET", "/"),
        ("HEAD", "/"),
        ("GET", "/openapi.json"),
        ("HEAD", "/openapi.json"),
        ("*", "/api/v0/version/compatible"),
    }
)
#: The web viewer's paths (``elluminate.server.ui``): it checks its own sign-in (a session
#: cookie), so the middleware lets its routes through.
VIEWER_PREFIX = "/ui"


def is_viewer_path(path: str) -> bool:
    """True for ``/ui`` and the paths below it."""
    return path == VIEWER_PREFIX or path.startswith(VIEWER_PREFIX + "/")


def _is_viewer_route(request: web.Request) -> bool:
    """True if the router matched a route of the viewer (decided by the matched route, not by
    the request's path, so no spelling of a path can skip the key check of an API route)."""
    resource = request.match_info.route.resource
    return resource is not None and is_viewer_path(resource.canonical)


if hasattr(web, "RequestKey"):  # aiohttp >= 3.13
    PRINCIPAL_KEY: web.RequestKey[Principal] = web.RequestKey("elluminate_principal", Principal)
else:  # pragma: no cover - older aiohttp: a plain string key
    PRINCIPAL_KEY = cast("web.RequestKey[Principal]", "elluminate_principal")


def _presented_key(request: web.Request) -> str | None:
    key = request.headers.get("X-API-Key")
    if key:
        return key.strip()
    auth = request.headers.get("Authorization", "")
    scheme, _, token = auth.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


def make_auth_middleware(db_getter: Any) -> Any:
    """Middleware: require a valid key; bind the request to the key's project."""

    @web.middleware
    async def auth_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
        if (
            (request.method, request.path) in PUBLIC_ROUTES
            or ("*", request.path) in PUBLIC_ROUTES
            or _is_viewer_route(request)
        ):
            response: web.StreamResponse = await handler(request)
            return response
        key = _presented_key(request)
        if key is None:
            raise HTTPError(
                401,
                "missing API key: send it in the X-API-Key header "
                "(or as Authorization: Bearer <key>)",
            )
        async with db_getter(request).connect() as conn:
            principal = await authenticate(conn, key)
        if principal is None:
            raise HTTPError(401, "invalid API key: check the key (it is bound to one project)")
        request[PRINCIPAL_KEY] = principal
        raw_pid = request.match_info.get("project_id")
        if raw_pid is not None and _as_int(raw_pid) != principal.project_id:
            raise HTTPError(404, f"project {raw_pid} not found")
        response = await handler(request)
        return response

    return auth_middleware


def _as_int(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None
