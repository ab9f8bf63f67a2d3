"""Prompt templates: create, versions, lookups, get_or_create, list, delete, bad input."""

from __future__ import annotations

import pytest

from elluminate import schemas
from elluminate.exceptions import APIError, ConflictError, ModelNotBoundError, NotFoundError


async def test_create_with_template_shorthand(client):
    t = await client.create_prompt_template(name="Seed", template="Explain {{concept}} simply.")
    assert isinstance(t, schemas.PromptTemplate)
    assert t.version == 1
    assert t.placeholders == {"concept"}  # a set, as in the official package
    assert t.messages == [{"role": "user", "content": "Explain {{concept}} simply."}]


async def test_create_with_official_messages(client):
    msgs = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "{{q}} and {{ r }}"},
    ]
    t = await client.create_prompt_template(name="Official", messages=msgs)
    assert sorted(t.placeholders) == ["q", "r"]
    assert t.messages[0]["role"] == "system"


async def test_string_messages_become_one_user_message(client):
    t = await client.create_prompt_template("Str", "Hi {{name}}")
    assert t.messages == [{"role": "user", "content": "Hi {{name}}"}]


async def test_response_format_dict_and_tools(client):
    fmt = {"type": "json_schema", "json_schema": {"name": "a", "schema": {"type": "object"}}}
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    t = await client.create_prompt_template(
        name="Tools", template="{{x}}", response_format=fmt, tools=tools, tool_choice="auto"
    )
    assert t.response_format_json_schema == fmt
    assert t.tools is not None and t.tools[0]["function"]["name"] == "f"
    assert t.tool_choice == "auto"


async def test_identical_content_conflicts_and_new_content_versions(client):
    await client.create_prompt_template(name="V", template="one {{x}}")
    with pytest.raises(ConflictError) as info:
        await client.create_prompt_template(name="V", template="one {{x}}")
    assert info.value.status_code == 409
    assert info.value.resource_id is not None
    v2 = await client.create_prompt_template(name="V", template="two {{x}}")
    assert v2.version == 2
    latest = await client.get_prompt_template(name="V")
    assert latest.id == v2.id
    first = await client.get_prompt_template(name="V", version=1)
    assert first.version == 1 and first.messages[0]["content"] == "one {{x}}"


async def test_get_by_id_and_missing(client, template):
    again = await client.get_prompt_template(id=template.id)
    assert again == template
    with pytest.raises(NotFoundError):
        await client.get_prompt_template(id=999_999)
    with pytest.raises(NotFoundError):
        await client.get_prompt_template(name="nope")
    with pytest.raises(NotFoundError):
        await client.get_prompt_template(name=template.name, version=7)
    with pytest.raises(ValueError):
        await client.get_prompt_template(name="a", id=1)
    with pytest.raises(ValueError):
        await client.get_prompt_template()


async def test_get_or_create_both_branches(client):
    t1, created1 = await client.get_or_create_prompt_template(name="G", template="hello {{x}}")
    t2, created2 = await client.get_or_create_prompt_template(name="G", template="hello {{x}}")
    assert (created1, created2) == (True, False)
    assert t1.id == t2.id
    t3, created3 = await client.get_or_create_prompt_template(name="G", template="bye {{x}}")
    assert created3 and t3.version == 2


async def test_new_version_inherits_and_links_parent(client, template):
    v2 = await template.anew_version(template="Explain {{topic}} with an example.")
    assert v2.name == template.name and v2.version == 2
    with pytest.raises(ConflictError):
        await template.anew_version()  # identical to version 1


async def test_list_and_delete(client):
    for i in range(3):
        await client.create_prompt_template(name=f"L{i}", template=f"{{{{x}}}} {i}")
    names = sorted(t.name for t in await client.list_prompt_templates())
    assert names == ["L0", "L1", "L2"]
    only = await client.list_prompt_templates(name="L1")
    assert [t.name for t in only] == ["L1"]
    await client.delete_prompt_template(only[0])
    assert sorted(t.name for t in await client.list_prompt_templates()) == ["L0", "L2"]
    with pytest.raises(NotFoundError):
        await client.delete_prompt_template(only[0].id)


async def test_render_messages_locally(template):
    assert template.render_messages(topic="AI")[0]["content"] == "Explain AI briefly."
    with pytest.raises(ValueError, match="topic"):
        template.render_messages()


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"name": "", "template": "x {{a}}"}, "name"),
        ({"name": "   ", "template": "x {{a}}"}, "name"),
        ({"name": "Bad", "template": "Explain {{topic"}, "{{"),
        ({"name": "Bad", "template": "Explain {{ two words }}"}, "placeholder"),
    ],
)
async def test_bad_templates_are_rejected_and_nothing_is_written(client, kwargs, fragment):
    with pytest.raises(APIError) as info:
        await client.create_prompt_template(**kwargs)
    assert 400 <= (info.value.status_code or 0) < 500
    assert fragment in str(info.value.message)
    assert await client.list_prompt_templates() == []


async def test_local_argument_errors(client):
    with pytest.raises(ValueError, match="messages"):
        await client.create_prompt_template(name="x")
    with pytest.raises(ValueError, match="not both"):
        await client.create_prompt_template(name="x", messages="a", template="b")
    with pytest.raises(ValueError, match="tools"):
        await client.create_prompt_template(name="x", template="a", tool_choice="auto")
    with pytest.raises(ValueError, match="response_format"):
        await client.create_prompt_template(name="x", template="a", response_format=42)


async def test_unbound_model_raises(client):
    loose = schemas.PromptTemplate(id=1, name="x", version=1)
    assert not hasattr(loose, "anew_version")
    from elluminate._async.models import PromptTemplate

    with pytest.raises(ModelNotBoundError):
        await PromptTemplate(id=1, name="x", version=1).alist_criteria()
