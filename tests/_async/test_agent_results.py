"""Agent results and the wait for their evaluation: the exact requests (as the official
package sends them, from tests/golden/official-advanced.json), the parsed answers, partial
uploads and unmatched tasks, the hand-off rules of the wait, and bad input refused before
anything is sent.

The server side is not built yet, so a recording stub answers here, as it answered the
official package.
"""

from __future__ import annotations

import logging

import pytest

from elluminate import AsyncClient, schemas
from elluminate.exceptions import (
    APIError,
    BadRequestError,
    PartialUploadError,
    TaskMatchError,
    ValidationError,
)
from elluminate.schemas import AgentTrialResult, AgentTrialTaskRef, CriterionRatingIn, TaskStatus
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

PREFIX = "/api/v0/projects/7"
EXPERIMENT = f"{PREFIX}/experiments/101"
GENERATION = f"{EXPERIMENT}/generation"


@pytest.fixture
async def stub(recorder, official):
    recorder.answer("GET", "/api/v0/projects", {"items": [official.objects["project"]], "count": 1})
    recorder.answer("GET", EXPERIMENT, official.objects["experiment"])
    async with AsyncClient(base_url=recorder.base_url, api_key="KEY123") as client:
        yield client


@pytest.fixture
async def experiment(stub):
    return await stub.get_experiment(id=101, fetch_responses=False)


async def run_like_official(recorder, official, name, call):
    """Answer as the stub answered the official package, run ``call``, compare requests."""
    official.replay(recorder, name)
    start = len(recorder.requests)
    try:
        return await call()
    finally:
        official.assert_sent(recorder, start, name)


def typed_trajectory():
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


def typed_result():
    return AgentTrialResult(
        task_name="fix-bug",
        messages=[
            {"role": "user", "content": "Fix it"},
            {"role": "assistant", "content": "Done"},
        ],
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


def raw_result():
    return AgentTrialResult(
        task_id=7,
        trajectory={
            "schema_version": "ATIF-v1.9",
            "custom": {"kept": [1, None]},
            "steps": "not-validated",
        },
    )


def event_like_official(event, official, name, *, logs=True):
    expected = official.call(name)["returned"]["value"]
    assert event.status.value == expected["status"]
    assert event.error_msg == expected["error_msg"]
    progress = expected["progress"]
    if progress is None:
        assert event.progress is None
    else:
        assert (
            event.progress.responses_generated,
            event.progress.responses_rated,
            event.progress.total_responses,
        ) == (
            progress["responses_generated"],
            progress["responses_rated"],
            progress["total_responses"],
        )
    if logs:
        assert event.logs_delta == expected["logs_delta"]
    assert event.result is None


# ---- definition and preview -------------------------------------------------------------


async def test_definition(stub, recorder, official, experiment):
    definition = await run_like_official(
        recorder, official, "definition", lambda: stub.get_agent_results_definition(101)
    )
    assert isinstance(definition, schemas.AgentResultsDefinition)
    assert definition.model_dump(mode="json") == official.objects["definition"]
    [task] = definition.tasks
    assert (task.task_name, task.criteria[0].scope, task.row_exists) == ("fix-bug", "task", True)
    again = await run_like_official(
        recorder, official, "definition_rich", lambda: experiment.aget_agent_results_definition()
    )
    assert again == definition


async def test_preview_sends_only_the_task_references(stub, recorder, official, experiment):
    preview = await run_like_official(
        recorder,
        official,
        "preview",
        lambda: stub.preview_agent_results_matching(
            experiment,
            [
                AgentTrialTaskRef(task_id=7),
                AgentTrialResult(
                    task_name="nope", reward=1.0, messages=[{"role": "user", "content": "hi"}]
                ),
            ],
        ),
    )
    assert (preview.matched, preview.unmatched, preview.task_name_column) == (1, 1, "task")
    assert [r.matched for r in preview.results] == [True, False]
    assert [r.task_name for r in preview.unmatched_results] == ["nope"]
    await run_like_official(
        recorder,
        official,
        "preview_rich",
        lambda: experiment.apreview_agent_results_matching([{"task_name": "fix-bug"}]),
    )


async def test_a_400_on_preview_stays_an_api_error(stub, recorder, official, experiment):
    with pytest.raises(BadRequestError) as info:
        await run_like_official(
            recorder,
            official,
            "preview_unmatched",
            lambda: stub.preview_agent_results_matching(
                experiment, [AgentTrialTaskRef(task_name="nope")]
            ),
        )
    assert not isinstance(info.value, TaskMatchError)


# ---- upload ------------------------------------------------------------------------------


async def test_upload_typed_and_raw_trajectories(stub, recorder, official, experiment):
    answer = await run_like_official(
        recorder,
        official,
        "upload",
        lambda: stub.upload_agent_results(experiment, [typed_result(), raw_result()]),
    )
    assert answer.model_dump(mode="json") == official.objects["uploaded"]
    assert answer.evaluation_task_id == "ev-1" and answer.pending_evaluations == 1
    # the raw trajectory went out verbatim, the typed one with all its keys
    [typed, raw] = recorder.requests[-1].body["results"]
    assert raw["trajectory"] == {
        "schema_version": "ATIF-v1.9",
        "custom": {"kept": [1, None]},
        "steps": "not-validated",
    }
    assert typed["trajectory"]["steps"][0]["tool_calls"] is None


async def test_upload_through_the_experiment_and_from_dicts(stub, recorder, official, experiment):
    await run_like_official(
        recorder,
        official,
        "upload_rich",
        lambda: experiment.aupload_agent_results([raw_result()], epoch=2, evaluate=False),
    )
    await run_like_official(
        recorder,
        official,
        "upload_dicts",
        lambda: stub.upload_agent_results(experiment, [{"task_id": 7}]),
    )


async def test_partial_upload_is_logged(stub, recorder, official, experiment, caplog):
    with caplog.at_level(logging.WARNING, logger="elluminate"):
        answer = await run_like_official(
            recorder,
            official,
            "upload_partial_logged",
            lambda: stub.upload_agent_results(experiment, [typed_result(), raw_result()]),
        )
    assert answer.errors == official.call("upload_partial_logged")["returned"]["value"]["errors"]
    [record] = [r for r in caplog.records if r.name == "elluminate"]
    text = record.getMessage()
    assert "unknown criterion label 'style'" in text
    assert "trajectory dropped: steps must be a list" in text
    assert "ATIF-v1." in text  # the hint for dropped trajectories


async def test_partial_upload_raises_when_asked(stub, recorder, official, experiment):
    with pytest.raises(PartialUploadError) as info:
        await run_like_official(
            recorder,
            official,
            "upload_partial_raised",
            lambda: stub.upload_agent_results(
                experiment, [typed_result(), raw_result()], raise_on_partial=True
            ),
        )
    err = info.value
    expected = official.call("upload_partial_raised")["raised"]["response"]
    assert err.response.model_dump(mode="json") == expected
    assert "stored already" in str(err) and "twice" in str(err)
    assert "ATIF-v1." in str(err)
    with pytest.raises(PartialUploadError) as info:
        await run_like_official(
            recorder,
            official,
            "upload_partial_raised_no_trajectory_hint",
            lambda: stub.upload_agent_results(experiment, [typed_result()], raise_on_partial=True),
        )
    assert "ATIF-v1." not in str(info.value)


async def test_no_matching_task_raises_task_match_error(stub, recorder, official, experiment):
    with pytest.raises(TaskMatchError) as info:
        await run_like_official(
            recorder,
            official,
            "upload_unmatched",
            lambda: stub.upload_agent_results(experiment, [AgentTrialResult(task_name="nope")]),
        )
    err = info.value
    raised = official.call("upload_unmatched")["raised"]
    assert isinstance(err, BadRequestError) and isinstance(err, ValidationError)
    assert err.status_code == 400
    assert [t.model_dump() for t in err.accepted_tasks] == [
        t["value"] for t in raised["accepted_tasks"]
    ]
    assert err.accepted_tasks_total == raised["accepted_tasks_total"]
    assert err.reasons == raised["reasons"]
    assert "No result matched a task" in str(err) and "'fix-bug' (id 7)" in str(err)
    assert err.body["kind"] == "unmatched_tasks"


async def test_other_upload_refusals_stay_api_errors(stub, recorder, official, experiment):
    for name, status in (("upload_nothing_stored", 400), ("upload_422", 422)):
        with pytest.raises(APIError) as info:
            await run_like_official(
                recorder,
                official,
                name,
                lambda: stub.upload_agent_results(experiment, [typed_result()]),
            )
        assert not isinstance(info.value, TaskMatchError)
        assert info.value.status_code == status
        assert str(info.value) == official.call(name)["raised"]["str"]


async def test_bad_uploads_are_refused_before_sending(stub, recorder, experiment):
    start = len(recorder.requests)
    with pytest.raises(ValueError, match="epoch must be at least 1"):
        await stub.upload_agent_results(experiment, [raw_result()], epoch=0)
    with pytest.raises(ValueError, match="results must be a list"):
        await stub.upload_agent_results(experiment, raw_result())
    with pytest.raises(ValueError, match=r"results\[1\] must be an AgentTrialResult or a dict"):
        await stub.upload_agent_results(experiment, [raw_result(), "fix-bug"])
    with pytest.raises(ValueError, match=r"results\[0\]: .*reward must be between 0 and 1"):
        await stub.upload_agent_results(experiment, [{"task_id": 7, "reward": 1.5}])
    with pytest.raises(ValueError, match=r"results\[0\]: .*needs task_id or task_name"):
        await stub.upload_agent_results(experiment, [{"reward": 0.5}])
    with pytest.raises(ValueError, match="evaluate must be True or False"):
        await stub.upload_agent_results(experiment, [raw_result()], evaluate="yes")
    with pytest.raises(ValueError, match="an experiment or its integer id"):
        await stub.upload_agent_results("Agent run", [raw_result()])
    with pytest.raises(ValueError, match=r"results\[0\]: .*needs task_id or task_name"):
        await stub.preview_agent_results_matching(experiment, [{"task_name": " "}])
    assert recorder.since(start) == []


async def test_an_empty_upload_sends_nothing(stub, recorder, experiment):
    start = len(recorder.requests)
    answer = await stub.upload_agent_results(experiment, [])
    assert (answer.created_responses, answer.created_ratings, answer.errors) == (0, 0, [])
    assert recorder.since(start) == []  # (the official package posts an empty upload)


# ---- waiting for the evaluation ------------------------------------------------------------


async def test_wait_without_a_running_evaluation(stub, recorder, official, experiment):
    event = await run_like_official(
        recorder, official, "wait_no_task", lambda: stub.wait_for_agent_evaluation(experiment)
    )
    event_like_official(event, official, "wait_no_task")
    assert event.is_success
    event = await run_like_official(
        recorder,
        official,
        "wait_no_task_internal_error",
        lambda: stub.wait_for_agent_evaluation(101),
    )
    event_like_official(event, official, "wait_no_task_internal_error")
    assert event.is_failure


async def test_wait_follows_a_hand_off(stub, recorder, official, experiment):
    event = await run_like_official(
        recorder,
        official,
        "wait_hand_off",
        # (a timeout, so that a wait that stopped following hand-offs fails, not hangs)
        lambda: stub.wait_for_agent_evaluation(experiment, timeout=60, polling_interval=0.1),
    )
    event_like_official(event, official, "wait_hand_off", logs=False)
    # all log text of the wait (the official package keeps only the last poll's, here none)
    assert event.logs_delta == "step 1\nstep 2\n"


@pytest.mark.parametrize(
    ("name", "task_id"),
    [
        ("wait_released_with_internal_error", "ev-3"),
        ("wait_confirmed_then_released", "conf-1"),
        ("wait_success_but_other_task", "first-1"),
        ("wait_old_backend", "old-1"),
        ("wait_failure", "fail-1"),
        ("wait_revoked", "rev-1"),
        ("wait_success_same_task", "same-1"),
        ("wait_unknown_status", "weird-1"),
    ],
)
async def test_wait_outcomes_like_the_official_package(
    stub, recorder, official, experiment, caplog, name, task_id
):
    with caplog.at_level(logging.WARNING, logger="elluminate"):
        event = await run_like_official(
            recorder,
            official,
            name,
            lambda: stub.wait_for_agent_evaluation(
                experiment, task_id=task_id, timeout=60, polling_interval=0.1
            ),
        )
    event_like_official(event, official, name)
    warned = [r for r in caplog.records if r.name == "elluminate"]
    assert bool(warned) == event.is_failure
    if warned:
        assert event.status.value in warned[0].getMessage()


@pytest.mark.parametrize(
    "name",
    [
        "wait_unconfirmed_task",
        "wait_unconfirmed_task_finished",
        "wait_unconfirmed_task_running_released",
    ],
)
async def test_wait_refuses_a_task_that_is_not_the_experiments(
    stub, recorder, official, experiment, name
):
    task_id = official.requests(name)[0]["path"].rsplit("/", 1)[-1]
    with pytest.raises(
        ValueError, match=f"task '{task_id}' is not an evaluation task of experiment 101"
    ):
        await run_like_official(
            recorder,
            official,
            name,
            lambda: stub.wait_for_agent_evaluation(
                experiment, task_id=task_id, polling_interval=0.1
            ),
        )


async def test_wait_times_out(stub, recorder, official, experiment):
    official.replay(recorder, "wait_timeout")
    start = len(recorder.requests)
    with pytest.raises(TimeoutError, match="did not end within the timeout"):
        await stub.wait_for_agent_evaluation(
            experiment, task_id="slow-1", timeout=0.5, polling_interval=0.2
        )
    polls = recorder.since(start)
    assert polls and {r.path for r in polls} == {f"{GENERATION}/slow-1"}


async def test_wait_arguments_are_checked_before_sending(stub, recorder, experiment):
    start = len(recorder.requests)
    with pytest.raises(ValueError, match="polling_interval must be at least 0.1 seconds"):
        await stub.wait_for_agent_evaluation(experiment, task_id="slow-1", polling_interval=0.01)
    with pytest.raises(ValueError, match="timeout must be a positive number"):
        await stub.wait_for_agent_evaluation(experiment, timeout=0)
    with pytest.raises(ValueError, match="task_id must be a task id string"):
        await stub.wait_for_agent_evaluation(experiment, task_id=12)
    assert recorder.since(start) == []


async def test_wait_through_the_experiment(stub, recorder, official, experiment):
    event = await run_like_official(
        recorder,
        official,
        "wait_rich",
        lambda: experiment.await_for_evaluation(polling_interval=0.1),
    )
    event_like_official(event, official, "wait_rich")


# ---- streaming the evaluation --------------------------------------------------------------


async def collect(stream):
    return [event async for event in stream]


async def test_stream_without_a_running_evaluation(stub, recorder, official):
    for name in ("stream_no_task", "stream_no_task_internal_error"):
        events = await run_like_official(
            recorder, official, name, lambda: collect(stub.stream_agent_evaluation(101))
        )
        [event] = events
        assert event.status.value == official.call(name)["returned"][0]["value"]["status"]
        assert event.error_msg == official.call(name)["returned"][0]["value"]["error_msg"]


async def test_stream_events_like_the_official_package(stub, recorder, official):
    events = await run_like_official(
        recorder,
        official,
        "stream",
        lambda: collect(stub.stream_agent_evaluation(101, polling_interval=0.5)),
    )
    expected = [e["value"] for e in official.call("stream")["returned"]]
    assert [e.status.value for e in events] == [e["status"] for e in expected]
    assert [e.logs_delta for e in events] == [e["logs_delta"] for e in expected]
    assert [e.progress is None for e in events] == [e["progress"] is None for e in expected]
    assert events[-1].is_success and not any(e.is_complete for e in events[:-1])
    events = await run_like_official(
        recorder,
        official,
        "stream_task_given",
        lambda: collect(stub.stream_agent_evaluation(101, "given", polling_interval=1)),
    )
    assert [(e.status, e.error_msg) for e in events] == [(TaskStatus.FAILURE, "boom")]


async def test_stream_follows_a_hand_off(stub, recorder, official):
    official.replay(recorder, "stream_hand_off")  # ho-1 streams two events, then ends
    recorder.script(
        "GET",
        f"{GENERATION}/ho-2/stream",
        (200, "text/event-stream", 'data: {"status": "SUCCESS", "generation_task_id": null}\n\n'),
    )
    start = len(recorder.requests)
    events = await collect(stub.stream_agent_evaluation(101, "ho-1"))
    # the official package stops after the first stream without a final event; this one
    # follows the experiment's new task to its end
    assert [e.status for e in events] == [
        TaskStatus.STARTED,
        TaskStatus.STARTED,
        TaskStatus.SUCCESS,
    ]
    assert [(r.path, r.query) for r in recorder.since(start)] == [
        (f"{GENERATION}/ho-1/stream", {"polling_interval": ["0.5"]}),
        (f"{GENERATION}/ho-2/stream", {"polling_interval": ["0.5"]}),
    ]


async def test_stream_that_ends_early_is_continued_by_polling(stub, recorder):
    recorder.script(
        "GET",
        f"{GENERATION}/cut-1/stream",
        (200, "text/event-stream", 'data: {"status": "STARTED", "logs_delta": "one|"}\n\n'),
    )
    recorder.script(
        "GET",
        f"{GENERATION}/cut-1",
        (200, "application/json", {"status": "STARTED", "logs_delta": "one|two|"}),
        (200, "application/json", {"status": "SUCCESS", "logs_delta": "three|"}),
    )
    start = len(recorder.requests)
    events = await collect(stub.stream_agent_evaluation(101, "cut-1", polling_interval=0.1))
    assert [e.status for e in events] == [
        TaskStatus.STARTED,
        TaskStatus.STARTED,
        TaskStatus.SUCCESS,
    ]
    # the polls start the log again for their consumer: what the stream gave is not repeated
    assert "".join(e.logs_delta or "" for e in events) == "one|two|three|"
    sent = recorder.since(start)
    assert [r.path for r in sent] == [f"{GENERATION}/cut-1/stream"] + [f"{GENERATION}/cut-1"] * 2
    assert len({r.query["connection_uuid"][0] for r in sent[1:]}) == 1


async def test_stream_refused_by_the_server_is_followed_by_polling(stub, recorder):
    recorder.script("GET", f"{GENERATION}/json-1", (200, "application/json", {"status": "SUCCESS"}))
    events = await collect(stub.stream_agent_evaluation(101, "json-1"))  # no stream route
    assert [e.status for e in events] == [TaskStatus.SUCCESS]


async def test_stream_polling_interval_is_checked(stub, recorder):
    start = len(recorder.requests)
    for interval in (0.05, 20):
        with pytest.raises(ValueError, match="between 0.1 and 10.0 seconds"):
            await collect(stub.stream_agent_evaluation(101, "x", polling_interval=interval))
    assert recorder.since(start) == []
