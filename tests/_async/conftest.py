"""Client fixtures, written once for AsyncClient (tests/_sync gets the Client twin)."""

from __future__ import annotations

import pytest

from elluminate import AsyncClient


@pytest.fixture
async def client(server):
    """A client connected to the test server's default project."""
    async with AsyncClient(base_url=server.base_url, api_key=server.api_key) as c:
        yield c


@pytest.fixture
async def template(client):
    return await client.create_prompt_template(
        name="Explain", template="Explain {{topic}} briefly."
    )


@pytest.fixture
async def collection(client):
    return await client.create_collection(
        name="Topics", variables=[{"topic": "AI"}, {"topic": "ML"}]
    )
