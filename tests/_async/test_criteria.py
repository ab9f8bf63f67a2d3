"""Criterion sets, criteria, generation, linking; LLM configs."""

from __future__ import annotations

import pytest

from elluminate import schemas
from elluminate.exceptions import APIError, ConflictError, NotFoundError


async def test_criterion_set_lifecycle(client):
    cs = await client.create_criterion_set(
        name="Quality",
        criteria=[
            "Is it helpful?",
            schemas.CriterionIn(criterion_str="Is it accurate?", label="acc"),
        ],
    )
    assert [c.criterion_str for c in cs.criteria or []] == ["Is it helpful?", "Is it accurate?"]
    assert (cs.criteria or [])[1].label == "acc"
    assert (await client.get_criterion_set(name="Quality")).id == cs.id
    assert (await client.get_criterion_set(id=cs.id)).name == "Quality"
    assert [s.name for s in await client.list_criterion_sets()] == ["Quality"]
    with pytest.raises(ConflictError):
        await client.create_criterion_set(name="Quality")
    await client.delete_criterion_set(cs)
    with pytest.raises(NotFoundError):
        await client.get_criterion_set(id=cs.id)


async def test_add_criteria_positional_and_keyword_and_reuse(client):
    cs = await client.create_criterion_set(name="Q")
    first = await cs.aadd_criteria(["Is it helpful?", "Is it accurate?"])
    second = await cs.aadd_criteria(criteria=["Is it helpful?", "Is it short?"])
    assert second[0].id == first[0].id  # identical string reused
    one = await cs.aadd_criterion("Is it polite?")
    assert one.criterion_str == "Is it polite?"
    fresh = await client.get_criterion_set(id=cs.id)
    assert sorted(c.criterion_str for c in fresh.criteria or []) == [
        "Is it accurate?",
        "Is it helpful?",
        "Is it polite?",
        "Is it short?",
    ]
    await cs.aclear()
    assert (await client.get_criterion_set(id=cs.id)).criteria in ([], None)


async def test_get_or_create_criterion_set(client):
    cs1, c1 = await client.get_or_create_criterion_set("M", defaults={"criteria": ["x?"]})
    cs2, c2 = await client.get_or_create_criterion_set("M", defaults={"criteria": ["y?"]})
    assert (c1, c2) == (True, False) and cs1.id == cs2.id
    assert [c.criterion_str for c in cs2.criteria or []] == ["x?"]


async def test_link_and_unlink_template(client, template):
    cs = await client.create_criterion_set(name="Linked", criteria=["Is it clear?"])
    linked = await cs.alink_template(template)
    assert [t.id for t in linked.linked_prompt_templates or []] == [template.id]
    assert (await client.get_prompt_template(id=template.id)).criterion_set_id == cs.id
    assert [c.criterion_str for c in await template.alist_criteria()] == ["Is it clear?"]
    await cs.aunlink_template(template)
    fresh = await client.get_criterion_set(id=cs.id)
    assert not fresh.linked_prompt_templates


async def test_generate_criteria_and_get_or_generate(client, template):
    criteria = await template.agenerate_criteria()
    assert criteria and all(c.criterion_str for c in criteria)
    assert any("topic" in c.criterion_str for c in criteria)
    assert template.criterion_set_id is not None
    generated_set = await client.get_criterion_set(name=template.name)
    assert generated_set.id == template.criterion_set_id
    with pytest.raises(ConflictError):
        await template.agenerate_criteria()
    again, generated = await template.aget_or_generate_criteria()
    assert generated is False
    assert [c.id for c in again] == [c.id for c in criteria]
    replaced = await template.agenerate_criteria(delete_existing=True)
    assert [c.criterion_str for c in replaced] == [c.criterion_str for c in criteria]


async def test_get_or_generate_first_time(client):
    t = await client.create_prompt_template(name="Fresh", template="Summarise {{text}}")
    criteria, generated = await t.aget_or_generate_criteria()
    assert generated is True and criteria


async def test_edit_criterion_versions_it_and_delete(client):
    cs = await client.create_criterion_set(name="E", criteria=["Old?"])
    old = (cs.criteria or [])[0]
    new = await client.edit_criterion(old, criterion_str="New?")
    assert new.criterion_str == "New?" and new.id != old.id
    fresh = await client.get_criterion_set(id=cs.id)
    assert [c.criterion_str for c in fresh.criteria or []] == ["New?"]
    await client.delete_criterion(new)
    assert not (await client.get_criterion_set(id=cs.id)).criteria


async def test_llm_config_lifecycle_masks_key(client):
    cfg = await client.create_llm_config(
        name="L", llm_model_name="gpt-x", api_key="sk-secret-1234", temperature=0.5
    )
    assert cfg.llm_model_name == "gpt-x" and cfg.temperature == 0.5
    assert cfg.api_key != "sk-secret-1234" and "secret" not in (cfg.api_key or "")
    assert cfg.inference_type == schemas.InferenceType.OPENAI and cfg.max_connections == 10
    assert (await client.get_llm_config(name="L")).id == cfg.id
    assert (await client.get_llm_config(id=cfg.id)).name == "L"
    assert [c.name for c in await client.list_llm_configs()] == ["L"]
    with pytest.raises(ConflictError):
        await client.create_llm_config(name="L", llm_model_name="m")
    await client.delete_llm_config(cfg)
    with pytest.raises(NotFoundError):
        await client.get_llm_config(name="L")


async def test_get_or_create_llm_config(client):
    with pytest.raises(ValueError, match="llm_model_name"):
        await client.get_or_create_llm_config("M")
    c1, created1 = await client.get_or_create_llm_config(
        "M", defaults={"llm_model_name": "m", "api_key": "k"}
    )
    c2, created2 = await client.get_or_create_llm_config("M", defaults={"llm_model_name": "other"})
    assert (created1, created2) == (True, False) and c1.id == c2.id
    assert c2.llm_model_name == "m"


async def test_bad_llm_config_input(client):
    with pytest.raises(ValueError):
        await client.create_llm_config(name="B", llm_model_name="m", inference_type="nonsense")
    with pytest.raises(APIError):
        await client.create_llm_config(name="", llm_model_name="m")
    assert await client.list_llm_configs() == []


async def test_rich_model_reprs_show_no_client_and_no_key(client, server, template, collection):
    cs = await client.create_criterion_set(name="R", criteria=["ok?"])
    cfg = await client.create_llm_config(name="R", llm_model_name="m", api_key="sk-secret-abcd")
    exp = await client.create_experiment(
        name="R", prompt_template=template, collection=collection, criterion_set=cs
    )
    for obj in (template, collection, cs, cfg, exp):
        text = repr(obj)
        assert text.startswith(type(obj).__name__ + "(")
        assert "_client" not in text and "Client" not in text
        assert server.api_key not in text and "sk-secret" not in text
