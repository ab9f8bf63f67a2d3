"""docs/server.md names every CLI flag, its environment variable and the pytest fixtures."""

from __future__ import annotations

import argparse
import dataclasses
import re
from pathlib import Path

import pytest

from elluminate import pytest_plugin
from elluminate.server import ServerConfig, cli

DOC = Path(__file__).resolve().parents[2] / "docs" / "server.md"


@pytest.fixture(scope="module")
def doc() -> str:
    return DOC.read_text(encoding="utf-8")


def parser_options() -> list[argparse.Action]:
    parser = cli.build_parser()
    return [a for a in parser._actions if a.option_strings and a.dest != "help"]


def test_every_cli_flag_and_env_var_is_documented(doc: str) -> None:
    options = parser_options()
    assert len(options) >= 14
    for action in options:
        for flag in action.option_strings:
            assert f"`{flag}`" in doc, f"docs/server.md does not document {flag}"
            env = cli._env_name(flag)
            assert f"`{env}`" in doc, f"docs/server.md does not name {env}"


def test_documented_flags_exist(doc: str) -> None:
    """No stale flag in the table: every `--flag` row is a real option."""
    real = {flag for action in parser_options() for flag in action.option_strings}
    rows = set(re.findall(r"^\| `(--[a-z-]+)` \|", doc, flags=re.MULTILINE))
    assert rows == real


def test_documented_defaults_match_the_code(doc: str) -> None:
    config = ServerConfig()
    assert f"| `{config.host}` |" in doc
    assert f"| `{config.port}` |" in doc
    assert f"| `{config.db_path}` |" in doc
    assert f"| `{config.page_size}` |" in doc
    assert f"| `{config.max_queued_tasks}` |" in doc
    assert config.client_max_size == 32 * 1024 * 1024 and "32 MiB" in doc


def test_config_fields_without_a_flag_are_mentioned(doc: str) -> None:
    flagged = {action.dest for action in parser_options()}
    internal = {"on_new_api_key"}
    for field in dataclasses.fields(ServerConfig):
        if field.name in flagged or field.name in internal:
            continue
        assert f"`{field.name}`" in doc, f"ServerConfig.{field.name} is not in docs/server.md"


def test_pytest_fixtures_are_documented(doc: str) -> None:
    fixtures = [
        name
        for name in dir(pytest_plugin)
        if name.startswith("elluminate_") and callable(getattr(pytest_plugin, name))
    ]
    assert set(fixtures) >= {
        "elluminate_server",
        "elluminate_client",
        "elluminate_async_client",
        "elluminate_server_options",
    }
    for name in fixtures:
        assert f"`{name}`" in doc, f"fixture {name} is not in docs/server.md"


def test_doc_mentions_providers_security_and_connection(doc: str) -> None:
    for needle in (
        "SmolLM2-135M", "llama-cpp-python", "one call at a time", "demo-grade",
        "`--llm-base-url`", "ECHO_FAIL", "ECHO_NO", "LocalServer", "/openapi.json",
        "skip_version_check", "base_url", "hmac.compare_digest", "127.0.0.1", "413",
    ):
        assert needle in doc, needle


def test_no_machine_paths_in_the_doc(doc: str) -> None:
    assert "/work/" not in doc and "/home/" not in doc and "/tmp/" not in doc
