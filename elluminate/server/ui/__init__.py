"""The web viewer: HTML pages for experiments, responses, comparisons, templates,
collections and criterion sets, served by the server itself under ``/ui/``.

:func:`setup_ui` mounts it on the server's application as a sub-application (same process,
same port). Pages are rendered on the server with Jinja2; a small script (no build step, no
CDN) adds live progress, and every page works without it. Sign-in takes a project API key
through a form; the browser then holds only a session cookie (:mod:`.sessions`). Data comes
through one adapter, :mod:`.data`.

Layout: :mod:`.handlers` (pages and actions), :mod:`.sessions`, :mod:`.security` (headers,
CSRF), :mod:`.render` (Jinja2), :mod:`.present`, :mod:`.charts` and :mod:`.compare` (pure
helpers), ``templates/`` and ``assets/`` (installed as package data).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from aiohttp import web

from ..api.auth import PRINCIPAL_KEY, VIEWER_PREFIX
from ..api.errors import HTTPError
from ..api.http import CONFIG_KEY, DB_KEY, ENGINE_KEY
from ..store.errors import NotFound
from . import data
from .handlers import SESSION_KEY, STATE_KEY, UiState, error_page, not_found, routes
from .render import make_environment
from .security import SAFE_METHODS, add_headers, form_token
from .sessions import COOKIE_NAME, SessionStore

log = logging.getLogger("elluminate.server.ui")

ASSETS = Path(__file__).parent / "assets"
#: Routes reachable without a session (by route name).
PUBLIC = frozenset({"login", "login_submit", "assets"})


def _route_name(request: web.Request) -> str | None:
    route = request.match_info.route
    name = route.name
    if name is None and route.resource is not None:
        name = route.resource.name
    return name


@web.middleware
async def viewer_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    """Sign-in and CSRF checks, HTML error pages, security headers, ``Server-Timing``."""
    started = time.perf_counter()
    name = _route_name(request)
    try:
        if name not in PUBLIC:
            denied = await _check_session(request)
            if denied is not None:
                return denied
        response: web.StreamResponse = await handler(request)
    except HTTPError as exc:
        response = await error_page(request, exc.status, exc.detail)
    except NotFound as exc:  # the read model's 404 (another project's object, a stale link)
        response = await error_page(request, 404, str(exc))
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        response = await error_page(request, exc.status, exc.reason or f"HTTP {exc.status}")
    except Exception:
        log.exception("viewer: unexpected error while handling %s %s", request.method, request.path)
        response = await error_page(request, 500, "Internal error; the server log has details.")
    add_headers(response, static=name == "assets")
    if not response.prepared:
        elapsed_ms = (time.perf_counter() - started) * 1000
        response.headers["Server-Timing"] = f"app;dur={elapsed_ms:.1f}"
    return response


async def _check_session(request: web.Request) -> web.StreamResponse | None:
    """Put the session and its principal on the request; a redirect to the sign-in (or a
    403 for a POST without the session's CSRF token) otherwise."""
    ui = request.app[STATE_KEY]
    session = ui.sessions.get(request.cookies.get(COOKIE_NAME))
    principal = None
    if session is not None:
        # the key is checked again on every request: a removed key ends its sessions
        principal = await data.authenticate_key(request.config_dict[DB_KEY], session.api_key)
        if principal is None:
            ui.sessions.delete(session.id)
    if session is None or principal is None:
        login = request.app.router["login"].url_for()
        if request.method in SAFE_METHODS:
            login = login.with_query(next=str(request.rel_url))
        response = web.Response(status=303, headers={"Location": str(login)})
        response.del_cookie(COOKIE_NAME, path=ui.cookie_path)
        return response
    session.principal = principal
    request[SESSION_KEY] = session
    request[PRINCIPAL_KEY] = principal
    if request.method not in SAFE_METHODS and not session.csrf_ok(await form_token(request)):
        raise HTTPError(
            403, "This form expired or came from another site (CSRF check); reload the page."
        )
    return None


def setup_ui(app: web.Application) -> web.Application:
    """Mount the viewer on ``app`` at ``/ui/`` (and redirect ``/ui`` there); returns the
    viewer's sub-application."""
    viewer = web.Application(middlewares=[viewer_middleware])
    # the API's SSE code reads the engine from the request's app: share the server's objects
    viewer[CONFIG_KEY] = app[CONFIG_KEY]
    viewer[DB_KEY] = app[DB_KEY]
    viewer[ENGINE_KEY] = app[ENGINE_KEY]
    viewer[STATE_KEY] = UiState(
        env=make_environment(), sessions=SessionStore(), cookie_path=VIEWER_PREFIX
    )
    viewer.router.add_routes(routes)
    viewer.router.add_static("/assets", ASSETS, name="assets", append_version=False)
    viewer.router.add_route("*", "/{tail:.*}", not_found, name="not_found")

    async def to_viewer(request: web.Request) -> web.Response:
        return web.Response(status=302, headers={"Location": VIEWER_PREFIX + "/"})

    app.router.add_get(VIEWER_PREFIX, to_viewer)
    app.add_subapp(VIEWER_PREFIX, viewer)
    return viewer


__all__ = ["setup_ui"]
