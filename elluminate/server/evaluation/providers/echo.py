"""The deterministic ``echo`` provider: for tests, dry runs and benchmarks only.

It never calls a model; every answer is a pure function of the request, so test suites can
predict results exactly. It is never the silent default of a real evaluation.

Rules (``text`` of a message = its string content, or its text parts joined by newlines):

* **Failure marker**: if any message text contains ``ECHO_FAIL`` the call raises
  :class:`ProviderError` (``retryable=False``). Put the marker in a collection row to make that
  row's generation fail, or in a criterion to make its ratings fail.
* **Latency**: each call first sleeps ``latency`` seconds (``asyncio.sleep``).
* ``params`` (sampling, timeout, retries) are accepted and ignored.
* **Plain generation** (no ``json_schema``): ``"Echo: " + text`` of the last ``user`` message
  (of the last message when there is no user message; ``"Echo: "`` for no messages).
* **Tokens**: ``input_tokens`` = whitespace-separated words over all message texts,
  ``output_tokens`` = words in the answer.
* **JSON answers** (``json_schema`` given), chosen by the schema's ``title``:

  - ``CriteriaList``: placeholders ``{{name}}`` found in the last user message, in order of
    first appearance, each give ``"Does the response address the <name>?"``; then the fixed
    ``"Is the response non-empty?"``. Answer ``{"criteria": [...]}``.
  - ``TestCases``: every required property ``name`` gets ``"<name> example <k>"``, where ``k``
    is the number in ``"test case #k"`` in the last user message (default 1).
  - ``Verdict``: the criterion is the text between the first ``<criterion>`` and the next
    ``</criterion>``; the response is the text between the last ``<response>`` line and the last
    ``</response>`` line (the layout :mod:`elluminate.server.evaluation.llm_judge` uses); the
    answer is ``{"reasoning": ..., "rating": ...}`` from :func:`echo_verdict` (only the
    properties the schema declares).
  - any other title: a minimal instance of the schema (strings ``"echo"``, numbers ``0``,
    booleans ``false``, arrays ``[]``, enums their first value, objects their required keys).
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from typing import Any

from .base import ChatParams, Completion, ProviderError, message_text

__all__ = ["ECHO_FAIL", "ECHO_NO", "EchoProvider", "echo_verdict"]

ECHO_FAIL = "ECHO_FAIL"
ECHO_NO = "ECHO_NO"

_PLACEHOLDER = re.compile(r"\{\{\s*(\w+)\s*\}\}")
_CASE_NUMBER = re.compile(r"test case #(\d+)", re.IGNORECASE)


def echo_verdict(criterion_str: str, response_str: str) -> tuple[str, str]:
    """The echo judge's rule: ``("yes"|"no", reasoning)``, a pure function.

    ``"no"`` when the response is empty or whitespace, when the response contains ``ECHO_NO``,
    or when the criterion contains ``ECHO_NO``; ``"yes"`` otherwise.
    """
    if not response_str.strip():
        return "no", "The response is empty."
    if ECHO_NO in response_str:
        return "no", f"The response contains the marker {ECHO_NO}."
    if ECHO_NO in criterion_str:
        return "no", f"The criterion contains the marker {ECHO_NO}."
    return "yes", f"The response is non-empty and contains no {ECHO_NO} marker."


def _words(text: str) -> int:
    return len(text.split())


def _last_user_text(messages: list[dict[str, Any]]) -> str:
    for message in reversed(messages):
        if message.get("role") == "user":
            return message_text(message)
    return message_text(messages[-1]) if messages else ""


def _between(text: str, start: str, end: str, *, last: bool) -> str:
    i = text.rfind(start) if last else text.find(start)
    if i < 0:
        return ""
    i += len(start)
    j = text.rfind(end) if last else text.find(end, i)
    if j < i:
        return text[i:]
    return text[i:j]


def _minimal_instance(schema: Any) -> Any:
    if not isinstance(schema, dict):
        return None
    if schema.get("enum"):
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), None)
    if kind == "object" or "properties" in schema:
        props = schema.get("properties") or {}
        required = schema.get("required") or list(props)
        return {key: _minimal_instance(props.get(key, {"type": "string"})) for key in required}
    if kind == "array":
        return []
    if kind in ("integer", "number"):
        return 0
    if kind == "boolean":
        return False
    if kind == "null":
        return None
    return "echo"


class EchoProvider:
    """Deterministic fake LLM (see the module docstring for the exact rules)."""

    name = "echo"

    def __init__(self, model: str = "echo", latency: float = 0.0) -> None:
        self.model = model
        self.latency = latency
        self.calls = 0

    async def chat(
        self,
        messages: list[dict[str, Any]],
        *,
        json_schema: dict[str, Any] | None = None,
        params: ChatParams | None = None,
    ) -> Completion:
        """Answer by the documented echo rules."""
        start = time.perf_counter()
        self.calls += 1
        if self.latency > 0:
            await asyncio.sleep(self.latency)
        texts = [message_text(m) for m in messages]
        if any(ECHO_FAIL in t for t in texts):
            raise ProviderError(
                f"echo provider (model {self.model!r}): the prompt contains the failure marker "
                f"{ECHO_FAIL}",
                retryable=False,
            )
        last = _last_user_text(messages)
        if json_schema is None:
            text = "Echo: " + last
        else:
            text = json.dumps(self._structured(last, json_schema), ensure_ascii=False)
        return Completion(
            text=text,
            input_tokens=sum(_words(t) for t in texts),
            output_tokens=_words(text),
            duration_seconds=time.perf_counter() - start,
            model=self.model,
        )

    def _structured(self, last: str, schema: dict[str, Any]) -> Any:
        title = schema.get("title")
        if title == "CriteriaList":
            names = list(dict.fromkeys(_PLACEHOLDER.findall(last)))
            criteria = [f"Does the response address the {name}?" for name in names]
            criteria.append("Is the response non-empty?")
            return {"criteria": criteria}
        if title == "TestCases":
            match = _CASE_NUMBER.search(last)
            k = int(match.group(1)) if match else 1
            props = schema.get("properties") or {}
            keys = schema.get("required") or list(props)
            return {key: f"{key} example {k}" for key in keys}
        if title == "Verdict":
            criterion = _between(last, "<criterion>", "</criterion>", last=False).strip()
            response = _between(last, "<response>\n", "\n</response>", last=True)
            rating, reasoning = echo_verdict(criterion, response)
            props = schema.get("properties") or {"reasoning": {}, "rating": {}}
            out: dict[str, str] = {}
            if "reasoning" in props:
                out["reasoning"] = reasoning
            out["rating"] = rating
            return out
        return _minimal_instance(schema)

    async def aclose(self) -> None:
        """Nothing to release."""
