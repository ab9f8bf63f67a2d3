# DO NOT EDIT: generated from tests/faults/_async/conftest.py by scripts/unasync.py; edit the _async original.
"""Client fixtures for the fault matrix, written once for AsyncClient (tests/faults/_sync gets
the Client twin). ``client`` talks to the server through the fault proxy with fast retries;
``direct`` talks to the server itself, to count rows without going through any fault.
"""

from __future__ import annotations

import pytest

from elluminate import Client, RetryConfig

FAST_RETRIES = RetryConfig(min_wait=0.01, max_wait=0.05, jitter=0)


@pytest.fixture
def client(proxy, server):
    with Client(
        base_url=proxy.base_url,
        api_key=server.api_key,
        retry_config=FAST_RETRIES,
        timeout=5.0,
        skip_version_check=True,
    ) as c:
        yield c
    assert proxy.pending() == 0, "a scripted fault was never used"


@pytest.fixture
def direct(server):
    with Client(
        base_url=server.base_url, api_key=server.api_key, skip_version_check=True
    ) as c:
        yield c
