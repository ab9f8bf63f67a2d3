"""Construction, credentials, version check, project resolution and lifecycle."""

from __future__ import annotations

import warnings

import pytest

from elluminate import AsyncClient, RetryConfig, alocal_client
from elluminate.exceptions import AuthenticationError, ConfigurationError, TransportError


async def test_connects_to_the_default_project(client, server):
    assert client.current_project is not None
    project_id = client.current_project.id
    assert client.project_route_prefix == f"{server.base_url}/api/v0/projects/{project_id}"
    assert client.current_project.organization.name
    assert server.base_url in client.get_info()
    assert server.api_key not in client.get_info()


async def test_check_version_is_accepted(client):
    await client.check_version()


async def test_wrong_key_raises_authentication_error(server):
    with pytest.raises(AuthenticationError) as info:
        async with AsyncClient(base_url=server.base_url, api_key="wrong-key"):
            pass
    assert info.value.status_code == 401
    assert info.value.message


async def test_credentials_from_environment(server, monkeypatch):
    monkeypatch.setenv("ELLUMINATE_API_KEY", server.api_key)
    monkeypatch.setenv("ELLUMINATE_BASE_URL", server.base_url)
    async with AsyncClient() as c:
        assert c.current_project is not None
        assert c.base_url == server.base_url


async def test_explicit_base_url_wins_over_environment(server, monkeypatch):
    monkeypatch.setenv("ELLUMINATE_BASE_URL", "http://127.0.0.1:9")
    async with AsyncClient(base_url=server.base_url + "/", api_key=server.api_key) as c:
        assert c.base_url == server.base_url


async def test_local_client_says_that_the_environment_wins(server, monkeypatch):
    monkeypatch.setenv("ELLUMINATE_BASE_URL", server.base_url)
    monkeypatch.setenv("ELLUMINATE_API_KEY", server.api_key)
    pattern = (
        r"^ELLUMINATE_BASE_URL is set \(http://[^)]+\), so the client connects there and no "
        r"local server is started: llm='local', echo_latency are ignored; unset "
        r"ELLUMINATE_BASE_URL to use an embedded server$"
    )
    with pytest.warns(UserWarning, match=pattern) as record:
        async with alocal_client(llm="local", echo_latency=0.1) as client:
            assert client.base_url == server.base_url
    assert [w.filename for w in record] == [__file__]  # it points at the caller's line
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing to ignore, nothing to say
        async with alocal_client() as client:
            assert client.base_url == server.base_url


async def test_local_client_without_the_environment_starts_a_server(monkeypatch):
    monkeypatch.delenv("ELLUMINATE_BASE_URL", raising=False)
    async with alocal_client(llm="echo") as client:
        template = await client.create_prompt_template(name="T", template="Hi {{x}}")
        assert template.name == "T"
        assert client.base_url.startswith("http://127.0.0.1:")


async def test_no_credentials_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("ELLUMINATE_API_KEY", raising=False)
    monkeypatch.delenv("ELLUMINATE_OAUTH_TOKEN", raising=False)
    with pytest.raises(ConfigurationError, match="ELLUMINATE_API_KEY"):
        AsyncClient(base_url="http://127.0.0.1:9")


async def test_bearer_token_auth(server):
    async with AsyncClient(
        base_url=server.base_url, token=server.api_key, fallback_to_newest=True
    ) as c:
        assert c.current_project is not None
        assert await c.list_prompt_templates() == []


async def test_skip_version_check(server):
    async with AsyncClient(
        base_url=server.base_url, api_key=server.api_key, skip_version_check=True
    ) as c:
        assert c.current_project is not None


async def test_unreachable_server_is_a_transport_error():
    with pytest.raises(TransportError):
        async with AsyncClient(
            base_url="http://127.0.0.1:9", api_key="k", retry_config=RetryConfig(max_attempts=1)
        ) as c:
            await c.list_prompt_templates()


async def test_close_is_idempotent(server):
    c = AsyncClient(base_url=server.base_url, api_key=server.api_key)
    await c.list_collections()
    await c.close()
    await c.close()


async def test_repr_hides_the_key(client, server):
    assert server.api_key not in repr(client)
