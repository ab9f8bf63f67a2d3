"""Shared fixtures: a real local server (echo provider, temporary SQLite) per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from elluminate.server import LocalServer


@pytest.fixture
def server(tmp_path) -> Iterator[LocalServer]:  # type: ignore[no-untyped-def]
    """A running local server with the deterministic echo provider."""
    with LocalServer(db_path=tmp_path / "elluminate.db", llm="echo") as srv:
        yield srv
