# DO NOT EDIT: generated from tests/_async/test_scenario_sets.py by scripts/unasync.py; edit the _async original.
"""Scenario sets, fields and scenarios: the exact requests (as the official package sends
them, from tests/golden/official-advanced.json), the parsed answers, the local state of the
rich ScenarioSet, and bad input refused before anything is sent.

The server side of scenario sets is not built yet, so a recording stub answers here, as it
answered the official package.
"""

from __future__ import annotations

import pytest

from elluminate import Client, schemas
from elluminate._sync.models import ScenarioSet
from elluminate.exceptions import BadRequestError, ModelNotBoundError, NotFoundError

PREFIX = "/api/v0/projects/7"
SETS = f"{PREFIX}/scenario-sets"


@pytest.fixture
def stub(recorder, official):
    recorder.answer("GET", "/api/v0/projects", {"items": [official.objects["project"]], "count": 1})
    recorder.answer("GET", f"{SETS}/41", official.objects["scenario_set"])
    with Client(base_url=recorder.base_url, api_key="KEY123") as client:
        yield client


@pytest.fixture
def sset(stub):
    return stub.get_scenario_set(id=41)


def run_like_official(recorder, official, name, call):
    """Answer as the stub answered the official package, run ``call``, compare requests."""
    official.replay(recorder, name)
    start = len(recorder.requests)
    result = call()
    official.assert_sent(recorder, start, name)
    return result


def returned(official, name):
    return official.call(name)["returned"]


# ---- scenario sets --------------------------------------------------------------------------


def test_create_scenario_set(stub, recorder, official):
    created = run_like_official(
        recorder,
        official,
        "create_scenario_set",
        lambda: stub.create_scenario_set(
            name="Support", description="customer chats", fields=["persona"]
        ),
    )
    assert isinstance(created, ScenarioSet) and isinstance(created, schemas.ScenarioSet)
    assert created.model_dump(mode="json") == returned(official, "create_scenario_set")["value"]
    assert [f.name for f in created.fields] == ["persona"]


def test_create_scenario_set_without_a_name_lets_the_server_pick(stub, recorder, official):
    created = run_like_official(
        recorder, official, "create_scenario_set_unnamed", lambda: stub.create_scenario_set()
    )
    assert created.name == "Support"


def test_get_scenario_set_by_id_and_by_exact_name(stub, recorder, official):
    by_id = run_like_official(
        recorder, official, "get_scenario_set_by_id", lambda: stub.get_scenario_set(id=41)
    )
    assert by_id.id == 41 and by_id.scenarios_count == 1
    # the list answers "Support v2" first: the exact name is picked, not the first hit
    by_name = run_like_official(
        recorder,
        official,
        "get_scenario_set_by_name",
        lambda: stub.get_scenario_set(name="Support"),
    )
    assert (by_name.id, by_name.name) == (41, "Support")


def test_get_scenario_set_by_name_without_an_exact_match(stub, recorder, official):
    with pytest.raises(NotFoundError, match="no scenario set named 'Supp'"):
        run_like_official(
            recorder,
            official,
            "get_scenario_set_by_name_missing",
            lambda: stub.get_scenario_set(name="Supp"),
        )


def test_get_scenario_set_needs_exactly_one_of_name_and_id(stub, recorder):
    start = len(recorder.requests)
    with pytest.raises(ValueError, match="exactly one of name= or id="):
        stub.get_scenario_set(name="Support", id=41)
    with pytest.raises(ValueError, match="exactly one of name= or id="):
        stub.get_scenario_set()
    assert recorder.since(start) == []


def test_list_scenario_sets(stub, recorder, official):
    listed = run_like_official(
        recorder, official, "list_scenario_sets", lambda: stub.list_scenario_sets()
    )
    assert [s.name for s in listed] == ["Support v2", "Support"]
    assert all(isinstance(s, ScenarioSet) for s in listed)
    searched = run_like_official(
        recorder,
        official,
        "list_scenario_sets_search",
        lambda: stub.list_scenario_sets(name_search="Sup"),
    )
    assert len(searched) == 2


def test_update_scenario_set_sends_only_what_changes(stub, recorder, official, sset):
    updated = run_like_official(
        recorder,
        official,
        "update_scenario_set",
        lambda: stub.update_scenario_set(sset, name="Support 2"),
    )
    assert updated.name == sset.name == "Support 2"  # the given object follows
    run_like_official(
        recorder,
        official,
        "update_scenario_set_description",
        lambda: stub.update_scenario_set(41, description=""),
    )
    with pytest.raises(ValueError, match="pass name= or description="):
        stub.update_scenario_set(sset)


def test_delete_scenario_set(stub, recorder, official, sset):
    assert (
        run_like_official(
            recorder, official, "delete_scenario_set", lambda: stub.delete_scenario_set(sset)
        )
        is None
    )


# ---- fields -----------------------------------------------------------------------------------


def test_add_rename_delete_field_keep_the_local_fields(stub, recorder, official, sset):
    locale = run_like_official(
        recorder, official, "add_field", lambda: sset.add_field("locale", default_value="de")
    )
    assert isinstance(locale, schemas.ScenarioField) and locale.default_value == "de"
    assert [f.name for f in sset.fields] == official.call("add_field")["fields_after"]
    run_like_official(
        recorder, official, "add_field_default", lambda: sset.add_field("tone")
    )
    assert [f.name for f in sset.fields] == ["persona", "locale", "tone"]
    renamed = run_like_official(
        recorder, official, "rename_field", lambda: sset.rename_field(locale, "language")
    )
    assert renamed.name == "language"
    assert [f.name for f in sset.fields] == official.call("rename_field")["fields_after"]
    run_like_official(
        recorder, official, "delete_field", lambda: sset.delete_field(sset.fields[1])
    )
    assert [f.name for f in sset.fields] == official.call("delete_field")["fields_after"]


def test_a_refused_field_changes_nothing_locally(stub, recorder, official, sset):
    official.replay(recorder, "add_field_bad_name")  # the stub answers 400 to any new field
    with pytest.raises(BadRequestError, match="field names start with a letter"):
        sset.add_field("fine_name")
    assert [f.name for f in sset.fields] == ["persona"]


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("1st", "must consist of letters, digits and underscores"),
        ("with-dash", "must consist of letters, digits and underscores"),
        ("", "must consist of letters"),
        ("x" * 101, "at most 100 are allowed"),
        ("goal", "implicit field"),
        ("expected_conversation_outcome", "implicit field"),
        (7, "is a string"),
    ],
)
def test_bad_field_names_are_refused_before_sending(stub, recorder, sset, name, message):
    start = len(recorder.requests)
    with pytest.raises(ValueError, match=message):
        sset.add_field(name)
    with pytest.raises(ValueError, match=message):
        sset.rename_field(sset.fields[0], name)
    with pytest.raises(ValueError, match=message):
        stub.create_scenario_set(name="S", fields=["ok", name])
    assert recorder.since(start) == []
    assert [f.name for f in sset.fields] == ["persona"]


def test_good_field_names(stub, recorder, sset):
    recorder.answer("POST", f"{SETS}", {**sset.model_dump(mode="json"), "id": 43})
    stub.create_scenario_set(name="S", fields=["_private", "tone2", "größe", "x" * 100])
    assert recorder.requests[-1].body["fields"] == ["_private", "tone2", "größe", "x" * 100]


def test_create_refuses_repeated_fields_and_empty_names(stub, recorder):
    start = len(recorder.requests)
    with pytest.raises(ValueError, match=r"unique; repeated: \['tone'\]"):
        stub.create_scenario_set(fields=["tone", "persona", "tone"])
    with pytest.raises(ValueError, match="fields must be a list of field names"):
        stub.create_scenario_set(fields="tone")
    with pytest.raises(ValueError, match="name must be a non-empty string"):
        stub.create_scenario_set(name="  ")
    with pytest.raises(ValueError, match="default_value must be a string"):
        (stub.get_scenario_set(id=41)).add_field("tone", default_value=None)
    assert [r.method for r in recorder.since(start)] == ["GET"]


# ---- scenarios --------------------------------------------------------------------------------


def test_list_and_get_scenarios(stub, recorder, official, sset):
    scenarios = run_like_official(
        recorder, official, "list_scenarios", lambda: sset.list_scenarios()
    )
    assert [type(s) for s in scenarios] == [schemas.Scenario]
    assert scenarios[0].field_values == {"persona": "impatient"}
    assert sset.scenarios_count == 1
    scenario = run_like_official(
        recorder, official, "get_scenario", lambda: sset.get_scenario(5)
    )
    assert scenario.model_dump(mode="json") == returned(official, "get_scenario")["value"]


def test_add_one_scenario_strips_goal_and_outcome(stub, recorder, official, sset):
    run_like_official(
        recorder,
        official,
        "add_scenario",
        lambda: sset.add_scenario(" Get a refund ", "Refund issued", {"persona": "calm"}),
    )
    run_like_official(
        recorder,
        official,
        "add_scenario_no_values",
        lambda: sset.add_scenario("Get a refund", "Refund issued"),
    )
    assert sset.scenarios_count == 3


def test_add_scenarios_in_one_batch(stub, recorder, official, sset):
    before_after = official.call("add_scenarios")["scenarios_count_before_after"]
    assert sset.scenarios_count == before_after[0]
    created = run_like_official(
        recorder,
        official,
        "add_scenarios",
        lambda: sset.add_scenarios(
            [
                schemas.ScenarioIn(
                    goal="A", expected_conversation_outcome="a", field_values={"persona": "x"}
                ),
                {"goal": " B ", "expected_conversation_outcome": "b"},
            ],
            skip_existing=True,
        ),
    )
    assert [s.id for s in created] == [7, 8]
    assert sset.scenarios_count == before_after[1]
    run_like_official(
        recorder,
        official,
        "add_scenarios_default",
        lambda: sset.add_scenarios([{"goal": "C", "expected_conversation_outcome": "c"}]),
    )


def test_add_no_scenarios_sends_nothing(stub, recorder, sset):
    start = len(recorder.requests)
    assert sset.add_scenarios([]) == []
    assert recorder.since(start) == []  # (the official package posts an empty batch)


@pytest.mark.parametrize(
    ("scenarios", "message"),
    [
        ([{"goal": "C"}], "scenario 0: missing 'expected_conversation_outcome'"),
        (
            [
                {"goal": "ok", "expected_conversation_outcome": "o"},
                {"goal": " ", "expected_conversation_outcome": "o"},
            ],
            "scenario 1: .*goal must not be empty",
        ),
        ([{"goal": "g", "expected_conversation_outcome": "o", "field_values": []}], "field_values"),
        ([{"goal": 3, "expected_conversation_outcome": "o"}], "scenario 0: .*goal"),
        (["just a goal"], "a ScenarioIn or a dict"),
        ({"goal": "g", "expected_conversation_outcome": "o"}, "scenarios must be a list"),
    ],
)
def test_bad_scenarios_are_refused_before_sending(stub, recorder, sset, scenarios, message):
    start = len(recorder.requests)
    with pytest.raises(ValueError, match=message):
        sset.add_scenarios(scenarios)
    assert recorder.since(start) == []
    assert sset.scenarios_count == 1


def test_blank_goal_or_outcome_of_one_scenario(stub, recorder, sset):
    start = len(recorder.requests)
    with pytest.raises(ValueError, match="goal must not be empty"):
        sset.add_scenario("  ", "x")
    with pytest.raises(ValueError, match="expected_conversation_outcome must not be empty"):
        sset.add_scenario("g", "\n")
    with pytest.raises(ValueError, match="goal must not be empty"):
        schemas.ScenarioIn(goal="", expected_conversation_outcome="x")
    assert recorder.since(start) == []


def test_update_and_delete_scenario(stub, recorder, official, sset):
    recorder.answer("GET", f"{SETS}/41/scenarios/5", official.objects["scenario"])
    scenario = sset.get_scenario(5)
    scenario.goal = "Get money back"
    updated = run_like_official(
        recorder, official, "update_scenario", lambda: sset.update_scenario(scenario)
    )
    assert updated.goal == "Get money back"
    before = sset.scenarios_count
    run_like_official(
        recorder, official, "delete_scenario", lambda: sset.delete_scenario(scenario)
    )
    assert sset.scenarios_count == before - 1
    with pytest.raises(ValueError, match="takes a Scenario"):
        sset.update_scenario({"goal": "g", "expected_conversation_outcome": "o"})
    scenario.expected_conversation_outcome = " "
    start = len(recorder.requests)
    with pytest.raises(ValueError, match="expected_conversation_outcome must not be empty"):
        sset.update_scenario(scenario)
    assert recorder.since(start) == []


def test_unbound_scenario_set_has_no_client():
    loose = ScenarioSet(id=1, name="x")
    with pytest.raises(ModelNotBoundError):
        loose.list_scenarios()


# ---- multi-turn experiments over a scenario set -------------------------------------------


def test_multi_turn_experiment_over_a_scenario_set(stub, recorder, official, sset):
    experiment = run_like_official(
        recorder,
        official,
        "create_multi_turn_experiment",
        lambda: stub.create_experiment(
            "Chat", None, scenario_set=sset, evaluation_mode="MULTI_TURN", persona_group_id=3
        ),
    )
    assert experiment.id == 101
