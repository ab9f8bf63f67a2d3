"""aiohttp transport for ``AsyncClient`` (one ClientSession per client, created lazily)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping

import aiohttp

from ..exceptions import RequestTimeoutError, TransportError
from ._base import AmbiguousTransportError, ConnectError, Params, RawResponse


class AsyncTransport:
    """Sends single HTTP requests with aiohttp; no retries, no decoding."""

    def __init__(
        self,
        *,
        headers: Mapping[str, str],
        timeout: float,
        proxy: str | None = None,
        max_connections: int = 100,
    ) -> None:
        self._headers = dict(headers)
        self._timeout_s = timeout
        self._timeout = aiohttp.ClientTimeout(
            total=None, connect=timeout, sock_connect=timeout, sock_read=timeout
        )
        self._proxy = proxy
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _get_session(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        if self._session is None or self._session.closed or self._loop is not loop:
            if self._session is not None and not self._session.closed and self._loop is not loop:
                raise TransportError(
                    "this AsyncClient is bound to another event loop; create one client per loop"
                )
            connector = aiohttp.TCPConnector(limit=self._max_connections, limit_per_host=0)
            self._session = aiohttp.ClientSession(
                headers=self._headers,
                timeout=self._timeout,
                connector=connector,
                skip_auto_headers=("User-Agent",),
            )
            self._loop = loop
        return self._session

    async def send(
        self,
        method: str,
        url: str,
        *,
        params: Params | None = None,
        content: bytes | None = None,
        content_type: str | None = None,
    ) -> RawResponse:
        """Send one request and read the whole answer."""
        session = self._get_session()
        headers = {"Content-Type": content_type} if content_type else None
        try:
            async with session.request(
                method, url, params=params, data=content, headers=headers, proxy=self._proxy
            ) as resp:
                body = await resp.read()
                return RawResponse(
                    status=resp.status,
                    content=body,
                    content_type=resp.headers.get("Content-Type", ""),
                    retry_after=resp.headers.get("Retry-After"),
                    method=method,
                    url=url,
                )
        except aiohttp.ClientConnectorError as exc:
            raise ConnectError(f"cannot connect to {url}: {exc}") from exc
        except asyncio.TimeoutError as exc:
            raise RequestTimeoutError(
                f"{method} {url} timed out after {self._timeout_s} s"
            ) from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise AmbiguousTransportError(f"{method} {url} failed: {exc!r}") from exc

    async def stream_lines(self, url: str, *, params: Params | None = None) -> AsyncIterator[bytes]:
        """GET ``url`` as ``text/event-stream`` and yield its lines as they arrive."""
        session = self._get_session()
        try:
            async with session.get(url, params=params, proxy=self._proxy) as resp:
                ctype = resp.headers.get("Content-Type", "")
                if resp.status != 200 or not ctype.startswith("text/event-stream"):
                    body = (await resp.read())[:500]
                    raise AmbiguousTransportError(
                        f"stream {url} answered {resp.status} {ctype!r}: {body!r}"
                    )
                async for line in resp.content:
                    yield line
        except asyncio.TimeoutError as exc:
            raise RequestTimeoutError(f"stream {url} timed out after {self._timeout_s} s") from exc
        except aiohttp.ClientConnectorError as exc:
            raise ConnectError(f"cannot connect to {url}: {exc}") from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise AmbiguousTransportError(f"stream {url} failed: {exc!r}") from exc

    async def close(self) -> None:
        """Close the session (idempotent)."""
        session, self._session = self._session, None
        if session is not None and not session.closed:
            await session.close()
