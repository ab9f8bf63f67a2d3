"""Collections and entries: create, get, get_or_create, list, delete, add_many, clear, entries."""

from __future__ import annotations

import pytest

from elluminate import schemas
from elluminate.exceptions import APIError, ConflictError, NotFoundError


async def test_create_with_variables_and_columns(client):
    coll = await client.create_collection(
        name="C",
        description="d",
        variables=[{"topic": "AI", "cat": "a"}],
        columns=[
            "topic",
            schemas.CollectionColumn(name="cat", column_type="category", categorical_values=["a"]),
        ],
    )
    assert isinstance(coll, schemas.TemplateVariablesCollectionWithEntries)
    assert coll.description == "d"
    assert [c.name for c in coll.columns] == ["topic", "cat"]
    assert coll.columns[1].column_type == schemas.ColumnTypeEnum.CATEGORY
    assert [v.input_values for v in coll.variables] == [{"topic": "AI", "cat": "a"}]
    assert coll.variables[0].collection.id == coll.id
    assert coll.variables_count == 1


async def test_get_by_name_and_id_include_entries(client, collection):
    by_name = await client.get_collection(name="Topics")
    by_id = await client.get_collection(id=collection.id)
    assert by_name.id == by_id.id == collection.id
    assert [v.input_values["topic"] for v in by_id.variables] == ["AI", "ML"]
    with pytest.raises(NotFoundError):
        await client.get_collection(name="missing")
    with pytest.raises(NotFoundError):
        await client.get_collection(id=424242)


async def test_duplicate_name_conflicts(client, collection):
    with pytest.raises(ConflictError) as info:
        await client.create_collection(name="Topics")
    assert info.value.resource_type == "collection"


async def test_get_or_create_both_branches(client):
    c1, created1 = await client.get_or_create_collection(
        "G", defaults={"variables": [{"q": "1"}], "description": "first"}
    )
    c2, created2 = await client.get_or_create_collection("G", defaults={"description": "other"})
    assert (created1, created2) == (True, False)
    assert c2.id == c1.id and c2.description == "first"
    assert [v.input_values for v in c2.variables] == [{"q": "1"}]
    with pytest.raises(ValueError, match="unknown defaults"):
        await client.get_or_create_collection("G", defaults={"nme": "typo"})


async def test_list_and_compatible_filter_and_delete(client, template):
    await client.create_collection(name="A", variables=[{"topic": "x"}])
    await client.create_collection(name="B", variables=[{"other": "y"}])
    names = sorted(c.name for c in await client.list_collections())
    assert names == ["A", "B"]
    compatible = await client.list_collections(compatible_prompt_template=template)
    assert [c.name for c in compatible] == ["A"]
    a = await client.get_collection(name="A")
    await client.delete_collection(a)
    assert [c.name for c in await client.list_collections()] == ["B"]


async def test_add_many_with_skip_existing(client, collection):
    added = await collection.aadd_many([{"topic": "DL"}, {"topic": "AI"}], skip_existing=True)
    assert [v.input_values for v in added] == [{"topic": "DL"}]
    assert collection.variables_count == 3
    again = await collection.aadd_many([{"topic": "DL"}, {"topic": "DL"}], skip_existing=True)
    assert again == []
    dupes = await collection.aadd_many([{"topic": "DL"}])
    assert len(dupes) == 1
    fresh = await client.get_collection(id=collection.id)
    assert fresh.variables_count == 4 and len(fresh.variables) == 4


async def test_add_many_unicode_and_non_string_values(client, collection):
    added = await collection.aadd_many([{"topic": "Künstliche Intelligenz ✓"}, {"topic": 3}])
    assert added[0].input_values["topic"] == "Künstliche Intelligenz ✓"
    assert len(added) == 2


async def test_add_many_empty_sends_nothing(client, collection):
    assert await collection.aadd_many([]) == []


async def test_non_dict_entry_is_rejected_and_nothing_written(client, collection):
    with pytest.raises(ValueError, match="entry 1"):
        await collection.aadd_many([{"topic": "ok"}, "not a dict"])  # type: ignore[list-item]
    fresh = await client.get_collection(id=collection.id)
    assert len(fresh.variables) == 2


async def test_clear_returns_refreshed_collection(client, collection):
    cleared = await collection.aclear()
    assert cleared.variables == [] and cleared.variables_count == 0
    assert len(collection.variables) == 2  # the original object is not mutated


async def test_entry_get_update_delete(client, collection):
    entry = collection.variables[0]
    got = await collection.aget_entry(entry.id)
    assert got.input_values == {"topic": "AI"}
    updated = await collection.aupdate_entry(entry, {"topic": "Artificial Intelligence"})
    assert updated.input_values == {"topic": "Artificial Intelligence"}
    await collection.adelete_entry(entry)
    fresh = await client.get_collection(id=collection.id)
    assert [v.input_values["topic"] for v in fresh.variables] == ["ML"]
    with pytest.raises(NotFoundError):
        await collection.aget_entry(entry.id)


async def test_generate_variables_fills_placeholders(client, collection, template):
    entry = await collection.agenerate_variables(template)
    assert set(entry.input_values) == {"topic"}
    assert entry.input_values["topic"]
    assert collection.variables_count == 3


async def test_empty_name_is_rejected(client):
    with pytest.raises(APIError) as info:
        await client.create_collection(name="")
    assert "name" in str(info.value.message)
    assert await client.list_collections() == []
