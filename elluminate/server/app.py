"""The application factory: ``create_app(ServerConfig(...)) -> aiohttp.web.Application``.

The layers are wired here, explicitly and in one place:

* ``store``: the database (opened, migrated and bootstrapped on start, closed last);
* ``evaluation``: the LLM providers (created on first use, closed on cleanup);
* ``engine``: the task engine with the task handlers (started after the database opened,
  its tasks revoked on shutdown, before the database closes);
* ``api``: the middlewares and the routes of every resource, then ``GET /openapi.json``;
* ``ui``: the web viewer, a sub-application at ``/ui/`` that reads through its own adapter.
"""

from __future__ import annotations

import logging

from aiohttp import web

from .api import setup_routes
from .api.auth import make_auth_middleware
from .api.errors import error_middleware
from .api.http import CONFIG_KEY, DB_KEY, ENGINE_KEY, PROVIDERS_KEY
from .api.openapi import setup as setup_openapi
from .config import ServerConfig
from .engine.engine import TaskEngine
from .engine.handlers import HANDLERS
from .evaluation.cache import LLMCache
from .evaluation.registry import Providers
from .store.connection import Store
from .store.database import Database
from .store.postgres import PostgresDatabase, is_postgres_url
from .store.projects import bootstrap
from .ui import setup_ui

log = logging.getLogger("elluminate.server.app")

#: Longest request line (method, path and query string) and header field, in bytes.
MAX_REQUEST_LINE = 256 * 1024
MAX_HEADER_FIELD = 64 * 1024

#: A bootstrap key generated on this start (shown once), else None.
NEW_API_KEY: web.AppKey[str | None] = web.AppKey("elluminate_new_api_key")


def _get_db(request: web.Request) -> Store:
    return request.app[DB_KEY]


def open_store(config: ServerConfig) -> Store:
    """The database of ``config.db_path``: PostgreSQL for a ``postgresql://`` URL, else the
    SQLite file (``PATH`` or ``sqlite:///PATH``)."""
    target = str(config.db_path)
    if is_postgres_url(target):
        return PostgresDatabase(target)
    return Database(target, durability=config.durability)


def create_app(config: ServerConfig | None = None) -> web.Application:
    """Build the aiohttp application (the database is opened on startup)."""
    config = config or ServerConfig()
    db = open_store(config)
    cache = LLMCache(db, config.llm_cache_ttl) if config.llm_cache else None
    providers = Providers(config, cache)
    engine = TaskEngine(db, config, providers, dict(HANDLERS))

    app = web.Application(
        client_max_size=config.client_max_size,
        middlewares=[error_middleware, make_auth_middleware(_get_db)],
        # long query strings: clients list responses by id (`?response_ids=1&response_ids=2...`)
        handler_args={"max_line_size": MAX_REQUEST_LINE, "max_field_size": MAX_HEADER_FIELD},
    )
    app[CONFIG_KEY] = config
    app[DB_KEY] = db
    app[PROVIDERS_KEY] = providers
    app[ENGINE_KEY] = engine
    app[NEW_API_KEY] = None

    async def start_store(app: web.Application) -> None:
        await db.start()
        async with db.begin() as conn:
            generated = await bootstrap(
                conn,
                api_key=config.api_key,
                project_name=config.default_project_name,
                organization_name=config.default_organization_name,
            )
        app[NEW_API_KEY] = generated
        if generated is not None and config.on_new_api_key is not None:
            config.on_new_api_key(generated)

    async def start_engine(app: web.Application) -> None:
        await engine.start()
        log.info(
            "elluminate server ready (db %s, default LLM %s, %d concurrent LLM calls, "
            "LLM cache %s)",
            db.path,
            config.llm,
            engine.concurrency,
            f"on for {config.llm_cache_ttl:g} s" if config.llm_cache else "off",
        )

    async def stop_engine(app: web.Application) -> None:
        await engine.shutdown()

    async def close_providers_and_store(app: web.Application) -> None:
        await engine.shutdown()
        await providers.aclose()
        await db.stop()

    app.on_startup.extend([start_store, start_engine])
    app.on_shutdown.append(stop_engine)
    app.on_cleanup.append(close_providers_and_store)
    setup_routes(app)
    setup_ui(app)  # the web viewer at /ui/ (HTML; not part of the API document)
    setup_openapi(app)  # GET /openapi.json, generated from the routes registered above
    return app
