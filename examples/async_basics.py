"""The basics: create a template and a collection, generate criteria, run an experiment.

python examples/async_basics.py     # embedded server (echo); or set ELLUMINATE_BASE_URL
"""

from __future__ import annotations

import asyncio

from elluminate import alocal_client


async def main() -> None:
    async with alocal_client() as client:
        template = await client.create_prompt_template(
            name="My template", template="Explain {{concept}} in simple words."
        )
        collection = await client.create_collection(name="Concepts")
        await collection.aadd_many(variables=[{"concept": "recursion"}, {"concept": "caching"}])
        criteria = await template.agenerate_criteria()
        experiment = await client.run_experiment(
            name="My experiment", prompt_template=template, collection=collection
        )
        print(f"criteria: {[c.criterion_str for c in criteria]}")
        print(
            f"finished: {experiment.name}, pass rate {experiment.results.mean_all_ratings.yes:.1%}"
        )
        for response in experiment.responses():
            verdicts = [r.rating.value for r in response.ratings]
            print(f"  {response.response_str[:60]!r}: {verdicts}")


if __name__ == "__main__":
    asyncio.run(main())
