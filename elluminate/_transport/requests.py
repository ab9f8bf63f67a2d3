"""requests transport for the sync ``Client`` (one Session per client)."""

from __future__ import annotations

import http.client
from collections.abc import Generator, Mapping

import requests

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


class Transport:
    """Sends single HTTP requests with requests; no retries, no decoding."""

    def __init__(
        self,
        *,
        headers: Mapping[str, str],
        timeout: float,
        proxy: str | None = None,
        max_connections: int = 100,
    ) -> None:
        self._timeout = timeout
        self._session = requests.Session()
        # Proxies come only from the ``proxy`` argument; not re-reading the environment
        # on every call also saves a third of the time of a small request.
        self._session.trust_env = False
        self._session.headers.clear()
        self._session.headers.update(headers)
        if proxy:
            self._session.proxies = {"http": proxy, "https": proxy}
        adapter = requests.adapters.HTTPAdapter(
            pool_connections=4, pool_maxsize=max_connections, max_retries=0
        )
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)

    def send(
        self,
        method: str,
        url: str,
        *,
        params: Params | None = None,
        content: bytes | None = None,
        content_type: str | None = None,
    ) -> RawResponse:
        """Send one request and read the whole answer."""
        headers = {"Content-Type": content_type} if content_type else None
        try:
            resp = self._session.request(
                method, url, params=params, data=content, headers=headers, timeout=self._timeout
            )
        except requests.exceptions.RequestException as exc:
            raise _error(exc, f"{method} {url}", url, self._timeout, self._timeout) from exc
        return RawResponse(
            status=resp.status_code,
            content=resp.content,
            content_type=resp.headers.get("Content-Type", ""),
            retry_after=resp.headers.get("Retry-After"),
            method=method,
            url=url,
        )

    def stream_lines(
        self, url: str, *, params: Params | None = None, read_timeout: float | None = None
    ) -> Generator[bytes, None, None]:
        """GET ``url`` as ``text/event-stream`` and yield its lines as they arrive.

        ``read_timeout`` (seconds without a byte) overrides the client's timeout, e.g. to
        give up on a silent stream before a caller's deadline.
        """
        timeout = (self._timeout, self._timeout if read_timeout is None else read_timeout)
        try:
            with self._session.get(url, params=params, stream=True, timeout=timeout) as resp:
                ctype = resp.headers.get("Content-Type", "")
                if resp.status_code != 200 or not ctype.startswith("text/event-stream"):
                    raise AmbiguousTransportError(
                        f"stream {url} answered {resp.status_code} {ctype!r}: "
                        f"{resp.content[:500]!r}"
                    )
                # Not resp.iter_lines(): it yields a spurious empty line whenever a chunk ends
                # with the delimiter, which splits a multi-line SSE event in two.
                splitter = LineSplitter()
                for chunk in resp.iter_content(chunk_size=None):
                    yield from splitter.feed(chunk)
                rest = splitter.flush()
                if rest:
                    yield rest
        except requests.exceptions.RequestException as exc:
            raise _error(exc, f"stream {url}", url, timeout[1], timeout[0]) from exc

    def close(self) -> None:
        """Close the session (idempotent)."""
        self._session.close()


def _error(
    exc: requests.exceptions.RequestException,
    what: str,
    url: str,
    seconds: float,
    connect_seconds: float,
) -> TransportError:
    """The TransportError for a requests failure.

    The urllib3 errors behind it decide: requests reports a read timeout while reading the
    body as a ConnectionError (and a refused connection too), and urllib3's connection
    failures (refused, unknown host) are subclasses of its ConnectTimeoutError.
    """
    import urllib3.exceptions as u3

    chain = causes(exc)
    if any(isinstance(e, u3.NewConnectionError) for e in chain):
        return connect_error(url, chain)
    if isinstance(exc, requests.exceptions.ConnectTimeout) or any(
        isinstance(e, u3.ConnectTimeoutError) for e in chain
    ):
        return ConnectTimeoutError(
            f"cannot connect to {url}: timed out after {connect_seconds:g} s"
        )
    if isinstance(exc, requests.exceptions.Timeout) or any(
        isinstance(e, (u3.ReadTimeoutError, TimeoutError)) for e in chain
    ):
        return RequestTimeoutError(f"{what} timed out after {seconds:g} s without an answer")
    mid_answer = isinstance(
        exc, (requests.exceptions.ChunkedEncodingError, requests.exceptions.ContentDecodingError)
    )
    closed = any(
        isinstance(e, (http.client.RemoteDisconnected, http.client.IncompleteRead)) for e in chain
    )
    return connection_lost_error(what, chain, closed=closed, mid_answer=mid_answer)
