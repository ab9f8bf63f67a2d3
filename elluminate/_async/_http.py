"""Requests with retries, error mapping, JSON decoding and pagination (one place, both twins)."""

from __future__ import annotations

import logging
import math
from collections.abc import AsyncGenerator, Callable, Mapping
from dataclasses import replace
from typing import Any, TypeVar
from urllib.parse import urlsplit

import msgspec

from .._compat import agather, asleep
from .._retry import RetryConfig, parse_retry_after
from .._transport._base import RawResponse, encode_params
from ..exceptions import (
    APIError,
    ConfigurationError,
    ElluminateError,
    TransportError,
    api_error_for,
)
from ..schemas import Page
from ..schemas._wire import request_body

T = TypeVar("T")
logger = logging.getLogger("elluminate")

_ENCODER = msgspec.json.Encoder()
_DECODERS: dict[Any, msgspec.json.Decoder[Any]] = {}
_PAGE_FETCH_CONCURRENCY = 8


def decoder_for(type_: Any) -> msgspec.json.Decoder[Any]:
    """A cached JSON decoder for ``type_``."""
    dec = _DECODERS.get(type_)
    if dec is None:
        dec = _DECODERS[type_] = msgspec.json.Decoder(type_)
    return dec


def encode_json(obj: Any) -> bytes:
    return _ENCODER.encode(request_body(obj))


def error_from_response(resp: RawResponse) -> APIError:
    """The APIError subclass for a non-2xx answer, carrying the server's ``detail``."""
    return api_error_for(resp)


def _check_base_url(base_url: str) -> None:
    """ConfigurationError unless ``base_url`` is an http(s) URL with a host."""
    parts = urlsplit(base_url)
    if parts.scheme in ("http", "https") and parts.hostname:
        return
    if "://" not in base_url:
        raise ConfigurationError(
            f"the base URL {base_url!r} has no scheme: add http:// (or https://), "
            f"e.g. 'http://{base_url}'"
        )
    raise ConfigurationError(
        f"the base URL {base_url!r} must start with http:// or https:// and name a host"
    )


def _note_attempts(error: ElluminateError, attempts: int) -> None:
    """Record on ``error`` how many times the request was sent; say so in its message."""
    error.attempts = attempts
    if attempts > 1 and not isinstance(error, APIError) and error.args:
        # APIError's message is the server's ``detail``; its str() adds the count itself.
        error.args = (f"{error.args[0]} (after {attempts} attempts)", *error.args[1:])


class AsyncHTTP:
    """The client's HTTP layer: one transport, the retry policy, and the API's conventions."""

    def __init__(
        self,
        *,
        base_url: str,
        headers: Mapping[str, str],
        timeout: float,
        proxy: str | None,
        retry_config: RetryConfig,
    ) -> None:
        _check_base_url(base_url)
        self.base_url = base_url
        self.retry_config = retry_config
        # Imported here, not at module level: a program that only uses one twin never loads
        # the other's HTTP library (import time and memory).
        from .._transport.aiohttp import AsyncTransport

        self.transport = AsyncTransport(headers=headers, timeout=timeout, proxy=proxy)

    def url(self, path: str) -> str:
        return path if path.startswith(("http://", "https://")) else self.base_url + path

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        content: bytes | None = None,
        content_type: str | None = None,
        retry: bool = True,
    ) -> RawResponse:
        """Send a request, retrying by the policy; non-2xx raises the mapped APIError."""
        url = self.url(path)
        query = encode_params(params)
        if json is not None:
            content, content_type = encode_json(json), "application/json"
        config = self.retry_config
        max_attempts = config.max_attempts if retry else 1
        attempt = 0
        # True once an attempt may have been carried out by the server although it failed
        # (reset or read timeout after sending, 502/504 from a gateway): see DELETE below.
        maybe_done = False
        while True:
            attempt += 1
            try:
                resp = await self.transport.send(
                    method, url, params=query, content=content, content_type=content_type
                )
            except TransportError as exc:
                sent = getattr(exc, "request_sent", True)
                if attempt >= max_attempts or not config.should_retry_error(
                    method, request_sent=sent
                ):
                    _note_attempts(exc, attempt)
                    raise
                maybe_done = maybe_done or sent
                wait = config.wait_seconds(attempt)
                logger.info(
                    "%s %s failed (%s); attempt %d of %d, retrying in %.2f s",
                    method,
                    url,
                    exc,
                    attempt,
                    max_attempts,
                    wait,
                )
                await asleep(wait)
                continue
            if resp.status < 300:
                return resp
            if resp.status == 404 and maybe_done and method.upper() == "DELETE":
                # The earlier attempt most likely deleted it: the goal state is reached.
                logger.info("%s %s: gone after an uncertain attempt; counted as done", method, url)
                return replace(resp, status=204, content=b"", content_type="")
            if attempt >= max_attempts or not config.should_retry_status(method, resp.status):
                error = error_from_response(resp)
                _note_attempts(error, attempt)
                raise error
            maybe_done = maybe_done or resp.status in (502, 504)
            # Retry-After is honoured on 429 and on 503 (RFC 9110 defines it for both).
            retry_after = parse_retry_after(resp.retry_after) if resp.status in (429, 503) else None
            wait = config.wait_seconds(attempt, retry_after)
            logger.info(
                "%s %s answered %d; attempt %d of %d, retrying in %.2f s",
                method,
                url,
                resp.status,
                attempt,
                max_attempts,
                wait,
            )
            await asleep(wait)

    async def get(self, path: str, type_: type[T], params: Mapping[str, Any] | None = None) -> T:
        """GET and decode the JSON body as ``type_``."""
        resp = await self.request("GET", path, params=params)
        return decoder_for(type_).decode(resp.content)  # type: ignore[no-any-return]

    async def send_json(
        self,
        method: str,
        path: str,
        type_: Any,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
    ) -> Any:
        """Send a JSON body and decode the answer as ``type_`` (None: ignore the body)."""
        resp = await self.request(method, path, json=json, params=params)
        if type_ is None:
            return None
        return decoder_for(type_).decode(resp.content)

    async def get_page(
        self, path: str, type_: type[T], params: Mapping[str, Any] | None = None
    ) -> Page[T]:
        return await self.get(path, Page[type_], params)  # type: ignore[valid-type]

    async def paginate(
        self,
        path: str,
        type_: type[T],
        params: Mapping[str, Any] | None = None,
        each_page: Callable[[list[T]], None] | None = None,
    ) -> list[T]:
        """All items of a paginated list endpoint (pages after the first fetched concurrently).

        ``each_page`` sees every page's items as soon as they are decoded.
        """
        base = dict(params or {})
        first = await self._page(path, type_, {**base, "page": 1}, each_page)
        items = list(first.items)
        if len(items) >= first.count or not items:
            return items
        pages = math.ceil(first.count / len(items))
        for start in range(2, pages + 1, _PAGE_FETCH_CONCURRENCY):
            batch = await agather(
                *[
                    self._page(path, type_, {**base, "page": page}, each_page)
                    for page in range(start, min(start + _PAGE_FETCH_CONCURRENCY, pages + 1))
                ]
            )
            for page in batch:
                items.extend(page.items)
        return items

    async def _page(
        self,
        path: str,
        type_: type[T],
        params: Mapping[str, Any],
        each_page: Callable[[list[T]], None] | None,
    ) -> Page[T]:
        page = await self.get_page(path, type_, params)
        if each_page is not None:
            each_page(page.items)
        return page

    async def stream_lines(
        self,
        path: str,
        params: Mapping[str, Any] | None = None,
        *,
        read_timeout: float | None = None,
    ) -> AsyncGenerator[bytes, None]:
        """Lines of an SSE stream (never retried; ``read_timeout`` overrides the timeout)."""
        async for line in self.transport.stream_lines(
            self.url(path), params=encode_params(params), read_timeout=read_timeout
        ):
            yield line

    async def close(self) -> None:
        await self.transport.close()
