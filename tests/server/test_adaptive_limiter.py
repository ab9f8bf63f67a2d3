"""Adaptive concurrency: the LLM limiter backs off and shrinks on rate limits, grows back on
success, and the openai provider hands its rate limits to it."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from aiohttp import web

from elluminate.server.config import ServerConfig
from elluminate.server.engine import limiter as limiter_module
from elluminate.server.engine.limiter import Limiter, rate_limit_wait
from elluminate.server.evaluation.providers import ProviderConfig, ProviderError
from elluminate.server.evaluation.providers.openai import OpenAIProvider
from elluminate.server.evaluation.registry import Providers

MESSAGES = [{"role": "user", "content": "Say hi."}]


def limited(retry_after: float | None = 0.01) -> ProviderError:
    return ProviderError("rate limited", status=429, retry_after=retry_after, rate_limited=True)


def test_only_rate_limits_ask_for_a_wait() -> None:
    assert rate_limit_wait(limited(1.5)) == 1.5
    assert rate_limit_wait(limited(None)) == 0.0
    assert rate_limit_wait(ProviderError("HTTP 500", status=500, retryable=True)) is None
    assert rate_limit_wait(ValueError("no")) is None


async def test_a_rate_limit_halves_the_ceiling_once_per_round_and_pauses_new_calls() -> None:
    lim = Limiter(16)
    release = asyncio.Event()
    attempts: dict[int, int] = {}
    starts: list[float] = []

    async def call(i: int) -> int:
        attempts[i] = attempts.get(i, 0) + 1
        starts.append(time.monotonic())
        if attempts[i] == 1:
            await release.wait()
            raise limited(0.2)
        return i

    tasks = [asyncio.ensure_future(lim.run(lambda i=i: call(i))) for i in range(16)]
    await asyncio.sleep(0.05)
    assert lim.in_flight == 16 and lim.ceiling is None
    failed_at = time.monotonic()
    release.set()
    results = await asyncio.gather(*tasks)
    assert results == list(range(16))
    # 16 calls of one round all met the limit: the ceiling was halved once, not 16 times
    assert lim.decreases == 1 and lim.rate_limited == 16
    # halved from 16 to 8, then 8 successes added one: 9
    assert lim.ceiling == 9
    retries = starts[16:]
    assert len(retries) == 16 and min(retries) >= failed_at + 0.19  # nobody ran in the pause


async def test_the_ceiling_bounds_the_calls_in_flight_and_grows_back_on_success() -> None:
    lim = Limiter(8)
    lim.backoff(0.0)  # a rate limit with nothing else in flight: the ceiling drops to 1
    assert lim.ceiling == 1 and lim.effective == 1
    gate = asyncio.Event()
    active = peak = 0

    async def call() -> None:
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        await gate.wait()
        await asyncio.sleep(0.001)
        active -= 1

    tasks = [asyncio.ensure_future(lim.run(call)) for _ in range(4)]
    await asyncio.sleep(0.01)
    assert lim.in_flight == 1 and peak == 1  # the others wait for the ceiling
    gate.set()
    await asyncio.gather(*tasks)
    # additive increase: a ceiling's worth of successes raises it by one (1 -> 2 -> 3)
    assert lim.ceiling == 3
    await asyncio.gather(*(lim.run(call) for _ in range(200)))
    assert lim.ceiling is None and lim.effective == 8  # back to the share, no further
    assert peak == 8


async def test_other_errors_are_raised_at_once_and_rate_limits_after_the_retries(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lim = Limiter(4)
    calls = 0

    async def broken() -> None:
        nonlocal calls
        calls += 1
        raise ProviderError("HTTP 500", status=500, retryable=True)

    with pytest.raises(ProviderError, match="500"):
        await lim.run(broken)
    assert calls == 1 and lim.ceiling is None and lim.in_flight == 0

    monkeypatch.setattr(limiter_module, "RATE_LIMIT_RETRIES", 3)
    calls = 0

    async def always_limited() -> None:
        nonlocal calls
        calls += 1
        raise limited(0.0)

    monkeypatch.setattr(limiter_module, "BACKOFF_BASE", 0.001)
    with pytest.raises(ProviderError, match="rate limited"):
        await lim.run(always_limited)
    assert calls == 4 and lim.in_flight == 0 and lim.ceiling == 1


async def test_the_demand_of_a_replica_is_capped_by_its_ceiling() -> None:
    lim = Limiter(10)
    lim.backoff(0.0)
    gate = asyncio.Event()

    async def call() -> None:
        await gate.wait()

    tasks = [asyncio.ensure_future(lim.run(call)) for _ in range(6)]
    await asyncio.sleep(0.01)
    assert lim.in_flight == 1 and lim.demand == 1  # it does not ask for permits it cannot use
    gate.set()
    await asyncio.gather(*tasks)


async def test_a_cancelled_waiter_during_a_pause_takes_no_permit() -> None:
    lim = Limiter(2)
    lim.backoff(5.0)
    task = asyncio.ensure_future(lim.acquire())
    await asyncio.sleep(0.01)
    assert not task.done()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert lim.in_flight == 0


# ---- the openai provider hands rate limits over ---------------------------------------------


@pytest.fixture
async def endpoint(aiohttp_server: Any) -> Any:
    answers: list[web.Response] = []

    async def handle(request: web.Request) -> web.Response:
        if answers:
            return answers.pop(0)
        return web.json_response(
            {"model": "m", "choices": [{"message": {"role": "assistant", "content": "hi"}}]}
        )

    app = web.Application()
    app.router.add_post("/v1/chat/completions", handle)
    server = await aiohttp_server(app)
    return answers, str(server.make_url("/v1"))


def _limit(status: int, headers: dict[str, str]) -> web.Response:
    return web.json_response({"error": {"message": "slow down"}}, status=status, headers=headers)


async def test_a_deferring_provider_raises_rate_limits_with_their_hint(endpoint: Any) -> None:
    answers, url = endpoint
    provider = OpenAIProvider(base_url=url, model="m", defer_rate_limits=True, max_retries=2)
    try:
        answers.append(_limit(429, {"retry-after-ms": "250"}))
        with pytest.raises(ProviderError) as info:
            await provider.chat(MESSAGES)
        assert info.value.rate_limited and info.value.retry_after == 0.25
        assert info.value.status == 429 and "slow down" in str(info.value)
        answers.append(_limit(503, {"Retry-After": "2"}))
        with pytest.raises(ProviderError) as info:
            await provider.chat(MESSAGES)
        assert info.value.rate_limited and info.value.retry_after == 2.0
        answers.append(_limit(429, {}))
        with pytest.raises(ProviderError) as info:
            await provider.chat(MESSAGES)
        assert info.value.rate_limited and info.value.retry_after is None
        answers.append(_limit(503, {}))  # a 503 without a hint is an outage: retried here
        assert (await provider.chat(MESSAGES)).text == "hi"
    finally:
        await provider.aclose()


async def test_the_limiter_runs_a_rate_limited_provider_call_again(endpoint: Any) -> None:
    answers, url = endpoint
    provider = OpenAIProvider(base_url=url, model="m", defer_rate_limits=True)
    lim = Limiter(4)
    try:
        answers += [_limit(429, {"retry-after-ms": "20"}), _limit(429, {"retry-after-ms": "20"})]
        completion = await lim.run(lambda: provider.chat(MESSAGES))
        assert completion.text == "hi" and lim.rate_limited == 2
    finally:
        await provider.aclose()


def test_the_servers_providers_defer_their_rate_limits() -> None:
    providers = Providers(ServerConfig(llm="echo"))
    provider = providers.get(ProviderConfig(kind="openai", base_url="http://x/v1", model="m"))
    assert isinstance(provider, OpenAIProvider) and provider.defer_rate_limits
    assert OpenAIProvider(model="m").defer_rate_limits is False
