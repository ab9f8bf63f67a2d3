"""Twenty experiments, at most five at a time (asyncio.Semaphore)."""

from __future__ import annotations

import asyncio
import time

from elluminate import alocal_client


async def run_with_limit(semaphore, client, name, template, collection):
    async with semaphore:
        return await client.run_experiment(
            name=name, prompt_template=template, collection=collection
        )


async def main() -> None:
    async with alocal_client(echo_latency=0.05) as client:
        template = await client.create_prompt_template(name="T", template="Explain {{topic}}.")
        await template.agenerate_criteria()
        collection = await client.create_collection(
            name="C", variables=[{"topic": "AI"}, {"topic": "ML"}]
        )
        semaphore = asyncio.Semaphore(5)
        start = time.perf_counter()
        experiments = await asyncio.gather(
            *[
                run_with_limit(semaphore, client, f"Exp {i}", template, collection)
                for i in range(20)
            ]
        )
        elapsed = time.perf_counter() - start
        print(
            f"{len(experiments)} experiments in {elapsed:.2f} s, "
            f"{sum(len(e.rated_responses) for e in experiments)} responses"
        )


if __name__ == "__main__":
    asyncio.run(main())
