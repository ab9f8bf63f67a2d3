"""The server's LLM providers: the default one (from the config) and one per LLM config."""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from ..config import ServerConfig
from .cache import LLMCache
from .providers import LLMProvider, ProviderConfig, make_provider

log = logging.getLogger("elluminate.server.evaluation.registry")


class Providers:
    """The server's LLM providers: the default one (from the config) and cached others.

    Providers are created lazily on first use and closed on app cleanup.
    """

    def __init__(self, config: ServerConfig, cache: LLMCache | None = None) -> None:
        self._config = config
        self._cache: dict[tuple[Any, ...], LLMProvider] = {}
        #: the LLM call cache every generation and judge call consults (None: off)
        self.cache = cache

    def default_config(self) -> ProviderConfig:
        """The :class:`ProviderConfig` of the server default (``--llm`` and friends)."""
        cfg = self._config
        return ProviderConfig(
            kind=cfg.llm,
            base_url=cfg.llm_base_url,
            model=cfg.llm_model,
            api_key=cfg.llm_api_key,
            echo_latency=cfg.echo_latency,
            max_connections=cfg.max_concurrency or 10,
        )

    @property
    def judge_checks(self) -> bool:
        """Whether the judge runs the deterministic checks first (``--judge-checks``; only
        for the local provider: an endpoint's model is trusted to read, echo stays echo)."""
        return self._config.judge_checks and self._config.llm == "local"

    def default(self) -> LLMProvider:
        """The server's default provider (an ``LLMProvider``)."""
        return self.get(self.default_config())

    def get(self, provider_config: ProviderConfig) -> LLMProvider:
        """The provider for ``provider_config`` (one instance per distinct config).

        The server runs every LLM call under its adaptive limiter, which backs off and
        retries rate limits itself: the providers hand them over (``defer_rate_limits``).
        """
        provider_config = dataclasses.replace(provider_config, defer_rate_limits=True)
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
