"""Bad input, table-driven (issue 6, item 4).

Every case is sent as raw HTTP (requests) and, where the SDK can express it, through the SDK.
Each must answer a 4xx whose ``detail`` names what to fix (``expect`` is a case-insensitive
substring of it), never a 5xx, and must leave the database unchanged (row counts of every
table). The SDK must raise an :class:`ElluminateError` subclass, or - for purely local
argument errors (``local=True``) - a plain ``ValueError`` before anything is sent.

Unicode and SQL-looking strings are valid input: they must round-trip unchanged and leave
every table intact (see the tests at the end).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from elluminate import Client
from elluminate.exceptions import (
    APIError,
    BadRequestError,
    ConflictError,
    ElluminateError,
    NotFoundError,
)
from elluminate.server import LocalServer

MB = 1024 * 1024
LIMIT = 16 * MB  # client_max_size of module_server (conftest.py)
HUGE = 2**70
MSG = [{"role": "user", "content": "Explain {{topic}}"}]
_MISSING: Any = object()


@dataclass
class Case:
    """One bad input: the raw request, the expected answer, and the SDK twin if any."""

    id: str
    method: str
    path: str  # formatted with the ids of `env` ({P} is the project prefix)
    expect: str  # substring of `detail` (case-insensitive): what to fix
    status: int | tuple[int, ...] = 422
    json: Any = _MISSING
    data: bytes | str | None = None
    headers: dict[str, str] | None = None
    params: dict[str, Any] | None = None
    files: dict[str, Any] | None = None
    sdk: Callable[[Client, dict[str, Any]], Any] | None = None
    sdk_error: type[BaseException] = BadRequestError
    local: bool = False  # the SDK refuses it itself (ValueError), nothing is sent
    tags: tuple[str, ...] = field(default_factory=tuple)


def _pt(**extra: Any) -> dict[str, Any]:
    return {"name": "bad", "messages": MSG, **extra}


def _coll(**extra: Any) -> dict[str, Any]:
    return {"name": "bad", "description": "", "read_only": False, "collection_type": "STANDARD",
            **extra}


def _llm(**extra: Any) -> dict[str, Any]:
    return {"name": "bad", "llm_model_name": "m", **extra}


def _exp(env: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"name": "bad-exp", "prompt_template_id": env["template_id"],
            "collection_id": env["collection_id"], "criterion_set_id": env["set_id"], **extra}


def _jsonl_upload(text: str | bytes) -> dict[str, Any]:
    return {"file": ("variables.jsonl", text, "application/jsonl")}


def _deep(levels: int) -> bytes:
    return b'{"name": "x", "messages": ' + b"[" * levels + b"]" * levels + b"}"


def _tool(name: str = "lookup") -> dict[str, Any]:
    return {"type": "function", "function": {"name": name, "parameters": {"type": "object"}}}


# Bodies that need ids are built lazily: `json` may be a callable taking `env`.
CASES: list[Case] = [
    # ---- prompt templates: types, missing fields, template syntax, names ----------------
    Case("template-name-wrong-type", "POST", "{P}/prompt_templates", "name",
         json={"name": 123, "messages": MSG},
         sdk=lambda c, e: c.create_prompt_template(name=123, messages=MSG)),  # type: ignore[arg-type]
    Case("template-messages-missing", "POST", "{P}/prompt_templates", "messages",
         json={"name": "bad"},
         sdk=lambda c, e: c.create_prompt_template(name="bad"), sdk_error=ValueError, local=True),
    Case("template-messages-not-a-list", "POST", "{P}/prompt_templates", "messages",
         json={"name": "bad", "messages": {"role": "user", "content": "hi"}},
         sdk=lambda c, e: c.create_prompt_template(
             name="bad", messages={"role": "user"}),  # type: ignore[arg-type]
         sdk_error=ValueError, local=True),
    Case("template-message-not-an-object", "POST", "{P}/prompt_templates", "messages[0]",
         json={"name": "bad", "messages": ["hi"]},
         sdk=lambda c, e: c.create_prompt_template(name="bad", messages=["hi"]),  # type: ignore[list-item]
         sdk_error=ValueError, local=True),
    Case("template-unknown-role", "POST", "{P}/prompt_templates", "role",
         json=_pt(messages=[{"role": "wizard", "content": "hi"}]),
         sdk=lambda c, e: c.create_prompt_template(
             name="bad", messages=[{"role": "wizard", "content": "hi"}])),
    Case("template-content-wrong-type", "POST", "{P}/prompt_templates", "content",
         json=_pt(messages=[{"role": "user", "content": 42}]),
         sdk=lambda c, e: c.create_prompt_template(
             name="bad", messages=[{"role": "user", "content": 42}])),
    Case("template-unclosed-placeholder", "POST", "{P}/prompt_templates", "unclosed",
         json=_pt(messages=[{"role": "user", "content": "Explain {{topic"}]),
         sdk=lambda c, e: c.create_prompt_template(name="bad", template="Explain {{topic")),
    Case("template-invalid-placeholder", "POST", "{P}/prompt_templates", "placeholder",
         json=_pt(messages=[{"role": "user", "content": "Explain {{ two words }}"}]),
         sdk=lambda c, e: c.create_prompt_template(name="bad", template="Hi {{ two words }}")),
    Case("template-empty-name", "POST", "{P}/prompt_templates", "must not be empty",
         json=_pt(name=""),
         sdk=lambda c, e: c.create_prompt_template(name="", template="hi")),
    Case("template-blank-name", "POST", "{P}/prompt_templates", "must not be empty",
         json=_pt(name="   \t "),
         sdk=lambda c, e: c.create_prompt_template(name="   ", template="hi")),
    Case("template-10mb-name", "POST", "{P}/prompt_templates", "the maximum is 255",
         json=_pt(name="n" * (10 * MB)),
         sdk=lambda c, e: c.create_prompt_template(name="n" * (10 * MB), template="hi")),
    Case("template-tool-choice-without-tools", "POST", "{P}/prompt_templates", "tool_choice",
         json=_pt(tool_choice="required"),
         sdk=lambda c, e: c.create_prompt_template(name="bad", messages=MSG,
                                                   tool_choice="required"),
         sdk_error=ValueError, local=True),
    Case("template-tool-choice-unknown-function", "POST", "{P}/prompt_templates", "not in tools",
         json=_pt(tools=[_tool()], tool_choice={"type": "function", "function": {"name": "x"}}),
         sdk=lambda c, e: c.create_prompt_template(
             name="bad", messages=MSG, tools=[_tool()],
             tool_choice={"type": "function", "function": {"name": "x"}})),
    Case("template-tool-choice-bad-value", "POST", "{P}/prompt_templates", "tool_choice",
         json=_pt(tools=[_tool()], tool_choice="sometimes"),
         sdk=lambda c, e: c.create_prompt_template(name="bad", messages=MSG, tools=[_tool()],
                                                   tool_choice="sometimes")),
    Case("template-malformed-tool", "POST", "{P}/prompt_templates", "tools[0]",
         json=_pt(tools=[{"type": "retrieval"}]),
         sdk=lambda c, e: c.create_prompt_template(name="bad", messages=MSG,
                                                   tools=[{"type": "retrieval"}])),
    Case("template-response-format-wrong-type", "POST", "{P}/prompt_templates",
         "response_format_json_schema", json=_pt(response_format_json_schema="json please"),
         sdk=lambda c, e: c.create_prompt_template(name="bad", messages=MSG,
                                                   response_format="json please"),
         sdk_error=ValueError, local=True),
    Case("template-unknown-parent", "POST", "{P}/prompt_templates", "prompt template 999999",
         status=404, json=_pt(parent_prompt_template_id=999999)),
    # ---- bodies that are not JSON objects ---------------------------------------------------
    Case("body-invalid-json", "POST", "{P}/prompt_templates", "not valid JSON",
         data=b'{"name": "x", ', headers={"Content-Type": "application/json"}),
    Case("body-wrong-content-type", "POST", "{P}/prompt_templates",
         "Content-Type: application/json", data="name=x&messages=hi",
         headers={"Content-Type": "application/x-www-form-urlencoded"}),
    Case("body-json-array", "POST", "{P}/collections", "must be a JSON object", json=[]),
    Case("body-empty", "POST", "{P}/criterion_sets", "empty", data=b"",
         headers={"Content-Type": "application/json"}),
    Case("body-not-utf8", "POST", "{P}/llm_configs", "not valid JSON", data=b"\xff\xfe\x00",
         headers={"Content-Type": "application/json"}),
    Case("body-nan-literal", "POST", "{P}/llm_configs", "not valid JSON",
         data=b'{"name": "x", "llm_model_name": "m", "temperature": NaN}',
         headers={"Content-Type": "application/json"}),
    Case("body-nested-too-deeply", "POST", "{P}/prompt_templates", "nested too deeply",
         data=_deep(5000), headers={"Content-Type": "application/json"}),
    # ---- pagination, ids, query parameters --------------------------------------------------
    Case("page-zero", "GET", "{P}/prompt_templates", "page", params={"page": 0}),
    Case("page-negative", "GET", "{P}/collections", "page", params={"page": -3}),
    Case("page-not-a-number", "GET", "{P}/llm_configs", "page", params={"page": "two"}),
    Case("id-huge-in-path", "GET", "{P}/prompt_templates/" + str(HUGE), "not found",
         status=404, sdk=lambda c, e: c.get_prompt_template(id=HUGE), sdk_error=NotFoundError),
    Case("id-zero-in-path", "GET", "{P}/collections/0", "collection 0 not found", status=404,
         sdk=lambda c, e: c.get_collection(id=0), sdk_error=NotFoundError),
    Case("id-negative-in-path", "DELETE", "{P}/criterion_sets/-1", "not found", status=404,
         sdk=lambda c, e: c.delete_criterion_set(-1), sdk_error=NotFoundError),
    Case("id-huge-in-body", "POST", "{P}/criteria", "out of range",
         json={"criterion_set_id": HUGE, "criteria": [{"criterion_str": "ok?"}]}),
    Case("id-huge-in-body-list", "POST", "{P}/ratings/batches", "prompt_response_ids[0]",
         json={"prompt_response_ids": [HUGE]}),
    Case("id-negative-in-body", "POST", "{P}/criteria", "criterion set -5", status=404,
         json={"criterion_set_id": -5, "criteria": [{"criterion_str": "ok?"}]}),
    Case("id-wrong-type-in-body", "POST", "{P}/experiments", "prompt_template_id",
         json=lambda e: _exp(e, prompt_template_id="one")),
    Case("id-huge-in-query", "GET", "{P}/criteria", "criterion_set_id",
         params={"criterion_set_id": HUGE}),
    Case("query-version-not-int", "GET", "{P}/prompt_templates", "version",
         params={"name": "T", "version": "latest"}),
    Case("query-bool-invalid", "POST", "{P}/collections/{collection_id}/entries/batches",
         "skip_existing", params={"skip_existing": "maybe"},
         files=_jsonl_upload('{"topic": "x"}')),
    Case("query-categorical-filters-not-json", "GET", "{P}/experiments/{experiment_id}",
         "categorical_filters", params={"categorical_filters": "[oops"}),
    Case("query-categorical-filters-nested-too-deeply", "GET",
         "{P}/experiments/{experiment_id}", "nested too deeply",
         params={"categorical_filters": "[" * 3000}),
    Case("page-offset-beyond-64-bits", "GET", "{P}/responses", "page", params={"page": 2**62}),
    Case("query-polling-interval-zero", "GET",
         "{P}/experiments/{experiment_id}/generation/{task_id}/stream", "polling_interval",
         params={"polling_interval": "0"}),
    # ---- enums ------------------------------------------------------------------------------
    Case("enum-collection-type", "POST", "{P}/collections", "collection_type",
         json=_coll(collection_type="WEIRD"),
         sdk=lambda c, e: c.create_collection(name="bad", collection_type="WEIRD"),
         sdk_error=ValueError, local=True),
    Case("enum-column-type", "POST", "{P}/collections", "column_type",
         json=_coll(columns=[{"name": "a", "column_type": "blob"}]),
         sdk=lambda c, e: c.create_collection(
             name="bad", columns=[{"name": "a", "column_type": "blob"}])),
    Case("enum-inference-type", "POST", "{P}/llm_configs", "inference_type",
         json=_llm(inference_type="magic"),
         sdk=lambda c, e: c.create_llm_config(name="bad", llm_model_name="m",
                                              inference_type="magic"),
         sdk_error=ValueError, local=True),
    Case("enum-reasoning-effort", "POST", "{P}/llm_configs", "reasoning_effort",
         json=_llm(reasoning_effort="max"),
         sdk=lambda c, e: c.create_llm_config(name="bad", llm_model_name="m",
                                              reasoning_effort="max"),
         sdk_error=ValueError, local=True),
    Case("enum-rating-mode", "POST", "{P}/ratings/batches", "rating_mode",
         json=lambda e: {"prompt_response_ids": [e["response_id"]], "rating_mode": "slow"}),
    Case("enum-evaluation-mode", "POST", "{P}/experiments", "evaluation_mode",
         json=lambda e: _exp(e, evaluation_mode="agentic")),
    Case("agentic-over-standard-collection", "POST", "{P}/experiments", "AGENTIC collection",
         status=400, json=lambda e: _exp(e, evaluation_mode="AGENTIC")),
    Case("multi-turn-without-personas", "POST", "{P}/experiments", "persona_group_id",
         status=400, json=lambda e: _exp(e, evaluation_mode="MULTI_TURN")),
    Case("multi-turn-max-turns", "POST", "{P}/experiments", "max_turns", status=400,
         json=lambda e: _exp(e, evaluation_mode="MULTI_TURN", persona_group_id=1,
                             agent_config={"max_turns": 0})),
    # ---- collections, columns, rows, uploads -------------------------------------------------
    Case("columns-duplicate", "POST", "{P}/collections", "duplicate column name",
         json=_coll(columns=[{"name": "a"}, {"name": "a"}]),
         sdk=lambda c, e: c.create_collection(name="bad", columns=["a", "a"])),
    Case("columns-empty-name", "POST", "{P}/collections", "columns[0].name",
         json=_coll(columns=[{"name": ""}]),
         sdk=lambda c, e: c.create_collection(name="bad", columns=[""])),
    Case("columns-not-objects", "POST", "{P}/collections", "columns[0]",
         json=_coll(columns=[5]),
         sdk=lambda c, e: c.create_collection(name="bad", columns=[5]),  # type: ignore[list-item]
         sdk_error=ValueError, local=True),
    Case("columns-unknown-id-on-update", "PUT", "{P}/collections/{collection_id}",
         "not a column", json=lambda e: {"name": "C", "columns": [{"id": 999999, "name": "x"}]}),
    Case("variables-not-objects", "POST", "{P}/collections", "variables[0]",
         json=_coll(variables=["just text"]),
         sdk=lambda c, e: c.create_collection(name="bad", variables=["just text"]),  # type: ignore[list-item]
         sdk_error=ValueError, local=True),
    Case("variables-empty-column-name", "POST", "{P}/collections", "column name",
         json=_coll(variables=[{"": "x"}]),
         sdk=lambda c, e: c.create_collection(name="bad", variables=[{"": "x"}]),
         sdk_error=ValueError, local=True),
    Case("entry-values-and-template", "POST", "{P}/collections/{collection_id}/entries",
         "exactly one",
         json=lambda e: {"input_values": {"topic": "x"}, "prompt_template_id": e["template_id"]}),
    Case("entry-values-wrong-type", "POST", "{P}/collections/{collection_id}/entries",
         "input_values", json={"input_values": "topic=x"}),
    Case("upload-non-object-line", "POST", "{P}/collections/{collection_id}/entries/batches",
         "line 2", files=_jsonl_upload('{"topic": "a"}\n[1, 2]\n'),
         sdk=lambda c, e: e["collection"].add_many([{"topic": "a"}, [1, 2]]),
         sdk_error=ValueError, local=True),
    Case("upload-scalar-line", "POST", "{P}/collections/{collection_id}/entries/batches",
         "line 1", files=_jsonl_upload('"just a string"\n')),
    Case("upload-invalid-json-line", "POST", "{P}/collections/{collection_id}/entries/batches",
         "line 3", files=_jsonl_upload('{"topic": "a"}\n\n{"topic": \n')),
    Case("upload-without-file-part", "POST", "{P}/collections/{collection_id}/entries/batches",
         "'file'", files={"other": ("x.jsonl", '{"topic": "a"}', "application/jsonl")}),
    Case("upload-malformed-multipart", "POST",
         "{P}/collections/{collection_id}/entries/batches", "multipart",
         data=b"--nope\r\nthis is not a part", headers={
             "Content-Type": "multipart/form-data; boundary=xyz"}),
    Case("upload-oversized-multipart", "POST",
         "{P}/collections/{collection_id}/entries/batches", "too large", status=413,
         files=_jsonl_upload(b'{"topic": "' + b"x" * (LIMIT + MB) + b'"}'),
         sdk=lambda c, e: e["collection"].add_many([{"topic": "x" * (LIMIT + MB)}]),
         sdk_error=APIError),
    Case("body-oversized-json", "POST", "{P}/prompt_templates", "too large", status=413,
         json=_pt(messages=[{"role": "user", "content": "x" * (LIMIT + MB)}]),
         sdk=lambda c, e: c.create_prompt_template(name="bad", template="x" * (LIMIT + MB)),
         sdk_error=APIError),
    Case("upload-read-only-collection", "POST",
         "{P}/collections/{read_only_id}/entries/batches", "read-only", status=400,
         files=_jsonl_upload('{"topic": "x"}'),
         sdk=lambda c, e: e["read_only"].add_many([{"topic": "x"}])),
    # ---- LLM configs ------------------------------------------------------------------------
    Case("llm-temperature-out-of-range", "POST", "{P}/llm_configs", "temperature",
         json=_llm(temperature=5.0),
         sdk=lambda c, e: c.create_llm_config(name="bad", llm_model_name="m", temperature=5.0)),
    Case("llm-base-url-scheme", "POST", "{P}/llm_configs", "llm_base_url",
         json=_llm(llm_base_url="ftp://models.invalid"),
         sdk=lambda c, e: c.create_llm_config(name="bad", llm_model_name="m",
                                              llm_base_url="ftp://models.invalid")),
    Case("llm-model-missing", "POST", "{P}/llm_configs", "llm_model_name",
         json={"name": "bad"},
         sdk=lambda c, e: c.create_llm_config(name="bad", llm_model_name="  ")),
    Case("llm-max-connections-zero", "POST", "{P}/llm_configs", "max_connections",
         json=_llm(max_connections=0),
         sdk=lambda c, e: c.create_llm_config(name="bad", llm_model_name="m", max_connections=0)),
    # ---- criteria and criterion sets ----------------------------------------------------------
    Case("criteria-two-targets", "POST", "{P}/criteria", "exactly one",
         json=lambda e: {"prompt_template_id": e["template_id"], "criterion_set_id": e["set_id"],
                         "criteria": [{"criterion_str": "ok?"}]}),
    Case("criteria-empty-string", "POST", "{P}/criteria", "must not be empty",
         json=lambda e: {"criterion_set_id": e["set_id"], "criteria": [{"criterion_str": " "}]},
         sdk=lambda c, e: e["criterion_set"].add_criterion("  ")),
    Case("criterion-set-criteria-wrong-type", "POST", "{P}/criterion_sets", "criteria",
         json={"name": "bad", "criteria": "abc"}),
    Case("criterion-set-duplicate-name", "POST", "{P}/criterion_sets", "already exists",
         status=409, json={"name": "S"},
         sdk=lambda c, e: c.create_criterion_set(name="S"), sdk_error=ConflictError),
    Case("link-unknown-template", "PUT", "{P}/criterion_sets/{set_id}/prompt_templates/999999",
         "prompt template 999999", status=404),
    # ---- experiments ------------------------------------------------------------------------
    Case("experiment-unknown-placeholder", "POST", "{P}/experiments", "placeholder",
         json=lambda e: _exp(e, prompt_template_id=e["two_placeholders_id"]),
         sdk=lambda c, e: c.create_experiment(
             name="bad-exp", prompt_template=e["two_placeholders"],
             collection=e["collection"], criterion_set=e["criterion_set"])),
    Case("experiment-zero-epochs", "POST", "{P}/experiments", "n_epochs",
         json=lambda e: _exp(e, n_epochs=0),
         sdk=lambda c, e: c.run_experiment(
             name="bad-exp", prompt_template=e["template"], collection=e["collection"],
             criterion_set=e["criterion_set"], n_epochs=0),
         sdk_error=ValueError, local=True),
    Case("experiment-without-collection", "POST", "{P}/experiments", "collection_id",
         json=lambda e: {"name": "bad-exp", "prompt_template_id": e["template_id"]}),
    Case("experiment-empty-collection", "POST", "{P}/experiments", "no entries",
         json=lambda e: _exp(e, collection_id=e["empty_id"], generate=True),
         sdk=lambda c, e: c.run_experiment(
             name="bad-exp", prompt_template=e["template"], collection=e["empty"],
             criterion_set=e["criterion_set"])),
    Case("experiment-duplicate-name", "POST", "{P}/experiments", "already exists",
         status=409, json=lambda e: _exp(e, name="E"),
         sdk=lambda c, e: c.create_experiment(
             name="E", prompt_template=e["template"], collection=e["collection"],
             criterion_set=e["criterion_set"]), sdk_error=ConflictError),
    Case("experiment-run-twice", "POST", "{P}/experiments/{experiment_id}/run", "already run",
         status=409, json={}),
    # ---- responses and ratings -----------------------------------------------------------------
    Case("response-empty-messages", "POST", "{P}/responses", "messages",
         json=lambda e: {"experiment_id": e["experiment_id"],
                         "template_variables_id": e["entry_id"], "messages": []}),
    Case("response-epoch-zero", "POST", "{P}/responses", "epoch",
         json=lambda e: {"experiment_id": e["experiment_id"], "epoch": 0,
                         "template_variables_id": e["entry_id"], "messages": "an answer"}),
    Case("response-bad-role", "POST", "{P}/responses", "role",
         json=lambda e: {"experiment_id": e["experiment_id"],
                         "template_variables_id": e["entry_id"],
                         "messages": [{"role": "robot", "content": "x"}]}),
    Case("response-batch-items-not-objects", "POST", "{P}/responses/batches",
         "prompt_response_ins", json={"prompt_response_ins": [1, 2]}),
    Case("response-annotation-wrong-type", "PATCH", "{P}/responses/{response_id}", "annotation",
         json={"annotation": 5}),
    Case("rating-unknown-response", "POST", "{P}/ratings", "response 999999", status=404,
         json={"prompt_response_id": 999999}),
    # ---- routing and projects -------------------------------------------------------------------
    Case("method-not-allowed", "PATCH", "{P}/prompt_templates", "not allowed", status=405,
         json={}),
    Case("unknown-route", "GET", "/api/v0/no_such_thing", "no route", status=404),
    Case("other-project-in-path", "GET", "/api/v0/projects/424242/prompt_templates",
         "project 424242", status=404),
]


def test_the_table_has_at_least_40_distinct_cases() -> None:
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids))
    assert len(CASES) >= 40
    sdk_cases = [c for c in CASES if c.sdk is not None]
    local = [c.id for c in sdk_cases if c.local]
    print(f"\nbad inputs: {len(CASES)} raw HTTP cases, {len(sdk_cases)} also through the SDK "
          f"({len(local)} refused locally with ValueError: {', '.join(local)})")


@pytest.fixture(scope="module")
def env(module_server: LocalServer, api_factory: Any, seed: Any) -> Iterator[dict[str, Any]]:
    """Seeded objects (ids and SDK objects) plus a connected sync Client."""
    api = api_factory(module_server.base_url, module_server.api_key)
    ids: dict[str, Any] = seed(api)
    p = api.P
    two = api.call("POST", f"{p}/prompt_templates", json={
        "name": "two", "messages": [{"role": "user", "content": "{{topic}} for {{audience}}"}]})
    read_only = api.call("POST", f"{p}/collections", json=_coll(
        name="RO", read_only=True, variables=[{"topic": "x"}]))
    empty = api.call("POST", f"{p}/collections", json=_coll(name="empty", columns=["topic"]))
    ids.update(P=p, two_placeholders_id=two["id"], read_only_id=read_only["id"],
               empty_id=empty["id"])
    with Client(base_url=module_server.base_url, api_key=module_server.api_key) as client:
        ids.update(
            client=client,
            template=client.get_prompt_template(id=ids["template_id"]),
            two_placeholders=client.get_prompt_template(id=two["id"]),
            collection=client.get_collection(id=ids["collection_id"]),
            read_only=client.get_collection(id=read_only["id"]),
            empty=client.get_collection(id=empty["id"]),
            criterion_set=client.get_criterion_set(id=ids["set_id"]),
        )
        yield ids
    api.close()


def _send(api: Any, case: Case, env: dict[str, Any]) -> Any:
    kwargs: dict[str, Any] = {}
    body = case.json(env) if callable(case.json) else case.json
    if body is not _MISSING:
        kwargs["json"] = body
    if case.data is not None:
        kwargs["data"] = case.data
    if case.headers:
        kwargs["headers"] = case.headers
    if case.params:
        kwargs["params"] = case.params
    if case.files:
        kwargs["files"] = case.files
    return api.request(case.method, case.path.format(**env), **kwargs)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_refused_cleanly(
    case: Case, env: dict[str, Any], module_server: LocalServer, api_factory: Any,
    row_counts: Any,
) -> None:
    pid = env["client"].current_project.id
    api = api_factory(module_server.base_url, module_server.api_key, pid=pid)
    before = row_counts(module_server.db_path)
    try:
        resp = _send(api, case, env)
    finally:
        api.close()
    statuses = (case.status,) if isinstance(case.status, int) else case.status
    assert resp.status_code in statuses, f"{case.id}: {resp.status_code} {resp.text[:500]}"
    assert 400 <= resp.status_code < 500
    assert resp.headers["Content-Type"].startswith("application/json")
    detail = resp.json()["detail"]
    assert isinstance(detail, str) and detail
    assert case.expect.lower() in detail.lower(), f"{case.id}: detail {detail[:300]!r}"
    assert len(detail) < 2000, "details must be short (no echo of huge input)"
    assert "Traceback" not in detail
    assert row_counts(module_server.db_path) == before, f"{case.id} changed the database"

    if case.sdk is None:
        return
    with pytest.raises(case.sdk_error) as info:
        case.sdk(env["client"], env)
    error = info.value
    if case.local:
        assert not isinstance(error, ElluminateError), f"{case.id}: expected a local ValueError"
    else:
        assert isinstance(error, ElluminateError), f"{case.id}: {type(error)} {error}"
        assert isinstance(error, APIError) and error.status_code == resp.status_code
        assert case.expect.lower() in str(error).lower(), f"{case.id}: {error}"
    assert row_counts(module_server.db_path) == before, f"{case.id} (SDK) changed the database"


# ---- valid but unusual strings: they must round-trip and harm nothing -------------------------

ODD_STRINGS = [
    "Grüße, 你好, مرحبا, שלום, Привет",
    "emoji 🧪🚀 and ZWJ 👩‍🔬 family",
    "combining e\u0301 and \u202eRTL override",
    "'; DROP TABLE prompt_templates; --",
    'Robert"); DELETE FROM collections WHERE ("1"="1',
    "%_\\ LIKE wildcards %%",
    "an escaped \\u0000 is only text",
    "{{not_a_placeholder_in_a_name}}",
    "<script>alert(1)</script>",
    "  leading and trailing spaces  ",
]


@pytest.mark.parametrize("text", ODD_STRINGS, ids=[f"odd-{i}" for i in range(len(ODD_STRINGS))])
def test_unicode_and_sql_looking_strings_round_trip(
    text: str, env: dict[str, Any], module_server: LocalServer, row_counts: Any
) -> None:
    client: Client = env["client"]
    name = f"{text} {uuid.uuid4().hex[:6]}"
    before = row_counts(module_server.db_path)
    template = client.create_prompt_template(
        name=name, messages=[{"role": "user", "content": f"{text} {{{{topic}}}}"}]
    )
    assert template.name == name.strip()
    assert template.messages[0]["content"] == f"{text} {{{{topic}}}}"
    assert "topic" in template.placeholders  # text itself may hold a {{placeholder}}
    assert client.get_prompt_template(name=name.strip()).id == template.id

    collection = client.create_collection(name=name, variables=[{"topic": text, text: text}])
    again = client.get_collection(name=name.strip())
    assert again.id == collection.id
    assert again.variables[0].input_values == {"topic": text, text: text}

    cset = client.create_criterion_set(name=name, criteria=[text])
    assert [c.criterion_str for c in client.get_criterion_set(id=cset.id).criteria or []] == [
        text.strip()
    ]
    config = client.create_llm_config(name=name, llm_model_name=text, api_key="sk-odd")
    assert client.get_llm_config(name=name.strip()).llm_model_name == text

    after = row_counts(module_server.db_path)
    assert set(after) == set(before)  # no table dropped
    assert after["prompt_templates"] == before["prompt_templates"] + 1
    assert after["collections"] == before["collections"] + 1
    assert after["llm_configs"] == before["llm_configs"] + 1
    for obj, delete in ((template, client.delete_prompt_template),
                        (collection, client.delete_collection),
                        (cset, client.delete_criterion_set), (config, client.delete_llm_config)):
        delete(obj)
    assert row_counts(module_server.db_path)["prompt_templates"] == before["prompt_templates"]


@pytest.mark.parametrize("text", ODD_STRINGS[3:6] + ["' OR '1'='1", "%", "_"])
def test_sql_looking_filters_match_nothing(
    text: str, env: dict[str, Any], module_server: LocalServer, api_factory: Any
) -> None:
    api = api_factory(module_server.base_url, module_server.api_key)
    try:
        p = env["P"]
        for path, key in (("prompt_templates", "name"), ("collections", "name"),
                          ("criterion_sets", "name"), ("llm_configs", "name"),
                          ("experiments", "experiment_name"),
                          ("experiments", "experiment_name_search")):
            body = api.call("GET", f"{p}/{path}", params={key: text})
            assert body == {"items": [], "count": 0}, (path, key, text)
    finally:
        api.close()


NUL = "a real NUL: \x00 end"


def test_nul_characters_are_refused_everywhere_and_write_nothing(
    env: dict[str, Any], module_server: LocalServer, row_counts: Any, api_factory: Any
) -> None:
    """PostgreSQL cannot store a NUL character, so no backend accepts one: every kind of text
    answers 422 naming where the NUL is, and nothing is written."""
    client: Client = env["client"]
    before = row_counts(module_server.db_path)
    attempts = [
        lambda: client.create_prompt_template(
            name=NUL, messages=[{"role": "user", "content": "{{topic}}"}]),
        lambda: client.create_prompt_template(
            name="nul content", messages=[{"role": "user", "content": NUL + " {{topic}}"}]),
        lambda: client.create_collection(name="nul rows", variables=[{"topic": NUL}]),
        lambda: client.create_collection(name="nul keys", variables=[{NUL: "x"}]),
        lambda: client.create_criterion_set(name="nul criteria", criteria=[NUL]),
        lambda: client.create_llm_config(name="nul", llm_model_name=NUL, api_key="sk-x"),
        lambda: env["collection"].add_many([{"topic": "fine"}, {"topic": NUL}]),
    ]
    for attempt in attempts:
        with pytest.raises(BadRequestError) as info:
            attempt()
        assert "NUL" in str(info.value) and info.value.status_code == 422, info.value
    api = api_factory(module_server.base_url, module_server.api_key)
    try:
        resp = api.request(
            "POST", f"{env['P']}/collections/{env['collection_id']}/entries/batches",
            files={"file": ("rows.jsonl", '{"topic": "ok"}\n{"topic": "\\u0000"}\n',
                            "application/jsonl")})
        assert resp.status_code == 422 and "line 2" in resp.text, resp.text
    finally:
        api.close()
    assert row_counts(module_server.db_path) == before


def test_jsonl_rows_with_odd_strings_round_trip(
    env: dict[str, Any], module_server: LocalServer
) -> None:
    client: Client = env["client"]
    collection = client.create_collection(name=f"odd rows {uuid.uuid4().hex[:6]}")
    rows = [{"topic": text, "json": json.dumps({"k": text})} for text in ODD_STRINGS]
    added = collection.add_many(rows)
    assert [r.input_values for r in added] == rows
    assert [r.input_values for r in client.get_collection(id=collection.id).variables] == rows
    client.delete_collection(collection)


def test_long_query_strings_are_served(env: dict[str, Any], module_server: LocalServer,
                                       api_factory: Any) -> None:
    """``?response_ids=...`` for thousands of responses fits in the request line limit."""
    api = api_factory(module_server.base_url, module_server.api_key)
    try:
        ids = env["response_ids"] + list(range(10**9, 10**9 + 8000))
        body = api.call("GET", f"{env['P']}/responses", params={"response_ids": ids})
        assert body["count"] == len(env["response_ids"])
    finally:
        api.close()
