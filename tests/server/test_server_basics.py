"""Health, version, projects, auth, error handling, database and bootstrap."""

from __future__ import annotations

import hashlib
import logging
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from elluminate.server import ServerConfig, create_app
from elluminate.server.api.http import DB_KEY
from elluminate.server.app import NEW_API_KEY
from elluminate.server.store.database import Database
from elluminate.server.store.migrate import HEAD


async def test_health_needs_no_key(aiohttp_client: Any, config: ServerConfig) -> None:
    anon = await aiohttp_client(create_app(config))
    body = await anon.ok("GET", "/")
    assert body["status"] == "ok" and isinstance(body["version"], str)


async def test_version_check_accepts_any_version(aiohttp_client: Any, config: ServerConfig) -> None:
    anon = await aiohttp_client(create_app(config))
    for payload in ({"current_sdk_version": "1.5.2"}, {"current_sdk_version": "0.0.1-weird"}):
        body = await anon.ok("POST", "/api/v0/version/compatible", json=payload)
        assert body == {"is_compatible": True, "required_sdk_version": "1.0.0"}


async def test_auth_missing_wrong_and_bearer(aiohttp_client: Any, config: ServerConfig) -> None:
    anon = await aiohttp_client(create_app(config))
    detail = await anon.err("GET", "/api/v0/projects", 401)
    assert "X-API-Key" in detail
    await anon.err("GET", "/api/v0/projects", 401, headers={"X-API-Key": "wrong"})
    await anon.err("GET", "/api/v0/projects", 401, headers={"Authorization": "Bearer wrong"})
    await anon.err("GET", "/api/v0/projects", 401, headers={"Authorization": "Basic x"})
    body = await anon.ok("GET", "/api/v0/projects", headers={"Authorization": f"Bearer {anon.key}"})
    assert body["count"] == 1
    # unknown routes do not reveal themselves without a key either
    await anon.err("GET", "/api/v0/projects/1/nope", 401)


async def test_projects_list_get_create(client: Any) -> None:
    listing = await client.ok("GET", "/api/v0/projects")
    assert listing["count"] == 1 and listing["items"][0]["id"] == client.pid
    project = listing["items"][0]
    org = project["organization"]
    for key in ("id", "name", "domain", "stripe_subscription_id", "created_at", "updated_at"):
        assert key in org
    assert project["created_at"].endswith("Z")
    assert await client.ok("GET", client.P) == project

    created = await client.ok(
        "POST",
        "/api/v0/projects",
        json={"name": " newp ", "description": "", "organization_id": org["id"],
              "public_in_org": True},
    )
    assert created["name"] == "newp" and created["public_in_org"] is True
    assert created["api_key"]
    # the creating key still sees only its own project ...
    assert [p["id"] for p in (await client.ok("GET", "/api/v0/projects"))["items"]] == [client.pid]
    await client.err("GET", f"/api/v0/projects/{created['id']}", 404)
    # ... and the new key sees only the new one
    mine = await client.ok("GET", "/api/v0/projects", headers={"X-API-Key": created["api_key"]})
    assert [p["id"] for p in mine["items"]] == [created["id"]]

    await client.err("POST", "/api/v0/projects", 422, json={"name": "  "})
    await client.err("POST", "/api/v0/projects", 404, json={"name": "x", "organization_id": 999})


async def test_other_projects_objects_are_404(
    client: Any, other: tuple[int, dict[str, str]]
) -> None:
    other_pid, other_headers = other
    pt = await client.ok("POST", f"{client.P}/prompt_templates",
                         json={"name": "T", "messages": [{"role": "user", "content": "hi"}]})
    # the other key cannot use our project path at all
    await client.err("GET", f"{client.P}/prompt_templates", 404, headers=other_headers)
    # nor reach our object through its own project path
    base = f"/api/v0/projects/{other_pid}"
    await client.err("GET", f"{base}/prompt_templates/{pt['id']}", 404, headers=other_headers)
    await client.err("DELETE", f"{base}/prompt_templates/{pt['id']}", 404, headers=other_headers)
    listing = await client.ok("GET", f"{base}/prompt_templates", headers=other_headers)
    assert listing == {"items": [], "count": 0}
    # and our key cannot use the other project's path
    await client.err("GET", f"{base}/prompt_templates", 404)


async def test_unknown_route_wrong_method_and_bad_ids(client: Any) -> None:
    assert "no route" in await client.err("GET", f"{client.P}/nope", 404)
    detail = await client.err("PATCH", f"{client.P}/prompt_templates", 405)
    assert "allowed" in detail
    await client.err("GET", f"{client.P}/prompt_templates/abc", 404)
    await client.err("GET", f"{client.P}/prompt_templates/0", 404)
    await client.err("GET", f"{client.P}/prompt_templates/99999999999999999999999", 404)
    await client.err("GET", "/api/v0/projects/abc", 404)


@pytest.mark.parametrize("page", ["0", "-1", "x", "1.5", ""])
async def test_page_must_be_positive_int(client: Any, page: str) -> None:
    detail = await client.err("GET", f"{client.P}/prompt_templates?page={page}", 422)
    assert "page" in detail


async def test_bad_json_bodies(client: Any, snapshot: Any) -> None:
    before = snapshot()
    url = f"{client.P}/prompt_templates"
    assert "not valid JSON" in await client.err("POST", url, 422, data=b"{nope")
    assert "empty" in await client.err("POST", url, 422, data=b"")
    assert "JSON object" in await client.err("POST", url, 422, json=[1, 2])
    detail = await client.err("POST", url, 422, json={"name": 3, "messages": []})
    assert "name" in detail and "str" in detail
    detail = await client.err("POST", url, 422, json={"messages": []})
    assert "name" in detail
    detail = await client.err("POST", url, 422, json={"name": "x", "messages": [{"role": 1}]})
    assert "messages[0].role" in detail
    assert snapshot() == before


async def test_body_too_large(aiohttp_client: Any, db_path: Path) -> None:
    config = ServerConfig(db_path=db_path, api_key="k" * 12, client_max_size=1024)
    client = await aiohttp_client(create_app(config), headers={"X-API-Key": "k" * 12})
    detail = await client.err("POST", f"{client.P}/prompt_templates", 413, data=b"x" * 5000)
    assert "too large" in detail


@pytest.mark.sqlite_only  # writes through the SQLite connection itself
async def test_unexpected_errors_are_500_without_leak(
    client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    db: Database = client.server.app[DB_KEY]
    db.conn.execute("DROP TABLE llm_configs")
    with caplog.at_level(logging.ERROR, logger="elluminate.server.api.errors"):
        detail = await client.err("GET", f"{client.P}/llm_configs", 500)
    assert detail == "internal error"
    assert any("llm_configs" in r.getMessage() or r.exc_info for r in caplog.records)


async def test_schema_and_pragmas(client: Any, db_path: Path) -> None:
    raw = client.server.app[DB_KEY].conn  # the store's sqlite3 connection

    def fetchall(sql: str) -> list[Any]:
        return raw.execute(sql).fetchall()

    def fetchval(sql: str) -> Any:
        return raw.execute(sql).fetchone()[0]

    assert fetchval("SELECT version_num FROM alembic_version") == HEAD
    assert fetchval("PRAGMA journal_mode") == "wal"
    assert fetchval("PRAGMA foreign_keys") == 1
    assert fetchval("PRAGMA temp_store") == 2  # MEMORY: statement journals off the disk
    tables = {r[0] for r in fetchall("SELECT name FROM sqlite_master WHERE type='table'")}
    for table in (
        "organizations", "projects", "api_keys", "prompt_templates", "collections",
        "collection_columns", "template_variables", "criterion_sets", "criteria",
        "criterion_set_criteria", "criterion_set_prompt_templates", "llm_configs",
        "experiments", "prompts", "responses", "ratings", "tasks", "task_logs",
        "alembic_version",
    ):
        assert table in tables
    # every foreign key column is indexed
    for table in tables:
        fks = fetchall(f"PRAGMA foreign_key_list({table})")
        indexed = set()
        for index in fetchall(f"PRAGMA index_list({table})"):
            cols = fetchall(f"PRAGMA index_info({index['name']})")
            if cols:
                indexed.add(cols[0]["name"])
        for fk in fks:
            assert fk["from"] in indexed, f"{table}.{fk['from']} has no index"


def test_open_and_close_are_idempotent(tmp_path: Path) -> None:
    db = Database(tmp_path / "t.db")
    db.open()
    db.open()
    db.close()
    db.close()


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    db = Database(path)
    db.open()
    db.conn.execute("UPDATE alembic_version SET version_num = '9999'")
    db.close()
    with pytest.raises(RuntimeError, match="newer version migrated it"):
        Database(path).open()


async def test_bootstrap_key_generated_once(aiohttp_client: Any, db_path: Path) -> None:
    seen: list[str] = []
    config = ServerConfig(db_path=db_path, on_new_api_key=seen.append)
    first = await aiohttp_client(create_app(config))
    key = first.server.app[NEW_API_KEY]
    assert key and seen == [key]
    await first.ok("GET", "/api/v0/projects", headers={"X-API-Key": key})
    await first.close()

    second = await aiohttp_client(create_app(ServerConfig(db_path=db_path,
                                                          on_new_api_key=seen.append)))
    assert second.server.app[NEW_API_KEY] is None and seen == [key]
    await second.ok("GET", "/api/v0/projects", headers={"X-API-Key": key})
    # only the hash is stored
    conn = sqlite3.connect(db_path)
    stored = [r[0] for r in conn.execute("SELECT key_hash FROM api_keys")]
    conn.close()
    assert stored == [hashlib.sha256(key.encode()).hexdigest()]
    await second.close()

    # --api-key replaces the bootstrap key
    third = await aiohttp_client(create_app(ServerConfig(db_path=db_path, api_key="fixed-key-123")))
    await third.err("GET", "/api/v0/projects", 401, headers={"X-API-Key": key})
    await third.ok("GET", "/api/v0/projects", headers={"X-API-Key": "fixed-key-123"})


def test_config_validation() -> None:
    with pytest.raises(ValueError):
        ServerConfig(llm="nope")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        ServerConfig(page_size=0)
    with pytest.raises(ValueError):
        ServerConfig(api_key=" ")
    assert "secret" not in repr(ServerConfig(api_key="secret", llm_api_key="secret"))
