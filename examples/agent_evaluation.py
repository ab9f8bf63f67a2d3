"""Evaluate an agent: upload its runs as ATIF trajectories, get the judge's ratings.

    python examples/agent_evaluation.py                # embedded server, echo provider (dry run)
    python examples/agent_evaluation.py --llm local    # the bundled local model judges (CPU)

Or set ELLUMINATE_BASE_URL and ELLUMINATE_API_KEY to use a running server. The agent itself is
not run here: its two runs are written out as they would come from an agent harness.
"""

from __future__ import annotations

import argparse
import asyncio

from elluminate import alocal_client
from elluminate.schemas import AgentTrialResult, CriterionIn, CriterionRatingIn
from elluminate.schemas.atif import (
    ATIFAgent,
    ATIFFinalMetrics,
    ATIFObservation,
    ATIFObservationResult,
    ATIFStep,
    ATIFToolCall,
    ATIFTrajectory,
)

TASKS = [
    {"task": "fix-test", "instruction": "Make the failing test in tests/test_math.py pass"},
    {"task": "add-docs", "instruction": "Write a docstring for the function add()"},
]
CRITERIA = [
    CriterionIn(criterion_str="Did the agent complete the task '{{task}}'?", label="completed"),
    CriterionIn(criterion_str="Did the agent run the tests before finishing?", label="ran tests"),
]


def trajectory(task: str, steps: list[tuple[str, str, str | None]]) -> ATIFTrajectory:
    """An ATIF trajectory from ``(source, message, shell command or None)`` steps."""
    out = []
    for number, (source, message, command) in enumerate(steps, 1):
        calls = observation = None
        if command is not None:
            call_id = f"call-{number}"
            shell = {"cmd": command}
            calls = [ATIFToolCall(tool_call_id=call_id, function_name="shell", arguments=shell)]
            observation = ATIFObservation(
                results=[ATIFObservationResult(source_call_id=call_id, content="1 passed")]
            )
        out.append(
            ATIFStep(
                step_id=number,
                source=source,
                message=message,
                tool_calls=calls,
                observation=observation,
            )
        )
    return ATIFTrajectory(
        schema_version="ATIF-v1.4",
        session_id=f"run-{task}",
        agent=ATIFAgent(name="example-agent", version="0.1"),
        steps=out,
        final_metrics=ATIFFinalMetrics(total_steps=len(out)),
    )


def agent_runs() -> list[AgentTrialResult]:
    """Two runs, one per task, as an agent harness would report them."""
    fixed = trajectory(
        "fix-test",
        [
            ("user", TASKS[0]["instruction"], None),
            ("agent", "The assertion compares with the wrong value; fixing it.", None),
            ("agent", "Running the tests.", "pytest tests/test_math.py"),
            ("agent", "The test passes now.", None),
        ],
    )
    documented = trajectory(
        "add-docs",
        [
            ("user", TASKS[1]["instruction"], None),
            ("agent", 'Added """Return the sum of a and b.""" to add().', None),
        ],
    )
    return [
        AgentTrialResult(
            task_name="fix-test",
            messages=[{"role": "assistant", "content": "Fixed the assertion; the test passes."}],
            reward=1.0,
            steps=len(fixed.steps),
            cost_usd=0.002,
            trajectory=fixed,
        ),
        AgentTrialResult(
            task_name="add-docs",
            messages=[{"role": "assistant", "content": "Added the docstring."}],
            reward=1.0,
            steps=len(documented.steps),
            trajectory=documented,
            # a rating the harness knows already is stored as given; the judge rates the rest
            criterion_ratings=[
                CriterionRatingIn(
                    label="ran tests",
                    rating="NO",
                    reasoning="the trajectory has no test run",
                )
            ],
        ),
    ]


async def main(llm: str) -> None:
    async with alocal_client(llm=llm) as client:
        collection = await client.create_collection(
            name="Agent tasks", variables=TASKS, collection_type="AGENTIC"
        )
        criteria = await client.create_criterion_set(name="Agent criteria", criteria=CRITERIA)
        experiment = await client.create_experiment(
            "Agent run",
            None,  # no prompt template: the agent got its instructions from the task rows
            collection=collection,
            criterion_set=criteria,
            evaluation_mode="AGENTIC",
            agent_config={"agent": "example-agent", "version": "0.1"},
        )
        definition = await experiment.aget_agent_results_definition()
        print(f"tasks: {[t.task_name for t in definition.tasks]}")
        upload = await client.upload_agent_results(experiment, agent_runs())
        print(
            f"uploaded: {upload.created_responses} runs, {upload.created_ratings} given ratings, "
            f"{upload.pending_evaluations} left to the judge"
        )
        event = await client.wait_for_agent_evaluation(
            experiment, task_id=upload.evaluation_task_id, polling_interval=0.2
        )
        print(f"evaluation: {event.status.value}")
        rendered = {  # each task's criteria as the judge read them
            (t.task_name, c.criterion_id): c.rendered_criterion_str
            for t in definition.tasks
            for c in t.criteria
        }
        experiment = await client.get_experiment(id=experiment.id)
        for response in experiment.responses():
            task = response.prompt.template_variables.input_values["task"]
            print(f"{task}: {response.response_str!r}")
            for rating in response.ratings:
                text = rendered[(task, rating.criterion.id)]
                print(f"  {rating.rating.value:3} {text} ({rating.reasoning})")
        print(f"pass rate {experiment.results.mean_all_ratings.yes:.1%}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--llm", default="echo", choices=["echo", "local"])
    asyncio.run(main(parser.parse_args().llm))
