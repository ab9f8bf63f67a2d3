"""Shared fixtures: a real local server (echo provider, temporary SQLite) per test, and a
recording stub server for checking the exact requests a client sends."""

from __future__ import annotations

import contextlib
import inspect
import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from elluminate.server import LocalServer

#: The databases the server and client suites run on: every test that uses a server (the
#: ``backend`` fixture, through ``db_target``) runs once per backend; a test that inspects the
#: SQLite file itself (it asks for ``db_path``, or is marked ``sqlite_only``) runs on SQLite.
BACKENDS = ("sqlite", "postgres")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" not in metafunc.fixturenames:
        return
    direct = set(inspect.signature(metafunc.function).parameters)
    sqlite_only = "db_path" in direct or metafunc.definition.get_closest_marker("sqlite_only")
    metafunc.parametrize("backend", ["sqlite"] if sqlite_only else list(BACKENDS), indirect=True)


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> str:
    """The database of this test's server: ``sqlite`` or ``postgres``."""
    return str(getattr(request, "param", "sqlite"))


@pytest.fixture
def db_target(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Path | str:
    """The ``--db`` of this test's server: a new SQLite file, or a new PostgreSQL database."""
    if backend == "postgres":
        return str(request.getfixturevalue("postgres_url"))
    return tmp_path / "elluminate.db"


@pytest.fixture
def server(db_target: Path | str) -> Iterator[LocalServer]:
    """A running local server with the deterministic echo provider (on each backend)."""
    with LocalServer(db_path=db_target, llm="echo") as srv:
        yield srv


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any


@dataclass
class Recorder:
    """A stub HTTP server that records every request and answers canned JSON by path.

    ``answer(method, path, body)`` sets the JSON answer for one exact path (without query);
    other paths answer 404. ``requests`` lists what arrived, in order.
    """

    base_url: str = ""
    requests: list[Recorded] = field(default_factory=list)
    answers: dict[tuple[str, str], Any] = field(default_factory=dict)
    scripts: dict[tuple[str, str], list[tuple[int, str, Any]]] = field(default_factory=dict)

    def answer(self, method: str, path: str, body: Any) -> None:
        self.answers[method.upper(), path] = body

    def script(self, method: str, path: str, *answers: tuple[int, str, Any]) -> None:
        """Answer one path with ``(status, content_type, body)`` in turn, the last one for
        every later request; a JSON body is encoded, a text body (SSE) is sent as it is."""
        self.scripts[method.upper(), path] = list(answers)

    def replay(self, recorded: list[dict[str, Any]]) -> None:
        """Script the answers of captured requests (``{"method", "path", "answer"}``), in
        their order per path."""
        grouped: dict[tuple[str, str], list[tuple[int, str, Any]]] = {}
        for request in recorded:
            answer = request["answer"]
            grouped.setdefault((request["method"], request["path"]), []).append(
                (answer["status"], answer["content_type"], answer["body"])
            )
        for (method, path), answers in grouped.items():
            self.script(method, path, *answers)

    def since(self, start: int) -> list[Recorded]:
        return self.requests[start:]

    def sent(self, method: str, path: str) -> list[Recorded]:
        return [r for r in self.requests if r.method == method and r.path == path]


def _handler(recorder: Recorder) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            url = urlsplit(self.path)
            body: Any = None
            if raw:
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = raw.decode("utf-8", "replace")
            recorder.requests.append(
                Recorded(
                    method=self.command,
                    path=url.path,
                    query=parse_qs(url.query, keep_blank_values=True),
                    headers=dict(self.headers.items()),
                    body=body,
                )
            )
            key = (self.command, url.path)
            content_type = "application/json"
            scripted = recorder.scripts.get(key)
            if scripted:
                status, content_type, answer = scripted.pop(0) if len(scripted) > 1 else scripted[0]
            elif key in recorder.answers:
                status, answer = 200, recorder.answers[key]
            else:
                status = 404
                answer = {"detail": f"stub has no answer for {self.command} {url.path}"}
            data = (
                json.dumps(answer).encode()
                if content_type == "application/json"
                else str(answer).encode()
            )
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

        def log_message(self, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    """A running :class:`Recorder` that already answers the version check."""
    rec = Recorder()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(rec))
    httpd.daemon_threads = True  # keep-alive connections must not hold up the shutdown
    rec.base_url = f"http://127.0.0.1:{httpd.server_address[1]}"
    rec.answer("POST", "/api/v0/version/compatible", {"is_compatible": True})
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield rec
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


# ---- PostgreSQL -----------------------------------------------------------------------------

#: A PostgreSQL server for the tests (a database is created per test and dropped after it),
#: e.g. ``postgresql://USER@HOST:PORT/postgres``; ``.ci/run`` starts a throwaway
#: cluster and sets it. ``ELLUMINATE_REQUIRE_POSTGRES=1`` (set by CI) makes its absence an error.
POSTGRES_ENV = "ELLUMINATE_TEST_POSTGRES_URL"
POSTGRES_HOWTO = (
    f"PostgreSQL tests need {POSTGRES_ENV}, a server URL whose user may CREATE DATABASE "
    "(e.g. postgresql://elluminate@127.0.0.1:5432/postgres): start a throwaway cluster as "
    ".ci/run does (apt-get install postgresql; initdb; pg_ctl start) and set it"
)


def _postgres_server() -> str:
    import os

    url = os.environ.get(POSTGRES_ENV, "").strip()
    if not url:
        if os.environ.get("ELLUMINATE_REQUIRE_POSTGRES") == "1":
            pytest.fail(POSTGRES_HOWTO)
        pytest.skip(POSTGRES_HOWTO)
    return url


@contextlib.contextmanager
def new_postgres_database() -> Iterator[str]:
    """Create a new, empty PostgreSQL database; yield its URL; drop it afterwards."""
    import asyncio
    import uuid

    server_url = _postgres_server()
    name = f"ellu_test_{uuid.uuid4().hex[:12]}"

    async def admin(sql: str) -> None:
        import asyncpg

        from elluminate.server.store.postgres import dsn

        conn = await asyncpg.connect(dsn(server_url))
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    def run(sql: str) -> None:  # in a thread of its own: a test's event loop may be running
        errors: list[BaseException] = []

        def target() -> None:
            try:
                asyncio.run(admin(sql))
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        thread = threading.Thread(target=target)
        thread.start()
        thread.join()
        if errors:
            raise errors[0]

    run(f'CREATE DATABASE "{name}"')
    base, _, _ = server_url.rpartition("/")
    try:
        yield f"{base}/{name}"
    finally:
        run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """The URL of a new, empty PostgreSQL database (dropped after the test)."""
    with new_postgres_database() as url:
        yield url


@pytest.fixture(scope="session")
def postgres_database() -> Any:
    """``with postgres_database() as url``: a new database for a longer-lived fixture."""
    return new_postgres_database


# ---- the official package's Advanced calls (tests/golden/official-advanced.json) -------------

GOLDEN_ADVANCED = Path(__file__).parent / "golden" / "official-advanced.json"
_INIT_PATHS = ("/api/v0/version/compatible", "/api/v0/projects")
_COMPARED_HEADERS = ("X-API-Key", "SDK-Version", "Content-Type")


def _comparable(method: str, path: str, query: dict[str, list[str]], body: Any) -> dict[str, Any]:
    """A request with its per-wait ``connection_uuid`` replaced by a marker."""
    if "connection_uuid" in query:
        query = {**query, "connection_uuid": ["<uuid>"]}
    return {"method": method, "path": path, "query": query, "body": body}


@dataclass
class OfficialCalls:
    """What the official package sent, returned, raised and logged per Advanced call."""

    data: dict[str, Any]

    @property
    def objects(self) -> dict[str, Any]:
        return self.data["objects"]  # type: ignore[no-any-return]

    def call(self, name: str) -> dict[str, Any]:
        return self.data["calls"][name]  # type: ignore[no-any-return]

    def requests(self, name: str) -> list[dict[str, Any]]:
        """The call's requests, without the client start-up ones."""
        return [r for r in self.call(name)["requests"] if r["path"] not in _INIT_PATHS]

    def replay(self, recorder: Recorder, name: str) -> None:
        """Let ``recorder`` answer as the stub answered the official package in this call."""
        recorder.replay(self.requests(name))

    def assert_sent(self, recorder: Recorder, start: int, name: str) -> None:
        """The requests since ``start`` are the official package's for this call: same
        methods, paths, queries, bodies and headers; one ``connection_uuid`` per wait."""
        sent = [r for r in recorder.since(start) if r.path not in _INIT_PATHS]
        expected = self.requests(name)
        assert [_comparable(r.method, r.path, r.query, r.body) for r in sent] == [
            _comparable(r["method"], r["path"], r["query"], r["body"]) for r in expected
        ]
        for mine, theirs in zip(sent, expected, strict=True):
            for key in _COMPARED_HEADERS:
                if key in theirs["headers"]:
                    assert mine.headers[key].split(";")[0] == theirs["headers"][key], key
        consumers = {r.query["connection_uuid"][0] for r in sent if "connection_uuid" in r.query}
        assert len(consumers) <= 1, consumers
        for consumer in consumers:
            uuid.UUID(consumer)


@pytest.fixture(scope="session")
def official() -> OfficialCalls:
    """The official package's Advanced calls, captured by tests/golden/capture_advanced.py."""
    return OfficialCalls(json.loads(GOLDEN_ADVANCED.read_text(encoding="utf-8")))
