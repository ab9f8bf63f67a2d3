"""The wire structs of the Advanced features: their rules (CONTRACT.md 7.16-7.18), checked
when built and when decoded, with messages that say what to fix; the conversation envelope
and the typed ATIF dump as the official package builds them (tests/golden/official-advanced.json).
"""

from __future__ import annotations

import msgspec
import pytest

from elluminate import schemas
from elluminate.schemas import (
    AgentResultsUploadRequest,
    AgentTrialResult,
    AgentTrialTaskRef,
    CriterionRatingIn,
    ResponseFormat,
    ScenarioIn,
    UCEPayloadV1,
)
from elluminate.schemas.atif import (
    MAX_COST_USD,
    MAX_DURATION_SECONDS,
    MAX_TOKEN_COUNT,
    ATIFAgent,
    ATIFFinalMetrics,
    ATIFImageContentPart,
    ATIFObservationResult,
    ATIFStep,
    ATIFStepMetrics,
    ATIFSubagentTrajectoryRef,
    ATIFTextContentPart,
    ATIFToolCall,
    ATIFTrajectory,
)

AGENT = ATIFAgent(name="coder", version="1")


def trajectory(**changes):
    return ATIFTrajectory(**{"schema_version": "ATIF-v1.0", "agent": AGENT, "steps": [], **changes})


def sub(trajectory_id):
    return trajectory(trajectory_id=trajectory_id)


# ---- ATIF -------------------------------------------------------------------------------------


def test_limits_match_the_official_constants():
    assert (MAX_TOKEN_COUNT, MAX_COST_USD, MAX_DURATION_SECONDS) == (2**31 - 1, 1e9, 1e10)
    assert schemas.DEFAULT_EVALUATION_POLLING_INTERVAL == 3.0


@pytest.mark.parametrize("version", ["ATIF-v1.0", "ATIF-v1.7", "ATIF-v1.12", "ATIF-v1.01"])
def test_schema_versions_of_major_1_are_accepted(version):
    assert trajectory(schema_version=version).schema_version == version


@pytest.mark.parametrize(
    "version", ["ATIF-v2.0", "ATIF-v1", "ATIF-v1.x", "atif-v1.0", " ATIF-v1.0", "ATIF-v1.0-beta", 1]
)
def test_other_schema_versions_are_refused(version):
    with pytest.raises(ValueError, match=r"schema_version must look like 'ATIF-v1.<minor>'"):
        trajectory(schema_version=version)


def test_step_and_subagent_limits():
    steps = [ATIFStep(step_id=i, source="agent", message="m") for i in range(10_000)]
    assert len(trajectory(steps=steps).steps) == 10_000
    with pytest.raises(ValueError, match="steps may hold at most 10000 items, not 10001"):
        trajectory(steps=[*steps, ATIFStep(step_id=0, source="agent", message="m")])
    subs = [sub(str(i)) for i in range(1_000)]
    assert len(trajectory(subagent_trajectories=subs).subagent_trajectories) == 1_000
    with pytest.raises(ValueError, match="at most 1000 items, not 1001"):
        trajectory(subagent_trajectories=[*subs, sub("x")])


def test_subagent_trajectories_need_their_own_ids():
    assert trajectory(subagent_trajectories=[sub("a"), sub("b")])
    with pytest.raises(ValueError, match="trajectory_id 'a' appears twice"):
        trajectory(subagent_trajectories=[sub("a"), sub("a")])
    for missing in (None, ""):
        with pytest.raises(ValueError, match=r"subagent_trajectories\[1\] must set a non-empty"):
            trajectory(subagent_trajectories=[sub("a"), sub(missing)])


def test_nested_dicts_become_models_and_are_checked():
    built = ATIFTrajectory(
        schema_version="ATIF-v1.2",
        agent={"name": "a", "version": "1"},
        steps=[
            {
                "step_id": 1,
                "source": "agent",
                "message": [
                    {"type": "text", "text": "look"},
                    {"type": "image", "source": {"media_type": "image/png", "path": "a.png"}},
                ],
                "tool_calls": [{"tool_call_id": "c", "function_name": "f", "arguments": {}}],
                "observation": {"results": [{"source_call_id": "c", "content": "ok"}]},
            }
        ],
        subagent_trajectories=[
            {
                "schema_version": "ATIF-v1.0",
                "trajectory_id": "s",
                "agent": {"name": "b", "version": "2"},
                "steps": [],
            }
        ],
    )
    step = built.steps[0]
    assert isinstance(built.agent, ATIFAgent) and isinstance(step, ATIFStep)
    assert [type(p) for p in step.message] == [ATIFTextContentPart, ATIFImageContentPart]
    assert isinstance(step.tool_calls[0], ATIFToolCall)
    assert isinstance(built.subagent_trajectories[0], ATIFTrajectory)
    with pytest.raises(ValueError, match=r"ATIFTrajectory.steps: .*prompt_tokens must be between"):
        ATIFTrajectory(
            schema_version="ATIF-v1.2",
            agent=AGENT,
            steps=[
                {"step_id": 1, "source": "agent", "message": "m", "metrics": {"prompt_tokens": -1}}
            ],
        )


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: ATIFStep(step_id=1, source="tool", message="x"), "source must be one of"),
        (lambda: ATIFStep(step_id="1", source="agent", message="x"), "step_id must be an integer"),
        (
            lambda: ATIFStep(step_id=1, source="agent", message="x", model_name="m" * 257),
            "model_name must be at most 256 characters",
        ),
        (
            lambda: ATIFStep(step_id=1, source="agent", message=[{"type": "audio"}]),
            "type 'text' or 'image'",
        ),
        (
            lambda: ATIFStep(step_id=1, source="agent", message=3),
            "must be a string or a list of content parts",
        ),
        (
            lambda: ATIFStepMetrics(prompt_tokens=-1),
            "prompt_tokens must be between 0 and 2147483647",
        ),
        (lambda: ATIFStepMetrics(cached_tokens=2**31), "cached_tokens must be between"),
        (lambda: ATIFStepMetrics(cost_usd=2e9), "cost_usd must be between 0 and 1000000000"),
        (
            lambda: ATIFStepMetrics(prompt_token_ids=[1, "2"]),
            r"prompt_token_ids\[1\] must be an integer",
        ),
        (lambda: ATIFFinalMetrics(total_cost_usd=1e10), "total_cost_usd must be between"),
        (lambda: ATIFFinalMetrics(total_steps=-1), "total_steps must be between"),
        (
            lambda: ATIFToolCall(tool_call_id="1", function_name="f", arguments="{}"),
            "parse a JSON string",
        ),
        (lambda: ATIFSubagentTrajectoryRef(session_id="s"), "'trajectory_id' or 'trajectory_path'"),
        (
            lambda: ATIFSubagentTrajectoryRef(trajectory_id=""),
            "'trajectory_id' or 'trajectory_path'",
        ),
        (lambda: ATIFObservationResult(content=[{"type": "text"}]), r"content\[0\]"),
        (lambda: ATIFAgent(name="a", version=2), "version must be a string"),
        (lambda: ATIFAgent(name="a", version="1", extra=[]), "extra must be a dict"),
        (lambda: ATIFTextContentPart(type="image", text="x"), "type must be one of 'text'"),
    ],
)
def test_atif_rules(build, message):
    with pytest.raises(ValueError, match=message):
        build()


def test_subagent_refs_and_reasoning_effort():
    assert ATIFSubagentTrajectoryRef(trajectory_path="sub/a.json").trajectory_path
    assert ATIFStep(step_id=1, source="agent", message="x", reasoning_effort=0.5).reasoning_effort
    assert ATIFStep(step_id=-1, source="system", message="x", reasoning_effort="high")


def test_decoding_checks_the_same_rules():
    good = (
        b'{"schema_version":"ATIF-v1.3","agent":{"name":"a","version":"1"},'
        b'"steps":[{"step_id":1,"source":"agent","message":[{"type":"text","text":"hi"}]}]}'
    )
    decoded = ATIFTrajectory.model_validate_json(good)
    assert isinstance(decoded.steps[0].message[0], ATIFTextContentPart)
    with pytest.raises(ValueError, match=r"schema_version must look like"):
        ATIFTrajectory.model_validate_json(good.replace(b"v1.3", b"v2.3"))
    with pytest.raises(msgspec.ValidationError, match=r"at `\$.steps\[0\].metrics`"):
        msgspec.json.decode(
            good.replace(b'"source"', b'"metrics":{"prompt_tokens":-5},"source"'),
            type=ATIFTrajectory,
        )


# ---- agent results ---------------------------------------------------------------------------


def test_task_references():
    assert AgentTrialTaskRef(task_id=1, task_name="a")  # both may be given
    assert AgentTrialTaskRef(task_name=" a ").task_name == " a "  # sent as written
    for bad in ({}, {"task_name": ""}, {"task_name": "  "}):
        with pytest.raises(ValueError, match="needs task_id or task_name"):
            AgentTrialTaskRef(**bad)
    with pytest.raises(ValueError, match="task_id must be at least 1, not 0"):
        AgentTrialTaskRef(task_id=0)
    with pytest.raises(ValueError, match="needs task_id or task_name"):
        AgentTrialResult(reward=0.5)


def test_criterion_ratings():
    assert CriterionRatingIn(label="style", rating="NO").description == ""
    assert CriterionRatingIn(criterion_id=3, rating=schemas.RatingValue.YES).rating == "YES"
    for bad, message in [
        ({"rating": "YES"}, "needs criterion_id or label"),
        ({"label": "  ", "rating": "YES"}, "needs criterion_id or label"),
        ({"label": "x" * 26, "rating": "NO"}, "label must be at most 25 characters"),
        ({"label": "x", "rating": "yes"}, "rating must be one of 'YES', 'NO'"),
        ({"criterion_id": 0, "rating": "NO"}, "criterion_id must be at least 1"),
    ]:
        with pytest.raises(ValueError, match=message):
            CriterionRatingIn(**bad)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"reward": 1.5}, "reward must be between 0 and 1"),
        ({"reward": -0.1}, "reward must be between 0 and 1"),
        ({"steps": -1}, "steps must be between 0 and 2147483647"),
        ({"steps": 1.5}, "steps must be an integer"),
        ({"cost_usd": MAX_COST_USD * 2}, "cost_usd must be between 0 and 1000000000"),
        ({"duration_seconds": MAX_DURATION_SECONDS + 1}, "duration_seconds must be between"),
        ({"input_tokens": MAX_TOKEN_COUNT + 1}, "input_tokens must be between"),
        ({"output_tokens": -1}, "output_tokens must be between"),
        ({"cached_tokens": True}, "cached_tokens must be an integer"),
        ({"trajectory": "ATIF"}, "trajectory must be an ATIFTrajectory or a raw ATIF dict"),
        ({"messages": [{"role": "robot", "content": "x"}]}, r"messages\[0\] has role 'robot'"),
        ({"messages": [{"role": "user"}]}, r"messages\[0\] \(user\) lacks 'content'"),
        ({"messages": [{"role": "tool", "content": "r"}]}, "lacks 'tool_call_id'"),
        ({"messages": "hello"}, "must be a list of chat messages"),
        ({"metadata": ["x"]}, "metadata must be a dict"),
        ({"criterion_ratings": [{"rating": "NO"}]}, "needs criterion_id or label"),
    ],
)
def test_trial_limits(changes, message):
    with pytest.raises(ValueError, match=message):
        AgentTrialResult(task_id=1, **changes)


def test_trial_limits_are_inclusive_and_raw_trajectories_stay_dicts():
    trial = AgentTrialResult(
        task_id=1,
        reward=1,
        steps=MAX_TOKEN_COUNT,
        cost_usd=MAX_COST_USD,
        duration_seconds=MAX_DURATION_SECONDS,
        input_tokens=0,
        trajectory={"schema_version": "anything", "steps": None},
        criterion_ratings=[{"label": "x", "rating": "NO"}],
        messages=[{"role": "assistant", "content": None, "tool_calls": []}],
    )
    assert trial.trajectory == {"schema_version": "anything", "steps": None}
    assert isinstance(trial.criterion_ratings[0], CriterionRatingIn)


def test_upload_epoch():
    assert AgentResultsUploadRequest(results=[]).epoch == 1
    for epoch in (0, -1, 1.5, None):
        with pytest.raises(ValueError, match="epoch must be"):
            AgentResultsUploadRequest(results=[], epoch=epoch)


def test_responses_parse_like_the_official_examples(official):
    definition = schemas.AgentResultsDefinition.model_validate(official.objects["definition"])
    assert definition.model_dump(mode="json") == official.objects["definition"]
    preview = schemas.AgentResultsMatchPreview.model_validate(official.objects["preview"])
    assert [r.index for r in preview.unmatched_results] == [1]
    uploaded = schemas.AgentResultsUploadResponse.model_validate(
        {"created_responses": 1, "created_ratings": 0}
    )
    assert (uploaded.errors, uploaded.pending_evaluations, uploaded.evaluation_task_id) == (
        [],
        0,
        None,
    )


# ---- scenarios -------------------------------------------------------------------------------


def test_scenario_in_strips_goal_and_outcome():
    scenario = ScenarioIn(goal="  Get a refund\n", expected_conversation_outcome=" Refunded ")
    assert (scenario.goal, scenario.expected_conversation_outcome) == ("Get a refund", "Refunded")
    assert scenario.model_dump() == {
        "goal": "Get a refund",
        "expected_conversation_outcome": "Refunded",
        "field_values": {},
    }
    with pytest.raises(ValueError, match="goal must not be empty"):
        ScenarioIn(goal=" \t", expected_conversation_outcome="x")
    with pytest.raises(ValueError, match="field_values must be a dict"):
        ScenarioIn(goal="g", expected_conversation_outcome="o", field_values=["x"])
    decoded = msgspec.json.decode(
        b'{"goal": " g ", "expected_conversation_outcome": "o"}', type=ScenarioIn
    )
    assert decoded.goal == "g"


def test_scenario_set_parses_the_official_example(official):
    parsed = schemas.ScenarioSet.model_validate(official.objects["scenario_set"])
    assert parsed.model_dump(mode="json") == official.objects["scenario_set"]
    assert repr(parsed) == "ScenarioSet(id=41, name='Support', fields=['persona'], scenarios=1)"
    minimal = schemas.ScenarioSet.model_validate({"id": 1, "name": "x"})
    assert (minimal.fields, minimal.scenarios_count, minimal.read_only) == ([], 0, False)


# ---- the conversation envelope ---------------------------------------------------------------


UCE_CASES = {
    "uce_messages": lambda: UCEPayloadV1.from_openai([{"role": "user", "content": "hi"}]),
    "uce_everything": lambda: UCEPayloadV1.from_openai(
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
    "uce_json_object": lambda: UCEPayloadV1.from_openai(
        [{"role": "user", "content": "x"}], response_format={"type": "json_object"}
    ),
    "uce_text": lambda: UCEPayloadV1.from_openai(
        [{"role": "user", "content": "x"}], response_format={"type": "text"}
    ),
    "uce_empty_lists": lambda: UCEPayloadV1.from_openai(
        [{"role": "user", "content": "x"}], tools=[], attachments=[], metadata={}
    ),
}


@pytest.mark.parametrize("name", sorted(UCE_CASES))
def test_conversation_envelope_like_the_official_package(official, name):
    payload = UCE_CASES[name]()
    expected = official.call(name)
    assert payload.to_uce_dict() == expected["to_uce_dict"]
    assert payload.schema_version == "elluminate.uce/1"
    # the envelope round-trips through its own decoder
    assert UCEPayloadV1.model_validate(payload.to_uce_dict()).to_uce_dict() == payload.to_uce_dict()


@pytest.mark.parametrize(
    ("name", "call", "message"),
    [
        ("uce_no_messages", lambda: UCEPayloadV1.from_openai([]), "at least one message"),
        (
            "uce_schema_missing",
            lambda: UCEPayloadV1.from_openai(
                [{"role": "user", "content": "x"}],
                response_format={"type": "json_schema", "json_schema": {"name": "w"}},
            ),
            "the schema is missing",
        ),
        (
            "uce_bad_role",
            lambda: UCEPayloadV1.from_openai([{"role": "robot", "content": "x"}]),
            "has role 'robot'",
        ),
    ],
)
def test_conversation_envelope_refusals(official, name, call, message):
    assert "ValueError" in official.call(name)["raised"]["mro"]
    with pytest.raises(ValueError, match=message):
        call()


def test_more_envelope_refusals():
    msgs = [{"role": "user", "content": "x"}]
    with pytest.raises(ValueError, match="response_format type must be"):
        UCEPayloadV1.from_openai(msgs, response_format={"type": "xml"})
    with pytest.raises(ValueError, match="tool_choice must be"):
        UCEPayloadV1.from_openai(msgs, tool_choice="sometimes")
    with pytest.raises(ValueError, match=r"tools\[0\] must look like"):
        UCEPayloadV1.from_openai(msgs, tools=[{"a": 1}])
    with pytest.raises(ValueError, match="must be a list of chat messages"):
        UCEPayloadV1.from_openai("hi")
    with pytest.raises(ValueError, match="hint must be one of"):
        ResponseFormat(hint="xml")
    with pytest.raises(ValueError):
        UCEPayloadV1.model_validate({"schema_version": "elluminate.uce/2", "input": {}})


def test_response_format_uses_json_schema_on_the_wire():
    rf = ResponseFormat.from_openai(
        {"type": "json_schema", "json_schema": {"name": "n", "schema": {"type": "object"}}}
    )
    assert rf.response_schema == {"type": "object"}
    assert msgspec.to_builtins(rf) == {"json_schema": {"type": "object"}, "hint": None}
    assert ResponseFormat.model_validate({"json_schema": {"a": 1}}).response_schema == {"a": 1}
    assert ResponseFormat.from_openai(rf) is rf
    messages = [{"role": "user", "content": "x", "name": "kept"}]
    payload = UCEPayloadV1.from_openai(
        tuple(messages), tool_choice={"type": "function", "function": {"name": "f"}}
    )
    assert payload.to_uce_dict()["input"] == {
        "messages": messages,
        "tool_choice": {"type": "function", "function": {"name": "f"}},
    }
