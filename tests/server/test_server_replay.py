"""Replay the official SDK's captured requests against our server (wire compatibility).

Every request of ``official-requests.jsonl`` whose path this server part serves is sent
unchanged except for ids (the capture's stub answered fixed ids) and the credential.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

GOLDEN_DIR = Path(__file__).resolve().parents[1] / "golden"  # tests/golden, see its README
GOLDEN = GOLDEN_DIR / "official-requests.jsonl"
EXAMPLES = GOLDEN_DIR / "response-examples.json"

SERVED = {"prompt_templates", "collections", "criteria", "criterion_sets", "llm_configs"}
# golden id -> which object of ours it stands for
GOLDEN_IDS = {11: "template", 21: "collection", 31: "criterion_set", 61: "llm_config"}
SEGMENT_KIND = {
    "prompt_templates": "template",
    "collections": "collection",
    "criterion_sets": "criterion_set",
    "llm_configs": "llm_config",
}
KEY_KIND = {
    "prompt_template_id": "template",
    "compatible_prompt_template_id": "template",
    "collection_id": "collection",
    "compatible_collection_id": "collection",
    "criterion_set_id": "criterion_set",
    "llm_config_id": "llm_config",
}


def served(path: str) -> bool:
    if path in ("/api/v0/version/compatible", "/api/v0/projects"):
        return True
    match = re.fullmatch(r"/api/v0/projects/\d+(/.*)?", path)
    if not match:
        return False
    rest = match.group(1)
    return rest is None or rest.split("/")[1] in SERVED


def load_golden() -> list[dict[str, Any]]:
    return [json.loads(line) for line in GOLDEN.read_text().splitlines() if line.strip()]


class Rewriter:
    """Maps the capture's fixed ids to the ids our server handed out."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.ids: dict[str, int] = {}

    def map_id(self, kind: str, value: int) -> int:
        return self.ids.get(kind, value)

    def path(self, path: str) -> str:
        parts = path.split("/")
        for i, part in enumerate(parts):
            if part.isdigit() and i > 0:
                if parts[i - 1] == "projects":
                    parts[i] = str(self.pid)
                elif parts[i - 1] in SEGMENT_KIND:
                    parts[i] = str(self.map_id(SEGMENT_KIND[parts[i - 1]], int(part)))
        return "/".join(parts)

    def value(self, key: str, value: Any) -> Any:
        kind = KEY_KIND.get(key)
        if kind and isinstance(value, int):
            return self.map_id(kind, value)
        if kind and isinstance(value, str) and value.isdigit():
            return str(self.map_id(kind, int(value)))
        return value

    def body(self, body: Any) -> Any:
        if isinstance(body, dict):
            return {k: self.value(k, self.body(v)) for k, v in body.items()}
        if isinstance(body, list):
            return [self.body(v) for v in body]
        return body

    def learn(self, method: str, path: str, body: Any, answer: Any) -> None:
        """Remember the ids of the objects the capture refers to by fixed ids."""
        if method != "POST" or not isinstance(answer, dict) or "id" not in answer:
            return
        name = body.get("name") if isinstance(body, dict) else None
        wanted = {"template": "T", "collection": "C", "criterion_set": "CS", "llm_config": "L"}
        segment = path.rstrip("/").split("/")[-1]
        kind = SEGMENT_KIND.get(segment)
        if kind and name == wanted[kind] and kind not in self.ids:
            self.ids[kind] = answer["id"]


async def test_official_requests_are_accepted(client: Any) -> None:
    rewriter = Rewriter(client.pid)
    replayed = 0
    generation_posts = 0
    for request in load_golden():
        path = request["path"]
        if not served(path):
            continue
        method = request["method"]
        headers = {
            k: v
            for k, v in request["headers"].items()
            if k.lower() not in ("content-length", "host", "x-api-key", "authorization")
        }
        headers["X-API-Key"] = client.key
        query = [(k, rewriter.value(k, v)) for k, vs in request["query"].items() for v in vs]
        body = request["body"]
        kwargs: dict[str, Any] = {"headers": headers, "params": query}
        if isinstance(body, str):
            kwargs["data"] = body.encode()
        elif body is not None:
            body = rewriter.body(body)
            kwargs["data"] = json.dumps(body).encode()
        url = rewriter.path(path)
        resp = await client.request(method, url, **kwargs)
        text = await resp.text()
        is_generation = (
            path.endswith("/criteria") and isinstance(body, dict) and body.get("criteria") is None
        )
        if is_generation:
            generation_posts += 1
        if is_generation and generation_posts == 2:
            # get_or_generate_criteria after generate_criteria: the SDK expects 409 here
            assert resp.status == 409, text
            assert json.loads(text)["prompt_template_id"] == rewriter.ids["template"]
        else:
            assert 200 <= resp.status < 300, f"{method} {url} {query} -> {resp.status}: {text}"
        answer = json.loads(text) if text else None
        rewriter.learn(method, url, body, answer)
        replayed += 1
    assert replayed >= 40
    assert set(rewriter.ids) == {"template", "collection", "criterion_set", "llm_config"}


def _missing_keys(example: Any, actual: Any, where: str = "$") -> list[str]:
    missing: list[str] = []
    if isinstance(example, dict):
        assert isinstance(actual, dict), f"{where}: expected an object, got {actual!r}"
        for key, value in example.items():
            if key not in actual:
                missing.append(f"{where}.{key}")
            elif actual[key] is not None and value is not None:
                missing += _missing_keys(value, actual[key], f"{where}.{key}")
    elif isinstance(example, list) and isinstance(actual, list) and example and actual:
        missing += _missing_keys(example[0], actual[0], f"{where}[0]")
    return missing


async def test_responses_have_every_key_of_the_examples(client: Any) -> None:
    examples = json.loads(EXAMPLES.read_text())
    p = client.P
    pt = await client.ok("POST", f"{p}/prompt_templates", json={
        "name": "T", "messages": [{"role": "user", "content": "Explain {{topic}}"}]})
    coll = await client.ok("POST", f"{p}/collections", json={
        "name": "C", "description": "", "read_only": False, "collection_type": "STANDARD",
        "variables": [{"topic": "AI"}]})
    cs = await client.ok("POST", f"{p}/criterion_sets", json={
        "name": "CS", "criteria": [{"criterion_str": "Is it good?", "label": None}]})
    await client.ok("PUT", f"{p}/criterion_sets/{cs['id']}/prompt_templates/{pt['id']}")
    llm = await client.ok("POST", f"{p}/llm_configs", json={
        "name": "L", "llm_model_name": "gpt", "api_key": "sk-abcdefghijklmnop"})
    entries = await client.ok("GET", f"{p}/collections/{coll['id']}/entries")
    answers = {
        "PROJ": await client.ok("GET", p),
        "PT": await client.ok("GET", f"{p}/prompt_templates/{pt['id']}"),
        "COLL": (await client.ok("GET", f"{p}/collections?page=1"))["items"][0],
        "COLLW": await client.ok("GET", f"{p}/collections/{coll['id']}"),
        "TV": entries["items"][0],
        "CRIT": (await client.ok("GET", f"{p}/criteria"))["items"][0],
        "CS": await client.ok("GET", f"{p}/criterion_sets/{cs['id']}"),
        "LLM": await client.ok("GET", f"{p}/llm_configs/{llm['id']}"),
    }
    answers["ORG"] = answers["PROJ"]["organization"]
    for name, actual in answers.items():
        assert not _missing_keys(examples[name], actual), (name, actual)
    assert answers["PT"]["criterion_set_id"] == cs["id"]
    assert answers["LLM"]["api_key"] == "****mnop"
