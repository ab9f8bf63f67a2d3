"""aiohttp transport for ``AsyncClient`` (one ClientSession per client, created lazily)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Mapping

import aiohttp
from aiohttp.http_exceptions import (
    ContentLengthError,
    HttpProcessingError,
    TransferEncodingError,
)

from ..exceptions import RequestTimeoutError, TransportError
from ._base import (
    AmbiguousTransportError,
    ConnectTimeoutError,
    LineSplitter,
    Params,
    RawResponse,
    causes,
    connect_error,
    connection_lost_error,
)

# aiohttp >= 3.10 tells a connect timeout apart from a read timeout.
_CONNECT_TIMEOUT: tuple[type[BaseException], ...] = tuple(
    t for t in (getattr(aiohttp, "ConnectionTimeoutError", None),) if t is not None
)


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
            # aiohttp silently resends an idempotent request once when a connection breaks;
            # retries belong to RetryConfig alone (max_attempts=1 means one send).
            if hasattr(self._session, "_retry_connection"):
                self._session._retry_connection = False
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
        answered = False
        try:
            async with session.request(
                method, url, params=params, data=content, headers=headers, proxy=self._proxy
            ) as resp:
                answered = True
                body = await resp.read()
                return RawResponse(
                    status=resp.status,
                    content=body,
                    content_type=resp.headers.get("Content-Type", ""),
                    retry_after=resp.headers.get("Retry-After"),
                    method=method,
                    url=url,
                )
        except Exception as exc:
            error = self._error(exc, f"{method} {url}", url, self._timeout_s, answered)
            if error is None:
                raise
            raise error from exc

    async def stream_lines(
        self, url: str, *, params: Params | None = None, read_timeout: float | None = None
    ) -> AsyncGenerator[bytes, None]:
        """GET ``url`` as ``text/event-stream`` and yield its lines as they arrive.

        ``read_timeout`` (seconds without a byte) overrides the client's timeout, e.g. to
        give up on a silent stream before a caller's deadline.
        """
        session = self._get_session()
        timeout = self._timeout
        if read_timeout is not None:
            timeout = aiohttp.ClientTimeout(
                total=None,
                connect=self._timeout_s,
                sock_connect=self._timeout_s,
                sock_read=read_timeout,
            )
        answered = False
        try:
            async with session.get(url, params=params, proxy=self._proxy, timeout=timeout) as resp:
                answered = True
                ctype = resp.headers.get("Content-Type", "")
                if resp.status != 200 or not ctype.startswith("text/event-stream"):
                    body = (await resp.read())[:500]
                    raise AmbiguousTransportError(
                        f"stream {url} answered {resp.status} {ctype!r}: {body!r}"
                    )
                # Not ``async for line in resp.content``: its readline refuses lines over
                # 512 KiB (with an exception that is not a ClientError); events may be 1 MiB.
                splitter = LineSplitter()
                async for chunk in resp.content.iter_any():
                    for line in splitter.feed(chunk):
                        yield line
                rest = splitter.flush()
                if rest:
                    yield rest
        except TransportError:
            raise
        except Exception as exc:
            seconds = self._timeout_s if read_timeout is None else read_timeout
            error = self._error(exc, f"stream {url}", url, seconds, answered)
            if error is None:
                raise
            raise error from exc

    def _error(
        self, exc: Exception, what: str, url: str, seconds: float, answered: bool
    ) -> TransportError | None:
        """The TransportError for an aiohttp failure; None for anything else.

        ``answered``: the head of the answer had arrived when ``exc`` was raised.
        """
        # Order matters: aiohttp's connect timeout is both a ClientError and a TimeoutError,
        # and it is raised before the request is written, like a refused connection.
        if isinstance(exc, _CONNECT_TIMEOUT):
            return ConnectTimeoutError(
                f"cannot connect to {url}: timed out after {self._timeout_s:g} s"
            )
        if isinstance(exc, aiohttp.ClientConnectorError):
            return connect_error(url, causes(exc))
        if isinstance(exc, asyncio.TimeoutError):
            return RequestTimeoutError(f"{what} timed out after {seconds:g} s without an answer")
        if isinstance(exc, (aiohttp.ClientError, HttpProcessingError, OSError)):
            chain = causes(exc)
            # A body cut short shows as a length or chunk error whether a FIN or an RST cut it
            # (aiohttp keeps the reset only as text in its payload error): both are "closed".
            closed = isinstance(exc, aiohttp.ServerDisconnectedError) or any(
                isinstance(e, (ContentLengthError, TransferEncodingError)) for e in chain
            )
            return connection_lost_error(
                what,
                chain,
                closed=closed,
                mid_answer=answered or isinstance(exc, aiohttp.ClientPayloadError),
            )
        return None

    async def close(self) -> None:
        """Close the session (idempotent); its sockets are closed when this returns."""
        session, self._session = self._session, None
        if session is not None and not session.closed:
            await session.close()
            # Older aiohttp closes the sockets in the loop's next iteration: let it run, so
            # that a closed client holds no file descriptor.
            await asyncio.sleep(0)
