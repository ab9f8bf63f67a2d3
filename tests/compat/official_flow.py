"""Runs the OFFICIAL elluminate package (black box, its own virtualenv) against our server.

Usage: python official_flow.py BASE_URL API_KEY STAGE
(STAGE: basic | full | projects | views | scenario_sets | agent_results | agent_stream |
multi_turn)
Prints one line "OK <stage> <details>" on success; any exception fails the run.

The Advanced stages replay the calls of ``tests/golden/capture_advanced.py`` (which recorded
them against a stub) against the real server.
"""

from __future__ import annotations

import sys
from typing import Any

from elluminate import Client  # the official package, not this repository's


def basic(client: Client) -> str:
    template = client.create_prompt_template(name="Compat", messages="Explain {{topic}} briefly.")
    again = client.get_prompt_template(name="Compat")
    assert again.id == template.id, (again, template)
    assert list(again.placeholders) == ["topic"], again.placeholders
    same, created = client.get_or_create_prompt_template(
        name="Compat", messages="Explain {{topic}} briefly."
    )
    assert not created and same.id == template.id
    collection = client.create_collection(name="CompatTopics", variables=[{"topic": "AI"}])
    collection.add_many(variables=[{"topic": "ML"}, {"topic": "AI"}], skip_existing=True)
    fetched = client.get_collection(name="CompatTopics")
    topics = sorted(v.input_values["topic"] for v in fetched.variables)
    assert topics == ["AI", "ML"], topics
    listed = [t.name for t in client.list_prompt_templates()]
    assert "Compat" in listed, listed
    return f"template={template.id} collection={fetched.id} rows={len(topics)}"


def full(client: Client) -> str:
    details = basic(client)
    template = client.get_prompt_template(name="Compat")
    criteria = template.generate_criteria()
    assert criteria, "no criteria generated"
    collection = client.get_collection(name="CompatTopics")
    experiment = client.run_experiment(
        name="CompatRun", prompt_template=template, collection=collection
    )
    responses = list(experiment.responses())
    assert len(responses) == 2, len(responses)
    for response in responses:
        assert response.response_str, response
        assert len(response.ratings) == len(criteria), response.ratings
        for rating in response.ratings:
            assert rating.criterion.criterion_str and rating.rating in ("YES", "NO")
    assert experiment.results is not None
    return f"{details} criteria={len(criteria)} pass_rate={experiment.results.mean_all_ratings.yes}"


def projects(client: Client) -> str:
    listed = client.projects.list_projects()
    assert [p.id for p in listed] == [client.current_project.id], listed
    selected = client.projects.select_project(listed[0].id)
    assert client.project_route_prefix.endswith(f"/api/v0/projects/{selected.id}")
    created = client.projects.create("CompatSecond", public_in_org=True)
    assert created.name == "CompatSecond" and created.public_in_org, created
    assert created.organization.id == selected.organization.id
    loaded = client.projects.load_project()
    assert loaded.id == selected.id, loaded
    try:
        client.projects.select_project(created.id + 1000)
    except ValueError:  # NotFoundError is a ValueError too
        pass
    else:
        raise AssertionError("selecting an unknown project did not fail")
    return f"project={selected.id} created={created.id}"


def views(client: Client) -> str:
    """The Advanced views (samples, comparison samples, stats, map) on data whose figures
    follow from the echo rules: A generates "Echo: Explain AI briefly." (3 words in, 4 out,
    passes both criteria) and, for the ECHO_NO row, 4 in / 5 out failing both; B stores
    "ECHO_NO worse" (fails both) and "better" (passes both), each 4/2 tokens and 1.0 s."""
    from elluminate.schemas import (
        GenerationMetadata,
        RatingValue,
        ResponsesSampleFilter,
        ResponsesSampleSortBy,
    )

    template = client.create_prompt_template(name="Views", messages="Explain {{topic}} briefly.")
    rows = client.create_collection(
        name="ViewRows",
        variables=[{"topic": "AI", "lang": "de"}, {"topic": "ECHO_NO cats", "lang": "en"}],
    )
    criteria = client.create_criterion_set(
        name="ViewQuality", criteria=["Is it clear?", "Is it short?"]
    )
    clear, short = (c.id for c in criteria.criteria)
    a = client.run_experiment(
        name="ViewsA", prompt_template=template, collection=rows, criterion_set=criteria
    )
    b = client.create_experiment(
        name="ViewsB", prompt_template=template, collection=rows, criterion_set=criteria
    )
    entries = sorted(rows.variables, key=lambda v: v.id)
    r1, r2 = (e.id for e in entries)
    metadata = GenerationMetadata(duration_seconds=1.0, input_tokens=4, output_tokens=2)
    b.add_responses(["ECHO_NO worse", "better"], template_variables=entries,
                    metadata=[metadata, metadata])
    b.rate_responses()

    def rows_of(samples: list[Any]) -> list[int]:
        return [s.template_variables_id for s in samples]

    responses = client._responses
    assert rows_of(responses.list_samples(a)) == [r1, r2]
    assert rows_of(responses.list_samples(a, exclude_perfect_responses=True)) == [r2]
    failing = ResponsesSampleFilter(experiment_id=a.id, criteria_filter_by={clear: RatingValue.NO})
    assert rows_of(responses.list_samples(a, filters=failing)) == [r2]
    rating_up = responses.list_samples(a, sort_by=ResponsesSampleSortBy.RATING_ASC)
    assert rows_of(rating_up) == [r2, r1], rating_up
    improved = client.list_comparison_samples(a, b, filter_samples_by="improved")
    assert [(s.experiment_id, s.template_variables_id) for s in improved] == [
        (a.id, r2), (b.id, r2)
    ], improved
    regressed = client.list_comparison_samples(
        a, b, filter_samples_by="regressed", criterion_ids=[short],
        categorical_filters={"lang": ["de"]},
    )
    assert rows_of(regressed) == [r1, r1], regressed
    assert len(client.list_comparison_samples(a, b)) == 4
    stats = responses.get_stats(days=7)
    assert stats.total_responses == 4, stats
    assert (stats.total_input_tokens, stats.total_output_tokens) == (3 + 4 + 8, 4 + 5 + 4)
    assert (stats.average_input_tokens, stats.average_output_tokens) == (3.75, 3.25)
    assert stats.average_rating == 0.5, stats
    assert len(stats.daily_usage) == 7 and stats.daily_usage[-1].requests == 4
    idle = client.create_llm_config(name="ViewsIdle", llm_model_name="m", api_key="sk-x")
    quiet = responses.get_stats(llm_config=idle, days=1)
    assert (quiet.total_responses, quiet.average_rating) == (0, None), quiet
    mapped = client._experiments.get_map(b, page=1, limit=1)
    assert (mapped.num_samples, mapped.num_responses) == (2, 2), mapped
    [sample] = mapped.samples
    [response] = sample.responses
    assert sample.template_variables_id == r1 and sample.persona is None
    assert (response.num_criteria_passed, response.num_criteria_failed) == (0, 2), response
    second = client._experiments.get_map(b.id, page=2, limit=1)
    assert second.samples[0].responses[0].num_criteria_passed == 2
    return (
        f"samples={len(responses.list_samples(a))} improved={len(improved)} "
        f"requests={stats.total_responses} map={mapped.num_samples}"
    )


def _raises(call: Any, kind: type[BaseException], text: str = "") -> BaseException:
    try:
        call()
    except kind as exc:
        assert text in str(exc), (text, exc)
        return exc
    raise AssertionError(f"{call} did not raise {kind.__name__}")


def _field(message: Any, key: str) -> Any:
    """A message's key, whether the package gives a dict or a message object."""
    return message[key] if isinstance(message, dict) else getattr(message, key)


def scenario_sets(client: Client) -> str:
    from elluminate.exceptions import APIError
    from elluminate.schemas import ScenarioIn

    sset = client.create_scenario_set(
        name="Support", description="customer chats", fields=["persona"]
    )
    assert [f.name for f in sset.fields] == ["persona"] and sset.scenarios_count == 0, sset
    unnamed = client.create_scenario_set()
    assert unnamed.name and unnamed.name != "Support", unnamed
    assert client.get_scenario_set(id=sset.id).name == "Support"
    assert client.get_scenario_set(name="Support").id == sset.id
    _raises(lambda: client.get_scenario_set(name="Supp"), ValueError)
    assert {s.id for s in client.list_scenario_sets()} == {sset.id, unnamed.id}
    assert [s.id for s in client.list_scenario_sets(name_search="sup")] == [sset.id]
    renamed = client._scenario_sets.update(sset, name="Support 2")
    assert renamed.name == "Support 2", renamed
    _raises(lambda: client.create_scenario_set(name="Support 2"), APIError, "400")
    _raises(lambda: client.create_collection(name="Support 2"), APIError, "400")

    sset = client.get_scenario_set(id=sset.id)
    field = sset.add_field("locale", default_value="de")
    assert field.default_value == "de" and [f.name for f in sset.fields] == ["persona", "locale"]
    sset.add_field("tone")
    _raises(lambda: sset.add_field("1st"), Exception)
    _raises(lambda: sset.add_field("goal"), Exception)
    scenario = client._scenario_sets.add_scenario(
        sset, " Get a refund ", "Refund issued", {"persona": "calm"}
    )
    assert scenario.goal == "Get a refund", scenario
    assert scenario.field_values == {"persona": "calm", "locale": "de", "tone": ""}
    sset.rename_field(sset.fields[1], "language")
    got = sset.get_scenario(scenario.id)
    assert got.field_values == {"persona": "calm", "language": "de", "tone": ""}, got
    sset.delete_field(sset.fields[2])
    got = sset.get_scenario(scenario.id)
    assert got.field_values == {"persona": "calm", "language": "de"}, got
    added = sset.add_scenarios(
        [
            ScenarioIn(goal="A", expected_conversation_outcome="a", field_values={"persona": "x"}),
            {"goal": " B ", "expected_conversation_outcome": "b"},
            {
                "goal": "Get a refund",
                "expected_conversation_outcome": "Refund issued",
                "field_values": {"persona": "calm"},
            },
        ],
        skip_existing=True,
    )
    assert [s.goal for s in added] == ["A", "B"], added
    assert sset.add_scenarios([]) == []
    listed = sset.list_scenarios()
    assert [s.goal for s in listed] == ["Get a refund", "A", "B"], listed
    got.goal = "Get money back"
    updated = sset.update_scenario(got)
    assert updated.goal == "Get money back" and updated.field_values["language"] == "de"
    sset.delete_scenario(updated)
    assert client.get_scenario_set(id=sset.id).scenarios_count == 2
    client.delete_scenario_set(unnamed)
    _raises(lambda: client.get_scenario_set(id=unnamed.id), ValueError)
    return f"set={sset.id} scenarios={len(sset.list_scenarios())}"


def agent_results(client: Client) -> str:
    from elluminate.exceptions import TaskMatchError
    from elluminate.schemas import AgentTrialResult, AgentTrialTaskRef, CriterionRatingIn
    from elluminate.schemas.atif import ATIFAgent, ATIFStep, ATIFToolCall, ATIFTrajectory

    collection = client.create_collection(
        name="AgentTasks",
        variables=[
            {"task": "fix-bug", "instruction": "Fix the failing test"},
            {"task": "add-docs", "instruction": "Document the module"},
        ],
        collection_type="AGENTIC",
    )
    criteria = client.create_criterion_set(
        name="AgentCriteria", criteria=["Did the agent finish the task?", "Is the code clean?"]
    )
    experiment = client.create_experiment(
        "Agent run",
        None,
        collection=collection,
        criterion_set=criteria,
        evaluation_mode="AGENTIC",
        agent_config={"image": "agent:1"},
    )
    assert experiment.evaluation_mode == "AGENTIC", experiment
    definition = client.get_agent_results_definition(experiment)
    names = [t.task_name for t in definition.tasks]
    assert definition.task_name_column == "task" and names == ["fix-bug", "add-docs"], definition
    assert experiment.get_agent_results_definition().tasks[0].task_id == definition.tasks[0].task_id
    first = definition.tasks[0]
    preview = client.preview_agent_results_matching(
        experiment, [AgentTrialTaskRef(task_id=first.task_id), AgentTrialTaskRef(task_name="nope")]
    )
    assert (preview.matched, preview.unmatched) == (1, 1), preview
    trajectory = ATIFTrajectory(
        schema_version="ATIF-v1.4",
        agent=ATIFAgent(name="coder", version="2.1"),
        steps=[
            ATIFStep(step_id=1, source="user", message="Fix the failing test"),
            ATIFStep(
                step_id=2,
                source="agent",
                message="Running the tests",
                tool_calls=[
                    ATIFToolCall(
                        tool_call_id="c1", function_name="run", arguments={"cmd": "pytest"}
                    )
                ],
            ),
        ],
    )
    typed = AgentTrialResult(
        task_name="fix-bug",
        messages=[{"role": "user", "content": "Fix it"}, {"role": "assistant", "content": "Done"}],
        reward=1.0,
        steps=2,
        input_tokens=10,
        output_tokens=5,
        trajectory=trajectory,
        criterion_ratings=[
            CriterionRatingIn(criterion_id=first.criteria[0].criterion_id, rating="YES"),
            CriterionRatingIn(label="style", rating="NO"),
        ],
    )
    raw = AgentTrialResult(task_id=definition.tasks[1].task_id, trajectory={"schema_version": "x"})
    answer = client.upload_agent_results(experiment, [typed, raw])
    assert answer.created_responses == 2 and answer.created_ratings == 1, answer
    assert any("unknown criterion label 'style'" in e for e in answer.errors), answer
    assert any("trajectory dropped" in e for e in answer.errors), answer
    assert answer.evaluation_task_id, answer
    event = client.wait_for_agent_evaluation(
        experiment, task_id=answer.evaluation_task_id, timeout=60, polling_interval=0.2
    )
    assert event.is_success, event
    assert client.wait_for_agent_evaluation(experiment, timeout=60).is_success
    again = experiment.upload_agent_results([raw], epoch=2, evaluate=False)
    assert again.created_responses == 1 and again.evaluation_task_id is None, again
    _raises(
        lambda: client.upload_agent_results(experiment, [AgentTrialResult(task_name="nope")]),
        TaskMatchError,
    )
    _raises(
        lambda: client.upload_agent_results(experiment, [typed], raise_on_partial=True),
        Exception,
        "style",
    )
    _raises(lambda: client.upload_agent_results(experiment, [raw], epoch=0), Exception)
    refreshed = client.get_experiment(id=experiment.id)
    responses = list(refreshed.responses())
    assert len(responses) == 4, len(responses)
    assert refreshed.dropped_trajectories == 2, refreshed.dropped_trajectories
    rated = [r for r in responses if r.ratings]
    assert rated and all(r.rating in ("YES", "NO") for x in rated for r in x.ratings)
    assert refreshed.results is not None
    return f"experiment={experiment.id} responses={len(responses)} errors={len(answer.errors)}"


def multi_turn(client: Client) -> str:
    from elluminate.schemas import CollectionColumn, UCEPayloadV1

    sset = client.create_scenario_set(name="Chats", fields=["tone"])
    sset.add_scenarios(
        [
            {
                "goal": "Get a refund",
                "expected_conversation_outcome": "Refund issued",
                "field_values": {"tone": "polite"},
            },
            {"goal": "Change the address", "expected_conversation_outcome": "Address changed"},
        ]
    )
    personas = client.create_collection(
        name="Personas",
        variables=[{"name": "Ann", "style": "impatient"}, {"name": "Bob", "style": "chatty"}],
        collection_type="PERSONA",
    )
    criteria = client.create_criterion_set(
        name="ChatCriteria", criteria=["Was '{{expected_conversation_outcome}}' reached?"]
    )
    experiment = client.create_experiment(
        "Chat",
        None,
        scenario_set=sset,
        criterion_set=criteria,
        evaluation_mode="MULTI_TURN",
        persona_group_id=personas.id,
        agent_config={"max_turns": 2},
    )
    assert experiment.evaluation_mode == "MULTI_TURN", experiment
    _raises(
        lambda: client.create_experiment(
            "Chat 2",
            None,
            collection=personas,
            scenario_set=sset,
            evaluation_mode="MULTI_TURN",
            persona_group_id=personas.id,
        ),
        ValueError,
        "exactly one",
    )
    from elluminate.exceptions import APIError

    _raises(
        lambda: client.create_experiment(
            "Chat 3", None, scenario_set=sset, evaluation_mode="MULTI_TURN"
        ),
        APIError,
        "persona_group_id",
    )
    experiment.run(timeout=120)
    responses = list(client.get_experiment(id=experiment.id).responses())
    assert len(responses) == 4, len(responses)  # 2 scenarios x 2 personas
    for response in responses:
        roles = [_field(m, "role") for m in response.messages]
        assert roles == ["user", "assistant"] * 2, response
        assert len(response.ratings) == 1, response.ratings
    assert experiment.results is not None

    # a CONVERSATION column holds envelopes; one without a template replays them
    envelope = UCEPayloadV1.from_openai(
        [{"role": "user", "content": "Weather in Bonn?"}], tool_choice="auto",
        tools=[{"type": "function", "function": {"name": "weather", "parameters": {}}}],
    )
    chats = client.create_collection(
        name="Replays",
        columns=[CollectionColumn(name="chat", column_type="conversation")],
        variables=[{"chat": envelope.to_uce_dict()}],
    )
    _raises(lambda: chats.add_many(variables=[{"chat": "not an envelope"}]), APIError, "chat")
    replay = client.create_experiment("Replay", None, collection=chats, criterion_set=criteria)
    replay.run(timeout=120)
    (answer,) = list(client.get_experiment(id=replay.id).responses())
    assert _field(answer.messages[-1], "content") == "Echo: Weather in Bonn?", answer.messages
    return f"experiment={experiment.id} conversations={len(responses)}"


def agent_stream(client: Client, base_url: str, api_key: str) -> str:
    import asyncio

    from elluminate import AsyncClient
    from elluminate.schemas import AgentTrialResult

    collection = client.create_collection(
        name="StreamTasks", variables=[{"task": "t1"}, {"task": "t2"}], collection_type="AGENTIC"
    )
    criteria = client.create_criterion_set(name="StreamCriteria", criteria=["Done?", "Clean?"])
    experiment = client.create_experiment(
        "Streamed", None, collection=collection, criterion_set=criteria, evaluation_mode="AGENTIC"
    )
    first = client.wait_for_agent_evaluation(experiment, polling_interval=0.1)
    assert first.is_success, first  # nothing queued yet: a terminal SUCCESS at once
    results = [
        AgentTrialResult(task_name=name, messages=[{"role": "assistant", "content": "ok"}])
        for name in ("t1", "t2")
    ]
    upload = client.upload_agent_results(experiment, results)
    assert upload.pending_evaluations == 4 and upload.evaluation_task_id, upload

    async def follow() -> list[object]:
        async with AsyncClient(base_url=base_url, api_key=api_key) as ac:
            return [
                event
                async for event in ac.stream_agent_evaluation(
                    experiment.id, upload.evaluation_task_id, polling_interval=0.1
                )
            ]

    events = asyncio.run(follow())
    last = events[-1]
    assert last.is_complete and last.is_success, events  # type: ignore[attr-defined]
    _raises(
        lambda: client.wait_for_agent_evaluation(experiment, task_id="bogus", polling_interval=0.1),
        ValueError,
    )
    again = client.wait_for_agent_evaluation(
        experiment, task_id=upload.evaluation_task_id, polling_interval=0.1
    )
    assert again.is_success, again  # ended and released: the outcome still comes back
    rated = list(client.get_experiment(id=experiment.id).responses())
    assert all(len(r.ratings) == 2 for r in rated), rated
    return f"experiment={experiment.id} events={len(events)}"


def main() -> None:
    base_url, api_key, stage = sys.argv[1], sys.argv[2], sys.argv[3]
    stages = {
        "basic": basic,
        "full": full,
        "projects": projects,
        "views": views,
        "scenario_sets": scenario_sets,
        "agent_results": agent_results,
        "multi_turn": multi_turn,
        "agent_stream": lambda client: agent_stream(client, base_url, api_key),
    }
    with Client(base_url=base_url, api_key=api_key) as client:
        result = stages[stage](client)
    print(f"OK {stage} {result}")


if __name__ == "__main__":
    main()
