"""Calls added for parity with the official package: ``client.projects``, the newer
``create_experiment`` parameters, chaining ``fetch_responses`` and the results helpers.

Request shapes are checked against the official package's
(tests/golden/official-requests-by-call.json) with a recording stub; behaviour against the
real local server.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from elluminate import AsyncClient, schemas
from elluminate.exceptions import APIError, NotFoundError

GOLDEN_FILE = Path(__file__).parents[1] / "golden" / "official-requests-by-call.json"
GOLDEN = json.loads(GOLDEN_FILE.read_text())
OBJECTS = GOLDEN["objects"]
PREFIX = "/api/v0/projects/7"


@pytest.fixture
async def stub(recorder):
    recorder.answer("GET", "/api/v0/projects", {"items": [OBJECTS["project"]], "count": 1})
    async with AsyncClient(base_url=recorder.base_url, api_key="KEY123") as client:
        yield client


def assert_sent_like_official(recorder, call):
    expected = GOLDEN["requests"][call]
    sent = recorder.sent(expected["method"], expected["path"])[-1]
    assert sent.query == expected["query"]
    assert sent.body == expected["body"]
    for key, value in expected["headers"].items():
        assert sent.headers[key].split(";")[0] == value, key


# ---- client.projects ------------------------------------------------------------------------


async def test_projects_create_sends_what_the_official_package_sends(stub, recorder):
    recorder.answer("POST", "/api/v0/projects", {**OBJECTS["project"], "id": 8, "name": "newp"})
    created = await stub.projects.acreate("newp", public_in_org=True)
    assert_sent_like_official(recorder, "create_project")
    assert (created.id, created.name) == (8, "newp")
    assert stub.current_project.id == 7  # creating does not switch


async def test_projects_create_leaves_out_public_in_org_when_not_given(stub, recorder):
    recorder.answer("POST", "/api/v0/projects", OBJECTS["project"])
    await stub.projects.acreate("q", "about q")
    assert recorder.sent("POST", "/api/v0/projects")[-1].body == {
        "name": "q",
        "description": "about q",
        "organization_id": 1,
    }


async def test_projects_on_the_local_server(client, server):
    projects = await client.projects.alist_projects()
    assert [p.id for p in projects] == [client.current_project.id]
    assert isinstance(projects[0], schemas.Project)
    selected = await client.projects.aselect_project(projects[0].id)
    assert selected.id == projects[0].id
    assert client.project_route_prefix == f"{server.base_url}/api/v0/projects/{selected.id}"
    with pytest.raises(NotFoundError):
        await client.projects.aselect_project(selected.id + 1000)
    assert client.current_project.id == selected.id  # a failed select changes nothing
    loaded = await client.projects.aload_project()
    assert loaded.id == selected.id
    created = await client.projects.acreate("Second project", "for tests")
    assert created.id != selected.id and created.name == "Second project"
    assert created.organization.id == selected.organization.id
    # the key stays bound to its own project, so the client keeps working there
    assert [p.id for p in await client.projects.alist_projects()] == [selected.id]


# ---- create_experiment ----------------------------------------------------------------------


async def test_create_experiment_sends_what_the_official_package_sends(stub, recorder):
    for kind, path in [
        ("prompt_template", "prompt_templates/11"),
        ("collection", "collections/21"),
        ("criterion_set", "criterion_sets/31"),
        ("llm_config", "llm_configs/61"),
    ]:
        recorder.answer("GET", f"{PREFIX}/{path}", OBJECTS[kind])
    recorder.answer("POST", f"{PREFIX}/experiments", OBJECTS["experiment"])
    t = await stub.get_prompt_template(id=11)
    coll = await stub.get_collection(id=21)
    cs = await stub.get_criterion_set(id=31)
    llm = await stub.get_llm_config(id=61)
    exp = await stub.create_experiment(
        name="E", prompt_template=t, collection=coll, llm_config=llm, criterion_set=cs
    )
    assert_sent_like_official(recorder, "create_experiment")
    assert exp.id == 101


async def test_create_experiment_passes_the_agentic_and_multi_turn_keys(stub, recorder):
    recorder.answer("GET", f"{PREFIX}/prompt_templates/11", OBJECTS["prompt_template"])
    recorder.answer("POST", f"{PREFIX}/experiments", OBJECTS["experiment"])
    t = await stub.get_prompt_template(id=11)
    await stub.create_experiment(
        name="M",
        prompt_template=t,
        evaluation_mode="MULTI_TURN",
        agent_config={"a": 1},
        evaluation_agent_config={"b": 2},
        persona_group_id=4,
        scenario_set=5,
    )
    body = recorder.sent("POST", f"{PREFIX}/experiments")[-1].body
    assert {k: body[k] for k in ("evaluation_mode", "agent_config", "evaluation_agent_config")} == {
        "evaluation_mode": "MULTI_TURN",
        "agent_config": {"a": 1},
        "evaluation_agent_config": {"b": 2},
    }
    assert (body["persona_group_id"], body["scenario_set_id"], body["collection_id"]) == (
        4,
        5,
        None,
    )


async def test_evaluation_settings_that_do_not_fit_are_a_400_from_the_server(
    client, template, collection
):
    for kwargs, hint in (
        ({"collection": collection, "evaluation_mode": "AGENTIC"}, "AGENTIC collection"),
        ({"collection": collection, "persona_group_id": 3}, "only for MULTI_TURN"),
        ({"scenario_set": 9}, "only for MULTI_TURN"),
    ):
        with pytest.raises(APIError) as info:
            await client.create_experiment(name="X", prompt_template=template, **kwargs)
        assert info.value.status_code == 400, kwargs
        assert hint in str(info.value), (kwargs, info.value)
    assert await client.list_experiments() == []


async def test_bad_evaluation_arguments_are_refused_locally(client, template, collection):
    with pytest.raises(ValueError, match="evaluation_mode must be one of"):
        await client.create_experiment(
            name="X", prompt_template=template, collection=collection, evaluation_mode="SOLO"
        )
    with pytest.raises(ValueError, match="exactly one of collection= or scenario_set="):
        await client.create_experiment(
            name="X", prompt_template=template, collection=collection, scenario_set=2
        )
    with pytest.raises(ValueError, match="exactly one of collection= or scenario_set="):
        await client.create_experiment(name="X", prompt_template=template)


async def test_standard_experiment_keeps_its_agent_config(client, template, collection):
    cs = await client.create_criterion_set(name="Cfg", criteria=["Is it an answer?"])
    exp = await client.create_experiment(
        name="Cfg",
        prompt_template=template,
        collection=collection,
        criterion_set=cs,
        evaluation_mode="STANDARD",
        agent_config={"tools": ["search"]},
    )
    assert exp.evaluation_mode == schemas.EvaluationMode.STANDARD
    fetched = await client.get_experiment(id=exp.id, fetch_responses=False)
    assert fetched.agent_config == {"tools": ["search"]}


# ---- results helpers ------------------------------------------------------------------------


async def test_fetch_responses_chains_and_results_summarise(client, template, collection, capsys):
    cs = await client.create_criterion_set(name="S", criteria=["Is it an answer?"])
    exp = await client.run_experiment(
        name="Chain", prompt_template=template, collection=collection, criterion_set=cs
    )
    again = await client.get_experiment(id=exp.id, fetch_responses=False)
    assert again.rated_responses == []
    assert (await again.afetch_responses()).rated_responses == again.rated_responses
    assert len(again.rated_responses) == 2
    results = again.results
    [criterion] = cs.criteria
    summary = results.get_criterion_summary(criterion.id)
    assert isinstance(summary, str)
    rate = results.mean_rating_by_criterion_id[criterion.id].yes
    assert f"{rate:.2%}" in summary
    assert "no ratings" in results.get_criterion_summary(criterion.id + 999)
    results.print_summary({criterion.id: "answers"})
    printed = capsys.readouterr().out
    assert "answers" in printed and f"{results.mean_all_ratings.yes:.2%}" in printed
    assert "rated responses:  2" in printed


async def test_a_model_copy_stays_bound_to_its_client(client, template, collection):
    cs = await client.create_criterion_set(name="Copy", criteria=["Is it an answer?"])
    exp = await client.run_experiment(
        name="Copy", prompt_template=template, collection=collection, criterion_set=cs
    )
    twin = exp.model_copy(update={"rated_responses": []})
    assert type(twin) is type(exp) and exp.rated_responses
    await twin.afetch_responses()
    assert [r.id for r in twin.rated_responses] == [r.id for r in exp.rated_responses]
    assert twin.model_dump(mode="json")["name"] == "Copy"


async def test_print_results_summary_names_the_criteria(client, template, collection, capsys):
    cs = await client.create_criterion_set(name="Named", criteria=["Is it an answer?"])
    exp = await client.create_experiment(
        name="Named", prompt_template=template, collection=collection, criterion_set=cs
    )
    exp.print_results_summary()
    assert capsys.readouterr().out == "Named: no results yet\n"
    await exp.arun()
    exp.print_results_summary()
    printed = capsys.readouterr().out
    assert printed.startswith("Named\nExperiment results\n")
    assert "Is it an answer?" in printed and "rated responses:  2" in printed
