# DO NOT EDIT: generated from tests/_async/test_criteria.py by scripts/unasync.py; edit the _async original.
"""Criterion sets, criteria, generation, linking; LLM configs."""

from __future__ import annotations

import pytest

from elluminate import schemas
from elluminate.exceptions import APIError, ConflictError, NotFoundError


def test_criterion_set_lifecycle(client):
    cs = client.create_criterion_set(
        name="Quality",
        criteria=[
            "Is it helpful?",
            schemas.CriterionIn(criterion_str="Is it accurate?", label="acc"),
        ],
    )
    assert [c.criterion_str for c in cs.criteria or []] == ["Is it helpful?", "Is it accurate?"]
    assert (cs.criteria or [])[1].label == "acc"
    assert (client.get_criterion_set(name="Quality")).id == cs.id
    assert (client.get_criterion_set(id=cs.id)).name == "Quality"
    assert [s.name for s in client.list_criterion_sets()] == ["Quality"]
    with pytest.raises(ConflictError):
        client.create_criterion_set(name="Quality")
    client.delete_criterion_set(cs)
    with pytest.raises(NotFoundError):
        client.get_criterion_set(id=cs.id)


def test_add_criteria_positional_and_keyword_and_reuse(client):
    cs = client.create_criterion_set(name="Q")
    first = cs.add_criteria(["Is it helpful?", "Is it accurate?"])
    second = cs.add_criteria(criteria=["Is it helpful?", "Is it short?"])
    assert second[0].id == first[0].id  # identical string reused
    one = cs.add_criterion("Is it polite?")
    assert one.criterion_str == "Is it polite?"
    fresh = client.get_criterion_set(id=cs.id)
    assert sorted(c.criterion_str for c in fresh.criteria or []) == [
        "Is it accurate?",
        "Is it helpful?",
        "Is it polite?",
        "Is it short?",
    ]
    cs.clear()
    assert (client.get_criterion_set(id=cs.id)).criteria in ([], None)


def test_get_or_create_criterion_set(client):
    cs1, c1 = client.get_or_create_criterion_set("M", defaults={"criteria": ["x?"]})
    cs2, c2 = client.get_or_create_criterion_set("M", defaults={"criteria": ["y?"]})
    assert (c1, c2) == (True, False) and cs1.id == cs2.id
    assert [c.criterion_str for c in cs2.criteria or []] == ["x?"]


def test_link_and_unlink_template(client, template):
    cs = client.create_criterion_set(name="Linked", criteria=["Is it clear?"])
    linked = cs.link_template(template)
    assert [t.id for t in linked.linked_prompt_templates or []] == [template.id]
    assert (client.get_prompt_template(id=template.id)).criterion_set_id == cs.id
    assert [c.criterion_str for c in template.list_criteria()] == ["Is it clear?"]
    cs.unlink_template(template)
    fresh = client.get_criterion_set(id=cs.id)
    assert not fresh.linked_prompt_templates


def test_generate_criteria_and_get_or_generate(client, template):
    criteria = template.generate_criteria()
    assert criteria and all(c.criterion_str for c in criteria)
    assert any("topic" in c.criterion_str for c in criteria)
    assert template.criterion_set_id is not None
    generated_set = client.get_criterion_set(name=template.name)
    assert generated_set.id == template.criterion_set_id
    with pytest.raises(ConflictError):
        template.generate_criteria()
    again, generated = template.get_or_generate_criteria()
    assert generated is False
    assert [c.id for c in again] == [c.id for c in criteria]
    replaced = template.generate_criteria(delete_existing=True)
    assert [c.criterion_str for c in replaced] == [c.criterion_str for c in criteria]


def test_get_or_generate_first_time(client):
    t = client.create_prompt_template(name="Fresh", template="Summarise {{text}}")
    criteria, generated = t.get_or_generate_criteria()
    assert generated is True and criteria


def test_edit_criterion_versions_it_and_delete(client):
    cs = client.create_criterion_set(name="E", criteria=["Old?"])
    old = (cs.criteria or [])[0]
    new = client.edit_criterion(old, criterion_str="New?")
    assert new.criterion_str == "New?" and new.id != old.id
    fresh = client.get_criterion_set(id=cs.id)
    assert [c.criterion_str for c in fresh.criteria or []] == ["New?"]
    client.delete_criterion(new)
    assert not (client.get_criterion_set(id=cs.id)).criteria


def test_llm_config_lifecycle_masks_key(client):
    cfg = client.create_llm_config(
        name="L", llm_model_name="gpt-x", api_key="sk-secret-1234", temperature=0.5
    )
    assert cfg.llm_model_name == "gpt-x" and cfg.temperature == 0.5
    assert cfg.api_key != "sk-secret-1234" and "secret" not in (cfg.api_key or "")
    assert cfg.inference_type == schemas.InferenceType.OPENAI and cfg.max_connections == 10
    assert (client.get_llm_config(name="L")).id == cfg.id
    assert (client.get_llm_config(id=cfg.id)).name == "L"
    assert [c.name for c in client.list_llm_configs()] == ["L"]
    with pytest.raises(ConflictError):
        client.create_llm_config(name="L", llm_model_name="m")
    client.delete_llm_config(cfg)
    with pytest.raises(NotFoundError):
        client.get_llm_config(name="L")


def test_get_or_create_llm_config(client):
    with pytest.raises(ValueError, match="llm_model_name"):
        client.get_or_create_llm_config("M")
    c1, created1 = client.get_or_create_llm_config(
        "M", defaults={"llm_model_name": "m", "api_key": "k"}
    )
    c2, created2 = client.get_or_create_llm_config("M", defaults={"llm_model_name": "other"})
    assert (created1, created2) == (True, False) and c1.id == c2.id
    assert c2.llm_model_name == "m"


def test_bad_llm_config_input(client):
    with pytest.raises(ValueError):
        client.create_llm_config(name="B", llm_model_name="m", inference_type="nonsense")
    with pytest.raises(APIError):
        client.create_llm_config(name="", llm_model_name="m")
    assert client.list_llm_configs() == []


def test_rich_model_reprs_show_no_client_and_no_key(client, server, template, collection):
    cs = client.create_criterion_set(name="R", criteria=["ok?"])
    cfg = client.create_llm_config(name="R", llm_model_name="m", api_key="sk-secret-abcd")
    exp = client.create_experiment(
        name="R", prompt_template=template, collection=collection, criterion_set=cs
    )
    for obj in (template, collection, cs, cfg, exp):
        text = repr(obj)
        assert text.startswith(type(obj).__name__ + "(")
        assert "_client" not in text and "Client" not in text
        assert server.api_key not in text and "sk-secret" not in text
