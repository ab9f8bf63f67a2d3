"""The user's spec (seeds/000): each example, with the same calls, against the local server.

The client is built exactly as in the spec, ``AsyncClient()`` / ``Client()`` from the
environment, which the ``env`` fixture points at a fresh local server.
"""

from __future__ import annotations

import asyncio
from datetime import datetime

import pytest

from elluminate import AsyncClient, Client, RatingMode
from elluminate.exceptions import ConflictError, NotFoundError
from elluminate.streaming import TaskStatus


@pytest.fixture
def env(server, monkeypatch):
    monkeypatch.setenv("ELLUMINATE_API_KEY", server.api_key)
    monkeypatch.setenv("ELLUMINATE_BASE_URL", server.base_url)
    return server


async def _shared_resources(client):
    criterion_set = await client.create_criterion_set(name="Quality")
    await criterion_set.aadd_criteria(["Is the answer helpful?", "Is it accurate?"])
    collection = await client.create_collection(name="Test cases")
    await collection.aadd_many(variables=[{"topic": "AI"}, {"topic": "ML"}])
    return criterion_set, collection


async def test_basic_usage_with_context_manager(env):
    async with AsyncClient() as client:
        template = await client.create_prompt_template(
            name="My template", template="Explain {{concept}} in simple words."
        )
        collection = await client.create_collection(
            name="Concepts", variables=[{"concept": "recursion"}]
        )
        await template.agenerate_criteria()
        experiment = await client.run_experiment(
            name="My experiment", prompt_template=template, collection=collection
        )
        assert experiment.name == "My experiment"
        assert len(experiment.rated_responses) == 1


async def test_manual_resource_management(env):
    client = AsyncClient()
    try:
        template = await client.create_prompt_template(name="Manual", template="Hi {{x}}")
        assert template.version == 1
    finally:
        await client.close()


async def test_ab_test_pattern(env):
    async with AsyncClient() as client:
        criterion_set, collection = await _shared_resources(client)
        template_a = await client.create_prompt_template(
            name="Style A", template="Explain {{topic}} briefly."
        )
        template_b = await client.create_prompt_template(
            name="Style B", template="Explain {{topic}} with examples."
        )
        exp_a, exp_b = await asyncio.gather(
            client.run_experiment(
                name="Test A",
                prompt_template=template_a,
                collection=collection,
                criterion_set=criterion_set,
            ),
            client.run_experiment(
                name="Test B",
                prompt_template=template_b,
                collection=collection,
                criterion_set=criterion_set,
            ),
        )
        assert f"A: {exp_a.results.mean_all_ratings.yes:.1%}" == "A: 100.0%"
        assert f"B: {exp_b.results.mean_all_ratings.yes:.1%}" == "B: 100.0%"
        assert exp_a.id != exp_b.id


async def test_batch_processing_of_collections(env):
    async with AsyncClient() as client:
        await client.create_prompt_template(name="My template", template="Explain {{topic}}.")
        await client.create_criterion_set(name="My criteria", criteria=["Is it correct?"])
        for i in range(1, 4):
            await client.create_collection(name=f"Collection {i}", variables=[{"topic": f"t{i}"}])

        async def batch_process():
            template = await client.get_prompt_template(name="My template")
            criterion_set = await client.get_criterion_set(name="My criteria")
            collections = await asyncio.gather(
                client.get_collection(name="Collection 1"),
                client.get_collection(name="Collection 2"),
                client.get_collection(name="Collection 3"),
            )
            return await asyncio.gather(
                *[
                    client.run_experiment(
                        name=f"Experiment {i + 1}",
                        prompt_template=template,
                        collection=coll,
                        criterion_set=criterion_set,
                    )
                    for i, coll in enumerate(collections)
                ]
            )

        experiments = await batch_process()
        assert [e.name for e in experiments] == ["Experiment 1", "Experiment 2", "Experiment 3"]
        assert all(len(e.rated_responses) == 1 for e in experiments)


async def test_fastapi_endpoint_calls(env):
    """The calls of the spec's FastAPI handler, in order (the app itself: tests/examples)."""
    async_client = AsyncClient()
    try:
        prompt, test_case = "Summarise {{text}} in one line.", {"text": "a long story"}
        timestamp = datetime.now().strftime("%H%M%S%f")
        template, _ = await async_client.get_or_create_prompt_template(
            name="API Template", template=prompt
        )
        criteria, _ = await template.aget_or_generate_criteria()
        criterion_set = await async_client.get_criterion_set(name=template.name)
        collection = await async_client.create_collection(name=f"Test {timestamp}")
        await collection.aadd_many(variables=[test_case])
        experiment = await async_client.run_experiment(
            name=f"Eval {timestamp}",
            prompt_template=template,
            collection=collection,
            criterion_set=criterion_set,
        )
        result = {
            "experiment_id": experiment.id,
            "pass_rate": experiment.results.mean_all_ratings.yes if experiment.results else 0,
        }
        assert criteria and result["pass_rate"] == 1.0
        again, created = await async_client.get_or_create_prompt_template(
            name="API Template", template=prompt
        )
        assert not created and again.id == template.id
        assert (await template.aget_or_generate_criteria())[1] is False
    finally:
        await async_client.close()


async def test_gather_independent_lookups(env):
    async with AsyncClient() as client:
        await client.create_prompt_template(name="T", template="{{x}}")
        await client.create_collection(name="C")
        await client.create_criterion_set(name="S")
        template, collection, criterion_set = await asyncio.gather(
            client.get_prompt_template(name="T"),
            client.get_collection(name="C"),
            client.get_criterion_set(name="S"),
        )
        assert (template.name, collection.name, criterion_set.name) == ("T", "C", "S")


async def test_twenty_experiments_under_a_semaphore_of_five(env):
    async def run_with_limit(semaphore, client, name, template, collection):
        async with semaphore:
            return await client.run_experiment(
                name=name,
                prompt_template=template,
                collection=collection,
            )

    async with AsyncClient() as client:
        template = await client.create_prompt_template(name="T", template="Explain {{topic}}")
        await template.agenerate_criteria()
        collection = await client.create_collection(
            name="C", variables=[{"topic": "a"}, {"topic": "b"}]
        )
        n_criteria = len(await template.alist_criteria())
        semaphore = asyncio.Semaphore(5)
        tasks = [
            run_with_limit(semaphore, client, f"Exp {i}", template, collection) for i in range(20)
        ]
        experiments = await asyncio.gather(*tasks)
    assert len({e.id for e in experiments}) == 20
    for e in experiments:
        assert e.generation_task_id is None and len(e.rated_responses) == 2
        assert all(len(r.ratings) == n_criteria for r in e.rated_responses)


async def test_reuse_one_client_per_application(env):
    class App:
        def __init__(self):
            self.client = AsyncClient()

        async def process(self, name, template, collection):
            return await self.client.run_experiment(
                name=name,
                prompt_template=template,
                collection=collection,
                criteria=["Is it ok?"],
            )

        async def cleanup(self):
            await self.client.close()

    app = App()
    try:
        template = await app.client.create_prompt_template(name="T", template="{{x}}")
        collection = await app.client.create_collection(name="C", variables=[{"x": "1"}])
        first = await app.process("one", template, collection)
        second = await app.process("two", template, collection)
        assert first.id != second.id
    finally:
        await app.cleanup()


async def test_error_handling(env):
    async with AsyncClient() as client:
        await client.create_prompt_template(name="Existing", template="Hello {{x}}")
        try:
            template = await client.create_prompt_template(name="Existing", template="Hello {{x}}")
        except ConflictError:
            template = await client.get_prompt_template(name="Existing")
        assert template.name == "Existing"
        with pytest.raises(NotFoundError):
            await client.get_experiment(name="NotExistent")


async def test_streaming_experiment_and_all_terminal_states(env):
    seen = []
    async with AsyncClient() as client:
        template = await client.create_prompt_template(name="T", template="Explain {{topic}}")
        collection = await client.create_collection(
            name="C", variables=[{"topic": "a"}, {"topic": "b"}, {"topic": "c"}]
        )
        experiment = None
        async for event in client.stream_experiment(
            name="My experiment",
            prompt_template=template,
            collection=collection,
            criteria=["Is it accurate?", "Is it helpful?"],
            polling_interval=0.5,
        ):
            seen.append(event.status)
            if event.status == TaskStatus.STARTED:
                if event.progress:
                    assert 0.0 <= event.progress.percent_complete <= 100.0
                    assert event.progress.responses_generated <= event.progress.total_responses
            elif event.status == TaskStatus.SUCCESS:
                experiment = event.result
                break
            elif event.status == TaskStatus.FAILURE:
                break
            elif event.status == TaskStatus.TIMEOUT:
                break
            elif event.status in {TaskStatus.REVOKED, TaskStatus.REJECTED}:
                break
        assert experiment is not None and len(list(experiment.responses())) == 3
        assert seen[-1] == TaskStatus.SUCCESS

        responses = list(experiment.responses())
        async for event in client.stream_batch_rate(
            prompt_responses=responses,
            rating_mode=RatingMode.DETAILED,
        ):
            if event.status == TaskStatus.SUCCESS:
                ratings = event.result
                assert len(ratings) == 3
            elif event.is_failure:
                pytest.fail(event.error_msg)
            assert event.progress is None


def test_migration_from_sync(env):
    client = Client()
    try:
        template = client.create_prompt_template(name="Migrated", template="Explain {{topic}}.")
        collection = client.create_collection(name="Migrated")
        collection.add_many(variables=[{"topic": "AI"}, {"topic": "ML"}])
        template.generate_criteria()
        experiment = client.run_experiment(
            name="Migrated",
            prompt_template=template,
            collection=collection,
        )
        assert len(experiment.rated_responses) == 2
        assert experiment.results.mean_all_ratings.yes == 1.0
    finally:
        client.close()
