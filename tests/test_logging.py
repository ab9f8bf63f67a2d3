"""Library logging: stdlib loggers under "elluminate", no handlers, no API keys in records."""

from __future__ import annotations

import logging

from elluminate import Client


def test_library_installs_no_handlers():
    import elluminate  # noqa: F401
    import elluminate.server  # noqa: F401

    for name in ("elluminate", "elluminate.server"):
        assert logging.getLogger(name).handlers == []


def test_api_keys_are_never_logged(server, caplog):
    caplog.set_level(logging.DEBUG)
    with Client(base_url=server.base_url, api_key=server.api_key) as client:
        client.create_llm_config(name="L", llm_model_name="m", api_key="sk-very-secret-value")
        t = client.create_prompt_template(name="T", template="{{x}}")
        c = client.create_collection(name="C", variables=[{"x": "1"}])
        client.run_experiment(name="E", prompt_template=t, collection=c, criteria=["ok?"])
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert any(r.name.startswith("elluminate") for r in caplog.records)
    assert server.api_key not in text
    assert "sk-very-secret-value" not in text
