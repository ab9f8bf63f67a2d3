"""Objects still referenced by experiments/prompts/ratings are hidden, never lost."""

from __future__ import annotations

from typing import Any

import pytest

from elluminate.server.api.http import DB_KEY
from elluminate.server.store.database import Database, now
from elluminate.server.store.views import Views


@pytest.mark.sqlite_only  # writes through the SQLite connection itself
async def test_referenced_objects_are_hidden_not_deleted(client: Any) -> None:
    p = client.P
    pt = await client.ok("POST", f"{p}/prompt_templates", json={
        "name": "T", "messages": [{"role": "user", "content": "{{topic}}"}]})
    coll = await client.ok("POST", f"{p}/collections", json={
        "name": "C", "variables": [{"topic": "a"}, {"topic": "b"}]})
    cs = await client.ok("POST", f"{p}/criterion_sets", json={
        "name": "S", "criteria": [{"criterion_str": "ok?", "label": None}]})
    llm = await client.ok("POST", f"{p}/llm_configs", json={"name": "L", "llm_model_name": "m"})
    row_id = coll["variables"][0]["id"]
    crit_id = cs["criteria"][0]["id"]

    db: Database = client.server.app[DB_KEY]
    ts = now()
    raw = db.conn  # the store's sqlite3 connection: rows written directly, as a run would

    def insert(sql: str, params: tuple[Any, ...]) -> int:
        return int(raw.execute(sql + " RETURNING id", params).fetchone()[0])

    raw.execute("BEGIN IMMEDIATE")
    exp = insert(
        "INSERT INTO experiments (project_id, name, prompt_template_id, collection_id, "
        "criterion_set_id, llm_config_id, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?)",
        (client.pid, "E", pt["id"], coll["id"], cs["id"], llm["id"], ts, ts),
    )
    prompt = insert(
        "INSERT INTO prompts (project_id, experiment_id, prompt_template_id, "
        "template_variables_id, messages, created_at) VALUES (?,?,?,?,?,?)",
        (client.pid, exp, pt["id"], row_id, "[]", ts),
    )
    response = insert(
        "INSERT INTO responses (project_id, experiment_id, prompt_id, epoch, messages, "
        "created_at, updated_at) VALUES (?,?,?,?,?,?,?)",
        (client.pid, exp, prompt, 1, "[]", ts, ts),
    )
    insert(
        "INSERT INTO ratings (project_id, response_id, criterion_id, rating, created_at) "
        "VALUES (?,?,?,?,?)",
        (client.pid, response, crit_id, "YES", ts),
    )
    raw.execute("COMMIT")

    # edit the rated criterion: a new version replaces it, the old one stays for the rating
    edited = await client.ok("PUT", f"{p}/criteria/{crit_id}", json={"criterion_str": "fine?"})
    assert edited["id"] != crit_id
    await client.ok("DELETE", f"{p}/criteria/{edited['id']}", 204)
    await client.ok("DELETE", f"{p}/collections/{coll['id']}/entries", 204)
    await client.ok("DELETE", f"{p}/collections/{coll['id']}", 204)
    await client.ok("DELETE", f"{p}/prompt_templates/{pt['id']}", 204)
    await client.ok("DELETE", f"{p}/criterion_sets/{cs['id']}", 204)
    await client.ok("DELETE", f"{p}/llm_configs/{llm['id']}", 204)

    # gone for the API ...
    await client.err("GET", f"{p}/collections/{coll['id']}", 404)
    await client.err("GET", f"{p}/prompt_templates/{pt['id']}", 404)
    await client.err("GET", f"{p}/criterion_sets/{cs['id']}", 404)
    await client.err("GET", f"{p}/llm_configs/{llm['id']}", 404)
    await client.err("GET", f"{p}/criteria/{crit_id}", 404)
    for path in ("collections", "prompt_templates", "criterion_sets", "llm_configs", "criteria"):
        assert (await client.ok("GET", f"{p}/{path}"))["count"] == 0, path
    # ... names are free again ...
    await client.ok("POST", f"{p}/collections", json={"name": "C"})
    await client.ok("POST", f"{p}/criterion_sets", json={"name": "S", "criteria": None})
    await client.ok("POST", f"{p}/llm_configs", json={"name": "L", "llm_model_name": "m"})
    again = await client.ok("POST", f"{p}/prompt_templates", json={
        "name": "T", "messages": [{"role": "user", "content": "{{topic}}"}]})
    assert again["version"] == 2  # versions never repeat

    # ... but everything the experiment points at is still there for its views
    async with db.connect() as conn:
        views = Views(conn, client.pid)
        assert (await views.collection(coll["id"], include_deleted=True)).name == "C"
        entry = await views.template_variables(row_id, include_deleted=True)
        assert entry.input_values == {"topic": "a"}
        assert (await views.prompt_template(pt["id"], include_deleted=True)).name == "T"
        kept = await views.criterion_set(cs["id"], include_deleted=True)
        assert [c.id for c in kept.criteria or []] == []  # the edited version was removed
        assert (await views.criterion(crit_id, include_deleted=True)).criterion_str == "ok?"
        assert (await views.llm_config(llm["id"], include_deleted=True)).name == "L"
    # the unreferenced second row was really deleted
    remaining = raw.execute(
        "SELECT COUNT(*) FROM template_variables WHERE collection_id = ?", (coll["id"],)
    ).fetchone()[0]
    assert remaining == 1
