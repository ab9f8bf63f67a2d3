"""The LLM call cache (``--llm-cache``): a re-run of an identical experiment calls no provider.

A call's key is a SHA-256 over everything that decides its answer: the kind of call
(``generation``, or a judge ``verdict`` / ``score``), the provider (its name, base URL and
model), every generation parameter (temperature, top_p, max_tokens; timeouts and retry counts
are transport settings, not part of it), the JSON schema asked for, the full messages as sent
(the LLM config's system message included) and the epoch, so ``n_epochs=3`` still draws three
samples. Generations and judge calls alike are cached, in the server's database (so every
replica shares it), for ``--llm-cache-ttl`` seconds.

Only answers that were used are stored: a provider error, a judge answer that stayed
malformed after its retries and an empty generation are never cached. A database failure
while reading or writing the cache is logged and the call is made (or its answer kept) as if
there were no cache.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass, fields
from datetime import timedelta
from typing import Any

import msgspec

from ..store import llm_cache as store
from ..store.connection import Store
from ..store.database import utcnow
from .providers.base import ChatParams, LLMProvider

log = logging.getLogger("elluminate.server.evaluation.cache")

#: Seconds between purges of expired entries (done while writing).
PURGE_EVERY = 3600.0
#: Bumped when the meaning of a stored value changes: older entries are then never hit.
KEY_VERSION = 1

_encoder = msgspec.json.Encoder(order="sorted")
#: ChatParams fields that change how a call is made, not what it answers
_TRANSPORT = frozenset({"timeout", "max_retries"})


def provider_identity(provider: Any) -> dict[str, Any]:
    """What identifies a provider's answers: its kind, endpoint and model."""
    return {
        "provider": getattr(provider, "name", type(provider).__name__),
        "base_url": getattr(provider, "base_url", None),
        "model": getattr(provider, "model", None),
    }


def generation_parameters(params: ChatParams | None) -> dict[str, Any]:
    """The parameters that shape an answer (not timeouts or retry counts)."""
    p = params or ChatParams()
    return {f.name: getattr(p, f.name) for f in fields(p) if f.name not in _TRANSPORT}


def call_key(
    kind: str,
    provider: LLMProvider | Any,
    messages: list[dict[str, Any]],
    *,
    params: ChatParams | None = None,
    json_schema: dict[str, Any] | None = None,
    epoch: int = 1,
) -> str:
    """The cache key of one call (hex SHA-256; see the module docstring)."""
    document = {
        "v": KEY_VERSION,
        "kind": kind,
        **provider_identity(provider),
        "params": generation_parameters(params),
        "json_schema": json_schema,
        "messages": messages,
        "epoch": int(epoch),
    }
    return hashlib.sha256(_encoder.encode(document)).hexdigest()


@dataclass
class CacheStats:
    """What the cache did since the server started (for logs and benchmarks)."""

    hits: int = 0
    misses: int = 0
    stored: int = 0
    errors: int = 0


class LLMCache:
    """Cached answers in the server's database (see the module docstring)."""

    def __init__(self, db: Store, ttl_seconds: float) -> None:
        if ttl_seconds <= 0:
            raise ValueError("the LLM cache's time to live must be positive")
        self.db = db
        self.ttl_seconds = float(ttl_seconds)
        self.stats = CacheStats()
        self._next_purge = 0.0

    async def get(self, key: str) -> dict[str, Any] | None:
        """The stored answer of ``key``, unless there is none or it expired."""
        try:
            async with self.db.connect() as conn:
                raw = await store.get(conn, key, utcnow())
        except Exception:  # the cache is an optimisation: never fail a call because of it
            self.stats.errors += 1
            log.exception("reading the LLM cache failed; calling the provider")
            return None
        if raw is None:
            self.stats.misses += 1
            return None
        try:
            value = msgspec.json.decode(raw)
        except msgspec.DecodeError:
            self.stats.misses += 1
            return None
        if not isinstance(value, dict):
            self.stats.misses += 1
            return None
        self.stats.hits += 1
        return value

    async def put(self, key: str, kind: str, model: str, value: dict[str, Any]) -> None:
        """Store an answer under ``key`` for the time to live."""
        now = utcnow()
        try:
            async with self.db.begin() as conn:
                await store.put(
                    conn,
                    key,
                    kind=kind,
                    model=model,
                    value=_encoder.encode(value).decode(),
                    now=now,
                    expires=now + timedelta(seconds=self.ttl_seconds),
                )
                if time.monotonic() >= self._next_purge:
                    self._next_purge = time.monotonic() + PURGE_EVERY
                    purged = await store.purge_expired(conn, now)
                    if purged:
                        log.info("LLM cache: %d expired entries removed", purged)
        except Exception:
            self.stats.errors += 1
            log.exception("writing the LLM cache failed; the answer is used but not cached")
            return
        self.stats.stored += 1
