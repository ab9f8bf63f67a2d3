"""Generation prompts: criteria for a prompt template, test-case rows for its placeholders,
and the response to a rendered prompt; and :func:`render_conversation`, the plain-text form
of a conversation that these prompts and the judge's (:mod:`.llm_judge`) embed.

Prompts are short on purpose (the embedded local model has 135M parameters); their answers
are JSON, parsed tolerantly and retried when malformed (:mod:`.structured_output`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from .providers.base import ChatParams, Completion, LLMProvider, message_text
from .structured_output import (
    ask_structured,
    criteria_schema,
    parse_criteria,
    parse_test_case,
    row_schema,
)

__all__ = [
    "generate_criteria",
    "generate_response",
    "generate_test_case",
    "render_conversation",
    "with_system_message",
]


def render_conversation(messages: Sequence[Mapping[str, Any]]) -> str:
    """Messages as plain text: a lone message is its text, several are ``role: text`` lines."""
    if len(messages) == 1:
        return message_text(dict(messages[0])).strip()
    return "\n".join(f"{m.get('role', 'user')}: {message_text(dict(m)).strip()}" for m in messages)


# Each prompt is a short instruction, one worked example as a user/assistant pair (small models
# copy the shape of an example far more reliably than they follow a description), then the
# real request as the last user message.

_CRITERIA_SYSTEM = (
    "You write yes/no questions that check answers to a prompt. Reply only with JSON."
)
_CRITERIA_USER = "Prompt: {prompt}\n\nWrite {n} different yes/no questions for this prompt."
_CRITERIA_EXAMPLE = (
    _CRITERIA_USER.format(prompt="Write a poem about the sea.", n=3),
    json.dumps(
        {
            "criteria": [
                "Is the answer a poem?",
                "Does the poem mention the sea?",
                "Does the poem rhyme?",
            ]
        }
    ),
)

_TEST_CASE_SYSTEM = "You write realistic test inputs for prompt templates. Reply only with JSON."
_TEST_CASE_USER = (
    "<template>\n{template}\n</template>\n\n"
    "Write test case #{index}: a value for each placeholder ({names}).{avoid}"
)
_TEST_CASE_EXAMPLE = (
    _TEST_CASE_USER.format(
        template="Write a {{style}} story about {{animal}}.",
        index=1,
        names="style, animal",
        avoid="",
    ),
    json.dumps({"style": "funny", "animal": "a penguin who learns to fly"}),
)


def _with_example(system: str, example: tuple[str, str], request: str) -> list[dict[str, Any]]:
    return [
        {"role": "system", "content": system},
        {"role": "user", "content": example[0]},
        {"role": "assistant", "content": example[1]},
        {"role": "user", "content": request},
    ]


async def generate_criteria(
    provider: LLMProvider,
    template_messages: list[dict[str, Any]],
    n: int = 5,
    *,
    params: ChatParams | None = None,
) -> list[str]:
    """Ask for ``n`` concise yes/no criteria for a prompt template (1 to ``n`` are returned)."""
    if n < 1:
        raise ValueError("n must be at least 1")
    request = _CRITERIA_USER.format(n=n, prompt=render_conversation(template_messages))
    messages = _with_example(_CRITERIA_SYSTEM, _CRITERIA_EXAMPLE, request)
    criteria, _ = await ask_structured(
        provider,
        messages,
        criteria_schema(),
        params,
        lambda raw: parse_criteria(raw, n),
        "criteria",
    )
    return list(criteria)


async def generate_test_case(
    provider: LLMProvider,
    template_messages: list[dict[str, Any]],
    placeholders: list[str],
    *,
    existing: Sequence[Mapping[str, str]] = (),
    params: ChatParams | None = None,
) -> dict[str, str]:
    """One test-case row with exactly ``placeholders`` as keys (non-empty strings).

    ``existing`` rows (the last five are shown) ask for a different row; the row is numbered
    ``len(existing) + 1`` in the prompt.
    """
    names = list(dict.fromkeys(placeholders))
    if not names:
        return {}
    avoid = ""
    if existing:
        shown = "\n".join(json.dumps(dict(row), ensure_ascii=False) for row in list(existing)[-5:])
        avoid = f"\nMake it different from these:\n{shown}"
    request = _TEST_CASE_USER.format(
        template=render_conversation(template_messages),
        index=len(existing) + 1,
        names=", ".join(names),
        avoid=avoid,
    )
    messages = _with_example(_TEST_CASE_SYSTEM, _TEST_CASE_EXAMPLE, request)
    row, _ = await ask_structured(
        provider,
        messages,
        row_schema(names),
        params,
        lambda raw: parse_test_case(raw, names),
        "test case",
    )
    return dict(row)


async def generate_response(
    provider: LLMProvider,
    messages: list[dict[str, Any]],
    params: ChatParams | None = None,
    *,
    system_message: str | None = None,
) -> Completion:
    """The model's answer to rendered prompt messages.

    ``system_message`` (an LLM config's) is prepended unless the prompt already starts with a
    system or developer message.
    """
    return await provider.chat(with_system_message(messages, system_message), params=params)


def with_system_message(
    messages: list[dict[str, Any]], system_message: str | None
) -> list[dict[str, Any]]:
    """``messages`` with ``system_message`` first, unless they start with a system or
    developer message already (or there is none to add)."""
    if system_message and not (messages and messages[0].get("role") in ("system", "developer")):
        return [{"role": "system", "content": system_message}, *messages]
    return messages
