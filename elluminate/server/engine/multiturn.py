"""The run of a MULTI_TURN experiment: simulated users talk with the model under test.

It runs as the experiment's ``experiment`` task (status, stream, cancel, lease and resume as
for any run). For every scenario (a row of the experiment's collection: a scenario set's
scenarios, or a collection with ``goal`` and ``expected_conversation_outcome`` columns) x
epoch x persona (a row of the PERSONA collection ``persona_group_id``) without a conversation
yet, it holds one conversation:

1. The **user simulator** (the server's default LLM, as for the judge) gets a system message
   with the persona (its row's values), the goal and the scenario's fields, and the
   conversation so far with the roles swapped (the model's answers are its ``user`` turns). Its
   answer (at most :data:`SIMULATED_USER_MAX_TOKENS` tokens) is the next user message. An
   answer that is empty or contains :data:`END_MARKER` ends the conversation
   (``termination_reason`` ``user_ended``).
2. The **model under test** (the experiment's LLM config, else the server default) gets the
   rendered prompt template (if the experiment has one; with the scenario's values) followed
   by the conversation, and answers as the assistant.
3. After ``agent_config.max_turns`` user turns (default :data:`..store.multiturn.
   DEFAULT_MAX_TURNS`) the conversation ends (``max_turns``). A provider error ends it with
   the error stored on the response (``error``).

The conversation is stored as the response's messages (``trial`` and ``persona_id`` = the
persona's row id, so a resumed run cannot store it twice), then the judge rates it against
the criterion set, the criteria rendered with the scenario's values (``{{goal}}``,
``{{expected_conversation_outcome}}``, declared fields). Responses without error that lack a
rating are rated again (resume, retry-failed). On the echo provider every step is a pure
function of the inputs, so runs are reproducible.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

from elluminate.schemas import GenerationMetadata

from ..evaluation import prompts as llm_prompts
from ..evaluation.generation import Generator, prompt_messages
from ..evaluation.judging import Criterion, applicable, judge_all
from ..evaluation.providers import ChatParams, Completion, ProviderError
from ..evaluation.transcripts import render_conversation
from ..store import multiturn as store
from ..store import responses as responses_store
from ..store import runs
from ..store.connection import Connection
from ..store.database import loads
from .planning import Setup, load_setup
from .task_context import TaskContext, TaskFailed, TaskRejected
from .work import Stats, generator_or_reject, judge_or_reject, log_failed_ratings, run_workers

#: A simulated user's answer containing this ends the conversation.
END_MARKER = "[END]"
#: Longest answer of the user simulator (users write short messages; it bounds the time a
#: conversation takes on a small local model).
SIMULATED_USER_MAX_TOKENS = 128


@dataclass
class Conversation:
    """What one conversation produced."""

    messages: list[dict[str, Any]]
    metadata: GenerationMetadata
    error: str | None
    termination_reason: str


def _lines(values: Mapping[str, Any], skip: tuple[str, ...] = ()) -> str:
    return "\n".join(f"- {k}: {v}" for k, v in values.items() if k not in skip and v != "")


def simulator_system(persona: Mapping[str, Any], scenario: Mapping[str, Any], goal: str) -> str:
    """The user simulator's instructions for one persona and scenario."""
    fields = _lines(scenario, (goal, store.GOAL, store.OUTCOME))
    return (
        "You play a user talking to an AI assistant. Stay in character and write only the "
        "user's next message, in the user's words.\n"
        f"Who you are:\n{_lines(persona) or '- an ordinary user'}\n"
        f"Your goal: {scenario.get(goal, '')}\n"
        + (f"Details of your situation:\n{fields}\n" if fields else "")
        + f"When your goal is reached, or clearly cannot be reached, answer only {END_MARKER}."
    )


def opening_request(scenario: Mapping[str, Any], goal: str) -> str:
    """The simulator's cue for the first message."""
    return f"Write your first message to the assistant. Your goal: {scenario.get(goal, '')}"


def simulator_messages(
    system: str, opening: str, conversation: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The conversation as the simulator sees it: its own turns are ``assistant`` turns."""
    swapped = [
        {"role": "assistant" if m["role"] == "user" else "user", "content": m["content"]}
        for m in conversation
    ]
    return [{"role": "system", "content": system}, {"role": "user", "content": opening}, *swapped]


def persona_name(persona_id: int, values: Mapping[str, Any]) -> str:
    """How logs and the judge name a persona: its ``name`` value, else its row id."""
    name = values.get("name")
    return str(name) if isinstance(name, str) and name.strip() else f"persona {persona_id}"


async def converse(
    ctx: TaskContext,
    model: Generator,
    simulator: Generator,
    prompt: list[dict[str, Any]],
    persona: Mapping[str, Any],
    scenario: Mapping[str, Any],
    goal: str,
    max_turns: int,
) -> Conversation:
    """Hold one conversation (see the module docstring); never raises a provider error."""
    system = simulator_system(persona, scenario, goal)
    opening = opening_request(scenario, goal)
    conversation: list[dict[str, Any]] = []
    totals = {"input": 0, "output": 0, "seconds": 0.0}

    def count(completion: Completion) -> None:
        totals["input"] += completion.input_tokens or 0
        totals["output"] += completion.output_tokens or 0
        totals["seconds"] += completion.duration_seconds or 0.0

    def outcome(error: str | None, reason: str) -> Conversation:
        metadata = GenerationMetadata(
            llm_model_config=model.llm_config,
            duration_seconds=float(totals["seconds"]),
            input_tokens=int(totals["input"]),
            output_tokens=int(totals["output"]),
        )
        return Conversation(conversation, metadata, error, reason)

    for _ in range(max_turns):
        asked = simulator_messages(system, opening, conversation)
        try:
            said = await ctx.llm(partial(simulator.provider.chat, asked, params=simulator.params))
        except ProviderError as exc:
            return outcome(f"the user simulator failed: {exc}", "error")
        count(said)
        text = said.text.strip()
        if not text or END_MARKER in text:
            return outcome(None, "user_ended")
        conversation.append({"role": "user", "content": text})
        sent = [*prompt, *conversation]
        try:
            answer = await ctx.llm(
                partial(
                    llm_prompts.generate_response,
                    model.provider,
                    sent,
                    model.params,
                    system_message=model.system_message,
                )
            )
        except ProviderError as exc:
            return outcome(f"the model failed: {exc}", "error")
        count(answer)
        conversation.append({"role": "assistant", "content": answer.text})
    return outcome(None, "max_turns")


def judge_prompt(scenario: Mapping[str, Any], goal: str, persona: str) -> list[dict[str, Any]]:
    """What the judge is told the conversation was about."""
    return [
        {
            "role": "user",
            "content": (
                f"A simulated user ({persona}) talked with the assistant. The user's goal: "
                f"{scenario.get(goal, '')}. The expected outcome of the conversation: "
                f"{scenario.get(store.OUTCOME, '')}."
            ),
        }
    ]


@dataclass
class ConversationPlan:
    """What a MULTI_TURN run has left, recomputed from the stored rows."""

    setup: Setup
    personas: list[tuple[int, dict[str, Any]]]
    todo: list[tuple[int, int, int]]  # (scenario row, epoch, persona) without a conversation
    rerate: list[tuple[int, int, int, list[Criterion]]]  # (response, row, persona, criteria)

    @property
    def total(self) -> int:
        return len(self.todo) + len(self.rerate)


async def plan_conversations(
    conn: Connection, project_id: int, experiment_id: int
) -> ConversationPlan:
    """The conversations a MULTI_TURN experiment lacks and those lacking some rating
    (TaskRejected when the experiment is gone or has no persona group)."""
    setup = await load_setup(conn, project_id, experiment_id)
    exp = setup.experiment
    if exp["persona_group_id"] is None:
        raise TaskRejected(f"experiment {exp['name']!r} has no persona group")
    personas = [(r[0], loads(r[1])) for r in await runs.live_rows(conn, exp["persona_group_id"])]
    stored = await store.conversations(conn, experiment_id)
    rated: dict[int, set[int]] = {}
    for response_id, criterion_id in await runs.rated_pairs(conn, experiment_id):
        rated.setdefault(response_id, set()).add(criterion_id)
    have = {(r[1], r[2], r[3]) for r in stored}
    todo = [
        (row_id, epoch, persona_id)
        for row_id, _ in setup.rows
        for epoch in range(1, setup.n_epochs + 1)
        for persona_id, _ in personas
        if (row_id, epoch, persona_id) not in have
    ]
    live_rows = {row_id for row_id, _ in setup.rows}
    rerate = []
    for response_id, row_id, _, persona_id, error in stored:
        if error is None and row_id in live_rows:
            done = rated.get(response_id, set())
            missing = [c for c in applicable(setup.criteria, row_id) if c.id not in done]
            if missing:
                rerate.append((response_id, row_id, persona_id, missing))
    return ConversationPlan(setup, personas, todo, rerate)


async def conversation_task(ctx: TaskContext) -> None:
    """Hold and rate the conversations a MULTI_TURN experiment is missing."""
    project_id = ctx.state.project_id
    experiment_id = ctx.state.experiment_id
    assert experiment_id is not None
    payload = ctx.payload or {}
    async with ctx.db.connect() as conn:
        plan = await plan_conversations(conn, project_id, experiment_id)
    setup, personas, todo, rerate = plan.setup, plan.personas, plan.todo, plan.rerate
    exp = setup.experiment
    if not personas:
        raise TaskRejected(f"the persona group of experiment {exp['name']!r} has no personas")
    try:
        max_turns = store.max_turns_of(loads(exp["agent_config"]))
    except ValueError as exc:
        raise TaskRejected(str(exc)) from None
    goal = store.goal_column(dict(setup.columns)) or store.GOAL
    model = generator_or_reject(ctx.providers, setup.llm_row, loads(exp["generation_params"]))
    simulator = generator_or_reject(ctx.providers, None)
    simulator.params = ChatParams(max_tokens=SIMULATED_USER_MAX_TOKENS)
    judge = judge_or_reject(
        ctx.providers, exp["rating_version"], payload.get("rating_mode") or exp["rating_mode"]
    )
    scenarios = dict(setup.rows)
    persona_values = dict(personas)
    if ctx.resumed:
        await ctx.set_total(
            max(ctx.state.total_responses, ctx.state.completed_responses + len(todo))
        )
    else:
        await ctx.set_total(len(todo) + len(rerate))
        if rerate:
            async with ctx.write() as conn:
                await ctx.progress(conn, responses=len(rerate))
    await ctx.log(
        f"{'Resuming' if ctx.resumed else 'Conversing'}: {len(todo)} conversations "
        f"({len(setup.rows)} scenarios x {len(personas)} personas x {setup.n_epochs} epochs, "
        f"at most {max_turns} turns each), {len(rerate)} to rate again; "
        f"{len(setup.criteria)} criteria"
    )
    stats = Stats()

    async def rate(
        response_id: int, row_id: int, persona_id: int, criteria: list[Criterion], text: str
    ) -> None:
        values = scenarios.get(row_id, {})
        name = persona_name(persona_id, persona_values.get(persona_id, {}))
        outcomes = await judge_all(
            ctx, judge, criteria, values, judge_prompt(values, goal, name), text
        )
        async with ctx.write() as conn:
            gone = not await responses_store.response_exists(conn, response_id)
            if not gone:
                await responses_store.store_ratings(conn, project_id, response_id, outcomes)
            await ctx.progress(conn, ratings=1)
        if not gone:
            stats.ratings(outcomes)
            await log_failed_ratings(ctx, response_id, outcomes)

    async def hold(item: tuple[int, int, int]) -> None:
        row_id, epoch, persona_id = item
        values = scenarios[row_id]
        try:
            prompt = (
                []
                if setup.template_messages is None
                else prompt_messages(setup.template_messages, values, setup.columns)
            )
        except ValueError as exc:
            prompt = []
            error = f"cannot render the prompt: {exc}"
            talk = Conversation([], GenerationMetadata(), error, "error")
        else:
            talk = await converse(
                ctx, model, simulator, prompt, persona_values[persona_id], values, goal, max_turns
            )
        async with ctx.write() as conn:
            response_id = None
            if await responses_store.row_is_live(conn, row_id):
                prompt_id = await responses_store.insert_prompt(
                    conn, project_id, experiment_id, setup.template, row_id, prompt
                )
                response_id = await store.insert_conversation(
                    conn,
                    project_id,
                    experiment_id,
                    prompt_id,
                    row_id=row_id,
                    epoch=epoch,
                    persona_id=persona_id,
                    messages=talk.messages,
                    metadata=talk.metadata,
                    error=talk.error,
                    termination_reason=talk.termination_reason,
                    llm_config_id=model.llm_config_id,
                )
            finished = response_id is None or talk.error is not None
            await ctx.progress(conn, responses=1, ratings=1 if finished else 0)
        if response_id is None:
            await ctx.log(
                f"scenario {row_id} epoch {epoch} persona {persona_id}: skipped (the scenario "
                "was deleted during the run, or its conversation is stored already)"
            )
            return
        stats.generation(talk.error)
        if talk.error is not None:
            await ctx.log(f"scenario {row_id} epoch {epoch} persona {persona_id}: {talk.error}")
            return
        criteria = applicable(setup.criteria, row_id)
        if criteria:
            await rate(
                response_id, row_id, persona_id, criteria, render_conversation(talk.messages)
            )
        else:
            async with ctx.write() as conn:
                await ctx.progress(conn, ratings=1)

    async def rate_again(item: tuple[int, int, int, list[Criterion]]) -> None:
        response_id, row_id, persona_id, criteria = item
        async with ctx.db.connect() as conn:
            row = await responses_store.response_to_rate(conn, response_id)
        if row is None:
            async with ctx.write() as conn:
                await ctx.progress(conn, ratings=1)
            return
        text = render_conversation(loads(row["messages"]) or [])
        await rate(response_id, row_id, persona_id, criteria, text)

    async def work(item: Any) -> None:
        if len(item) == 4:
            await rate_again(item)
        else:
            await hold(item)

    items: deque[Any] = deque([*rerate, *todo])
    await run_workers(ctx.concurrency, items, work, stop=lambda: stats.dead)
    await ctx.log(
        f"{stats.generated} conversations held, {stats.failed} failed; "
        f"{stats.ratings_ok} ratings, {stats.ratings_failed} failed ratings"
    )
    if stats.dead:
        raise TaskFailed(
            f"stopped after {stats.failed} failed conversations in a row without any success; "
            f"first error: {stats.first_error}"
        )
    if stats.failed and not stats.generated:
        raise TaskFailed(
            f"every conversation failed ({stats.failed}); first error: {stats.first_error}"
        )
    if stats.ratings_failed and not stats.ratings_ok:
        raise TaskFailed(
            f"every rating failed ({stats.ratings_failed}); first error: {stats.first_rating_error}"
        )


__all__ = [
    "END_MARKER",
    "Conversation",
    "ConversationPlan",
    "conversation_task",
    "converse",
    "plan_conversations",
]
