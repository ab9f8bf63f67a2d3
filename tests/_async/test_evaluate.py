"""evaluate(): names or objects in, a finished experiment out."""

from __future__ import annotations

import pytest

from elluminate._async.evaluate import aevaluate, reset_default_client


async def test_evaluate_by_names(client, template, collection):
    await client.create_criterion_set(name="S", criteria=["Is it fine?"])
    exp = await aevaluate("Explain", "Topics", "S", client=client, name="by-names")
    assert exp.name == "by-names" and len(exp.rated_responses) == 2


async def test_evaluate_uses_the_templates_criteria(client, template, collection):
    await template.agenerate_criteria()
    exp = await aevaluate(template, collection, client=client)
    assert exp.name.startswith("evaluate-")
    assert exp.criterion_set.id == template.criterion_set_id


async def test_evaluate_without_criteria_fails_before_creating_anything(
    client, template, collection
):
    with pytest.raises(ValueError, match="criterion set"):
        await aevaluate(template, collection, client=client)
    assert await client.list_experiments() == []


async def test_evaluate_from_environment(server, template, collection, monkeypatch):
    monkeypatch.setenv("ELLUMINATE_API_KEY", server.api_key)
    monkeypatch.setenv("ELLUMINATE_BASE_URL", server.base_url)
    await template.agenerate_criteria()
    reset_default_client()
    try:
        exp = await aevaluate("Explain", "Topics")
        assert len(exp.rated_responses) == 2
    finally:
        from elluminate._async import evaluate as module

        if module._default_client is not None:
            await module._default_client.close()
        reset_default_client()
