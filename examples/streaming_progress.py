"""Stream an experiment's progress into a tqdm bar, handling every terminal state."""

from __future__ import annotations

import asyncio

from tqdm import tqdm

from elluminate import TaskStatus, alocal_client


async def main() -> None:
    async with alocal_client(echo_latency=0.05) as client:
        template = await client.create_prompt_template(name="T", template="Explain {{topic}}.")
        collection = await client.create_collection(
            name="C", variables=[{"topic": f"topic {i}"} for i in range(12)]
        )
        bar = tqdm(total=0, unit="response", desc="rated")
        async for event in client.stream_experiment(
            name="Streamed",
            prompt_template=template,
            collection=collection,
            criteria=["Is it accurate?", "Is it helpful?"],
            polling_interval=0.2,
        ):
            if event.status == TaskStatus.STARTED and event.progress:
                bar.total = event.progress.total_responses
                bar.update(event.progress.responses_rated - bar.n)
            elif event.status == TaskStatus.SUCCESS:
                bar.update(bar.total - bar.n)
                bar.close()
                experiment = event.result
                print(f"done: pass rate {experiment.results.mean_all_ratings.yes:.1%}")
            elif event.status == TaskStatus.TIMEOUT:
                bar.close()
                print(f"timed out: {event.error_msg}")
            elif event.is_failure:
                bar.close()
                print(f"{event.status}: {event.error_msg}")


if __name__ == "__main__":
    asyncio.run(main())
