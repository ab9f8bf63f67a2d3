"""The OpenAI-compatible provider against a real aiohttp.web chat-completions server."""

from __future__ import annotations

import asyncio
import email.utils
import json
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web

from elluminate._retry import retry_after_from_headers
from elluminate.server.evaluation.llm_judge import judge
from elluminate.server.evaluation.providers import (
    ChatParams,
    GenerationError,
    ProviderConfig,
    ProviderError,
    make_provider,
)
from elluminate.server.evaluation.providers.openai import OpenAIProvider

Action = Callable[[web.Request], Awaitable[web.StreamResponse]]
MESSAGES = [{"role": "user", "content": "Say hi."}]


def completion_body(text: str, *, usage: bool = True) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": "served-model",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
        ],
    }
    if usage:
        body["usage"] = {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15}
    return body


def ok(text: str = "hi!", *, usage: bool = True) -> Action:
    async def action(request: web.Request) -> web.StreamResponse:
        return web.json_response(completion_body(text, usage=usage))

    return action


def status(code: int, body: Any = None, headers: dict[str, str] | None = None) -> Action:
    async def action(request: web.Request) -> web.StreamResponse:
        text = body if isinstance(body, str) else json.dumps(body or {})
        return web.Response(
            status=code, text=text, headers=headers, content_type="application/json"
        )

    return action


class FakeLLM:
    """Scripted chat-completions endpoint; records requests and concurrency."""

    def __init__(self) -> None:
        self.script: list[Action] = []
        self.requests: list[dict[str, Any]] = []
        self.stop = asyncio.Event()
        self.active = 0
        self.max_active = 0

    def sleep(self, seconds: float, then: Action | None = None) -> Action:
        async def action(request: web.Request) -> web.StreamResponse:
            try:
                await asyncio.wait_for(self.stop.wait(), seconds)
            except asyncio.TimeoutError:
                pass
            return await (then or ok())(request)

        return action

    async def handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.text()
        self.requests.append(
            {"body": json.loads(raw), "headers": dict(request.headers), "t": time.monotonic()}
        )
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        try:
            action = self.script.pop(0) if self.script else ok()
            return await action(request)
        finally:
            self.active -= 1


@pytest.fixture
async def fake(aiohttp_server: Any) -> AsyncIterator[tuple[FakeLLM, str]]:
    llm = FakeLLM()
    app = web.Application()
    app.router.add_post("/v1/chat/completions", llm.handle)
    server = await aiohttp_server(app)
    yield llm, str(server.make_url("/v1"))
    llm.stop.set()


@pytest.fixture
async def provider(fake: tuple[FakeLLM, str]) -> AsyncIterator[OpenAIProvider]:
    _, base_url = fake
    prov = OpenAIProvider(
        base_url=base_url,
        model="gpt-test",
        api_key="sk-secret-123",
        max_connections=2,
        timeout=5,
        max_retries=2,
        backoff_base=0.01,
    )
    yield prov
    await prov.aclose()


async def test_success_sends_openai_request(
    fake: tuple[FakeLLM, str], provider: OpenAIProvider
) -> None:
    llm, _ = fake
    llm.script.append(ok('{"rating": "yes"}'))
    schema = {"title": "Verdict", "type": "object", "properties": {}}
    params = ChatParams(temperature=0.3, top_p=0.9, max_tokens=50)
    completion = await provider.chat(MESSAGES, json_schema=schema, params=params)
    assert completion.text == '{"rating": "yes"}'
    assert (completion.input_tokens, completion.output_tokens) == (12, 3)
    assert completion.model == "served-model"
    assert completion.duration_seconds > 0
    request = llm.requests[0]
    assert request["headers"]["Authorization"] == "Bearer sk-secret-123"
    assert request["body"] == {
        "model": "gpt-test",
        "messages": MESSAGES,
        "temperature": 0.3,
        "top_p": 0.9,
        "max_tokens": 50,
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "Verdict", "schema": schema, "strict": True},
        },
    }


async def test_minimal_request_without_key_or_params(fake: tuple[FakeLLM, str]) -> None:
    llm, base_url = fake
    llm.script.append(ok("plain", usage=False))
    prov = make_provider(ProviderConfig(kind="openai", base_url=base_url + "/", model="m"))
    try:
        completion = await prov.chat(MESSAGES, json_schema={"type": "object"})
    finally:
        await prov.aclose()
    assert completion.text == "plain"
    assert (completion.input_tokens, completion.output_tokens) == (0, 0)
    request = llm.requests[0]
    assert "Authorization" not in request["headers"]
    assert request["body"]["response_format"]["json_schema"]["name"] == "answer"
    assert set(request["body"]) == {"model", "messages", "response_format"}


async def test_full_endpoint_url_is_used_as_is(fake: tuple[FakeLLM, str]) -> None:
    llm, base_url = fake
    prov = OpenAIProvider(base_url=base_url + "/chat/completions", model="m")
    try:
        assert (await prov.chat(MESSAGES)).text == "hi!"
    finally:
        await prov.aclose()


async def test_429_retry_after_then_success(
    fake: tuple[FakeLLM, str], provider: OpenAIProvider
) -> None:
    llm, _ = fake
    llm.script += [status(429, {"error": {"message": "slow down"}}, {"Retry-After": "0.3"}), ok()]
    assert (await provider.chat(MESSAGES)).text == "hi!"
    assert len(llm.requests) == 2
    assert llm.requests[1]["t"] - llm.requests[0]["t"] >= 0.28


async def test_429_exhausted_is_retryable_error(
    fake: tuple[FakeLLM, str], provider: OpenAIProvider
) -> None:
    llm, _ = fake
    llm.script += [status(429, {"error": {"message": "quota"}}, {"retry-after-ms": "10"})] * 3
    with pytest.raises(ProviderError) as info:
        await provider.chat(MESSAGES)
    assert info.value.retryable is True and info.value.status == 429
    assert "rate limited" in str(info.value) and "quota" in str(info.value)
    assert len(llm.requests) == 3


async def test_retry_after_beyond_timeout_fails_fast(fake: tuple[FakeLLM, str]) -> None:
    llm, base_url = fake
    llm.script.append(status(429, {}, {"Retry-After": "30"}))
    prov = OpenAIProvider(base_url=base_url, model="m", timeout=2)
    start = time.monotonic()
    try:
        with pytest.raises(ProviderError) as info:
            await prov.chat(MESSAGES)
    finally:
        await prov.aclose()
    assert time.monotonic() - start < 1
    assert "wait 30 s" in str(info.value)


async def test_500_is_retried_then_clear_error(
    fake: tuple[FakeLLM, str], provider: OpenAIProvider
) -> None:
    llm, _ = fake
    llm.script += [status(500, {"error": {"message": "boom"}})] * 3
    with pytest.raises(ProviderError) as info:
        await provider.chat(MESSAGES)
    message = str(info.value)
    assert "HTTP 500" in message and "boom" in message and "gpt-test" in message
    assert "3 attempt" in message
    assert info.value.retryable is True and info.value.status == 500
    assert len(llm.requests) == 3


async def test_503_then_success(fake: tuple[FakeLLM, str], provider: OpenAIProvider) -> None:
    llm, _ = fake
    llm.script += [status(503, "upstream down"), status(502, ""), ok("finally")]
    assert (await provider.chat(MESSAGES)).text == "finally"
    assert len(llm.requests) == 3


async def test_timeout_raises_quickly(fake: tuple[FakeLLM, str]) -> None:
    llm, base_url = fake
    llm.script.append(llm.sleep(30))
    prov = OpenAIProvider(base_url=base_url, model="slow-model", timeout=0.5)
    start = time.monotonic()
    try:
        with pytest.raises(ProviderError) as info:
            await prov.chat(MESSAGES)
    finally:
        await prov.aclose()
    assert time.monotonic() - start < 2
    assert "timed out after 0.5 s" in str(info.value)
    assert "slow-model" in str(info.value)
    assert info.value.retryable is True


async def test_per_call_timeout_overrides_default(
    fake: tuple[FakeLLM, str], provider: OpenAIProvider
) -> None:
    llm, _ = fake
    llm.script.append(llm.sleep(30))
    with pytest.raises(ProviderError, match="timed out after 0.3 s"):
        await provider.chat(MESSAGES, params=ChatParams(timeout=0.3))


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ("<html>Bad gateway page</html>", "not JSON: <html>Bad gateway page</html>"),
        ('{"id": "x", "object": "chat.completion"}', "no choices[0].message"),
        ('{"choices": []}', "no choices[0].message"),
        ('{"error": {"message": "backend exploded"}}', "backend exploded"),
    ],
)
async def test_malformed_success_body(
    fake: tuple[FakeLLM, str], provider: OpenAIProvider, body: str, fragment: str
) -> None:
    llm, _ = fake
    llm.script.append(status(200, body))
    with pytest.raises(ProviderError) as info:
        await provider.chat(MESSAGES)
    assert fragment in str(info.value)
    assert info.value.retryable is False
    assert len(llm.requests) == 1


async def test_4xx_propagates_message_without_retry_or_key(
    fake: tuple[FakeLLM, str], provider: OpenAIProvider
) -> None:
    llm, _ = fake
    llm.script.append(status(400, {"error": {"message": "Invalid schema for response_format"}}))
    with pytest.raises(ProviderError) as info:
        await provider.chat(MESSAGES)
    message = str(info.value)
    assert "gpt-test" in message and "HTTP 400" in message
    assert "Invalid schema for response_format" in message
    assert info.value.retryable is False and info.value.status == 400
    assert len(llm.requests) == 1

    llm.script.append(status(401, {"error": {"message": "Incorrect API key: sk-secret-123"}}))
    with pytest.raises(ProviderError) as info:
        await provider.chat(MESSAGES)
    assert "HTTP 401" in str(info.value)
    assert "sk-secret-123" not in str(info.value)

    llm.script.append(status(404, "no such route"))
    with pytest.raises(ProviderError, match="HTTP 404: no such route"):
        await provider.chat(MESSAGES)


async def test_connection_error_is_retried_then_reported() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    prov = OpenAIProvider(
        base_url=f"http://127.0.0.1:{port}/v1", model="m", max_retries=1, backoff_base=0.01
    )
    try:
        with pytest.raises(ProviderError) as info:
            await prov.chat(MESSAGES)
    finally:
        await prov.aclose()
    assert "connection failed after 2 attempt(s)" in str(info.value)
    assert info.value.retryable is True


async def test_max_connections_bounds_concurrency(
    fake: tuple[FakeLLM, str], provider: OpenAIProvider
) -> None:
    llm, _ = fake
    llm.script += [llm.sleep(0.1) for _ in range(6)]
    results = await asyncio.gather(*(provider.chat(MESSAGES) for _ in range(6)))
    assert len(results) == 6
    assert llm.max_active == 2


async def test_aclose_is_idempotent_and_session_recreated(
    fake: tuple[FakeLLM, str], provider: OpenAIProvider
) -> None:
    await provider.chat(MESSAGES)
    await provider.aclose()
    await provider.aclose()
    assert (await provider.chat(MESSAGES)).text == "hi!"


async def test_judge_retries_malformed_then_generation_error(
    fake: tuple[FakeLLM, str], provider: OpenAIProvider
) -> None:
    llm, _ = fake
    llm.script += [ok("I cannot decide."), ok('{"reasoning": "Fine.", "rating": "Yes"}')]
    prompt = [{"role": "user", "content": "Explain tides."}]
    assert await judge(provider, "Is it correct?", prompt, "The moon.") == ("YES", "Fine.")
    assert len(llm.requests) == 2
    schema = llm.requests[0]["body"]["response_format"]["json_schema"]
    assert schema["name"] == "Verdict" and schema["strict"] is True

    llm.script += [ok("garbage 1"), ok("garbage 2"), ok("garbage 3")]
    with pytest.raises(GenerationError) as info:
        await judge(provider, "Is it correct?", prompt, "The moon.")
    assert info.value.raw_text == "garbage 3"
    assert "garbage 3" in str(info.value)
    assert len(llm.requests) == 5


def test_parse_retry_after_forms() -> None:
    """The provider reads its hints with the client's parser (tests/test_retry_after.py)."""
    now = 1_700_000_000.0
    date = email.utils.formatdate(now + 7, usegmt=True)
    assert retry_after_from_headers({"Retry-After": "3"}) == 3.0
    assert retry_after_from_headers({"Retry-After": date}, now=now) == pytest.approx(7, abs=1)
    assert retry_after_from_headers({"retry-after-ms": "250", "Retry-After": "9"}) == 0.25
    assert retry_after_from_headers({"Retry-After": "soon"}) is None
    assert retry_after_from_headers({}) is None
    past = email.utils.formatdate(now - 100, usegmt=True)
    assert retry_after_from_headers({"Retry-After": past}, now=now) == 0.0


@pytest.mark.parametrize("hint", ["nan", "inf", "-inf", "1e999", "-5", "soon", "Mon, 99 Foo"])
async def test_unusable_retry_after_gives_a_short_bounded_wait(
    fake: tuple[FakeLLM, str], provider: OpenAIProvider, hint: str
) -> None:
    llm, _ = fake
    llm.script += [status(429, {"error": {"message": "slow down"}}, {"Retry-After": hint}), ok()]
    start = time.monotonic()
    assert (await provider.chat(MESSAGES)).text == "hi!"
    assert time.monotonic() - start < 2.0  # the backoff (or no wait), never the 60 s cap
    assert len(llm.requests) == 2


def test_repr_and_errors_hide_credentials() -> None:
    prov = OpenAIProvider(base_url="http://user:pw@example.invalid/v1?k=1", model="m", api_key="k")
    assert "pw" not in repr(prov) and "k=1" not in repr(prov)
    assert repr(prov) == "OpenAIProvider(model='m', base_url='http://example.invalid/v1')"
