"""The LLM provider interface shared by the echo, OpenAI-compatible and local providers.

A provider turns chat messages (OpenAI chat-completions dicts) into a :class:`Completion`.
Providers never raise anything but :class:`ProviderError` (or its subclass
:class:`GenerationError`) for failures the caller should record; messages name the provider,
the model and, where relevant, the HTTP status, and never contain an API key.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Protocol, TypeGuard, runtime_checkable

__all__ = [
    "ChatParams",
    "Completion",
    "GenerationError",
    "LLMProvider",
    "ProviderConfig",
    "ProviderError",
    "ProviderKind",
    "SupportsYesNoScore",
    "supports_yes_no_score",
    "YesNoScore",
    "make_provider",
    "message_text",
]

ProviderKind = Literal["echo", "openai", "local"]


@dataclass(frozen=True)
class ChatParams:
    """Per-call sampling and transport settings; ``None`` means "provider default"."""

    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    timeout: float | None = None
    max_retries: int | None = None


@dataclass
class Completion:
    """One model answer with its usage metadata."""

    text: str
    input_tokens: int
    output_tokens: int
    duration_seconds: float
    model: str


class ProviderError(Exception):
    """A user-facing LLM failure; ``retryable`` tells whether trying again may help.

    ``rate_limited``: the provider refused the call for its rate limit (HTTP 429, or a 503
    with ``Retry-After``), and ``retry_after`` is the wait it asked for (None: it did not
    say); the server's LLM limiter backs off on such errors and runs the call again.
    """

    def __init__(
        self,
        message: str,
        *,
        retryable: bool = False,
        status: int | None = None,
        retry_after: float | None = None,
        rate_limited: bool = False,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable
        self.status = status
        self.retry_after = retry_after
        self.rate_limited = rate_limited

    def __str__(self) -> str:
        return self.message


class GenerationError(ProviderError):
    """The model answered, but not in the requested shape (after retries).

    ``raw_text`` holds the last raw answer so the caller can record it.
    """

    def __init__(self, message: str, raw_text: str = "") -> None:
        super().__init__(message, retryable=False)
        self.raw_text = raw_text


@runtime_checkable
class LLMProvider(Protocol):
    """What every provider offers: one chat call and a close."""

    name: str
    model: str

    async def chat(
        self,
        messages: list[dict[str, Any]],
        *,
        json_schema: dict[str, Any] | None = None,
        params: ChatParams | None = None,
    ) -> Completion:
        """Answer ``messages``; with ``json_schema`` the answer should be JSON satisfying it."""
        ...

    async def aclose(self) -> None:
        """Release sessions/threads held by the provider (idempotent)."""
        ...


@dataclass
class YesNoScore:
    """How likely a model finds "yes" vs "no" as the first token of its answer.

    ``p_yes`` is the probability of the yes-tokens renormalised over yes and no (0.0 to 1.0);
    ``mass`` is the probability the model put on yes and no tokens together, before that
    renormalisation (near 0: the model wanted to say something else).
    """

    p_yes: float
    mass: float
    input_tokens: int
    duration_seconds: float
    model: str


@runtime_checkable
class SupportsYesNoScore(Protocol):
    """A provider that can score a yes/no answer from its next-token probabilities.

    The judge prefers this to parsing a generated verdict where a provider offers it.
    """

    name: str
    model: str

    async def yes_no_score(
        self, messages: list[dict[str, Any]], *, params: ChatParams | None = None
    ) -> YesNoScore:
        """Score the first answer token after ``messages`` (the assistant's turn begins)."""
        ...


def supports_yes_no_score(provider: object) -> TypeGuard[SupportsYesNoScore]:
    """Whether ``provider`` can score yes/no answers (:class:`SupportsYesNoScore`).

    On every call of the judge, so it looks the method up directly: ``isinstance`` against a
    runtime-checkable protocol inspects all of the protocol's members each time (~30 µs).
    """
    return callable(getattr(provider, "yes_no_score", None))


@dataclass
class ProviderConfig:
    """How to build a provider (see :func:`make_provider`)."""

    kind: ProviderKind = "echo"
    base_url: str | None = None
    model: str | None = None
    api_key: str | None = None
    echo_latency: float = 0.0
    max_connections: int = 10
    timeout: float | None = None
    max_retries: int | None = None
    #: raise rate limits (429, ``Retry-After``) at once, for a caller that backs off and
    #: retries them itself (the server's adaptive LLM limiter), instead of retrying inside
    defer_rate_limits: bool = False

    def __repr__(self) -> str:  # never show the API key
        key = "'***'" if self.api_key else "None"
        return (
            f"ProviderConfig(kind={self.kind!r}, base_url={self.base_url!r}, model={self.model!r}, "
            f"api_key={key}, echo_latency={self.echo_latency!r}, "
            f"max_connections={self.max_connections!r}, timeout={self.timeout!r}, "
            f"max_retries={self.max_retries!r}, defer_rate_limits={self.defer_rate_limits!r})"
        )


def make_provider(cfg: ProviderConfig) -> LLMProvider:
    """Build the provider described by ``cfg``; unknown kinds raise ``ValueError``."""
    if cfg.kind == "echo":
        from .echo import EchoProvider

        return EchoProvider(model=cfg.model or "echo", latency=cfg.echo_latency)
    if cfg.kind == "openai":
        from .openai import OpenAIProvider

        if not cfg.model:
            raise ValueError("an 'openai' provider needs a model name")
        return OpenAIProvider(
            base_url=cfg.base_url,
            model=cfg.model,
            api_key=cfg.api_key,
            max_connections=cfg.max_connections,
            timeout=cfg.timeout,
            max_retries=cfg.max_retries,
            defer_rate_limits=cfg.defer_rate_limits,
        )
    if cfg.kind == "local":
        from .local import LocalProvider

        return LocalProvider(model=cfg.model, timeout=cfg.timeout)
    raise ValueError(
        f"unknown LLM provider kind {cfg.kind!r} (expected 'echo', 'openai' or 'local')"
    )


def message_text(message: dict[str, Any]) -> str:
    """The text of one chat message: a string content, or its text parts joined by newlines."""
    content = message.get("content")
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts: list[str] = []
        for part in content:
            if isinstance(part, str):
                parts.append(part)
            elif isinstance(part, dict) and isinstance(part.get("text"), str):
                parts.append(part["text"])
        return "\n".join(parts)
    return str(content)
