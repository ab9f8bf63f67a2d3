# DO NOT EDIT: generated from tests/_async/test_evaluate.py by scripts/unasync.py; edit the _async original.
"""evaluate(): names or objects in, a finished experiment out."""

from __future__ import annotations

import pytest

from elluminate._sync.evaluate import evaluate, reset_default_client


def test_evaluate_by_names(client, template, collection):
    client.create_criterion_set(name="S", criteria=["Is it fine?"])
    exp = evaluate("Explain", "Topics", "S", client=client, name="by-names")
    assert exp.name == "by-names" and len(exp.rated_responses) == 2


def test_evaluate_uses_the_templates_criteria(client, template, collection):
    template.generate_criteria()
    exp = evaluate(template, collection, client=client)
    assert exp.name.startswith("evaluate-")
    assert exp.criterion_set.id == template.criterion_set_id


def test_evaluate_without_criteria_fails_before_creating_anything(
    client, template, collection
):
    with pytest.raises(ValueError, match="criterion set"):
        evaluate(template, collection, client=client)
    assert client.list_experiments() == []


def test_evaluate_from_environment(server, template, collection, monkeypatch):
    monkeypatch.setenv("ELLUMINATE_API_KEY", server.api_key)
    monkeypatch.setenv("ELLUMINATE_BASE_URL", server.base_url)
    template.generate_criteria()
    reset_default_client()
    try:
        exp = evaluate("Explain", "Topics")
        assert len(exp.rated_responses) == 2
    finally:
        from elluminate._sync import evaluate as module

        if module._default_client is not None:
            module._default_client.close()
        reset_default_client()
