"""Provider for any OpenAI-compatible ``POST {base_url}/chat/completions`` endpoint.

Works with OpenAI, vLLM, Ollama, the llama.cpp server and similar. One aiohttp
``ClientSession`` per provider, created lazily inside the running loop and closed by
:meth:`OpenAIProvider.aclose`; at most ``max_connections`` connections.

Retries (up to ``max_retries``, default 2): 408, 429 and 5xx answers and connection errors,
with exponential backoff and jitter; ``Retry-After`` / ``retry-after-ms`` are honoured (capped
at 60 s). Any other 4xx fails at once. ``timeout`` (default 120 s) bounds the whole call,
retries and waits included.

With ``defer_rate_limits`` (how the server builds it) a rate limit, HTTP 429 or a 503 with a
``Retry-After``, is not retried here: it raises a :class:`ProviderError` with
``rate_limited`` and the hinted ``retry_after`` at once, so that the server's LLM limiter
pauses all calls, shrinks the calls in flight and runs this one again when the provider
takes calls again (see ``engine/limiter.py``). Retrying inside the call would keep its
permit and send it back into the limit together with every other call in flight.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import re
import time
from collections.abc import Mapping
from typing import Any

import aiohttp
from yarl import URL

from elluminate._retry import retry_after_from_headers

from .base import ChatParams, Completion, ProviderError

__all__ = ["DEFAULT_BASE_URL", "OpenAIProvider"]

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.openai.com/v1"
DEFAULT_TIMEOUT = 120.0
DEFAULT_MAX_RETRIES = 2
RETRY_AFTER_CAP = 60.0
_SNIPPET = 300
_RETRY_STATUSES = frozenset({408, 429})


def _snippet(text: str, limit: int = _SNIPPET) -> str:
    text = re.sub(r"\s+", " ", text).strip()
    return text if len(text) <= limit else text[:limit] + "..."


def _error_message(raw: str) -> str:
    try:
        data = json.loads(raw)
    except ValueError:
        return _snippet(raw) or "(empty body)"
    if isinstance(data, dict):
        err = data.get("error")
        if isinstance(err, dict) and err.get("message"):
            return _snippet(str(err["message"]))
        if isinstance(err, str) and err:
            return _snippet(err)
        for key in ("message", "detail"):
            if data.get(key):
                return _snippet(str(data[key]))
    return _snippet(raw) or "(empty body)"


def _schema_name(schema: Mapping[str, Any]) -> str:
    title = schema.get("title")
    name = re.sub(r"[^A-Za-z0-9_-]", "_", title)[:64] if isinstance(title, str) else ""
    return name or "answer"


def _content_text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            part.get("text", "")
            for part in content
            if isinstance(part, dict) and isinstance(part.get("text"), str)
        )
    return str(content)


class OpenAIProvider:
    """Chat completions over HTTP with aiohttp (see the module docstring)."""

    name = "openai"

    def __init__(
        self,
        *,
        model: str,
        base_url: str | None = None,
        api_key: str | None = None,
        max_connections: int = 10,
        timeout: float | None = None,
        max_retries: int | None = None,
        backoff_base: float = 0.5,
        backoff_max: float = 8.0,
        retry_after_cap: float = RETRY_AFTER_CAP,
        defer_rate_limits: bool = False,
    ) -> None:
        self.model = model
        self.base_url = (base_url or DEFAULT_BASE_URL).rstrip("/")
        if self.base_url.endswith("/chat/completions"):
            self._url = self.base_url
        else:
            self._url = self.base_url + "/chat/completions"
        self._api_key = api_key or None
        self.max_connections = max(1, int(max_connections))
        self.timeout = DEFAULT_TIMEOUT if timeout is None else float(timeout)
        self.max_retries = DEFAULT_MAX_RETRIES if max_retries is None else max(0, int(max_retries))
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.retry_after_cap = retry_after_cap
        self.defer_rate_limits = defer_rate_limits
        self._session: aiohttp.ClientSession | None = None
        self._session_loop: asyncio.AbstractEventLoop | None = None
        url = URL(self.base_url)
        self._display = str(
            url.with_user(None).with_password(None).with_query(None).with_fragment(None)
        )

    def __repr__(self) -> str:
        return f"OpenAIProvider(model={self.model!r}, base_url={self._display!r})"

    def _who(self) -> str:
        return f"openai provider (model {self.model!r} at {self._display})"

    def _redact(self, text: str) -> str:
        return text.replace(self._api_key, "***") if self._api_key else text

    def _fail(self, message: str, *, retryable: bool, status: int | None = None) -> ProviderError:
        return ProviderError(
            self._redact(f"{self._who()}: {message}"), retryable=retryable, status=status
        )

    def _get_session(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        if self._session is not None and not self._session.closed and self._session_loop is loop:
            return self._session
        if self._session is not None and not self._session.closed:
            log.debug("%s: dropping a session bound to another event loop", self._who())
        headers = {"Accept": "application/json", "User-Agent": "elluminate-server"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=self.max_connections),
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=None),
        )
        self._session_loop = loop
        return self._session

    def _backoff(self, attempt: int) -> float:
        delay = min(self.backoff_max, self.backoff_base * (2**attempt))
        return float(delay * random.uniform(0.75, 1.0))

    async def chat(
        self,
        messages: list[dict[str, Any]],
        *,
        json_schema: dict[str, Any] | None = None,
        params: ChatParams | None = None,
    ) -> Completion:
        """One chat completion; raises :class:`ProviderError` on any failure."""
        p = params or ChatParams()
        timeout = self.timeout if p.timeout is None else float(p.timeout)
        retries = self.max_retries if p.max_retries is None else max(0, int(p.max_retries))
        body: dict[str, Any] = {"model": self.model, "messages": messages}
        if p.temperature is not None:
            body["temperature"] = p.temperature
        if p.top_p is not None:
            body["top_p"] = p.top_p
        if p.max_tokens is not None:
            body["max_tokens"] = p.max_tokens
        if json_schema is not None:
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {
                    "name": _schema_name(json_schema),
                    "schema": json_schema,
                    "strict": True,
                },
            }
        start = time.perf_counter()
        deadline = time.monotonic() + timeout
        try:
            data = await asyncio.wait_for(self._post(body, retries, deadline), timeout)
        except asyncio.TimeoutError:
            raise self._fail(f"request timed out after {timeout:g} s", retryable=True) from None
        return self._completion(data, start)

    async def _post(self, body: dict[str, Any], retries: int, deadline: float) -> dict[str, Any]:
        session = self._get_session()
        attempt = 0
        while True:
            try:
                async with session.post(self._url, json=body) as resp:
                    status = resp.status
                    raw = (await resp.read()).decode("utf-8", errors="replace")
                    headers = resp.headers
            except aiohttp.ClientError as exc:
                if attempt >= retries:
                    raise self._fail(
                        f"connection failed after {attempt + 1} attempt(s): "
                        f"{type(exc).__name__}: {exc}",
                        retryable=True,
                    ) from None
                wait = self._backoff(attempt)
                log.warning("%s: %s, retrying in %.2f s", self._who(), type(exc).__name__, wait)
                await asyncio.sleep(wait)
                attempt += 1
                continue
            if 200 <= status < 300:
                return self._decode(raw, status)
            message = _error_message(raw)
            if status not in _RETRY_STATUSES and status < 500:
                raise self._fail(f"HTTP {status}: {message}", retryable=False, status=status)
            label = "rate limited (HTTP 429)" if status == 429 else f"HTTP {status}"
            hinted = retry_after_from_headers(headers)
            if self.defer_rate_limits and (status == 429 or (status == 503 and hinted is not None)):
                raise ProviderError(
                    self._redact(f"{self._who()}: {label}: {message}"),
                    retryable=True,
                    status=status,
                    retry_after=None if hinted is None else min(self.retry_after_cap, hinted),
                    rate_limited=True,
                )
            if attempt >= retries:
                raise self._fail(
                    f"{label} after {attempt + 1} attempt(s): {message}",
                    retryable=True,
                    status=status,
                )
            wait = (
                min(self.retry_after_cap, hinted) if hinted is not None else self._backoff(attempt)
            )
            remaining = deadline - time.monotonic()
            if wait >= remaining:
                raise self._fail(
                    f"{label}: the server asks to wait {wait:g} s, more than the "
                    f"{max(0.0, remaining):.1f} s left of the timeout: {message}",
                    retryable=True,
                    status=status,
                )
            log.warning("%s: %s, retrying in %.2f s", self._who(), label, wait)
            await asyncio.sleep(wait)
            attempt += 1

    def _decode(self, raw: str, status: int) -> dict[str, Any]:
        try:
            data = json.loads(raw)
        except ValueError:
            raise self._fail(
                f"HTTP {status} with a body that is not JSON: {_snippet(raw) or '(empty body)'}",
                retryable=False,
            ) from None
        if not isinstance(data, dict):
            raise self._fail(
                f"unexpected answer (not a JSON object): {_snippet(raw)}", retryable=False
            )
        if "choices" not in data and "error" in data:
            raise self._fail(f"error in answer: {_error_message(raw)}", retryable=False)
        choices = data.get("choices")
        if (
            not isinstance(choices, list)
            or not choices
            or not isinstance(choices[0], dict)
            or not isinstance(choices[0].get("message"), dict)
        ):
            raise self._fail(f"answer has no choices[0].message: {_snippet(raw)}", retryable=False)
        return data

    def _completion(self, data: dict[str, Any], start: float) -> Completion:
        message = data["choices"][0]["message"]
        text = _content_text(message.get("content"))
        if not text and isinstance(message.get("refusal"), str):
            raise self._fail(f"the model refused: {_snippet(message['refusal'])}", retryable=False)
        usage_raw = data.get("usage")
        usage: dict[str, Any] = usage_raw if isinstance(usage_raw, dict) else {}
        model = (
            data.get("model")
            if isinstance(data.get("model"), str) and data.get("model")
            else self.model
        )
        return Completion(
            text=text,
            input_tokens=int(usage.get("prompt_tokens") or 0),
            output_tokens=int(usage.get("completion_tokens") or 0),
            duration_seconds=time.perf_counter() - start,
            model=str(model),
        )

    async def aclose(self) -> None:
        """Close the HTTP session (idempotent)."""
        session, self._session, self._session_loop = self._session, None, None
        if session is not None and not session.closed:
            await session.close()
