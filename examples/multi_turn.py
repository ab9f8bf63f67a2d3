"""A multi-turn evaluation: simulated users with personas talk with the model, the judge rates
each conversation against the scenario's expected outcome.

    python examples/multi_turn.py                # embedded server, echo provider (dry run)
    python examples/multi_turn.py --llm local    # the bundled local model plays all parts
                                                 # (about 24 model calls: many minutes on a CPU)

Or set ELLUMINATE_BASE_URL and ELLUMINATE_API_KEY to use a running server.
"""

from __future__ import annotations

import argparse
import asyncio

from elluminate import alocal_client

SCENARIOS = [
    {
        "goal": "Get a refund for a broken kettle",
        "expected_conversation_outcome": "The assistant explains how to return the kettle",
        "field_values": {"product": "kettle"},
    },
    {
        "goal": "Change the delivery address of an order",
        "expected_conversation_outcome": "The assistant asks for the order number",
        "field_values": {"product": "order"},
    },
]
PERSONAS = [
    {"name": "Ann", "style": "impatient, writes short messages"},
    {"name": "Bob", "style": "friendly and chatty"},
]
CRITERIA = [
    "Does the conversation reach this outcome: {{expected_conversation_outcome}}?",
    "Does the assistant stay on the topic of the {{product}}?",
]
SUPPORT_PROMPT = "You are the customer support of a shop. Help with: {{goal}}"


async def main(llm: str) -> None:
    async with alocal_client(llm=llm) as client:
        scenarios = await client.create_scenario_set(
            name="Support chats", description="what customers want", fields=["product"]
        )
        await scenarios.aadd_scenarios(SCENARIOS)
        personas = await client.create_collection(
            name="Customers", variables=PERSONAS, collection_type="PERSONA"
        )
        criteria = await client.create_criterion_set(name="Support criteria", criteria=CRITERIA)
        template = await client.create_prompt_template(
            name="Support", messages=[{"role": "system", "content": SUPPORT_PROMPT}]
        )
        experiment = await client.create_experiment(
            "Support conversations",
            template,  # the model's system prompt, rendered with each scenario
            scenario_set=scenarios,
            criterion_set=criteria,
            evaluation_mode="MULTI_TURN",
            persona_group_id=personas.id,
            agent_config={"max_turns": 2},
        )
        await experiment.arun()
        responses = list(experiment.responses())
        shape = f"{len(SCENARIOS)} scenarios x {len(PERSONAS)} personas"
        print(f"{len(responses)} conversations ({shape})")
        for response in responses:
            goal = response.prompt.template_variables.input_values["goal"]
            print(f"goal: {goal} ({len(response.messages)} messages)")
            for message in response.messages:
                print(f"  {message['role']:9} {str(message['content'])[:90]}")
            for rating in response.ratings:
                print(f"  -> {rating.rating.value:3} {rating.criterion.criterion_str}")
        print(f"pass rate {experiment.results.mean_all_ratings.yes:.1%}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--llm", default="echo", choices=["echo", "local"])
    asyncio.run(main(parser.parse_args().llm))
