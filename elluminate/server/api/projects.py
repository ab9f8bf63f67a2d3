"""Health, version check and projects (CONTRACT.md 1.3, 1.4).

A key sees only its own project. ``POST /api/v0/projects`` creates a project in the caller's
organization plus a new API key for it, returned once in the extra response key ``api_key``.
"""

from __future__ import annotations

import logging

import msgspec
from aiohttp import web

from elluminate.schemas import CreateProjectRequest, Project, VersionCheckResponse

from ..store import projects as store
from ..store.views import Views
from .auth import VIEWER_PREFIX
from .errors import HTTPError
from .http import (
    CONFIG_KEY,
    PageBody,
    check_name,
    get_db,
    json_response,
    path_id,
    principal,
    read_json,
    read_raw_json,
)

log = logging.getLogger("elluminate.server.api.projects")

routes = web.RouteTableDef()

REQUIRED_SDK_VERSION = "1.0.0"


def server_version() -> str:
    """The installed elluminate version (``0+unknown`` when not installed)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("elluminate")
    except PackageNotFoundError:
        return "0+unknown"


class Health(msgspec.Struct, omit_defaults=True):
    status: str
    version: str
    llm: str = ""
    #: set when the server fell back to the echo provider without being asked to
    llm_notice: str | None = None


class ProjectWithKey(Project, kw_only=True):
    """A new project plus its first API key (shown only in this answer)."""

    api_key: str


def _browser_navigation(request: web.Request) -> bool:
    """True for a browser opening the page (it asks for HTML); API clients ask for JSON or
    anything (``*/*``) and get the health JSON."""
    accept = request.headers.get("Accept", "")
    return "text/html" in accept and "application/json" not in accept


@routes.get("/")
async def health(request: web.Request) -> web.Response:
    """Liveness check (no auth); a browser is sent to the web viewer at ``/ui/``."""
    if _browser_navigation(request):
        return web.Response(status=302, headers={"Location": VIEWER_PREFIX + "/"})
    config = request.app[CONFIG_KEY]
    return json_response(
        Health(
            status="ok", version=server_version(), llm=config.llm, llm_notice=config.llm_notice
        )
    )


@routes.post("/api/v0/version/compatible")
async def version_compatible(request: web.Request) -> web.Response:
    """Every SDK version is accepted."""
    await read_raw_json(request, allow_empty=True)
    return json_response(
        VersionCheckResponse(is_compatible=True, required_sdk_version=REQUIRED_SDK_VERSION)
    )


@routes.get("/api/v0/projects")
async def list_projects(request: web.Request) -> web.Response:
    """The key's project (a key is bound to exactly one project)."""
    async with get_db(request).connect() as conn:
        project = await Views(conn, principal(request).project_id).project()
    return json_response(PageBody(items=[project], count=1))


@routes.get(r"/api/v0/projects/{project_id:\d+}")
async def get_project(request: web.Request) -> web.Response:
    path_id(request, "project_id", "project")  # the middleware already checked ownership
    async with get_db(request).connect() as conn:
        return json_response(await Views(conn, principal(request).project_id).project())


@routes.post("/api/v0/projects")
async def create_project(request: web.Request) -> web.Response:
    """Create a project in the caller's organization, with a new key for it."""
    body, _ = await read_json(request, CreateProjectRequest, defaults={"description": ""})
    name = check_name(body.name)
    who = principal(request)
    if body.organization_id is not None and body.organization_id != who.organization_id:
        raise HTTPError(404, f"organization {body.organization_id} not found")
    db = get_db(request)
    key = store.new_api_key()
    async with db.begin() as conn:
        pid = await store.create_project(
            conn, who.organization_id, name, body.description or "", bool(body.public_in_org)
        )
        await store.store_api_key(conn, pid, key)
    log.info("created project %r (id %d) with API key %s", name, pid, store.key_hint(key))
    async with db.connect() as conn:
        project = await Views(conn, pid).project()
    fields = {f: getattr(project, f) for f in project.__struct_fields__}
    return json_response(ProjectWithKey(**fields, api_key=key), status=201)
