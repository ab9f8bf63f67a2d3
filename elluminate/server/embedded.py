"""``LocalServer``: a real server in a background thread, for tests and notebooks.

    with LocalServer() as srv:                 # sync
        client = Client(base_url=srv.base_url, api_key=srv.api_key)

    async with LocalServer(llm="echo") as srv:  # async: start/stop run in a worker thread
        ...

It listens on 127.0.0.1 on a free port, uses a temporary SQLite file (removed on stop) unless
``db_path`` is given, and a fixed or generated API key.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import shutil
import socket
import tempfile
import threading
from dataclasses import fields
from pathlib import Path
from types import TracebackType
from typing import Any

from aiohttp import web

from .app import create_app
from .config import LLMKind, ServerConfig
from .store.postgres import is_postgres_url

log = logging.getLogger("elluminate.server.embedded")

_CONFIG_FIELDS = {f.name for f in fields(ServerConfig)}


class LocalServer:
    """An elluminate server running in its own thread and event loop."""

    def __init__(
        self,
        *,
        db_path: str | Path | None = None,
        api_key: str | None = None,
        llm: LLMKind = "echo",
        host: str = "127.0.0.1",
        port: int = 0,
        start_timeout: float = 30.0,
        **config_overrides: Any,
    ) -> None:
        unknown = set(config_overrides) - _CONFIG_FIELDS
        if unknown:
            raise TypeError(f"unknown ServerConfig field(s): {', '.join(sorted(unknown))}")
        self.host = host
        self._requested_port = port
        self._db_path: Path | str | None = (
            None
            if db_path is None
            else str(db_path)
            if is_postgres_url(str(db_path))
            else Path(db_path)
        )
        self.api_key: str = api_key or "ell_local_" + secrets.token_urlsafe(24)
        self._llm: LLMKind = llm
        self._overrides = config_overrides
        self._start_timeout = start_timeout
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None
        self._tmpdir: str | None = None
        self._port: int | None = None
        self._app: web.Application | None = None
        #: the SQLite file (or the PostgreSQL URL) the server uses
        self.db_path: Path | str | None = self._db_path

    # -- properties -------------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("LocalServer is not running; call start() first")
        return self._port

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>`` (what a client takes as ``base_url``)."""
        return f"http://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def app(self) -> web.Application | None:
        """The running application (for introspection in tests)."""
        return self._app

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> LocalServer:
        """Start the server thread and wait until it accepts requests (idempotent)."""
        with self._lock:
            if self.running:
                return self
            if self._db_path is None:
                self._tmpdir = tempfile.mkdtemp(prefix="elluminate-server-")
                self.db_path = Path(self._tmpdir) / "elluminate.db"
            else:
                self.db_path = self._db_path
            config = ServerConfig(
                db_path=self.db_path,
                api_key=self.api_key,
                host=self.host,
                port=self._requested_port,
                llm=self._llm,
                **self._overrides,
            )
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind((self.host, self._requested_port))
            except OSError:
                sock.close()
                self._remove_tmpdir()
                raise
            self._port = sock.getsockname()[1]
            ready = threading.Event()
            errors: list[BaseException] = []
            self._thread = threading.Thread(
                target=self._run,
                args=(config, sock, ready, errors),
                name=f"elluminate-server-{self._port}",
                daemon=True,
            )
            self._thread.start()
            if not ready.wait(self._start_timeout):
                self._stop_locked()
                raise RuntimeError(f"LocalServer did not start within {self._start_timeout} s")
            if errors:
                self._thread.join(5)
                self._thread = None
                self._port = None
                self._remove_tmpdir()
                raise RuntimeError(f"LocalServer failed to start: {errors[0]}") from errors[0]
            log.debug("LocalServer listening on %s", self.base_url)
            return self

    def stop(self) -> None:
        """Shut the app down cleanly, join the thread, remove the temp dir (idempotent)."""
        with self._lock:
            self._stop_locked()

    def _stop_locked(self) -> None:
        thread, loop, stop_event = self._thread, self._loop, self._stop_event
        if thread is not None and loop is not None and stop_event is not None:
            try:
                loop.call_soon_threadsafe(stop_event.set)
            except RuntimeError:  # loop already closed
                pass
        if thread is not None:
            thread.join(30)
            if thread.is_alive():  # pragma: no cover - should never happen
                log.error("LocalServer thread did not stop within 30 s")
        self._thread = None
        self._loop = None
        self._stop_event = None
        self._app = None
        self._port = None
        self._remove_tmpdir()

    def _remove_tmpdir(self) -> None:
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None
            self.db_path = self._db_path

    def _run(
        self,
        config: ServerConfig,
        sock: socket.socket,
        ready: threading.Event,
        errors: list[BaseException],
    ) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve(config, sock, ready, errors))
        except BaseException as exc:  # pragma: no cover - reported through `errors`
            errors.append(exc)
        finally:
            try:
                loop.run_until_complete(loop.shutdown_asyncgens())
            finally:
                loop.close()
                sock.close()
                ready.set()

    async def _serve(
        self,
        config: ServerConfig,
        sock: socket.socket,
        ready: threading.Event,
        errors: list[BaseException],
    ) -> None:
        self._stop_event = asyncio.Event()
        app = create_app(config)
        runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=1.0)
        try:
            await runner.setup()
            site = web.SockSite(runner, sock)
            await site.start()
        except BaseException as exc:
            errors.append(exc)
            await runner.cleanup()
            return
        self._app = app
        ready.set()
        try:
            await self._stop_event.wait()
        finally:
            await runner.cleanup()

    # -- context managers -------------------------------------------------------------------

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> LocalServer:
        return await asyncio.to_thread(self.start)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await asyncio.to_thread(self.stop)

    def __repr__(self) -> str:
        where = self.base_url if self._port is not None else "stopped"
        return f"LocalServer({where}, llm={self._llm!r})"
