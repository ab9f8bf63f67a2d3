"""Fixtures for the fault tests: ``proxy`` is a :class:`FaultProxy` in front of ``server``.

The suite runs with --import-mode=importlib, so ``proxy.py`` is loaded here by path and
registered as the module ``fault_proxy`` (tests import ``Fault`` from it).
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from elluminate.server import LocalServer


def _load_proxy_module() -> Any:
    name = "fault_proxy"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("proxy.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


fault_proxy = _load_proxy_module()


@pytest.fixture
def server(tmp_path) -> Iterator[LocalServer]:  # type: ignore[no-untyped-def]
    """The test server, with an echo LLM slow enough for a task to stream a few events: two
    calls at a time of 0.05 s each, so a run of 4 rows x 2 criteria takes about 0.3 s, several
    polling intervals of the stream tests even on a loaded machine."""
    with LocalServer(
        db_path=tmp_path / "elluminate.db", llm="echo", echo_latency=0.05, max_concurrency=2
    ) as srv:
        yield srv


@pytest.fixture
def proxy(server) -> Iterator[Any]:  # type: ignore[no-untyped-def]
    """A running fault proxy whose upstream is the test server."""
    with fault_proxy.FaultProxy(server.base_url) as p:
        yield p


@pytest.fixture
def blackhole() -> Iterator[Any]:
    """A port whose connects time out (never refused, never accepted)."""
    with fault_proxy.Blackhole() as hole:
        yield hole
