"""Jinja2 rendering of the viewer's pages.

Autoescaping is on for every template (``.html`` and ``.svg`` alike) and undefined names are
errors, so a user-supplied string can only ever reach the page escaped. Templates build links
with ``url(name, **parts)`` (the sub-application's named routes, so the ``/ui`` prefix lives in
one place) and ``url_with(query)`` (the current page with some query parameters replaced).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jinja2
from aiohttp import web
from yarl import URL

from ..._version import __version__
from . import present

TEMPLATES_PACKAGE = "elluminate.server.ui"


def make_environment() -> jinja2.Environment:
    """The viewer's Jinja2 environment (templates from the installed package)."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader(TEMPLATES_PACKAGE, "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        percent=present.percent,
        points=present.signed_points,
        seconds=present.seconds,
        integer=present.integer,
        shorten=present.truncate,
        as_text=present.as_text,
        chat=present.messages,
    )
    env.globals["version"] = __version__
    env.globals["page_numbers"] = present.page_numbers
    return env


def _url_helpers(request: web.Request) -> dict[str, Any]:
    router = request.app.router

    def url(name: str, query: Mapping[str, Any] | None = None, **parts: Any) -> str:
        target = router[name].url_for(**{k: str(v) for k, v in parts.items()})
        if query:
            target = target.with_query({k: str(v) for k, v in query.items() if v is not None})
        return str(target)

    def url_with(**changes: Any) -> str:
        """The current page's URL with query parameters replaced (None or "" removes one)."""
        query = dict(request.rel_url.query)
        for key, value in changes.items():
            if value is None or value == "":
                query.pop(key, None)
            else:
                query[key] = str(value)
        return str(URL(request.rel_url.path).with_query(query))

    def asset(path: str) -> str:
        return str(router["assets"].url_for(filename=path).with_query(v=__version__))

    return {"url": url, "url_with": url_with, "asset": asset}


def render(
    env: jinja2.Environment,
    request: web.Request,
    template: str,
    context: Mapping[str, Any],
    *,
    status: int = 200,
) -> web.Response:
    """A ``text/html`` answer of ``template`` rendered with ``context``."""
    defaults: dict[str, Any] = {
        "project": None,
        "nav": "",
        "flashes": [],
        "csrf_field": "",
        "csrf_token": "",
    }
    html = env.get_template(template).render(
        {**defaults, **_url_helpers(request), "request_path": request.rel_url.path, **context}
    )
    return web.Response(text=html, status=status, content_type="text/html", charset="utf-8")
