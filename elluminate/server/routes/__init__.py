"""Route modules. Every module in this package that defines ``routes`` (an
``aiohttp.web.RouteTableDef``) is registered automatically, in name order; a module may also
define ``setup(app)`` to add startup/cleanup hooks or app keys. A new resource therefore only
needs a new module here, no edit elsewhere.
"""

from __future__ import annotations

import importlib
import pkgutil

from aiohttp import web


def route_modules() -> list[str]:
    """Names of the route modules of this package."""
    return sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))


def setup_routes(app: web.Application) -> None:
    """Register the routes (and ``setup`` hooks) of every route module."""
    for name in route_modules():
        module = importlib.import_module(f"{__name__}.{name}")
        table = getattr(module, "routes", None)
        if isinstance(table, web.RouteTableDef):
            app.router.add_routes(table)
        setup = getattr(module, "setup", None)
        if callable(setup):
            setup(app)
