"""The same workflow twice: blocking ``Client`` first, then ``AsyncClient``."""

from __future__ import annotations

import asyncio

from elluminate import alocal_client, local_client


def before() -> float:
    with local_client() as client:
        template = client.create_prompt_template(name="Sync", template="Explain {{topic}}.")
        collection = client.create_collection(name="Sync")
        collection.add_many(variables=[{"topic": "AI"}, {"topic": "ML"}])
        template.generate_criteria()
        experiment = client.run_experiment(
            name="Sync", prompt_template=template, collection=collection
        )
        return experiment.results.mean_all_ratings.yes


async def after() -> float:
    async with alocal_client() as client:
        template = await client.create_prompt_template(name="Async", template="Explain {{topic}}.")
        collection = await client.create_collection(name="Async")
        await collection.aadd_many(
            variables=[{"topic": "AI"}, {"topic": "ML"}]
        )  # note the a-prefix
        await template.agenerate_criteria()
        experiment = await client.run_experiment(
            name="Async", prompt_template=template, collection=collection
        )
        return experiment.results.mean_all_ratings.yes


if __name__ == "__main__":
    print(f"sync pass rate:  {before():.1%}")
    print(f"async pass rate: {asyncio.run(after()):.1%}")
