"""Capture what the OFFICIAL elluminate package sends and does for the Advanced calls.

How ``official-advanced.json`` was made: ``OFFICIAL_PYTHON tests/golden/capture_advanced.py
tests/golden/official-advanced.json`` under the virtualenv of the official package (1.5.2).
It runs the official package (black box) against a scripted stub server and records, per
call: the requests (method, path, query, body, the headers that matter) with the stub's
answer to each, what the call returned or raised, and what it logged. Covered: scenario
sets (CONTRACT.md 4.11, 8.5), agent results (4.12), the agentic wait and stream (5.7),
multi-turn experiments and the conversation envelope (7.18).

Not run by the tests; the tests read only the JSON it wrote.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import elluminate  # the official package
from elluminate import AsyncClient, Client
from elluminate.schemas import (
    AgentTrialResult,
    AgentTrialTaskRef,
    CriterionRatingIn,
    ScenarioIn,
    UCEPayloadV1,
)
from elluminate.schemas.atif import (
    ATIFAgent,
    ATIFFinalMetrics,
    ATIFObservation,
    ATIFObservationResult,
    ATIFStep,
    ATIFStepMetrics,
    ATIFToolCall,
    ATIFTrajectory,
)

P = "/api/v0/projects/7"
T0 = "2024-01-01T00:00:00Z"
HEADERS = ("X-API-Key", "SDK-Version", "Content-Type")

ORG = {
    "id": 1,
    "name": "o",
    "domain": "x",
    "stripe_subscription_id": None,
    "created_at": T0,
    "updated_at": T0,
}
PROJECT = {
    "id": 7,
    "name": "p",
    "description": "",
    "organization": ORG,
    "public_in_org": False,
    "created_at": T0,
    "updated_at": T0,
}
COLLECTION = {
    "id": 21,
    "name": "Tasks",
    "description": "",
    "columns": [
        {
            "id": 1,
            "name": "task",
            "column_type": "text",
            "default_value": "",
            "column_position": 0,
            "categorical_values": None,
        }
    ],
    "variables_count": 2,
    "read_only": False,
    "created_at": T0,
    "updated_at": T0,
    "version": None,
    "collection_type": "AGENTIC",
    "environment_config": None,
}
CRITERION = {
    "id": 51,
    "criterion_str": "Did the tests pass?",
    "label": "tests",
    "prompt_template": None,
    "template_variables": None,
    "created_at": T0,
}
CRITERION_SET = {"id": 31, "name": "CS", "linked_prompt_templates": [], "criteria": [CRITERION]}
EXPERIMENT = {
    "id": 101,
    "name": "Agent run",
    "description": "",
    "prompt_template": None,
    "collection": COLLECTION,
    "criterion_set": CRITERION_SET,
    "llm_config": None,
    "rating_version": None,
    "rated_responses": [],
    "created_at": T0,
    "updated_at": T0,
    "generation_task_id": None,
    "has_internal_error": False,
    "evaluation_mode": "AGENTIC",
    "dropped_trajectories": 0,
}
FIELD_PERSONA = {"id": 1, "name": "persona", "field_type": "text", "default_value": ""}
SCENARIO_SET = {
    "id": 41,
    "name": "Support",
    "description": "customer chats",
    "fields": [FIELD_PERSONA],
    "scenarios_count": 1,
    "version": None,
    "read_only": False,
    "is_platform_builtin": False,
    "created_at": T0,
    "updated_at": T0,
}
SCENARIO = {
    "id": 5,
    "goal": "Get a refund",
    "expected_conversation_outcome": "Refund issued",
    "field_values": {"persona": "impatient"},
    "created_at": T0,
}
DEFINITION = {
    "version": 1,
    "task_name_column": "task",
    "tasks": [
        {
            "task_id": 7,
            "task_name": "fix-bug",
            "criteria": [
                {
                    "criterion_id": 51,
                    "label": "tests",
                    "scope": "task",
                    "rendered_criterion_str": "Did the tests pass?",
                }
            ],
            "row_exists": True,
            "current_task_name": None,
        }
    ],
}
PREVIEW = {
    "task_name_column": "task",
    "matched": 1,
    "unmatched": 1,
    "results": [
        {"index": 0, "task_id": 7, "task_name": "fix-bug", "reason": None},
        {"index": 1, "task_id": None, "task_name": "nope", "reason": "no task named 'nope'"},
    ],
}
UPLOADED = {
    "created_responses": 2,
    "created_ratings": 1,
    "errors": [],
    "pending_evaluations": 1,
    "evaluation_task_id": "ev-1",
}


class Stub:
    """Scripted answers per (method, path): each request takes the next answer of its list;
    the last one repeats. An answer is (status, content_type, body-bytes)."""

    def __init__(self) -> None:
        self.script: dict[tuple[str, str], list[tuple[int, str, bytes]]] = {}
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    def json(self, method: str, path: str, *bodies: Any, status: int = 200) -> None:
        self.script[method, path] = [
            (status, "application/json", json.dumps(b).encode()) for b in bodies
        ]

    def sse(self, path: str, events: list[dict[str, Any]]) -> None:
        text = "".join(f"data: {json.dumps(e)}\n\n" for e in events)
        self.script["GET", path] = [(200, "text/event-stream", text.encode())]

    def take(self, method: str, path: str) -> tuple[int, str, bytes]:
        with self.lock:
            answers = self.script.get((method, path))
            if not answers:
                return 404, "application/json", b'{"detail": "not scripted"}'
            return answers.pop(0) if len(answers) > 1 else answers[0]


def handler(stub: Stub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            url = urlsplit(self.path)
            body: Any = json.loads(raw) if raw else None
            status, content_type, data = stub.take(self.command, url.path)
            answer: Any = data.decode()
            if content_type == "application/json":
                answer = json.loads(data)
            with stub.lock:
                stub.requests.append(
                    {
                        "method": self.command,
                        "path": url.path,
                        "query": parse_qs(url.query, keep_blank_values=True),
                        "body": body,
                        "headers": {k: self.headers[k] for k in HEADERS if k in self.headers},
                        "answer": {
                            "status": status,
                            "content_type": content_type,
                            "body": answer,
                        },
                    }
                )
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

        def log_message(self, *args: Any) -> None:
            pass

    return Handler


class Logs(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.INFO:
            self.lines.append(f"{record.levelname} {record.getMessage()}")


def describe(value: Any) -> Any:
    """A JSON-able description of what a call returned."""
    if hasattr(value, "model_dump"):
        return {"type": type(value).__name__, "value": value.model_dump(mode="json")}
    if isinstance(value, list):
        return [describe(v) for v in value]
    if hasattr(value, "status") and hasattr(value, "is_complete"):
        progress = value.progress
        return {
            "type": type(value).__name__,
            "status": str(value.status.value),
            "error_msg": value.error_msg,
            "logs_delta": value.logs_delta,
            "progress": None
            if progress is None
            else {
                "responses_generated": progress.responses_generated,
                "responses_rated": progress.responses_rated,
                "total_responses": progress.total_responses,
            },
            "result": None if value.result is None else type(value.result).__name__,
        }
    return value


def describe_error(exc: BaseException) -> dict[str, Any]:
    out: dict[str, Any] = {
        "type": type(exc).__name__,
        "str": str(exc),
        "mro": [k.__name__ for k in type(exc).__mro__],
    }
    for attr in ("status_code", "accepted_tasks", "accepted_tasks_total", "reasons"):
        if hasattr(exc, attr):
            out[attr] = describe(getattr(exc, attr))
    response = getattr(exc, "response", None)
    if response is not None and hasattr(response, "model_dump"):
        out["response"] = response.model_dump(mode="json")
    return out


class Capture:
    def __init__(self, stub: Stub) -> None:
        self.stub = stub
        self.calls: dict[str, Any] = {}
        self.logs = Logs()
        logging.getLogger("elluminate").addHandler(self.logs)
        logging.getLogger("elluminate").setLevel(logging.DEBUG)
        try:  # the official package logs with loguru
            from loguru import logger
        except ImportError:
            pass
        else:
            logger.remove()
            logger.add(
                lambda m: self.logs.lines.append(m.rstrip("\n")),
                level="DEBUG",
                format="{level} {message}",
            )

    def run(self, key: str, code: str, fn: Callable[[], Any], **extra: Any) -> Any:
        start, self.logs.lines = len(self.stub.requests), []
        entry: dict[str, Any] = {"call": code, **extra}
        result = None
        try:
            result = fn()
            if asyncio.iscoroutine(result):
                result = asyncio.run(result)
            entry["returned"] = describe(result)
        except Exception as exc:  # recorded, not raised: errors are part of the behaviour
            entry["raised"] = describe_error(exc)
        entry["requests"] = self.stub.requests[start:]
        entry["logs"] = list(self.logs.lines)
        self.calls[key] = entry
        return result


def typed_trajectory() -> ATIFTrajectory:
    return ATIFTrajectory(
        schema_version="ATIF-v1.4",
        session_id="s-1",
        agent=ATIFAgent(name="coder", version="2.1", model_name="gpt-x"),
        steps=[
            ATIFStep(step_id=1, source="user", message="Fix the failing test"),
            ATIFStep(
                step_id=2,
                source="agent",
                message=[{"type": "text", "text": "Running the tests"}],
                reasoning_content="check first",
                tool_calls=[
                    ATIFToolCall(
                        tool_call_id="c1", function_name="run", arguments={"cmd": "pytest"}
                    )
                ],
                observation=ATIFObservation(
                    results=[ATIFObservationResult(source_call_id="c1", content="1 failed")]
                ),
                metrics=ATIFStepMetrics(prompt_tokens=10, completion_tokens=5, cost_usd=0.01),
            ),
        ],
        final_metrics=ATIFFinalMetrics(
            total_prompt_tokens=10, total_completion_tokens=5, total_steps=2
        ),
    )


def scenario_sets(cap: Capture, c: Client) -> None:
    s = cap.stub
    s.json("POST", f"{P}/scenario-sets", SCENARIO_SET)
    cap.run(
        "create_scenario_set",
        'c.create_scenario_set(name="Support", description="customer chats", fields=["persona"])',
        lambda: c.create_scenario_set(
            name="Support", description="customer chats", fields=["persona"]
        ),
    )
    cap.run(
        "create_scenario_set_unnamed", "c.create_scenario_set()", lambda: c.create_scenario_set()
    )
    s.json("GET", f"{P}/scenario-sets/41", SCENARIO_SET)
    sset = cap.run(
        "get_scenario_set_by_id", "c.get_scenario_set(id=41)", lambda: c.get_scenario_set(id=41)
    )
    other = {**SCENARIO_SET, "id": 42, "name": "Support v2"}
    s.json("GET", f"{P}/scenario-sets", {"items": [other, SCENARIO_SET], "count": 2})
    cap.run(
        "get_scenario_set_by_name",
        'c.get_scenario_set(name="Support")',
        lambda: c.get_scenario_set(name="Support"),
    )
    cap.run(
        "get_scenario_set_by_name_missing",
        'c.get_scenario_set(name="Supp")',
        lambda: c.get_scenario_set(name="Supp"),
    )
    cap.run(
        "get_scenario_set_both",
        'c.get_scenario_set(name="Support", id=41)',
        lambda: c.get_scenario_set(name="Support", id=41),
    )
    cap.run("list_scenario_sets", "c.list_scenario_sets()", lambda: c.list_scenario_sets())
    cap.run(
        "list_scenario_sets_search",
        'c.list_scenario_sets(name_search="Sup")',
        lambda: c.list_scenario_sets(name_search="Sup"),
    )
    s.json("PUT", f"{P}/scenario-sets/41", {**SCENARIO_SET, "name": "Support 2"})
    cap.run(
        "update_scenario_set",
        'c._scenario_sets.update(sset, name="Support 2")',
        lambda: c._scenario_sets.update(sset, name="Support 2"),
    )
    cap.run(
        "update_scenario_set_description",
        'c._scenario_sets.update(sset, description="")',
        lambda: c._scenario_sets.update(sset, description=""),
    )
    s.json("DELETE", f"{P}/scenario-sets/41", None)
    cap.run(
        "delete_scenario_set", "c.delete_scenario_set(sset)", lambda: c.delete_scenario_set(sset)
    )

    # rich methods on a fresh copy of the set
    sset = c.get_scenario_set(id=41)
    locale = {"id": 2, "name": "locale", "field_type": "text", "default_value": "de"}
    s.json("POST", f"{P}/scenario-sets/41/fields", locale)
    cap.run(
        "add_field",
        'sset.add_field("locale", default_value="de")',
        lambda: sset.add_field("locale", default_value="de"),
        fields_after=None,
    )
    cap.calls["add_field"]["fields_after"] = [f.name for f in sset.fields]
    s.json(
        "POST",
        f"{P}/scenario-sets/41/fields",
        {**locale, "id": 3, "name": "tone", "default_value": ""},
    )
    cap.run("add_field_default", 'sset.add_field("tone")', lambda: sset.add_field("tone"))
    s.json(
        "POST",
        f"{P}/scenario-sets/41/fields",
        {"detail": "field names start with a letter or underscore"},
        status=400,
    )
    cap.run("add_field_bad_name", 'sset.add_field("1st")', lambda: sset.add_field("1st"))
    cap.calls["add_field_bad_name"]["fields_after"] = [f.name for f in sset.fields]
    s.json("POST", f"{P}/scenario-sets/41/fields", {"detail": "'goal' is implicit"}, status=400)
    cap.run("add_field_goal", 'sset.add_field("goal")', lambda: sset.add_field("goal"))
    field = sset.fields[1]
    s.json("PUT", f"{P}/scenario-sets/41/fields/2", {**locale, "name": "language"})
    cap.run(
        "rename_field",
        'sset.rename_field(sset.fields[1], "language")',
        lambda: sset.rename_field(field, "language"),
    )
    cap.calls["rename_field"]["fields_after"] = [f.name for f in sset.fields]
    s.json("DELETE", f"{P}/scenario-sets/41/fields/2", None)
    cap.run(
        "delete_field",
        "sset.delete_field(sset.fields[1])",
        lambda: sset.delete_field(sset.fields[1]),
    )
    cap.calls["delete_field"]["fields_after"] = [f.name for f in sset.fields]

    s.json("GET", f"{P}/scenario-sets/41/scenarios", {"items": [SCENARIO], "count": 1})
    cap.run("list_scenarios", "sset.list_scenarios()", lambda: sset.list_scenarios())
    s.json("GET", f"{P}/scenario-sets/41/scenarios/5", SCENARIO)
    scenario = cap.run("get_scenario", "sset.get_scenario(5)", lambda: sset.get_scenario(5))
    s.json("POST", f"{P}/scenario-sets/41/scenarios", {**SCENARIO, "id": 6})
    cap.run(
        "add_scenario",
        'c._scenario_sets.add_scenario(sset, " Get a refund ", "Refund issued", '
        '{"persona": "calm"})',
        lambda: c._scenario_sets.add_scenario(
            sset, " Get a refund ", "Refund issued", {"persona": "calm"}
        ),
    )
    cap.run(
        "add_scenario_no_values",
        'c._scenario_sets.add_scenario(sset, "Get a refund", "Refund issued")',
        lambda: c._scenario_sets.add_scenario(sset, "Get a refund", "Refund issued"),
    )
    cap.run(
        "add_scenario_blank_goal",
        'c._scenario_sets.add_scenario(sset, "  ", "x")',
        lambda: c._scenario_sets.add_scenario(sset, "  ", "x"),
    )
    s.json(
        "POST",
        f"{P}/scenario-sets/41/scenarios/batch",
        [{**SCENARIO, "id": 7}, {**SCENARIO, "id": 8, "field_values": {}}],
    )
    count_before = sset.scenarios_count
    cap.run(
        "add_scenarios",
        "sset.add_scenarios([ScenarioIn(goal='A', expected_conversation_outcome='a', "
        "field_values={'persona': 'x'}), {'goal': ' B ', "
        "'expected_conversation_outcome': 'b'}], skip_existing=True)",
        lambda: sset.add_scenarios(
            [
                ScenarioIn(
                    goal="A", expected_conversation_outcome="a", field_values={"persona": "x"}
                ),
                {"goal": " B ", "expected_conversation_outcome": "b"},
            ],
            skip_existing=True,
        ),
    )
    cap.calls["add_scenarios"]["scenarios_count_before_after"] = [
        count_before,
        sset.scenarios_count,
    ]
    cap.run(
        "add_scenarios_default",
        "sset.add_scenarios([{'goal': 'C', 'expected_conversation_outcome': 'c'}])",
        lambda: sset.add_scenarios([{"goal": "C", "expected_conversation_outcome": "c"}]),
    )
    cap.run("add_scenarios_empty", "sset.add_scenarios([])", lambda: sset.add_scenarios([]))
    cap.run(
        "add_scenarios_bad",
        "sset.add_scenarios([{'goal': 'C'}])",
        lambda: sset.add_scenarios([{"goal": "C"}]),
    )
    s.json("PUT", f"{P}/scenario-sets/41/scenarios/5", {**SCENARIO, "goal": "Get money back"})
    scenario.goal = "Get money back"
    cap.run(
        "update_scenario",
        "scenario.goal = 'Get money back'; sset.update_scenario(scenario)",
        lambda: sset.update_scenario(scenario),
    )
    s.json("DELETE", f"{P}/scenario-sets/41/scenarios/5", None)
    count_before = sset.scenarios_count
    cap.run(
        "delete_scenario", "sset.delete_scenario(scenario)", lambda: sset.delete_scenario(scenario)
    )
    cap.calls["delete_scenario"]["scenarios_count_before_after"] = [
        count_before,
        sset.scenarios_count,
    ]

    # a multi-turn experiment over the scenario set
    s.json("POST", f"{P}/experiments", {**EXPERIMENT, "evaluation_mode": "MULTI_TURN"})
    cap.run(
        "create_multi_turn_experiment",
        'c.create_experiment("Chat", None, scenario_set=sset, '
        'evaluation_mode="MULTI_TURN", persona_group_id=3)',
        lambda: c.create_experiment(
            "Chat", None, scenario_set=sset, evaluation_mode="MULTI_TURN", persona_group_id=3
        ),
    )
    s.json("GET", f"{P}/experiments/101", EXPERIMENT)
    cap.run(
        "create_experiment_collection_and_scenario_set",
        'c.create_experiment("Chat", None, collection=<21>, scenario_set=sset, '
        'evaluation_mode="MULTI_TURN", persona_group_id=3)',
        lambda: c.create_experiment(
            "Chat",
            None,
            collection=c.get_experiment(id=101, fetch_responses=False).collection,
            scenario_set=sset,
            evaluation_mode="MULTI_TURN",
            persona_group_id=3,
        ),
    )


def agent_results(cap: Capture, c: Client) -> None:
    s = cap.stub
    s.json("GET", f"{P}/experiments/101", EXPERIMENT)
    e = c.get_experiment(id=101, fetch_responses=False)
    s.json("GET", f"{P}/experiments/101/agent-results/definition", DEFINITION)
    cap.run(
        "definition",
        "c.get_agent_results_definition(101)",
        lambda: c.get_agent_results_definition(101),
    )
    cap.run(
        "definition_rich",
        "e.get_agent_results_definition()",
        lambda: e.get_agent_results_definition(),
    )
    s.json("POST", f"{P}/experiments/101/agent-results/preview", PREVIEW)
    cap.run(
        "preview",
        "c.preview_agent_results_matching(e, [AgentTrialTaskRef(task_id=7), "
        'AgentTrialResult(task_name="nope", reward=1.0, messages=[...])])',
        lambda: c.preview_agent_results_matching(
            e,
            [
                AgentTrialTaskRef(task_id=7),
                AgentTrialResult(
                    task_name="nope", reward=1.0, messages=[{"role": "user", "content": "hi"}]
                ),
            ],
        ),
    )
    cap.run(
        "preview_rich",
        'e.preview_agent_results_matching([AgentTrialTaskRef(task_name="fix-bug")])',
        lambda: e.preview_agent_results_matching([AgentTrialTaskRef(task_name="fix-bug")]),
    )
    s.json("POST", f"{P}/experiments/101/agent-results", UPLOADED)
    typed = AgentTrialResult(
        task_name="fix-bug",
        messages=[{"role": "user", "content": "Fix it"}, {"role": "assistant", "content": "Done"}],
        reward=0.5,
        steps=2,
        cost_usd=0.01,
        duration_seconds=12.5,
        input_tokens=10,
        output_tokens=5,
        cached_tokens=0,
        error=None,
        metadata={"run": "r1"},
        trajectory=typed_trajectory(),
        criterion_ratings=[
            CriterionRatingIn(criterion_id=51, rating="YES", reasoning="all green"),
            CriterionRatingIn(label="style", rating="NO"),
        ],
    )
    raw = AgentTrialResult(
        task_id=7,
        trajectory={
            "schema_version": "ATIF-v1.9",
            "custom": {"kept": [1, None]},
            "steps": "not-validated",
        },
    )
    cap.run(
        "upload",
        "c.upload_agent_results(e, [typed, raw])",
        lambda: c.upload_agent_results(e, [typed, raw]),
    )
    cap.run(
        "upload_rich",
        "e.upload_agent_results([raw], epoch=2, evaluate=False)",
        lambda: e.upload_agent_results([raw], epoch=2, evaluate=False),
    )
    cap.run(
        "upload_epoch_0",
        "c.upload_agent_results(e, [raw], epoch=0)",
        lambda: c.upload_agent_results(e, [raw], epoch=0),
    )
    cap.run("upload_empty", "c.upload_agent_results(e, [])", lambda: c.upload_agent_results(e, []))
    cap.run(
        "upload_dicts",
        "c.upload_agent_results(e, [{'task_id': 7}])",
        lambda: c.upload_agent_results(e, [{"task_id": 7}]),
    )
    partial = {
        **UPLOADED,
        "created_responses": 1,
        "created_ratings": 0,
        "errors": [
            "result 1: unknown criterion label 'style'",
            "result 2: trajectory dropped: steps must be a list",
        ],
        "pending_evaluations": 0,
        "evaluation_task_id": None,
    }
    s.json("POST", f"{P}/experiments/101/agent-results", partial)
    cap.run(
        "upload_partial_logged",
        "c.upload_agent_results(e, [typed, raw])",
        lambda: c.upload_agent_results(e, [typed, raw]),
    )
    cap.run(
        "upload_partial_raised",
        "c.upload_agent_results(e, [typed, raw], raise_on_partial=True)",
        lambda: c.upload_agent_results(e, [typed, raw], raise_on_partial=True),
    )
    only_label = {**partial, "errors": ["result 1: unknown criterion label 'style'"]}
    s.json("POST", f"{P}/experiments/101/agent-results", only_label)
    cap.run(
        "upload_partial_raised_no_trajectory_hint",
        "c.upload_agent_results(e, [typed], raise_on_partial=True)",
        lambda: c.upload_agent_results(e, [typed], raise_on_partial=True),
    )
    unmatched = {
        "detail": "No result matched a task of this experiment",
        "kind": "unmatched_tasks",
        "accepted_tasks": [{"task_id": 7, "task_name": "fix-bug"}],
        "accepted_tasks_total": 1,
        "results": [
            {"index": 0, "task_id": None, "task_name": "nope", "reason": "no task named 'nope'"}
        ],
    }
    s.json("POST", f"{P}/experiments/101/agent-results", unmatched, status=400)
    cap.run(
        "upload_unmatched",
        'c.upload_agent_results(e, [AgentTrialResult(task_name="nope")])',
        lambda: c.upload_agent_results(e, [AgentTrialResult(task_name="nope")]),
    )
    s.json("POST", f"{P}/experiments/101/agent-results/preview", unmatched, status=400)
    cap.run(
        "preview_unmatched",
        'c.preview_agent_results_matching(e, [AgentTrialTaskRef(task_name="nope")])',
        lambda: c.preview_agent_results_matching(e, [AgentTrialTaskRef(task_name="nope")]),
    )
    nothing = {**unmatched, "kind": "nothing_stored", "detail": "Nothing was stored"}
    s.json("POST", f"{P}/experiments/101/agent-results", nothing, status=400)
    cap.run(
        "upload_nothing_stored",
        "c.upload_agent_results(e, [typed])",
        lambda: c.upload_agent_results(e, [typed]),
    )
    s.json("POST", f"{P}/experiments/101/agent-results", {"detail": "bad epoch"}, status=422)
    cap.run(
        "upload_422",
        "c.upload_agent_results(e, [typed])",
        lambda: c.upload_agent_results(e, [typed]),
    )


def waits(cap: Capture, c: Client) -> None:
    s = cap.stub
    gen = f"{P}/experiments/101/generation"
    s.json("GET", f"{P}/experiments/101", EXPERIMENT)
    e = c.get_experiment(id=101, fetch_responses=False)
    cap.run(
        "wait_no_task", "c.wait_for_agent_evaluation(e)", lambda: c.wait_for_agent_evaluation(e)
    )
    s.json("GET", f"{P}/experiments/101", {**EXPERIMENT, "has_internal_error": True})
    cap.run(
        "wait_no_task_internal_error",
        "c.wait_for_agent_evaluation(101)",
        lambda: c.wait_for_agent_evaluation(101),
    )
    s.json("GET", f"{P}/experiments/101", {**EXPERIMENT, "generation_task_id": "ev-1"})
    s.json(
        "GET",
        f"{gen}/ev-1",
        {"status": "PENDING", "generation_task_id": "ev-1", "has_internal_error": False},
        {
            "status": "STARTED",
            "logs_delta": "step 1\n",
            "completed_responses": 0,
            "completed_ratings": 0,
            "total_responses": 2,
            "generation_task_id": "ev-1",
            "has_internal_error": False,
        },
        {"status": "STARTED", "generation_task_id": "ev-2", "has_internal_error": False},
    )
    s.json(
        "GET",
        f"{gen}/ev-2",
        {
            "status": "STARTED",
            "logs_delta": "step 2\n",
            "completed_responses": 1,
            "completed_ratings": 1,
            "total_responses": 2,
            "generation_task_id": "ev-2",
            "has_internal_error": False,
        },
        {
            "status": "SUCCESS",
            "completed_responses": 2,
            "completed_ratings": 2,
            "total_responses": 2,
            "generation_task_id": None,
            "has_internal_error": False,
        },
    )
    cap.run(
        "wait_hand_off",
        "c.wait_for_agent_evaluation(e, polling_interval=0.1)",
        lambda: c.wait_for_agent_evaluation(e, polling_interval=0.1),
    )
    s.json(
        "GET",
        f"{gen}/ev-3",
        {"status": "STARTED", "generation_task_id": "ev-3", "has_internal_error": False},
        {"status": "PENDING", "generation_task_id": None, "has_internal_error": True},
    )
    cap.run(
        "wait_released_with_internal_error",
        'c.wait_for_agent_evaluation(e, task_id="ev-3", polling_interval=0.1)',
        lambda: c.wait_for_agent_evaluation(e, task_id="ev-3", polling_interval=0.1),
    )
    s.json(
        "GET",
        f"{gen}/bogus",
        {"status": "PENDING", "generation_task_id": None, "has_internal_error": False},
    )
    cap.run(
        "wait_unconfirmed_task",
        'c.wait_for_agent_evaluation(e, task_id="bogus", polling_interval=0.1)',
        lambda: c.wait_for_agent_evaluation(e, task_id="bogus", polling_interval=0.1),
    )
    s.json(
        "GET",
        f"{gen}/done-1",
        {"status": "SUCCESS", "generation_task_id": None, "has_internal_error": False},
    )
    cap.run(
        "wait_unconfirmed_task_finished",
        'c.wait_for_agent_evaluation(e, task_id="done-1", polling_interval=0.1)',
        lambda: c.wait_for_agent_evaluation(e, task_id="done-1", polling_interval=0.1),
    )
    s.json(
        "GET",
        f"{gen}/run-1",
        {"status": "STARTED", "generation_task_id": None, "has_internal_error": False},
    )
    cap.run(
        "wait_unconfirmed_task_running_released",
        'c.wait_for_agent_evaluation(e, task_id="run-1", polling_interval=0.1)',
        lambda: c.wait_for_agent_evaluation(e, task_id="run-1", polling_interval=0.1),
    )
    s.json(
        "GET",
        f"{gen}/conf-1",
        {"status": "STARTED", "generation_task_id": "conf-1", "has_internal_error": False},
        {"status": "PENDING", "generation_task_id": None, "has_internal_error": False},
    )
    cap.run(
        "wait_confirmed_then_released",
        'c.wait_for_agent_evaluation(e, task_id="conf-1", polling_interval=0.1)',
        lambda: c.wait_for_agent_evaluation(e, task_id="conf-1", polling_interval=0.1),
    )
    s.json(
        "GET",
        f"{gen}/first-1",
        {"status": "SUCCESS", "generation_task_id": "next-1", "has_internal_error": False},
    )
    s.json(
        "GET",
        f"{gen}/next-1",
        {"status": "SUCCESS", "generation_task_id": "next-1", "has_internal_error": False},
    )
    cap.run(
        "wait_success_but_other_task",
        'c.wait_for_agent_evaluation(e, task_id="first-1", polling_interval=0.1)',
        lambda: c.wait_for_agent_evaluation(e, task_id="first-1", polling_interval=0.1),
    )
    s.json(
        "GET",
        f"{gen}/old-1",
        {"status": "PENDING"},
        {"status": "STARTED"},
        {"status": "SUCCESS", "logs_delta": "done\n"},
    )
    cap.run(
        "wait_old_backend",
        'c.wait_for_agent_evaluation(e, task_id="old-1", polling_interval=0.1)',
        lambda: c.wait_for_agent_evaluation(e, task_id="old-1", polling_interval=0.1),
    )
    s.json(
        "GET",
        f"{gen}/fail-1",
        {
            "status": "FAILURE",
            "error_msg": "judge crashed",
            "generation_task_id": "other",
            "has_internal_error": True,
        },
    )
    cap.run(
        "wait_failure",
        'c.wait_for_agent_evaluation(e, task_id="fail-1", polling_interval=0.1)',
        lambda: c.wait_for_agent_evaluation(e, task_id="fail-1", polling_interval=0.1),
    )
    s.json(
        "GET",
        f"{gen}/rev-1",
        {"status": "REVOKED", "generation_task_id": "rev-1", "has_internal_error": False},
    )
    cap.run(
        "wait_revoked",
        'c.wait_for_agent_evaluation(e, task_id="rev-1", polling_interval=0.1)',
        lambda: c.wait_for_agent_evaluation(e, task_id="rev-1", polling_interval=0.1),
    )
    s.json(
        "GET",
        f"{gen}/same-1",
        {"status": "SUCCESS", "generation_task_id": "same-1", "has_internal_error": True},
    )
    cap.run(
        "wait_success_same_task",
        'c.wait_for_agent_evaluation(e, task_id="same-1", polling_interval=0.1)',
        lambda: c.wait_for_agent_evaluation(e, task_id="same-1", polling_interval=0.1),
    )
    s.json(
        "GET",
        f"{gen}/weird-1",
        {"status": "WEIRD", "generation_task_id": "weird-1"},
        {"status": "SUCCESS", "generation_task_id": "weird-1"},
    )
    cap.run(
        "wait_unknown_status",
        'c.wait_for_agent_evaluation(e, task_id="weird-1", polling_interval=0.1)',
        lambda: c.wait_for_agent_evaluation(e, task_id="weird-1", polling_interval=0.1),
    )
    s.json("GET", f"{gen}/slow-1", {"status": "STARTED", "generation_task_id": "slow-1"})
    cap.run(
        "wait_timeout",
        'c.wait_for_agent_evaluation(e, task_id="slow-1", timeout=0.5, polling_interval=0.2)',
        lambda: c.wait_for_agent_evaluation(e, task_id="slow-1", timeout=0.5, polling_interval=0.2),
    )
    cap.run(
        "wait_interval_too_small",
        'c.wait_for_agent_evaluation(e, task_id="slow-1", polling_interval=0.01)',
        lambda: c.wait_for_agent_evaluation(e, task_id="slow-1", polling_interval=0.01),
    )
    s.json("GET", f"{P}/experiments/101", {**EXPERIMENT, "generation_task_id": "ev-9"})
    s.json("GET", f"{gen}/ev-9", {"status": "SUCCESS", "generation_task_id": None})
    cap.run(
        "wait_rich",
        "e.wait_for_evaluation(polling_interval=0.1)",
        lambda: e.wait_for_evaluation(polling_interval=0.1),
    )


def streams(cap: Capture, base_url: str) -> None:
    s = cap.stub
    gen = f"{P}/experiments/101/generation"

    async def collect(experiment: Any, task_id: str | None = None, **kw: Any) -> list[Any]:
        async with AsyncClient(base_url=base_url, api_key="KEY123") as ac:
            return [ev async for ev in ac.stream_agent_evaluation(experiment, task_id, **kw)]

    s.json("GET", f"{P}/experiments/101", EXPERIMENT)
    cap.run("stream_no_task", "ac.stream_agent_evaluation(101)", lambda: collect(101))
    s.json("GET", f"{P}/experiments/101", {**EXPERIMENT, "has_internal_error": True})
    cap.run(
        "stream_no_task_internal_error", "ac.stream_agent_evaluation(101)", lambda: collect(101)
    )
    s.json("GET", f"{P}/experiments/101", {**EXPERIMENT, "generation_task_id": "ev-1"})
    s.sse(
        f"{gen}/ev-1/stream",
        [
            {"status": "PENDING"},
            {
                "status": "STARTED",
                "completed_responses": 0,
                "completed_ratings": 0,
                "total_responses": 2,
                "logs_delta": "a\n",
            },
            {"status": "MYSTERY", "logs_delta": "b\n"},
            {
                "status": "SUCCESS",
                "completed_responses": 2,
                "completed_ratings": 2,
                "total_responses": 2,
            },
        ],
    )
    cap.run(
        "stream",
        "ac.stream_agent_evaluation(101, polling_interval=0.5)",
        lambda: collect(101, polling_interval=0.5),
    )
    s.sse(f"{gen}/given/stream", [{"status": "FAILURE", "error_msg": "boom"}])
    cap.run(
        "stream_task_given",
        'ac.stream_agent_evaluation(101, "given", polling_interval=1)',
        lambda: collect(101, "given", polling_interval=1),
    )
    s.sse(
        f"{gen}/ho-1/stream",
        [
            {"status": "STARTED", "generation_task_id": "ho-1"},
            {"status": "STARTED", "generation_task_id": "ho-2"},
        ],
    )
    s.sse(f"{gen}/ho-2/stream", [{"status": "SUCCESS", "generation_task_id": None}])
    cap.run(
        "stream_hand_off", 'ac.stream_agent_evaluation(101, "ho-1")', lambda: collect(101, "ho-1")
    )
    cap.run(
        "stream_interval_bad",
        'ac.stream_agent_evaluation(101, "x", polling_interval=20)',
        lambda: collect(101, "x", polling_interval=20),
    )


def conversations(cap: Capture) -> None:
    cases: list[tuple[str, str, Callable[[], Any]]] = [
        (
            "uce_messages",
            'from_openai([{"role": "user", "content": "hi"}])',
            lambda: UCEPayloadV1.from_openai([{"role": "user", "content": "hi"}]),
        ),
        (
            "uce_everything",
            "from_openai(msgs, tools=..., tool_choice='auto', "
            "response_format=json_schema, attachments=[...], metadata={...})",
            lambda: UCEPayloadV1.from_openai(
                [
                    {"role": "system", "content": "Be brief"},
                    {"role": "user", "content": [{"type": "text", "text": "Weather?"}]},
                    {
                        "role": "assistant",
                        "content": None,
                        "tool_calls": [
                            {
                                "id": "t1",
                                "type": "function",
                                "function": {"name": "weather", "arguments": "{}"},
                            }
                        ],
                    },
                    {"role": "tool", "tool_call_id": "t1", "content": "sunny"},
                ],
                tools=[{"type": "function", "function": {"name": "weather", "parameters": {}}}],
                tool_choice="auto",
                response_format={
                    "type": "json_schema",
                    "json_schema": {"name": "w", "schema": {"type": "object"}, "strict": True},
                },
                attachments=[{"kind": "file", "name": "a.txt"}],
                metadata={"source": "crm", "empty": None},
            ),
        ),
        (
            "uce_json_object",
            "from_openai(msgs, response_format={'type': 'json_object'})",
            lambda: UCEPayloadV1.from_openai(
                [{"role": "user", "content": "x"}], response_format={"type": "json_object"}
            ),
        ),
        (
            "uce_text",
            "from_openai(msgs, response_format={'type': 'text'})",
            lambda: UCEPayloadV1.from_openai(
                [{"role": "user", "content": "x"}], response_format={"type": "text"}
            ),
        ),
        (
            "uce_empty_lists",
            "from_openai(msgs, tools=[], attachments=[], metadata={})",
            lambda: UCEPayloadV1.from_openai(
                [{"role": "user", "content": "x"}], tools=[], attachments=[], metadata={}
            ),
        ),
        ("uce_no_messages", "from_openai([])", lambda: UCEPayloadV1.from_openai([])),
        (
            "uce_schema_missing",
            "from_openai(msgs, response_format={'type': 'json_schema', 'json_schema': "
            "{'name': 'w'}})",
            lambda: UCEPayloadV1.from_openai(
                [{"role": "user", "content": "x"}],
                response_format={"type": "json_schema", "json_schema": {"name": "w"}},
            ),
        ),
        (
            "uce_bad_role",
            "from_openai([{'role': 'robot', 'content': 'x'}])",
            lambda: UCEPayloadV1.from_openai([{"role": "robot", "content": "x"}]),
        ),
    ]
    for key, code, fn in cases:
        start = len(cap.calls)
        cap.run(key, "UCEPayloadV1." + code, fn)
        entry = cap.calls[key]
        returned = entry.get("returned")
        if isinstance(returned, dict) and returned.get("type") == "UCEPayloadV1":
            payload = fn()
            entry["to_uce_dict"] = payload.to_uce_dict()
            entry["model_dump_json"] = json.loads(payload.model_dump_json())
        assert len(cap.calls) == start + 1


def main(out: str) -> None:
    stub = Stub()
    stub.json("POST", "/api/v0/version/compatible", {"is_compatible": True})
    stub.json("GET", "/api/v0/projects", {"items": [PROJECT], "count": 1})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler(stub))
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    base_url = f"http://127.0.0.1:{httpd.server_address[1]}"
    cap = Capture(stub)
    with Client(base_url=base_url, api_key="KEY123") as c:
        scenario_sets(cap, c)
        agent_results(cap, c)
        waits(cap, c)
    streams(cap, base_url)
    conversations(cap)
    httpd.shutdown()
    data = {
        "about": (
            "What the official elluminate package (version in 'package') sent, returned, "
            "raised and logged for the Advanced calls, against a scripted stub server "
            "(tests/golden/capture_advanced.py). API key KEY123, project 7, experiment 101, "
            "scenario set 41."
        ),
        "package": elluminate.__version__,
        "objects": {
            "project": PROJECT,
            "experiment": EXPERIMENT,
            "scenario_set": SCENARIO_SET,
            "scenario": SCENARIO,
            "definition": DEFINITION,
            "preview": PREVIEW,
            "uploaded": UPLOADED,
        },
        "calls": cap.calls,
    }
    with open(out, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=1, sort_keys=False)
        fh.write("\n")


if __name__ == "__main__":
    main(sys.argv[1])
