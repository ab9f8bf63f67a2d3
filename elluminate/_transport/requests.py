"""requests transport for the sync ``Client`` (one Session per client)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import requests

from ..exceptions import RequestTimeoutError
from ._base import AmbiguousTransportError, ConnectError, Params, RawResponse


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
        except requests.exceptions.ConnectTimeout as exc:
            raise ConnectError(f"cannot connect to {url}: timed out") from exc
        except requests.exceptions.Timeout as exc:
            raise RequestTimeoutError(f"{method} {url} timed out after {self._timeout} s") from exc
        except requests.exceptions.ConnectionError as exc:
            if _never_connected(exc):
                raise ConnectError(f"cannot connect to {url}: {exc}") from exc
            raise AmbiguousTransportError(f"{method} {url} failed: {exc!r}") from exc
        except requests.exceptions.RequestException as exc:
            raise AmbiguousTransportError(f"{method} {url} failed: {exc!r}") from exc
        return RawResponse(
            status=resp.status_code,
            content=resp.content,
            content_type=resp.headers.get("Content-Type", ""),
            retry_after=resp.headers.get("Retry-After"),
            method=method,
            url=url,
        )

    def stream_lines(self, url: str, *, params: Params | None = None) -> Iterator[bytes]:
        """GET ``url`` as ``text/event-stream`` and yield its lines as they arrive."""
        try:
            with self._session.get(url, params=params, stream=True, timeout=self._timeout) as resp:
                ctype = resp.headers.get("Content-Type", "")
                if resp.status_code != 200 or not ctype.startswith("text/event-stream"):
                    raise AmbiguousTransportError(
                        f"stream {url} answered {resp.status_code} {ctype!r}: "
                        f"{resp.content[:500]!r}"
                    )
                for line in resp.iter_lines(chunk_size=None, delimiter=b"\n"):
                    yield line + b"\n"
        except requests.exceptions.ConnectTimeout as exc:
            raise ConnectError(f"cannot connect to {url}: timed out") from exc
        except requests.exceptions.Timeout as exc:
            raise RequestTimeoutError(f"stream {url} timed out after {self._timeout} s") from exc
        except requests.exceptions.ConnectionError as exc:
            if _never_connected(exc):
                raise ConnectError(f"cannot connect to {url}: {exc}") from exc
            raise AmbiguousTransportError(f"stream {url} failed: {exc!r}") from exc
        except requests.exceptions.RequestException as exc:
            raise AmbiguousTransportError(f"stream {url} failed: {exc!r}") from exc

    def close(self) -> None:
        """Close the session (idempotent)."""
        self._session.close()


def _never_connected(exc: BaseException) -> bool:
    """True when urllib3 failed while establishing the connection."""
    import urllib3.exceptions as u3

    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, (u3.NewConnectionError, u3.ConnectTimeoutError)):
            return True
        if isinstance(cur, u3.MaxRetryError) and cur.reason is not None:
            cur = cur.reason
            continue
        cur = (
            cur.__cause__
            or cur.__context__
            or (cur.args[0] if cur.args and isinstance(cur.args[0], BaseException) else None)
        )
    return False
