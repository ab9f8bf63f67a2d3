# DO NOT EDIT: generated from tests/faults/_async/test_faults.py by scripts/unasync.py; edit the _async original.
"""Fault matrix: the retry policy against a real TCP proxy that injects faults.

Written once for AsyncClient; tests/faults/_sync/test_faults.py is generated for Client.
Idempotent calls (GET, PUT, DELETE) survive resets, closes, 429, 502, 503 and 504; a POST is
retried only when the server cannot have acted on it (429, 503, connection refused) and is
never replayed after an ambiguous failure: the proxy counts the POSTs it saw and the server's
rows (read directly, not through the proxy) show that nothing was created twice.
"""

from __future__ import annotations

import json
import math
import re
import socket
import time

import pytest
from fault_proxy import Fault

import elluminate._sync._http as http_module
from elluminate import Client, RetryConfig
from elluminate._compat import sleep
from elluminate._sse import SSEParser
from elluminate.exceptions import (
    AmbiguousTransportError,
    ConfigurationError,
    ConnectError,
    ConnectTimeoutError,
    ElluminateError,
    NotFoundError,
    RateLimitError,
    RequestTimeoutError,
    ServerError,
    TransportError,
)

TEMPLATES = r"/prompt_templates$"
ONE_TEMPLATE = r"/prompt_templates/\d+$"
ENTRY = r"/collections/\d+/entries/\d+$"
FAST = RetryConfig(min_wait=0.01, max_wait=0.05, jitter=0)

# Failures after which an idempotent request is retried (by name, for readable test ids).
RETRYABLE = {
    "reset": Fault.reset(),
    "close": Fault.close(),
    "502": Fault.status(502),
    "503": Fault.status(503, retry_after=0),
    "504": Fault.status(504),
    "429": Fault.status(429, retry_after=0),
    "cut-body": Fault.cut(after_bytes=5),
}

# Failures after which the server may have acted on a POST: it must not be sent again.
AMBIGUOUS = {
    "reset-after-forward": (Fault.reset(forward=True), TransportError, 1),
    "close-after-forward": (Fault.close(forward=True), TransportError, 1),
    "reset-before-forward": (Fault.reset(), TransportError, 0),
    "502-after-forward": (Fault.status(502, forward=True), ServerError, 1),
    "504-after-forward": (Fault.status(504, forward=True), ServerError, 1),
    "cut-answer": (Fault.cut(after_bytes=5), TransportError, 1),
}


def make_client(proxy, server, **kwargs):
    kwargs.setdefault("retry_config", FAST)
    return Client(
        base_url=proxy.base_url, api_key=server.api_key, skip_version_check=True, **kwargs
    )


def new_template(client, name="Explain"):
    return client.create_prompt_template(name=name, template="Explain {{topic}}.")


# ---- idempotent methods: retried until they succeed ------------------------------------------


@pytest.mark.parametrize("fault", RETRYABLE, ids=str)
def test_get_survives(client, proxy, fault):
    new_template(client)
    proxy.script(RETRYABLE[fault], RETRYABLE[fault], method="GET", path=TEMPLATES)
    templates = client.list_prompt_templates()
    assert [t.name for t in templates] == ["Explain"]
    assert proxy.count("GET", TEMPLATES) == 3
    assert [label for label, _, _ in proxy.injected] == [RETRYABLE[fault].label] * 2


@pytest.mark.parametrize("fault", RETRYABLE, ids=str)
def test_put_survives(client, direct, proxy, fault):
    collection = client.create_collection(name="Topics", variables=[{"topic": "AI"}])
    entry = collection.variables[0]
    proxy.script(RETRYABLE[fault], RETRYABLE[fault], method="PUT", path=ENTRY)
    updated = collection.update_entry(entry, {"topic": "ML"})
    assert updated.input_values == {"topic": "ML"}
    assert proxy.count("PUT", ENTRY) == 3
    stored = direct.get_collection(id=collection.id)
    assert [v.input_values for v in stored.variables] == [{"topic": "ML"}]


def test_put_replayed_after_the_server_applied_it(client, direct, proxy):
    collection = client.create_collection(name="Topics", variables=[{"topic": "AI"}])
    entry = collection.variables[0]
    proxy.script(Fault.reset(forward=True), Fault.status(504, forward=True), method="PUT")
    updated = collection.update_entry(entry, {"topic": "ML"})
    assert updated.input_values == {"topic": "ML"}
    assert proxy.count("PUT", ENTRY) == 3
    stored = direct.get_collection(id=collection.id)
    assert [v.input_values for v in stored.variables] == [{"topic": "ML"}]


@pytest.mark.parametrize("fault", RETRYABLE, ids=str)
def test_delete_survives(client, direct, proxy, fault):
    template = new_template(client)
    proxy.script(RETRYABLE[fault], RETRYABLE[fault], method="DELETE", path=ONE_TEMPLATE)
    client.delete_prompt_template(template)
    assert proxy.count("DELETE", ONE_TEMPLATE) == 3
    assert direct.list_prompt_templates() == []


@pytest.mark.parametrize(
    "fault", [Fault.reset(forward=True), Fault.status(502, forward=True)], ids=["reset", "502"]
)
def test_delete_that_already_happened_counts_as_done(client, direct, proxy, fault):
    template = new_template(client)
    proxy.script(fault, method="DELETE", path=ONE_TEMPLATE)
    client.delete_prompt_template(template)  # the retry's 404 means "already gone"
    assert proxy.count("DELETE", ONE_TEMPLATE) == 2
    assert direct.list_prompt_templates() == []


def test_delete_of_a_missing_object_is_still_not_found(client, proxy):
    with pytest.raises(NotFoundError) as info:
        client.delete_prompt_template(123456)
    assert info.value.attempts == 1
    assert proxy.count("DELETE", ONE_TEMPLATE) == 1


def test_every_fault_in_a_row(server, proxy):
    faults = list(RETRYABLE.values())
    config = RetryConfig(max_attempts=len(faults) + 1, min_wait=0.01, max_wait=0.05, jitter=0)
    with make_client(proxy, server, retry_config=config) as client:
        proxy.script(*faults, method="GET", path=TEMPLATES)
        assert client.list_prompt_templates() == []
    assert proxy.count("GET", TEMPLATES) == len(faults) + 1
    assert [label for label, _, _ in proxy.injected] == [f.label for f in faults]


def test_connection_faults_on_connect(server, proxy):
    proxy.script_connections(Fault.reset(), Fault.close())
    with make_client(proxy, server) as client:
        assert client.list_prompt_templates() == []
    assert proxy.connections >= 3
    assert proxy.pending() == 0


# ---- POST: never replayed after an ambiguous failure ----------------------------------------


@pytest.mark.parametrize("case", AMBIGUOUS, ids=str)
def test_post_is_never_replayed(client, direct, proxy, case):
    fault, error, rows = AMBIGUOUS[case]
    proxy.script(fault, method="POST", path=TEMPLATES)
    with pytest.raises(error) as info:
        new_template(client)
    assert info.value.attempts == 1
    assert "attempts" not in str(info.value)
    assert proxy.count("POST", TEMPLATES) == 1
    assert len(direct.list_prompt_templates()) == rows


def test_batch_upload_is_never_replayed(client, direct, proxy):
    collection = client.create_collection(name="Topics")
    proxy.script(Fault.reset(forward=True), method="POST", path=r"/entries")
    with pytest.raises(TransportError):
        collection.add_many([{"topic": "AI"}, {"topic": "ML"}, {"topic": "DL"}])
    assert proxy.count("POST", r"/entries") == 1
    stored = direct.get_collection(id=collection.id)
    assert sorted(v.input_values["topic"] for v in stored.variables) == ["AI", "DL", "ML"]


@pytest.mark.parametrize("code", [429, 503])
def test_post_is_retried_when_the_server_refused_it(client, direct, proxy, code):
    refused = Fault.status(code, retry_after=0)
    proxy.script(refused, refused, method="POST", path=TEMPLATES)
    template = new_template(client)
    assert template.name == "Explain"
    assert proxy.count("POST", TEMPLATES) == 3
    assert [t.id for t in direct.list_prompt_templates()] == [template.id]


def test_post_is_retried_after_connection_refused(client, direct, proxy, monkeypatch):
    assert client.list_prompt_templates() == []  # a pooled connection to drop
    proxy.pause()  # nothing listens on the port any more; the open connections are closed
    sleep(0.05)  # let the client see that its pooled connection was closed
    waits = []

    def resume_instead_of_waiting(seconds):
        waits.append(seconds)
        proxy.resume()

    monkeypatch.setattr(http_module, "sleep", resume_instead_of_waiting)
    template = new_template(client)
    assert len(waits) == 1  # refused once, then sent once
    assert proxy.count("POST", TEMPLATES) == 1
    assert [t.id for t in direct.list_prompt_templates()] == [template.id]


def test_post_is_retried_after_connect_timeout(server, proxy, blackhole):
    config = RetryConfig(max_attempts=2, min_wait=0.01, max_wait=0.05, jitter=0)
    with make_client(proxy, server, timeout=0.3, retry_config=config) as client:
        started = time.monotonic()
        with pytest.raises(RequestTimeoutError) as info:  # the connect timed out: never sent
            client._http.request("POST", f"{blackhole.base_url}/api/v0/x", json={"x": 1})
        elapsed = time.monotonic() - started
    assert info.value.attempts == 2
    assert getattr(info.value, "request_sent", True) is False
    assert 0.5 < elapsed < 2.0


# ---- retries exhausted: the original error, with the number of attempts ----------------------


@pytest.mark.parametrize(
    ("fault", "error", "status"),
    [
        (Fault.status(503, retry_after=0), ServerError, 503),
        (Fault.status(502), ServerError, 502),
        (Fault.status(504), ServerError, 504),
        (Fault.status(429, retry_after=0), RateLimitError, 429),
        (Fault.reset(), TransportError, None),
        (Fault.close(), TransportError, None),
    ],
    ids=["503", "502", "504", "429", "reset", "close"],
)
def test_retries_exhausted(client, proxy, fault, error, status):
    proxy.script(fault, fault, fault, method="GET", path=TEMPLATES)
    with pytest.raises(error) as info:
        client.list_prompt_templates()
    assert info.value.attempts == 3
    assert "after 3 attempts" in str(info.value)
    assert getattr(info.value, "status_code", None) == status
    assert proxy.count("GET", TEMPLATES) == 3
    if isinstance(info.value, RateLimitError):
        assert info.value.retry_after == 0.0


def test_the_last_status_is_reported(client, proxy):
    proxy.script(Fault.status(503), Fault.reset(), Fault.status(504), method="GET")
    with pytest.raises(ServerError) as info:
        client.list_prompt_templates()
    assert (info.value.status_code, info.value.attempts) == (504, 3)
    assert str(info.value) == "[504] injected 504 (after 3 attempts)"


def test_post_rate_limited_to_the_end(client, direct, proxy):
    limited = Fault.status(429, retry_after=0)
    proxy.script(limited, limited, limited, method="POST", path=TEMPLATES)
    with pytest.raises(RateLimitError) as info:
        new_template(client)
    assert info.value.attempts == 3
    assert proxy.count("POST", TEMPLATES) == 3
    assert direct.list_prompt_templates() == []


def test_500_is_not_retried(client, proxy):
    proxy.script(Fault.status(500), method="GET", path=TEMPLATES)
    with pytest.raises(ServerError) as info:
        client.list_prompt_templates()
    assert info.value.status_code == 500
    assert info.value.attempts == 1
    assert str(info.value) == "[500] injected 500"
    assert proxy.count("GET", TEMPLATES) == 1


def test_max_attempts_1_sends_once(server, proxy):
    with make_client(proxy, server, retry_config=RetryConfig(max_attempts=1)) as client:
        proxy.script(Fault.reset(), method="GET", path=TEMPLATES)
        with pytest.raises(TransportError) as info:
            client.list_prompt_templates()
    assert info.value.attempts == 1
    assert proxy.count("GET", TEMPLATES) == 1


def test_retry_after_of_a_503_is_honoured(server, proxy):
    config = RetryConfig(min_wait=0.0, max_wait=5.0, multiplier=0.001, jitter=0)
    with make_client(proxy, server, retry_config=config) as client:
        proxy.script(Fault.status(503, retry_after=0.3), method="GET", path=TEMPLATES)
        started = time.monotonic()
        assert client.list_prompt_templates() == []
        assert time.monotonic() - started >= 0.3
    assert proxy.count("GET", TEMPLATES) == 2


# Retry-After values no server should send: each must still give a short, finite wait.
ODD_RETRY_AFTER = {
    "nan": "nan",
    "inf": "inf",
    "minus-inf": "-inf",
    "exponent": "1e999",
    "negative": "-5",
    "huge": "9" * 400,
    "garbage": "soon",
    "bad-date": "Mon, 99 Foo 2024 99:99:99 GMT",
    "far-date": "Fri, 31 Dec 9999 23:59:59 GMT",
}


@pytest.mark.parametrize("code", [429, 503])
@pytest.mark.parametrize("hint", ODD_RETRY_AFTER, ids=str)
def test_any_retry_after_gives_a_bounded_wait(server, proxy, monkeypatch, code, hint):
    waits = []

    def record_instead_of_waiting(seconds):
        waits.append(seconds)

    monkeypatch.setattr(http_module, "sleep", record_instead_of_waiting)
    with make_client(proxy, server) as client:
        proxy.script(
            Fault.status(code, retry_after=ODD_RETRY_AFTER[hint]), method="GET", path=TEMPLATES
        )
        assert client.list_prompt_templates() == []
    assert len(waits) == 1
    assert math.isfinite(waits[0]) and 0.0 <= waits[0] <= FAST.max_wait
    assert proxy.count("GET", TEMPLATES) == 2


@pytest.mark.parametrize(("hint", "expected"), [("nan", None), ("inf", None), ("-7", 0.0)])
def test_rate_limit_error_carries_a_usable_retry_after(client, proxy, hint, expected):
    limited = Fault.status(429, retry_after=hint)
    proxy.script(limited, limited, limited, method="GET", path=TEMPLATES)
    with pytest.raises(RateLimitError) as info:
        client.list_prompt_templates()
    assert info.value.retry_after == expected


# ---- timeouts: a stalled answer raises RequestTimeoutError, nothing hangs -------------------


def test_stalled_post_times_out_once(server, direct, proxy):
    with make_client(proxy, server, timeout=0.5) as client:
        proxy.script(Fault.stall(forward=True), method="POST", path=TEMPLATES)
        started = time.monotonic()
        with pytest.raises(RequestTimeoutError) as info:
            new_template(client)
        elapsed = time.monotonic() - started
    assert isinstance(info.value, TransportError)
    assert isinstance(info.value, TimeoutError)
    assert 0.4 < elapsed < 2.0
    assert info.value.attempts == 1
    assert proxy.count("POST", TEMPLATES) == 1
    assert len(direct.list_prompt_templates()) == 1


def test_stalled_get_is_retried(server, proxy):
    with make_client(proxy, server, timeout=0.5) as client:
        proxy.script(Fault.stall(), Fault.stall(), method="GET", path=TEMPLATES)
        started = time.monotonic()
        assert client.list_prompt_templates() == []
        elapsed = time.monotonic() - started
    assert 0.9 < elapsed < 3.0
    assert proxy.count("GET", TEMPLATES) == 3


def test_stalled_get_gives_up(server, proxy):
    config = RetryConfig(max_attempts=2, min_wait=0.01, max_wait=0.05, jitter=0)
    with make_client(proxy, server, timeout=0.5, retry_config=config) as client:
        proxy.script(Fault.stall(), Fault.stall(), method="GET", path=TEMPLATES)
        started = time.monotonic()
        with pytest.raises(RequestTimeoutError) as info:
            client.list_prompt_templates()
        elapsed = time.monotonic() - started
    assert 0.9 < elapsed < 3.0
    assert info.value.attempts == 2
    assert "after 2 attempts" in str(info.value)


def test_connection_that_never_reads_times_out(server, proxy):
    proxy.script_connections(Fault.stall())
    started = time.monotonic()
    with make_client(proxy, server, timeout=0.5) as client:
        assert client.list_prompt_templates() == []
    assert 0.4 < time.monotonic() - started < 3.0


# ---- transport errors: the same class and wording on both twins --------------------------------


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


ONCE = RetryConfig(max_attempts=1)
# name: (where the client connects, fault on its GET, exception class, message pattern)
TRANSPORT_ERRORS = {
    "refused": (
        "closed-port",
        None,
        ConnectError,
        r"^cannot connect to http://127\.0\.0\.1:\d+/api/v0/projects: connection refused ",
    ),
    "unknown-host": (
        "http://nonexistent.invalid",
        None,
        ConnectError,
        r"^cannot connect to http://nonexistent\.invalid/api/v0/projects: "
        r"the host name 'nonexistent\.invalid' could not be resolved",
    ),
    "connect-timeout": (
        "blackhole",
        None,
        ConnectTimeoutError,
        r"^cannot connect to http://127\.0\.0\.1:\d+/api/v0/projects: timed out after 0\.3 s$",
    ),
    "read-timeout": (
        "proxy",
        Fault.stall(),
        RequestTimeoutError,
        r"^GET http://\S+/prompt_templates timed out after 0\.3 s without an answer$",
    ),
    "reset-before-answer": (
        "proxy",
        Fault.reset(),
        AmbiguousTransportError,
        r"^GET http://\S+/prompt_templates failed: the connection was reset before any answer$",
    ),
    "closed-before-answer": (
        "proxy",
        Fault.close(),
        AmbiguousTransportError,
        r"^GET http://\S+/prompt_templates failed: "
        r"the server closed the connection before any answer$",
    ),
    "reset-mid-body": (
        "proxy",
        Fault.cut(after_bytes=5, rst=True),
        AmbiguousTransportError,
        r"^GET http://\S+/prompt_templates failed: "
        r"the connection broke before the whole answer arrived$",
    ),
    "closed-mid-body": (
        "proxy",
        Fault.cut(after_bytes=5),
        AmbiguousTransportError,
        r"^GET http://\S+/prompt_templates failed: "
        r"the connection broke before the whole answer arrived$",
    ),
    "no-scheme": (
        "localhost:8000",
        None,
        ConfigurationError,
        r"^the base URL 'localhost:8000' has no scheme: add http:// \(or https://\), "
        r"e\.g\. 'http://localhost:8000'$",
    ),
}


@pytest.mark.parametrize("case", TRANSPORT_ERRORS, ids=str)
def test_transport_errors_are_named_right(server, proxy, blackhole, case):
    where, fault, error, pattern = TRANSPORT_ERRORS[case]
    base_url = {
        "closed-port": f"http://127.0.0.1:{closed_port()}",
        "blackhole": blackhole.base_url,
        "proxy": proxy.base_url,
    }.get(where, where)
    if fault is not None:
        proxy.script(fault, method="GET", path=TEMPLATES)
    with pytest.raises(ElluminateError) as info:
        client = Client(
            base_url=base_url,
            api_key=server.api_key,
            retry_config=ONCE,
            # Short only where the timeout is the point: a loaded machine may be slow to answer.
            timeout=0.3 if error in (ConnectTimeoutError, RequestTimeoutError) else 30.0,
            skip_version_check=True,
        )
        try:
            client.list_prompt_templates()
        finally:
            client.close()
    assert type(info.value) is error, repr(info.value)
    assert re.search(pattern, str(info.value)), str(info.value)
    if isinstance(info.value, TransportError):
        assert info.value.__cause__ is not None  # the library's own error, for debugging
        sent = error is not ConnectError and error is not ConnectTimeoutError
        assert getattr(info.value, "request_sent", True) is sent
    assert proxy.pending() == 0


# ---- streams ----------------------------------------------------------------------------------


def test_stream_lines_keep_events_whole_across_chunks(client, proxy):
    # One HTTP chunk per line: a multi-line event must still parse as one event.
    chunks = [b'data: {"status":\n', b'data: "SUCCESS"}\n', b"\n", b": keepalive\n\n"]
    proxy.script(
        Fault.respond(
            200, chunks, headers=[("Content-Type", "text/event-stream")], chunked=True
        ),
        method="GET",
        path="/canned/stream$",
    )
    lines = [line for line in client._http.stream_lines("/canned/stream")]
    assert lines == [b'data: {"status":\n', b'data: "SUCCESS"}\n', b"\n", b": keepalive\n", b"\n"]
    parser = SSEParser()
    events = [e for e in map(parser.feed, lines) if e is not None]
    assert events == [{"status": "SUCCESS"}]



def test_stream_lines_up_to_the_event_limit(client, proxy):
    big = b'data: {"status": "STARTED", "logs_delta": "' + b"x" * 700_000 + b'"}\n'
    chunks = [big[:100], big[100:], b"\n", b'data: {"status": "SUCCESS"}\n\n']
    proxy.script(
        Fault.respond(
            200, chunks, headers=[("Content-Type", "text/event-stream")], chunked=True
        ),
        method="GET",
        path="/canned/stream$",
    )
    lines = [line for line in client._http.stream_lines("/canned/stream")]
    assert [len(line) for line in lines] == [len(big), 1, 28, 1]
    parser = SSEParser()
    events = [e for e in map(parser.feed, lines) if e is not None]
    assert [e["status"] for e in events] == ["STARTED", "SUCCESS"]


def test_stream_read_timeout_overrides_the_client_timeout(client, proxy):
    proxy.script(Fault.stall(), method="GET", path="/canned/stream$")
    started = time.monotonic()
    with pytest.raises(RequestTimeoutError):
        for _ in client._http.stream_lines("/canned/stream", read_timeout=0.3):
            pass
    assert 0.25 < time.monotonic() - started < 2.0  # the client's own timeout is 5 s


def test_stream_that_goes_silent_times_out(client, proxy):
    chunks = [b'data: {"status": "STARTED"}\n\n']
    proxy.script(
        Fault.respond(
            200,
            chunks,
            headers=[("Content-Type", "text/event-stream")],
            chunked=True,
            then_stall=True,
        ),
        method="GET",
        path="/canned/stream$",
    )
    lines = []
    started = time.monotonic()
    with pytest.raises(RequestTimeoutError):
        for line in client._http.stream_lines("/canned/stream", read_timeout=0.3):
            lines.append(line)
    assert lines == [b'data: {"status": "STARTED"}\n', b"\n"]
    assert 0.25 < time.monotonic() - started < 2.0


# ---- experiment streams: cut, stalled or refused streams fall back to polling -----------------


STREAM = r"/generation/[^/]+/stream$"
POLL = r"/generation/[^/]+$"
STREAM_FAULTS = {
    "cut-after-1-event": Fault.cut(after_events=1),
    "cut-after-2-events-rst": Fault.cut(after_events=2, rst=True),
    "cut-mid-event": Fault.cut(after_bytes=40),
    "reset": Fault.reset(),
    "503": Fault.status(503),
    "stall": Fault.stall(),
}


def stream_events(client, name="Streamed"):
    template = new_template(client)
    collection = client.create_collection(
        name=f"{name} topics", variables=[{"topic": t} for t in ("AI", "ML", "DL", "RL")]
    )
    return [
        event
        for event in client.stream_experiment(
            name=name,
            prompt_template=template,
            collection=collection,
            criteria=["Is it short?", "Is it polite?"],
            polling_interval=0.1,
        )
    ]


@pytest.mark.parametrize("fault", STREAM_FAULTS, ids=str)
def test_broken_stream_falls_back_to_polling(server, proxy, fault):
    # A short read timeout is what turns the stall into a fallback; the others need none.
    with make_client(proxy, server, timeout=1.0 if fault == "stall" else 30.0) as client:
        proxy.script(STREAM_FAULTS[fault], method="GET", path=STREAM)
        events = stream_events(client)
    assert sum(event.is_complete for event in events) == 1
    final = events[-1]
    assert final.is_complete and final.is_success, final
    assert final.result is not None and len(final.result.rated_responses) == 4
    rated = [e.progress.responses_rated for e in events if e.progress]
    assert rated == sorted(rated)
    assert proxy.count("GET", STREAM) == 1  # streams are not retried ...
    assert proxy.count("GET", POLL) >= 1  # ... the client polls instead
    assert [label for label, _, _ in proxy.injected] == [STREAM_FAULTS[fault].label]


@pytest.mark.parametrize("events_before_cut", [1, 2])
def test_fallback_does_not_repeat_the_streamed_log(client, direct, proxy, events_before_cut):
    # Count from the first event with log text: on a loaded machine earlier ones carry none.
    cut = Fault.cut(after_events=events_before_cut, counting_from=b"Generating")
    proxy.script(cut, method="GET", path=STREAM)
    events = stream_events(client)
    assert sum(event.is_complete for event in events) == 1 and events[-1].is_success
    assert proxy.count("GET", POLL) >= 1  # the rest came from polling
    # The proxy cut the stream after it delivered "Generating"; polling must not repeat it.
    assert "".join(e.logs_delta or "" for e in events).count("Generating") == 1
    [stream_path] = {path for method, path in proxy.seen if path.endswith("/stream")}
    # A poll without a consumer id answers the whole log (CONTRACT.md 5.2).
    resp = direct._http.request("GET", stream_path.removesuffix("/stream"))
    whole_log = json.loads(resp.content)["logs_delta"]
    assert whole_log.count("Generating") == 1
    assert "".join(e.logs_delta or "" for e in events) == whole_log


# Streams that break the SSE rules (CONTRACT.md 5.5): the client polls instead of raising.
MALFORMED_STREAMS = {
    "not-json": [b'data: {"status": "PENDING"}\n\n', b"data: not json\n\n"],
    "not-an-object": [b"data: [1, 2]\n\n"],
    "unknown-status": [b'data: {"status": "DONE"}\n\n'],
    "no-status": [b'data: {"completed_responses": 1}\n\n'],
    "bad-counter": [b'data: {"status": "STARTED", "completed_responses": "two"}\n\n'],
    "bad-log": [b'data: {"status": "STARTED", "logs_delta": 7}\n\n'],
    "event-over-1-MiB": [b"data: " + b"x" * 700_000 + b"\n", b"data: " + b"x" * 700_000 + b"\n"],
    "line-over-1-MiB": [b"data: " + b"x" * (1 << 21)],
}


@pytest.mark.parametrize("case", MALFORMED_STREAMS, ids=str)
def test_malformed_stream_falls_back_to_polling(server, proxy, case):
    canned = Fault.respond(
        200, MALFORMED_STREAMS[case], headers=[("Content-Type", "text/event-stream")], chunked=True
    )
    with make_client(proxy, server, timeout=2.0) as client:
        proxy.script(canned, method="GET", path=STREAM)
        events = stream_events(client)
    assert sum(event.is_complete for event in events) == 1
    final = events[-1]
    assert final.is_success and final.result is not None
    assert len(final.result.rated_responses) == 4
    assert proxy.count("GET", POLL) >= 1
    assert [label for label, _, _ in proxy.injected] == ["200"]


def test_unbroken_stream_is_not_polled(client, proxy):
    events = stream_events(client)
    assert sum(event.is_complete for event in events) == 1 and events[-1].is_success
    assert proxy.count("GET", STREAM) == 1
    assert proxy.count("GET", POLL) == 0


def test_rechunked_stream_is_read_whole(client, proxy):
    proxy.script(Fault.rechunk(7), method="GET", path=STREAM)  # events split across chunks
    events = stream_events(client)
    assert sum(event.is_complete for event in events) == 1 and events[-1].is_success
    assert [label for label, _, _ in proxy.injected] == ["rechunk"]
    assert proxy.count("GET", POLL) == 0  # the stream itself carried every event


def test_experiment_post_is_never_replayed(client, direct, proxy):
    template = new_template(client)
    collection = client.create_collection(name="Topics", variables=[{"topic": "AI"}])
    criteria = client.create_criterion_set(name="Checks", criteria=["Is it short?"])
    proxy.script(Fault.reset(forward=True), method="POST", path=r"/experiments$")
    with pytest.raises(TransportError) as info:
        client.create_experiment(
            name="Once", prompt_template=template, collection=collection, criterion_set=criteria
        )
    assert info.value.attempts == 1
    assert proxy.count("POST", r"/experiments$") == 1
    assert [e.name for e in direct.list_experiments()] == ["Once"]
