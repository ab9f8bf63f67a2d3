"""LLM configs: create (all keys), masking, 409, validation, delete."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path
from typing import Any

import pytest

OFFICIAL: dict[str, Any] = {
    "name": "L", "description": "", "llm_model_name": "gpt", "llm_base_url": None,
    "api_key": "sk-live-abcdefghijklmnopqrstuvwxyz", "api_version": None, "max_connections": 10,
    "inference_type": "openai", "max_retries": None, "timeout": None, "system_message": None,
    "max_tokens": None, "top_p": None, "temperature": 0.5, "best_of": None, "top_k": None,
    "logprobs": None, "top_logprobs": None, "reasoning_effort": None, "verbosity": None,
    "custom_api_config": None, "custom_response_parser": None, "input_price_per_mtok": None,
    "output_price_per_mtok": None,
}


async def test_create_get_list_delete(
    client: Any, db_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"{client.P}/llm_configs"
    with caplog.at_level(logging.DEBUG, logger="elluminate"):
        cfg = await client.ok("POST", url, 201, json=OFFICIAL)
    assert cfg["api_key"] == "****wxyz"
    assert OFFICIAL["api_key"] not in caplog.text
    for key, value in OFFICIAL.items():
        if key != "api_key":
            assert cfg[key] == value, key
    assert await client.ok("GET", f"{url}/{cfg['id']}") == cfg
    by_name = await client.ok("GET", f"{url}?name=L")
    assert by_name["items"] == [cfg] and by_name["count"] == 1
    assert (await client.ok("GET", f"{url}?name=MISSING"))["items"] == []
    # the key is stored in full (for calling the model), only the answers mask it
    conn = sqlite3.connect(db_path)
    assert conn.execute("SELECT api_key FROM llm_configs").fetchone()[0] == OFFICIAL["api_key"]
    conn.close()

    assert "already exists" in await client.err("POST", url, 409, json=OFFICIAL)
    assert client.last_error_body["llm_config_id"] == cfg["id"]
    await client.ok("DELETE", f"{url}/{cfg['id']}", 204)
    await client.err("GET", f"{url}/{cfg['id']}", 404)
    await client.err("DELETE", f"{url}/{cfg['id']}", 404)


async def test_minimal_body_and_short_keys(client: Any) -> None:
    url = f"{client.P}/llm_configs"
    cfg = await client.ok("POST", url, json={"name": "M", "llm_model_name": "m", "api_key": "k"})
    assert cfg["api_key"] == "****" and cfg["inference_type"] == "openai"
    assert cfg["max_connections"] == 10 and cfg["description"] == ""
    no_key = await client.ok("POST", url, json={"name": "N", "llm_model_name": "m"})
    assert no_key["api_key"] is None
    full = await client.ok("POST", url, json={
        "name": "F", "llm_model_name": "m", "inference_type": "custom_api",
        "reasoning_effort": "low", "verbosity": "high", "logprobs": True,
        "custom_api_config": {"x": [1]}, "llm_base_url": "http://localhost:1/v1"})
    assert full["reasoning_effort"] == "low" and full["logprobs"] is True
    assert full["custom_api_config"] == {"x": [1]}


@pytest.mark.parametrize(
    ("changes", "needle"),
    [
        ({"inference_type": "magic"}, "inference_type"),
        ({"name": " "}, "name"),
        ({"llm_model_name": ""}, "llm_model_name"),
        ({"max_connections": 0}, "max_connections"),
        ({"temperature": 3.0}, "temperature"),
        ({"top_p": -1}, "top_p"),
        ({"llm_base_url": "ftp://x"}, "llm_base_url"),
        ({"reasoning_effort": "extreme"}, "reasoning_effort"),
        ({"timeout": "soon"}, "timeout"),
    ],
)
async def test_invalid_configs(client: Any, snapshot: Any, changes: Any, needle: str) -> None:
    before = snapshot()
    detail = await client.err("POST", f"{client.P}/llm_configs", 422, json={**OFFICIAL, **changes})
    assert needle in detail
    assert snapshot() == before


async def test_other_project_cannot_see_configs(client: Any, other: Any) -> None:
    cfg = await client.ok("POST", f"{client.P}/llm_configs", json=OFFICIAL)
    other_pid, headers = other
    base = f"/api/v0/projects/{other_pid}/llm_configs"
    await client.err("GET", f"{base}/{cfg['id']}", 404, headers=headers)
    assert (await client.ok("GET", f"{base}?name=L", headers=headers))["items"] == []
