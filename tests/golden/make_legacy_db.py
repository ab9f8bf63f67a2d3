"""Fill a running server with a little of everything, over plain HTTP (no SDK).

How ``legacy-v1.db`` was made: the server of release 0.x at commit 58c6d3b (schema
version 1), started with ``python -m elluminate.server --llm echo --db legacy-v1.db
--api-key legacy-key-0123456789``, then ``python tests/golden/make_legacy_db.py URL KEY``,
then the server was stopped (Ctrl-C). Tests open a copy with the current server to check
that an old database migrates forward with its data.
"""

from __future__ import annotations

import sys
import time

import requests


def main(base_url: str, api_key: str) -> None:
    s = requests.Session()
    s.headers["X-API-Key"] = api_key
    p = f"{base_url}/api/v0/projects/1"

    def call(method: str, path: str, **kw: object) -> object:
        resp = s.request(method, p + path, **kw)  # type: ignore[arg-type]
        resp.raise_for_status()
        return resp.json() if resp.content else None

    template = call("POST", "/prompt_templates", json={
        "name": "Explainer", "messages": [{"role": "user", "content": "Explain {{topic}}"}]})
    collection = call("POST", "/collections", json={
        "name": "Topics", "variables": [{"topic": "DNS"}, {"topic": "ECHO_FAIL"},
                                        {"topic": "recursion"}]})
    rows = [v["id"] for v in collection["variables"]]  # type: ignore[index]
    cset = call("POST", "/criterion_sets", json={
        "name": "Checks", "criteria": [{"criterion_str": "Is it clear?"},
                                       {"criterion_str": "ECHO_NO Is it short?"}]})
    call("POST", "/criteria", json={
        "criterion_set_id": cset["id"], "template_variables_id": rows[2],  # type: ignore[index]
        "criteria": [{"criterion_str": "Does it mention recursion?"}]})
    call("PUT", f"/criterion_sets/{cset['id']}/prompt_templates/{template['id']}")  # type: ignore[index]
    exp = call("POST", "/experiments", json={
        "name": "First run", "prompt_template_id": template["id"],  # type: ignore[index]
        "collection_id": collection["id"], "criterion_set_id": cset["id"],  # type: ignore[index]
        "generate": True, "n_epochs": 2})
    while call("GET", f"/experiments/{exp['id']}")["generation_task_id"]:  # type: ignore[index]
        time.sleep(0.2)
    # two responses for one (row, epoch): allowed by this version, refused by later ones
    for text in ("uploaded once", "uploaded twice"):
        call("POST", "/responses", json={
            "experiment_id": exp["id"], "template_variables_id": rows[0],  # type: ignore[index]
            "epoch": 1, "messages": text})
    print("experiment", exp["id"], "rows", rows)  # type: ignore[index]


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
