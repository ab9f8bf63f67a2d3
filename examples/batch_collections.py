"""Run one template over several collections concurrently (asyncio.gather)."""

from __future__ import annotations

import asyncio

from elluminate import alocal_client


async def main() -> None:
    async with alocal_client() as client:
        await client.create_prompt_template(name="My template", template="Translate {{text}}.")
        await client.create_criterion_set(name="My criteria", criteria=["Is it a translation?"])
        for i, texts in enumerate([["hello", "bye"], ["cat"], ["one", "two", "three"]], start=1):
            await client.create_collection(
                name=f"Collection {i}", variables=[{"text": t} for t in texts]
            )

        template = await client.get_prompt_template(name="My template")
        criterion_set = await client.get_criterion_set(name="My criteria")
        collections = await asyncio.gather(
            client.get_collection(name="Collection 1"),
            client.get_collection(name="Collection 2"),
            client.get_collection(name="Collection 3"),
        )
        experiments = await asyncio.gather(
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
        for experiment in experiments:
            print(
                f"{experiment.name}: {len(experiment.rated_responses)} responses, "
                f"pass rate {experiment.results.mean_all_ratings.yes:.1%}"
            )


if __name__ == "__main__":
    asyncio.run(main())
