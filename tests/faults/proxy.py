"""A real TCP fault-injection proxy for HTTP/1.1, for the reliability tests.

    with FaultProxy(server.base_url) as proxy:          # listens on 127.0.0.1:<free port>
        client = Client(base_url=proxy.base_url, ...)
        proxy.script(Fault.reset(), Fault.status(503), method="GET", path="/prompt_templates$")
        client.list_prompt_templates()                   # reset, 503, then passed through
        assert proxy.count("GET", "/prompt_templates$") == 3

It runs its own event loop in a daemon thread, so sync and async clients can both use it. Each
client connection gets its own upstream connection (opened lazily, kept alive). Requests are
parsed (head, then a ``Content-Length`` or chunked body) so request boundaries on a kept-alive
connection are known; answers are framed the same way (``Content-Length``, chunked, or until
the upstream closes) and forwarded byte for byte as they arrive, which keeps SSE streaming.

Faults are consumed in order by the requests (or connections) they match; anything not
scripted is passed through. Every request seen is recorded as ``(method, path)`` (no query)
whatever happened to it, so tests can assert "POST was sent exactly once".

Faults (see the :class:`Fault` constructors): ``passthrough``; ``reset`` (RST) and ``close``
(FIN) before any answer; ``stall`` (read the request, never answer); ``status`` (answer 429,
502, 503, 504 ... with an optional ``Retry-After``); ``respond`` (a canned answer, optionally
chunked, optionally left open and silent); ``cut`` (forward the upstream answer's head and
part of its body, then close); ``rechunk`` (forward a chunked answer re-framed into small
chunks). ``forward=True`` on
reset/close/stall/status sends the request upstream first and discards the real answer: the
server did the work, the client cannot know. :meth:`FaultProxy.pause` closes the listener
(and the open connections) so new connections are refused until :meth:`FaultProxy.resume`.
:class:`Blackhole` is a port whose connects hang (a full accept queue), for connect timeouts.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import re
import socket
import struct
import threading
from collections.abc import Coroutine, Iterable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import urlsplit

_T = TypeVar("_T")
_HEAD_LIMIT = 1 << 20
_READ_SIZE = 1 << 16
_REASONS = {
    200: "OK",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


@dataclass(frozen=True)
class Fault:
    """What the proxy does with one request (or, for connection faults, one connection)."""

    kind: str
    forward: bool = False
    status_code: int = 0
    headers: tuple[tuple[str, str], ...] = ()
    chunks: tuple[bytes, ...] | None = None
    after_bytes: int | None = None
    after_events: int | None = None
    counting_from: bytes | None = None
    chunk_size: int = 0
    rst: bool = False
    then_stall: bool = False

    @property
    def label(self) -> str:
        """The kind, or the status code for ``status``/``respond`` faults (e.g. "503")."""
        return str(self.status_code) if self.kind == "respond" else self.kind

    @classmethod
    def passthrough(cls) -> Fault:
        return cls("pass")

    @classmethod
    def reset(cls, *, forward: bool = False) -> Fault:
        """Read the request, then abort the connection with a TCP RST, no answer."""
        return cls("reset", forward=forward)

    @classmethod
    def close(cls, *, forward: bool = False) -> Fault:
        """Read the request, then close the connection cleanly (FIN), no answer."""
        return cls("close", forward=forward)

    @classmethod
    def stall(cls, *, forward: bool = False) -> Fault:
        """Read the request and never answer (until the client gives up or the proxy stops)."""
        return cls("stall", forward=forward)

    @classmethod
    def status(
        cls,
        status_code: int,
        *,
        retry_after: str | float | None = None,
        forward: bool = False,
        detail: str | None = None,
    ) -> Fault:
        """Answer ``status_code`` with a JSON ``{"detail": ...}`` body (keep-alive)."""
        headers: list[tuple[str, str]] = [("Content-Type", "application/json")]
        if retry_after is not None:
            headers.append(("Retry-After", str(retry_after)))
        text = detail or f"injected {status_code}"
        body = b'{"detail": "' + text.encode() + b'"}'
        return cls(
            "respond",
            forward=forward,
            status_code=status_code,
            headers=tuple(headers),
            chunks=(body,),
        )

    @classmethod
    def respond(
        cls,
        status_code: int,
        chunks: Iterable[bytes],
        *,
        headers: Iterable[tuple[str, str]] = (),
        chunked: bool = False,
        then_stall: bool = False,
    ) -> Fault:
        """A canned answer; ``chunked=True`` sends each item as one HTTP chunk.

        ``then_stall=True`` (chunked only) never ends the body: the connection stays open
        and silent after the chunks, until the client gives up.
        """
        if then_stall and not chunked:
            raise ValueError("then_stall needs chunked=True")
        hdrs = tuple(headers)
        if chunked:
            hdrs += (("Transfer-Encoding", "chunked"),)
        return cls(
            "respond",
            status_code=status_code,
            headers=hdrs,
            chunks=tuple(chunks),
            then_stall=then_stall,
        )

    @classmethod
    def cut(
        cls,
        *,
        after_bytes: int | None = None,
        after_events: int | None = None,
        counting_from: bytes | None = None,
        rst: bool = False,
    ) -> Fault:
        """Forward the upstream answer's head and part of its body, then close the connection.

        ``after_bytes``: body bytes as on the wire (chunk framing included);
        ``after_events``: once the decoded body holds that many ``\\n\\n`` (SSE events) —
        the chunk completing the last one is forwarded whole; with ``counting_from``, events
        count from the first one that contains those bytes. ``rst`` aborts instead of FIN.
        """
        if (after_bytes is None) == (after_events is None):
            raise ValueError("pass exactly one of after_bytes= or after_events=")
        if counting_from is not None and after_events is None:
            raise ValueError("counting_from= only goes with after_events=")
        return cls(
            "cut",
            after_bytes=after_bytes,
            after_events=after_events,
            counting_from=counting_from,
            rst=rst,
        )

    @classmethod
    def rechunk(cls, chunk_size: int) -> Fault:
        """Forward a chunked answer re-framed into chunks of at most ``chunk_size`` bytes."""
        if chunk_size < 1:
            raise ValueError("chunk_size must be positive")
        return cls("rechunk", chunk_size=chunk_size)


@dataclass
class _Rule:
    method: str | None
    path: re.Pattern[str] | None
    faults: list[Fault]

    def matches(self, method: str, path: str) -> bool:
        if self.method is not None and self.method != method:
            return False
        return self.path is None or self.path.search(path) is not None


@dataclass
class _Request:
    method: str
    target: str
    version: str
    headers: list[tuple[str, str]]
    raw: bytes

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]

    def header(self, name: str) -> str | None:
        return _header(self.headers, name)


@dataclass
class _Response:
    status: int
    headers: list[tuple[str, str]]
    head: bytes


@dataclass(eq=False)
class _Conn:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    up_reader: asyncio.StreamReader | None = None
    up_writer: asyncio.StreamWriter | None = None
    tasks: set[asyncio.Task[None]] = field(default_factory=set)


def _header(headers: list[tuple[str, str]], name: str) -> str | None:
    name = name.lower()
    for key, value in headers:
        if key.lower() == name:
            return value
    return None


def _parse_head(head: bytes) -> tuple[str, list[tuple[str, str]]]:
    lines = head.decode("latin-1").split("\r\n")
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        if not line:
            continue
        key, _, value = line.partition(":")
        headers.append((key.strip(), value.strip()))
    return lines[0], headers


def _is_chunked(headers: list[tuple[str, str]]) -> bool:
    return "chunked" in (_header(headers, "Transfer-Encoding") or "").lower()


def _wants_close(headers: list[tuple[str, str]]) -> bool:
    return "close" in (_header(headers, "Connection") or "").lower()


class FaultProxy:
    """A scriptable HTTP/1.1 proxy in front of ``upstream`` (``http://host:port``)."""

    #: Faults applied by every proxy of this process, by label (for summaries).
    totals: collections.Counter[str] = collections.Counter()

    def __init__(self, upstream: str, *, host: str = "127.0.0.1", port: int = 0) -> None:
        parts = urlsplit(upstream)
        if parts.scheme != "http" or parts.hostname is None or parts.port is None:
            raise ValueError(f"upstream must look like http://host:port, got {upstream!r}")
        self.upstream_host: str = parts.hostname
        self.upstream_port: int = parts.port
        self.host = host
        self._requested_port = port
        self.port = 0
        self._lock = threading.Lock()
        self._rules: list[_Rule] = []
        self._conn_faults: list[Fault] = []
        self._seen: list[tuple[str, str]] = []
        self._injected: list[tuple[str, str, str]] = []
        self.connections = 0
        self._conns: set[_Conn] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.AbstractServer | None = None

    # -- lifecycle (called from the test's thread) ---------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> FaultProxy:
        if self._thread is not None:
            return self
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(
            target=loop.run_forever, name="fault-proxy", daemon=True
        )
        self._thread.start()
        self._call(self._listen(self._requested_port))
        return self

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        try:
            self._call(self._shutdown())
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(10)
            loop.close()
            self._loop = self._thread = None

    def pause(self, *, drop_connections: bool = True) -> None:
        """Stop listening (connects are refused); by default also close open connections."""
        self._call(self._pause(drop_connections))

    def resume(self) -> None:
        """Listen again on the same port."""
        self._call(self._listen(self.port))

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- scripting and counting (thread-safe) --------------------------------------------------

    def script(self, *faults: Fault, method: str | None = None, path: str | None = None) -> None:
        """Apply ``faults`` in order to the next requests matching ``method`` and ``path``.

        ``path`` is a regular expression searched in the request path (no query string).
        Rules are tried in the order they were added; an exhausted rule no longer matches.
        """
        rule = _Rule(
            method.upper() if method else None, re.compile(path) if path else None, list(faults)
        )
        with self._lock:
            self._rules.append(rule)

    def script_connections(self, *faults: Fault) -> None:
        """Apply ``faults`` (reset, close or stall) to the next new connections, on accept."""
        for fault in faults:
            if fault.kind not in ("reset", "close", "stall", "pass"):
                raise ValueError(f"{fault.kind} is not a connection fault")
        with self._lock:
            self._conn_faults.extend(faults)

    def clear(self) -> None:
        """Forget unused scripted faults (the counters are kept)."""
        with self._lock:
            self._rules.clear()
            self._conn_faults.clear()

    def pending(self) -> int:
        """How many scripted faults have not been used yet."""
        with self._lock:
            return sum(len(r.faults) for r in self._rules) + len(self._conn_faults)

    @property
    def seen(self) -> list[tuple[str, str]]:
        """Every request seen, as ``(method, path)``, in order."""
        with self._lock:
            return list(self._seen)

    @property
    def injected(self) -> list[tuple[str, str, str]]:
        """Every fault applied, as ``(label, method, path)`` (connection faults: "", "")."""
        with self._lock:
            return list(self._injected)

    def count(self, method: str | None = None, path: str | None = None) -> int:
        """Requests seen with ``method`` whose path matches the regular expression ``path``."""
        pattern = re.compile(path) if path else None
        return sum(
            1
            for m, p in self.seen
            if (method is None or m == method.upper())
            and (pattern is None or pattern.search(p) is not None)
        )

    def reset_counters(self) -> None:
        with self._lock:
            self._seen.clear()
            self._injected.clear()
            self.connections = 0

    # -- internals (proxy loop) ----------------------------------------------------------------

    def _call(self, coro: Coroutine[Any, Any, _T]) -> _T:
        """Run ``coro`` on the proxy's loop and wait for its result."""
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)

    async def _listen(self, port: int) -> None:
        if self._server is not None:
            return
        self._server = await asyncio.start_server(
            self._accept, self.host, port, limit=_HEAD_LIMIT, reuse_address=True
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def _pause(self, drop_connections: bool) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
        if drop_connections:
            for conn in list(self._conns):
                self._drop(conn, rst=False)
            await asyncio.sleep(0)

    async def _shutdown(self) -> None:
        await self._pause(drop_connections=True)
        tasks = [t for conn in list(self._conns) for t in conn.tasks]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=5)
        await asyncio.sleep(0)

    def _drop(self, conn: _Conn, *, rst: bool) -> None:
        for writer in (conn.writer, conn.up_writer):
            if writer is None or writer.transport.is_closing():
                continue
            if rst:
                sock = writer.transport.get_extra_info("socket")
                if sock is not None:
                    with contextlib.suppress(OSError):
                        sock.setsockopt(
                            socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                        )
                writer.transport.abort()
            else:
                writer.close()

    def _next_fault(self, method: str, path: str) -> Fault:
        with self._lock:
            self._seen.append((method, path))
            for rule in self._rules:
                if rule.faults and rule.matches(method, path):
                    fault = rule.faults.pop(0)
                    if fault.kind != "pass":
                        self._injected.append((fault.label, method, path))
                        FaultProxy.totals[fault.label] += 1
                    return fault
        return Fault.passthrough()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = _Conn(reader, writer)
        task = asyncio.current_task()
        assert task is not None
        conn.tasks.add(task)
        self._conns.add(conn)
        with self._lock:
            self.connections += 1
            fault = self._conn_faults.pop(0) if self._conn_faults else None
            if fault is not None and fault.kind != "pass":
                self._injected.append((fault.label, "", ""))
                FaultProxy.totals["connection-" + fault.label] += 1
        try:
            if fault is not None and fault.kind != "pass":
                if fault.kind == "stall":
                    await self._drain_until_eof(reader)
                self._drop(conn, rst=fault.kind == "reset")
                return
            while await self._serve_one(conn):
                pass
        except asyncio.CancelledError:
            pass
        except Exception:  # a broken or malformed exchange: just drop the connection
            pass
        finally:
            self._drop(conn, rst=False)
            self._conns.discard(conn)

    async def _serve_one(self, conn: _Conn) -> bool:
        """Handle one request; False when the client connection is finished."""
        request = await self._read_request(conn.reader)
        if request is None:
            return False
        fault = self._next_fault(request.method, request.path)
        keep_alive = not _wants_close(request.headers)
        kind = fault.kind
        if kind in ("pass", "cut", "rechunk"):
            return await self._forward(conn, request, fault) and keep_alive
        if fault.forward:
            await self._forward(conn, request, None)
        if kind == "reset":
            self._drop(conn, rst=True)
            return False
        if kind == "close":
            self._drop(conn, rst=False)
            return False
        if kind == "stall":
            await self._drain_until_eof(conn.reader)
            return False
        assert kind == "respond" and fault.chunks is not None
        await self._respond(conn.writer, fault, request)
        if fault.then_stall:
            await self._drain_until_eof(conn.reader)
            return False
        return keep_alive

    async def _drain_until_eof(self, reader: asyncio.StreamReader) -> None:
        while await reader.read(_READ_SIZE):
            pass

    async def _read_request(self, reader: asyncio.StreamReader) -> _Request | None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return None
        line, headers = _parse_head(head)
        method, target, version = line.split(" ", 2)
        body = b""
        if _is_chunked(headers):
            body = await self._read_chunked(reader, None)
        else:
            length = int(_header(headers, "Content-Length") or 0)
            if length:
                body = await reader.readexactly(length)
        return _Request(method.upper(), target, version, headers, head + body)

    async def _read_chunked(
        self, reader: asyncio.StreamReader, out: asyncio.StreamWriter | None
    ) -> bytes:
        """Read a chunked body (forwarding each piece to ``out`` as it comes); return it raw."""
        raw = bytearray()
        while True:
            size_line = await reader.readuntil(b"\r\n")
            size = int(size_line.split(b";", 1)[0].strip(), 16)
            piece = size_line + (await reader.readexactly(size + 2) if size else b"")
            if size == 0:  # trailers until an empty line
                while True:
                    trailer = await reader.readuntil(b"\r\n")
                    piece += trailer
                    if trailer == b"\r\n":
                        break
            raw += piece
            if out is not None:
                out.write(piece)
                await out.drain()
            if size == 0:
                return bytes(raw)

    async def _upstream(self, conn: _Conn) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if conn.up_writer is None or conn.up_writer.transport.is_closing():
            conn.up_reader, conn.up_writer = await asyncio.open_connection(
                self.upstream_host, self.upstream_port, limit=_HEAD_LIMIT
            )
        assert conn.up_reader is not None
        return conn.up_reader, conn.up_writer

    async def _forward(self, conn: _Conn, request: _Request, fault: Fault | None) -> bool:
        """Send ``request`` upstream; relay the answer to the client unless ``fault`` is None.

        Returns whether both connections may be kept alive.
        """
        up_reader, up_writer = await self._upstream(conn)
        up_writer.write(request.raw)
        await up_writer.drain()
        head = await up_reader.readuntil(b"\r\n\r\n")
        status_line, headers = _parse_head(head)
        status = int(status_line.split(" ", 2)[1])
        out = conn.writer if fault is not None else None
        no_body = request.method == "HEAD" or status in (204, 304) or 100 <= status < 200
        chunked = not no_body and _is_chunked(headers)
        length = _header(headers, "Content-Length")
        upstream_alive = not _wants_close(headers) and (no_body or chunked or length is not None)

        if fault is not None and fault.kind == "cut":
            await self._relay_cut(conn, up_reader, head, no_body, chunked, length, fault)
            return False
        if fault is not None and fault.kind == "rechunk" and chunked:
            await self._relay_rechunked(conn.writer, up_reader, head, fault.chunk_size)
            return upstream_alive
        if out is not None:
            out.write(head)
            await out.drain()
        if no_body:
            pass
        elif chunked:
            await self._read_chunked(up_reader, out)
        elif length is not None:
            remaining = int(length)
            while remaining:
                data = await up_reader.read(min(remaining, _READ_SIZE))
                if not data:
                    raise ConnectionError("upstream closed mid-body")
                remaining -= len(data)
                if out is not None:
                    out.write(data)
                    await out.drain()
        else:  # delimited by the upstream closing the connection
            while data := await up_reader.read(_READ_SIZE):
                if out is not None:
                    out.write(data)
                    await out.drain()
        if not upstream_alive:
            up_writer.close()
            conn.up_writer = conn.up_reader = None
            return False
        return True

    async def _relay_cut(
        self,
        conn: _Conn,
        up_reader: asyncio.StreamReader,
        head: bytes,
        no_body: bool,
        chunked: bool,
        length: str | None,
        fault: Fault,
    ) -> None:
        if no_body or length == "0":  # nothing to cut in the body: cut the status line
            conn.writer.write(head[:8])
            with contextlib.suppress(ConnectionError):
                await conn.writer.drain()
            self._drop(conn, rst=fault.rst)
            return
        conn.writer.write(head)
        await conn.writer.drain()
        sent = 0
        events = 0
        pending = b""  # decoded body after the last complete event
        remaining = int(length) if length is not None and not chunked else -1
        limit = fault.after_bytes
        if limit is not None and remaining > 0:
            limit = min(limit, remaining - 1)  # always withhold part of the body
        while True:
            if chunked:
                size_line = await up_reader.readuntil(b"\r\n")
                size = int(size_line.split(b";", 1)[0].strip(), 16)
                data = await up_reader.readexactly(size + 2) if size else b""
                piece, payload = size_line + data, data[:-2]
                if size == 0:
                    piece = b""  # never let the client see the end of the body
            elif remaining != 0:
                payload = piece = await up_reader.read(
                    _READ_SIZE if remaining < 0 else min(remaining, _READ_SIZE)
                )
                remaining -= len(piece) if remaining > 0 else 0
            else:
                piece = b""
            if not piece:
                break
            if limit is not None and sent + len(piece) >= limit:
                conn.writer.write(piece[: limit - sent])
                break
            conn.writer.write(piece)
            await conn.writer.drain()
            sent += len(piece)
            *complete, pending = (pending + payload).split(b"\n\n")
            for event in complete:
                if fault.counting_from is None or fault.counting_from in event or events:
                    events += 1
            if fault.after_events is not None and events >= fault.after_events:
                break
        with contextlib.suppress(ConnectionError):
            await conn.writer.drain()
        self._drop(conn, rst=fault.rst)

    async def _relay_rechunked(
        self, out: asyncio.StreamWriter, up_reader: asyncio.StreamReader, head: bytes, size: int
    ) -> None:
        out.write(head)
        await out.drain()
        while True:
            size_line = await up_reader.readuntil(b"\r\n")
            n = int(size_line.split(b";", 1)[0].strip(), 16)
            if n == 0:
                while (await up_reader.readuntil(b"\r\n")) != b"\r\n":
                    pass
                out.write(b"0\r\n\r\n")
                await out.drain()
                return
            data = (await up_reader.readexactly(n + 2))[:-2]
            for i in range(0, len(data), size):
                part = data[i : i + size]
                out.write(b"%x\r\n%s\r\n" % (len(part), part))
                await out.drain()

    async def _respond(self, out: asyncio.StreamWriter, fault: Fault, request: _Request) -> None:
        assert fault.chunks is not None
        headers = list(fault.headers)
        chunked = _is_chunked(headers)
        if not chunked:
            headers.append(("Content-Length", str(sum(len(c) for c in fault.chunks))))
        reason = _REASONS.get(fault.status_code, "Injected")
        head = f"HTTP/1.1 {fault.status_code} {reason}\r\n" + "".join(
            f"{k}: {v}\r\n" for k, v in headers
        )
        out.write(head.encode("latin-1") + b"\r\n")
        await out.drain()
        if request.method == "HEAD":
            return
        for chunk in fault.chunks:
            out.write(b"%x\r\n%s\r\n" % (len(chunk), chunk) if chunked else chunk)
            await out.drain()
        if chunked and not fault.then_stall:
            out.write(b"0\r\n\r\n")
            await out.drain()


class Blackhole:
    """A listening port that never accepts and whose accept queue is full: connects hang.

    Linux drops the SYNs of a listener whose accept queue is full, so a client's connect
    times out (the request is never sent) instead of being refused.
    """

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self._listener: socket.socket | None = None
        self._fillers: list[socket.socket] = []
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> Blackhole:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.bind((self.host, 0))
        listener.listen(0)
        self._listener, self.port = listener, listener.getsockname()[1]
        for _ in range(3):
            filler = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            filler.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                filler.connect((self.host, self.port))
            self._fillers.append(filler)
        return self

    def stop(self) -> None:
        for sock in [*self._fillers, self._listener]:
            if sock is not None:
                sock.close()
        self._fillers, self._listener = [], None

    def __enter__(self) -> Blackhole:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
