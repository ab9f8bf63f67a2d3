# DO NOT EDIT: generated from tests/_async/conftest.py by scripts/unasync.py; edit the _async original.
"""Client fixtures, written once for AsyncClient (tests/_sync gets the Client twin)."""

from __future__ import annotations

import pytest

from elluminate import Client


@pytest.fixture
def client(server):
    """A client connected to the test server's default project."""
    with Client(base_url=server.base_url, api_key=server.api_key) as c:
        yield c


@pytest.fixture
def template(client):
    return client.create_prompt_template(
        name="Explain", template="Explain {{topic}} briefly."
    )


@pytest.fixture
def collection(client):
    return client.create_collection(
        name="Topics", variables=[{"topic": "AI"}, {"topic": "ML"}]
    )
