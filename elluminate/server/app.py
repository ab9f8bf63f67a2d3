"""The application factory: ``create_app(ServerConfig(...)) -> aiohttp.web.Application``."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .auth import bootstrap, make_auth_middleware
from .config import ServerConfig
from .db import Database
from .errors import error_middleware
from .http import CONFIG_KEY, DB_KEY, PROVIDERS_KEY

if TYPE_CHECKING:
    from .llm import ProviderConfig

log = logging.getLogger("elluminate.server.app")

#: Longest request line (method, path and query string) and header field, in bytes.
MAX_REQUEST_LINE = 256 * 1024
MAX_HEADER_FIELD = 64 * 1024

#: A bootstrap key generated on this start (shown once), else None.
NEW_API_KEY: web.AppKey[str | None] = web.AppKey("elluminate_new_api_key")


class Providers:
    """The server's LLM providers: the default one (from the config) and cached others.

    Providers are created lazily on first use and closed on app cleanup.
    """

    def __init__(self, config: ServerConfig) -> None:
        self._config = config
        self._cache: dict[tuple[Any, ...], Any] = {}

    def default_config(self) -> ProviderConfig:
        """The :class:`ProviderConfig` of the server default (``--llm`` and friends)."""
        from .llm import ProviderConfig

        cfg = self._config
        return ProviderConfig(
            kind=cfg.llm,
            base_url=cfg.llm_base_url,
            model=cfg.llm_model,
            api_key=cfg.llm_api_key,
            echo_latency=cfg.echo_latency,
            max_connections=cfg.max_concurrency or 10,
        )

    def default(self) -> Any:
        """The server's default provider (an ``LLMProvider``)."""
        return self.get(self.default_config())

    def get(self, provider_config: ProviderConfig) -> Any:
        """The provider for ``provider_config`` (one instance per distinct config)."""
        from .llm import make_provider

        key = (
            provider_config.kind,
            provider_config.base_url,
            provider_config.model,
            provider_config.api_key,
            provider_config.echo_latency,
            provider_config.max_connections,
            provider_config.timeout,
            provider_config.max_retries,
        )
        provider = self._cache.get(key)
        if provider is None:
            provider = self._cache[key] = make_provider(provider_config)
            log.info(
                "LLM provider %s ready (model %s)",
                provider_config.kind,
                provider_config.model or "default",
            )
        return provider

    async def aclose(self) -> None:
        """Close every provider created so far (idempotent)."""
        providers, self._cache = list(self._cache.values()), {}
        for provider in providers:
            try:
                await provider.aclose()
            except Exception:  # pragma: no cover - best effort on shutdown
                log.exception("closing an LLM provider failed")


def _get_db(request: web.Request) -> Database:
    return request.app[DB_KEY]


async def _on_startup(app: web.Application) -> None:
    config = app[CONFIG_KEY]
    db = app[DB_KEY]
    db.open()
    generated = bootstrap(
        db,
        api_key=config.api_key,
        project_name=config.default_project_name,
        organization_name=config.default_organization_name,
    )
    app[NEW_API_KEY] = generated
    if generated is not None and config.on_new_api_key is not None:
        config.on_new_api_key(generated)
    log.info("elluminate server ready (db %s, default LLM %s)", db.path, config.llm)


async def _on_cleanup(app: web.Application) -> None:
    await app[PROVIDERS_KEY].aclose()
    app[DB_KEY].close()


def create_app(config: ServerConfig | None = None) -> web.Application:
    """Build the aiohttp application (the database is opened on startup)."""
    from . import openapi
    from .routes import setup_routes

    config = config or ServerConfig()
    app = web.Application(
        client_max_size=config.client_max_size,
        middlewares=[error_middleware, make_auth_middleware(_get_db)],
        # long query strings: clients list responses by id (`?response_ids=1&response_ids=2...`)
        handler_args={"max_line_size": MAX_REQUEST_LINE, "max_field_size": MAX_HEADER_FIELD},
    )
    app[CONFIG_KEY] = config
    app[DB_KEY] = Database(config.db_path, durability=config.durability)
    app[PROVIDERS_KEY] = Providers(config)
    app[NEW_API_KEY] = None
    app.on_startup.append(_on_startup)  # first: route modules' hooks find the db open
    setup_routes(app)
    openapi.setup(app)  # GET /openapi.json, generated from the routes registered above
    app.on_cleanup.append(_on_cleanup)  # last: route modules' hooks still have the db
    return app
