"""The LLM call cache (``--llm-cache``): keys, expiry, what is never cached, and re-runs of
identical experiments that call no provider, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from elluminate.server import ServerConfig, create_app
from elluminate.server.api.http import PROVIDERS_KEY
from elluminate.server.app import open_store
from elluminate.server.evaluation.cache import LLMCache, call_key
from elluminate.server.evaluation.generation import Generator, generate
from elluminate.server.evaluation.judging import Criterion, Judge, judge_one
from elluminate.server.evaluation.providers import (
    ChatParams,
    Completion,
    EchoProvider,
    ProviderError,
)
from elluminate.server.store import llm_cache as cache_rows
from elluminate.server.store.database import utcnow

P = "/api/v0/projects/1"
API_KEY = "test-key-0123456789"
MESSAGES = [{"role": "user", "content": "Explain tea"}]


class _Endpoint:
    """Stands for an OpenAI-compatible provider: what a key must tell apart."""

    def __init__(self, model: str = "m", base_url: str = "http://a/v1") -> None:
        self.name = "openai"
        self.model = model
        self.base_url = base_url


# ---- keys ------------------------------------------------------------------------------------


def test_identical_calls_share_a_key_and_every_part_of_a_call_changes_it() -> None:
    base = call_key("generation", _Endpoint(), MESSAGES, params=ChatParams(temperature=0.2))
    assert base == call_key(
        "generation", _Endpoint(), [dict(MESSAGES[0])], params=ChatParams(temperature=0.2)
    )
    different = [
        call_key("generation", _Endpoint(), MESSAGES, params=ChatParams(temperature=0.2), epoch=2),
        call_key("generation", _Endpoint(), MESSAGES, params=ChatParams(temperature=0.3)),
        call_key("generation", _Endpoint(), MESSAGES, params=ChatParams(0.2, top_p=0.9)),
        call_key("generation", _Endpoint(), MESSAGES, params=ChatParams(0.2, max_tokens=5)),
        call_key(
            "generation",
            _Endpoint(),
            [{"role": "user", "content": "Explain coffee"}],
            params=ChatParams(temperature=0.2),
        ),
        call_key(
            "generation",
            _Endpoint(),
            [{"role": "system", "content": "Be brief."}, *MESSAGES],
            params=ChatParams(temperature=0.2),
        ),
        call_key("generation", _Endpoint("other"), MESSAGES, params=ChatParams(temperature=0.2)),
        call_key(
            "generation",
            _Endpoint(base_url="http://b/v1"),
            MESSAGES,
            params=ChatParams(temperature=0.2),
        ),
        call_key("verdict", _Endpoint(), MESSAGES, params=ChatParams(temperature=0.2)),
        call_key(
            "generation",
            _Endpoint(),
            MESSAGES,
            params=ChatParams(temperature=0.2),
            json_schema={"title": "Verdict"},
        ),
    ]
    assert base not in different
    assert len(set(different)) == len(different)


def test_timeouts_and_retry_counts_are_not_part_of_the_key() -> None:
    a = call_key("generation", _Endpoint(), MESSAGES, params=ChatParams(timeout=5, max_retries=0))
    b = call_key("generation", _Endpoint(), MESSAGES, params=ChatParams(timeout=60, max_retries=4))
    assert a == b == call_key("generation", _Endpoint(), MESSAGES)


# ---- the store: both databases -------------------------------------------------------------


@pytest.fixture
async def store(db_target: Path | str) -> Any:
    db = open_store(ServerConfig(db_path=db_target))
    await db.start()
    yield db
    await db.stop()


async def test_entries_expire_and_are_replaced_and_purged(store: Any) -> None:
    now = utcnow()
    async with store.begin() as conn:
        await cache_rows.put(
            conn, "k", kind="generation", model="m", value='{"a":1}', now=now,
            expires=now + timedelta(seconds=60),
        )
        await cache_rows.put(
            conn, "old", kind="generation", model="m", value='{"a":0}', now=now,
            expires=now + timedelta(seconds=1),
        )
    async with store.connect() as conn:
        assert await cache_rows.get(conn, "k", now) == '{"a":1}'
        assert await cache_rows.get(conn, "k", now + timedelta(seconds=61)) is None
        assert await cache_rows.get(conn, "old", now + timedelta(seconds=2)) is None
        assert await cache_rows.get(conn, "missing", now) is None
    async with store.begin() as conn:  # the same key again: replaced, not duplicated
        await cache_rows.put(
            conn, "k", kind="generation", model="m", value='{"a":2}', now=now,
            expires=now + timedelta(seconds=60),
        )
    async with store.begin() as conn:
        assert await cache_rows.get(conn, "k", now) == '{"a":2}'
        assert await cache_rows.purge_expired(conn, now + timedelta(seconds=2)) == 1
        assert await cache_rows.count(conn) == 1


class _Limiter:
    def __init__(self) -> None:
        self.calls = 0

    async def llm(self, call: Any) -> Any:
        self.calls += 1
        return await call()


async def test_a_generation_is_cached_per_epoch_and_errors_are_not(store: Any) -> None:
    cache = LLMCache(store, ttl_seconds=3600)
    provider = EchoProvider()
    gen = Generator(provider=provider, params=ChatParams(temperature=0.5), cache=cache)
    limiter = _Limiter()
    first = await generate(limiter, gen, MESSAGES, epoch=1)
    again = await generate(limiter, gen, MESSAGES, epoch=1)
    other_epoch = await generate(limiter, gen, MESSAGES, epoch=2)
    assert provider.calls == 2 and limiter.calls == 2
    assert first[0] == again[0] == other_epoch[0]
    assert first[1] is not None and first[1].from_cache is False
    assert again[1] is not None and again[1].from_cache is True
    assert again[1].input_tokens == first[1].input_tokens
    assert other_epoch[1] is not None and other_epoch[1].from_cache is False

    failing = [{"role": "user", "content": "ECHO_FAIL please"}]
    for _ in range(2):
        messages, metadata, error = await generate(limiter, gen, failing)
        assert messages == [] and metadata is None and error and "ECHO_FAIL" in error
    assert provider.calls == 4  # the failure was asked twice: never cached
    assert (cache.stats.hits, cache.stats.stored) == (1, 2)


async def test_a_system_message_is_part_of_the_generation_key(store: Any) -> None:
    cache = LLMCache(store, ttl_seconds=3600)
    provider = EchoProvider()
    plain = Generator(provider=provider, cache=cache)
    with_system = Generator(provider=provider, system_message="Be brief.", cache=cache)
    await generate(_Limiter(), plain, MESSAGES)
    await generate(_Limiter(), with_system, MESSAGES)
    assert provider.calls == 2


class _Garbled:
    """A judge that answers no verdict at all until told otherwise."""

    name = "garbled"
    model = "g"

    def __init__(self) -> None:
        self.calls = 0
        self.fixed = False
        self.down = False

    async def chat(self, messages: Any, *, json_schema: Any = None, params: Any = None) -> Any:
        self.calls += 1
        if self.down:
            raise ProviderError("HTTP 503: try later", retryable=True, status=503)
        text = '{"reasoning": "fine", "rating": "yes"}' if self.fixed else "I cannot decide."
        return Completion(text, 10, 3, 0.01, self.model)

    async def aclose(self) -> None:
        pass


async def test_malformed_verdicts_and_provider_errors_are_never_cached(store: Any) -> None:
    cache = LLMCache(store, ttl_seconds=3600)
    provider = _Garbled()
    judge = Judge(provider=provider, cache=cache)  # type: ignore[arg-type]
    criterion = Criterion(id=1, text="Is it fine?", row_id=None)
    bad = await judge_one(_Limiter(), judge, criterion, {}, MESSAGES, "Tea is a drink.")
    assert bad.rating is None and bad.raw_text == "I cannot decide." and provider.calls == 3
    provider.down = True
    down = await judge_one(_Limiter(), judge, criterion, {}, MESSAGES, "Tea is a drink.")
    assert down.rating is None and "503" in (down.error or "") and provider.calls == 4
    provider.down, provider.fixed = False, True
    good = await judge_one(_Limiter(), judge, criterion, {}, MESSAGES, "Tea is a drink.")
    assert good.rating == "YES" and not good.from_cache and provider.calls == 5
    cached = await judge_one(_Limiter(), judge, criterion, {}, MESSAGES, "Tea is a drink.")
    assert cached.rating == "YES" and cached.reasoning == "fine" and cached.from_cache
    assert cached.metadata is not None and cached.metadata.from_cache is True
    assert provider.calls == 5
    next_epoch = await judge_one(_Limiter(), judge, criterion, {}, MESSAGES, "Tea is a drink.", 2)
    assert next_epoch.rating == "YES" and not next_epoch.from_cache and provider.calls == 6
    fast = Judge(provider=provider, detailed=False, cache=cache)  # type: ignore[arg-type]
    await judge_one(_Limiter(), fast, criterion, {}, MESSAGES, "Tea is a drink.")
    assert provider.calls == 7  # another mode asks another question


async def test_an_expired_answer_is_asked_again(store: Any) -> None:
    cache = LLMCache(store, ttl_seconds=3600)
    provider = EchoProvider()
    gen = Generator(provider=provider, cache=cache)
    await generate(_Limiter(), gen, MESSAGES)
    key = call_key("generation", provider, MESSAGES)
    async with store.begin() as conn:  # as if the time to live had passed
        await conn.execute(
            cache_rows.REPLACE,
            {
                "key": key, "kind": "generation", "model": "echo", "value": "{}",
                "now": utcnow() - timedelta(days=20), "expires": utcnow() - timedelta(days=6),
            },
        )
    _, metadata, _ = await generate(_Limiter(), gen, MESSAGES)
    assert provider.calls == 2 and metadata is not None and metadata.from_cache is False
    _, metadata, _ = await generate(_Limiter(), gen, MESSAGES)
    assert provider.calls == 2 and metadata is not None and metadata.from_cache is True


def test_the_time_to_live_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        ServerConfig(llm_cache=True, llm_cache_ttl=0)


# ---- end to end: a re-run of an identical experiment calls no provider ---------------------


async def _server(aiohttp_client: Any, db_target: Path | str, **options: Any) -> Any:
    """A test client (the ``Api`` of conftest.py, with ``ok``) of a server with ``options``."""
    config = ServerConfig(db_path=db_target, api_key=API_KEY, llm="echo", **options)
    return await aiohttp_client(create_app(config), headers={"X-API-Key": API_KEY})


async def _run(client: Any, h: Any, fx: Any, name: str, epochs: int) -> dict[str, Any]:
    exp = await h.create_experiment(
        client, fx, name, generate=True, n_epochs=epochs,
        generation_params={"temperature": 0.7, "top_p": None, "max_tokens": None},
    )
    final = await h.run_to_end(client, exp)
    assert final["status"] == "SUCCESS", final
    return await client.ok("GET", f"{P}/experiments/{exp['id']}")  # type: ignore[no-any-return]


async def test_a_rerun_of_an_identical_experiment_makes_no_provider_call(
    aiohttp_client: Any, db_target: Path | str, tasks_helpers: Any
) -> None:
    client = await _server(aiohttp_client, db_target, llm_cache=True)
    h = tasks_helpers
    rows = [{"topic": "AI"}, {"topic": "tea"}, {"topic": "cats ECHO_FAIL"}]
    fx = await h.make_fixture(client, rows=rows, criteria=["Is it clear?", "Is it short?"])
    provider = client.app[PROVIDERS_KEY].default()
    first = await _run(client, h, fx, "first", epochs=2)
    # 2 good rows x 2 epochs generated and rated twice each, the failing row asked twice
    assert provider.calls == 2 * 2 + 2 * 2 * 2 + 2
    assert first["results"]["num_cached_responses"] == 0
    assert first["results"]["num_cached_ratings"] == 0
    assert first["results"]["num_failed_responses"] == 2

    before = provider.calls
    second = await _run(client, h, fx, "second", epochs=2)
    assert provider.calls - before == 2  # only the failures are asked again
    results = second["results"]
    assert results["num_cached_responses"] == 4 and results["num_cached_ratings"] == 8
    assert results["mean_all_ratings"] == first["results"]["mean_all_ratings"]
    responses = await h.all_responses(client, second["id"])
    done = [r for r in responses if r["error"] is None]
    assert len(done) == 4 and sorted(r["epoch"] for r in done) == [1, 1, 2, 2]
    assert all(r["generation_metadata"]["from_cache"] is True for r in done)
    assert all(g["generation_metadata"]["from_cache"] is True for r in done for g in r["ratings"])

    third = await _run(client, h, fx, "third", epochs=3)  # a new epoch is a new sample
    assert provider.calls - before == 2 + 3 + 2 * (1 + 2)  # failures of 3 epochs, epoch 3
    assert third["results"]["num_cached_responses"] == 4


async def test_without_the_cache_a_rerun_calls_the_provider_again(
    aiohttp_client: Any, db_target: Path | str, tasks_helpers: Any
) -> None:
    client = await _server(aiohttp_client, db_target)
    h = tasks_helpers
    fx = await h.make_fixture(client, rows=[{"topic": "AI"}], criteria=["Is it clear?"])
    provider = client.app[PROVIDERS_KEY].default()
    await _run(client, h, fx, "first", epochs=1)
    second = await _run(client, h, fx, "second", epochs=1)
    assert provider.calls == 4
    assert second["results"]["num_cached_responses"] == 0
    responses = await h.all_responses(client, second["id"])
    assert responses[0]["generation_metadata"]["from_cache"] is False


def test_the_cache_is_off_by_default_and_set_by_flag_or_environment() -> None:
    from elluminate.server.cli import config_from_args

    assert config_from_args([], {}).llm_cache is False
    assert config_from_args([], {}).llm_cache_ttl == 14 * 86400
    assert config_from_args(["--llm-cache"], {}).llm_cache is True
    off = config_from_args(["--llm-cache", "false"], {"ELLUMINATE_SERVER_LLM_CACHE": "1"})
    assert off.llm_cache is False
    env = {"ELLUMINATE_SERVER_LLM_CACHE": "yes", "ELLUMINATE_SERVER_LLM_CACHE_TTL": "12h"}
    config = config_from_args([], env)
    assert config.llm_cache is True and config.llm_cache_ttl == 12 * 3600
    assert config_from_args(["--llm-cache-ttl", "90"], {}).llm_cache_ttl == 90
    with pytest.raises(SystemExit):
        config_from_args(["--llm-cache-ttl", "soon"], {})
    with pytest.raises(SystemExit):
        config_from_args([], {"ELLUMINATE_SERVER_LLM_CACHE": "maybe"})
